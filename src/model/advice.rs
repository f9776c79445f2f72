//! From a model and a budget to a `MAX_RANKING_SAMPLES` a person can deploy.
//!
//! The write-up answers "which MAX_RANKING_SAMPLES?" by rule of thumb (its Q2).
//! Here the answer is the largest cap whose predicted peak stays under the
//! budget minus headroom, rounded *down* to two significant digits so it reads
//! like a setting (4,800,000, not 4,837,291) and never predicts more than the
//! exact solution did.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::{Model, Prediction, VariantModel};
use crate::error::bad_input;
use crate::machine::cgroup_memory_limit;
use crate::units::{format_bytes, parse_size};

/// Default share of the budget kept free (other processes, allocator slack,
/// the model's own error).
pub const DEFAULT_HEADROOM: f64 = 0.2;

/// The budgets `recommend` tabulates beside the write-up's rule of thumb, GiB.
pub const TABLE_BUDGETS_GIB: [u64; 6] = [16, 32, 50, 64, 100, 150];

/// A memory budget and where it came from (the answer says which).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Budget {
    pub bytes: u64,
    /// `--memory`, `cgroup memory limit` or `available memory (sysinfo)`.
    pub source: String,
}

/// The budget: `--memory` when given, else what this machine really offers the
/// pipeline: the container's limit when it runs under one, else the memory
/// available now.
pub fn budget(flag: Option<&str>) -> Result<Budget> {
    if let Some(text) = flag {
        return Ok(Budget {
            bytes: parse_size(text).map_err(|e| bad_input(format!("--memory {text}: {e}")))?,
            source: "--memory".into(),
        });
    }
    if let Some(limit) = cgroup_memory_limit() {
        return Ok(Budget {
            bytes: limit,
            source: "cgroup memory limit of this container".into(),
        });
    }
    let mut sys = sysinfo::System::new();
    sys.refresh_memory();
    Ok(Budget {
        bytes: sys.available_memory(),
        source: "available memory of this machine (sysinfo; no container limit found)".into(),
    })
}

/// Checks `--headroom`: a share in [0, 0.9].
pub fn validate_headroom(headroom: f64) -> Result<f64> {
    if headroom.is_finite() && (0.0..=0.9).contains(&headroom) {
        Ok(headroom)
    } else {
        Err(bad_input(format!(
            "--headroom {headroom}: expected a share of the budget in [0, 0.9], e.g. 0.2 for 20%"
        )))
    }
}

/// Rounds down to two significant digits: 4,837,291 -> 4,800,000; 987 -> 980.
pub fn readable_floor(n: u64) -> u64 {
    if n < 100 {
        return n;
    }
    let mut unit = 1u64;
    while n / unit >= 100 {
        unit *= 10;
    }
    n / unit * unit
}

/// The write-up's Q2 rule of thumb, read with the budget in GiB:
/// < 50 -> 2,000,000; 50-100 -> 5,000,000; > 100 -> 0 (no limit).
pub fn rule_of_thumb(budget_bytes: u64) -> u64 {
    let gib = budget_bytes as f64 / (1u64 << 30) as f64;
    if gib < 50.0 {
        2_000_000
    } else if gib <= 100.0 {
        5_000_000
    } else {
        0
    }
}

/// What to set for a budget.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Answer {
    /// Everything fits: `MAX_RANKING_SAMPLES=0`.
    NoSampling { prediction: Prediction },
    /// Sample down to `cap`.
    Cap { cap: u64, prediction: Prediction },
    /// Even sampling to a single row does not fit; `floor` is that peak.
    NoFit { floor: Prediction },
}

impl Answer {
    /// The `MAX_RANKING_SAMPLES` to set, if any fits.
    pub fn setting(&self) -> Option<u64> {
        match self {
            Answer::NoSampling { .. } => Some(0),
            Answer::Cap { cap, .. } => Some(*cap),
            Answer::NoFit { .. } => None,
        }
    }

    /// The prediction behind the answer (the floor when nothing fits).
    pub fn prediction(&self) -> &Prediction {
        match self {
            Answer::NoSampling { prediction } | Answer::Cap { prediction, .. } => prediction,
            Answer::NoFit { floor } => floor,
        }
    }
}

