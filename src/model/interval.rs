//! Prediction intervals: how far a stage's peak at a new size may land from
//! the fitted line, from the fit's own residuals and the spread of repeats.
//!
//! A pre-deploy check wants an upper bound, not a point: a prediction of
//! 10.21 GiB that happens to be 0.6% off is luck of the chosen sizes unless
//! the model can say how sure it is. For a least-squares fit `y = X b + e`
//! with `p` identified terms and `n` points, a new run at `x0` lands inside
//! `x0 b ± t(0.975, n - p) x s x sqrt(1 + x0 (XᵀX)⁻¹ x0ᵀ)` with 95%
//! probability (the textbook prediction interval): `s` is the residuals'
//! standard error, the `1` a new run's own noise, and the quadratic form the
//! uncertainty of the coefficients, which grows with the distance from the
//! measured sizes (an extrapolation to 8.5M rows from sizes of 1M pays for it
//! here). Points that are medians of repeats (`sweep --repeat`) hide a single
//! run's noise; the pooled spread of the repeats widens `s` when it is larger
//! (pandas 3's fixed pyarrow pool moves a peak by hundreds of MiB from run to
//! run at the same size).

use serde::{Deserialize, Serialize};

/// The confidence of every interval oomlab prints, as words use it.
pub const LEVEL_PERCENT: u32 = 95;

/// What a fit needs to give an interval at any size: the coefficients'
/// unscaled covariance and the noise, stored beside the coefficients in
/// `model.json` (absent in models fitted before intervals: no interval).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// The coefficients' covariance over one run's `σ²`, over the fit's six
    /// terms (1, rows_in, rows_kept, d, rows_in x d, rows_kept x d with
    /// `d = columns - columns_ref`), in raw units: `(XᵀX)⁻¹` when every
    /// point is one run, less when points are medians of repeats
    /// ([`super::fit::fit_medians`]); rows and columns of terms the fit
    /// dropped are zero.
    pub xtx_inv: Vec<Vec<f64>>,
    /// The column count `d` is centred on (fixed at fit time, so re-centring
    /// the coefficients at another count leaves the covariance valid).
    #[serde(default)]
    pub columns_ref: f64,
    /// Residual standard error, bytes: `sqrt(SS_res / (n - p))` (0 when
    /// `dof` is 0).
    pub residual_sd_bytes: f64,
    /// Residual degrees of freedom, `n - p`.
    pub dof: u32,
    /// Pooled standard deviation of single runs around their point's
    /// median, bytes (0 without repeats).
    #[serde(default)]
    pub repeat_sd_bytes: f64,
    /// Degrees of freedom of that pooled spread (runs minus points).
    #[serde(default)]
    pub repeat_dof: u32,
    /// Pooled standard deviation of single runs as a share of their
    /// point's mean (0 without repeats). A run's noise grows with what it
    /// allocates: pandas 3's pyarrow pool keeps or returns ~1 GiB of a
    /// 10 GiB peak from run to run, while at 1/64 of the size repeats
    /// differ by tens of MiB. Carried to a larger predicted peak in
    /// proportion, so repeats at small sizes do not promise a narrow
    /// interval at a large one.
    #[serde(default)]
    pub repeat_share: f64,
    /// The lack of fit the held-out check saw, carried past the largest
    /// size measured (`None`: no check, or a model from before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extrapolation: Option<Extrapolation>,
}

/// What the held-out check says of a straight line beyond the sizes
/// measured. The textbook interval assumes the line holds out there; a
/// pandas 3 peak whose per-row term falls with the rows (pyarrow's fixed
/// pool) does not, and an interval at 16x the largest size missed by 9%.
/// The check fits on all but the largest size and predicts it: the part of
/// that error the noise does not explain (`sqrt(error² - se²)`, `se` the
/// check's own standard error of prediction) is a bias over the distance
/// from the largest fitted size to the held-out one, and is assumed to grow
/// in proportion beyond it. The interval at `rows` past the held-out size
/// adds `bias x (rows - holdout) / (holdout - fitted)` in quadrature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Extrapolation {
    /// Rows loaded of the held-out (largest) size.
    pub holdout_rows: f64,
    /// Rows loaded of the largest size the check was fitted on.
    pub fitted_rows: f64,
    /// The held-out error beyond its noise, bytes (0: none seen).
    pub bias_bytes: f64,
}

