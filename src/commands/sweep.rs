//! `oomlab sweep`: measure every strategy at several small scales, fit the
//! memory model, check it on the largest scale, save `model.json`.
//!
//! Every run goes through [`ReplayPlan`], the one measuring code path, so a
//! sweep point is exactly what `oomlab run` would report at that scale.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{default_out_dir, exit_for, parse_interval, write_report_dir};
use crate::cli::{ReplayArgs, SweepArgs};
use crate::data::cache::default_cache_root;
use crate::error::{bad_input, exit_with, Exit};
use crate::model::{
    model_path, HeldOut, Model, ModelScenario, Point, Validation, VariantModel,
    MODEL_SCHEMA_VERSION,
};
use crate::plot;
use crate::progress::Progress;
use crate::replay::ReplayPlan;
use crate::report::{self, Report, RunRecord, RunStatus};
use crate::sampling::SamplingMode;
use crate::scenario::{validate_scale, LoadedScenario, Scenario};
use crate::strategy::{self, Strategy};
use crate::table::Table;
use crate::units::{format_bytes, format_count};

/// The caps of the production table: the write-up's two recommended settings.
pub const WRITE_UP_CAPS: [u64; 2] = [5_000_000, 2_000_000];

/// The variants a sweep fits: (name, strategy, sampling).
const VARIANTS: [(&str, &str, Option<SamplingMode>); 3] = [
    ("legacy", "legacy", None),
    ("optimized", "optimized", Some(SamplingMode::Uniform)),
    ("optimized-capped", "optimized", Some(SamplingMode::Capped)),
];

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

fn strategy_by_name(name: &str) -> Result<&'static dyn Strategy> {
    strategy::by_name(name).with_context(|| format!("strategy `{name}` is not built in"))
}

/// A measured run turned into a model point.
fn point(report: &Report, run: &RunRecord, report_path: &Path) -> Result<Point> {
    let output = run.output.as_ref().with_context(|| {
        format!(
            "{}: run {} has no output rows",
            report_path.display(),
            run.strategy
        )
    })?;
    let stage_peaks: BTreeMap<String, u64> = run
        .stages
        .iter()
        .filter_map(|s| s.exact_peak_bytes.map(|p| (s.name.clone(), p)))
        .collect();
    Ok(Point {
        scale: report.scenario.scale,
        rows_in: report.scenario.scaled.sample_rows,
        rows_kept: output.rows,
        max_ranking_samples: report.settings.max_ranking_samples,
        peak_bytes: run.peak_bytes.unwrap_or(0),
        peak_stage: run.peak_stage().map(|s| s.name.clone()).unwrap_or_default(),
        stage_peaks,
        report: report_path.display().to_string(),
    })
}

/// A plan for the scenario file at `scenario` with every replay setting at its
/// command-line default, built by parsing flags as `oomlab run` does, so
/// settings added to replays later get their defaults here too. Callers then
/// set the scale, `MAX_RANKING_SAMPLES` and sampling of each run.
pub fn base_plan(
    command: &str,
    scenario: &Path,
    cache_root: &Path,
    interval: &str,
    strategies: Vec<&'static dyn Strategy>,
) -> Result<ReplayPlan> {
    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        replay: ReplayArgs,
    }
    let argv: Vec<OsString> = vec![
        command.into(),
        "--scenario".into(),
        scenario.into(),
        "--cache-dir".into(),
        cache_root.into(),
        "--interval".into(),
        interval.into(),
        "--max-ranking-samples".into(),
        "0".into(),
    ];
    let flags =
        <Flags as clap::Parser>::try_parse_from(argv).map_err(|e| bad_input(e.to_string()))?;
    let mut plan = super::plan(command, &flags.replay, strategies)?;
    plan.max_ranking_samples_source = command.to_string();
    Ok(plan)
}

