//! Choosing a sweep's sizes within a time budget (`sweep --budget 2m`): what
//! the command sweep and the replay sweep share.
//!
//! A user's guess of sizes is what made a prediction at production size
//! luck: too small and the per-row term drowns in noise (and a pandas 3
//! peak's per-row term at small sizes overstates the one at large sizes),
//! too large and the sweep takes an hour. With a budget, oomlab measures one
//! small size of a fixed ladder (the target halved [`START_SHIFT`] times),
//! learns how the wall time grows with the rows ([`TimeModel`]), and plans
//! the rest on the largest sizes whose runs fit in what is left
//! ([`next_planned`]: the top of the ladder that fits, and the two below it,
//! smallest first so each run's memory is extrapolated from smaller ones):
//! the closer the largest size is to the target, the shorter the
//! extrapolation and its error. Once that plan is measured, what is left goes
//! where it narrows the 95% interval at the target the most per second
//! ([`choose`]: a repeat where the spread is large, or a larger size). It
//! stops when the interval (widened by the held-out check's lack of fit,
//! [`crate::model::interval::Extrapolation`]) is within [`TARGET_HALF_WIDTH`]
//! or when no step fits in what is left; at most the one run that began
//! before the budget ended runs past it. Generating a size's data is not
//! counted against the budget: the ladder's sizes are fixed, so their data is
//! cached (`~/.cache/oomlab`) and reused by the next sweep, and the time spent
//! generating it is reported on its own.

use std::time::{Duration, Instant};

/// The interval half-width, as a share of the prediction, at which a budget
/// sweep stops early: ±5% is the precision a pre-deploy check asks for.
pub const TARGET_HALF_WIDTH: f64 = 0.05;

/// The smallest size of a budget sweep is the target divided by `2^START_SHIFT`
/// (1/64: 133,314 rows of 8,532,146). Smaller sizes cost hardly less: a
/// pandas pipeline's run is mostly its fixed cost in time as in memory (the
/// pandas 3 reference spends 8 s reading its profile whatever the rows), and
/// at 1/512 its peaks did not grow at all with the rows.
pub const START_SHIFT: u32 = 6;

/// The ladder's top rung as a share of the target: the largest size a
/// budget sweep measures. Near the target, so the extrapolation spans a
/// quarter of it (the held-out check's lack of fit is carried over one
/// span, not two as from half the target), yet short of it: measuring at
/// the target would leave nothing to predict.
pub const TOP_SHARE: (u64, u64) = (3, 4);

/// The rows of ladder step `shift`: the target halved `shift` times.
pub fn ladder_rows(target_rows: u64, shift: u32) -> u64 {
    (target_rows >> shift).max(1)
}

/// The ladder's top rung, [`TOP_SHARE`] of the target.
pub fn ladder_top(target_rows: u64) -> u64 {
    let (num, den) = TOP_SHARE;
    // In u128: the product cannot overflow, and the quotient fits back.
    ((u128::from(target_rows) * u128::from(num) / u128::from(den)) as u64).max(1)
}

/// Every rung of the ladder, smallest first: the target halved
/// [`START_SHIFT`] times up to halved once, then [`ladder_top`]. Fixed for a
/// target, so each rung's data is generated once and cached.
pub fn ladder(target_rows: u64) -> Vec<u64> {
    let mut rungs: Vec<u64> = (1..=START_SHIFT)
        .rev()
        .map(|s| ladder_rows(target_rows, s))
        .collect();
    rungs.push(ladder_top(target_rows));
    rungs.dedup();
    rungs
}

/// The clock of a budget: how much is spent and how much is left, less
/// the time spent generating data (not measuring), which is kept apart.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub total: Duration,
    start: Instant,
    excluded: Duration,
}

impl Budget {
    /// A budget of `total`, starting now.
    pub fn start(total: Duration) -> Self {
        Budget {
            total,
            start: Instant::now(),
            excluded: Duration::ZERO,
        }
    }

    /// Takes `spent` (generating data) out of the budget.
    pub fn exclude(&mut self, spent: Duration) {
        self.excluded += spent;
    }