/// The largest `MAX_RANKING_SAMPLES` whose predicted peak is at most `limit`
/// bytes (budget after headroom) at `rows_in` rows loaded: the upper end of
/// the prediction's 95% interval, where the model has one.
///
/// Each stage's prediction is affine in the cap, `base_s + slope_s x cap`, so
/// the caps that fit form an interval; its upper end, rounded down to a
/// readable value, is the answer. Rounding down keeps it inside the interval
/// whenever the interval's lower end is 1 (every stage grows with the cap).
pub fn recommend(
    model: &Model,
    variant: &VariantModel,
    rows_in: u64,
    limit: f64,
) -> Result<Answer> {
    if variant.sampling.is_none() {
        return Err(bad_input(format!(
            "strategy `{}` ignores MAX_RANKING_SAMPLES; recommend for `optimized`",
            variant.strategy
        )));
    }
    let full = model.predict(variant, rows_in, 0);
    if full.upper_bytes() <= limit {
        return Ok(Answer::NoSampling { prediction: full });
    }
    let kept_full = model.rows_after_dropna(rows_in);
    let scaling = model.scaling();
    let (mut lo, mut hi) = (1.0f64, kept_full.saturating_sub(1) as f64);
    for stage in &variant.stages {
        let base =
            scaling.apply(stage.fit.fixed_bytes + stage.fit.bytes_per_row_in * rows_in as f64);
        let slope = stage.fit.bytes_per_row_kept * scaling.factor;
        if slope > 0.0 {
            hi = hi.min(((limit - base) / slope).floor());
        } else if slope < 0.0 {
            lo = lo.max(((limit - base) / slope).ceil());
        } else if base > limit {
            hi = -1.0;
        }
    }
    let floor = || model.predict(variant, rows_in, 1);
    if hi < lo || hi < 1.0 {
        return Ok(Answer::NoFit { floor: floor() });
    }
    let exact = hi as u64;
    let mut cap = readable_floor(exact);
    if (cap as f64) < lo {
        cap = exact;
    }
    // The affine bound above is the point's; the interval's upper end is
    // not affine in the cap, so step down to the largest cap it clears.
    let upper_fits = |c: u64| model.predict(variant, rows_in, c).upper_bytes() <= limit;
    if !upper_fits(cap) {
        match largest_fitting(1, cap, upper_fits) {
            Some(c) if c > 0 => {
                let readable = readable_floor(c);
                cap = if readable >= 1 && upper_fits(readable) {
                    readable
                } else {
                    c
                };
            }
            _ => return Ok(Answer::NoFit { floor: floor() }),
        }
    }
    let prediction = model.predict(variant, rows_in, cap);
    if prediction.upper_bytes() > limit {
        return Ok(Answer::NoFit { floor: floor() });
    }
    Ok(Answer::Cap { cap, prediction })
}

/// The most rows `variant` can load *without sampling* and stay at or under
/// `limit`, rounded down to a readable figure: issue 8's question "with
/// streaming, up to how many rows is no sampling needed?". `None` when the
/// model has no per-row cost in any stage (no bound); `Some(0)` when even the
/// fixed cost is over the limit.
///
/// Without a cap every stage predicts `fixed + (a + b x keep) x rows`, `keep`
/// being dropna's ratio, so each stage bounds the rows on its own and the
/// smallest bound wins.
pub fn max_rows_without_sampling(model: &Model, variant: &VariantModel, limit: f64) -> Option<u64> {
    let scaling = model.scaling();
    let mut bound = f64::INFINITY;
    for stage in &variant.stages {
        let f = &stage.fit;
        let fixed = scaling.apply(f.fixed_bytes);
        let slope =
            (f.bytes_per_row_in + f.bytes_per_row_kept * model.dropna_keep_ratio) * scaling.factor;
        if slope > 0.0 {
            bound = bound.min(((limit - fixed) / slope).floor().max(0.0));
        } else if fixed > limit {
            bound = 0.0;
        }
    }
    if !bound.is_finite() {
        return None;
    }
    let mut rows = readable_floor(bound as u64);
    // rows_after_dropna rounds; step down until the prediction agrees.
    while rows > 0 && model.predict(variant, rows, 0).upper_bytes() > limit {
        rows = readable_floor(rows - 1);
    }
    Some(rows)
}