/// Runs one plan, streaming its samples into and writing its report
/// directory; refuses failed runs.
fn run_plan(mut plan: ReplayPlan, dir: &Path, progress: &mut Progress) -> Result<Report> {
    plan.journal_dir = Some(dir.to_path_buf());
    let report = plan.run(progress)?;
    write_report_dir(&report, dir)?;
    let exit = exit_for(&report);
    if exit != Exit::Ok {
        let why: Vec<String> = report
            .runs
            .iter()
            .filter(|r| r.status != RunStatus::Completed)
            .map(|r| format!("{}: {:?}", r.strategy, r.status))
            .collect();
        return Err(exit_with(
            exit,
            format!(
                "sweep stopped: a run did not complete at scale {} ({}); report: {}",
                plan.scale,
                why.join("; "),
                dir.join("report.json").display()
            ),
        ));
    }
    Ok(report)
}

/// `oomlab sweep`.
pub fn sweep(args: SweepArgs) -> Result<Exit> {
    let scenario = Scenario::load(&args.scenario)?;
    if scenario.scenario.scaling.scale_pools {
        return Err(bad_input(format!(
            "{}: key `scaling.scale_pools` is true: the dataset and user pools change with --scale, so a model in sample rows alone would mix pool costs into per-row costs (expected scale_pools = false for a sweep)",
            args.scenario.display()
        )));
    }
    let scales = parse_scales(&args.scales)?;
    let fractions = parse_fractions(&args.max_ranking_samples_fraction)?;
    parse_interval(&args.interval)?;
    let cache_root = args.cache_dir.clone().unwrap_or_else(default_cache_root);
    let name = scenario.scenario.name.clone();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_out_dir(&format!("sweep-{name}")));
    let mut progress = Progress::new(args.quiet);
    let legacy = strategy_by_name("legacy")?;
    let optimized = strategy_by_name("optimized")?;

    let plan_at =
        |scale: f64, strategies: Vec<&'static dyn Strategy>, cap: u64, sampling: SamplingMode| {
            base_plan(
                "sweep",
                &args.scenario,
                &cache_root,
                &args.interval,
                strategies,
            )
            .map(|mut plan| {
                plan.scale = scale;
                plan.max_ranking_samples = cap;
                plan.sampling = sampling;
                plan.force = args.force;
                plan
            })
        };
    // Every scale is checked before anything runs: a sweep that would be
    // refused at its largest scale is refused before it spends the small ones.
    for &scale in &scales {
        plan_at(scale, vec![legacy, optimized], 0, SamplingMode::Uniform)?
            .preflight_all(None)
            .map_err(|e| {
                exit_with(
                    crate::error::exit_code_of(&e),
                    format!("sweep: scale {scale}: {e}"),
                )
            })?;
    }

    let mut points: BTreeMap<&str, Vec<Point>> = BTreeMap::new();
    let mut reports = Vec::new();
    let mut machine = None;
    let mut allocator = String::new();
    for &scale in &scales {
        let sizes = scenario.scenario.sizes(scale);
        let plan = |strategies: Vec<&'static dyn Strategy>, cap: u64, sampling: SamplingMode| {
            plan_at(scale, strategies, cap, sampling)
        };
        let scale_dir = out.join(format!("scale-{scale}"));
        let dir = scale_dir.join("no-sampling");
        let report = run_plan(
            plan(vec![legacy, optimized], 0, SamplingMode::Uniform)?,
            &dir,
            &mut progress,
        )?;
        let path = dir.join("report.json");
        for run in &report.runs {
            let p = point(&report, run, &path)?;
            if run.strategy == "legacy" {
                points.entry("legacy").or_default().push(p);
            } else {
                points.entry("optimized").or_default().push(p.clone());
                points.entry("optimized-capped").or_default().push(p);
            }
        }
        machine.get_or_insert(report.machine.clone());
        allocator = report.allocator.clone();
        reports.push(path.display().to_string());
        for &fraction in &fractions {
            let cap = ((sizes.sample_rows as f64 * fraction).round() as u64).max(1);
            for (variant, mode) in [
                ("optimized", SamplingMode::Uniform),
                ("optimized-capped", SamplingMode::Capped),
            ] {
                let dir = scale_dir.join(format!("{}-{fraction}", mode.name()));
                let report = run_plan(plan(vec![optimized], cap, mode)?, &dir, &mut progress)?;
                let path = dir.join("report.json");
                for run in &report.runs {
                    points
                        .entry(variant)
                        .or_default()
                        .push(point(&report, run, &path)?);
                }
                reports.push(path.display().to_string());
            }
        }
    }

    let model = build_model(
        &scenario,
        &scales,
        &cache_root,
        points,
        machine.unwrap_or_default(),
        allocator,
    )?;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    model.write(&out.join("model.json"))?;
    let saved = model_path(args.model.as_deref());
    model.write(&saved)?;

    let held_out = held_out_table(&model);
    let fits = fit_table(&model);
    let production = production_table(&model);
    let pictures = plot::render(&plot::sweep::SweepChart::new(&model), &out)?;
    let summary = render_summary(&model, &held_out, &fits, &production, &reports);
    report::write_atomically(&out.join("sweep.md"), summary.as_bytes())?;

    println!(
        "\nHeld-out check: fitted on scales {}, predicting scale {}",
        join_scales(&model.validation.fitted_scales),
        model.validation.holdout_scale
    );
    println!("{}", held_out.to_text());
    for (variant, err) in &model.validation.max_abs_error_pct {
        println!("  {variant}: largest held-out error {err:.1}%");
    }
    println!(
        "\nAt production size ({} rows loaded; model fitted on all {} scales):",
        format_count(model.scenario.production.sample_rows),
        model.scales.len()
    );
    println!("{}", production.to_text());
    println!(
        "model: {} (also saved as {})",
        out.join("model.json").display(),
        saved.display()
    );
    for p in &pictures {
        println!("picture: {}", p.display());
    }
    println!("summary: {}", out.join("sweep.md").display());
    Ok(Exit::Ok)
}

