//! The memory model of a team's own similarity command, in its own bytes.
//!
//! The replay's similarity model ([`super::similarity`]) is oomlab's idea of
//! the computation; the write-up's first OOM was the team's numpy. `oomlab
//! sweep --items a,b,c -- CMD` runs the command at several item counts and
//! over a grid of `SIMILARITY_MICRO_BATCH_SIZE` and `SIMILARITY_TOP_K`, and
//! this model fits its peak with the replay's terms:
//!
//! `peak = fixed + a N + c N B + d N K [+ e N²]`
//!
//! (N items, B the batch size, K the neighbours kept). The N² term is added
//! when the measurements need it: when the exponent of peak in N is above
//! [`QUADRATIC_EXPONENT`] (a full N x N matrix). A term the grid cannot
//! identify (one batch size: `N B` is a multiple of `N`) is dropped and the
//! model says so; advice then only names the knob values that were measured.
//! The knobs are advised by the replay model's rule ([`advise_knobs`]).

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::least_squares::solve;
use super::similarity::{advise_knobs, KnobAdvice, ThroughputPoint};
use super::ModelSource;
use crate::error::bad_input;
use crate::machine::MachineFacts;
use crate::report::write_atomically;
use crate::strategy::similarity::Knobs;
use crate::units::{format_bytes, format_count};

/// What a similarity command model's `kind` says, so `recommend --items`
/// and `check --items` tell it from the replay's similarity model.
pub const SIMILARITY_COMMAND_KIND: &str = "similarity-command";

/// Bumped whenever a reader of an older model would misread a newer one.
pub const SIMILARITY_COMMAND_SCHEMA_VERSION: u32 = 1;

/// Above this exponent of (peak - base) in N the fit gets an N² term: 2 is a
/// full N x N matrix, 1 micro-batches; the midpoint tells them apart.
pub const QUADRATIC_EXPONENT: f64 = 1.5;

/// The least share of the base knobs' peak growth over the measured item
/// counts that an N² term must carry to be kept. A noisy marginal exponent
/// (a few MiB of allocator noise on peaks that grow by a few MiB) can pass
/// [`QUADRATIC_EXPONENT`] for a micro-batched command; its N² coefficient is
/// then tiny inside the range and dominates at production size (0.015 B/item²
/// is 3.7 GB at 500,000 items). A full matrix's N² term carries nearly all
/// the growth.
pub const QUADRATIC_MIN_SHARE: f64 = 0.25;

/// Whether the N² term the exponent asks for carries a material share
/// ([`QUADRATIC_MIN_SHARE`]) of the peak's growth across `base_points`
/// (items, peak, base at the base knobs) in `fit`: the N² part between the
/// smallest and the largest item count against the measured rise.
pub fn quadratic_is_material(fit: &KnobFit, base_points: &[(u64, u64, u64)]) -> bool {
    let lo = base_points.iter().min_by_key(|p| p.0);
    let hi = base_points.iter().max_by_key(|p| p.0);
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return true;
    };
    let rise = hi.1 as f64 - lo.1 as f64;
    let (n0, n1) = (lo.0 as f64, hi.0 as f64);
    let squared = fit.bytes_per_item_squared * (n1 * n1 - n0 * n0);
    rise <= 0.0 || squared >= QUADRATIC_MIN_SHARE * rise
}

/// The exponent of peak in N with the fixed cost cancelled: 1 + the slope
/// of log(marginal cost) on log(N), the marginal cost taken between
/// consecutive item counts, so whatever does not grow with N (the
/// interpreter, numpy's and BLAS's buffers) drops out. About 2 for a full
/// matrix, 1 for micro-batches. `points` are (items, peak, base) at one set
/// of knobs; with only two item counts, the slope of log(peak - base) on
/// log(N) between them (base: RSS when the command's first stage started).
pub fn marginal_exponent(points: &[(u64, u64, u64)]) -> f64 {
    let mut p = points.to_vec();
    p.sort_unstable();
    p.dedup_by_key(|x| x.0);
    let xy: Vec<(f64, f64)> = p
        .windows(2)
        .filter_map(|w| {
            let dn = (w[1].0 - w[0].0) as f64;
            let dp = w[1].1 as f64 - w[0].1 as f64;
            (dp > 0.0).then(|| (((w[0].0 + w[1].0) as f64 / 2.0).ln(), (dp / dn).ln()))
        })
        .collect();
    if xy.len() < 2 {
        return match p.as_slice() {
            [a, b] if a.1 > a.2 && b.1 > b.2 => {
                (((b.1 - b.2) as f64).ln() - ((a.1 - a.2) as f64).ln())
                    / ((b.0 as f64).ln() - (a.0 as f64).ln())
            }
            _ => f64::NAN,
        };
    }
    let n = xy.len() as f64;
    let (mx, my) = (
        xy.iter().map(|q| q.0).sum::<f64>() / n,
        xy.iter().map(|q| q.1).sum::<f64>() / n,
    );
    let sxx: f64 = xy.iter().map(|q| (q.0 - mx).powi(2)).sum();
    let sxy: f64 = xy.iter().map(|q| (q.0 - mx) * (q.1 - my)).sum();
    if sxx > 0.0 {
        1.0 + sxy / sxx
    } else {
        f64::NAN
    }
}

