//! A command model from a command sweep's points: the fit per stage, the
//! held-out check at the largest size, the refusal of a sweep whose sizes did
//! not reach the command, and the model, tables and picture it writes.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::super::{fit_table, judged_table};
use super::template::uses_placeholders;
use super::Size;
use crate::error::bad_input;
use crate::model::{
    model_path, FittedVariants, Model, ModelScenario, ModelSource, Point, Validation, VariantModel,
    MODEL_SCHEMA_VERSION,
};
use crate::report::{self};
use crate::sampling::SamplingMode;
use crate::scenario::LoadedScenario;
use crate::units::{format_bytes, format_count};

/// A command's peaks must grow by at least this share of the smallest peak
/// between the smallest and the largest size, else the sizes did not reach
/// it (no placeholder used, or the environment ignored) and a model of it
/// would extrapolate noise.
const FLAT_SHARE: f64 = 0.02;

/// What a command model is fitted from: the points (by variant), the sizes
/// they were run at, and where they came from.
pub struct CommandFit<'a> {
    /// Points by variant (`command`, `command-sampled`), as [`file_point`] files them.
    pub points: BTreeMap<&'static str, Vec<Point>>,
    /// The sizes, smallest first; the largest is held out.
    pub sizes: &'a [Size],
    /// The scenario whose production rows the answers extrapolate to.
    pub scenario: &'a LoadedScenario,
    /// The data cache (`{data_dir}`'s root).
    pub cache_root: PathBuf,
    /// The machine of the first point.
    pub machine: crate::machine::MachineFacts,
    /// Python and pandas versions the command printed.
    pub versions: (Option<String>, Option<String>),
    /// The argv template.
    pub argv: Vec<String>,
    /// The stage pattern.
    pub stage_pattern: String,
    /// The allocator settings the points ran under (see
    /// [`crate::model::allocator_env`]).
    pub allocator_env: BTreeMap<String, String>,
    /// The numeric profile column counts swept (`--columns`; empty: the
    /// scenario's own only); the largest is held out with the largest size.
    pub columns: Vec<u64>,
}

/// Fits a command's model from its points: refuses peaks that do not grow
/// with the size, fits every variant on all but the largest size and judges
/// it there, then fits on all. One path for `sweep -- CMD` and `oomlab model
/// fit` on its reports, so both give the same model.
pub fn fit_command_model(fit: CommandFit<'_>) -> Result<Model> {
    let CommandFit {
        mut points,
        sizes,
        scenario,
        cache_root,
        machine,
        versions: version,
        argv: argv_template,
        stage_pattern,
        allocator_env,
        columns,
    } = fit;
    let holdout_rows = sizes.last().map_or(0, |s| s.rows);
    let columns_ref = scenario.scenario.production_sizes().profile_numeric_columns;
    let holdout_columns = columns.last().copied();
    // Judged over the whole range only: at small sizes a pipeline's fixed
    // cost (imports, pyarrow's pool) can dominate, and its noise can make a
    // second size peak below the first (pandas 3 did, at 170,643 and 341,286
    // rows) although the command does see the size.
    refuse_flat(&points, &argv_template)?;

    let kept_ratio: Vec<f64> = points
        .get("command")
        .into_iter()
        .flatten()
        .filter(|p| p.max_ranking_samples == 0)
        .map(|p| p.rows_kept as f64 / p.rows_in as f64)
        .collect();
    let dropna_keep_ratio = if kept_ratio.is_empty() {
        1.0
    } else {
        kept_ratio.iter().sum::<f64>() / kept_ratio.len() as f64
    };
    let held_out =
        |p: &Point| p.rows_in >= holdout_rows && holdout_columns.is_none_or(|c| p.columns >= c);
    let mut fitted = FittedVariants::default();
    for (name, sampling) in [
        ("command", None),
        ("command-sampled", Some(SamplingMode::Uniform)),
    ] {
        let Some(pts) = points.remove(name) else {
            continue;
        };
        let stage_names = common_stages(&pts);
        let names: Vec<&str> = stage_names.iter().map(String::as_str).collect();
        fitted.add(VariantModel::fit_checked(
            (name, "command", sampling),
            &names,
            pts,
            columns_ref,
            held_out,
        )?);
    }
    let scales: Vec<f64> = sizes.iter().map(|s| s.scale).collect();
    Ok(Model {
        schema_version: MODEL_SCHEMA_VERSION,
        oomlab_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: report::utc_now_rfc3339(),
        scenario: ModelScenario::of(scenario),
        scales: scales.clone(),
        cache_root,
        allocator: "the command's own (not chosen by oomlab)".into(),
        machine,
        dropna_keep_ratio,
        streaming_chunk_rows: 0,
        memory_mode: Default::default(),
        variants: fitted.variants,
        validation: Validation {
            holdout_scale: *scales.last().context("no sizes")?,
            fitted_scales: scales[..scales.len() - 1].to_vec(),
            points: fitted.held,
            max_abs_error_pct: fitted.max_abs_error_pct,
            holdout_columns,
            fitted_columns: columns
                .split_last()
                .map(|(_, rest)| rest.to_vec())
                .unwrap_or_default(),
        },
        calibration: None,
        production_checks: Vec::new(),
        machines: Vec::new(),
        source: ModelSource::Command {
            argv: argv_template,
            stage_pattern,
            python: version.0,
            pandas: version.1,
            allocator_env,
            named: BTreeMap::new(),
        },
        columns: crate::model::ColumnAxis {
            at: columns_ref,
            measured: if columns.is_empty() {
                vec![columns_ref]
            } else {
                columns.clone()
            },
        },
    })
}

