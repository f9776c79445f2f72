//! Fidelity: does what the replay says about memory transfer to pandas?
//!
//! The pipeline that gets OOM-killed is pandas; the replay is polars. They
//! differ where it matters for memory (object columns of 8-byte pointers to
//! shared `str` objects against 16-byte views plus bytes; pandas' `merge`
//! materializes through several intermediate blocks; Arrow's allocator keeps
//! what it freed), so the transfer is measured, not assumed: `oomlab fidelity`
//! runs the pandas reference (`scenarios/pandas/ranking_prep.py`, under
//! `record`) and the replay on the same data at the same scales, fits each
//! side's `peak = fixed + per_row x rows` per strategy and stage, and reports
//! the ratios. The result (`fidelity.json`) calibrates `recommend` and `check`
//! (`--fidelity`), so a recommendation for a pandas pipeline is in pandas bytes.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::error::bad_input;
use crate::machine::MachineFacts;
use crate::model::fit::{self, Fit, Observation};
use crate::model::ObservedPeak;
use crate::report::write_atomically;

/// Bumped whenever a reader of an older result would misread a newer one.
pub const FIDELITY_SCHEMA_VERSION: u32 = 2;

/// File stem of the fidelity picture.
pub const FIDELITY_PICTURE: &str = "fidelity";

/// The pandas reference the fidelity run records.
pub const PANDAS_REFERENCE: &str = "scenarios/pandas/ranking_prep.py";

/// What a fidelity run measured and concluded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fidelity {
    pub schema_version: u32,
    pub oomlab_version: String,
    pub created_at: String,
    pub scenario: String,
    pub scenario_path: String,
    pub scales: Vec<f64>,
    /// The memory mode every oomlab figure of this result was measured in.
    pub memory_mode: crate::strategy::memory::MemoryMode,
    /// What that mode holds and allocates, in words.
    pub memory_mode_description: String,
    /// The interpreter and the reference script that ran the pandas side.
    pub python: String,
    pub reference: String,
    pub machine: MachineFacts,
    pub strategies: Vec<StrategyFidelity>,
}

/// One strategy, both sides.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StrategyFidelity {
    pub strategy: String,
    pub points: Vec<FidelityPoint>,
    /// The whole run's peak, fitted as it was measured. At small sizes the
    /// stage setting it can change from one scale to the next (loading the
    /// profile, then a merge), so its slope is not a per-row cost.
    pub overall: Comparison,
    /// The per-row cost of the peak: on each side, the stage whose cost grows
    /// fastest with the rows, which sets the peak at production sizes.
    #[serde(default)]
    pub per_row: Option<PerRowCost>,
    /// Each stage both sides have, in the replay's stage order.
    pub stages: Vec<StageComparison>,
    /// The pandas fit on all but the largest scale, predicting the largest:
    /// how well pandas' own fits extrapolate.
    pub holdout: Option<Holdout>,
    /// The replay calibrated to pandas on all but the largest scale
    /// (`pandas = offset + k x oomlab`, as `recommend --fidelity` calibrates a
    /// model), predicting pandas at the largest from the replay's own fits
    /// extrapolated there: the check that the replay's figures transfer.
    #[serde(default)]
    pub calibrated_holdout: Option<Holdout>,
}

/// One scale of a strategy on both sides.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FidelityPoint {
    pub scale: f64,
    /// Ranking samples loaded.
    pub rows: u64,
    pub oomlab_peak_bytes: u64,
    /// The median of the pandas runs' peaks (`--repeat`).
    pub pandas_peak_bytes: u64,
    /// Every pandas run's peak, in run order.
    #[serde(default)]
    pub pandas_repeats: Vec<u64>,
    pub oomlab_stages: BTreeMap<String, u64>,
    pub pandas_stages: BTreeMap<String, u64>,
    /// The two reports the figures come from.
    pub oomlab_report: String,
    pub pandas_report: String,
}

/// The two sides' fits of one peak and their ratios.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    pub oomlab: Fit,
    pub pandas: Fit,
    /// oomlab's bytes per row over pandas'.
    pub per_row_ratio: f64,
    /// oomlab's fixed bytes over pandas'.
    pub fixed_ratio: f64,
}

/// What a strategy's peak costs per row on each side.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PerRowCost {
    pub oomlab_stage: String,
    pub oomlab_bytes_per_row: f64,
    pub pandas_stage: String,
    pub pandas_bytes_per_row: f64,
    /// oomlab's over pandas'.
    pub ratio: f64,
}