/// One measured run of the command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnobPoint {
    /// Items (`{items}`).
    pub items: u64,
    /// `SIMILARITY_MICRO_BATCH_SIZE` (`{batch_size}`).
    pub micro_batch_size: u64,
    /// `SIMILARITY_TOP_K` (`{top_k}`).
    pub top_k: u64,
    /// The whole process tree's exact peak.
    pub peak_bytes: u64,
    /// The stage that set it (empty when the command logged no stage).
    pub peak_stage: String,
    /// RSS when the first stage started (the interpreter and its imports).
    pub base_bytes: u64,
    /// Wall time of the run, seconds (items/s of a batch size come from it).
    pub wall_s: f64,
    /// The run's `report.json`.
    pub report: String,
}

/// `peak = fixed + a N + c N B + d N K + e N²`, fitted by least squares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnobFit {
    pub fixed_bytes: f64,
    /// Bytes per item (the vectors, their normalised copy, ...).
    pub bytes_per_item: f64,
    /// Bytes per item per item of a micro-batch (the B x N block of scores
    /// and what is made of it: argpartition's int64 indices, a negated copy).
    pub bytes_per_item_per_batch_item: f64,
    /// Bytes per item per neighbour kept (the N x K indices and scores).
    pub bytes_per_item_per_neighbour: f64,
    /// Bytes per item² (0 unless the exponent asked for the term).
    pub bytes_per_item_squared: f64,
    /// Whether the exponent asked for the N² term.
    pub quadratic: bool,
    /// The terms the points identified (`items`, `items x batch`, ...).
    pub identified: Vec<String>,
    pub r2: f64,
    pub rmse_bytes: f64,
    /// Measured minus predicted, bytes, in the order of the points.
    pub residuals: Vec<f64>,
}

/// The names of the terms, in fit order.
const TERMS: [&str; 5] = ["fixed", "items", "items x batch", "items x top K", "items²"];

fn row(n: f64, b: f64, k: f64) -> [f64; 5] {
    [1.0, n, n * b, n * k, n * n]
}

impl KnobFit {
    /// Fits the points (the N² term only when `quadratic`).
    pub fn fit(points: &[KnobPoint], quadratic: bool) -> Result<Self> {
        let used = if quadratic { 5 } else { 4 };
        let terms: Vec<Vec<f64>> = (0..used)
            .map(|j| {
                points
                    .iter()
                    .map(|p| row(p.items as f64, p.micro_batch_size as f64, p.top_k as f64)[j])
                    .collect()
            })
            .collect();
        let y: Vec<f64> = points.iter().map(|p| p.peak_bytes as f64).collect();
        let s = solve(&terms, &y).context("fitting the similarity command's peaks")?;
        let c = |j: usize| s.coefficients.get(j).copied().unwrap_or(0.0);
        let mut fit = KnobFit {
            fixed_bytes: c(0),
            bytes_per_item: c(1),
            bytes_per_item_per_batch_item: c(2),
            bytes_per_item_per_neighbour: c(3),
            bytes_per_item_squared: c(4),
            quadratic,
            identified: TERMS
                .iter()
                .zip(&s.identified)
                .filter(|(_, kept)| **kept)
                .map(|(t, _)| t.to_string())
                .collect(),
            r2: 0.0,
            rmse_bytes: 0.0,
            residuals: Vec::new(),
        };
        fit.residuals = points
            .iter()
            .zip(&y)
            .map(|(p, y)| y - fit.eval(p.items, p.micro_batch_size, p.top_k))
            .collect();
        let ss_res: f64 = fit.residuals.iter().map(|e| e * e).sum();
        let mean = y.iter().sum::<f64>() / y.len().max(1) as f64;
        let ss_tot: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
        fit.r2 = if ss_tot > 0.0 {
            1.0 - ss_res / ss_tot
        } else {
            1.0
        };
        fit.rmse_bytes = (ss_res / y.len().max(1) as f64).sqrt();
        Ok(fit)
    }

