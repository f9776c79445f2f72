//! The sweep's tables and its `sweep.md`: the held-out check, the fits and
//! the production prediction, as a person reads them. Shared by the replay
//! sweep and the command sweep so both print the same columns.

use super::WRITE_UP_CAPS;
use crate::model::{interval, HeldOut, Model, Validation};
use crate::strategy::memory::MemoryMode;
use crate::table::Table;
use crate::units::{format_bytes, format_count};

/// What the held-out check fitted on and predicted, in words.
pub fn held_out_sentence(v: &Validation) -> String {
    match v.holdout_columns {
        Some(c) => format!(
            "fitted on scales {} x numeric profile columns {}, predicting scale {} at {c} columns (larger in both)",
            join_scales(&v.fitted_scales),
            v.fitted_columns
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            v.holdout_scale
        ),
        None => format!(
            "fitted on scales {}, predicting scale {}",
            join_scales(&v.fitted_scales),
            v.holdout_scale
        ),
    }
}

pub(super) fn join_scales(scales: &[f64]) -> String {
    scales
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn cap_label(cap: u64) -> String {
    if cap == 0 {
        "none".into()
    } else {
        format_count(cap)
    }
}

/// Measured runs against a model's predictions: the held-out scale against the
/// model fitted without it, or production-size runs (`--production`).
pub fn judged_table(judged: &[HeldOut]) -> Table {
    let mut headers = [
        "Variant",
        "Rows in",
        "MAX_RANKING_SAMPLES",
        "Measured peak",
        "Predicted",
        "95% interval",
        "Inside",
        "Error",
        "Error on row-driven part",
        "Peak stage (measured / predicted)",
    ]
    .map(String::from)
    .to_vec();
    // A column grid's points differ in columns: say at how many each was.
    let mut columns: Vec<u64> = judged.iter().map(|h| h.columns).collect();
    columns.sort_unstable();
    columns.dedup();
    let show_columns = columns.len() > 1;
    if show_columns {
        headers.insert(2, "Columns".to_string());
    }
    let rows = judged
        .iter()
        .map(|h| {
            let mut row = vec![
                h.variant.clone(),
                format_count(h.rows_in),
                cap_label(h.max_ranking_samples),
                format_bytes(h.measured_bytes),
                format_bytes(h.predicted_bytes as u64),
                interval::ends(h.interval),
                h.interval.map_or("-".into(), |i| {
                    let m = h.measured_bytes as f64;
                    if m >= i.low_bytes && m <= i.high_bytes {
                        "yes".to_string()
                    } else {
                        "no".to_string()
                    }
                }),
                format!("{:+.1}%", h.error_pct),
                h.row_part_error_pct
                    .map_or("-".into(), |e| format!("{e:+.1}%")),
                format!("{} / {}", h.measured_stage, h.predicted_stage),
            ];
            if show_columns {
                row.insert(2, h.columns.to_string());
            }
            row
        })
        .collect();
    Table { headers, rows }
}

/// Every stage fit of every variant.
pub fn fit_table(model: &Model) -> Table {
    let mut headers = [
        "Variant",
        "Stage",
        "Fixed",
        "Bytes/row in",
        "Bytes/row kept",
        "R²",
        "Max |residual|",
    ]
    .map(String::from)
    .to_vec();
    let with_columns = model.has_column_term();
    if with_columns {
        headers.extend(
            [
                "Bytes/column",
                "Bytes/row in/column",
                "Bytes/row kept/column",
            ]
            .map(String::from),
        );
    }
    let mut rows = Vec::new();
    for v in &model.variants {
        for s in &v.stages {
            let f = &s.fit;
            let mut row = vec![
                v.name.clone(),
                s.name.clone(),
                format_bytes(f.fixed_bytes.max(0.0) as u64),
                format!("{:.0}", f.bytes_per_row_in),
                if f.rows_kept_identified {
                    format!("{:.0}", f.bytes_per_row_kept)
                } else {
                    "(folded into rows in)".into()
                },
                format!("{:.4}", f.r2),
                format_bytes(f.max_abs_residual() as u64),
            ];
            if with_columns {
                row.extend([
                    format!("{:.0}", f.bytes_per_column),
                    format!("{:.1}", f.bytes_per_row_in_per_column),
                    format!("{:.1}", f.bytes_per_row_kept_per_column),
                ]);
            }
            rows.push(row);
        }
    }
    Table { headers, rows }
}

/// A figure at production size, marked measured when a sweep point is exactly
/// there, extrapolated otherwise.
fn production_cell(model: &Model, variant: &str, cap: u64) -> (Option<f64>, String) {
    let Ok(v) = model.variant(variant) else {
        return (None, "-".into());
    };
    let rows = model.scenario.production.sample_rows;
    let cap = if v.sampling.is_some() { cap } else { 0 };
    let measured = v
        .points
        .iter()
        .find(|p| p.rows_in == rows && p.max_ranking_samples == cap)
        .map(|p| p.peak_bytes)
        .or_else(|| {
            model
                .production_checks
                .iter()
                .find(|h| h.variant == v.name && h.rows_in == rows && h.max_ranking_samples == cap)
                .map(|h| h.measured_bytes)
        });
    if let Some(bytes) = measured {
        return (
            Some(bytes as f64),
            format!("{} (measured)", format_bytes(bytes)),
        );
    }
    let pred = model.predict(v, rows, cap);
    (
        Some(pred.peak_bytes),
        format!("{} extrapolated", pred.describe()),
    )
}

/// The write-up's memory table at the production row count: legacy against
/// v2 (`optimized`) without sampling and at the write-up's two caps, each way
/// of sampling, with `streaming` beside them, every figure marked measured or
/// extrapolated.
pub fn production_table(model: &Model) -> Table {
    let rows_in = model.scenario.production.sample_rows;
    let kept = model.rows_after_dropna(rows_in);
    let headers = [
        "Scenario",
        "Data size",
        "legacy peak",
        "optimized (v2) peak",
        "Reduction",
        "Peak stage (v2)",
        "streaming peak",
    ]
    .map(String::from)
    .to_vec();
    let mut rows = Vec::new();
    let mut cases = vec![(
        0u64,
        ("optimized", "streaming"),
        "ranking prep (no sampling)".to_string(),
    )];
    for cap in WRITE_UP_CAPS.iter().copied().filter(|c| *c < kept) {
        cases.push((
            cap,
            ("optimized", "streaming"),
            format!("ranking prep (sampling to {})", format_count(cap)),
        ));
        cases.push((
            cap,
            ("optimized-capped", "streaming-capped"),
            format!("ranking prep (capped sampling to {})", format_count(cap)),
        ));
    }
    for (cap, (variant, streaming), label) in cases {
        if model.variant(variant).is_err() {
            continue;
        }
        let (legacy, legacy_cell) = production_cell(model, "legacy", cap);
        let (after, after_cell) = production_cell(model, variant, cap);
        let (_, streaming_cell) = production_cell(model, streaming, cap);
        let reduction = match (legacy, after) {
            (Some(b), Some(a)) if b > 0.0 => format!("{:.1}% ↓", (b - a) / b * 100.0),
            _ => "-".into(),
        };
        let stage = model
            .variant(variant)
            .map(|v| model.predict(v, rows_in, cap).peak_stage)
            .unwrap_or_default();
        let size = if cap == 0 {
            format!("{} samples", format_count(rows_in))
        } else {
            format!("{} -> {} samples", format_count(rows_in), format_count(cap))
        };
        rows.push(vec![
            format!("{}: {label}", model.scenario.name),
            size,
            legacy_cell,
            after_cell,
            reduction,
            stage,
            streaming_cell,
        ]);
    }
    Table { headers, rows }
}

pub(super) fn render_summary(
    model: &Model,
    held: &Table,
    production_checked: &Table,
    fits: &Table,
    production: &Table,
    reports: &[String],
) -> String {
    let mut s = format!(
        "# Sweep: {} scenario\n\nScales {} ({} rows loaded at the largest); the model is `peak = fixed + a x rows_in + b x rows_kept` per stage (with `--columns`, plus `d x columns + rows x (e + g x columns)` for the numeric profile columns), a strategy's peak the largest stage. Rows surviving dropna: {:.4} per row loaded. Allocator: {}.\n\n",
        model.scenario.name,
        join_scales(&model.scales),
        format_count(model.scenario.scenario.sizes(model.validation.holdout_scale).sample_rows),
        model.dropna_keep_ratio,
        model.allocator
    );
    if model.memory_mode == MemoryMode::Pandas {
        s += &format!(
            "Memory mode: {} (figures track a pandas process's bytes per row; no `streaming`).\n\n",
            model.memory_mode.describe()
        );
    }
    s += &format!(
        "## Held-out check\n\n{}.\n\n{}\n",
        held_out_sentence(&model.validation),
        held.to_markdown()
    );
    for (v, e) in &model.validation.max_abs_error_pct {
        s += &format!("- {v}: largest held-out error {e:.1}%\n");
    }
    if !model.production_checks.is_empty() {
        s += &format!(
            "\n## Production check\n\nMeasured at production size ({} rows loaded), against the model fitted on the sweep's scales.\n\n{}\n",
            format_count(model.scenario.production.sample_rows),
            production_checked.to_markdown()
        );
    }
    s += &format!(
        "\n## At production size\n\nModel fitted on all scales; {} rows loaded. Figures are of the replay ({} memory mode); calibrate with `oomlab recommend --fidelity fidelity.json` (or `--observed ROWS=PEAK`) to pandas' bytes.\n\n{}\n![sweep](sweep.png)\n\n## Fits\n\n{}\n## Reports\n\n",
        format_count(model.scenario.production.sample_rows),
        model.memory_mode.name(),
        production.to_markdown(),
        fits.to_markdown()
    );
    for r in reports {
        s += &format!("- {r}\n");
    }
    s
}