impl Extrapolation {
    /// From the check's prediction error at the held-out size (bytes) and
    /// the half-width of its 95% interval there (`None`: no interval, the
    /// whole error counts). `None` when the sizes give no distance.
    pub fn from_check(
        (fitted_rows, holdout_rows): (f64, f64),
        error_bytes: f64,
        check_half_width: Option<(f64, u32)>,
    ) -> Option<Self> {
        if holdout_rows <= fitted_rows || !error_bytes.is_finite() {
            return None;
        }
        let se = check_half_width.map_or(0.0, |(half, dof)| half / t_975(dof));
        let bias = (error_bytes * error_bytes - se * se).max(0.0).sqrt();
        Some(Extrapolation {
            holdout_rows,
            fitted_rows,
            bias_bytes: if bias.is_finite() { bias } else { 0.0 },
        })
    }

    /// The bias carried to `rows_in` as a 95% half-width (0 up to the
    /// held-out size): `bias_bytes` is one draw of the lack of fit over a
    /// span, on the scale of a standard deviation (the check's noise is
    /// taken out of it as one), so it is carried as
    /// [`LACK_OF_FIT_Z`] times it. Added raw, a held-out error of 0.1%
    /// gave the pandas 3 reference an interval of ±0.1% at twice the
    /// largest size, where production runs landed 0.15% off.
    pub fn at(&self, rows_in: f64) -> f64 {
        let span = self.holdout_rows - self.fitted_rows;
        if span <= 0.0 || rows_in <= self.holdout_rows {
            return 0.0;
        }
        LACK_OF_FIT_Z * self.bias_bytes * (rows_in - self.holdout_rows) / span
    }
}

/// The normal 97.5% quantile: the held-out lack of fit, a standard
/// deviation's worth, carried as a 95% half-width.
pub const LACK_OF_FIT_Z: f64 = 1.959_964;

/// A two-sided interval of a predicted peak, bytes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub low_bytes: f64,
    pub high_bytes: f64,
}

impl Interval {
    /// Half the width as a share of `point` (the ±x% the sweep's stop rule
    /// and the tables use).
    pub fn relative_half_width(&self, point: f64) -> f64 {
        (self.high_bytes - self.low_bytes) / 2.0 / point.abs().max(1.0)
    }
}

impl Spread {
    /// The noise a new run whose value is `point` carries and its degrees
    /// of freedom: the largest of the residuals' spread, the repeats'
    /// spread and the repeats' share of `point`, with the degrees of
    /// freedom of the estimate chosen (pooling the residuals' with the
    /// repeats' gave a spread read off one residual the t of two, and the
    /// pandas 3 reference an interval of ±0.1% that missed a production
    /// run). `None` when neither says anything (as many terms as points,
    /// no repeats): no interval can be given.
    fn noise(&self, point: f64) -> Option<(f64, u32)> {
        let share = self.repeat_share * point.abs();
        [
            (self.residual_sd_bytes, self.dof),
            (self.repeat_sd_bytes, self.repeat_dof),
            (share, self.repeat_dof),
        ]
        .into_iter()
        .filter(|(_, dof)| *dof > 0)
        .max_by(|a, b| a.0.total_cmp(&b.0))
    }

    /// One run's standard deviation at a value of `point`, bytes (0
    /// without a spread): what a repeat there is expected to move by.
    pub fn run_sd(&self, point: f64) -> f64 {
        self.noise(point).map_or(0.0, |(sd, _)| sd)
    }

