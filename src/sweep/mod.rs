//! `oomlab sweep`: measure every strategy at several small scales, fit the
//! memory model, check it on the largest scale, save `model.json`.
//!
//! Every run goes through [`ReplayPlan`], the one measuring code path, so a
//! sweep point is exactly what `oomlab run` would report at that scale.
//!
//! A layer above the model (which it fits), the pictures and the report
//! directories (which it writes); the `sweep`, `recommend` and `fidelity`
//! commands call into it.

pub mod budget;
pub mod command;
mod design;
mod extrapolate;
pub mod fidelity;
pub mod pods;
pub mod refit;
pub mod replay_budget;
pub mod similarity;
mod tables;

pub use design::{design, parse_columns, parse_fractions, parse_scales};
use extrapolate::{extrapolated_estimates, variants_fed, CHUNKS_FOR_AFFINE, EXTRAPOLATION_SLACK};
pub use tables::{fit_table, held_out_sentence, judged_table, production_table};
use tables::{join_scales, render_summary};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::data::cache::default_cache_root;
use crate::error::{bad_input, exit_with, Exit};
use crate::model::{
    model_path, HeldOut, Model, ModelScenario, Point, Validation, VariantModel,
    MODEL_SCHEMA_VERSION,
};
use crate::plot;
use crate::progress::Progress;
use crate::replay::ReplayPlan;
use crate::report::exit_for;
use crate::report::{self, Report, RunRecord, RunStatus};
use crate::sampling::SamplingMode;
use crate::scenario::{LoadedScenario, Scenario};
use crate::strategy::memory::MemoryMode;
use crate::strategy::{self, Strategy};
use crate::summary::write_report_dir;
use crate::units::{format_bytes, format_count};

/// What a sweep is asked for, typed (the command line fills it from `oomlab
/// sweep`'s flags).
#[derive(Debug, Clone)]
pub struct SweepSettings {
    /// The scenario file.
    pub scenario: PathBuf,
    /// The scales as given (`--scales`); checked by [`parse_scales`] here.
    pub scales: String,
    /// The sampled runs' caps as shares of the rows loaded (`--max-ranking-samples-fraction`).
    pub max_ranking_samples_fraction: String,
    /// Where generated data is cached (`None`: the default cache).
    pub cache_dir: Option<PathBuf>,
    /// RSS sampling interval.
    pub interval: Duration,
    /// The sweep's directory (`None`: `reports/runs/<time>-sweep-<scenario>/`).
    pub out: Option<PathBuf>,
    /// Where the model is also saved (`None`: the default model path).
    pub model: Option<PathBuf>,
    /// Start children even when preflight predicts they will not fit.
    pub force: bool,
    /// Rows per chunk for the `streaming` strategy.
    pub chunk_rows: u64,
    /// How the children hold their frames.
    pub memory_mode: MemoryMode,
    /// Also measure the production table's cases at scale 1 where they fit.
    pub production: bool,
    /// Numeric profile column counts to measure at each scale (`--columns`;
    /// empty: the scenario's count only). Checked by [`parse_columns`].
    pub columns: Vec<u64>,
    /// Print less.
    pub quiet: bool,
    /// `--budget`: pick the scales within this much wall time instead of
    /// taking `scales` (see [`budget`] and [`replay_budget`]).
    pub budget: Option<Duration>,
    /// `--production-rows`: the rows a budget sweep predicts at (`None`:
    /// the scenario's production rows).
    pub production_rows: Option<u64>,
}

impl SweepSettings {
    /// The sweep's directory: `--out`, else `reports/runs/<time>-sweep-<scenario>/`.
    pub fn out_dir(&self, scenario: &str) -> PathBuf {
        self.out
            .clone()
            .unwrap_or_else(|| crate::report::default_out_dir(&format!("sweep-{scenario}")))
    }
}

/// The caps of the production table: the write-up's two recommended settings.
pub const WRITE_UP_CAPS: [u64; 2] = [5_000_000, 2_000_000];