impl PerRowCost {
    /// The fastest-growing stage of each side.
    fn of(stages: &[StageComparison]) -> Option<Self> {
        let o = stages.iter().max_by(|a, b| {
            a.comparison
                .oomlab
                .bytes_per_row_in
                .total_cmp(&b.comparison.oomlab.bytes_per_row_in)
        })?;
        let p = stages.iter().max_by(|a, b| {
            a.comparison
                .pandas
                .bytes_per_row_in
                .total_cmp(&b.comparison.pandas.bytes_per_row_in)
        })?;
        let (ob, pb) = (
            o.comparison.oomlab.bytes_per_row_in,
            p.comparison.pandas.bytes_per_row_in,
        );
        Some(Self {
            oomlab_stage: o.stage.clone(),
            oomlab_bytes_per_row: ob,
            pandas_stage: p.stage.clone(),
            pandas_bytes_per_row: pb,
            ratio: ratio(ob, pb),
        })
    }
}

/// A stage's comparison.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageComparison {
    pub stage: String,
    pub comparison: Comparison,
}

/// The held-out check of the pandas side.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Holdout {
    pub fitted_scales: Vec<f64>,
    pub rows: u64,
    pub predicted_bytes: f64,
    pub measured_bytes: u64,
    /// (predicted - measured) / measured.
    pub error: f64,
}

impl Holdout {
    /// `predicted` pandas bytes at `last` from the `fitted` points, judged
    /// against what pandas measured there.
    fn of(fitted: &[FidelityPoint], last: &FidelityPoint, predicted: f64) -> Self {
        let measured = last.pandas_peak_bytes as f64;
        Self {
            fitted_scales: fitted.iter().map(|p| p.scale).collect(),
            rows: last.rows,
            predicted_bytes: predicted,
            measured_bytes: last.pandas_peak_bytes,
            error: ratio(predicted - measured, measured),
        }
    }

    /// One line: `<what> at N rows at X, measured Y (+e%)`.
    pub fn sentence(&self, what: &str) -> String {
        format!(
            "{what}, fitted on scales {}, predicts pandas at {} rows at {}, measured {} ({:+.1}%).",
            self.fitted_scales
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            crate::units::format_count(self.rows),
            crate::units::format_bytes(self.predicted_bytes.max(0.0) as u64),
            crate::units::format_bytes(self.measured_bytes),
            self.error * 100.0
        )
    }
}

fn fit_rows(points: &[(u64, u64)]) -> Result<Fit> {
    let obs: Vec<Observation> = points
        .iter()
        .map(|&(rows, peak)| Observation {
            rows_in: rows as f64,
            rows_kept: rows as f64,
            peak: peak as f64,
        })
        .collect();
    fit::fit(&obs)
}

fn ratio(a: f64, b: f64) -> f64 {
    if b.abs() > f64::EPSILON {
        a / b
    } else {
        f64::NAN
    }
}

impl Comparison {
    /// Fits both sides' (rows, peak) points.
    pub fn of(oomlab: &[(u64, u64)], pandas: &[(u64, u64)]) -> Result<Self> {
        let (o, p) = (fit_rows(oomlab)?, fit_rows(pandas)?);
        Ok(Self {
            per_row_ratio: ratio(o.bytes_per_row_in, p.bytes_per_row_in),
            fixed_ratio: ratio(o.fixed_bytes, p.fixed_bytes),
            oomlab: o,
            pandas: p,
        })
    }
}

