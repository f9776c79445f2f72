//! The memory model of item-item similarity, and the knobs it recommends.
//!
//! The first OOM of the write-up: the full N x N score matrix (legacy) grows
//! quadratically in the items N, the micro-batched top-K (optimized) linearly.
//! `oomlab sweep` on a similarity scenario measures both at several N, fits
//! `peak = fixed + a x N + b x N^2` (legacy) and `peak = fixed + a x N`
//! (optimized) by the same least squares as ranking prep ([`super::fit`]),
//! checks the fits on the held-out largest N, reports the exponent of each
//! strategy's peak in N, and measures throughput (items/s) and peak for
//! several `SIMILARITY_MICRO_BATCH_SIZE` values. `recommend --items N` reads
//! the saved model and proposes the knobs: memory first (what fits the budget),
//! then speed (the fastest batch size that fits).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::fit::{self, Fit, Observation};
use crate::error::bad_input;
use crate::machine::MachineFacts;
use crate::report::write_atomically;
use crate::strategy::similarity::PAIR_BYTES;

/// Bumped whenever a reader of an older model would misread a newer one.
pub const SIMILARITY_MODEL_SCHEMA_VERSION: u32 = 1;

/// Where `sweep` saves the latest similarity model and `recommend --items`
/// reads it (beside the ranking model, which it does not replace).
pub const DEFAULT_SIMILARITY_MODEL_PATH: &str = "reports/similarity-model.json";

/// File stem of a similarity sweep's picture.
pub const SWEEP_PICTURE: &str = "sweep";

/// The micro-batch sizes whose throughput a sweep measures (the write-up's
/// 20, 50 and 100, and one larger).
pub const BATCH_SIZES: [u64; 4] = [20, 50, 100, 200];

/// `SIMILARITY_TOP_K` values `recommend` tries, largest (most neighbours) first.
pub const TOP_K_CANDIDATES: [u64; 4] = [200, 100, 50, 20];

/// What a similarity sweep measured and fitted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimilarityModel {
    pub schema_version: u32,
    pub oomlab_version: String,
    pub created_at: String,
    /// Scenario name and file.
    pub scenario: String,
    pub scenario_path: String,
    /// Items at production size (scale 1).
    pub production_items: u64,
    pub dimension: u64,
    /// The knobs the scale points ran with.
    pub micro_batch_size: u64,
    pub top_k: u64,
    pub machine: MachineFacts,
    /// Per strategy: measured points and fits.
    pub strategies: Vec<StrategyModel>,
    /// Optimized at one N with each of [`BATCH_SIZES`].
    pub throughput: Vec<ThroughputPoint>,
    /// Extra bytes per item for each item added to a micro-batch, fitted from
    /// the throughput runs (the B x N block and the product's temporaries).
    pub bytes_per_batch_item_per_item: f64,
}

/// One strategy's points and fits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StrategyModel {
    pub strategy: String,
    pub points: Vec<SimilarityPoint>,
    /// Fitted on every point.
    pub fit: Fit,
    /// Fitted on all but the largest N.
    pub holdout_fit: Fit,
    /// Items of the held-out point.
    pub holdout_items: u64,
    /// (predicted - measured) / measured at the held-out point.
    pub holdout_error: f64,
    /// Slope of log(peak - process base) on log(N): about 2 for a full
    /// matrix, about 1 for micro-batches.
    pub exponent: f64,
}

/// One measured run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimilarityPoint {
    pub scale: f64,
    pub items: u64,
    pub peak_bytes: u64,
    /// RSS when the first stage started: the process's own base.
    pub base_bytes: u64,
    pub stage: String,
}

/// Throughput and peak of one micro-batch size.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThroughputPoint {
    pub micro_batch_size: u64,
    pub items: u64,
    pub items_per_s: f64,
    pub peak_bytes: u64,
}

/// The observation of a point for a strategy's fit: legacy regresses on N and
/// N^2, optimized on N alone.
fn observation(strategy: &str, p: &SimilarityPoint) -> Observation {
    let n = p.items as f64;
    Observation {
        rows_in: n,
        rows_kept: if strategy == "legacy" { n * n } else { n },
        peak: p.peak_bytes as f64,
    }
}

