//! Least squares for `peak = fixed + a x rows_in + b x rows_kept`.
//!
//! The fit is small (a dozen points, three unknowns) but must be honest about
//! one case: without sampling, `rows_kept` is just `rows_in` times the dropna
//! keep ratio, so the two columns are (nearly) collinear and `a` and `b` cannot
//! be told apart. Solving the normal equations anyway would return huge,
//! opposite-signed coefficients that cancel on the measured points and explode
//! at production size. Instead the fit orthogonalizes the columns in order
//! (1, rows_in, rows_kept) and drops any column whose part not explained by the
//! earlier ones is below [`COLLINEAR_TOLERANCE`] of its size: the reduced model
//! `peak = fixed + a' x rows_in` (with `a' = a + b x ratio`) is what the data
//! supports, and the fit says so.
//!
//! Feature columns (issue 20) enter the same way: a sweep over column counts
//! adds `columns`, `rows_in x columns` and `rows_kept x columns` after the
//! three row columns, each centred on a reference count (the scenario's), so
//! `fixed_bytes` and the per-row costs stay the costs *at* that count. A
//! sweep at one column count leaves the centred columns all zero: they are
//! dropped, the column coefficients are 0, and the fit is exactly the
//! rows-only fit it always was (old `model.json` files read the same way).

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// A column is dropped when less than this share of its norm is not explained
/// by the columns before it. Without sampling, `rows_kept` differs from a
/// multiple of `rows_in` only by dropna's binomial noise (about 1e-4 of its
/// norm); with sampling at any fraction it differs by tens of percent.
pub const COLLINEAR_TOLERANCE: f64 = 1e-2;

/// One measured point: the sizes that drive memory and the peak seen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    pub rows_in: f64,
    pub rows_kept: f64,
    pub peak: f64,
}

/// A fitted affine model of one peak, with how well it fits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    /// Bytes that do not depend on the sample rows (the 123,456-row profile,
    /// user features, the binary, parquet decoding buffers).
    pub fixed_bytes: f64,
    /// Bytes per row loaded.
    pub bytes_per_row_in: f64,
    /// Bytes per row kept after sampling (0 when not identified).
    pub bytes_per_row_kept: f64,
    /// False when `rows_kept` was collinear with `rows_in` (no sampling runs)
    /// and the reduced model was fitted: `bytes_per_row_in` then carries both.
    pub rows_kept_identified: bool,
    /// False when every point had the same `rows_in` (only a constant fitted).
    pub rows_in_identified: bool,
    /// Coefficient of determination (1 = every point on the model).
    pub r2: f64,
    /// Root mean square residual, bytes.
    pub rmse_bytes: f64,
    /// Measured minus predicted, bytes, in the order of the points.
    pub residuals: Vec<f64>,
    /// The feature-column count the three coefficients above are at: a
    /// prediction at another count adds the column terms below times the
    /// difference. 0 in fits without a column term (older models too).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub columns_ref: f64,
    /// Bytes per feature column that do not depend on the rows (the profile
    /// itself, 123,456 rows x 8 bytes per numeric column in production).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bytes_per_column: f64,
    /// Bytes per row loaded per feature column (a merged frame's width).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bytes_per_row_in_per_column: f64,
    /// Bytes per row kept per feature column (sampled runs' merged frames).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bytes_per_row_kept_per_column: f64,
    /// True when the points varied the column count and a column term was
    /// fitted; false: the fit holds at `columns_ref` (or the model's one
    /// measured count) and says nothing about others.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub columns_identified: bool,
    /// What the 95% prediction interval at any size is made of (see
    /// [`super::interval`]); `None` in models fitted before intervals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread: Option<super::interval::Spread>,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

impl Fit {
    /// The model's value at the given sizes (not clamped), at the reference
    /// column count.
    pub fn eval(&self, rows_in: f64, rows_kept: f64) -> f64 {
        self.fixed_bytes + self.bytes_per_row_in * rows_in + self.bytes_per_row_kept * rows_kept
    }

