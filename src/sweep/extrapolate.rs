//! Which variants a run feeds, and how big the next scale's children will be,
//! extrapolated from the scales this sweep already measured: preflight's
//! conservative estimate from the scenario's sizes would refuse scales the
//! smaller ones show to fit.

use std::collections::BTreeMap;

use crate::model::fit::Observation;
use crate::model::Point;
use crate::sampling::SamplingMode;
use crate::strategy::Strategy;

use super::tables::join_scales;
use super::VARIANTS;

/// The variants a measured run is a point of. An unsampled run (`cap` 0) is a
/// point of every variant of its strategy, since without a cap the way of
/// sampling changes nothing; a sampled run only of the variant sampled its way.
pub(super) fn variants_fed(strategy: &str, cap: u64, mode: SamplingMode) -> Vec<&'static str> {
    VARIANTS
        .iter()
        .filter(|(_, s, sampling)| {
            *s == strategy && (cap == 0 || sampling.is_none() || *sampling == Some(mode))
        })
        .map(|(name, _, _)| *name)
        .collect()
}

/// Chunks the smallest scale should span before `streaming`'s peak (a sawtooth
/// in rows mod chunk, of one chunk's working set) is close to affine in rows.
pub(super) const CHUNKS_FOR_AFFINE: u64 = 4;

/// Extra share added to a peak extrapolated from the sweep's smaller scales
/// before preflight compares it with the machine: the extrapolation is at
/// most one doubling away, and the held-out checks of this model stay within
/// a few percent, so a quarter is ample.
pub(super) const EXTRAPOLATION_SLACK: f64 = 0.25;

/// Preflight estimates for the strategies of a run at `rows_in` rows with
/// `MAX_RANKING_SAMPLES = cap`, extrapolated from the points this sweep has
/// measured so far (at least two smaller scales of the same variant). The
/// conservative estimate from the scenario's sizes is several times too high
/// for these strategies (it counts every frame at pandas' widths), and would
/// refuse scales the smaller ones show to fit.
pub(super) fn extrapolated_estimates(
    points: &BTreeMap<&str, Vec<Point>>,
    strategies: &[&'static dyn Strategy],
    (rows_in, columns): (u64, u64),
    cap: u64,
    mode: SamplingMode,
) -> BTreeMap<String, crate::preflight::Estimate> {
    let (kept, loaded) = points
        .values()
        .flatten()
        .filter(|p| p.max_ranking_samples == 0)
        .fold((0u64, 0u64), |(k, l), p| (k + p.rows_kept, l + p.rows_in));
    let ratio = if loaded > 0 {
        kept as f64 / loaded as f64
    } else {
        1.0
    };
    let full = (rows_in as f64 * ratio).round();
    let mut out = BTreeMap::new();
    for strategy in strategies {
        let Some(variant) = variants_fed(strategy.name(), cap, mode).first().copied() else {
            continue;
        };
        let Some(pts) = points.get(variant) else {
            continue;
        };
        let mut scales: Vec<f64> = pts.iter().map(|p| p.scale).collect();
        scales.sort_by(f64::total_cmp);
        scales.dedup();
        if scales.len() < 2 {
            continue;
        }
        let observations: Vec<Observation> = pts
            .iter()
            .map(|p| Observation {
                rows_in: p.rows_in as f64,
                rows_kept: p.rows_kept as f64,
                peak: p.peak_bytes as f64,
            })
            .collect();
        let point_columns: Vec<f64> = pts.iter().map(|p| p.columns as f64).collect();
        let Ok(f) =
            crate::model::fit::fit_with_columns(&observations, &point_columns, columns as f64)
        else {
            continue;
        };
        let kept = if cap > 0 { full.min(cap as f64) } else { full };
        let measured_max = pts.iter().map(|p| p.peak_bytes).max().unwrap_or(0) as f64;
        let predicted = f
            .eval_at(rows_in as f64, kept, columns as f64)
            .max(measured_max);
        if predicted.is_finite() && predicted > 0.0 {
            out.insert(
                strategy.name().to_string(),
                crate::preflight::Estimate {
                    bytes: (predicted * (1.0 + EXTRAPOLATION_SLACK)) as u64,
                    source: format!(
                        "extrapolated from this sweep's scales {}, +{:.0}%",
                        join_scales(&scales),
                        EXTRAPOLATION_SLACK * 100.0
                    ),
                },
            );
        }
    }
    out
}
