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

pub mod advice;
mod backfill;
mod calibration;
pub mod fit;
pub mod interval;
mod lack_of_fit;
pub mod least_squares;
mod location;
mod observed;
pub mod similarity;
pub mod similarity_command;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::error::bad_input;
use crate::machine::MachineFacts;
use crate::report::write_atomically;
use crate::sampling::SamplingMode;
use crate::scenario::{Scenario, Sizes};
pub use calibration::{calibration_line, describe_calibration, uncalibrated_note, Calibration};
use fit::{Fit, Observation};
pub use interval::{Interval, Spread};
pub use lack_of_fit::Judged;
pub use location::{
    bundled_model_name, find_model, model_path, FoundModel, BUNDLED_MODELS, DEFAULT_MODEL_PATH,
    MODEL_PATH_ENV,
};
pub use observed::{affine_scaling, ObservedPeak, Scaling};

/// Bumped whenever a reader of an older model would misread a newer one.
pub const MODEL_SCHEMA_VERSION: u32 = 1;

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

/// The model's feature-column axis: the write-up's second growth risk ("the
/// features grow by a hundred columns", its Q3) is a column count, and a
/// model measured at one count cannot answer it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ColumnAxis {
    /// The column count predictions are at (the fits are centred on it); 0
    /// in older models: the scenario's numeric profile columns.
    #[serde(default)]
    pub at: u64,
    /// The column counts the sweep measured, ascending (empty in older
    /// models: only the scenario's).
    #[serde(default)]
    pub measured: Vec<u64>,
}

/// What the model's column count counts, in the words the answers use.
pub const COLUMNS_WHAT: &str = "numeric profile columns";

/// Whose bytes a model is in. `recommend`, `check` and `postmortem` name
/// it, since a replay's bytes and a pipeline's own differ (by pandas
/// version, allocator, code) and the reader must know which they got.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelSource {
    /// oomlab's replay of the strategies (in `Model::memory_mode`).
    #[default]
    Replay,
    /// A user's command, run at several sizes (`oomlab sweep -- CMD`).
    Command {
        /// The argv template, placeholders (`{rows}`, `{scale}`,
        /// `{data_dir}`, `{max_ranking_samples}`) unsubstituted.
        argv: Vec<String>,
        /// The pattern whose matching lines cut stages.
        stage_pattern: String,
        /// Python version the command reported in its output, if any.
        #[serde(default)]
        python: Option<String>,
        /// pandas version the command reported in its output, if any.
        #[serde(default)]
        pandas: Option<String>,
        /// Allocator settings the command ran under
        /// (`ARROW_DEFAULT_MEMORY_POOL`, `MALLOC_*`, `PYTHONMALLOC`): they
        /// move a pandas pipeline's peaks (pyarrow's pool holds pandas 3's
        /// strings), so a model says which it was fitted under.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        allocator_env: BTreeMap<String, String>,
        /// Commands fitted together but named apart (`oomlab model fit
        /// NAME=DIR ...`): each name's argv; the name is its variants'
        /// strategy. Empty for one command.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        named: BTreeMap<String, Vec<String>>,
    },
}

/// The allocator settings in this process's environment, which a child
/// inherits: see `ModelSource::Command::allocator_env`.
pub fn allocator_env() -> BTreeMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| {
            k == "ARROW_DEFAULT_MEMORY_POOL" || k == "PYTHONMALLOC" || k.starts_with("MALLOC_")
        })
        .collect()
}

impl ModelSource {
    /// One line on whose bytes the model's answers are in.
    pub fn describe(&self, memory_mode: crate::settings::MemoryMode) -> String {
        match self {
            ModelSource::Replay => format!(
                "oomlab's replay ({} memory mode); a real pipeline's bytes differ: calibrate with --observed or --fidelity, or sweep the pipeline itself (`oomlab sweep -- CMD`)",
                memory_mode.label()
            ),
            ModelSource::Command {
                argv,
                python,
                pandas,
                allocator_env,
                ..
            } => {
                let mut versions = Vec::new();
                if let Some(p) = python {
                    versions.push(format!("Python {p}"));
                }
                if let Some(p) = pandas {
                    versions.push(format!("pandas {p}"));
                }
                for (k, v) in allocator_env {
                    versions.push(format!("{k}={v}"));
                }
                format!(
                    "the command's own bytes: `{}`{}",
                    argv.join(" "),
                    if versions.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", versions.join(", "))
                    }
                )
            }
        }
    }
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

