//! What a postmortem asks of a memory model, behind a small interface.
//!
//! The postmortem knows the sizes the killed run had (from its log) and the
//! limit it died at; a model fitted by `oomlab sweep` (`model.json`, see
//! `crate::model`) says what peak those sizes need and which
//! `MAX_RANKING_SAMPLES` would have fitted. The postmortem only talks to
//! [`PeakModel`], so the model's own types can change without touching it:
//! the adapter below is the one place that knows them.

use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::model::{advice, Model, ObservedPeak};
use crate::sampling::SamplingMode;

/// A predicted peak and the stage that sets it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PredictedPeak {
    pub peak_bytes: u64,
    pub stage: String,
}

/// The setting a budget allows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FittingSetting {
    /// Everything fits without sampling (`MAX_RANKING_SAMPLES=0`).
    NoSampling { peak: PredictedPeak },
    /// Sampling to `cap` rows fits.
    Cap { cap: u64, peak: PredictedPeak },
    /// No cap fits; `floor` is the least the strategy needs.
    NoFit { floor: PredictedPeak },
}

/// The data shape a model was measured on: its predictions hold for logs of
/// the same shape (per-row costs depend on the columns merged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ModelShape {
    /// `dataset_profile` rows.
    pub datasets: u64,
    /// `dataset_profile` feature columns (what the legacy merge takes).
    pub profile_columns: u64,
    /// Of which numeric (what the v2 merge takes).
    pub profile_numeric_columns: u64,
    /// `user_features` feature columns.
    pub user_columns: u64,
}

/// What a model knows about feature columns: whether it can predict at a
/// logged count, and at which counts it was measured.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModelColumns {
    /// A column term was fitted (`sweep --columns`).
    pub modelled: bool,
    /// The numeric profile columns predictions are at now.
    pub at: u64,
    /// The counts measured, ascending.
    pub measured: Vec<u64>,
}

/// The questions a postmortem asks a memory model.
pub trait PeakModel {
    /// One line on what the model is (scenario, when, calibration).
    fn describe(&self) -> String;
    /// The data shape the model was measured on.
    fn shape(&self) -> ModelShape;
    /// Predicted peak of `strategy` with `rows_in` ranking samples loaded and
    /// `MAX_RANKING_SAMPLES = cap` (0 = none).
    fn predict(&self, strategy: &str, rows_in: u64, cap: u64) -> Result<PredictedPeak>;
    /// The largest `MAX_RANKING_SAMPLES` whose predicted peak (v2 pipeline)
    /// stays within `budget_bytes` after `headroom` (a share kept free).
    fn fitting_setting(
        &self,
        rows_in: u64,
        budget_bytes: u64,
        headroom: f64,
    ) -> Result<FittingSetting>;
    /// The stages of the v2 pipeline's model: a kill in one of them bounds
    /// that stage's figure, not only the largest.
    fn stages(&self) -> Vec<String>;
    /// Calibrates the v2 model exactly as `oomlab check --observed ...
    /// [--fidelity F]` does (same observations, same order), so the settings
    /// a postmortem prints are the ones `check` passes.
    fn calibrate(&mut self, observed: &[ObservedPeak], fidelity: Option<&Path>) -> Result<()>;
    /// Moves every prediction to `columns` numeric profile columns (the
    /// count the log says was merged), before any calibration; a model
    /// without a column term stays where it was measured.
    fn set_columns(&mut self, _columns: u64) {}
    /// What the model knows about columns (nothing, by default).
    fn columns(&self) -> ModelColumns {
        ModelColumns::default()
    }
}

/// Share of the limit kept free when choosing a setting (as `recommend` does).
pub const HEADROOM: f64 = advice::DEFAULT_HEADROOM;

/// Reads `model.json` (exit 2 with a clear message when it cannot be used),
/// uncalibrated: [`PeakModel::calibrate`] adds what the postmortem learnt.
pub fn load(path: &Path) -> Result<Box<dyn PeakModel>> {
    Ok(Box::new(SweepModel {
        saved: crate::model::find_model(Some(path))?.model,
        model: None,
    }))
}