impl StrategyFidelity {
    /// Compares a strategy's points (ascending scales).
    pub fn analyze(strategy: &str, mut points: Vec<FidelityPoint>) -> Result<Self> {
        points.sort_by(|a, b| a.scale.total_cmp(&b.scale));
        let side = |f: &dyn Fn(&FidelityPoint) -> Option<u64>| -> Vec<(u64, u64)> {
            points
                .iter()
                .filter_map(|p| f(p).map(|v| (p.rows, v)))
                .collect()
        };
        let overall = Comparison::of(
            &side(&|p| Some(p.oomlab_peak_bytes)),
            &side(&|p| Some(p.pandas_peak_bytes)),
        )
        .with_context(|| format!("fitting {strategy}"))?;
        let mut stages = Vec::new();
        if let Some(first) = points.first() {
            // In the replay's stage order where it knows the strategy.
            let mut order: Vec<String> = crate::strategy::by_name(strategy)
                .map(|s| s.stages().iter().map(|n| n.to_string()).collect())
                .unwrap_or_default();
            order.retain(|n| first.oomlab_stages.contains_key(n));
            for name in first.oomlab_stages.keys() {
                if !order.contains(name) {
                    order.push(name.clone());
                }
            }
            for stage in &order {
                let o = side(&|p| p.oomlab_stages.get(stage).copied());
                let pd = side(&|p| p.pandas_stages.get(stage).copied());
                if o.len() == points.len() && pd.len() == points.len() {
                    stages.push(StageComparison {
                        stage: stage.clone(),
                        comparison: Comparison::of(&o, &pd)?,
                    });
                }
            }
        }
        let calibrated_holdout = calibrated_holdout(&points)?;
        let holdout = if points.len() >= 3 {
            let (last, rest) = points.split_last().context("no points")?;
            // As the memory model predicts: each stage's peak is affine in the
            // rows, the process peak is the largest stage (which stage sets it
            // changes with size: loading the profile at small scales, a merge
            // at large ones).
            let x = last.rows as f64;
            let fits = stage_fits(rest, |p| &p.pandas_stages)?;
            let predicted = if fits.is_empty() {
                peak_fit(rest, |p| p.pandas_peak_bytes)?.eval(x, x)
            } else {
                fits.iter().map(|f| f.eval(x, x)).fold(f64::MIN, f64::max)
            };
            Some(Holdout::of(rest, last, predicted))
        } else {
            None
        };
        Ok(Self {
            strategy: strategy.to_string(),
            points,
            per_row: PerRowCost::of(&stages),
            calibrated_holdout,
            overall,
            stages,
            holdout,
        })
    }
}

/// One side's fit of every stage measured at all `points` (`stages` picks
/// the side), in stage-name order.
fn stage_fits(
    points: &[FidelityPoint],
    stages: fn(&FidelityPoint) -> &BTreeMap<String, u64>,
) -> Result<Vec<Fit>> {
    let Some(first) = points.first() else {
        return Ok(Vec::new());
    };
    let mut fits = Vec::new();
    for stage in stages(first).keys() {
        let pts: Vec<(u64, u64)> = points
            .iter()
            .filter_map(|p| stages(p).get(stage).map(|v| (p.rows, *v)))
            .collect();
        if pts.len() == points.len() {
            fits.push(fit_rows(&pts)?);
        }
    }
    Ok(fits)
}

/// One side's fit of the whole run's peak over `points`.
fn peak_fit(points: &[FidelityPoint], peak: fn(&FidelityPoint) -> u64) -> Result<Fit> {
    fit_rows(&points.iter().map(|p| (p.rows, peak(p))).collect::<Vec<_>>())
}

/// The replay's fit of its fastest-growing stage (the one that sets the
/// peak at large sizes) over `points`; the whole-run fit when no stage was
/// measured at every point. Calibrating on it, not on the largest stage at
/// the fitted sizes, keeps a fixed-cost stage that peaks only at small sizes
/// (loading the profile) from posing as the per-row cost.
fn replay_growth_fit(points: &[FidelityPoint]) -> Result<Fit> {
    let mut best: Option<Fit> = None;
    for f in stage_fits(points, |p| &p.oomlab_stages)? {
        if best
            .as_ref()
            .is_none_or(|b| f.bytes_per_row_in > b.bytes_per_row_in)
        {
            best = Some(f);
        }
    }
    match best {
        Some(f) => Ok(f),
        None => peak_fit(points, |p| p.oomlab_peak_bytes),
    }
}

/// See [`StrategyFidelity::calibrated_holdout`] (needs three scales).
fn calibrated_holdout(points: &[FidelityPoint]) -> Result<Option<Holdout>> {
    if points.len() < 3 {
        return Ok(None);
    }
    let Some((last, rest)) = points.split_last() else {
        return Ok(None);
    };
    // The replay's predictions at the fitted scales, from fits on them only.
    let growth = replay_growth_fit(rest)?;
    let at = |rows: u64| growth.eval(rows as f64, rows as f64);
    let observed: Vec<ObservedPeak> = rest
        .iter()
        .map(|p| ObservedPeak {
            rows_in: p.rows,
            max_ranking_samples: 0,
            peak_bytes: p.pandas_peak_bytes,
            predicted_bytes: at(p.rows),
            ..ObservedPeak::default()
        })
        .collect();
    let scaling = crate::model::affine_scaling(&observed);
    let predicted = scaling.apply(at(last.rows));
    Ok(Some(Holdout::of(rest, last, predicted)))
}

