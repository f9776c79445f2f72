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

use crate::model::{advice, Model};
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
}

/// Share of the limit kept free when choosing a setting (as `recommend` does).
pub const HEADROOM: f64 = advice::DEFAULT_HEADROOM;

/// Reads `model.json` (exit 2 with a clear message when it cannot be used),
/// calibrated to a fidelity result's pandas peaks of the v2 pipeline when one
/// is given, so the postmortem's figures are in pandas bytes.
pub fn load(path: &Path, fidelity: Option<&Path>) -> Result<Box<dyn PeakModel>> {
    let mut model = Model::read(path)?;
    if let Some(file) = fidelity {
        let variant = model
            .variant_for("optimized", crate::sampling::SamplingMode::Uniform)?
            .name
            .clone();
        let points = crate::fidelity::observations(file, "optimized", &model.scenario.name)?;
        let source = format!("the pandas runs in {}", file.display());
        model.calibrate_affine(&variant, &points, &source)?;
    }
    Ok(Box::new(SweepModel(model)))
}

/// The model `oomlab sweep` writes.
struct SweepModel(Model);

fn peak(p: &crate::model::Prediction) -> PredictedPeak {
    PredictedPeak {
        peak_bytes: p.peak_bytes.max(0.0).round() as u64,
        stage: p.peak_stage.clone(),
    }
}

impl PeakModel for SweepModel {
    fn describe(&self) -> String {
        let m = &self.0;
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
        let p = &self.0.scenario.production;
        ModelShape {
            datasets: p.datasets,
            profile_columns: p.profile_columns,
            profile_numeric_columns: p.profile_numeric_columns,
            user_columns: p.user_columns,
        }
    }

    fn predict(&self, strategy: &str, rows_in: u64, cap: u64) -> Result<PredictedPeak> {
        let variant = self.0.variant_for(strategy, SamplingMode::Uniform)?;
        Ok(peak(&self.0.predict(variant, rows_in, cap)))
    }

    fn fitting_setting(
        &self,
        rows_in: u64,
        budget_bytes: u64,
        headroom: f64,
    ) -> Result<FittingSetting> {
        let variant = self.0.variant_for("optimized", SamplingMode::Uniform)?;
        let limit = budget_bytes as f64 * (1.0 - headroom);
        Ok(match advice::recommend(&self.0, variant, rows_in, limit)? {
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
}
