//! The memory model: per strategy and per stage, exact peak as an affine
//! function of the sizes that drive it, fitted on small measured runs.
//!
//! `oomlab sweep` measures every strategy at several scales (through the same
//! `ReplayPlan` as `compare`), fits each stage's exact kernel peak as
//! `fixed + a x rows_in + b x rows_kept` (see [`fit`]), checks the fit on a
//! held-out larger scale and writes `model.json`. `recommend` and `check` read
//! it: a strategy's predicted peak is the largest of its stages' predictions,
//! because the process peak *is* the largest stage peak, and the stage that
//! sets it can change with size (parquet decoding of the fixed-size profile at
//! small scales, the merges at production size).
//!
//! The model is of the replay (polars, glibc malloc with pinned thresholds), not
//! of pandas: production holds Python objects and pays more per row. A peak seen
//! in production (`--observed ROWS=PEAK`) rescales the model to it
//! ([`Model::calibrate`]).
//!
//! This file holds the model and which variant answers at what rows; the
//! rest, one job a file: `variant.rs` (one strategy's points, fits,
//! prediction and a run judged against it), `source.rs` (whose bytes the
//! model is in), `columns.rs` (the feature-column axis), `file.rs`
//! (`model.json` read and written), `fit.rs`, `interval.rs`,
//! `lack_of_fit.rs`, `advice.rs`, `calibration.rs`, `location.rs`,
//! `observed.rs` and the similarity models.

pub mod advice;
mod backfill;
mod calibration;
mod columns;
mod file;
pub mod fit;
pub mod interval;
mod lack_of_fit;
pub mod least_squares;
mod location;
mod observed;
pub mod similarity;
pub mod similarity_command;
mod source;
mod variant;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::error::bad_input;
use crate::machine::MachineFacts;
use crate::sampling::SamplingMode;
use crate::scenario::{Scenario, Sizes};
pub use calibration::{calibration_line, describe_calibration, uncalibrated_note, Calibration};
pub use columns::{ColumnAxis, COLUMNS_WHAT};
pub use file::MODEL_SCHEMA_VERSION;
pub use interval::{Interval, Spread};
pub use lack_of_fit::{FittedVariants, Judged};
pub use location::{
    bundled_model_name, find_model, model_path, FoundModel, BUNDLED_MODELS, DEFAULT_MODEL_PATH,
    MODEL_PATH_ENV,
};
pub use observed::{affine_scaling, ObservedPeak, Scaling};
pub use source::{allocator_env, ModelSource};
pub use variant::{Point, Prediction, StageModel, StagePrediction, VariantModel};

/// Everything `recommend` and `check` need, as `sweep` measured it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Model {
    pub schema_version: u32,
    pub oomlab_version: String,
    /// UTC time the model was fitted, RFC 3339.
    pub created_at: String,
    pub scenario: ModelScenario,
    /// Scales the sweep ran, ascending.
    pub scales: Vec<f64>,
    /// The data cache the sweep used (coverage figures read the data from it).
    pub cache_root: PathBuf,
    /// Allocator of the measured children; the coefficients depend on it.
    pub allocator: String,
    /// The machine the sweep ran on.
    pub machine: MachineFacts,
    /// Rows surviving `dropna` per row loaded, as measured (rows_kept without sampling).
    pub dropna_keep_ratio: f64,
    /// Rows per chunk of the `streaming` runs: the model of `streaming` is of
    /// this chunk size (0 in models from before it was recorded).
    #[serde(default)]
    pub streaming_chunk_rows: u64,
    /// The memory mode the sweep's children ran in (`--memory-mode`); models
    /// from before it was recorded are `polars`.
    #[serde(default)]
    pub memory_mode: crate::strategy::memory::MemoryMode,
    /// One model per strategy and way of sampling.
    pub variants: Vec<VariantModel>,
    /// How the model fitted on all but the largest scale did on the largest.
    pub validation: Validation,
    /// Set when the model was rescaled to peaks observed elsewhere.
    #[serde(default)]
    pub calibration: Option<Calibration>,
    /// What produced the figures: oomlab's replay, or a user's own command
    /// (`sweep -- CMD`). Models from before it was recorded are replays.
    #[serde(default)]
    pub source: ModelSource,
    /// Runs measured at production size (`sweep --production`), each against
    /// the prediction of the model fitted on the sweep's scales: the check of
    /// the extrapolation itself. Not fitted on, so the model stays the one
    /// the held-out check judged.
    #[serde(default)]
    pub production_checks: Vec<HeldOut>,
    /// Every machine the points were measured on, when there were several
    /// (`oomlab model fit` on reports from different machines): `machine`
    /// is then the first, and the fit mixes their peaks. Empty for one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub machines: Vec<MachineFacts>,
    /// The feature-column axis: which column count the predictions are at
    /// and which counts were measured. Models from before it was recorded
    /// were measured at the scenario's count and have no column term.
    #[serde(default)]
    pub columns: ColumnAxis,
}

/// The scenario a model was measured on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelScenario {
    pub name: String,
    pub path: String,
    /// The whole scenario, so coverage figures can regenerate its data.
    pub scenario: Scenario,
    /// Sizes at production (scale 1).
    pub production: Sizes,
}