/// How far the rows loaded can grow before the predicted peak crosses the
/// limit: the write-up's "will it OOM again when the exposure log grows?"
/// (its Q3), answered with the model's figures.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RowsHeadroom {
    /// Rows loaded today (the plan).
    pub rows_in: u64,
    /// The most rows loaded whose predicted peak stays within the limit
    /// (`None`: the peak never reaches it, as with a stage that does not grow).
    pub max_rows: Option<u64>,
    /// `max_rows / rows_in`: below 1 when today's rows do not fit.
    pub factor: Option<f64>,
}

/// The largest size in `[floor, ceiling)` whose prediction still fits, by
/// bisection (a model's peak only grows with rows and columns): `None` when
/// even `ceiling` fits (no limit in sight), `Some(0)` when `floor` does not.
/// One search for the rows and the columns headroom and the headroom chart.
pub fn largest_fitting(floor: u64, ceiling: u64, fits: impl Fn(u64) -> bool) -> Option<u64> {
    if fits(ceiling) {
        return None;
    }
    if !fits(floor) {
        return Some(0);
    }
    let (mut lo, mut hi) = (floor, ceiling);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(lo)
}

/// Rows headroom of `variant` at `MAX_RANKING_SAMPLES = cap` under `limit`
/// (bytes, after headroom), by bisection on the model's own prediction (so a
/// cap, the dropna ratio and any calibration count as they do everywhere).
pub fn rows_headroom(
    model: &Model,
    variant: &VariantModel,
    rows_in: u64,
    cap: u64,
    limit: f64,
) -> RowsHeadroom {
    let fits = |rows: u64| model.predict(variant, rows, cap).upper_bytes() <= limit;
    // The model is affine in the rows: past 2^40 rows nothing that grows fits.
    const CEILING: u64 = 1 << 40;
    let max_rows = largest_fitting(1, CEILING, fits);
    RowsHeadroom {
        rows_in,
        max_rows,
        factor: max_rows.map(|m| m as f64 / rows_in.max(1) as f64),
    }
}

/// One sentence on a rows headroom, for terminals.
pub fn rows_headroom_sentence(h: &RowsHeadroom, cap: u64) -> String {
    let held = if cap > 0 {
        format!(" (MAX_RANKING_SAMPLES={cap} held)")
    } else {
        String::new()
    };
    match (h.max_rows, h.factor) {
        (None, _) => format!("rows can grow without the predicted peak reaching the limit{held}"),
        (Some(0), _) => "no row count fits: the fixed cost alone is over the limit".into(),
        (Some(m), Some(f)) if f >= 1.0 => format!(
            "rows can grow {f:.1}x, to {}, before the predicted peak crosses the limit{held}",
            crate::units::format_count(m)
        ),
        (Some(m), _) => format!(
            "rows must shrink to {} ({:.0}% of today's) for the predicted peak to fit{held}",
            crate::units::format_count(m),
            h.factor.unwrap_or(0.0) * 100.0
        ),
    }
}

/// How far the feature columns can grow before the predicted peak crosses
/// the limit: the write-up's other growth risk ("a hundred more features",
/// its Q3), at today's rows and cap.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ColumnsHeadroom {
    /// What is counted (`numeric profile columns`).
    pub what: String,
    /// Columns today (the model's count, or `--columns`).
    pub columns: u64,
    /// The most columns whose predicted peak stays within the limit (`None`:
    /// the model has no column term, or the peak never reaches the limit).
    pub max_columns: Option<u64>,
    /// False when the model was measured at one column count: it cannot say.
    pub modelled: bool,
    /// The column counts the model was measured at.
    pub measured: Vec<u64>,
}

/// Past this many columns the question is moot (and bisection stops).
const COLUMNS_CEILING: u64 = 100_000;