impl Fidelity {
    /// The strategy called `name`.
    pub fn strategy(&self, name: &str) -> Option<&StrategyFidelity> {
        self.strategies.iter().find(|s| s.strategy == name)
    }

    /// legacy's per-row cost of the peak over optimized's, on each side:
    /// (oomlab, pandas).
    pub fn legacy_optimized_ratios(&self) -> Option<(f64, f64)> {
        let l = self.strategy("legacy")?.per_row.as_ref()?;
        let o = self.strategy("optimized")?.per_row.as_ref()?;
        Some((
            ratio(l.oomlab_bytes_per_row, o.oomlab_bytes_per_row),
            ratio(l.pandas_bytes_per_row, o.pandas_bytes_per_row),
        ))
    }

    /// Writes `fidelity.json` (atomically).
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).context("serializing the fidelity result")?;
        write_atomically(path, &json)
    }

    /// Reads a result written by `oomlab fidelity` (exit 2 when it cannot be used).
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            bad_input(format!(
                "{}: cannot read the fidelity result: {e} (run `oomlab fidelity` first)",
                path.display()
            ))
        })?;
        let value: Self = serde_json::from_str(&text).map_err(|e| {
            bad_input(format!(
                "{}: not an oomlab fidelity result: {e}",
                path.display()
            ))
        })?;
        if value.schema_version != FIDELITY_SCHEMA_VERSION {
            return Err(bad_input(format!(
                "{}: fidelity schema_version {} (this oomlab reads {FIDELITY_SCHEMA_VERSION}); rerun `oomlab fidelity`",
                path.display(),
                value.schema_version
            )));
        }
        Ok(value)
    }
}

/// The pandas peaks of `strategy` in a `--fidelity` file, for a model of
/// `scenario` (exit 2 when the file cannot be used, has none, or was measured
/// on another scenario: its peaks would calibrate another column mix).
pub fn observations(path: &Path, strategy: &str, scenario: &str) -> Result<Vec<ObservedPeak>> {
    let f = Fidelity::read(path)?;
    if f.scenario != scenario {
        return Err(bad_input(format!(
            "{}: a fidelity result of scenario `{}`, but the model is of `{scenario}`; run `oomlab fidelity` on the model's scenario",
            path.display(),
            f.scenario
        )));
    }
    // Without sampling, as observations a model calibrates to exactly as to
    // peaks seen in production.
    let points: Vec<ObservedPeak> = f
        .strategy(strategy)
        .map(|s| {
            s.points
                .iter()
                .map(|p| ObservedPeak {
                    rows_in: p.rows,
                    max_ranking_samples: 0,
                    peak_bytes: p.pandas_peak_bytes,
                    predicted_bytes: 0.0,
                    ..ObservedPeak::default()
                })
                .collect()
        })
        .unwrap_or_default();
    if points.is_empty() {
        return Err(bad_input(format!(
            "{}: no pandas points of `{strategy}` to calibrate with",
            path.display()
        )));
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(scale: f64, rows: u64, o: u64, p: u64) -> FidelityPoint {
        FidelityPoint {
            scale,
            rows,
            oomlab_peak_bytes: o,
            pandas_peak_bytes: p,
            pandas_repeats: vec![p],
            oomlab_stages: [("merge".to_string(), o)].into(),
            pandas_stages: [("merge".to_string(), p)].into(),
            oomlab_report: String::new(),
            pandas_report: String::new(),
        }
    }

    #[test]
    fn ratios_and_holdout_of_affine_sides() {
        let pts = [1000u64, 2000, 4000]
            .iter()
            .enumerate()
            .map(|(i, &n)| point(i as f64, n, 100 + 10 * n, 300 + 20 * n))
            .collect();
        let s = StrategyFidelity::analyze("legacy", pts).unwrap();
        assert!((s.overall.per_row_ratio - 0.5).abs() < 1e-9);
        assert!((s.overall.fixed_ratio - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(s.stages.len(), 1);
        let per_row = s.per_row.as_ref().unwrap();
        assert_eq!(per_row.oomlab_stage, "merge");
        assert!((per_row.ratio - 0.5).abs() < 1e-9);
        let h = s.holdout.unwrap();
        assert!(h.error.abs() < 1e-9, "{}", h.error);
        assert_eq!(h.rows, 4000);
    }
}