    /// The half-width of one run's own noise at a value of `point`, 95%, as
    /// the repeats show it (their spread, or their share of `point`): the
    /// floor of any interval there, which no number of runs narrows (more
    /// runs only pin the line down). `None` without repeats: residuals mix
    /// a run's noise with the line's lack of fit and cannot say "runs at
    /// one size differ".
    pub fn run_half_width(&self, point: f64) -> Option<f64> {
        if self.repeat_dof == 0 {
            return None;
        }
        let sd = self.repeat_sd_bytes.max(self.repeat_share * point.abs());
        let half = t_975(self.repeat_dof) * sd;
        half.is_finite().then_some(half)
    }

    /// The half-width of the 95% prediction interval of one new run at
    /// `rows_in` loaded, `rows_kept` kept and `columns` feature columns
    /// (`None`: the count the fit is centred on), where the fit's value is
    /// `point`.
    pub fn half_width(
        &self,
        rows_in: f64,
        rows_kept: f64,
        columns: Option<f64>,
        point: f64,
    ) -> Option<f64> {
        let (sd, dof) = self.noise(point)?;
        let d = columns.map_or(0.0, |c| c - self.columns_ref);
        let x0 = [1.0, rows_in, rows_kept, d, rows_in * d, rows_kept * d];
        let mut quad = 0.0;
        for (i, row) in self.xtx_inv.iter().enumerate().take(6) {
            for (j, v) in row.iter().enumerate().take(6) {
                quad += x0[i] * v * x0[j];
            }
        }
        let textbook = t_975(dof) * sd * (1.0 + quad.max(0.0)).sqrt();
        let bias = self.extrapolation.as_ref().map_or(0.0, |e| e.at(rows_in));
        let half = (textbook * textbook + bias * bias).sqrt();
        half.is_finite().then_some(half)
    }
}

/// The interval of the largest of the stages: each end the largest of the
/// stages' ends. `None` when a stage has no interval.
pub fn of_peak(stages: &[super::StagePrediction]) -> Option<Interval> {
    let mut out: Option<Interval> = None;
    for s in stages {
        let i = s.interval?;
        out = Some(match out {
            None => i,
            Some(o) => Interval {
                low_bytes: o.low_bytes.max(i.low_bytes),
                high_bytes: o.high_bytes.max(i.high_bytes),
            },
        });
    }
    out
}

/// `3.42 GiB (95% interval 3.30 to 3.55 GiB, ±3.6%)`: a predicted figure
/// as every table prints it; `(no interval)` when the model has none.
pub fn describe(point: f64, interval: Option<Interval>) -> String {
    let p = crate::units::format_bytes(point.max(0.0) as u64);
    match interval {
        Some(i) => format!(
            "{p} ({LEVEL_PERCENT}% interval {} to {}, ±{:.1}%)",
            crate::units::format_bytes(i.low_bytes as u64),
            crate::units::format_bytes(i.high_bytes as u64),
            i.relative_half_width(point) * 100.0
        ),
        None => format!("{p} (no interval)"),
    }
}

/// How a limit is judged, in words: by the upper end of the 95% interval
/// when there is one, else by the point (a model from before intervals).
pub fn judged_by(interval: Option<Interval>) -> String {
    match interval {
        Some(_) => format!("judged by the upper end of the {LEVEL_PERCENT}% interval"),
        None => "judged by the point (the model has no interval: refit it with this oomlab)".into(),
    }
}

/// The two ends, `3.30 GiB to 3.55 GiB`, for a table's interval column (`-` when there is none).
pub fn ends(interval: Option<Interval>) -> String {
    match interval {
        Some(i) => format!(
            "{} to {}",
            crate::units::format_bytes(i.low_bytes as u64),
            crate::units::format_bytes(i.high_bytes as u64)
        ),
        None => "-".into(),
    }
}