/// The variants a sweep fits: (name, strategy, sampling). Every strategy
/// that reads `MAX_RANKING_SAMPLES` gets one variant per way of sampling, since
/// uniform and per-dataset capped sampling keep different rows (and strings).
pub const VARIANTS: [(&str, &str, Option<SamplingMode>); 5] = [
    ("legacy", "legacy", None),
    ("optimized", "optimized", Some(SamplingMode::Uniform)),
    ("optimized-capped", "optimized", Some(SamplingMode::Capped)),
    ("streaming", "streaming", Some(SamplingMode::Uniform)),
    ("streaming-capped", "streaming", Some(SamplingMode::Capped)),
];

/// The strategies a sweep measures: every ranking-prep strategy, unsampled;
/// the ones that read `MAX_RANKING_SAMPLES`, also sampled.
const STRATEGIES: [&str; 3] = ["legacy", "optimized", "streaming"];

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
        columns: report.scenario.scaled.profile_numeric_columns,
        repeat_peaks: Vec::new(),
        repeat_stage_peaks: BTreeMap::new(),
    })
}

/// Files every run of a replay report as a point of the variants it feeds
/// (see [`variants_fed`]): run with `MAX_RANKING_SAMPLES = cap`, sampled the
/// `mode` way. Shared by the sweep and `oomlab model fit`, so a refit from
/// the sweep's reports makes the same points in the same order.
pub fn file_points(
    points: &mut BTreeMap<&'static str, Vec<Point>>,
    report: &Report,
    path: &Path,
    (cap, mode): (u64, SamplingMode),
) -> Result<()> {
    for run in &report.runs {
        let p = point(report, run, path)?;
        for variant in variants_fed(&run.strategy, cap, mode) {
            points.entry(variant).or_default().push(p.clone());
        }
    }
    Ok(())
}

/// Judges every run of a production-size report (`sweep --production`)
/// against the model: checks of the extrapolation, not points of the fit.
pub fn judge_production(
    model: &Model,
    report: &Report,
    path: &Path,
    (cap, mode): (u64, SamplingMode),
) -> Result<Vec<HeldOut>> {
    let mut checks = Vec::new();
    for run in &report.runs {
        let p = point(report, run, path)?;
        for variant in variants_fed(&run.strategy, cap, mode) {
            checks.push(model.variant(variant)?.judge(&p));
        }
    }
    Ok(checks)
}

/// The `command` of the reports `sweep --production` writes: `oomlab model
/// fit` judges them against the model instead of fitting on them, as the
/// sweep does.
pub const PRODUCTION_CHECK_COMMAND: &str = "sweep --production";

/// A plan for the scenario file at `scenario` with every replay setting at its
/// default ([`ReplaySettings::default`], the flags' own defaults) and no
/// cap. Callers then set the scale, `MAX_RANKING_SAMPLES` and sampling of
/// each run.
pub fn base_plan(
    command: &str,
    scenario: &Path,
    cache_root: &Path,
    interval: Duration,
    strategies: Vec<&'static dyn Strategy>,
) -> Result<ReplayPlan> {
    let settings = crate::replay::ReplaySettings {
        scenario: scenario.to_path_buf(),
        cache_dir: Some(cache_root.to_path_buf()),
        interval,
        max_ranking_samples: Some(0),
        ..Default::default()
    };
    let mut plan = crate::replay::plan(command, &settings, strategies)?;
    plan.max_ranking_samples_source = crate::settings::SettingSource::Harness;
    Ok(plan)
}

/// The plan of one sweep run: `strategies` at `scale` with
/// `MAX_RANKING_SAMPLES = cap` sampled the `mode` way, preflight judging them
/// by `estimates` where given.
pub fn sweep_plan(
    args: &SweepSettings,
    cache_root: &Path,
    (scale, cap, mode): (f64, u64, SamplingMode),
    strategies: Vec<&'static dyn Strategy>,
    estimates: BTreeMap<String, crate::preflight::Estimate>,
) -> Result<ReplayPlan> {
    let mut plan = base_plan(
        "sweep",
        &args.scenario,
        cache_root,
        args.interval,
        strategies,
    )?;
    plan.scale = scale;
    plan.max_ranking_samples = cap;
    plan.sampling = mode;
    plan.force = args.force;
    plan.estimates = estimates;
    plan.output.chunk_rows = args.chunk_rows;
    plan.memory_mode = args.memory_mode;
    Ok(plan)
}