/// The model of one strategy run one way (`optimized` sampled uniformly, ...).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VariantModel {
    /// `legacy`, `optimized` (uniform sampling) or `optimized-capped`.
    pub name: String,
    /// The strategy the child ran.
    pub strategy: String,
    /// How `MAX_RANKING_SAMPLES` picks rows; `None` when the strategy ignores it.
    pub sampling: Option<SamplingMode>,
    /// One fit per stage, in stage order.
    pub stages: Vec<StageModel>,
    /// The fit of the whole run's peak (for reference; predictions take the
    /// largest stage).
    pub overall: Fit,
    /// The measured points the fits were made from.
    pub points: Vec<Point>,
}

/// One stage's fitted peak.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageModel {
    pub name: String,
    pub fit: Fit,
}

/// One measured run of a variant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Point {
    pub scale: f64,
    /// Rows loaded.
    pub rows_in: u64,
    /// Rows kept after dropna and sampling (the prepared frame's rows).
    pub rows_kept: u64,
    /// `MAX_RANKING_SAMPLES` of the run.
    pub max_ranking_samples: u64,
    /// Exact peak of the run (largest stage peak).
    pub peak_bytes: u64,
    /// The stage that set it.
    pub peak_stage: String,
    /// Exact peak of every stage.
    pub stage_peaks: BTreeMap<String, u64>,
    /// The report the point came from.
    pub report: String,
    /// Feature columns of the run (numeric profile columns merged); 0 in
    /// points from before they were recorded: the scenario's count.
    #[serde(default)]
    pub columns: u64,
    /// Each run's whole peak when the point is the median of repeats
    /// (`sweep --repeat`): their spread widens the prediction intervals.
    /// Empty for a single run (and in points from before it was recorded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repeat_peaks: Vec<u64>,
    /// Each run's peak of every stage, likewise.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub repeat_stage_peaks: BTreeMap<String, Vec<u64>>,
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

/// One stage's predicted peak.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StagePrediction {
    pub stage: String,
    pub bytes: f64,
    /// The stage's 95% prediction interval (`None`: not known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,
}

/// What a variant needs at given sizes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Prediction {
    pub rows_in: u64,
    pub rows_kept: u64,
    pub stages: Vec<StagePrediction>,
    /// The largest stage prediction: the process peak.
    pub peak_bytes: f64,
    /// The stage that sets it.
    pub peak_stage: String,
    /// The 95% prediction interval of the peak: each end the largest of the
    /// stages' ends, since the peak is the largest stage (`None` when some
    /// stage has none: a model from before intervals, or too few points).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,
}

impl Prediction {
    /// The upper end of the 95% interval, or the point when there is none:
    /// what `check`, `recommend` and the headroom figures compare with a
    /// limit, so a setting is judged by what the evidence cannot rule out.
    pub fn upper_bytes(&self) -> f64 {
        self.interval
            .map_or(self.peak_bytes, |i| i.high_bytes.max(self.peak_bytes))
    }

    /// `3.42 GiB (95% interval 3.30 to 3.55 GiB, ±3.6%)`, or the point
    /// alone with `(no interval)` when the model has none.
    pub fn describe(&self) -> String {
        interval::describe(self.peak_bytes, self.interval)
    }
}