/// Columns headroom of `variant` at `rows_in` rows loaded and
/// `MAX_RANKING_SAMPLES = cap` under `limit`, by bisection on the model's own
/// prediction (calibration included), as [`rows_headroom`] does for rows.
pub fn columns_headroom(
    model: &Model,
    variant: &VariantModel,
    rows_in: u64,
    cap: u64,
    limit: f64,
) -> ColumnsHeadroom {
    let columns = model.columns_now();
    let modelled = model.has_column_term();
    let fits = |c: u64| model.predict_at(variant, rows_in, cap, c).upper_bytes() <= limit;
    let max_columns = if modelled {
        largest_fitting(0, COLUMNS_CEILING, fits)
    } else {
        None
    };
    ColumnsHeadroom {
        what: super::COLUMNS_WHAT.to_string(),
        columns,
        max_columns,
        modelled,
        measured: model.columns_measured(),
    }
}

/// One sentence on a columns headroom, for terminals.
pub fn columns_headroom_sentence(h: &ColumnsHeadroom) -> String {
    let measured = h
        .measured
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if !h.modelled {
        return format!(
            "{} ({} today): the model was measured at {measured} only and has no column term; sweep with --columns to see how far they can grow",
            h.what, h.columns
        );
    }
    match h.max_columns {
        None => format!(
            "{} can grow from {} without the predicted peak reaching the limit",
            h.what, h.columns
        ),
        Some(m) if m >= h.columns => format!(
            "{} can grow from {} to {m} (+{}) before the predicted peak crosses the limit (measured at {measured})",
            h.what,
            h.columns,
            m - h.columns
        ),
        Some(m) => format!(
            "{} must shrink from {} to {m} for the predicted peak to fit (measured at {measured})",
            h.what, h.columns
        ),
    }
}

/// The growth table's row factors: the write-up's "exposure log grows 10x".
pub const GROWTH_ROW_FACTORS: [f64; 4] = [1.0, 2.0, 5.0, 10.0];

/// The growth table's added columns: its "a hundred or more new features".
pub const GROWTH_COLUMNS_ADDED: [u64; 4] = [0, 50, 100, 200];

/// One cell of the growth table: rows and columns grown together.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GrowthCell {
    pub rows_factor: f64,
    pub rows_in: u64,
    pub columns_added: u64,
    pub columns: u64,
    pub peak_bytes: f64,
    pub peak_stage: String,
    pub fits: bool,
}

/// Rows x columns grown together, each cell the model's prediction against
/// the limit (`MAX_RANKING_SAMPLES` held). Only the `+0` column when the
/// model has no column term.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GrowthTable {
    pub limit_bytes: f64,
    pub max_ranking_samples: u64,
    pub rows_factors: Vec<f64>,
    pub columns_added: Vec<u64>,
    /// Row-major: one row per rows factor, one cell per columns added.
    pub cells: Vec<Vec<GrowthCell>>,
}

/// The growth table of `variant` from `rows_in` rows and the model's column
/// count, at `MAX_RANKING_SAMPLES = cap` under `limit`.
pub fn growth_table(
    model: &Model,
    variant: &VariantModel,
    rows_in: u64,
    cap: u64,
    limit: f64,
) -> GrowthTable {
    let columns_added: Vec<u64> = if model.has_column_term() {
        GROWTH_COLUMNS_ADDED.to_vec()
    } else {
        vec![0]
    };
    let base = model.columns_now();
    let cells = GROWTH_ROW_FACTORS
        .iter()
        .map(|&f| {
            let rows = (rows_in as f64 * f).round() as u64;
            columns_added
                .iter()
                .map(|&added| {
                    let p = model.predict_at(variant, rows, cap, base + added);
                    GrowthCell {
                        rows_factor: f,
                        rows_in: rows,
                        columns_added: added,
                        columns: base + added,
                        fits: p.upper_bytes() <= limit,
                        peak_bytes: p.peak_bytes,
                        peak_stage: p.peak_stage,
                    }
                })
                .collect()
        })
        .collect();
    GrowthTable {
        limit_bytes: limit,
        max_ranking_samples: cap,
        rows_factors: GROWTH_ROW_FACTORS.to_vec(),
        columns_added,
        cells,
    }
}