/// `--production`: measures the production table's cases at scale 1, each
/// strategy only when the model fitted on the sweep's scales (plus
/// [`EXTRAPOLATION_SLACK`]) predicts it fits this machine; the rest stay
/// extrapolated and the output says why. Every measured run is judged against
/// that model: the check of the extrapolation itself, not only of one doubling.
fn measure_production(
    args: &SweepSettings,
    cache_root: &Path,
    model: &Model,
    out: &Path,
    progress: &mut Progress,
    reports: &mut Vec<String>,
) -> Result<Vec<HeldOut>> {
    let rows = model.scenario.production.sample_rows;
    if model.scales.iter().any(|s| (s - 1.0).abs() < 1e-12) {
        return Ok(Vec::new()); // the sweep measured production size already
    }
    let usable = crate::preflight::usable_memory()?;
    let kept = model.rows_after_dropna(rows);
    let mut cases = vec![(0u64, SamplingMode::Uniform)];
    for cap in WRITE_UP_CAPS.iter().copied().filter(|c| *c < kept) {
        cases.push((cap, SamplingMode::Uniform));
        cases.push((cap, SamplingMode::Capped));
    }
    let mut checks = Vec::new();
    for (cap, mode) in cases {
        let mut strategies = Vec::new();
        let mut estimates = BTreeMap::new();
        for name in STRATEGIES {
            let Some(variant) = variants_fed(name, cap, mode).first().copied() else {
                continue;
            };
            let Ok(v) = model.variant(variant) else {
                continue; // not in this model (streaming, in pandas mode)
            };
            if cap > 0 && v.sampling.is_none() {
                continue; // ignores the cap: measured (or not) without one
            }
            let predicted = model.predict(v, rows, cap).peak_bytes;
            let estimate = crate::preflight::Estimate {
                bytes: (predicted * (1.0 + EXTRAPOLATION_SLACK)) as u64,
                source: format!(
                    "the model fitted on this sweep's scales, +{:.0}%",
                    EXTRAPOLATION_SLACK * 100.0
                ),
            };
            // Never forced: --force is for the sweep's scales, not for runs
            // the model already says this machine cannot hold.
            if crate::preflight::check(name, &estimate, usable, false).is_ok() {
                strategies.push(strategy_by_name(name)?);
                estimates.insert(name.to_string(), estimate);
            } else {
                println!(
                    "production size: {variant} with MAX_RANKING_SAMPLES={cap} is predicted to peak at {} (+{:.0}% slack), more than this machine offers ({} of {}, less {:.0}%): left extrapolated",
                    format_bytes(predicted as u64),
                    EXTRAPOLATION_SLACK * 100.0,
                    format_bytes(usable.0),
                    usable.1,
                    crate::preflight::MARGIN_SHARE * 100.0
                );
            }
        }
        if strategies.is_empty() {
            continue;
        }
        let dir = out.join("production").join(if cap == 0 {
            "no-sampling".to_string()
        } else {
            format!("{}-{cap}", mode.name())
        });
        let mut plan = sweep_plan(args, cache_root, (1.0, cap, mode), strategies, estimates)?;
        plan.force = false;
        plan.command = PRODUCTION_CHECK_COMMAND.to_string();
        let report = match run_plan(plan, &dir, progress) {
            Ok(report) => report,
            Err(e) if crate::error::exit_code_of(&e) == Exit::Refused => {
                println!("production size: {e}; left extrapolated");
                continue;
            }
            Err(e) => return Err(e),
        };
        let path = dir.join("report.json");
        checks.extend(judge_production(model, &report, &path, (cap, mode))?);
        reports.push(path.display().to_string());
    }
    Ok(checks)
}

