//! `MAX_RANKING_SAMPLES`: which rows a cap keeps, and what each way of choosing
//! them costs the long tail.
//!
//! The write-up samples uniformly (`sample(n=cap, random_state=42)`) and warns
//! that this starves long-tail datasets. Dataset popularity is Zipf-skewed, so a
//! uniform draw mostly thins the head *and* wipes out datasets that had only a
//! handful of impressions. The alternative offered here caps each dataset
//! instead (water-filling: every dataset keeps `min(n, m)` rows, with `m` the
//! largest per-dataset cap that fits), which cuts the head and keeps the tail.
//!
//! Both the `optimized` strategy (in its measured child) and the coverage
//! figures of `oomlab recommend` call these functions, so the coverage reported
//! for a setting is the coverage the replayed pipeline really had.

use std::collections::HashMap;

use anyhow::{Context, Result};
use polars::prelude::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::scenario::Scenario;

/// Tail thresholds the coverage figures count: datasets keeping at least 1 and
/// at least 10 samples (one sample lets a dataset be seen at all; ten let a
/// ranker learn something about it).
pub const TAIL_THRESHOLDS: [u64; 2] = [1, 10];

pub use crate::settings::{SamplingMode, SAMPLING_SEED};

/// Uniform sampling exactly as the pipeline does it: polars draws the row
/// indices from (height, cap, seed) only, so any frame of the same height keeps
/// the same rows.
pub fn uniform(df: &DataFrame, cap: usize) -> Result<DataFrame> {
    df.sample_n_literal(cap, false, Some(false), Some(SAMPLING_SEED))
        .map_err(anyhow::Error::from)
        .context("uniform sampling")
}

/// The rows capped sampling keeps, and the per-dataset cap it chose.
pub struct CappedSelection {
    /// `true` for each kept row, in the frame's order.
    pub mask: BooleanChunked,
    /// Every dataset keeps at most this many rows (a few keep one more, so the
    /// total is exactly the cap).
    pub per_dataset: u64,
}

/// Largest `m` with `sum(min(n_k, m)) <= cap`, given per-group counts.
pub fn water_level(counts: &[u64], cap: u64) -> u64 {
    let kept = |m: u64| counts.iter().map(|&n| n.min(m)).sum::<u64>();
    let (mut lo, mut hi) = (0u64, counts.iter().copied().max().unwrap_or(0));
    if kept(hi) <= cap {
        return hi;
    }
    // Invariant: kept(lo) <= cap < kept(hi).
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if kept(mid) <= cap {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Chooses exactly `cap` rows (or all, when fewer) so each dataset keeps at most
/// `m` of them, `m` as large as possible; which rows of a dataset stay, and which
/// datasets keep the `m+1`-th row that fills the cap, follow a shuffle seeded
/// with [`SAMPLING_SEED`].
pub fn capped(dataset_ids: &Column, cap: usize) -> Result<CappedSelection> {
    let n = dataset_ids.len();
    let groups: Vec<u32> = {
        let ids = dataset_ids
            .as_materialized_series()
            .cast(&DataType::Int64)
            .map_err(anyhow::Error::from)
            .context("reading dataset ids for capped sampling")?;
        let ids = ids.i64()?;
        let mut index: HashMap<Option<i64>, u32> = HashMap::new();
        ids.iter()
            .map(|id| {
                let next = index.len() as u32;
                *index.entry(id).or_insert(next)
            })
            .collect()
    };
    let group_count = groups.iter().map(|&g| g as usize + 1).max().unwrap_or(0);
    let mut counts = vec![0u64; group_count];
    for &g in &groups {
        counts[g as usize] += 1;
    }
    let m = water_level(&counts, cap as u64);
    let mut extra = (cap as u64).saturating_sub(counts.iter().map(|&c| c.min(m)).sum::<u64>());
    drop(counts);
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(SAMPLING_SEED));
    let mut seen = vec![0u64; group_count];
    let mut keep = vec![false; n];
    for &row in &order {
        let g = groups[row as usize] as usize;
        if seen[g] < m || (seen[g] == m && extra > 0) {
            if seen[g] == m {
                extra -= 1;
            }
            keep[row as usize] = true;
        }
        seen[g] += 1;
    }
    drop(order);
    drop(groups);
    Ok(CappedSelection {
        mask: BooleanChunked::from_slice("keep".into(), &keep),
        per_dataset: m,
    })
}

/// Keeps `cap` rows of `df` the way `mode` says (`cap` must be below the height).
pub fn sample(
    df: &DataFrame,
    cap: usize,
    mode: SamplingMode,
    key: &str,
) -> Result<(DataFrame, Option<u64>)> {
    match mode {
        SamplingMode::Uniform => Ok((uniform(df, cap)?, None)),
        SamplingMode::Capped => {
            let selection = capped(df.column(key)?, cap)?;
            let kept = df.filter(&selection.mask)?;
            Ok((kept, Some(selection.per_dataset)))
        }
    }
}

/// How many datasets keep at least each of [`TAIL_THRESHOLDS`] samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    /// Datasets in the profile (the denominator).
    pub datasets: u64,
    /// Rows kept.
    pub rows: u64,
    /// Share of datasets with at least 1 sample.
    pub share_at_least_1: f64,
    /// Share of datasets with at least 10 samples.
    pub share_at_least_10: f64,
}