/// Everything a budget judgement says about growth, as `--json` carries it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Growth {
    pub rows: RowsHeadroom,
    pub columns: ColumnsHeadroom,
    pub table: GrowthTable,
}

/// Rows, columns and both together, at the same plan and limit.
pub fn growth(model: &Model, variant: &VariantModel, rows_in: u64, cap: u64, limit: f64) -> Growth {
    Growth {
        rows: rows_headroom(model, variant, rows_in, cap, limit),
        columns: columns_headroom(model, variant, rows_in, cap, limit),
        table: growth_table(model, variant, rows_in, cap, limit),
    }
}

/// `N万` as the write-up writes row counts (500万, 200万, 12.5万).
pub fn wan(n: u64) -> String {
    let w = n as f64 / 10_000.0;
    if (w - w.round()).abs() < 1e-9 {
        format!("{}万", w.round() as u64)
    } else {
        format!("{w:.1}万")
    }
}

/// The `.env` lines to paste, in the write-up's format (its 方案 B).
pub fn env_snippet(setting: u64, note: &str) -> String {
    let value = format!("MAX_RANKING_SAMPLES={setting}");
    let comment = if setting == 0 {
        "不限制".to_string()
    } else {
        format!("限制为 {}", wan(setting))
    };
    format!("cat >> .env << EOF\n# 排序数据准备优化（{note}）\n{value:<30} # {comment}\nEOF\n")
}

