//! Peaks seen outside the replay (`--observed ROWS=PEAK`, runs killed at a
//! limit) and the scaling of the model they imply.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::error::bad_input;

/// `offset + k x predicted` fitted to observed peaks by relative least squares
/// (see [`Model::calibrate_affine`]); one factor (offset 0) when the points
/// cannot separate the two: fewer than two sizes, or a fit with `k <= 0`.
pub fn affine_scaling(points: &[ObservedPeak]) -> Scaling {
    let measured: Vec<&ObservedPeak> = points.iter().filter(|o| o.peak_bytes > 0).collect();
    let (mut s_w, mut s_p, mut s_pp, mut s_o, mut s_po) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for o in &measured {
        let (p, y) = (o.predicted_bytes, o.peak_bytes as f64);
        let w = 1.0 / (y * y);
        s_w += w;
        s_p += w * p;
        s_pp += w * p * p;
        s_o += w * y;
        s_po += w * p * y;
    }
    let factor = one_factor(measured.iter().copied());
    let single = Scaling {
        factor: if factor.is_finite() { factor } else { 1.0 },
        offset_bytes: 0.0,
    };
    let distinct = points
        .iter()
        .map(|o| o.rows_in)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let det = s_w * s_pp - s_p * s_p;
    if distinct < 2 || det.abs() <= 1e-12 * s_pp * s_w {
        return single;
    }
    let k = (s_w * s_po - s_p * s_o) / det;
    if k <= 0.0 {
        return single;
    }
    Scaling {
        factor: k,
        offset_bytes: (s_o - k * s_p) / s_w,
    }
}

/// The one factor `k` minimising `sum((k p_i - o_i) / o_i)^2` over observed
/// peaks `o_i` and their predictions `p_i`: `sum(r) / sum(r^2)` with
/// `r = p / o` (NaN without points).
pub(super) fn one_factor<'a>(points: impl IntoIterator<Item = &'a ObservedPeak>) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for o in points {
        let r = o.predicted_bytes / o.peak_bytes as f64;
        num += r;
        den += r * r;
    }
    num / den
}

/// How a calibration maps a replay figure to the calibrated one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scaling {
    pub factor: f64,
    pub offset_bytes: f64,
}

impl Scaling {
    /// No calibration.
    pub const IDENTITY: Scaling = Scaling {
        factor: 1.0,
        offset_bytes: 0.0,
    };

    /// The calibrated figure of a replay figure.
    pub fn apply(self, bytes: f64) -> f64 {
        self.offset_bytes + self.factor * bytes
    }
}

/// A peak observed in production (or a postmortem) at a known size.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObservedPeak {
    /// Rows loaded ("Ranking samples: N rows before optimization").
    pub rows_in: u64,
    /// `MAX_RANKING_SAMPLES` of that run (0 = none).
    pub max_ranking_samples: u64,
    /// The peak it reached, bytes.
    pub peak_bytes: u64,
    /// What the uncalibrated model predicted for it (filled in by `calibrate`).
    #[serde(default)]
    pub predicted_bytes: f64,
    /// The peak was *at least* `peak_bytes` (`ROWS>=PEAK`): a run killed at a
    /// memory limit reached the limit, and maybe more, so it bounds the
    /// calibration from below instead of pinning it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub at_least: bool,
    /// The stage the peak was seen in (`...@merge_user_features`): a kill in
    /// one stage says that stage needed the memory, which the model's figure
    /// for that stage (not its largest stage) must reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
}