/// Writes a command model (`model.json`, `sweep.md`, the picture) into
/// `out`, and to `saved` when given, and prints the held-out check and the
/// per-row costs: what `sweep -- CMD` and `model fit` show of it.
pub fn write_command_model(
    model: &Model,
    sizes: &[Size],
    out: &Path,
    saved: Option<&Path>,
    reports: &[String],
) -> Result<()> {
    let holdout_rows = sizes.last().map_or(0, |s| s.rows);
    let holdout_columns = model.validation.holdout_columns;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    model.write(&out.join("model.json"))?;
    crate::html::write_model_page(model, out);
    if let Some(path) = saved {
        model.write(&model_path(Some(path)))?;
    }
    let held_out = judged_table(&model.validation.points);
    let fits = fit_table(model);
    let pictures = crate::plot::render(&crate::plot::sweep::SweepChart::new(model), out)
        .unwrap_or_else(|e| {
            eprintln!("warning: picture not drawn: {e:#}");
            Vec::new()
        });
    let source = model.source.describe(model.memory_mode);
    let mut md = format!(
        "# Command sweep\n\nIn {source}.\n\nSizes (rows loaded): {}; held out: {}.\n\n## Held-out check\n\n{}\n## Fits\n\n{}\n",
        sizes
            .iter()
            .map(|s| format_count(s.rows))
            .collect::<Vec<_>>()
            .join(", "),
        format_count(holdout_rows),
        held_out.to_markdown(),
        fits.to_markdown()
    );
    md.push_str("\n## Reports\n\n");
    for r in reports {
        md.push_str(&format!("- `{r}`\n"));
    }
    report::write_atomically(&out.join("sweep.md"), md.as_bytes())?;

    println!("\nCommand sweep: {source}");
    println!(
        "Held-out check: fitted on {} rows{}, predicting {} rows{}",
        sizes[..sizes.len() - 1]
            .iter()
            .map(|s| format_count(s.rows))
            .collect::<Vec<_>>()
            .join(", "),
        if model.validation.fitted_columns.is_empty() {
            String::new()
        } else {
            format!(
                " x numeric profile columns {}",
                model
                    .validation
                    .fitted_columns
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        format_count(holdout_rows),
        holdout_columns
            .map(|c| format!(" at {c} columns (larger in both)"))
            .unwrap_or_default()
    );
    println!("{}", held_out.to_text());
    for (variant, err) in &model.validation.max_abs_error_pct {
        println!("  {variant}: largest held-out error {err:.1}%");
    }
    println!("\nPer-row costs (fitted on all sizes):");
    println!("{}", fits.to_text());
    for v in &model.variants {
        let at = model.predict(v, model.scenario.production.sample_rows, 0);
        println!(
            "  {}: {:.0} B/row loaded, fixed {}; at production size ({} rows, no cap) {} in {}",
            v.name,
            v.overall.bytes_per_row_in + v.overall.bytes_per_row_kept * model.dropna_keep_ratio,
            format_bytes(v.overall.fixed_bytes.max(0.0) as u64),
            format_count(model.scenario.production.sample_rows),
            at.describe(),
            at.peak_stage
        );
    }
    println!("model: {}", out.join("model.json").display());
    if let Some(path) = saved {
        println!("  (also saved as {})", path.display());
    }
    for p in &pictures {
        println!("picture: {}", p.display());
    }
    println!("summary: {}", out.join("sweep.md").display());
    Ok(())
}

/// Refuses (exit 2) a sweep whose peaks do not grow with the size: the
/// command never saw the sizes.
fn refuse_flat(points: &BTreeMap<&'static str, Vec<Point>>, argv: &[String]) -> Result<()> {
    let Some(pts) = points.get("command") else {
        return Ok(());
    };
    let unsampled: Vec<&Point> = pts.iter().filter(|p| p.max_ranking_samples == 0).collect();
    let (Some(small), Some(large)) = (
        unsampled.iter().min_by_key(|p| p.rows_in),
        unsampled.iter().max_by_key(|p| p.rows_in),
    ) else {
        return Ok(());
    };
    if large.rows_in <= small.rows_in {
        return Ok(());
    }
    let grew = large.peak_bytes as f64 - small.peak_bytes as f64;
    if grew < FLAT_SHARE * small.peak_bytes as f64 {
        let hint = if uses_placeholders(&argv.iter().map(OsString::from).collect::<Vec<_>>()) {
            "the command ignored the size it was given"
        } else {
            "no argument names {rows}, {scale}, {data_dir} or {max_ranking_samples}, and the command ignored $OOMLAB_ROWS, $OOMLAB_SCALE, $OOMLAB_DATA_DIR and $MAX_RANKING_SAMPLES"
        };
        return Err(bad_input(format!(
            "sweep -- {}: the peak did not grow with the size ({} at {} rows, {} at {} rows): {hint}; a model of it would extrapolate noise",
            argv.join(" "),
            format_bytes(small.peak_bytes),
            format_count(small.rows_in),
            format_bytes(large.peak_bytes),
            format_count(large.rows_in)
        )));
    }
    Ok(())
}

/// The stages every point has a peak for (by name): a stage the command
/// logs only at some sizes cannot be fitted.
fn common_stages(points: &[Point]) -> Vec<String> {
    let Some(first) = points.first() else {
        return Vec::new();
    };
    first
        .stage_peaks
        .keys()
        .filter(|name| points.iter().all(|p| p.stage_peaks.contains_key(*name)))
        .cloned()
        .collect()
}