    /// Seconds spent on measuring so far (wall time less what was excluded).
    pub fn spent_secs(&self) -> f64 {
        (self.start.elapsed().saturating_sub(self.excluded)).as_secs_f64()
    }

    /// Seconds excluded from the budget (data generation).
    pub fn excluded_secs(&self) -> f64 {
        self.excluded.as_secs_f64()
    }

    /// Wall seconds since the start, everything included.
    pub fn wall_secs(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Seconds left (0 when spent).
    pub fn left_secs(&self) -> f64 {
        (self.total.as_secs_f64() - self.spent_secs()).max(0.0)
    }
}

/// Wall time of one run as an affine function of its rows, from the runs so
/// far: what the next step would cost. A size's first run and its repeats
/// are priced apart: on a virtual machine whose host takes freed memory
/// back (virtio-balloon free page reporting, as on the 2-core machine this
/// was measured on), a run that touches more memory than the runs just
/// before it pays for every new page (8 GiB touched cold took 43 to 50 s,
/// right after 10 to 13 s), so the pandas 3 reference's first run at
/// 2,133,036 rows took 18.8 s and its repeat 3.3 s. Priced as a first run,
/// the largest size's repeat (39.6 s) never fitted in the 34 s left.
#[derive(Debug, Clone, Default)]
pub struct TimeModel {
    /// (rows, seconds) of every size's first run.
    runs: Vec<(f64, f64)>,
    /// A repeat's seconds over its size's first run's, for every repeat.
    repeat_ratios: Vec<f64>,
}

impl TimeModel {
    /// Records a run of `rows` that took `secs`: a first run of its size,
    /// or a repeat when a run of `rows` is already recorded.
    pub fn add(&mut self, rows: u64, secs: f64) {
        match self.first(rows) {
            Some(first) => self.repeat_ratios.push(secs / first.max(1e-3)),
            None => self.runs.push((rows as f64, secs)),
        }
    }

    /// Seconds of the first run at `rows`, if that size ran.
    fn first(&self, rows: u64) -> Option<f64> {
        let r = rows as f64;
        self.runs.iter().find(|(at, _)| *at == r).map(|(_, t)| *t)
    }

    /// Predicted seconds of another run at `rows`, a size already measured
    /// (else as [`TimeModel::predict`]): its first run's time times the
    /// largest repeat-to-first ratio seen, at most 1 (a repeat slower than
    /// its first run is jitter, and the first run's time is the price a
    /// machine whose repeats cost what first runs do was always given).
    pub fn predict_repeat(&self, rows: u64) -> f64 {
        let Some(first) = self.first(rows) else {
            return self.predict(rows);
        };
        let ratio = self
            .repeat_ratios
            .iter()
            .copied()
            .reduce(f64::max)
            .unwrap_or(1.0);
        first * ratio.min(1.0)
    }

    /// Predicted seconds of a first run at `rows`: the least-squares line
    /// through the sizes' first runs when they span two sizes or more (never
    /// below the slowest at a size at most `rows`), else the one size's time scaled in
    /// proportion (an overestimate, since part of a run's time is fixed).
    /// Past the largest size measured, never below the line through the two
    /// largest sizes' first runs either: a first run slowed by a cold
    /// start (the reference's probe at 133k rows took 19 s, its next size
    /// 4.6 s) flattens the least-squares slope, and a 6.4M-row run it
    /// promised in 44 s took 58 s, past the budget's end.
    pub fn predict(&self, rows: u64) -> f64 {
        self.fitted(rows).max(self.secant(rows as f64))
    }

    /// The slope of the two largest sizes' first runs, carried past the
    /// largest (0 up to it, or with fewer than two sizes).
    fn secant(&self, r: f64) -> f64 {
        let mut runs = self.runs.clone();
        runs.sort_by(|x, y| x.0.total_cmp(&y.0));
        match runs[..] {
            [.., (a, ta), (b, tb)] if r > b => tb + ((tb - ta) / (b - a)).max(0.0) * (r - b),
            _ => 0.0,
        }
    }