impl ObservedPeak {
    /// Parses `ROWS=PEAK` or `ROWS:MAX_RANKING_SAMPLES=PEAK`, e.g.
    /// `8532146=48GiB`, `8532146:5000000=31GB`; `>=` instead of `=` for a
    /// lower bound (a kill at a limit), and `@STAGE` after the peak for the
    /// stage it was seen in: `11873402:0>=150GB@merge_user_features`.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| {
            bad_input(format!(
                "--observed {text}: {why} (expected ROWS=PEAK or ROWS:MAX_RANKING_SAMPLES=PEAK, `>=` for a lower bound, optionally @STAGE, e.g. 8532146=48GiB or 11873402:0>=150GB@merge_user_features)"
            ))
        };
        let (sizes, peak, at_least) = match text.split_once(">=") {
            Some((s, p)) => (s, p, true),
            None => {
                let (s, p) = text.split_once('=').ok_or_else(|| bad("no `=`"))?;
                (s, p, false)
            }
        };
        let (peak, stage) = match peak.split_once('@') {
            Some((p, st)) => {
                let st = st.trim();
                if st.is_empty() || !st.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(bad(
                        "STAGE after `@` must be a stage name such as merge_user_features",
                    ));
                }
                (p, Some(st.to_string()))
            }
            None => (peak, None),
        };
        let (rows, cap) = match sizes.split_once(':') {
            Some((r, c)) => (r, Some(c)),
            None => (sizes, None),
        };
        let count = |s: &str, what: &str| -> Result<u64> {
            s.trim()
                .replace(['_', ','], "")
                .parse::<u64>()
                .map_err(|_| bad(&format!("{what} `{}` is not a whole number", s.trim())))
        };
        let rows_in = count(rows, "ROWS")?;
        if rows_in == 0 {
            return Err(bad("ROWS must be positive"));
        }
        let max_ranking_samples = cap
            .map(|c| count(c, "MAX_RANKING_SAMPLES"))
            .transpose()?
            .unwrap_or(0);
        let peak_bytes = crate::units::parse_size(peak).map_err(|e| bad(&format!("PEAK: {e}")))?;
        Ok(Self {
            rows_in,
            max_ranking_samples,
            peak_bytes,
            predicted_bytes: 0.0,
            at_least,
            stage,
        })
    }

    /// The observation as `--observed` takes it back (the inverse of
    /// [`ObservedPeak::parse`]), so a postmortem can print the exact
    /// `oomlab check` line that reproduces its calibration.
    pub fn to_arg(&self) -> String {
        format!(
            "{}:{}{}{}{}",
            self.rows_in,
            self.max_ranking_samples,
            if self.at_least { ">=" } else { "=" },
            self.peak_bytes,
            self.stage
                .as_deref()
                .map(|s| format!("@{s}"))
                .unwrap_or_default()
        )
    }
}

/// Raises a scaling's factor until every lower bound holds: a run killed at a
/// limit needed at least that much, so the calibrated prediction for it (of
/// the stage it died in) must reach the limit. Bounds only ever raise the
/// model; one that already holds changes nothing.
pub(super) fn meet_bounds(scaling: Scaling, bounds: &[ObservedPeak]) -> Scaling {
    let mut out = scaling;
    for b in bounds
        .iter()
        .filter(|b| b.at_least && b.predicted_bytes > 0.0)
    {
        if out.apply(b.predicted_bytes) < b.peak_bytes as f64 {
            let factor = (b.peak_bytes as f64 - out.offset_bytes) / b.predicted_bytes;
            if factor.is_finite() && factor > out.factor {
                out.factor = factor;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observed_forms() {
        let o = ObservedPeak::parse("8532146=48GiB").unwrap();
        assert_eq!(
            (o.rows_in, o.max_ranking_samples, o.peak_bytes),
            (8_532_146, 0, 48 << 30)
        );
        let o = ObservedPeak::parse("8_532_146:5,000,000=31GB").unwrap();
        assert_eq!(
            (o.rows_in, o.max_ranking_samples, o.peak_bytes),
            (8_532_146, 5_000_000, 31_000_000_000)
        );
        for bad in ["8532146", "abc=1G", "100=12XB", "0=1G", "1:x=1G"] {
            let e = ObservedPeak::parse(bad).unwrap_err();
            assert_eq!(
                crate::error::exit_code_of(&e),
                crate::error::Exit::BadInput,
                "{bad}"
            );
            assert!(e.to_string().contains(bad), "{e}");
        }
    }
}