/// Counts the coverage of a column of dataset ids.
pub fn coverage_of(dataset_ids: &Column, datasets: u64) -> Result<Coverage> {
    let ids = dataset_ids
        .as_materialized_series()
        .cast(&DataType::Int64)?;
    let mut counts: HashMap<i64, u64> = HashMap::new();
    for id in ids.i64()?.iter().flatten() {
        *counts.entry(id).or_insert(0) += 1;
    }
    let share =
        |t: u64| counts.values().filter(|&&c| c >= t).count() as f64 / datasets.max(1) as f64;
    Ok(Coverage {
        datasets,
        rows: ids.len() as u64,
        share_at_least_1: share(TAIL_THRESHOLDS[0]),
        share_at_least_10: share(TAIL_THRESHOLDS[1]),
    })
}

/// Coverage of one cap, without sampling and under each mode.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CoverageRow {
    /// The cap applied to this data (0 = no sampling).
    pub cap: u64,
    pub none: Coverage,
    pub uniform: Coverage,
    pub capped: Coverage,
    /// The per-dataset cap capped sampling chose.
    pub per_dataset: u64,
}

/// Measures coverage on real (generated) rows after `dropna`: what the pipeline
/// had before sampling, after uniform sampling to `cap`, after capped sampling.
pub fn measure(working: &DataFrame, key: &str, cap: u64, datasets: u64) -> Result<CoverageRow> {
    let ids = working.column(key)?;
    let none = coverage_of(ids, datasets)?;
    if cap == 0 || cap >= working.height() as u64 {
        return Ok(CoverageRow {
            cap,
            none,
            uniform: none,
            capped: none,
            per_dataset: 0,
        });
    }
    let just_ids = DataFrame::new(working.height(), vec![ids.clone()])?;
    let uniform_ids = uniform(&just_ids, cap as usize)?;
    let selection = capped(ids, cap as usize)?;
    let capped_ids = just_ids.filter(&selection.mask)?;
    Ok(CoverageRow {
        cap,
        none,
        uniform: coverage_of(uniform_ids.column(key)?, datasets)?,
        capped: coverage_of(capped_ids.column(key)?, datasets)?,
        per_dataset: selection.per_dataset,
    })
}

/// P(N >= t) for N ~ Poisson(lambda), t small.
fn poisson_at_least(lambda: f64, t: u64) -> f64 {
    if t == 0 {
        return 1.0;
    }
    if lambda <= 0.0 {
        return 0.0;
    }
    if lambda > 50.0 + 10.0 * t as f64 {
        return 1.0;
    }
    let mut term = (-lambda).exp();
    let mut below = term;
    for j in 1..t {
        term *= lambda / j as f64;
        below += term;
    }
    (1.0 - below).clamp(0.0, 1.0)
}

/// Dataset popularity as the generator draws it: Zipf over ranks `1..=datasets`.
fn zipf_weights(datasets: u64, exponent: f64) -> Vec<f64> {
    let w: Vec<f64> = (1..=datasets).map(|k| (k as f64).powf(-exponent)).collect();
    let total: f64 = w.iter().sum();
    w.into_iter().map(|x| x / total).collect()
}

