//! The replay model made of a sweep's points: every variant fitted and
//! checked on the largest scale ([`build_model`]), then written and printed
//! with its tables and picture ([`write_replay_model`]). The fixed-scale
//! sweep, the budget sweep and `oomlab model fit` share both.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{
    fit_table, held_out_sentence, judged_table, production_table, render_summary, strategy_by_name,
    CHUNKS_FOR_AFFINE, VARIANTS,
};
use crate::model::{
    FittedVariants, Model, ModelScenario, Point, Validation, VariantModel, MODEL_SCHEMA_VERSION,
};
use crate::plot;
use crate::report;
use crate::scenario::LoadedScenario;
use crate::strategy::memory::MemoryMode;
use crate::units::format_count;

/// Writes a replay model (`model.json`, `sweep.md`, the picture) into
/// `out`, and to `saved` when given, and prints the held-out check, the
/// production checks and table: what `sweep` and `model fit` show of it.
pub fn write_replay_model(
    model: &Model,
    out: &Path,
    saved: Option<&Path>,
    reports: &[String],
) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    model.write(&out.join("model.json"))?;
    crate::html::write_model_page(model, out);
    if let Some(saved) = saved {
        model.write(saved)?;
    }

    let held_out = judged_table(&model.validation.points);
    let production_checked = judged_table(&model.production_checks);
    let fits = fit_table(model);
    let production = production_table(model);
    let pictures = plot::render(&plot::sweep::SweepChart::new(model), out)?;
    let summary = render_summary(
        model,
        &held_out,
        &production_checked,
        &fits,
        &production,
        reports,
    );
    report::write_atomically(&out.join("sweep.md"), summary.as_bytes())?;

    println!("\nHeld-out check: {}", held_out_sentence(&model.validation));
    println!("{}", held_out.to_text());
    for (variant, err) in &model.validation.max_abs_error_pct {
        println!("  {variant}: largest held-out error {err:.1}%");
    }
    let smallest = model
        .scenario
        .scenario
        .sizes(model.scales.first().copied().unwrap_or(1.0))
        .sample_rows;
    let chunk_rows = model.streaming_chunk_rows;
    if model.variant("streaming").is_ok() && smallest < CHUNKS_FOR_AFFINE * chunk_rows {
        println!(
            "  note: the smallest scale loads {} rows, fewer than {CHUNKS_FOR_AFFINE} streaming chunks of {}: streaming's peak is a sawtooth in rows mod chunk (one chunk's working set), which an affine fit over so few chunks absorbs into its per-row cost; larger scales or a smaller --chunk-rows make its fit closer",
            format_count(smallest),
            format_count(chunk_rows)
        );
    }
    if !model.production_checks.is_empty() {
        println!(
            "\nProduction check ({} rows loaded, {:.0}x the largest scale): measured against the model fitted on the sweep's scales",
            format_count(model.scenario.production.sample_rows),
            1.0 / model.validation.holdout_scale
        );
        print!("{}", production_checked.to_text());
    }
    println!(
        "\nAt production size ({} rows loaded; model fitted on all {} scales):",
        format_count(model.scenario.production.sample_rows),
        model.scales.len()
    );
    println!("{}", production.to_text());
    match saved {
        Some(saved) => println!(
            "model: {} (also saved as {})",
            out.join("model.json").display(),
            saved.display()
        ),
        None => println!("model: {}", out.join("model.json").display()),
    }
    for p in &pictures {
        println!("picture: {}", p.display());
    }
    println!("summary: {}", out.join("sweep.md").display());
    Ok(())
}

/// Fits every variant, checks the fit on the largest scale, assembles the model.
pub fn build_model(
    scenario: &LoadedScenario,
    scales: &[f64],
    cache_root: &Path,
    mut points: BTreeMap<&str, Vec<Point>>,
    machine: crate::machine::MachineFacts,
    allocator: String,
) -> Result<Model> {
    let holdout = *scales.last().context("no scales")?;
    let fitted_scales: Vec<f64> = scales.iter().copied().filter(|s| *s < holdout).collect();
    let columns_ref = scenario.scenario.production_sizes().profile_numeric_columns;
    let mut measured_columns: Vec<u64> = points
        .values()
        .flatten()
        .map(|p| {
            if p.columns > 0 {
                p.columns
            } else {
                columns_ref
            }
        })
        .collect();
    measured_columns.sort_unstable();
    measured_columns.dedup();
    // With a column grid the held-out point is the one larger in both.
    let top_columns = measured_columns.last().copied().unwrap_or(columns_ref);
    let held_out =
        |p: &Point| p.scale >= holdout && (measured_columns.len() < 2 || p.columns >= top_columns);
    let (kept, loaded) = points
        .get("legacy")
        .into_iter()
        .flatten()
        .chain(
            points
                .get("optimized")
                .into_iter()
                .flatten()
                .filter(|p| p.max_ranking_samples == 0),
        )
        .fold((0u64, 0u64), |(k, l), p| (k + p.rows_kept, l + p.rows_in));
    let dropna_keep_ratio = if loaded > 0 {
        kept as f64 / loaded as f64
    } else {
        1.0
    };

    let mut fitted = FittedVariants::default();
    for (name, strategy_name, sampling) in VARIANTS {
        let Some(pts) = points.remove(name) else {
            continue;
        };
        let stages = strategy_by_name(strategy_name)?.stages();
        fitted.add(VariantModel::fit_checked(
            (name, strategy_name, sampling),
            stages,
            pts,
            columns_ref,
            held_out,
        )?);
    }
    Ok(Model {
        schema_version: MODEL_SCHEMA_VERSION,
        oomlab_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: report::utc_now_rfc3339(),
        scenario: ModelScenario::of(scenario),
        scales: scales.to_vec(),
        cache_root: absolute(cache_root),
        allocator,
        machine,
        dropna_keep_ratio,
        streaming_chunk_rows: 0,
        memory_mode: MemoryMode::Polars,
        variants: fitted.variants,
        validation: Validation {
            holdout_scale: holdout,
            fitted_scales,
            points: fitted.held,
            max_abs_error_pct: fitted.max_abs_error_pct,
            holdout_columns: None,
            fitted_columns: Vec::new(),
        },
        calibration: None,
        production_checks: Vec::new(),
        machines: Vec::new(),
        source: Default::default(),
        columns: crate::model::ColumnAxis {
            at: columns_ref,
            measured: measured_columns,
        },
    })
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