/// The coefficients' covariance over `σ²` from the thin QR factors of the
/// kept, scaled columns: `R⁻¹ (Qᵀ D Q) R⁻ᵀ` with `middle = Qᵀ D Q` (`D` each
/// point's variance as a share of one run's; the identity gives the
/// textbook `(XᵀX)⁻¹ = R⁻¹ R⁻ᵀ`), mapped back to the six raw terms:
/// `kept[i]` is the raw term of the `i`-th kept column and `scales` each raw
/// column's scaling. Computed on the scaled factors, where every entry is
/// near 1, not on raw `XᵀX` (rows in millions).
pub fn unscaled_covariance(
    r: &[[f64; 6]; 6],
    kept: &[usize],
    scales: &[f64],
    middle: &[[f64; 6]; 6],
) -> Vec<Vec<f64>> {
    let k = kept.len();
    // R⁻¹ by back substitution, column by column.
    let mut inv = [[0.0f64; 6]; 6];
    for col in 0..k {
        for i in (0..k).rev() {
            let mut s = if i == col { 1.0 } else { 0.0 };
            for (j, inv_row) in inv.iter().enumerate().take(k).skip(i + 1) {
                s -= r[i][j] * inv_row[col];
            }
            inv[i][col] = s / r[i][i];
        }
    }
    let mut out = vec![vec![0.0; 6]; 6];
    for a in 0..k {
        for b in 0..k {
            let v: f64 = (0..k)
                .map(|m| {
                    (0..k)
                        .map(|n| inv[a][m] * middle[m][n] * inv[b][n])
                        .sum::<f64>()
                })
                .sum();
            out[kept[a]][kept[b]] = v / (scales[kept[a]] * scales[kept[b]]);
        }
    }
    out
}

/// The pooled standard deviation of runs around their group's mean and its
/// degrees of freedom (`sum (k - 1)`), over groups of repeated runs.
pub fn pooled_sd<'a>(groups: impl Iterator<Item = &'a [u64]>) -> (f64, u32) {
    pooled(groups, |_| Some(1.0))
}

/// The pooled standard deviation of runs as a share of their group's mean
/// and its degrees of freedom, over groups of repeated runs (the relative
/// twin of [`pooled_sd`]; groups whose mean is 0 say nothing of a share).
pub fn pooled_share<'a>(groups: impl Iterator<Item = &'a [u64]>) -> (f64, u32) {
    pooled(groups, |mean| (mean > 0.0).then(|| 1.0 / (mean * mean)))
}

/// Both pooled spreads: each group's squared deviations from its mean,
/// weighted by `weight(mean)` (`None`: the group is left out), over the
/// groups' summed degrees of freedom.
fn pooled<'a>(
    groups: impl Iterator<Item = &'a [u64]>,
    weight: impl Fn(f64) -> Option<f64>,
) -> (f64, u32) {
    let (mut ss, mut dof) = (0.0f64, 0u32);
    for g in groups {
        if g.len() < 2 {
            continue;
        }
        let mean = g.iter().map(|v| *v as f64).sum::<f64>() / g.len() as f64;
        let Some(w) = weight(mean) else {
            continue;
        };
        ss += w * g.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>();
        dof += g.len() as u32 - 1;
    }
    if dof == 0 {
        (0.0, 0)
    } else {
        ((ss / dof as f64).sqrt(), dof)
    }
}

