//! One strategy run one way: the points measured, a fit per stage and of
//! the whole peak, the prediction at given sizes (each stage's and the
//! peak's, with their 95% intervals), and a run judged against it.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::fit::{self, Fit, Observation};
use super::interval::{self, Interval};
use super::{HeldOut, Scaling};
use crate::sampling::SamplingMode;

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
                let runs: Vec<usize> = points
                    .iter()
                    .map(|p| p.repeat_stage_peaks.get(*stage).map_or(1, Vec::len))
                    .collect();
                let mut fit = fit::fit_medians(&obs, &columns, columns_ref as f64, &runs)
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
        let mut overall = fit::fit_medians(
            &observations(&|p: &Point| Some(p.peak_bytes))?,
            &columns,
            columns_ref as f64,
            &points
                .iter()
                .map(|p| p.repeat_peaks.len().max(1))
                .collect::<Vec<_>>(),
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