fn join_scales(scales: &[f64]) -> String {
    scales
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(", ")
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

    let mut variants = Vec::new();
    let mut held = Vec::new();
    let mut max_err = BTreeMap::new();
    for (name, strategy_name, sampling) in VARIANTS {
        let Some(pts) = points.remove(name) else {
            continue;
        };
        let stages = strategy_by_name(strategy_name)?.stages();
        let train: Vec<Point> = pts.iter().filter(|p| p.scale < holdout).cloned().collect();
        let checked = VariantModel::fit(name, strategy_name, sampling, stages, train)?;
        let mut worst = 0.0f64;
        for p in pts.iter().filter(|p| p.scale >= holdout) {
            let pred = checked.predict(p.rows_in, p.rows_kept, 1.0);
            let err = (pred.peak_bytes - p.peak_bytes as f64) / p.peak_bytes as f64 * 100.0;
            let fixed = checked
                .stages
                .iter()
                .find(|s| s.name == pred.peak_stage)
                .map_or(0.0, |s| s.fit.fixed_bytes);
            let row_part = p.peak_bytes as f64 - fixed;
            worst = worst.max(err.abs());
            held.push(HeldOut {
                variant: name.to_string(),
                rows_in: p.rows_in,
                rows_kept: p.rows_kept,
                max_ranking_samples: p.max_ranking_samples,
                measured_bytes: p.peak_bytes,
                predicted_bytes: pred.peak_bytes,
                error_pct: err,
                measured_stage: p.peak_stage.clone(),
                predicted_stage: pred.peak_stage.clone(),
                row_part_error_pct: (row_part > 0.05 * p.peak_bytes as f64)
                    .then(|| (pred.peak_bytes - p.peak_bytes as f64) / row_part * 100.0),
            });
        }
        max_err.insert(name.to_string(), worst);
        variants.push(VariantModel::fit(
            name,
            strategy_name,
            sampling,
            stages,
            pts,
        )?);
    }
    Ok(Model {
        schema_version: MODEL_SCHEMA_VERSION,
        oomlab_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: report::utc_now_rfc3339(),
        scenario: ModelScenario {
            name: scenario.scenario.name.clone(),
            path: scenario.path.display().to_string(),
            scenario: scenario.scenario.clone(),
            production: scenario.scenario.production_sizes(),
        },
        scales: scales.to_vec(),
        cache_root: absolute(cache_root),
        allocator,
        machine,
        dropna_keep_ratio,
        variants,
        validation: Validation {
            holdout_scale: holdout,
            fitted_scales,
            points: held,
            max_abs_error_pct: max_err,
        },
        calibration: None,
    })
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn cap_label(cap: u64) -> String {
    if cap == 0 {
        "none".into()
    } else {
        format_count(cap)
    }
}

/// Held-out runs against the model fitted without them.
pub fn held_out_table(model: &Model) -> Table {
    let headers = [
        "Variant",
        "Rows in",
        "MAX_RANKING_SAMPLES",
        "Measured peak",
        "Predicted",
        "Error",
        "Error on row-driven part",
        "Peak stage (measured / predicted)",
    ]
    .map(String::from)
    .to_vec();
    let rows = model
        .validation
        .points
        .iter()
        .map(|h| {
            vec![
                h.variant.clone(),
                format_count(h.rows_in),
                cap_label(h.max_ranking_samples),
                format_bytes(h.measured_bytes),
                format_bytes(h.predicted_bytes as u64),
                format!("{:+.1}%", h.error_pct),
                h.row_part_error_pct
                    .map_or("-".into(), |e| format!("{e:+.1}%")),
                format!("{} / {}", h.measured_stage, h.predicted_stage),
            ]
        })
        .collect();
    Table { headers, rows }
}

/// Every stage fit of every variant.
pub fn fit_table(model: &Model) -> Table {
    let headers = [
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
    let mut rows = Vec::new();
    for v in &model.variants {
        for s in &v.stages {
            let f = &s.fit;
            rows.push(vec![
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
            ]);
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
    if let Some(p) = v
        .points
        .iter()
        .find(|p| p.rows_in == rows && p.max_ranking_samples == cap)
    {
        return (
            Some(p.peak_bytes as f64),
            format!("{} (measured)", format_bytes(p.peak_bytes)),
        );
    }
    let pred = model.predict(v, rows, cap);
    (
        Some(pred.peak_bytes),
        format!("{} (extrapolated)", format_bytes(pred.peak_bytes as u64)),
    )
}

/// The write-up's memory table at the production row count.
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
    ]
    .map(String::from)
    .to_vec();
    let mut rows = Vec::new();
    let mut cases = vec![(0u64, "optimized", "ranking prep (no sampling)".to_string())];
    for cap in WRITE_UP_CAPS.iter().copied().filter(|c| *c < kept) {
        cases.push((
            cap,
            "optimized",
            format!("ranking prep (sampling to {})", format_count(cap)),
        ));
        cases.push((
            cap,
            "optimized-capped",
            format!("ranking prep (capped sampling to {})", format_count(cap)),
        ));
    }
    for (cap, variant, label) in cases {
        if model.variant(variant).is_err() {
            continue;
        }
        let (legacy, legacy_cell) = production_cell(model, "legacy", cap);
        let (after, after_cell) = production_cell(model, variant, cap);
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
        ]);
    }
    Table { headers, rows }
}