/// Least-squares slope of log(peak - base) on log(N).
fn exponent(points: &[SimilarityPoint]) -> f64 {
    let xy: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| p.peak_bytes > p.base_bytes && p.items > 0)
        .map(|p| {
            (
                (p.items as f64).ln(),
                ((p.peak_bytes - p.base_bytes) as f64).ln(),
            )
        })
        .collect();
    if xy.len() < 2 {
        return f64::NAN;
    }
    let n = xy.len() as f64;
    let (mx, my) = (
        xy.iter().map(|p| p.0).sum::<f64>() / n,
        xy.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxx: f64 = xy.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = xy.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx > 0.0 {
        sxy / sxx
    } else {
        f64::NAN
    }
}

impl StrategyModel {
    /// Fits a strategy's points (at least 3 distinct N: the largest is held out).
    pub fn fit(strategy: &str, mut points: Vec<SimilarityPoint>) -> Result<Self> {
        points.sort_by_key(|p| p.items);
        if points.len() < 3 {
            return Err(bad_input(format!(
                "similarity sweep: {} point(s) of `{strategy}`; expected at least 3 scales (the largest is held out)",
                points.len()
            )));
        }
        let obs: Vec<Observation> = points.iter().map(|p| observation(strategy, p)).collect();
        let all = fit::fit(&obs).with_context(|| format!("fitting {strategy}"))?;
        let (held, rest) = obs.split_last().context("no points")?;
        let holdout_fit = fit::fit(rest).with_context(|| format!("fitting {strategy}"))?;
        let predicted = holdout_fit.eval(held.rows_in, held.rows_kept);
        let holdout_items = points.last().map_or(0, |p| p.items);
        Ok(Self {
            strategy: strategy.to_string(),
            exponent: exponent(&points),
            holdout_error: (predicted - held.peak) / held.peak,
            holdout_items,
            holdout_fit,
            fit: all,
            points,
        })
    }

    /// Predicted peak at `items` with the knobs the points ran with.
    pub fn predict(&self, items: u64) -> f64 {
        let n = items as f64;
        let kept = if self.strategy == "legacy" { n * n } else { n };
        self.fit.eval(n, kept).max(0.0)
    }
}

impl SimilarityModel {
    /// The model of `strategy`.
    pub fn strategy(&self, strategy: &str) -> Result<&StrategyModel> {
        self.strategies
            .iter()
            .find(|s| s.strategy == strategy)
            .ok_or_else(|| bad_input(format!("the similarity model has no strategy `{strategy}`")))
    }

    /// Predicted peak of the micro-batched strategy at `items` with batch size
    /// `b` and top `k`: the fit at the measured knobs, moved by the measured
    /// cost of a batch item and the top-K pairs' bytes.
    pub fn predict_optimized(&self, items: u64, b: u64, k: u64) -> Result<f64> {
        let base = self.strategy("optimized")?.predict(items);
        let n = items as f64;
        let db = b as f64 - self.micro_batch_size as f64;
        let dk =
            k.min(items.saturating_sub(1)) as f64 - self.top_k.min(items.saturating_sub(1)) as f64;
        Ok(
            (base + db * n * self.bytes_per_batch_item_per_item + dk * n * PAIR_BYTES as f64)
                .max(0.0),
        )
    }

    /// Measured items/s of a batch size (`None` when it was not measured).
    pub fn items_per_s(&self, b: u64) -> Option<f64> {
        self.throughput
            .iter()
            .find(|t| t.micro_batch_size == b)
            .map(|t| t.items_per_s)
    }