/// Runs one plan, streaming its samples into and writing its report
/// directory; refuses failed runs.
pub fn run_plan(mut plan: ReplayPlan, dir: &Path, progress: &mut Progress) -> Result<Report> {
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

/// One run of a replay sweep: strategies at a scale with a cap, sampled one
/// way, and its report directory relative to the sweep's.
#[derive(Clone)]
pub struct PlannedRun {
    pub scale: f64,
    /// The numeric profile columns of this run's data, when the sweep varies
    /// them (`--columns`); `None`: the scenario's own.
    pub columns: Option<u64>,
    pub strategies: Vec<&'static dyn Strategy>,
    /// `MAX_RANKING_SAMPLES` (0: none).
    pub cap: u64,
    pub mode: SamplingMode,
    /// `scale-X/no-sampling`, `scale-X/uniform-0.25`, ...
    pub dir: PathBuf,
}

/// A replay sweep, checked: its scenario, scales and every run in the
/// order it measures them. The sweep runs them; `--emit kubernetes` writes
/// one pod per run, with the same directories, so `oomlab model fit` on the
/// pods' results fits what the sweep would have.
pub struct SweepPlan {
    pub scenario: LoadedScenario,
    pub scales: Vec<f64>,
    pub runs: Vec<PlannedRun>,
}

/// Checks a replay sweep's settings and lists its runs (exit 2 on bad
/// input; similarity scenarios have a sweep of their own and are refused).
pub fn plan_sweep(args: &SweepSettings) -> Result<SweepPlan> {
    plan_sweep_at(args, parse_scales(&args.scales)?)
}

/// [`plan_sweep`] at `scales` (a budget sweep plans one scale at a time).
fn plan_sweep_at(args: &SweepSettings, scales: Vec<f64>) -> Result<SweepPlan> {
    let scenario = Scenario::load(&args.scenario)?;
    let memory_mode = args.memory_mode;
    crate::strategy::memory::check_workload(memory_mode, scenario.scenario.workload())?;
    if scenario.scenario.workload() == crate::scenario::Workload::Similarity {
        return Err(bad_input(format!(
            "{}: a similarity scenario; its sweep runs on one machine (no --emit)",
            args.scenario.display()
        )));
    }
    if scenario.scenario.scaling.scale_pools {
        return Err(bad_input(format!(
            "{}: key `scaling.scale_pools` is true: the dataset and user pools change with --scale, so a model in sample rows alone would mix pool costs into per-row costs (expected scale_pools = false for a sweep)",
            args.scenario.display()
        )));
    }
    let fractions = parse_fractions(&args.max_ranking_samples_fraction)?;
    for &c in &args.columns {
        scenario.scenario.with_numeric_profile_columns(c)?;
    }
    if args.chunk_rows == 0 {
        return Err(bad_input(
            "--chunk-rows 0: expected a positive number of rows per streaming chunk",
        ));
    }
    let all: Vec<&'static dyn Strategy> = crate::strategy::memory::replayable(
        memory_mode,
        STRATEGIES
            .iter()
            .map(|name| strategy_by_name(name))
            .collect::<Result<_>>()?,
    )?;
    let sampled: Vec<&'static dyn Strategy> = all
        .iter()
        .copied()
        .filter(|s| {
            VARIANTS
                .iter()
                .any(|(_, v, sampling)| *v == s.name() && sampling.is_some())
        })
        .collect();
    let mut runs = Vec::new();
    for (scale, columns) in design(&scales, &args.columns) {
        let shape = match columns {
            Some(c) => scenario.scenario.with_numeric_profile_columns(c)?,
            None => scenario.scenario.clone(),
        };
        let sizes = shape.sizes(scale);
        let scale_dir = PathBuf::from(match columns {
            Some(c) => format!("scale-{scale}-columns-{c}"),
            None => format!("scale-{scale}"),
        });
        runs.push(PlannedRun {
            scale,
            columns,
            strategies: all.clone(),
            cap: 0,
            mode: SamplingMode::Uniform,
            dir: scale_dir.join("no-sampling"),
        });
        for &fraction in &fractions {
            let cap = ((sizes.sample_rows as f64 * fraction).round() as u64).max(1);
            for mode in [SamplingMode::Uniform, SamplingMode::Capped] {
                runs.push(PlannedRun {
                    scale,
                    columns,
                    strategies: sampled.clone(),
                    cap,
                    mode,
                    dir: scale_dir.join(format!("{}-{fraction}", mode.name())),
                });
            }
        }
    }
    Ok(SweepPlan {
        scenario,
        scales,
        runs,
    })
}