fn render_summary(
    model: &Model,
    held: &Table,
    fits: &Table,
    production: &Table,
    reports: &[String],
) -> String {
    let mut s = format!(
        "# Sweep: {} scenario\n\nScales {} ({} rows loaded at the largest); the model is `peak = fixed + a x rows_in + b x rows_kept` per stage, a strategy's peak the largest stage. Rows surviving dropna: {:.4} per row loaded. Allocator: {}.\n\n",
        model.scenario.name,
        join_scales(&model.scales),
        format_count(model.scenario.scenario.sizes(model.validation.holdout_scale).sample_rows),
        model.dropna_keep_ratio,
        model.allocator
    );
    s += &format!(
        "## Held-out check\n\nFitted on scales {}; predicting scale {}.\n\n{}\n",
        join_scales(&model.validation.fitted_scales),
        model.validation.holdout_scale,
        held.to_markdown()
    );
    for (v, e) in &model.validation.max_abs_error_pct {
        s += &format!("- {v}: largest held-out error {e:.1}%\n");
    }
    s += &format!(
        "\n## At production size\n\nModel fitted on all scales; {} rows loaded. Figures are of the replay (polars); calibrate with `oomlab recommend --observed ROWS=PEAK` to a production peak.\n\n{}\n![sweep](sweep.png)\n\n## Fits\n\n{}\n## Reports\n\n",
        format_count(model.scenario.production.sample_rows),
        production.to_markdown(),
        fits.to_markdown()
    );
    for r in reports {
        s += &format!("- {r}\n");
    }
    s
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
