//! `oomlab sweep`: measure every strategy at several small scales, fit the
//! memory model, check it on the largest scale, save `model.json`.
//!
//! Every run goes through [`ReplayPlan`], the one measuring code path, so a
//! sweep point is exactly what `oomlab run` would report at that scale.
//!
//! A layer above the model (which it fits), the pictures and the report
//! directories (which it writes); the `sweep`, `recommend` and `fidelity`
//! commands call into it.
//!
//! This file plans and runs the replay sweep; `fit.rs` makes, writes and
//! prints its model, `production.rs` runs `--production`, and the module
//! docs of the other files say theirs (docs/ARCHITECTURE.md lists them).

pub mod budget;
pub mod command;
mod design;
mod extrapolate;
pub mod fidelity;
mod fit;
pub mod pods;
mod production;
pub mod refit;
pub mod replay_budget;
pub mod similarity;
mod tables;

pub use design::{design, parse_columns, parse_fractions, parse_scales};
use extrapolate::{extrapolated_estimates, variants_fed, CHUNKS_FOR_AFFINE, EXTRAPOLATION_SLACK};
pub use fit::{build_model, write_replay_model};
use production::measure_production;
pub use production::{judge_production, PRODUCTION_CHECK_COMMAND};
pub use tables::{fit_table, held_out_sentence, judged_table, production_table};
use tables::{join_scales, render_summary};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::data::cache::default_cache_root;
use crate::error::{bad_input, exit_with, Exit};
use crate::model::{model_path, Point};
use crate::progress::Progress;
use crate::replay::ReplayPlan;
use crate::report::exit_for;
use crate::report::{Report, RunRecord, RunStatus};
use crate::sampling::SamplingMode;
use crate::scenario::{LoadedScenario, Scenario};
use crate::strategy::memory::MemoryMode;
use crate::strategy::{self, Strategy};
use crate::summary::write_report_dir;

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