impl ModelScenario {
    /// The scenario as a model records it: every model made from a loaded
    /// scenario (the replay sweep, the command sweep) says it the same way.
    pub fn of(loaded: &crate::scenario::LoadedScenario) -> Self {
        ModelScenario {
            name: loaded.scenario.name.clone(),
            path: loaded.path.display().to_string(),
            scenario: loaded.scenario.clone(),
            production: loaded.scenario.production_sizes(),
        }
    }
}

/// The held-out check of a sweep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Validation {
    /// The scale held out (the largest).
    pub holdout_scale: f64,
    /// The scales the checked model was fitted on.
    pub fitted_scales: Vec<f64>,
    /// Every held-out run, predicted by the model fitted without it.
    pub points: Vec<HeldOut>,
    /// Largest absolute error of each variant, percent of the measured peak.
    pub max_abs_error_pct: BTreeMap<String, f64>,
    /// With a column grid (`sweep --columns`): the column count held out
    /// with the largest scale (the held-out point is larger in both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout_columns: Option<u64>,
    /// The column counts the checked model was fitted on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fitted_columns: Vec<u64>,
}

/// One held-out run against its prediction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeldOut {
    pub variant: String,
    pub rows_in: u64,
    /// Feature columns of the run (0: the scenario's count, older models).
    #[serde(default)]
    pub columns: u64,
    pub rows_kept: u64,
    pub max_ranking_samples: u64,
    pub measured_bytes: u64,
    pub predicted_bytes: f64,
    /// The 95% prediction interval of the run (`None`: the model could not
    /// give one, or was fitted before intervals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,
    /// (predicted - measured) / measured, percent.
    pub error_pct: f64,
    pub measured_stage: String,
    pub predicted_stage: String,
    /// Error on the row-driven part only: (predicted - measured) over
    /// (measured - predicted fixed cost); a stricter view, since fixed costs
    /// dominate small scales.
    pub row_part_error_pct: Option<f64>,
}

impl Model {
    /// Predicts a variant at `rows_in` loaded, `MAX_RANKING_SAMPLES = cap`
    /// and `columns` feature columns.
    pub fn predict_at(
        &self,
        variant: &VariantModel,
        rows_in: u64,
        cap: u64,
        columns: u64,
    ) -> Prediction {
        variant.predict_at(
            rows_in,
            self.rows_kept(variant, rows_in, cap),
            Some(columns),
            self.scaling(),
        )
    }

    /// The variant called `name`.
    pub fn variant(&self, name: &str) -> Result<&VariantModel> {
        self.variants
            .iter()
            .find(|v| v.name == name)
            .ok_or_else(|| {
                bad_input(format!(
                    "the model has no variant `{name}` (it has: {})",
                    self.variants
                        .iter()
                        .map(|v| v.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }

    /// The variant for a strategy and a way of sampling (`legacy` ignores it).
    pub fn variant_for(&self, strategy: &str, sampling: SamplingMode) -> Result<&VariantModel> {
        if matches!(self.source, ModelSource::Command { .. }) {
            // A command model is of the command, whatever strategy it runs
            // (or, fitted from commands named apart, of the one named
            // `strategy`). The sampled variant when the sweep had capped
            // runs (it knows what a cap saves), else the unsampled one.
            let named = self.variants.iter().any(|v| v.strategy == strategy);
            let of = |v: &&VariantModel| !named || v.strategy == strategy;
            if let Some(v) = self
                .variants
                .iter()
                .filter(of)
                .find(|v| v.sampling == Some(sampling))
                .or_else(|| {
                    self.variants
                        .iter()
                        .filter(of)
                        .find(|v| v.sampling.is_none())
                })
            {
                return Ok(v);
            }
        }
        match self
            .variants
            .iter()
            .find(|v| v.strategy == strategy && v.sampling.is_none_or(|s| s == sampling))
        {
            Some(v) => Ok(v),
            None => self.variant(&format!("{strategy}/{}", sampling.name())),
        }
    }

    /// Rows kept after dropna: what `rows_in` loaded rows leave before sampling.
    pub fn rows_after_dropna(&self, rows_in: u64) -> u64 {
        (rows_in as f64 * self.dropna_keep_ratio).round() as u64
    }

    /// Rows a variant keeps at `rows_in` loaded with `MAX_RANKING_SAMPLES = cap`.
    pub fn rows_kept(&self, variant: &VariantModel, rows_in: u64, cap: u64) -> u64 {
        let full = self.rows_after_dropna(rows_in);
        if variant.sampling.is_some() && cap > 0 && cap < full {
            cap
        } else {
            full
        }
    }

    /// The calibration's mapping of replay figures (the identity when uncalibrated).
    pub fn scaling(&self) -> Scaling {
        self.calibration
            .as_ref()
            .map_or(Scaling::IDENTITY, |c| Scaling {
                factor: c.factor,
                offset_bytes: c.offset_bytes,
            })
    }

    /// Predicts a variant at `rows_in` loaded and `MAX_RANKING_SAMPLES = cap`.
    pub fn predict(&self, variant: &VariantModel, rows_in: u64, cap: u64) -> Prediction {
        variant.predict(
            rows_in,
            self.rows_kept(variant, rows_in, cap),
            self.scaling(),
        )
    }
}

#[cfg(test)]
pub mod synthetic;

#[cfg(test)]
mod model_tests;
