//! What a sweep measures, as given on its command line: the scales, the
//! numeric profile column counts and the sampled fractions, each checked
//! with an error naming the flag, and the (scale, columns) design they make.

use anyhow::Result;

use crate::error::bad_input;
use crate::scenario::validate_scale;

/// Parses a comma-separated list of numbers (`0.001,0.002`).
fn parse_list(text: &str, flag: &str) -> Result<Vec<f64>> {
    if text.trim() == "none" {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|t| {
            t.trim().parse::<f64>().map_err(|_| {
                bad_input(format!(
                    "{flag} {text}: `{}` is not a number (expected a comma-separated list such as 0.001,0.002,0.004,0.008)",
                    t.trim()
                ))
            })
        })
        .collect()
}

/// The sweep's scales: valid, distinct, ascending, at least three.
pub fn parse_scales(text: &str) -> Result<Vec<f64>> {
    let mut scales = parse_list(text, "--scales")?
        .into_iter()
        .map(validate_scale)
        .collect::<Result<Vec<_>>>()?;
    scales.sort_by(f64::total_cmp);
    scales.dedup();
    if scales.len() < 3 {
        return Err(bad_input(format!(
            "--scales {text}: expected at least 3 distinct scales (the model is fitted on all but the largest, which is held out)"
        )));
    }
    Ok(scales)
}

/// `--columns a,b,c`: numeric profile column counts, distinct, ascending, at
/// least three (the largest is held out together with the largest scale).
pub fn parse_columns(text: &str) -> Result<Vec<u64>> {
    let mut columns = text
        .split(',')
        .map(|t| {
            let t = t.trim();
            match t.replace('_', "").parse::<u64>() {
                Ok(n) if (1..=10_000).contains(&n) => Ok(n),
                _ => Err(bad_input(format!(
                    "--columns {text}: `{t}` is not a column count in [1, 10000] (expected a comma-separated list of numeric profile column counts such as 87,137,187,237)"
                ))),
            }
        })
        .collect::<Result<Vec<u64>>>()?;
    columns.sort_unstable();
    columns.dedup();
    if columns.len() < 3 {
        return Err(bad_input(format!(
            "--columns {text}: expected at least 3 distinct column counts (the model is fitted on all but the largest, which is held out with the largest scale)"
        )));
    }
    Ok(columns)
}

/// The (scale, columns) points a sweep runs: every scale at the scenario's
/// column count, or with `--columns` the grid of all but the largest scale
/// and column count plus the one point larger in both, which is held out.
pub fn design(scales: &[f64], columns: &[u64]) -> Vec<(f64, Option<u64>)> {
    if columns.is_empty() {
        return scales.iter().map(|&s| (s, None)).collect();
    }
    let (Some(&top_scale), Some(&top_columns)) = (scales.last(), columns.last()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for &s in &scales[..scales.len() - 1] {
        for &c in &columns[..columns.len() - 1] {
            out.push((s, Some(c)));
        }
    }
    out.push((top_scale, Some(top_columns)));
    out
}

/// The sampled runs' fractions: each in (0, 0.9].
pub fn parse_fractions(text: &str) -> Result<Vec<f64>> {
    let mut fractions = parse_list(text, "--max-ranking-samples-fraction")?;
    for f in &fractions {
        if !(f.is_finite() && *f > 0.0 && *f <= 0.9) {
            return Err(bad_input(format!(
                "--max-ranking-samples-fraction {text}: {f} is not in (0, 0.9] (a cap as a share of the rows loaded, below what dropna keeps)"
            )));
        }
    }
    fractions.sort_by(f64::total_cmp);
    fractions.dedup();
    Ok(fractions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_and_fractions() {
        assert_eq!(
            parse_scales("0.004, 0.001,0.002").unwrap(),
            vec![0.001, 0.002, 0.004]
        );
        assert!(parse_scales("0.001,0.002").is_err());
        assert!(parse_scales("0.001,abc,0.002").is_err());
        assert!(parse_scales("0.001,0.002,-1").is_err());
        assert_eq!(parse_fractions("none").unwrap(), Vec::<f64>::new());
        assert!(parse_fractions("0.95").is_err());
        assert_eq!(parse_fractions("0.6,0.25").unwrap(), vec![0.25, 0.6]);
    }
}
