//! Least squares over any list of terms, dropping the terms the points cannot
//! tell apart.
//!
//! The ranking model's fit ([`super::fit`]) has its six terms built in. A
//! similarity command's peak has others (items, items², items x batch size,
//! items x top K), and which of them a sweep identifies depends on its grid:
//! a sweep at one batch size makes `items x batch` a multiple of `items`.
//! The same rule applies: the terms are orthogonalized in order and a term
//! whose part not explained by the earlier ones is below
//! [`super::fit::COLLINEAR_TOLERANCE`] of its size is dropped (its coefficient
//! 0, and the fit says so), instead of solving for huge opposite-signed
//! coefficients that cancel on the points and explode at production size.

use anyhow::{bail, Result};

use super::fit::COLLINEAR_TOLERANCE;

/// Coefficients of a least-squares fit, one per term, with which terms the
/// points identified.
#[derive(Debug, Clone, PartialEq)]
pub struct Solved {
    /// One per term, in the order given (0 for a dropped term).
    pub coefficients: Vec<f64>,
    /// Whether each term was kept.
    pub identified: Vec<bool>,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Fits `y = sum_j c_j x terms[j]` (each term a column of values, one per
/// point) by modified Gram-Schmidt with column dropping, in the order given.
pub fn solve(terms: &[Vec<f64>], y: &[f64]) -> Result<Solved> {
    let n = y.len();
    if n == 0 {
        bail!("cannot fit a model to no points");
    }
    if terms.iter().any(|t| t.len() != n) {
        bail!("internal: a term has not one value per point");
    }
    if y.iter()
        .chain(terms.iter().flatten())
        .any(|v| !v.is_finite())
    {
        bail!("cannot fit a model to non-finite points");
    }
    // Scaled so the tolerance and the arithmetic see numbers near 1.
    let scales: Vec<f64> = terms
        .iter()
        .map(|c| c.iter().map(|v| v.abs()).fold(0.0, f64::max).max(1.0))
        .collect();
    let k_all = terms.len();
    let mut kept: Vec<usize> = Vec::new();
    let mut q: Vec<Vec<f64>> = Vec::new();
    let mut r = vec![vec![0.0f64; k_all]; k_all];
    for (j, term) in terms.iter().enumerate() {
        if kept.len() >= n {
            break; // no more independent directions than points
        }
        let column: Vec<f64> = term.iter().map(|v| v / scales[j]).collect();
        let mut v = column.clone();
        let mut coeffs = vec![0.0; k_all];
        for (i, qi) in q.iter().enumerate() {
            let c = dot(qi, &v);
            coeffs[i] = c;
            v.iter_mut().zip(qi).for_each(|(x, qx)| *x -= c * qx);
        }
        let size = dot(&column, &column).sqrt();
        let rest = dot(&v, &v).sqrt();
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
    let qty: Vec<f64> = q.iter().map(|qi| dot(qi, y)).collect();
    let k = kept.len();
    let mut c = vec![0.0; k];
    for i in (0..k).rev() {
        let mut s = qty[i];
        for (jj, cj) in c.iter().enumerate().skip(i + 1) {
            s -= r[i][jj] * cj;
        }
        c[i] = s / r[i][i];
    }
    let mut coefficients = vec![0.0; k_all];
    let mut identified = vec![false; k_all];
    for (slot, &col) in kept.iter().enumerate() {
        coefficients[col] = c[slot] / scales[col];
        identified[col] = true;
    }
    Ok(Solved {
        coefficients,
        identified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_products_of_sizes_and_drops_what_one_knob_cannot_tell() {
        // peak = 3e7 + 900 N + 16 N B + 12 N K, a cross design around (50, 100).
        let truth = |n: f64, b: f64, k: f64| 3e7 + 900.0 * n + 16.0 * n * b + 12.0 * n * k;
        let mut pts = Vec::new();
        for n in [4e3, 6e3, 8e3] {
            for (b, k) in [(50.0, 100.0), (20.0, 100.0), (200.0, 100.0), (50.0, 200.0)] {
                pts.push((n, b, k));
            }
        }
        let terms = |pts: &[(f64, f64, f64)]| -> Vec<Vec<f64>> {
            vec![
                vec![1.0; pts.len()],
                pts.iter().map(|p| p.0).collect(),
                pts.iter().map(|p| p.0 * p.1).collect(),
                pts.iter().map(|p| p.0 * p.2).collect(),
            ]
        };
        let y: Vec<f64> = pts.iter().map(|p| truth(p.0, p.1, p.2)).collect();
        let s = solve(&terms(&pts), &y).unwrap();
        assert_eq!(s.identified, vec![true; 4]);
        for (got, want) in s.coefficients.iter().zip([3e7, 900.0, 16.0, 12.0]) {
            assert!((got - want).abs() < 1e-6 * want.abs().max(1.0), "{s:?}");
        }
        // One batch size and one K: both products are multiples of N, dropped.
        let one: Vec<(f64, f64, f64)> = pts
            .iter()
            .copied()
            .filter(|p| p.1 == 50.0 && p.2 == 100.0)
            .collect();
        let y: Vec<f64> = one.iter().map(|p| truth(p.0, p.1, p.2)).collect();
        let s = solve(&terms(&one), &y).unwrap();
        assert_eq!(s.identified, vec![true, true, false, false]);
        assert!((s.coefficients[1] - (900.0 + 16.0 * 50.0 + 12.0 * 100.0)).abs() < 1e-6);
    }

    #[test]
    fn rejects_empty_and_nan() {
        assert!(solve(&[vec![]], &[]).is_err());
        assert!(solve(&[vec![f64::NAN]], &[1.0]).is_err());
        assert!(solve(&[vec![1.0, 2.0]], &[1.0]).is_err());
    }
}
