//! Each site's bytes against rows: what a line of the user's code costs per
//! row at a stage's peak, and which lines' costs changed between two
//! versions of the code.
//!
//! The fit is the stage model's own ([`crate::model::fit`]), on every size;
//! a second fit on every size but the largest predicts it, so a line's
//! figure is checked the way a stage's is.

use serde::{Deserialize, Serialize};

use super::attribute::{Site, StageLines};
use crate::model::fit::{fit, Observation};

/// One traced size: the rows, each stage's sites at its peak, and the kernel's
/// exact stage peaks of the untraced run at that size.
#[derive(Debug, Clone)]
pub struct SizedLines {
    pub rows: u64,
    pub stages: Vec<StageLines>,
    /// `(stage, exact peak)` of the untraced run, in stage order.
    pub kernel: Vec<(String, u64)>,
}

/// A site's bytes at one stage's peak, fitted against rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteFit {
    pub site: Site,
    /// Bytes at the stage's peak at each size (0: not holding memory there,
    /// or the traced run saw no peak of that stage at that size; the fit
    /// leaves those sizes out).
    pub bytes: Vec<u64>,
    /// Held at the stage's peak at every size, at least [`MIN_SITE_BYTES`]:
    /// a cost that grows with rows. A line caught at some sizes only (a
    /// fixed-size object live or not at the peak's moment, or charged to the
    /// next line of a statement written over several, a stage too short for
    /// a snapshot at small sizes) fits a per-row figure that is the moment's,
    /// not the line's: the gate does not judge it.
    #[serde(default)]
    pub steady: bool,
    /// Bytes per row loaded, fitted on every size.
    pub bytes_per_row: f64,
    /// The fit's value at zero rows, bytes.
    pub fixed_bytes: f64,
    /// The largest size as predicted by a fit on the others, and as
    /// measured (`None` with fewer than three sizes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_out: Option<(f64, u64)>,
}

impl SiteFit {
    /// The site's bytes at `rows` by its fit.
    pub fn at(&self, rows: u64) -> f64 {
        (self.fixed_bytes + self.bytes_per_row * rows as f64).max(0.0)
    }

    /// Held-out error, percent of the measured bytes.
    pub fn held_out_pct(&self) -> Option<f64> {
        let (predicted, measured) = self.held_out?;
        (measured > 0).then(|| (predicted - measured as f64) / measured as f64 * 100.0)
    }
}

/// One stage of a traced size, with the kernel's figure beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageAtSize {
    pub rows: u64,
    /// The sites' bytes together at the stage's peak (allocated since the first stage).
    pub sites_bytes: u64,
    /// memray's heap mark at that peak.
    pub heap_peak_bytes: u64,
    /// Held then, allocated before the first stage (the process baseline's heap).
    pub baseline_bytes: u64,
    /// Held then, allocated since the first stage outside the user's code.
    pub outside_bytes: u64,
    /// Resident at the stage's RSS high with no allocation holding it, above
    /// the baseline's (freed memory the allocator keeps, library pages).
    #[serde(default)]
    pub unheld_bytes: u64,
    /// The kernel's exact stage peak above the process baseline (its peak
    /// before the first marker), from the untraced run; `None` when that run
    /// has no such stage.
    pub kernel_above_baseline_bytes: Option<u64>,
}

/// One stage's sites over the sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageModel {
    pub stage: String,
    /// Largest cost per row first.
    pub sites: Vec<SiteFit>,
    /// The stage at each size.
    pub sizes: Vec<StageAtSize>,
    /// The kernel's per-row cost of the stage's peak, fitted the same way
    /// on the untraced runs, for the sites' per-row costs to add up to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_bytes_per_row: Option<f64>,
}

impl StageModel {
    /// The sites' per-row costs together.
    pub fn sites_bytes_per_row(&self) -> f64 {
        self.sites.iter().map(|s| s.bytes_per_row).sum()
    }
}

/// The lines of a command over its sizes: what `sweep --lines` writes as
/// `lines.json` and `gate --update --lines` blesses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinesModel {
    /// memray's version, as the capture says.
    pub memray: String,
    /// The traced interpreter's version.
    pub python: String,
    /// Rows of each traced size, smallest first.
    pub rows: Vec<u64>,
    pub stages: Vec<StageModel>,
}

/// Sites whose largest figure is below this are left out: allocator noise
/// and small objects, not what a row costs.
pub const MIN_SITE_BYTES: u64 = 256 << 10;