    /// Writes the model (atomically).
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).context("serializing the similarity model")?;
        write_atomically(path, &json)
    }

    /// Reads a model written by `sweep` (exit 2 with a clear message when it cannot be used).
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            bad_input(format!(
                "{}: cannot read the similarity model: {e} (run `oomlab sweep --scenario scenarios/similarity.toml` first, or pass --model)",
                path.display()
            ))
        })?;
        let model: Self = serde_json::from_str(&text).map_err(|e| {
            bad_input(format!(
                "{}: not an oomlab similarity model: {e}",
                path.display()
            ))
        })?;
        if model.schema_version != SIMILARITY_MODEL_SCHEMA_VERSION {
            return Err(bad_input(format!(
                "{}: similarity model schema_version {} (this oomlab reads {SIMILARITY_MODEL_SCHEMA_VERSION}); rerun `oomlab sweep`",
                path.display(),
                model.schema_version
            )));
        }
        Ok(model)
    }
}

/// The model file `recommend --items` reads: the flag, else the default path.
pub fn similarity_model_path(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SIMILARITY_MODEL_PATH))
}

/// Least-squares slope of peak on the batch size at a fixed N, per item: the
/// bytes one more batch item costs for each of the N items.
pub fn batch_item_cost(points: &[ThroughputPoint]) -> f64 {
    if points.len() < 2 {
        return 4.0;
    }
    let n = points.len() as f64;
    let mx = points
        .iter()
        .map(|p| p.micro_batch_size as f64)
        .sum::<f64>()
        / n;
    let my = points.iter().map(|p| p.peak_bytes as f64).sum::<f64>() / n;
    let sxx: f64 = points
        .iter()
        .map(|p| (p.micro_batch_size as f64 - mx).powi(2))
        .sum();
    let sxy: f64 = points
        .iter()
        .map(|p| (p.micro_batch_size as f64 - mx) * (p.peak_bytes as f64 - my))
        .sum();
    let items = points[0].items.max(1) as f64;
    // At least the f32 block itself; the measured slope when it says more.
    if sxx > 0.0 {
        (sxy / sxx / items).max(4.0)
    } else {
        4.0
    }
}

/// The knobs `recommend` proposes for a budget.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KnobAdvice {
    pub micro_batch_size: u64,
    pub top_k: u64,
    pub predicted_bytes: f64,
    /// Measured items/s of that batch size.
    pub items_per_s: Option<f64>,
}

/// Memory first, then speed: the largest top K (of [`TOP_K_CANDIDATES`], not
/// above the scenario's) for which some measured batch size fits `limit`, and
/// with it the fastest batch size that fits. `Err(floor)` when nothing fits:
/// the smallest prediction of all.
pub fn advise(
    model: &SimilarityModel,
    items: u64,
    limit: f64,
) -> Result<std::result::Result<KnobAdvice, KnobAdvice>> {
    let mut batches: Vec<u64> = model
        .throughput
        .iter()
        .map(|t| t.micro_batch_size)
        .collect();
    if batches.is_empty() {
        batches.push(model.micro_batch_size);
    }
    let top_ks: Vec<u64> = TOP_K_CANDIDATES
        .iter()
        .copied()
        .filter(|&k| k <= model.top_k.max(20))
        .collect();
    advise_knobs(
        (&batches, &top_ks),
        limit,
        |b, k| model.predict_optimized(items, b, k),
        |b| model.items_per_s(b),
    )
}

/// The rule of [`advise`] over any model: `top_ks` are tried largest first
/// (neighbours are what the pipeline is for), and at the first K where some
/// batch size fits, the fastest one that fits (`speed`, items/s) is chosen.
/// Shared by the replay's model and a similarity command's model, so both
/// answer by the same rule. `Err(floor)` when nothing fits.
pub fn advise_knobs(
    (batches, top_ks): (&[u64], &[u64]),
    limit: f64,
    predict: impl Fn(u64, u64) -> Result<f64>,
    speed: impl Fn(u64) -> Option<f64>,
) -> Result<std::result::Result<KnobAdvice, KnobAdvice>> {
    let mut ks = top_ks.to_vec();
    ks.sort_unstable_by(|a, b| b.cmp(a));
    ks.dedup();
    let mut floor: Option<KnobAdvice> = None;
    for &k in &ks {
        let mut best: Option<KnobAdvice> = None;
        for &b in batches {
            let predicted = predict(b, k)?;
            let advice = KnobAdvice {
                micro_batch_size: b,
                top_k: k,
                predicted_bytes: predicted,
                items_per_s: speed(b),
            };
            if floor.as_ref().is_none_or(|f| predicted < f.predicted_bytes) {
                floor = Some(advice.clone());
            }
            if predicted <= limit {
                let faster = match &best {
                    None => true,
                    Some(cur) => advice.items_per_s.unwrap_or(0.0) > cur.items_per_s.unwrap_or(0.0),
                };
                if faster {
                    best = Some(advice);
                }
            }
        }
        if let Some(best) = best {
            return Ok(Ok(best));
        }
    }
    floor
        .map(Err)
        .ok_or_else(|| bad_input("the similarity model has no batch sizes to advise on"))
}