    /// The least-squares part of [`TimeModel::predict`].
    fn fitted(&self, rows: u64) -> f64 {
        let r = rows as f64;
        let floor = self
            .runs
            .iter()
            .filter(|(x, _)| *x <= r)
            .map(|(_, t)| *t)
            .fold(0.0, f64::max);
        let n = self.runs.len() as f64;
        if n == 0.0 {
            return 0.0;
        }
        let mx = self.runs.iter().map(|(x, _)| x).sum::<f64>() / n;
        let my = self.runs.iter().map(|(_, y)| y).sum::<f64>() / n;
        let sxx: f64 = self.runs.iter().map(|(x, _)| (x - mx).powi(2)).sum();
        let estimate = if sxx > 0.0 {
            let sxy: f64 = self.runs.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
            let slope = (sxy / sxx).max(0.0);
            my + slope * (r - mx)
        } else {
            my * r / mx.max(1.0)
        };
        estimate.max(floor)
    }

    /// The longest first run so far, seconds.
    pub fn longest(&self) -> f64 {
        self.runs.iter().map(|(_, t)| *t).fold(0.0, f64::max)
    }
}

/// One step a budget sweep could take next.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Rows of the run.
    pub rows: u64,
    /// True for another run at a size already measured.
    pub repeat: bool,
    /// Predicted seconds (run, and data generation for a new size).
    pub secs: f64,
    /// The interval's relative half-width at the target once it is done,
    /// as the current fit expects.
    pub half_width_after: f64,
}

/// The step that narrows the interval the most per second among those that
/// fit in `left_secs`; `None` when none fits or none narrows it.
pub fn choose(candidates: &[Candidate], half_width_now: f64, left_secs: f64) -> Option<&Candidate> {
    candidates
        .iter()
        .filter(|c| c.secs <= left_secs && c.half_width_after.is_finite())
        .filter(|c| !half_width_now.is_finite() || c.half_width_after < half_width_now)
        .max_by(|a, b| {
            let gain = |c: &Candidate| {
                let now = if half_width_now.is_finite() {
                    half_width_now
                } else {
                    // No interval yet: any step that gives one is worth its
                    // width's inverse.
                    1e6
                };
                (now - c.half_width_after) / c.secs.max(1e-3)
            };
            gain(a).total_cmp(&gain(b))
        })
}

/// What the plan says to do next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Plan {
    /// Run this size (rows).
    Run(u64),
    /// The largest sizes that fit are all measured.
    Measured,
    /// Not even the probe fits.
    Nothing,
}

/// The next size of the plan: the largest ladder size that `fits` (in
/// memory) whose runs, with those of the two ladder sizes below it, fit in
/// `left_secs` as `secs` predicts them (sizes in `measured` cost nothing),
/// and of those three the smallest not measured yet.
pub fn next_planned(
    target_rows: u64,
    measured: &[u64],
    secs: impl Fn(u64) -> f64,
    fits: impl Fn(u64) -> bool,
    left_secs: f64,
) -> Plan {
    let rungs = ladder(target_rows);
    for top in (0..rungs.len()).rev() {
        if !fits(rungs[top]) {
            continue;
        }
        let plan: Vec<u64> = rungs[top.saturating_sub(2)..=top]
            .iter()
            .copied()
            .filter(|r| !measured.contains(r))
            .collect();
        let cost: f64 = plan.iter().map(|&r| secs(r)).sum();
        if cost <= left_secs {
            return plan.iter().copied().min().map_or(Plan::Measured, Plan::Run);
        }
    }
    Plan::Nothing
}

/// Why a budget sweep stopped, in words.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// The interval at the target is within [`TARGET_HALF_WIDTH`].
    Narrow,
    /// No step fits in what is left of the budget.
    Spent,
    /// Steps fit, but none is expected to narrow the interval.
    NothingNarrows,
    /// The ladder's largest size ([`TOP_SHARE`] of the target) is measured,
    /// and nothing more fits or narrows (the replay does not repeat).
    Top,
    /// The interval is within [`TARGET_HALF_WIDTH`], but no size near the
    /// target ran twice before the budget ended: a run's own spread was
    /// never seen, so the width cannot be trusted to hold one run (the
    /// pandas 3 reference's ±3.5% from one run at 6.4M rows missed a
    /// production run whose pool gave memory back at another moment).
    Unrepeated,
}