/// Fits every site of every stage against rows (sizes smallest first).
pub fn fit_sites(sized: &[SizedLines], memray: &str, python: &str) -> LinesModel {
    let rows: Vec<u64> = sized.iter().map(|s| s.rows).collect();
    let mut order: Vec<String> = Vec::new();
    for s in sized {
        for st in &s.stages {
            if !order.contains(&st.stage) {
                order.push(st.stage.clone());
            }
        }
    }
    let mut stages = Vec::new();
    for name in order {
        let at: Vec<Option<&StageLines>> = sized
            .iter()
            .map(|s| s.stages.iter().find(|st| st.stage == name))
            .collect();
        let mut keys: Vec<(String, Site)> = Vec::new();
        for st in at.iter().flatten() {
            for sb in &st.sites {
                let k = sb.site.key();
                if !keys.iter().any(|(kk, _)| *kk == k) {
                    keys.push((k, sb.site.clone()));
                }
            }
        }
        // The sizes whose traced run saw the stage: a line's per-row figure
        // is fitted on those only (a stage missing at a size is not a line
        // holding nothing), and needs two of them.
        let seen: Vec<usize> = (0..at.len()).filter(|&i| at[i].is_some()).collect();
        let seen_rows: Vec<u64> = seen.iter().map(|&i| rows[i]).collect();
        if seen.len() < 2 {
            keys.clear();
        }
        let mut sites: Vec<SiteFit> = keys
            .into_iter()
            .filter_map(|(key, site)| {
                let bytes: Vec<u64> = at
                    .iter()
                    .map(|st| {
                        st.map_or(0, |st| {
                            st.sites
                                .iter()
                                .filter(|s| s.site.key() == key)
                                .map(|s| s.bytes)
                                .sum()
                        })
                    })
                    .collect();
                if bytes.iter().copied().max().unwrap_or(0) < MIN_SITE_BYTES {
                    return None;
                }
                let on_seen: Vec<u64> = seen.iter().map(|&i| bytes[i]).collect();
                let mut fit = fit_one(site, &seen_rows, on_seen);
                fit.steady = bytes.iter().all(|&b| b >= MIN_SITE_BYTES);
                fit.bytes = bytes;
                Some(fit)
            })
            .collect();
        sites.sort_by(|a, b| b.bytes_per_row.total_cmp(&a.bytes_per_row));
        let sizes = sized
            .iter()
            .zip(&at)
            .filter_map(|(s, st)| {
                let st = (*st)?;
                let kernel = s.kernel.iter().find(|(n, _)| *n == name).map(|p| p.1);
                let base = s
                    .kernel
                    .iter()
                    .find(|(n, _)| n == crate::runner::FIRST_STAGE)
                    .map(|p| p.1);
                Some(StageAtSize {
                    rows: s.rows,
                    sites_bytes: st.sites_bytes(),
                    heap_peak_bytes: st.heap_peak_bytes,
                    baseline_bytes: st.baseline_bytes,
                    outside_bytes: st.outside_bytes,
                    unheld_bytes: st.unheld_bytes,
                    kernel_above_baseline_bytes: kernel.zip(base).map(|(k, b)| k.saturating_sub(b)),
                })
            })
            .collect();
        let kernel: Vec<u64> = sized
            .iter()
            .filter_map(|s| s.kernel.iter().find(|(n, _)| *n == name).map(|p| p.1))
            .collect();
        let kernel_bytes_per_row = (kernel.len() == rows.len() && rows.len() >= 2)
            .then(|| fit_one(Site::default(), &rows, kernel).bytes_per_row);
        stages.push(StageModel {
            stage: name,
            sites,
            sizes,
            kernel_bytes_per_row,
        });
    }
    LinesModel {
        memray: memray.to_string(),
        python: python.to_string(),
        rows,
        stages,
    }
}

/// A line fitted on every size (its cost per row, as the stage tables fit
/// theirs), and checked by a fit on every size but the largest predicting
/// the largest (with three sizes or more).
fn fit_one(site: Site, rows: &[u64], bytes: Vec<u64>) -> SiteFit {
    let obs: Vec<Observation> = rows
        .iter()
        .zip(&bytes)
        .map(|(&r, &b)| Observation {
            rows_in: r as f64,
            rows_kept: r as f64,
            peak: b as f64,
        })
        .collect();
    let line = |points: &[Observation]| match fit(points) {
        Ok(f) => (f.bytes_per_row_in + f.bytes_per_row_kept, f.fixed_bytes),
        Err(_) => (0.0, 0.0),
    };
    let (per_row, fixed) = line(&obs);
    let held_out = match (obs.split_last(), bytes.last()) {
        (Some((last, rest)), Some(&b)) if rest.len() >= 2 => {
            let (a, f) = line(rest);
            Some((f + a * last.rows_in, b))
        }
        _ => None,
    };
    SiteFit {
        site,
        bytes,
        steady: false,
        bytes_per_row: per_row,
        fixed_bytes: fixed,
        held_out,
    }
}