/// The model `oomlab sweep` writes, as saved and as calibrated.
struct SweepModel {
    saved: Model,
    model: Option<Model>,
}

impl SweepModel {
    fn m(&self) -> &Model {
        self.model.as_ref().unwrap_or(&self.saved)
    }
}

fn peak(p: &crate::model::Prediction) -> PredictedPeak {
    PredictedPeak {
        peak_bytes: p.peak_bytes.max(0.0).round() as u64,
        stage: p.peak_stage.clone(),
    }
}

impl PeakModel for SweepModel {
    fn describe(&self) -> String {
        let m = self.m();
        let mut text = format!(
            "model of scenario `{}` fitted {} (scales {:?})",
            m.scenario.name, m.created_at, m.scales
        );
        if let Some(c) = &m.calibration {
            text += &format!(
                ", calibrated {} to peaks from {}",
                crate::model::describe_calibration(c),
                c.source
            );
        }
        text
    }

    fn shape(&self) -> ModelShape {
        let p = &self.m().scenario.production;
        ModelShape {
            datasets: p.datasets,
            profile_columns: p.profile_columns,
            profile_numeric_columns: p.profile_numeric_columns,
            user_columns: p.user_columns,
        }
    }

    fn predict(&self, strategy: &str, rows_in: u64, cap: u64) -> Result<PredictedPeak> {
        let m = self.m();
        let variant = m.variant_for(strategy, SamplingMode::Uniform)?;
        Ok(peak(&m.predict(variant, rows_in, cap)))
    }

    fn fitting_setting(
        &self,
        rows_in: u64,
        budget_bytes: u64,
        headroom: f64,
    ) -> Result<FittingSetting> {
        let m = self.m();
        let variant = m.variant_for("optimized", SamplingMode::Uniform)?;
        let limit = budget_bytes as f64 * (1.0 - headroom);
        Ok(match advice::recommend(m, variant, rows_in, limit)? {
            advice::Answer::NoSampling { prediction } => FittingSetting::NoSampling {
                peak: peak(&prediction),
            },
            advice::Answer::Cap { cap, prediction } => FittingSetting::Cap {
                cap,
                peak: peak(&prediction),
            },
            advice::Answer::NoFit { floor } => FittingSetting::NoFit {
                floor: peak(&floor),
            },
        })
    }

    fn stages(&self) -> Vec<String> {
        self.saved
            .variant_for("optimized", SamplingMode::Uniform)
            .map(|v| v.stages.iter().map(|s| s.name.clone()).collect())
            .unwrap_or_default()
    }

    fn set_columns(&mut self, columns: u64) {
        // As `check --columns` does: re-centred first, calibrated after.
        self.saved = self.saved.at_columns(columns);
        self.model = None;
    }

    fn columns(&self) -> ModelColumns {
        let m = self.m();
        ModelColumns {
            modelled: m.has_column_term(),
            at: m.columns_now(),
            measured: m.columns_measured(),
        }
    }

    fn calibrate(&mut self, observed: &[ObservedPeak], fidelity: Option<&Path>) -> Result<()> {
        // What `recommend::load_model` does for `check --strategy optimized`.
        let mut model = self.saved.clone();
        let variant = model
            .variant_for("optimized", SamplingMode::Uniform)?
            .name
            .clone();
        let mut observations = observed.to_vec();
        match fidelity {
            Some(file) => {
                observations.extend(crate::fidelity::observations(
                    file,
                    "optimized",
                    &model.scenario.name,
                )?);
                let source = format!("the pandas runs in {}", file.display());
                model.calibrate_observed(&variant, &observations, Some(&source))?;
            }
            None => model.calibrate_observed(&variant, &observations, None)?,
        }
        self.model = Some(model);
        Ok(())
    }
}
