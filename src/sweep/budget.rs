//! Choosing a sweep's sizes within a time budget (`sweep --budget 2m`): what
//! the command sweep and the replay sweep share.
//!
//! A user's guess of sizes is what made a prediction at production size
//! luck: too small and the per-row term drowns in noise, too large and the
//! sweep takes an hour. With a budget, oomlab starts small, measures how the
//! wall time grows with the rows ([`TimeModel`]), and spends the rest where
//! it narrows the 95% prediction interval at the target size the most per
//! second ([`choose`]): a larger size (the leverage of an extrapolation falls
//! as the measured range grows) or a repeat (which pins down the noise and
//! adds degrees of freedom). It stops when the interval is within
//! [`TARGET_HALF_WIDTH`] or when no step fits in what is left.

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

/// The largest size a budget sweep measures is the target divided by
/// `2^MIN_SHIFT`: measuring at the target would leave nothing to predict.
pub const MIN_SHIFT: u32 = 1;

/// The rows of ladder step `shift`: the target halved `shift` times.
pub fn ladder_rows(target_rows: u64, shift: u32) -> u64 {
    (target_rows >> shift).max(1)
}

/// The clock of a budget: how much is spent and how much is left.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub total: Duration,
    start: Instant,
}

impl Budget {
    /// A budget of `total`, starting now.
    pub fn start(total: Duration) -> Self {
        Budget {
            total,
            start: Instant::now(),
        }
    }

    /// Seconds spent so far.
    pub fn spent_secs(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Seconds left (0 when spent).
    pub fn left_secs(&self) -> f64 {
        (self.total.as_secs_f64() - self.spent_secs()).max(0.0)
    }
}

/// Wall time of one run as an affine function of its rows, from the runs so
/// far: what the next step would cost.
#[derive(Debug, Clone, Default)]
pub struct TimeModel {
    /// (rows, seconds) of every run.
    runs: Vec<(f64, f64)>,
}

impl TimeModel {
    /// Records a run of `rows` that took `secs`.
    pub fn add(&mut self, rows: u64, secs: f64) {
        self.runs.push((rows as f64, secs));
    }

    /// Predicted seconds of a run at `rows`: the least-squares line through
    /// the runs when they span two sizes or more (never below the slowest
    /// run at a size at most `rows`), else the one size's time scaled in
    /// proportion (an overestimate, since part of a run's time is fixed).
    pub fn predict(&self, rows: u64) -> f64 {
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

    /// The longest run so far, seconds.
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

/// Why a budget sweep stopped, in words.
pub fn stop_reason(half_width: f64, reached: bool) -> String {
    if reached {
        format!(
            "the interval at the target is within ±{:.0}% (±{:.1}%)",
            TARGET_HALF_WIDTH * 100.0,
            half_width * 100.0
        )
    } else if half_width.is_finite() {
        format!(
            "no further step fits in the budget (interval ±{:.1}% at the target, short of ±{:.0}%: a larger budget narrows it)",
            half_width * 100.0,
            TARGET_HALF_WIDTH * 100.0
        )
    } else {
        "no further step fits in the budget, and the points do not yet give an interval (a larger budget does)".into()
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
    }
}