/// A line whose per-row cost grew, or that appeared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineChange {
    /// The stage at whose peak the line costs most now.
    pub stage: String,
    /// The line as it is now (file and line number of the code run now).
    pub site: Site,
    /// Its blessed cost per row (its largest over the stages); `None`: the
    /// blessed code has no such line holding memory at any stage's peak.
    pub baseline_bytes_per_row: Option<f64>,
    /// Its cost per row now, at `stage`'s peak.
    pub now_bytes_per_row: f64,
    /// The rise priced at production rows, bytes.
    pub at_production_bytes: f64,
}

/// A per-row rise below this is noise (a few small objects per row).
pub const FLOOR_BYTES_PER_ROW: f64 = 16.0;

/// A line that was there grows by more than this share of its blessed cost
/// before it is named (or by `--slope-tolerance`, when wider): one traced run
/// per size, a line's per-row figure moves with which of its transient
/// buffers are live at the peak's moment. On the unchanged v2 reference, the
/// dropna line measured 43 to 58 B/row over four blessings (pandas 2.3,
/// docs/lines.md); a doubling is what a planted copy of the frame does.
pub const LINE_NOISE_SHARE: f64 = 0.5;

/// A rise smaller than this share of its stage's kernel per-row cost does
/// not move what production pays; which transient buffers are live at a
/// stage's peak moment shifts by about that much between runs.
pub const MATERIAL_SHARE: f64 = 0.05;

/// Each user line's largest per-row cost over the stages, and where (only
/// its [`SiteFit::steady`] figures, with `steady_only`).
fn line_maxima(model: &LinesModel, steady_only: bool) -> Vec<(String, &SiteFit, &StageModel)> {
    let mut out: Vec<(String, &SiteFit, &StageModel)> = Vec::new();
    for stage in &model.stages {
        for fit in stage
            .sites
            .iter()
            .filter(|f| !f.site.file.is_empty() && (f.steady || !steady_only))
        {
            let key = fit.site.key();
            match out.iter_mut().find(|(k, _, _)| *k == key) {
                Some(seen) if seen.1.bytes_per_row < fit.bytes_per_row => *seen = (key, fit, stage),
                Some(_) => {}
                None => out.push((key, fit, stage)),
            }
        }
    }
    out
}