/// One line for a budget: limit after headroom and the figures behind it.
pub fn describe_limit(budget: u64, headroom: f64) -> String {
    format!(
        "{} budget - {:.0}% headroom = {} limit",
        format_bytes(budget),
        headroom * 100.0,
        format_bytes((budget as f64 * (1.0 - headroom)) as u64)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_values() {
        assert_eq!(readable_floor(4_837_291), 4_800_000);
        assert_eq!(readable_floor(5_000_000), 5_000_000);
        assert_eq!(readable_floor(987), 980);
        assert_eq!(readable_floor(99), 99);
        assert_eq!(readable_floor(100), 100);
        assert_eq!(readable_floor(1_999_999), 1_900_000);
        for n in [1u64, 57, 1234, 99_999, 123_456_789] {
            assert!(readable_floor(n) <= n);
        }
    }

    #[test]
    fn rule_of_thumb_matches_the_write_up() {
        let gib = |g: u64| g << 30;
        assert_eq!(rule_of_thumb(gib(16)), 2_000_000);
        assert_eq!(rule_of_thumb(gib(49)), 2_000_000);
        assert_eq!(rule_of_thumb(gib(50)), 5_000_000);
        assert_eq!(rule_of_thumb(gib(100)), 5_000_000);
        assert_eq!(rule_of_thumb(gib(150)), 0);
    }

    #[test]
    fn env_snippet_in_the_write_ups_form() {
        let s = env_snippet(5_000_000, "64 GiB");
        assert!(s.contains("MAX_RANKING_SAMPLES=5000000"), "{s}");
        assert!(s.contains("限制为 500万"), "{s}");
        assert!(env_snippet(0, "x").contains("不限制"));
        assert_eq!(wan(125_000), "12.5万");
    }

    #[test]
    fn headroom_bounds() {
        assert!(validate_headroom(0.2).is_ok());
        assert!(validate_headroom(0.0).is_ok());
        assert!(validate_headroom(1.0).is_err());
        assert!(validate_headroom(-0.1).is_err());
        assert!(validate_headroom(f64::NAN).is_err());
    }
}

#[cfg(test)]
mod recommendation_tests {
    use super::*;
    use crate::model::synthetic;

    const ROWS: u64 = 8_532_146;

    /// Rows the answer keeps (no sampling keeps everything; `None` nothing).
    fn kept(model: &Model, answer: &Answer) -> Option<u64> {
        match answer {
            Answer::NoSampling { .. } => Some(model.rows_after_dropna(ROWS)),
            Answer::Cap { cap, .. } => Some(*cap),
            Answer::NoFit { .. } => None,
        }
    }

    #[test]
    fn monotone_in_the_budget_and_never_over_it() {
        let m = synthetic::model();
        let v = m.variant("optimized").unwrap();
        let mut last: Option<u64> = None;
        let mut seen_cap = false;
        for mib in (512..=80 * 1024).step_by(97) {
            let limit = (mib as u64 * (1 << 20)) as f64;
            let answer = recommend(&m, v, ROWS, limit).unwrap();
            let now = kept(&m, &answer);
            assert!(now >= last, "budget {mib} MiB: {now:?} after {last:?}");
            last = now;
            if let Some(setting) = answer.setting() {
                let p = m.predict(v, ROWS, setting);
                assert!(
                    p.peak_bytes <= limit,
                    "{mib} MiB: {} > {limit}",
                    p.peak_bytes
                );
                assert_eq!(readable_floor(setting), setting, "readable: {setting}");
                seen_cap |= setting > 0;
            }
        }
        assert!(
            seen_cap,
            "the sweep of budgets should include capped answers"
        );
        assert!(matches!(
            recommend(&m, v, ROWS, 80.0 * (1u64 << 30) as f64).unwrap(),
            Answer::NoSampling { .. }
        ));
    }

    #[test]
    fn the_exact_cap_is_tight() {
        // At the answer, one more readable step would not fit.
        let m = synthetic::model();
        let v = m.variant("optimized").unwrap();
        let limit = 20.0 * (1u64 << 30) as f64;
        let Answer::Cap { cap, prediction } = recommend(&m, v, ROWS, limit).unwrap() else {
            panic!("expected a cap at 20 GiB");
        };
        assert_eq!(prediction.peak_stage, "merge_dataset_profile");
        let exact = (limit - (1u64 << 30) as f64 - 300.0 * ROWS as f64) / 4000.0;
        assert!(
            cap as f64 <= exact && cap as f64 > exact * 0.9,
            "{cap} vs {exact}"
        );
    }

    #[test]
    fn rows_without_sampling_fit_and_one_more_step_does_not() {
        let m = synthetic::model();
        let v = m.variant("optimized").unwrap();
        let limit = 40.0 * (1u64 << 30) as f64;
        let rows = max_rows_without_sampling(&m, v, limit).unwrap();
        assert!(m.predict(v, rows, 0).peak_bytes <= limit);
        // merge: 1 GiB + (300 + 4000 x 0.98) B/row.
        let exact = (limit - (1u64 << 30) as f64) / (300.0 + 4000.0 * 0.98);
        assert!(
            rows as f64 <= exact && rows as f64 > 0.9 * exact,
            "{rows} vs {exact}"
        );
        assert_eq!(readable_floor(rows), rows);
        // More budget, more rows; below the fixed cost, none.
        let more = max_rows_without_sampling(&m, v, 2.0 * limit).unwrap();
        assert!(more > rows);
        assert_eq!(max_rows_without_sampling(&m, v, 1e9), Some(0));
    }

    #[test]
    fn columns_headroom_is_the_boundary_of_the_models_own_predictions() {
        let m = crate::model::synthetic::model_with_columns();
        let v = m.variant("optimized").unwrap();
        let limit = 40.0 * (1u64 << 30) as f64;
        let h = columns_headroom(&m, v, ROWS, 0, limit);
        assert!(h.modelled);
        assert_eq!(h.columns, 87);
        let max = h.max_columns.expect("the merge grows with the columns");
        assert!(max > 87, "{h:?}");
        assert!(m.predict_at(v, ROWS, 0, max).peak_bytes <= limit);
        assert!(m.predict_at(v, ROWS, 0, max + 1).peak_bytes > limit);
        assert!(columns_headroom_sentence(&h).contains(&format!("from 87 to {max}")));
        // The table marks the same boundary, and growing never helps.
        let t = growth_table(&m, v, ROWS, 0, limit);
        assert_eq!(t.columns_added, GROWTH_COLUMNS_ADDED.to_vec());
        for row in &t.cells {
            for c in row {
                assert_eq!(c.fits, c.peak_bytes <= limit);
                if c.rows_factor == 1.0 {
                    assert_eq!(c.fits, c.columns <= max, "{c:?}");
                }
            }
            assert!(row.windows(2).all(|w| w[0].peak_bytes <= w[1].peak_bytes));
        }
        // Without a column term: no answer, one column in the table.
        let plain = crate::model::synthetic::model();
        let v = plain.variant("optimized").unwrap();
        let h = columns_headroom(&plain, v, ROWS, 0, limit);
        assert!(!h.modelled && h.max_columns.is_none());
        assert!(columns_headroom_sentence(&h).contains("--columns"));
        assert_eq!(
            growth_table(&plain, v, ROWS, 0, limit).columns_added,
            vec![0]
        );
    }

    #[test]
    fn no_fit_below_the_fixed_cost() {
        let m = synthetic::model();
        let v = m.variant("optimized").unwrap();
        // load alone needs 2 GiB + 200 B x 8.5M rows ~ 3.6 GiB.
        let answer = recommend(&m, v, ROWS, 3.0 * (1u64 << 30) as f64).unwrap();
        let Answer::NoFit { floor } = &answer else {
            panic!("expected no fit, got {answer:?}");
        };
        assert_eq!(floor.peak_stage, "load");
        assert_eq!(answer.setting(), None);
        // The floor is enough: a limit at it finds a setting.
        let fits = recommend(&m, v, ROWS, floor.peak_bytes + 1e6).unwrap();
        assert!(fits.setting().is_some(), "{fits:?}");
        // Legacy cannot be sampled.
        let e = recommend(&m, m.variant("legacy").unwrap(), ROWS, 1e12).unwrap_err();
        assert_eq!(crate::error::exit_code_of(&e), crate::error::Exit::BadInput);
    }
}

#[cfg(test)]
mod interval_tests {
    use super::*;
    use crate::model::{fit, synthetic};

    const ROWS: u64 = 8_532_146;

    /// The synthetic model with every stage given the spread of a fit on
    /// noisy small runs: its answers must clear the interval's upper end.
    fn noisy() -> Model {
        let mut m = synthetic::model();
        for v in &mut m.variants {
            for s in &mut v.stages {
                let pts: Vec<fit::Observation> =
                    [(1e5, 0.98e5), (2e5, 0.5e5), (4e5, 3.9e5), (8e5, 2e5)]
                        .iter()
                        .enumerate()
                        .map(|(i, &(r, k))| fit::Observation {
                            rows_in: r,
                            rows_kept: k,
                            peak: s.fit.eval(r, k) + if i % 2 == 0 { 3e7 } else { -3e7 },
                        })
                        .collect();
                s.fit.spread = fit::fit(&pts).unwrap().spread;
            }
        }
        m
    }

    #[test]
    fn answers_clear_the_upper_end_and_cap_lower_than_the_point() {
        let (plain, noisy) = (synthetic::model(), noisy());
        let limit = (24u64 << 30) as f64;
        let v = noisy.variant("optimized").unwrap();
        let p = noisy.predict(v, ROWS, 1_000_000);
        let i = p.interval.expect("an interval");
        assert!(i.low_bytes < p.peak_bytes && p.peak_bytes < i.high_bytes);
        assert_eq!(p.upper_bytes(), i.high_bytes);
        let Answer::Cap { cap, prediction } = recommend(&noisy, v, ROWS, limit).unwrap() else {
            panic!("a cap fits 24 GiB");
        };
        assert!(prediction.upper_bytes() <= limit);
        let point_cap = recommend(&plain, plain.variant("optimized").unwrap(), ROWS, limit)
            .unwrap()
            .setting()
            .unwrap();
        assert!(cap < point_cap, "{cap} against {point_cap}");
        let h = rows_headroom(&noisy, v, ROWS, cap, limit);
        let max = h.max_rows.unwrap();
        assert!(noisy.predict(v, max, cap).upper_bytes() <= limit);
        assert!(noisy.predict(v, max + 1, cap).upper_bytes() > limit);
    }
}