/// The write-up's `.env` lines for the similarity knobs.
pub fn env_lines(advice: &KnobAdvice) -> String {
    format!(
        "# 相似度计算优化\nSIMILARITY_MICRO_BATCH_SIZE={}\nSIMILARITY_TOP_K={}\n",
        advice.micro_batch_size, advice.top_k
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(f: impl Fn(f64) -> f64) -> Vec<SimilarityPoint> {
        [1000u64, 2000, 4000, 8000]
            .iter()
            .map(|&n| SimilarityPoint {
                scale: n as f64 / 8000.0,
                items: n,
                peak_bytes: f(n as f64) as u64,
                base_bytes: 10_000_000,
                stage: "x".into(),
            })
            .collect()
    }

    #[test]
    fn quadratic_and_linear_peaks_fit_with_their_exponents() {
        let legacy = StrategyModel::fit("legacy", points(|n| 1e7 + 4.0 * n * n)).unwrap();
        assert!((legacy.exponent - 2.0).abs() < 0.01, "{}", legacy.exponent);
        assert!(legacy.holdout_error.abs() < 1e-6);
        assert!((legacy.predict(500_000) - (1e7 + 1e12)).abs() / 1e12 < 1e-6);
        let optimized = StrategyModel::fit("optimized", points(|n| 1e7 + 2000.0 * n)).unwrap();
        assert!((optimized.exponent - 1.0).abs() < 0.01);
        assert!((optimized.predict(500_000) - (1e7 + 1e9)).abs() / 1e9 < 1e-6);
    }

    #[test]
    fn advice_is_memory_first_then_speed() {
        let optimized = StrategyModel::fit("optimized", points(|n| 1e7 + 2000.0 * n)).unwrap();
        let model = SimilarityModel {
            schema_version: SIMILARITY_MODEL_SCHEMA_VERSION,
            oomlab_version: String::new(),
            created_at: String::new(),
            scenario: "t".into(),
            scenario_path: String::new(),
            production_items: 500_000,
            dimension: 128,
            micro_batch_size: 50,
            top_k: 200,
            machine: MachineFacts::default(),
            strategies: vec![optimized],
            throughput: BATCH_SIZES
                .iter()
                .map(|&b| ThroughputPoint {
                    micro_batch_size: b,
                    items: 8000,
                    items_per_s: b as f64 * 10.0,
                    peak_bytes: 0,
                })
                .collect(),
            bytes_per_batch_item_per_item: 4.0,
        };
        let at = |b, k| model.predict_optimized(500_000, b, k).unwrap();
        // A generous budget: the fastest batch size, the scenario's top K.
        let a = advise(&model, 500_000, 1e12).unwrap().unwrap();
        assert_eq!((a.micro_batch_size, a.top_k), (200, 200));
        // Just below B=200's need: B=100 with the same K.
        let a = advise(&model, 500_000, at(200, 200) - 1.0)
            .unwrap()
            .unwrap();
        assert_eq!((a.micro_batch_size, a.top_k), (100, 200));
        // Below every B at K=200: a smaller K.
        let a = advise(&model, 500_000, at(20, 200) - 1.0).unwrap().unwrap();
        assert_eq!(a.top_k, 100);
        // Nothing fits: the floor is the smallest setting.
        let floor = advise(&model, 500_000, 1.0).unwrap().unwrap_err();
        assert_eq!((floor.micro_batch_size, floor.top_k), (20, 20));
    }
}