/// Why a budget sweep stopped, in words.
pub fn stop_reason(half_width: f64, stop: Stop) -> String {
    let width = if half_width.is_finite() {
        format!("interval ±{:.1}% at the target", half_width * 100.0)
    } else {
        "the points do not yet give an interval".into()
    };
    match stop {
        Stop::Narrow => format!(
            "the largest sizes that fit were measured and the interval at the target is within ±{:.0}% (±{:.1}%)",
            TARGET_HALF_WIDTH * 100.0,
            half_width * 100.0
        ),
        Stop::Spent => format!(
            "no further run fits in what is left of the budget ({width}; ±{:.0}% asked: a larger budget reaches larger sizes)",
            TARGET_HALF_WIDTH * 100.0
        ),
        Stop::Top => format!(
            "the ladder's largest size ({}/{} of the target) is measured and no further run fits or narrows the interval ({width}; ±{:.0}% asked)",
            TOP_SHARE.0,
            TOP_SHARE.1,
            TARGET_HALF_WIDTH * 100.0
        ),
        Stop::Unrepeated => format!(
            "the interval at the target is within ±{:.0}% (±{:.1}%), but no size near the target ran twice before the budget ended: a run's own spread was not seen, so this width counts none (a larger budget repeats the largest size)",
            TARGET_HALF_WIDTH * 100.0,
            half_width * 100.0
        ),
        Stop::NothingNarrows => format!(
            "no run that fits is expected to narrow the interval ({width}; ±{:.0}% asked: the lack of fit beyond the largest size dominates, which only larger sizes reduce)",
            TARGET_HALF_WIDTH * 100.0
        ),
    }
}