    /// The model's value at the given sizes and `columns` feature columns
    /// (not clamped); the same as [`Fit::eval`] at the reference count, or
    /// for a fit without a column term.
    pub fn eval_at(&self, rows_in: f64, rows_kept: f64, columns: f64) -> f64 {
        let d = if self.columns_identified {
            columns - self.columns_ref
        } else {
            0.0
        };
        self.eval(rows_in, rows_kept)
            + d * (self.bytes_per_column
                + self.bytes_per_row_in_per_column * rows_in
                + self.bytes_per_row_kept_per_column * rows_kept)
    }

    /// The same fit re-centred at `columns` feature columns: its fixed cost
    /// and per-row costs become those at that count, so every reader of the
    /// three coefficients (recommend's caps, the rows without sampling, the
    /// calibration) answers there unchanged. A fit without a column term is
    /// returned as it is.
    pub fn at_columns(&self, columns: f64) -> Fit {
        if !self.columns_identified || !columns.is_finite() {
            return self.clone();
        }
        let d = columns - self.columns_ref;
        Fit {
            fixed_bytes: self.fixed_bytes + self.bytes_per_column * d,
            bytes_per_row_in: self.bytes_per_row_in + self.bytes_per_row_in_per_column * d,
            bytes_per_row_kept: self.bytes_per_row_kept + self.bytes_per_row_kept_per_column * d,
            columns_ref: columns,
            ..self.clone()
        }
    }