/// Lines of the user's code (library threads have no line to name) whose
/// largest steady per-row cost over the stages now rose by more than
/// `tolerance_pct` and [`LINE_NOISE_SHARE`] of the blessed one (its largest
/// over every stage), [`FLOOR_BYTES_PER_ROW`] and [`MATERIAL_SHARE`] of the
/// stage's kernel per-row cost, or that appeared holding that much; largest
/// rise first. Lines are matched by function and text, so a patched file or
/// shifted lines still match, and the largest over the stages is compared
/// because which stage's peak moment catches a buffer can shift. Only lines
/// held at every size are judged ([`SiteFit::steady`]): a fixed-size object
/// caught at one size's peak is a step, not a cost per row.
pub fn changes(
    baseline: &LinesModel,
    now: &LinesModel,
    tolerance_pct: f64,
    production_rows: u64,
) -> Vec<LineChange> {
    let before = line_maxima(baseline, false);
    let mut out = Vec::new();
    for (key, fit, stage) in line_maxima(now, true) {
        let was = before
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, f, _)| f.bytes_per_row);
        let base = was.unwrap_or(0.0).max(0.0);
        let rise = fit.bytes_per_row - base;
        let material = stage.kernel_bytes_per_row.unwrap_or(0.0).max(0.0) * MATERIAL_SHARE;
        if rise
            > FLOOR_BYTES_PER_ROW
                .max(base * (tolerance_pct / 100.0).max(LINE_NOISE_SHARE))
                .max(material)
        {
            out.push(LineChange {
                stage: stage.stage.clone(),
                site: fit.site.clone(),
                baseline_bytes_per_row: was,
                now_bytes_per_row: fit.bytes_per_row,
                at_production_bytes: rise * production_rows as f64,
            });
        }
    }
    out.sort_by(|a, b| b.at_production_bytes.total_cmp(&a.at_production_bytes));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lines::attribute::SiteBytes;

    fn site(line: u64, code: &str) -> Site {
        Site {
            file: "/w/prep.py".into(),
            line,
            function: "main".into(),
            code: code.into(),
        }
    }

    fn sized(rows: u64, sites: &[(u64, &str, u64)]) -> SizedLines {
        SizedLines {
            rows,
            stages: vec![StageLines {
                stage: "merge".into(),
                heap_peak_bytes: 0,
                baseline_bytes: 0,
                outside_bytes: 0,
                unheld_bytes: 0,
                sites: sites
                    .iter()
                    .map(|&(l, c, per_row)| SiteBytes {
                        site: site(l, c),
                        bytes: (1 << 20) + per_row * rows,
                    })
                    .collect(),
            }],
            kernel: vec![("start".into(), 50 << 20), ("merge".into(), 500 << 20)],
        }
    }

    #[test]
    fn each_site_is_fitted_and_its_largest_size_held_out() {
        let runs: Vec<SizedLines> = [10_000, 20_000, 40_000, 80_000]
            .iter()
            .map(|&r| sized(r, &[(5, "a = f()", 800), (9, "b = g()", 40)]))
            .collect();
        let model = fit_sites(&runs, "1.20", "3.11");
        let merge = &model.stages[0];
        assert_eq!(merge.sites[0].site.line, 5);
        assert!((merge.sites[0].bytes_per_row - 800.0).abs() < 1e-6);
        assert!(merge.sites[0].held_out_pct().unwrap().abs() < 1e-6);
        assert!((merge.sites[1].bytes_per_row - 40.0).abs() < 1e-6);
        assert_eq!(merge.sizes[0].kernel_above_baseline_bytes, Some(450 << 20));
    }

    #[test]
    fn a_line_that_appeared_or_grew_is_named_and_a_steady_one_is_not() {
        let rows = [10_000, 20_000, 40_000];
        let before: Vec<SizedLines> = rows
            .iter()
            .map(|&r| sized(r, &[(5, "a = f()", 800), (9, "b = g()", 40)]))
            .collect();
        let after: Vec<SizedLines> = rows
            .iter()
            .map(|&r| {
                sized(
                    r,
                    &[
                        (6, "a = f()", 805),
                        (7, "c = a.copy()", 300),
                        (10, "b = g()", 90),
                    ],
                )
            })
            .collect();
        let base = fit_sites(&before, "1", "3");
        let now = fit_sites(&after, "1", "3");
        let found = changes(&base, &now, 10.0, 1_000_000);
        let named: Vec<(u64, Option<f64>)> = found
            .iter()
            .map(|c| (c.site.line, c.baseline_bytes_per_row.map(f64::round)))
            .collect();
        assert_eq!(named, [(7, None), (10, Some(40.0))]);
        assert!((found[0].at_production_bytes - 300e6).abs() < 1e3);
        // A rise under 5% of the stage's kernel cost per row is not material.
        let mut quiet = now.clone();
        quiet.stages[0].kernel_bytes_per_row = Some(4_000.0);
        let found = changes(&base, &quiet, 10.0, 1_000_000);
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn a_line_caught_at_some_sizes_only_is_not_judged_and_a_missing_stage_is_not_zero() {
        let rows = [10_000, 20_000, 40_000];
        let before: Vec<SizedLines> = rows
            .iter()
            .map(|&r| sized(r, &[(5, "a = f()", 800)]))
            .collect();
        let mut after = before.clone();
        // A fixed 4 MiB object live at the largest size's peak only: 100 B/row
        // by a fit, but a step, not a cost per row.
        after[2].stages[0].sites.push(SiteBytes {
            site: site(9, "p = profile[cols]"),
            bytes: 4 << 20,
        });
        // The smallest size's traced run saw no peak of the stage.
        after[0].stages.clear();
        let base = fit_sites(&before, "1", "3");
        let now = fit_sites(&after, "1", "3");
        let merge = &now.stages[0];
        let a = merge.sites.iter().find(|f| f.site.line == 5).unwrap();
        assert!((a.bytes_per_row - 800.0).abs() < 1e-6, "{a:?}");
        assert!(!merge.sites.iter().any(|f| f.steady), "{merge:?}");
        assert_eq!(changes(&base, &now, 5.0, 1_000_000), []);
        // Seen at one size only, a stage has no per-row figures at all.
        after[1].stages.clear();
        assert!(fit_sites(&after, "1", "3").stages[0].sites.is_empty());
    }
}
