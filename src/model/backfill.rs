//! Intervals for models written before intervals: a `model.json` keeps the
//! points every variant was fitted on, so the spread of each fit (its
//! `(XᵀX)⁻¹` and residual error) can be recomputed from them on load. The
//! coefficients are left exactly as written; only the missing spread is
//! filled, so a committed model answers with an interval without a re-sweep.

use super::{Model, VariantModel};

/// Fills the spread of every fit that lacks one from its variant's points
/// (a variant without points, or whose refit fails, is left without).
pub fn fill_spreads(model: &mut Model) {
    let columns_ref = if model.columns.at > 0 {
        model.columns.at
    } else {
        model.scenario.production.profile_numeric_columns
    };
    for v in &mut model.variants {
        let lacks = v.overall.spread.is_none() || v.stages.iter().any(|s| s.fit.spread.is_none());
        if !lacks || v.points.is_empty() {
            continue;
        }
        let names: Vec<&str> = v.stages.iter().map(|s| s.name.as_str()).collect();
        let Ok(refit) = VariantModel::fit(
            &v.name,
            &v.strategy,
            v.sampling,
            &names,
            v.points.clone(),
            columns_ref,
        ) else {
            continue;
        };
        for (s, r) in v.stages.iter_mut().zip(&refit.stages) {
            if s.fit.spread.is_none() {
                s.fit.spread = r.fit.spread.clone();
            }
        }
        if v.overall.spread.is_none() {
            v.overall.spread = refit.overall.spread;
        }
    }
}