    /// The fitted peak (not clamped) at N items, batch size B and top K.
    pub fn eval(&self, items: u64, b: u64, k: u64) -> f64 {
        let r = row(items as f64, b as f64, k as f64);
        self.fixed_bytes
            + self.bytes_per_item * r[1]
            + self.bytes_per_item_per_batch_item * r[2]
            + self.bytes_per_item_per_neighbour * r[3]
            + self.bytes_per_item_squared * r[4]
    }

    /// Whether the points told this term apart.
    pub fn has(&self, term: &str) -> bool {
        self.identified.iter().any(|t| t == term)
    }

    /// The fit in one line, as the sweep prints it.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "{} + {:.1} B/item",
            crate::units::format_bytes(self.fixed_bytes.max(0.0) as u64),
            self.bytes_per_item
        );
        if self.has("items x batch") {
            text += &format!(
                " + {:.2} B/item per batch item",
                self.bytes_per_item_per_batch_item
            );
        }
        if self.has("items x top K") {
            text += &format!(
                " + {:.2} B/item per neighbour",
                self.bytes_per_item_per_neighbour
            );
        }
        if self.has("items²") {
            text += &format!(" + {:.3} B x items²", self.bytes_per_item_squared);
        }
        text
    }
}

/// The held-out point and how far the fit on the others missed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldOutCheck {
    /// Item counts of the points fitted on.
    pub fitted_items: Vec<u64>,
    pub items: u64,
    pub micro_batch_size: u64,
    pub top_k: u64,
    pub measured_bytes: u64,
    pub predicted_bytes: f64,
    /// (predicted - measured) / measured, percent.
    pub error_pct: f64,
}

/// What a similarity command sweep measured and fitted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimilarityCommandModel {
    /// Always [`SIMILARITY_COMMAND_KIND`].
    pub kind: String,
    pub schema_version: u32,
    pub oomlab_version: String,
    pub created_at: String,
    /// The command (argv template, stage pattern, Python version).
    pub source: ModelSource,
    /// numpy version the command printed, if any.
    #[serde(default)]
    pub numpy: Option<String>,
    /// Scenario whose data `{data_dir}` held, and its production size.
    pub scenario: String,
    pub scenario_path: String,
    pub production_items: u64,
    pub dimension: u64,
    /// The knobs every item count ran with (the grids vary one at a time around them).
    pub base: Knobs,
    /// Batch sizes measured (`--batch-sizes`), ascending.
    pub batch_sizes: Vec<u64>,
    /// Top-K values measured (`--top-k`), ascending.
    pub top_ks: Vec<u64>,
    pub machine: MachineFacts,
    pub points: Vec<KnobPoint>,
    /// Exponent of peak in N at the base knobs, fixed cost cancelled
    /// ([`marginal_exponent`]).
    pub exponent: f64,
    /// Fitted on every point.
    pub fit: KnobFit,
    pub held_out: HeldOutCheck,
    /// Items/s and peak of each batch size, at the largest fitted N.
    pub throughput: Vec<ThroughputPoint>,
}

impl SimilarityCommandModel {
    /// Predicted peak at N items, batch B and top K (K as the command can
    /// keep it: at most N - 1 neighbours), never below zero.
    pub fn predict(&self, items: u64, b: u64, k: u64) -> f64 {
        let k = k.min(items.saturating_sub(1)).max(1);
        self.fit.eval(items, b, k).max(0.0)
    }

    /// Measured items/s of a batch size.
    pub fn items_per_s(&self, b: u64) -> Option<f64> {
        self.throughput
            .iter()
            .find(|t| t.micro_batch_size == b)
            .map(|t| t.items_per_s)
    }