/// Coverage expected at a size too large to generate here (production), from the
/// scenario's own popularity law: dataset `k` gets `Poisson(rows * p_k)` rows
/// (the multinomial's marginals, to a very good approximation), uniform sampling
/// thins them to `Poisson(cap * p_k)`, capped sampling keeps `min(n_k, m)` with
/// `m` from the expected counts. `rows` are rows after `dropna`.
pub fn expected(scenario: &Scenario, datasets: u64, rows: u64, cap: u64) -> CoverageRow {
    let p = zipf_weights(datasets, scenario.ranking_samples.dataset_zipf_exponent);
    let share = |lambda_of: &dyn Fn(f64) -> f64, t: u64| {
        p.iter()
            .map(|&pk| poisson_at_least(lambda_of(pk), t))
            .sum::<f64>()
            / datasets.max(1) as f64
    };
    let at = |lambda_of: &dyn Fn(f64) -> f64, kept: u64| Coverage {
        datasets,
        rows: kept,
        share_at_least_1: share(lambda_of, TAIL_THRESHOLDS[0]),
        share_at_least_10: share(lambda_of, TAIL_THRESHOLDS[1]),
    };
    let full = |pk: f64| rows as f64 * pk;
    let none = at(&full, rows);
    if cap == 0 || cap >= rows {
        return CoverageRow {
            cap,
            none,
            uniform: none,
            capped: none,
            per_dataset: 0,
        };
    }
    let thinned = |pk: f64| cap as f64 * pk;
    let uniform = at(&thinned, cap);
    // Water level on expected counts (rounded), as `capped` computes it on real ones.
    let counts: Vec<u64> = p
        .iter()
        .map(|&pk| (rows as f64 * pk).round() as u64)
        .collect();
    let m = water_level(&counts, cap);
    let capped = Coverage {
        datasets,
        rows: cap,
        share_at_least_1: if m >= TAIL_THRESHOLDS[0] {
            none.share_at_least_1
        } else {
            0.0
        },
        share_at_least_10: if m >= TAIL_THRESHOLDS[1] {
            none.share_at_least_10
        } else {
            0.0
        },
    };
    CoverageRow {
        cap,
        none,
        uniform,
        capped,
        per_dataset: m,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn water_level_fills_the_cap() {
        let counts = [100, 10, 3, 1];
        assert_eq!(water_level(&counts, 114), 100);
        assert_eq!(water_level(&counts, 1000), 100);
        // min(n, 10) sums to 24; min(n, 11) to 25.
        assert_eq!(water_level(&counts, 24), 10);
        assert_eq!(water_level(&counts, 23), 9);
        assert_eq!(water_level(&counts, 0), 0);
    }

    #[test]
    fn capped_keeps_exactly_cap_and_the_tail() {
        // Dataset 1 has 1000 rows, datasets 2..=11 one row each.
        let mut ids: Vec<i64> = vec![1; 1000];
        ids.extend(2..=11);
        let column = Column::new("dataset_id".into(), ids);
        let selection = capped(&column, 100).unwrap();
        assert_eq!(selection.mask.sum().unwrap_or(0), 100);
        assert_eq!(selection.per_dataset, 90);
        let keep: Vec<bool> = (0..selection.mask.len())
            .map(|i| selection.mask.get(i).unwrap_or(false))
            .collect();
        assert!(
            keep[1000..].iter().all(|&k| k),
            "every one-row dataset is kept"
        );
        // Seeded: the same rows every time.
        let again = capped(&column, 100).unwrap();
        let again: Vec<bool> = (0..again.mask.len())
            .map(|i| again.mask.get(i).unwrap_or(false))
            .collect();
        assert_eq!(keep, again);
    }

    #[test]
    fn poisson_tail() {
        assert!((poisson_at_least(1.0, 1) - (1.0 - (-1.0f64).exp())).abs() < 1e-12);
        assert!(poisson_at_least(10.0, 10) > 0.5 && poisson_at_least(10.0, 10) < 0.6);
        assert_eq!(poisson_at_least(0.0, 1), 0.0);
        assert_eq!(poisson_at_least(1e6, 10), 1.0);
    }

    #[test]
    fn modes_parse() {
        use clap::ValueEnum;
        let parse = |s: &str| SamplingMode::from_str(s, false);
        assert_eq!(parse("capped").unwrap(), SamplingMode::Capped);
        assert_eq!(parse("uniform").unwrap(), SamplingMode::Uniform);
        assert!(parse("stratified").is_err());
        assert_eq!(SamplingMode::default().name(), "uniform");
    }
}