    /// Widens the fit's interval by the spread of the repeats its points
    /// are medians of (each group one point's runs; groups of one say
    /// nothing).
    pub fn add_repeats<'a>(&mut self, groups: impl Iterator<Item = &'a [u64]> + Clone) {
        let (sd, dof) = super::interval::pooled_sd(groups.clone());
        let (share, _) = super::interval::pooled_share(groups);
        if let Some(s) = self.spread.as_mut() {
            s.repeat_sd_bytes = sd;
            s.repeat_dof = dof;
            s.repeat_share = share;
        }
    }

    /// The 95% interval of this fit's value `point` at `rows` (loaded,
    /// kept) and `columns` feature columns (`None`: the count the fit is
    /// centred on now, which [`Fit::at_columns`] may have moved), clamped
    /// at 0; `None` when the fit cannot give one.
    pub fn interval(
        &self,
        (rows_in, rows_kept): (u64, u64),
        columns: Option<u64>,
        point: f64,
    ) -> Option<super::interval::Interval> {
        let columns = columns
            .map(|c| c as f64)
            .or(self.columns_identified.then_some(self.columns_ref));
        let half =
            self.spread
                .as_ref()?
                .half_width(rows_in as f64, rows_kept as f64, columns, point)?;
        Some(super::interval::Interval {
            low_bytes: (point - half).max(0.0),
            high_bytes: (point + half).max(0.0),
        })
    }

    /// The largest absolute residual, bytes.
    pub fn max_abs_residual(&self) -> f64 {
        self.residuals.iter().fold(0.0, |m, r| m.max(r.abs()))
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// Fits `peak = fixed + a x rows_in + b x rows_kept` by least squares, dropping
/// columns the points cannot identify (see the module doc).
pub fn fit(points: &[Observation]) -> Result<Fit> {
    fit_with_columns(points, &vec![0.0; points.len()], 0.0)
}

/// Fits `peak = fixed + d x c + rows_in x (a + e x c) + rows_kept x (b + g x c)`
/// with `c = columns[i] - reference`, the feature columns of each point
/// centred on `reference` (the scenario's count). Terms the points cannot
/// identify are dropped in that order; with one column count among the points
/// the fit is the rows-only fit, at that count.
pub fn fit_with_columns(points: &[Observation], columns: &[f64], reference: f64) -> Result<Fit> {
    fit_medians(points, columns, reference, &vec![1; points.len()])
}

/// [`fit_with_columns`] of points that are each the median of `runs[i]`
/// runs. The coefficients are the same least squares; the interval is not:
/// a median of 5 runs moves less than one run, and the textbook
/// `(XᵀX)⁻¹` counts every point as one run, which overstated the
/// coefficients' share of the pandas 3 reference's interval at 8.5M rows
/// about 1.8x. The covariance kept is the least-squares estimator's own
/// under point variances `σ² m(k)` ([`median_variance`]):
/// `(XᵀX)⁻¹ Xᵀ diag(m) X (XᵀX)⁻¹`, which is `(XᵀX)⁻¹` when every point is
/// one run.
pub fn fit_medians(
    points: &[Observation],
    columns: &[f64],
    reference: f64,
    runs: &[usize],
) -> Result<Fit> {
    if runs.len() != points.len() {
        bail!(
            "internal: {} run counts for {} points",
            runs.len(),
            points.len()
        );
    }
    if points.is_empty() {
        bail!("cannot fit a model to no points");
    }
    if columns.len() != points.len() {
        bail!(
            "internal: {} column counts for {} points",
            columns.len(),
            points.len()
        );
    }
    if points
        .iter()
        .any(|p| !(p.rows_in.is_finite() && p.rows_kept.is_finite() && p.peak.is_finite()))
        || columns.iter().any(|c| !c.is_finite())
    {
        bail!("cannot fit a model to non-finite points");
    }
    let n = points.len();
    // One column count: the fit is at that count, whatever the reference.
    let reference = if columns.iter().all(|c| *c == columns[0]) {
        columns[0]
    } else {
        reference
    };
    let d: Vec<f64> = columns.iter().map(|c| c - reference).collect();
    let raw: [Vec<f64>; 6] = [
        vec![1.0; n],
        points.iter().map(|p| p.rows_in).collect(),
        points.iter().map(|p| p.rows_kept).collect(),
        d.clone(),
        points.iter().zip(&d).map(|(p, d)| p.rows_in * d).collect(),
        points
            .iter()
            .zip(&d)
            .map(|(p, d)| p.rows_kept * d)
            .collect(),
    ];
    // Scale the columns so the tolerance and the arithmetic see numbers near 1.
    let scales: Vec<f64> = raw
        .iter()
        .map(|c| c.iter().map(|v| v.abs()).fold(0.0, f64::max).max(1.0))
        .collect();
    let design: Vec<Vec<f64>> = raw
        .iter()
        .zip(&scales)
        .map(|(c, s)| c.iter().map(|v| v / s).collect())
        .collect();
    let y: Vec<f64> = points.iter().map(|p| p.peak).collect();

    // Modified Gram-Schmidt with column dropping: q holds orthonormal columns,
    // r the upper-triangular factor over the kept columns.
    const K: usize = 6;
    let mut kept: Vec<usize> = Vec::new();
    let mut q: Vec<Vec<f64>> = Vec::new();
    let mut r = [[0.0f64; K]; K];
    for (j, column) in design.iter().enumerate() {
        if kept.len() >= n {
            break; // no more independent directions than points
        }
        let mut v = column.clone();
        let mut coeffs = [0.0; K];
        for (i, qi) in q.iter().enumerate() {
            let c = dot(qi, &v);
            coeffs[i] = c;
            v.iter_mut().zip(qi).for_each(|(x, qx)| *x -= c * qx);
        }
        let size = norm(column);
        let rest = norm(&v);
        if size == 0.0 || rest <= COLLINEAR_TOLERANCE * size {
            continue;
        }
        let k = kept.len();
        for (i, c) in coeffs.iter().enumerate().take(k) {
            r[i][k] = *c;
        }
        r[k][k] = rest;
        v.iter_mut().for_each(|x| *x /= rest);
        q.push(v);
        kept.push(j);
    }
    // Solve R c = Q^T y by back substitution.
    let qty: Vec<f64> = q.iter().map(|qi| dot(qi, &y)).collect();
    let k = kept.len();
    let mut c = vec![0.0; k];
    for i in (0..k).rev() {
        let mut s = qty[i];
        for (jj, cj) in c.iter().enumerate().skip(i + 1) {
            s -= r[i][jj] * cj;
        }
        c[i] = s / r[i][i];
    }
    let mut coef = [0.0f64; K];
    for (slot, &col) in kept.iter().enumerate() {
        coef[col] = c[slot] / scales[col];
    }
    let columns_identified = kept.iter().any(|&j| j >= 3);
    let mut fit = Fit {
        fixed_bytes: coef[0],
        bytes_per_row_in: coef[1],
        bytes_per_row_kept: coef[2],
        rows_kept_identified: kept.contains(&2),
        rows_in_identified: kept.contains(&1),
        r2: 0.0,
        rmse_bytes: 0.0,
        residuals: Vec::new(),
        columns_ref: if columns_identified { reference } else { 0.0 },
        bytes_per_column: coef[3],
        bytes_per_row_in_per_column: coef[4],
        bytes_per_row_kept_per_column: coef[5],
        columns_identified,
        spread: None,
    };
    fit.residuals = points
        .iter()
        .zip(columns)
        .map(|(p, c)| p.peak - fit.eval_at(p.rows_in, p.rows_kept, *c))
        .collect();
    let ss_res: f64 = fit.residuals.iter().map(|e| e * e).sum();
    let mean = y.iter().sum::<f64>() / n as f64;
    let ss_tot: f64 = y.iter().map(|v| (v - mean) * (v - mean)).sum();
    fit.r2 = if ss_tot > 0.0 {
        1.0 - ss_res / ss_tot
    } else if ss_res <= 1e-9 * mean.abs().max(1.0) {
        1.0
    } else {
        0.0
    };
    fit.rmse_bytes = (ss_res / n as f64).sqrt();
    let dof = n.saturating_sub(k) as u32;
    // Qᵀ diag(m) Q over the kept columns: the identity when every point is
    // one run.
    let m: Vec<f64> = runs.iter().map(|&k| median_variance(k)).collect();
    let mut middle = [[0.0f64; K]; K];
    for (a, qa) in q.iter().enumerate() {
        for (b, qb) in q.iter().enumerate() {
            middle[a][b] = qa.iter().zip(qb).zip(&m).map(|((x, y), w)| x * y * w).sum();
        }
    }
    fit.spread = Some(super::interval::Spread {
        xtx_inv: super::interval::unscaled_covariance(&r, &kept, &scales, &middle),
        columns_ref: reference,
        residual_sd_bytes: if dof > 0 {
            (ss_res / dof as f64).sqrt()
        } else {
            0.0
        },
        dof,
        repeat_sd_bytes: 0.0,
        repeat_dof: 0,
        repeat_share: 0.0,
        extrapolation: None,
    });
    Ok(fit)
}

/// The variance of the median of `k` runs as a share of one run's: 1/2 for
/// two (their mean), `π / 2k` from three on (the normal median's large-`k`
/// value, above the exact small-`k` ones: 0.52 against 0.45 at three), never
/// above 1.
pub fn median_variance(k: usize) -> f64 {
    match k {
        0 | 1 => 1.0,
        2 => 0.5,
        k => (std::f64::consts::PI / (2.0 * k as f64)).min(1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(rows_in: f64, rows_kept: f64, peak: f64) -> Observation {
        Observation {
            rows_in,
            rows_kept,
            peak,
        }
    }

    #[test]
    fn recovers_exact_coefficients() {
        let truth = |i: f64, k: f64| 1e9 + 300.0 * i + 4000.0 * k;
        let pts: Vec<_> = [
            (1e4, 9.8e3),
            (2e4, 1.96e4),
            (4e4, 3.92e4),
            (2e4, 5e3),
            (4e4, 1e4),
        ]
        .iter()
        .map(|&(i, k)| obs(i, k, truth(i, k)))
        .collect();
        let f = fit(&pts).unwrap();
        assert!(f.rows_kept_identified && f.rows_in_identified);
        assert!((f.fixed_bytes - 1e9).abs() < 1e-3 * 1e9, "{f:?}");
        assert!((f.bytes_per_row_in - 300.0).abs() < 1e-3, "{f:?}");
        assert!((f.bytes_per_row_kept - 4000.0).abs() < 1e-3, "{f:?}");
        assert!((f.r2 - 1.0).abs() < 1e-12);
        assert!(f.max_abs_residual() < 1e-3);
    }

    #[test]
    fn collinear_inputs_fit_the_reduced_model() {
        // rows_kept = 0.98 rows_in, with dropna's noise of a few rows.
        let pts: Vec<_> = [
            (1e4, 9801.0),
            (2e4, 19_598.0),
            (4e4, 39_203.0),
            (8e4, 78_399.0),
        ]
        .iter()
        .map(|&(i, k)| obs(i, k, 5e8 + 100.0 * i + 1000.0 * k))
        .collect();
        let f = fit(&pts).unwrap();
        assert!(!f.rows_kept_identified);
        assert_eq!(f.bytes_per_row_kept, 0.0);
        // a' = a + b x 0.98
        assert!((f.bytes_per_row_in - 1080.0).abs() < 1.0, "{f:?}");
        assert!((f.fixed_bytes - 5e8).abs() < 1e5, "{f:?}");
        assert!(f.r2 > 0.999_999);
        // Extrapolates sanely (a naive 3-column solve would not).
        let at_production = f.eval(8.5e6, 8.33e6);
        let truth = 5e8 + 100.0 * 8.5e6 + 1000.0 * 8.33e6;
        assert!((at_production - truth).abs() / truth < 1e-3);
    }

    #[test]
    fn one_size_fits_a_constant() {
        let pts = vec![obs(1e4, 1e4, 10.0), obs(1e4, 1e4, 12.0)];
        let f = fit(&pts).unwrap();
        assert!(!f.rows_in_identified && !f.rows_kept_identified);
        assert!((f.fixed_bytes - 11.0).abs() < 1e-9);
        assert!((f.rmse_bytes - 1.0).abs() < 1e-9);
    }

    #[test]
    fn noisy_points_report_residuals_and_r2() {
        let pts = vec![
            obs(1.0e4, 0.98e4, 1010.0),
            obs(2.0e4, 1.96e4, 1990.0),
            obs(3.0e4, 2.94e4, 3020.0),
            obs(4.0e4, 3.92e4, 3980.0),
        ];
        let f = fit(&pts).unwrap();
        assert!(f.r2 > 0.99 && f.r2 < 1.0);
        assert_eq!(f.residuals.len(), 4);
        assert!(
            f.residuals.iter().sum::<f64>().abs() < 1e-6,
            "residuals of an intercept fit sum to 0"
        );
    }

    #[test]
    fn recovers_the_column_terms_and_recentres() {
        // fixed 1 GiB + 1 MB/column + rows x (500 + 16 x columns), centred on 87.
        let truth = |r: f64, c: f64| 1e9 + 1e6 * (c - 87.0) + r * (500.0 + 16.0 * (c - 87.0));
        let mut pts = Vec::new();
        let mut cols = Vec::new();
        for r in [1e5, 2e5, 4e5] {
            for c in [87.0, 137.0, 187.0] {
                pts.push(obs(r, 0.98 * r, truth(r, c)));
                cols.push(c);
            }
        }
        let f = fit_with_columns(&pts, &cols, 87.0).unwrap();
        assert!(f.columns_identified, "{f:?}");
        assert!((f.bytes_per_row_in_per_column - 16.0).abs() < 0.5, "{f:?}");
        let held = truth(8e5, 287.0);
        assert!((f.eval_at(8e5, 0.98 * 8e5, 287.0) - held).abs() / held < 1e-6);
        // At the reference, eval and eval_at agree; re-centred, eval is at 287.
        assert!((f.eval(1e5, 9.8e4) - f.eval_at(1e5, 9.8e4, 87.0)).abs() < 1.0);
        let moved = f.at_columns(287.0);
        assert!((moved.eval(8e5, 0.98 * 8e5) - held).abs() / held < 1e-6);
        // One column count: the rows-only fit, no column term.
        let one = fit_with_columns(&pts[..3], &[137.0; 3], 87.0).unwrap();
        assert!(!one.columns_identified);
        assert_eq!(one.bytes_per_row_in_per_column, 0.0);
        assert_eq!(one.eval_at(1e5, 9.8e4, 500.0), one.eval(1e5, 9.8e4));
    }

    #[test]
    fn rejects_empty_and_nan() {
        assert!(fit(&[]).is_err());
        assert!(fit(&[obs(f64::NAN, 1.0, 1.0)]).is_err());
    }

    #[test]
    fn a_simple_regression_gives_the_textbook_interval() {
        // y = 10 + 2x with residuals +1, -1, -1, +1 at x = 1..4.
        let pts: Vec<_> = [(1.0, 13.0), (2.0, 13.0), (3.0, 15.0), (4.0, 19.0)]
            .iter()
            .map(|&(x, y)| obs(x, x, y))
            .collect();
        let f = fit(&pts).unwrap();
        let s = f.spread.clone().expect("a spread");
        assert_eq!(s.dof, 2);
        // Sxx = 5, mean 2.5: at x0 = 10, 1 + 1/4 + 7.5²/5 = 12.5.
        let ss: f64 = f.residuals.iter().map(|r| r * r).sum();
        let expected = 4.303 * (ss / 2.0).sqrt() * 12.5f64.sqrt();
        let got = s.half_width(10.0, 10.0, None, 0.0).unwrap();
        assert!((got - expected).abs() < 1e-6 * expected, "{got} {expected}");
        // Widest far from the points, narrowest near their middle.
        assert!(s.half_width(2.5, 2.5, None, 0.0).unwrap() < got);
    }

    #[test]
    fn points_that_are_medians_pin_the_line_down_more_than_single_runs() {
        let pts: Vec<Observation> = [(1e6, 2.1e9), (2e6, 3.05e9), (3e6, 4.1e9), (4e6, 4.95e9)]
            .iter()
            .map(|&(r, p)| obs(r, r * 0.9, p))
            .collect();
        let cols = [0.0; 4];
        let single = fit_medians(&pts, &cols, 0.0, &[1; 4]).unwrap();
        assert_eq!(single, fit_with_columns(&pts, &cols, 0.0).unwrap());
        let medians = fit_medians(&pts, &cols, 0.0, &[5; 4]).unwrap();
        // Same line.
        assert_eq!(single.bytes_per_row_in, medians.bytes_per_row_in);
        assert_eq!(single.fixed_bytes, medians.fixed_bytes);
        // The coefficients' variance scales by the medians' share, exactly
        // when every point is a median of the same count.
        let (a, b) = (
            single.spread.as_ref().unwrap(),
            medians.spread.as_ref().unwrap(),
        );
        let at = |s: &super::super::interval::Spread| {
            let x = [1.0, 8e6, 0.0, 0.0, 0.0, 0.0];
            (0..6)
                .map(|i| (0..6).map(|j| x[i] * s.xtx_inv[i][j] * x[j]).sum::<f64>())
                .sum::<f64>()
        };
        let ratio = at(b) / at(a);
        assert!((ratio - median_variance(5)).abs() < 1e-9, "{ratio}");
        assert!(median_variance(2) == 0.5 && median_variance(1) == 1.0);
        assert!(median_variance(3) > 0.449 && median_variance(3) < 0.53);
    }

    #[test]
    fn repeats_widen_and_exact_fits_without_repeats_have_no_width() {
        let exact: Vec<_> = [1.0, 2.0, 4.0]
            .iter()
            .map(|&x| obs(x, x, 5.0 + x))
            .collect();
        let mut s = fit(&exact).unwrap().spread.unwrap();
        assert!(s.half_width(8.0, 8.0, None, 0.0).unwrap() < 1e-9);
        let (sd, dof) =
            super::super::interval::pooled_sd([&[10u64, 12][..], &[20, 20, 23][..]].into_iter());
        assert_eq!(dof, 3);
        assert!(sd > 0.0);
        s.repeat_sd_bytes = sd;
        s.repeat_dof = dof;
        assert!(s.half_width(8.0, 8.0, None, 0.0).unwrap() > sd);
        // Two points, two terms, no repeats: nothing to say.
        let two = fit(&exact[..2]).unwrap().spread.unwrap();
        assert_eq!(two.half_width(8.0, 8.0, None, 0.0), None);
    }
}
