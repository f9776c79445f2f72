//! The page of a `model.json`: per strategy, the fitted line of the peak
//! against rows loaded with the points it was fitted on, the held-out point
//! (measured, and predicted by the model fitted without it), the production
//! prediction as an interval, and the headroom grid (rows x feature columns)
//! against a budget.
//!
//! The figures are the model's own functions (`Model::predict_at`,
//! `advice::growth_table`), evaluated here, so the page says what
//! `recommend` and `check` would; the browser only draws them.

use serde::Serialize;

use super::{fact, machine_line, Fact, Kind, Page};
use crate::model::advice::growth_table;
use crate::model::{Model, ModelSource, VariantModel};
use crate::units::{format_bytes, format_count};

/// Points along a fitted line (log-spaced rows).
const LINE_SAMPLES: usize = 60;

/// The budget a model's headroom grid is judged against, and where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct Budget {
    pub bytes: u64,
    pub source: String,
}

/// `--budget`, else the write-up's 150 GB: the limit its production run was
/// OOM-killed at, the figure a capacity check of that pipeline starts from.
pub fn budget(flag: Option<u64>) -> Budget {
    match flag {
        Some(bytes) => Budget {
            bytes,
            source: "--budget".into(),
        },
        None => Budget {
            bytes: 150_000_000_000,
            source:
                "the write-up's production limit (150 GB, OOM-killed); pass --budget for another"
                    .into(),
        },
    }
}

#[derive(Debug, Clone, Serialize)]
struct XY {
    rows_in: u64,
    bytes: f64,
    stage: String,
}

#[derive(Debug, Clone, Serialize)]
struct HeldOutView {
    rows_in: u64,
    columns: u64,
    measured_bytes: u64,
    predicted_bytes: f64,
    error_pct: f64,
    stage: String,
}

#[derive(Debug, Clone, Serialize)]
struct ProductionView {
    rows_in: u64,
    columns: u64,
    peak_bytes: f64,
    stage: String,
    /// The held-out check's largest error of this variant, percent: the
    /// prediction is given as peak ± that.
    error_pct: Option<f64>,
    low_bytes: Option<f64>,
    high_bytes: Option<f64>,
    fits_budget: bool,
}

#[derive(Debug, Clone, Serialize)]
struct GridCell {
    rows_in: u64,
    columns: u64,
    peak_bytes: f64,
    stage: String,
    fits: bool,
}

#[derive(Debug, Clone, Serialize)]
struct GridView {
    rows_factors: Vec<f64>,
    columns_added: Vec<u64>,
    cells: Vec<Vec<GridCell>>,
}

#[derive(Debug, Clone, Serialize)]
struct VariantView {
    name: String,
    strategy: String,
    line: Vec<XY>,
    points: Vec<XY>,
    /// Points at other column counts or sampled, not on this line.
    points_elsewhere: usize,
    held_out: Vec<HeldOutView>,
    production: ProductionView,
    grid: GridView,
}

#[derive(Debug, Clone, Serialize)]
struct ModelBody {
    production_rows: u64,
    columns: u64,
    budget: Budget,
    measured_rows: (u64, u64),
    variants: Vec<VariantView>,
    production_checks: Vec<HeldOutView>,
    notes: Vec<String>,
}

fn log_grid(lo: f64, hi: f64, n: usize) -> Vec<u64> {
    let (a, b) = (lo.max(1.0).ln(), hi.max(2.0).ln());
    let mut v: Vec<u64> = (0..n)
        .map(|i| (a + (b - a) * i as f64 / (n - 1) as f64).exp().round() as u64)
        .collect();
    v.dedup();
    v
}

fn variant_view(model: &Model, v: &VariantModel, budget: &Budget) -> VariantView {
    let columns = model.columns_now();
    let prod_rows = model.scenario.production.sample_rows;
    let on_line = |p: &crate::model::Point| {
        p.max_ranking_samples == 0 && (p.columns == 0 || p.columns == columns)
    };
    let measured: Vec<u64> = v.points.iter().map(|p| p.rows_in).collect();
    let lo = measured.iter().copied().min().unwrap_or(1) as f64 / 2.0;
    let hi = measured.iter().copied().max().unwrap_or(1).max(prod_rows) as f64 * 2.0;
    let line = log_grid(lo, hi, LINE_SAMPLES)
        .into_iter()
        .map(|rows| {
            let p = model.predict_at(v, rows, 0, columns);
            XY {
                rows_in: rows,
                bytes: p.peak_bytes,
                stage: p.peak_stage,
            }
        })
        .collect();
    let points: Vec<XY> = v
        .points
        .iter()
        .filter(|p| on_line(p))
        .map(|p| XY {
            rows_in: p.rows_in,
            bytes: p.peak_bytes as f64,
            stage: p.peak_stage.clone(),
        })
        .collect();
    let held_out = model
        .validation
        .points
        .iter()
        .filter(|h| h.variant == v.name && h.max_ranking_samples == 0)
        .map(|h| HeldOutView {
            rows_in: h.rows_in,
            columns: if h.columns == 0 { columns } else { h.columns },
            measured_bytes: h.measured_bytes,
            predicted_bytes: h.predicted_bytes,
            error_pct: h.error_pct,
            stage: h.measured_stage.clone(),
        })
        .collect();
    let p = model.predict_at(v, prod_rows, 0, columns);
    let error_pct = model.validation.max_abs_error_pct.get(&v.name).copied();
    let band = error_pct.map(|e| p.peak_bytes * e.abs() / 100.0);
    let table = growth_table(model, v, prod_rows, 0, budget.bytes as f64);
    VariantView {
        name: v.name.clone(),
        strategy: v.strategy.clone(),
        line,
        points_elsewhere: v.points.len() - points.len(),
        points,
        held_out,
        production: ProductionView {
            rows_in: prod_rows,
            columns,
            peak_bytes: p.peak_bytes,
            stage: p.peak_stage.clone(),
            error_pct,
            low_bytes: band.map(|b| p.peak_bytes - b),
            high_bytes: band.map(|b| p.peak_bytes + b),
            fits_budget: p.peak_bytes + band.unwrap_or(0.0) <= budget.bytes as f64,
        },
        grid: GridView {
            rows_factors: table.rows_factors,
            columns_added: table.columns_added,
            cells: table
                .cells
                .into_iter()
                .map(|row| {
                    row.into_iter()
                        .map(|c| GridCell {
                            rows_in: c.rows_in,
                            columns: c.columns,
                            peak_bytes: c.peak_bytes,
                            stage: c.peak_stage,
                            fits: c.fits,
                        })
                        .collect()
                })
                .collect(),
        },
    }
}