/// `oomlab sweep`: measures, fits, checks, saves and prints the model.
pub fn sweep(args: SweepSettings) -> Result<Exit> {
    let scenario = Scenario::load(&args.scenario)?;
    if scenario.scenario.workload() == crate::scenario::Workload::Similarity {
        crate::strategy::memory::check_workload(args.memory_mode, scenario.scenario.workload())?;
        return similarity::sweep(&args, &scenario);
    }
    if let Some(budget) = args.budget {
        return replay_budget::sweep_within(args, budget);
    }
    let SweepPlan {
        scenario,
        scales,
        runs,
    } = plan_sweep(&args)?;
    let memory_mode = args.memory_mode;
    let cache_root = args.cache_dir.clone().unwrap_or_else(default_cache_root);
    let name = scenario.scenario.name.clone();
    let out = args.out_dir(&name);
    let mut progress = Progress::new(args.quiet);

    let mut points: BTreeMap<&'static str, Vec<Point>> = BTreeMap::new();
    let mut reports = Vec::new();
    let mut machine = None;
    let mut allocator = String::new();
    for run in runs {
        let (report, path) = measure_run(
            &args,
            (&scenario, &cache_root),
            run,
            &out,
            (&mut points, &mut progress),
        )?;
        machine.get_or_insert(report.machine.clone());
        allocator = report.allocator.clone();
        reports.push(path.display().to_string());
    }

    let mut model = build_model(
        &scenario,
        &scales,
        &cache_root,
        points,
        machine.unwrap_or_default(),
        allocator,
    )?;
    if !args.columns.is_empty() {
        // The column grid's largest count is held out with the largest scale.
        model.validation.holdout_columns = args.columns.last().copied();
        model.validation.fitted_columns = args.columns[..args.columns.len() - 1].to_vec();
    }
    model.streaming_chunk_rows = args.chunk_rows;
    model.memory_mode = memory_mode;
    if args.production {
        model.production_checks = measure_production(
            &args,
            &cache_root,
            &model,
            &out,
            &mut progress,
            &mut reports,
        )?;
    }
    let saved = model_path(args.model.as_deref());
    write_replay_model(&model, &out, Some(&saved), &reports)?;
    Ok(Exit::Ok)
}

/// Measures one run of a replay sweep into its directory under `out`, with
/// preflight judging it by the points so far, and files its points: the
/// fixed-scale and the budget sweep's one step. Returns the report and its path.
fn measure_run(
    args: &SweepSettings,
    (scenario, cache_root): (&LoadedScenario, &Path),
    run: PlannedRun,
    out: &Path,
    (points, progress): (&mut BTreeMap<&'static str, Vec<Point>>, &mut Progress),
) -> Result<(Report, PathBuf)> {
    let (scale, cap, mode) = (run.scale, run.cap, run.mode);
    let dir = out.join(&run.dir);
    let shape = match run.columns {
        Some(c) => scenario.scenario.with_numeric_profile_columns(c)?,
        None => scenario.scenario.clone(),
    };
    let sizes = shape.sizes(scale);
    let estimates = extrapolated_estimates(
        points,
        &run.strategies,
        (sizes.sample_rows, sizes.profile_numeric_columns),
        cap,
        mode,
    );
    let mut plan = sweep_plan(
        args,
        cache_root,
        (scale, cap, mode),
        run.strategies,
        estimates,
    )?;
    plan.scenario.scenario = shape;
    let report = run_plan(plan, &dir, progress)?;
    let path = dir.join("report.json");
    file_points(points, &report, &path, (cap, mode))?;
    Ok((report, path))
}

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

    let mut variants = Vec::new();
    let mut held = Vec::new();
    let mut max_err = BTreeMap::new();
    for (name, strategy_name, sampling) in VARIANTS {
        let Some(pts) = points.remove(name) else {
            continue;
        };
        let stages = strategy_by_name(strategy_name)?.stages();
        let (variant, judged) = VariantModel::fit_checked(
            (name, strategy_name, sampling),
            stages,
            pts,
            columns_ref,
            held_out,
        )?;
        held.extend(judged.points);
        max_err.insert(name.to_string(), judged.worst_abs_error_pct);
        variants.push(variant);
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
        variants,
        validation: Validation {
            holdout_scale: holdout,
            fitted_scales,
            points: held,
            max_abs_error_pct: max_err,
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