/// The 0.975 quantile of Student's t with `dof` degrees of freedom: exact
/// table values to 30, then the Cornish-Fisher expansion around the normal
/// quantile (within 1e-4 of the exact value above 30).
pub fn t_975(dof: u32) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match dof {
        0 => f64::INFINITY,
        1..=30 => TABLE[dof as usize - 1],
        _ => {
            let z = 1.959_964f64;
            let n = dof as f64;
            let z3 = z.powi(3);
            let z5 = z.powi(5);
            let z7 = z.powi(7);
            z + (z3 + z) / (4.0 * n)
                + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * n * n)
                + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * n * n * n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_spread_of_repeats() {
        let (sd, dof) = pooled_sd([&[10u64, 12][..], &[20, 20, 23][..], &[5][..]].into_iter());
        assert_eq!(dof, 3);
        // (2 + 6) / 3 of squared deviations.
        assert!((sd - (8.0f64 / 3.0).sqrt()).abs() < 1e-9);
    }

    #[test]
    fn a_spread_that_grows_with_the_peak_is_carried_in_proportion() {
        // Small runs differ by 2 in 100, large ones by 20 in 1000 (a
        // standard deviation of 1.4% each): the absolute pooled spread says
        // little of a peak of 10,000, the share does.
        let groups = [&[99u64, 101][..], &[990, 1010][..]];
        let (share, dof) = pooled_share(groups.into_iter());
        assert_eq!(dof, 2);
        assert!((share - 0.02f64.sqrt() / 10.0).abs() < 1e-9, "{share}");
        let s = Spread {
            xtx_inv: vec![vec![0.0; 6]; 6],
            columns_ref: 0.0,
            residual_sd_bytes: 0.0,
            dof: 0,
            repeat_sd_bytes: pooled_sd(groups.into_iter()).0,
            repeat_dof: dof,
            repeat_share: share,
            extrapolation: None,
        };
        let at_large = s.run_half_width(10_000.0).unwrap();
        assert!(
            (at_large - t_975(2) * share * 10_000.0).abs() < 1e-6,
            "{at_large}"
        );
        // Where the share is smaller than the absolute spread, the absolute one rules.
        let at_small = s.run_half_width(10.0).unwrap();
        assert!((at_small - t_975(2) * s.repeat_sd_bytes).abs() < 1e-6);
        assert_eq!(s.half_width(1.0, 1.0, None, 10_000.0), Some(at_large));
    }

    #[test]
    fn the_spread_chosen_brings_its_own_degrees_of_freedom() {
        // A residual spread read off one residual is not as sure as nine
        // repeats' spread, even where it is the larger.
        let s = Spread {
            xtx_inv: vec![vec![0.0; 6]; 6],
            columns_ref: 0.0,
            residual_sd_bytes: 10.0,
            dof: 1,
            repeat_sd_bytes: 4.0,
            repeat_dof: 9,
            repeat_share: 0.0,
            extrapolation: None,
        };
        assert_eq!(s.half_width(1.0, 1.0, None, 100.0), Some(t_975(1) * 10.0));
        let repeats_rule = Spread {
            residual_sd_bytes: 3.0,
            ..s.clone()
        };
        assert_eq!(
            repeats_rule.half_width(1.0, 1.0, None, 100.0),
            Some(t_975(9) * 4.0)
        );
        // A run's own spread is the repeats' alone, whatever the residuals.
        assert_eq!(s.run_half_width(100.0), Some(t_975(9) * 4.0));
        let nothing = Spread {
            dof: 0,
            repeat_dof: 0,
            ..s.clone()
        };
        assert_eq!(nothing.half_width(1.0, 1.0, None, 100.0), None);
        let no_repeats = Spread { repeat_dof: 0, ..s };
        assert_eq!(no_repeats.run_half_width(100.0), None);
    }

    #[test]
    fn t_quantiles_match_the_tables() {
        assert!((t_975(1) - 12.706).abs() < 1e-3);
        assert!((t_975(10) - 2.228).abs() < 1e-3);
        assert!((t_975(40) - 2.021).abs() < 1e-3);
        assert!((t_975(120) - 1.980).abs() < 1e-3);
        assert!(t_975(0).is_infinite());
    }

    #[test]
    fn lack_of_fit_widens_only_past_the_held_out_size() {
        // Off by 5 at 4 from a fit up to 2, with a standard error of 3:
        // a bias of 4 over a distance of 2, carried in proportion.
        let e = Extrapolation::from_check((2.0, 4.0), -5.0, Some((3.0 * t_975(8), 8))).unwrap();
        assert!((e.bias_bytes - 4.0).abs() < 1e-9);
        assert_eq!(e.at(3.0), 0.0);
        assert!((e.at(8.0) - 8.0 * LACK_OF_FIT_Z).abs() < 1e-9);
        // An error the noise explains is no bias.
        let quiet = Extrapolation::from_check((2.0, 4.0), 1.0, Some((3.0 * t_975(8), 8))).unwrap();
        assert_eq!(quiet.bias_bytes, 0.0);
        assert!(Extrapolation::from_check((4.0, 4.0), 1.0, None).is_none());
    }
}