fn provenance(model: &Model, source: &str) -> Vec<Fact> {
    let mut facts = Vec::new();
    let scales: Vec<String> = model.scales.iter().map(|s| s.to_string()).collect();
    let command = match &model.source {
        ModelSource::Replay => format!(
            "oomlab sweep --scenario {} --scales {}",
            model.scenario.path,
            scales.join(",")
        ),
        ModelSource::Command { argv, .. } => format!("oomlab sweep -- {}", argv.join(" ")),
    };
    facts.push(fact("command", command));
    // Whose bytes the figures are, in the words `recommend` and `check` print.
    facts.push(fact(
        "replay mode",
        model.source.describe(model.memory_mode),
    ));
    facts.push(fact(
        "held out",
        format!(
            "scale {} checked by the model fitted on {:?}",
            model.validation.holdout_scale, model.validation.fitted_scales
        ),
    ));
    if let Some(line) = crate::model::calibration_line(model) {
        facts.push(fact("calibration", line));
    }
    facts.push(fact("allocator", model.allocator.clone()));
    facts.push(fact("machine", machine_line(&model.machine)));
    if model.machines.len() > 1 {
        facts.push(fact(
            "machines",
            format!("{} machines pooled", model.machines.len()),
        ));
    }
    facts.push(fact(
        "written",
        format!(
            "{} by oomlab {} from {source}",
            model.created_at, model.oomlab_version
        ),
    ));
    facts
}

/// The page of a model; `source` names the `model.json` it shows.
pub fn page(model: &Model, source: &str, budget: Budget) -> Page {
    let mut seen = std::collections::BTreeSet::new();
    // One line per strategy: a capped variant's line without a cap is its
    // uncapped twin's, drawn twice it would only hide it.
    let variants: Vec<VariantView> = model
        .variants
        .iter()
        .filter(|v| seen.insert(v.strategy.clone()))
        .map(|v| variant_view(model, v, &budget))
        .collect();
    let rows: Vec<u64> = model
        .variants
        .iter()
        .flat_map(|v| v.points.iter().map(|p| p.rows_in))
        .collect();
    let mut notes = Vec::new();
    if !model.has_column_term() {
        notes.push(format!(
            "The model was measured at {} {} only: the grid's columns cannot be predicted (sweep with --columns).",
            model.columns_now(),
            crate::model::COLUMNS_WHAT
        ));
    }
    let skipped: Vec<&str> = model
        .variants
        .iter()
        .filter(|v| !variants.iter().any(|w| w.name == v.name))
        .map(|v| v.name.as_str())
        .collect();
    if !skipped.is_empty() {
        notes.push(format!(
            "Lines and grids are without MAX_RANKING_SAMPLES; the sampled variants ({}) are the same there and are in model.json.",
            skipped.join(", ")
        ));
    }
    let prod = model.scenario.production.sample_rows;
    let subtitle = variants
        .iter()
        .map(|v| {
            format!(
                "{} {} at {} rows",
                v.name,
                format_bytes(v.production.peak_bytes.max(0.0) as u64),
                format_count(prod)
            )
        })
        .collect::<Vec<_>>()
        .join(" · ");
    let body = ModelBody {
        production_rows: prod,
        columns: model.columns_now(),
        measured_rows: (
            rows.iter().copied().min().unwrap_or(0),
            rows.iter().copied().max().unwrap_or(0),
        ),
        variants,
        production_checks: model
            .production_checks
            .iter()
            .map(|h| HeldOutView {
                rows_in: h.rows_in,
                columns: h.columns,
                measured_bytes: h.measured_bytes,
                predicted_bytes: h.predicted_bytes,
                error_pct: h.error_pct,
                stage: format!("{}: {}", h.variant, h.measured_stage),
            })
            .collect(),
        budget,
        notes,
    };
    Page {
        kind: Kind::Model,
        title: format!("oomlab model: {}", model.scenario.name),
        subtitle,
        provenance: provenance(model, source),
        body: serde_json::to_value(body).unwrap_or_default(),
    }
}