    /// The knobs for `items` under `limit`, by the replay model's rule,
    /// among the values measured only.
    pub fn advise(
        &self,
        items: u64,
        limit: f64,
    ) -> Result<std::result::Result<KnobAdvice, KnobAdvice>> {
        advise_knobs(
            (&self.batch_sizes, &self.top_ks),
            limit,
            |b, k| Ok(self.predict(items, b, k)),
            |b| self.items_per_s(b),
        )
    }

    /// The most items whose predicted peak at (B, K) stays within `limit`
    /// (`None`: not even one item).
    pub fn max_items(&self, b: u64, k: u64, limit: f64) -> Option<u64> {
        let fits = |n: u64| self.predict(n, b, k) <= limit;
        if !fits(1) {
            return None;
        }
        let (mut lo, mut hi) = (1u64, 2u64);
        while fits(hi) {
            lo = hi;
            if hi >= 1 << 40 {
                return Some(hi);
            }
            hi *= 2;
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(lo)
    }

    /// The largest item count measured.
    pub fn measured_items(&self) -> u64 {
        self.points.iter().map(|p| p.items).max().unwrap_or(0)
    }

    /// The same model with every prediction multiplied by `factor` (a kill
    /// at a limit above the prediction: the command needs more than measured).
    pub fn scaled(&self, factor: f64) -> Self {
        let mut m = self.clone();
        let f = &mut m.fit;
        f.fixed_bytes *= factor;
        f.bytes_per_item *= factor;
        f.bytes_per_item_per_batch_item *= factor;
        f.bytes_per_item_per_neighbour *= factor;
        f.bytes_per_item_squared *= factor;
        m
    }

    /// "the command's own bytes: `python3 ...` (Python 3.11.7, numpy 2.3.5)".
    pub fn describe(&self) -> String {
        let mut text = self.source.describe(Default::default());
        if let Some(v) = &self.numpy {
            text += &format!(", numpy {v}");
        }
        text
    }

    /// What the sweep prints and its `sweep.md` holds: the exponent, the
    /// held-out check, the per-item costs and the throughput.
    pub fn summary(&self) -> String {
        let m = self;
        let h = &m.held_out;
        let f = &m.fit;
        let mut t = format!("Similarity command sweep: in {}\n", m.describe());
        t += &format!(
            "Exponent of peak in items (base knobs SIMILARITY_MICRO_BATCH_SIZE={}, SIMILARITY_TOP_K={}): {:.2}{}\n",
            m.base.micro_batch_size,
            m.base.top_k,
            m.exponent,
            if f.quadratic {
                " (a full matrix: the fit has an items² term)"
            } else if m.exponent > QUADRATIC_EXPONENT {
                " (no items² term: one fitted would carry under a quarter of the measured growth, noise)"
            } else {
                " (no items² term)"
            }
        );
        t += &format!(
            "Held-out check: fitted on {} items, predicting {} items at SIMILARITY_MICRO_BATCH_SIZE={}, SIMILARITY_TOP_K={}: measured {}, predicted {}, error {:+.1}%\n",
            h.fitted_items.iter().map(|n| format_count(*n)).collect::<Vec<_>>().join(", "),
            format_count(h.items),
            h.micro_batch_size,
            h.top_k,
            format_bytes(h.measured_bytes),
            format_bytes(h.predicted_bytes.max(0.0) as u64),
            h.error_pct
        );
        t += &format!(
            "Costs (fitted on all {} runs, R² {:.4}): {}\n",
            m.points.len(),
            f.r2,
            f.describe()
        );
        t += &format!("  per item: {:.1} B\n", f.bytes_per_item);
        let said = |term: &str, v: f64, what: &str| {
            if f.has(term) {
                format!("  {what}: {v:.2} B\n")
            } else {
                format!("  {what}: not identified (one value measured)\n")
            }
        };
        t += &said(
            "items x batch",
            f.bytes_per_item_per_batch_item,
            "per item per batch item (SIMILARITY_MICRO_BATCH_SIZE)",
        );
        t += &said(
            "items x top K",
            f.bytes_per_item_per_neighbour,
            "per item per neighbour (SIMILARITY_TOP_K)",
        );
        if f.quadratic {
            t += &said("items²", f.bytes_per_item_squared, "per item²");
        }
        if !m.throughput.is_empty() {
            t += &format!(
                "Throughput at {} items (whole run, SIMILARITY_TOP_K={}):\n",
                format_count(m.throughput[0].items),
                m.base.top_k
            );
            for p in &m.throughput {
                t += &format!(
                    "  SIMILARITY_MICRO_BATCH_SIZE={:<5} {:>8.0} items/s  peak {}\n",
                    p.micro_batch_size,
                    p.items_per_s,
                    format_bytes(p.peak_bytes)
                );
            }
        }
        t += &format!(
            "At production size ({} items, base knobs): predicted {}\n",
            format_count(m.production_items),
            format_bytes(
                m.predict(m.production_items, m.base.micro_batch_size, m.base.top_k) as u64
            )
        );
        t
    }

    /// Writes the model (atomically).
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).context("serializing the model")?;
        write_atomically(path, &json)
    }

    /// Reads a model written by a similarity command sweep (exit 2 when it
    /// cannot be used).
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad_input(format!("{}: cannot read the model: {e}", path.display())))?;
        let model: Self = serde_json::from_str(&text).map_err(|e| {
            bad_input(format!(
                "{}: not an oomlab similarity command model: {e}",
                path.display()
            ))
        })?;
        if model.kind != SIMILARITY_COMMAND_KIND
            || model.schema_version != SIMILARITY_COMMAND_SCHEMA_VERSION
        {
            return Err(bad_input(format!(
                "{}: kind `{}` schema_version {} (this oomlab reads `{SIMILARITY_COMMAND_KIND}` version {SIMILARITY_COMMAND_SCHEMA_VERSION}); rerun the sweep",
                path.display(),
                model.kind,
                model.schema_version
            )));
        }
        Ok(model)
    }
}