/// What a stop reason adds when one run's own noise at the target (as a
/// share of the prediction, [`crate::model::interval::Spread::run_half_width`])
/// is wider than [`TARGET_HALF_WIDTH`]: then no budget reaches it, and
/// saying so keeps a user from buying minutes that cannot help.
pub fn noise_floor_note(run_half_width: Option<f64>) -> String {
    match run_half_width {
        Some(h) if h > TARGET_HALF_WIDTH => format!(
            "; one run's own spread at the target is ±{:.1}% (from the repeats, in proportion to the peak): no budget narrows an interval for one run below that",
            h * 100.0
        ),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_grows_affinely_and_never_below_a_smaller_run() {
        let mut t = TimeModel::default();
        t.add(1000, 1.0);
        // One size: proportional.
        assert!((t.predict(2000) - 2.0).abs() < 1e-9);
        t.add(2000, 1.5);
        assert!((t.predict(4000) - 2.5).abs() < 1e-9);
        assert_eq!(t.longest(), 1.5);
        // Below the measured sizes the line is not trusted below their times.
        assert!(t.predict(1500) >= 1.0);
    }

    #[test]
    fn a_repeat_is_priced_from_the_repeats_seen_not_as_a_first_run() {
        // The reference's settled budget sweep on a machine whose host takes
        // freed memory back: first runs pay for new pages, repeats do not.
        let mut t = TimeModel::default();
        for (rows, secs) in [(1_066_518, 3.9), (2_133_036, 18.8), (4_266_073, 39.6)] {
            t.add(rows, secs);
        }
        // Before any repeat, a repeat costs what the first run did.
        assert_eq!(t.predict_repeat(4_266_073), 39.6);
        t.add(2_133_036, 3.3);
        let next = t.predict_repeat(4_266_073);
        assert!((next - 39.6 * 3.3 / 18.8).abs() < 1e-9, "{next}");
        // A fast repeat does not flatten the price of a new size.
        assert!(t.predict(6_399_109) >= 39.6);
        // A size never measured is priced as a first run.
        assert_eq!(t.predict_repeat(6_399_109), t.predict(6_399_109));
        // A repeat slower than its first run is jitter: never priced above it.
        t.add(1_066_518, 7.8);
        assert_eq!(t.predict_repeat(4_266_073), 39.6);
    }

    #[test]
    fn a_width_that_counts_no_repeat_is_not_called_narrow() {
        let why = stop_reason(0.035, Stop::Unrepeated);
        assert!(why.contains("±3.5%") && why.contains("ran twice"), "{why}");
        assert!(!stop_reason(0.035, Stop::Narrow).contains("ran twice"));
    }

    #[test]
    fn a_slow_first_run_does_not_flatten_the_time_past_the_largest_size() {
        // The reference's budget sweep: a cold probe, then runs that grow
        // about 10 s per million rows.
        let mut t = TimeModel::default();
        for (rows, secs) in [
            (133_314, 19.0),
            (266_629, 4.6),
            (2_133_036, 14.2),
            (4_266_073, 35.4),
        ] {
            t.add(rows, secs);
        }
        let next = t.predict(6_399_109);
        assert!(
            (next - (35.4 + (35.4 - 14.2) / 2_133_037.0 * 2_133_036.0)).abs() < 0.1,
            "{next}"
        );
        // Within the sizes measured the line (and the floor) still rule.
        assert!(t.predict(3_000_000) >= 14.2);
    }

    #[test]
    fn choose_prefers_narrowing_per_second_within_what_is_left() {
        let c = |rows, secs, after| Candidate {
            rows,
            repeat: false,
            secs,
            half_width_after: after,
        };
        let cands = [c(1, 1.0, 0.09), c(2, 10.0, 0.05), c(4, 100.0, 0.01)];
        // 0.01 per second against 0.005 and 0.0009.
        assert_eq!(choose(&cands, 0.10, 1000.0).unwrap().rows, 1);
        assert_eq!(choose(&cands[1..], 0.10, 50.0).unwrap().rows, 2);
        assert!(choose(&cands, 0.10, 0.5).is_none());
        assert!(choose(&[c(1, 1.0, 0.2)], 0.10, 10.0).is_none());
        assert_eq!(ladder_rows(8_532_146, START_SHIFT), 133_314);
        assert_eq!(ladder_top(8_532_146), 6_399_109);
        assert_eq!(ladder_top(u64::MAX), u64::MAX / 4 * 3 + 2);
        assert_eq!(noise_floor_note(Some(0.03)), "");
        assert!(noise_floor_note(Some(0.081)).contains("±8.1%"));
    }

    #[test]
    fn the_plan_takes_the_largest_sizes_that_fit_smallest_first() {
        let target = 64_000;
        assert_eq!(
            ladder(target),
            [1000, 2000, 4000, 8000, 16_000, 32_000, 48_000]
        );
        // A second a run plus a second per 8,000 rows: the top three sizes
        // (48,000, 32,000, 16,000 rows) cost 7 + 5 + 3 = 15 s.
        let secs = |r: u64| 1.0 + r as f64 / 8000.0;
        let all = |_: u64| true;
        assert_eq!(
            next_planned(target, &[1000], secs, all, 15.0),
            Plan::Run(16_000)
        );
        assert_eq!(
            next_planned(target, &[1000, 16_000], secs, all, 12.0),
            Plan::Run(32_000)
        );
        // Too little left for the top: the plan moves down the ladder.
        assert_eq!(
            next_planned(target, &[1000], secs, all, 6.0),
            Plan::Run(2000)
        );
        // Memory rules the top out.
        assert_eq!(
            next_planned(target, &[1000], secs, |r| r < 32_000, 100.0),
            Plan::Run(4000)
        );
        assert_eq!(
            next_planned(target, &[1000, 16_000, 32_000, 48_000], secs, all, 100.0),
            Plan::Measured
        );
        // Nothing more fits: the plan at the bottom is the probe alone, measured.
        assert_eq!(
            next_planned(target, &[1000], secs, all, 0.5),
            Plan::Measured
        );
        assert_eq!(next_planned(target, &[], secs, all, 0.5), Plan::Nothing);
    }
}
