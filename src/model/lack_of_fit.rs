//! The held-out check carried into the intervals: a sweep fits on all but
//! its largest size, predicts that size, and the part of the error its noise
//! does not explain widens every interval past the largest size measured
//! (see [`super::interval::Extrapolation`]). One path for the replay sweep,
//! the command sweep, the budget sweeps and `model fit`.

use super::fit::Fit;
use super::interval::Extrapolation;
use super::{HeldOut, Point, VariantModel};

/// What the held-out check said of one variant: each held-out point against
/// the prediction of the fit made without it, and the largest absolute error
/// among them, the figure a model keeps per variant
/// ([`super::Validation::max_abs_error_pct`]), so no sweep works it out again.
#[derive(Debug, Clone, Default)]
pub struct Judged {
    /// Every held-out point, judged.
    pub points: Vec<HeldOut>,
    /// The largest `|error_pct|` of `points` (0 when none was held out).
    pub worst_abs_error_pct: f64,
}

impl Judged {
    fn of(points: Vec<HeldOut>) -> Self {
        let worst_abs_error_pct = points.iter().fold(0.0f64, |w, h| w.max(h.error_pct.abs()));
        Judged {
            points,
            worst_abs_error_pct,
        }
    }
}

/// A sweep's variants as it fits them one by one, with what their checks
/// said: the model's `variants`, its validation's held-out points and
/// worst error per variant, gathered in one place by the replay and the
/// command sweeps alike.
#[derive(Debug, Clone, Default)]
pub struct FittedVariants {
    pub variants: Vec<VariantModel>,
    pub held: Vec<HeldOut>,
    pub max_abs_error_pct: std::collections::BTreeMap<String, f64>,
}

impl FittedVariants {
    /// Files one variant fitted by [`VariantModel::fit_checked`].
    pub fn add(&mut self, (variant, judged): (VariantModel, Judged)) {
        self.held.extend(judged.points);
        self.max_abs_error_pct
            .insert(variant.name.clone(), judged.worst_abs_error_pct);
        self.variants.push(variant);
    }
}

impl VariantModel {
    /// Fits a variant on `points` the way every sweep does: on the points
    /// `held_out` leaves out first (the check), then on all of them, with
    /// the check's lack of fit carried into the final fit's intervals.
    /// Returns the final fit and the check's judgement of the held-out
    /// points, with the worst of them.
    pub fn fit_checked(
        (name, strategy, sampling): (&str, &str, Option<crate::sampling::SamplingMode>),
        stage_names: &[&str],
        points: Vec<Point>,
        columns_ref: u64,
        held_out: impl Fn(&Point) -> bool,
    ) -> anyhow::Result<(VariantModel, Judged)> {
        let train: Vec<Point> = points.iter().filter(|p| !held_out(p)).cloned().collect();
        let held: Vec<Point> = points.iter().filter(|p| held_out(p)).cloned().collect();
        let checked = VariantModel::fit(name, strategy, sampling, stage_names, train, columns_ref)?;
        let judged = held.iter().map(|p| checked.judge(p)).collect();
        let mut model =
            VariantModel::fit(name, strategy, sampling, stage_names, points, columns_ref)?;
        model.carry_lack_of_fit(&checked, &held);
        Ok((model, Judged::of(judged)))
    }

    /// Sets each stage's (and the overall peak's) extrapolation from how
    /// `checked`, fitted without `held_out`, predicted them: the largest
    /// bias over the held-out points.
    pub fn carry_lack_of_fit(&mut self, checked: &VariantModel, held_out: &[Point]) {
        let fitted_rows = checked.points.iter().map(|p| p.rows_in).max().unwrap_or(0) as f64;
        let judge = |check: &Fit, p: &Point, measured: u64| -> Option<Extrapolation> {
            let columns = (p.columns > 0).then_some(p.columns);
            let point = match columns {
                Some(c) => check.eval_at(p.rows_in as f64, p.rows_kept as f64, c as f64),
                None => check.eval(p.rows_in as f64, p.rows_kept as f64),
            };
            let half = check
                .interval((p.rows_in, p.rows_kept), columns, point)
                .zip(check.spread.as_ref())
                .map(|(i, s)| ((i.high_bytes - i.low_bytes) / 2.0, s.dof + s.repeat_dof));
            Extrapolation::from_check(
                (fitted_rows, p.rows_in as f64),
                point - measured as f64,
                half,
            )
        };
        let worst = |found: Vec<Extrapolation>| {
            found
                .into_iter()
                .max_by(|a, b| a.bias_bytes.total_cmp(&b.bias_bytes))
        };
        for stage in &mut self.stages {
            let Some(check) = checked.stages.iter().find(|s| s.name == stage.name) else {
                continue;
            };
            let found = held_out
                .iter()
                .filter_map(|p| judge(&check.fit, p, *p.stage_peaks.get(&stage.name)?))
                .collect();
            if let (Some(s), Some(e)) = (stage.fit.spread.as_mut(), worst(found)) {
                s.extrapolation = Some(e);
            }
        }
        let found = held_out
            .iter()
            .filter_map(|p| judge(&checked.overall, p, p.peak_bytes))
            .collect();
        if let (Some(s), Some(e)) = (self.overall.spread.as_mut(), worst(found)) {
            s.extrapolation = Some(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::Scaling;

    fn point(rows: u64, peak: u64) -> Point {
        Point {
            scale: rows as f64 / 1e6,
            rows_in: rows,
            rows_kept: rows,
            max_ranking_samples: 0,
            peak_bytes: peak,
            peak_stage: "s".into(),
            stage_peaks: BTreeMap::from([("s".to_string(), peak)]),
            report: String::new(),
            columns: 0,
            repeat_peaks: Vec::new(),
            repeat_stage_peaks: BTreeMap::new(),
        }
    }

    #[test]
    fn a_bend_at_the_largest_size_widens_the_interval_beyond_it() {
        // 100 B/row up to 4,000 rows, then only 50 B/row more: a straight
        // line through all of it misses the bend, and the check sees it.
        let rows = [1000u64, 2000, 3000, 4000, 8000];
        let bent: Vec<Point> = rows
            .iter()
            .map(|&r| {
                point(
                    r,
                    1_000_000 + 100 * r.min(4000) + 50 * r.saturating_sub(4000),
                )
            })
            .collect();
        let (v, judged) =
            VariantModel::fit_checked(("c", "c", None), &["s"], bent, 0, |p| p.rows_in >= 8000)
                .unwrap();
        assert_eq!(judged.points.len(), 1);
        assert_eq!(
            judged.worst_abs_error_pct,
            judged.points[0].error_pct.abs(),
            "{judged:?}"
        );
        let e = v.stages[0]
            .fit
            .spread
            .as_ref()
            .unwrap()
            .extrapolation
            .clone()
            .unwrap();
        assert!(e.bias_bytes > 150_000.0, "{e:?}");
        let near = v.predict(8000, 8000, Scaling::IDENTITY).interval.unwrap();
        let far = v.predict(64_000, 64_000, Scaling::IDENTITY);
        let i = far.interval.unwrap();
        // Past the held-out size the bias grows with the distance: at
        // 64,000 rows, 14 times the 4,000 rows it was seen over.
        assert!(
            i.high_bytes - far.peak_bytes >= 13.0 * e.bias_bytes,
            "{i:?} {e:?}"
        );
        assert!(near.high_bytes - near.low_bytes < i.high_bytes - i.low_bytes);
    }
}