/// Whether `path` holds a similarity command model (its `kind`), so the
/// commands that also read the replay's models can tell which they got.
pub fn is_similarity_command_model(path: &Path) -> bool {
    #[derive(Deserialize)]
    struct Kind {
        #[serde(default)]
        kind: String,
    }
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<Kind>(&t).ok())
        .is_some_and(|k| k.kind == SIMILARITY_COMMAND_KIND)
}

/// The `.env` lines for a command's knobs: the write-up's comment, the two
/// settings, and which model said so.
pub fn env_snippet(advice: &KnobAdvice, items: u64) -> String {
    format!(
        "cat >> .env << EOF\n# 相似度计算优化（{} items, predicted peak {}）\nSIMILARITY_MICRO_BATCH_SIZE={}\nSIMILARITY_TOP_K={}\nEOF\n",
        crate::units::format_count(items),
        crate::units::format_bytes(advice.predicted_bytes as u64),
        advice.micro_batch_size,
        advice.top_k
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(n: u64, b: u64, k: u64, peak: f64) -> KnobPoint {
        KnobPoint {
            items: n,
            micro_batch_size: b,
            top_k: k,
            peak_bytes: peak as u64,
            peak_stage: String::new(),
            base_bytes: 0,
            wall_s: 1.0,
            report: String::new(),
        }
    }

    #[test]
    fn an_items_squared_term_is_kept_only_when_it_carries_the_growth() {
        // A full matrix: 4 B per item² over 30 MiB.
        let full: Vec<KnobPoint> = [2000u64, 3000, 4000]
            .iter()
            .map(|&n| point(n, 20, 200, 30e6 + 4.0 * (n * n) as f64 + 100.0 * n as f64))
            .collect();
        let base = |ps: &[KnobPoint]| -> Vec<(u64, u64, u64)> {
            ps.iter().map(|p| (p.items, p.peak_bytes, 0)).collect()
        };
        let fit = KnobFit::fit(&full, true).unwrap();
        assert!(quadratic_is_material(&fit, &base(&full)));
        // Micro-batches whose middle peak is 50 kB low: a positive items²
        // coefficient (0.05 B) that carries 9% of the growth, noise.
        let noisy: Vec<KnobPoint> = [(2000u64, 0.0), (3000, -50e3), (4000, 0.0)]
            .iter()
            .map(|&(n, e)| point(n, 20, 200, 30e6 + 3300.0 * n as f64 + e))
            .collect();
        let fit = KnobFit::fit(&noisy, true).unwrap();
        assert!(!quadratic_is_material(&fit, &base(&noisy)));
    }

    fn model(points: Vec<KnobPoint>, quadratic: bool) -> SimilarityCommandModel {
        SimilarityCommandModel {
            kind: SIMILARITY_COMMAND_KIND.into(),
            schema_version: SIMILARITY_COMMAND_SCHEMA_VERSION,
            oomlab_version: String::new(),
            created_at: String::new(),
            source: ModelSource::Replay,
            numpy: None,
            scenario: "t".into(),
            scenario_path: String::new(),
            production_items: 500_000,
            dimension: 128,
            base: Knobs {
                micro_batch_size: 50,
                top_k: 100,
            },
            batch_sizes: vec![20, 50, 200],
            top_ks: vec![50, 100, 200],
            machine: MachineFacts::default(),
            fit: KnobFit::fit(&points, quadratic).unwrap(),
            points,
            exponent: 1.0,
            held_out: HeldOutCheck {
                fitted_items: Vec::new(),
                items: 0,
                micro_batch_size: 0,
                top_k: 0,
                measured_bytes: 0,
                predicted_bytes: 0.0,
                error_pct: 0.0,
            },
            throughput: [20u64, 50, 200]
                .iter()
                .map(|&b| ThroughputPoint {
                    micro_batch_size: b,
                    items: 8000,
                    items_per_s: b as f64,
                    peak_bytes: 0,
                })
                .collect(),
        }
    }

    fn truth(n: u64, b: u64, k: u64) -> f64 {
        3e7 + 1024.0 * n as f64 + 16.0 * (n * b) as f64 + 12.0 * (n * k) as f64
    }

    #[test]
    fn advice_fits_the_limit_and_items_grow_to_it() {
        let mut pts = Vec::new();
        for n in [4000, 6000, 8000] {
            for (b, k) in [(50, 100), (20, 100), (200, 100), (50, 50), (50, 200)] {
                pts.push(point(n, b, k, truth(n, b, k)));
            }
        }
        let m = model(pts, false);
        assert!((m.fit.bytes_per_item_per_batch_item - 16.0).abs() < 1e-6);
        assert!((m.predict(500_000, 50, 200) - truth(500_000, 50, 200)).abs() < 1.0);
        // Generous: the largest K, the fastest batch size.
        let a = m.advise(500_000, 64e9).unwrap().unwrap();
        assert_eq!((a.micro_batch_size, a.top_k), (200, 200));
        // Just under B=200's need at K=200: B=50 at K=200.
        let a = m
            .advise(500_000, truth(500_000, 200, 200) - 1.0)
            .unwrap()
            .unwrap();
        assert_eq!((a.micro_batch_size, a.top_k), (50, 200));
        assert!(a.predicted_bytes <= truth(500_000, 200, 200));
        let most = m.max_items(50, 200, 4e9).unwrap();
        assert!(m.predict(most, 50, 200) <= 4e9 && m.predict(most + 1, 50, 200) > 4e9);
        // Scaled by a kill: every figure grows.
        assert!(
            (m.scaled(2.0).predict(1000, 50, 200) - 2.0 * m.predict(1000, 50, 200)).abs() < 1.0
        );
        assert!(m.max_items(50, 200, 1.0).is_none());
    }

    #[test]
    fn the_exponent_cancels_a_large_fixed_cost() {
        // 60 MB that does not grow with N (numpy, BLAS buffers) beside a
        // 16 B x N² matrix: log(peak - base) would say about 1.5.
        let quad = |n: u64| (n, 60_000_000 + 1349 * n + 16 * n * n, 30_000_000);
        let e = marginal_exponent(&[quad(1000), quad(1500), quad(2000)]);
        assert!(e > 1.9, "{e}");
        let lin = |n: u64| (n, 60_000_000 + 4000 * n, 30_000_000);
        let e = marginal_exponent(&[lin(1000), lin(1500), lin(2000)]);
        assert!((e - 1.0).abs() < 1e-9, "{e}");
        assert!(marginal_exponent(&[lin(1000)]).is_nan());
    }

    #[test]
    fn a_full_matrix_gets_its_square_term() {
        let pts: Vec<KnobPoint> = [4000u64, 6000, 8000]
            .iter()
            .map(|&n| point(n, 50, 200, 3e7 + 1000.0 * n as f64 + 16.0 * (n * n) as f64))
            .collect();
        let f = KnobFit::fit(&pts, true).unwrap();
        assert!((f.bytes_per_item_squared - 16.0).abs() < 1e-6, "{f:?}");
        assert!(f.has("items²") && !f.has("items x batch"));
        assert!(f.describe().contains("items²"));
    }
}