impl VariantModel {
    /// Fits every stage and the overall peak of a variant from its points;
    /// with points at several column counts, each fit gets a column term
    /// centred on `columns_ref` (the scenario's count, which a point's
    /// `columns` of 0 also means).
    pub fn fit(
        name: &str,
        strategy: &str,
        sampling: Option<SamplingMode>,
        stage_names: &[&str],
        points: Vec<Point>,
        columns_ref: u64,
    ) -> Result<Self> {
        let columns: Vec<f64> = points
            .iter()
            .map(|p| if p.columns > 0 { p.columns } else { columns_ref } as f64)
            .collect();
        let observations = |peak: &dyn Fn(&Point) -> Option<u64>| -> Result<Vec<Observation>> {
            points
                .iter()
                .map(|p| {
                    Ok(Observation {
                        rows_in: p.rows_in as f64,
                        rows_kept: p.rows_kept as f64,
                        peak: peak(p).with_context(|| {
                            format!(
                                "variant {name}: a run at scale {} lacks a stage peak",
                                p.scale
                            )
                        })? as f64,
                    })
                })
                .collect()
        };
        let stages = stage_names
            .iter()
            .map(|stage| {
                let obs = observations(&|p: &Point| p.stage_peaks.get(*stage).copied())?;
                let mut fit = fit::fit_with_columns(&obs, &columns, columns_ref as f64)
                    .with_context(|| format!("fitting {name}/{stage}"))?;
                fit.add_repeats(
                    points
                        .iter()
                        .filter_map(|p| p.repeat_stage_peaks.get(*stage).map(Vec::as_slice)),
                );
                Ok(StageModel {
                    name: stage.to_string(),
                    fit,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut overall = fit::fit_with_columns(
            &observations(&|p: &Point| Some(p.peak_bytes))?,
            &columns,
            columns_ref as f64,
        )?;
        overall.add_repeats(points.iter().map(|p| p.repeat_peaks.as_slice()));
        Ok(Self {
            name: name.to_string(),
            strategy: strategy.to_string(),
            sampling,
            stages,
            overall,
            points,
        })
    }

    /// Predicts every stage and the peak at `rows_in` rows loaded and
    /// `rows_kept` rows kept, mapped by `scaling` (the identity unless calibrated).
    pub fn predict(&self, rows_in: u64, rows_kept: u64, scaling: Scaling) -> Prediction {
        self.predict_at(rows_in, rows_kept, None, scaling)
    }

    /// [`VariantModel::predict`] at `columns` feature columns (`None`: the
    /// count the fits are centred on).
    pub fn predict_at(
        &self,
        rows_in: u64,
        rows_kept: u64,
        columns: Option<u64>,
        scaling: Scaling,
    ) -> Prediction {
        let eval = |f: &Fit| match columns {
            Some(c) => f.eval_at(rows_in as f64, rows_kept as f64, c as f64),
            None => f.eval(rows_in as f64, rows_kept as f64),
        };
        let stages: Vec<StagePrediction> = self
            .stages
            .iter()
            .map(|s| {
                let point = eval(&s.fit);
                StagePrediction {
                    stage: s.name.clone(),
                    bytes: scaling.apply(point.max(0.0)),
                    interval: s
                        .fit
                        .interval((rows_in, rows_kept), columns, point)
                        .map(|i| Interval {
                            low_bytes: scaling.apply(i.low_bytes),
                            high_bytes: scaling.apply(i.high_bytes),
                        }),
                }
            })
            .collect();
        let top = stages
            .iter()
            .max_by(|a, b| a.bytes.total_cmp(&b.bytes))
            .cloned()
            .unwrap_or(StagePrediction {
                stage: "-".into(),
                bytes: 0.0,
                interval: None,
            });
        Prediction {
            rows_in,
            rows_kept,
            interval: interval::of_peak(&stages),
            stages,
            peak_bytes: top.bytes,
            peak_stage: top.stage,
        }
    }

    /// The stage whose peak grows fastest with the rows loaded (without
    /// sampling, `keep` of them kept): the one that sets the peak at large sizes.
    pub fn fastest_stage(&self, keep: f64) -> Option<&StageModel> {
        let growth = |s: &StageModel| s.fit.bytes_per_row_in + s.fit.bytes_per_row_kept * keep;
        self.stages
            .iter()
            .max_by(|a, b| growth(a).total_cmp(&growth(b)))
    }

    /// A measured run of this variant against this model's prediction at the
    /// run's own sizes (its measured rows kept, so only the memory model is
    /// judged, not dropna's ratio).
    pub fn judge(&self, p: &Point) -> HeldOut {
        let columns = (p.columns > 0).then_some(p.columns);
        let pred = self.predict_at(p.rows_in, p.rows_kept, columns, Scaling::IDENTITY);
        let measured = p.peak_bytes as f64;
        let fixed = self
            .stages
            .iter()
            .find(|s| s.name == pred.peak_stage)
            .map_or(0.0, |s| {
                columns.map_or(s.fit.fixed_bytes, |c| {
                    s.fit.at_columns(c as f64).fixed_bytes
                })
            });
        let row_part = measured - fixed;
        HeldOut {
            variant: self.name.clone(),
            rows_in: p.rows_in,
            columns: p.columns,
            rows_kept: p.rows_kept,
            max_ranking_samples: p.max_ranking_samples,
            measured_bytes: p.peak_bytes,
            predicted_bytes: pred.peak_bytes,
            interval: pred.interval,
            error_pct: (pred.peak_bytes - measured) / measured.max(1.0) * 100.0,
            measured_stage: p.peak_stage.clone(),
            predicted_stage: pred.peak_stage,
            row_part_error_pct: (row_part > 0.05 * measured)
                .then(|| (pred.peak_bytes - measured) / row_part * 100.0),
        }
    }

    /// The same variant with every fit re-centred at `columns` feature
    /// columns (see [`Fit::at_columns`]).
    pub fn at_columns(&self, columns: u64) -> VariantModel {
        let mut v = self.clone();
        for s in &mut v.stages {
            s.fit = s.fit.at_columns(columns as f64);
        }
        v.overall = v.overall.at_columns(columns as f64);
        v
    }

    /// True when this variant's runs varied `rows_kept` independently of
    /// `rows_in` in every stage that depends on it, so sampling's effect is known.
    pub fn sampling_identified(&self) -> bool {
        self.sampling.is_some() && self.overall.rows_kept_identified
    }
}

impl Model {
    /// The feature-column count predictions are at: where the fits are
    /// centred (the scenario's numeric profile columns unless re-centred).
    pub fn columns_now(&self) -> u64 {
        if self.columns.at > 0 {
            self.columns.at
        } else {
            self.scenario.production.profile_numeric_columns
        }
    }

    /// The column counts the model was measured at, ascending.
    pub fn columns_measured(&self) -> Vec<u64> {
        if self.columns.measured.is_empty() {
            vec![self.scenario.production.profile_numeric_columns]
        } else {
            self.columns.measured.clone()
        }
    }

    /// True when some stage has a fitted column term: the model can say what
    /// another column count costs. Without one, its figures hold at the one
    /// count it was measured at.
    pub fn has_column_term(&self) -> bool {
        self.variants
            .iter()
            .any(|v| v.stages.iter().any(|s| s.fit.columns_identified))
    }

    /// The same model predicting at `columns` feature columns: every fit
    /// re-centred there, so `recommend`, `check` and `postmortem` answer at a
    /// logged or planned column count through their usual code. A model
    /// without a column term is returned unchanged (its figures are at the
    /// count it was measured at; callers say so).
    pub fn at_columns(&self, columns: u64) -> Model {
        let mut m = self.clone();
        if !self.has_column_term() || columns == 0 {
            return m;
        }
        for v in &mut m.variants {
            *v = v.at_columns(columns);
        }
        m.columns.at = columns;
        m
    }

    /// How far `columns` lies outside the measured column counts, in words
    /// (`None` when inside): a prediction there is an extrapolation.
    pub fn columns_outside(&self, columns: u64) -> Option<String> {
        let measured = self.columns_measured();
        let (lo, hi) = (*measured.first()?, *measured.last()?);
        if columns > hi {
            Some(format!(
                "{columns} is {} above the largest column count measured ({hi}, {:.0}% more)",
                columns - hi,
                (columns as f64 / hi.max(1) as f64 - 1.0) * 100.0
            ))
        } else if columns < lo {
            Some(format!(
                "{columns} is {} below the smallest column count measured ({lo})",
                lo - columns
            ))
        } else {
            None
        }
    }

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

    /// Reads a model, refusing other schema versions with a clear message (exit 2).
    pub fn read(path: &Path) -> Result<Model> {
        let bytes = std::fs::read(path).map_err(|e| {
            bad_input(format!(
                "{}: cannot read the model: {e} (run `oomlab sweep` first, pass --model, or name a bundled model: {})",
                path.display(),
                BUNDLED_MODELS.map(|(n, _, _)| n).join(", ")
            ))
        })?;
        Self::parse(&bytes, path)
    }

    /// Parses a model's bytes; `path` names it in errors (exit 2).
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Model> {
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
            bad_input(format!(
                "{}: not a valid oomlab model (JSON error: {e})",
                path.display()
            ))
        })?;
        let version = value.get("schema_version").and_then(|v| v.as_u64());
        if version != Some(MODEL_SCHEMA_VERSION as u64) {
            return Err(bad_input(format!(
                "{}: model schema_version is {}, this oomlab reads version {MODEL_SCHEMA_VERSION} (rerun `oomlab sweep`)",
                path.display(),
                version.map_or("missing".to_string(), |v| v.to_string())
            )));
        }
        let mut model: Model = serde_json::from_value(value)
            .map_err(|e| bad_input(format!("{}: not a valid oomlab model: {e}", path.display())))?;
        backfill::fill_spreads(&mut model);
        Ok(model)
    }

    /// Writes the model atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).context("serializing the model")?;
        write_atomically(path, &json)
    }
}

#[cfg(test)]
pub mod synthetic;

#[cfg(test)]
mod model_tests;
