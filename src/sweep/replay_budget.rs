//! `oomlab sweep --budget 2m` (no command): the replay sweep with its scales
//! chosen within a time budget the way the command sweep chooses its sizes
//! ([`super::budget`]): one small scale of the ladder first, then the largest
//! scales whose runs (every strategy, unsampled and sampled, as a fixed-scale
//! sweep runs them) fit in what is left and in this machine's memory. The
//! data of each scale is got before its runs, outside the budget, from the
//! cache the next sweep reuses. The replay's peaks are nearly deterministic,
//! so it spends no time on repeats. Writes the model (with its intervals, the
//! held-out check's lack of fit carried past the largest scale) as any replay
//! sweep does, plus `budget.json`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use super::budget::{
    ladder_rows, ladder_top, next_planned, stop_reason, Budget, Plan, Stop, TimeModel, START_SHIFT,
    TARGET_HALF_WIDTH,
};
use super::extrapolate::{extrapolated_estimates, EXTRAPOLATION_SLACK};
use super::{build_model, measure_run, plan_sweep_at, SweepSettings};
use crate::data::cache::default_cache_root;
use crate::error::{bad_input, Exit};
use crate::model::{model_path, Model, Point, Prediction};
use crate::progress::Progress;
use crate::report;
use crate::scenario::Scenario;
use crate::units::format_count;

/// The unsampled variants whose intervals at the target decide when a
/// budget replay sweep is narrow enough (the sampled ones follow the same
/// runs).
const JUDGED: [&str; 3] = ["legacy", "optimized", "streaming"];

/// One scale of a budget replay sweep, as `budget.json` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayBudgetStep {
    /// The scale of the step's runs (a ladder size over the production rows).
    pub scale: f64,
    /// Rows loaded at that scale.
    pub rows: u64,
    /// Wall time of the scale's runs (every strategy, every cap), seconds.
    pub secs: f64,
    /// Wall time of getting its data (generated once, then from the cache),
    /// seconds: not counted in the budget.
    pub data_secs: f64,
    /// The largest peak of the scale's runs, bytes.
    pub peak_bytes: u64,
}

/// What a budget replay sweep spent and found, written as `budget.json`.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayBudgetOutcome {
    /// The budget given (`--budget`), seconds.
    pub budget_secs: f64,
    /// Wall time of the runs, seconds: what the budget counts.
    pub spent_secs: f64,
    /// Wall time of getting data, seconds: outside the budget.
    pub data_secs: f64,
    /// Wall time of the whole sweep, seconds.
    pub wall_secs: f64,
    /// The rows predicted at (`--production-rows`, or the scenario's).
    pub target_rows: u64,
    /// Every scale measured, in the order measured.
    pub steps: Vec<ReplayBudgetStep>,
    /// Each unsampled variant's prediction at the target rows (no cap), with
    /// its 95% interval.
    pub predictions: BTreeMap<String, Prediction>,
    /// The widest of their intervals' half-widths, as a share of the prediction.
    pub half_width: f64,
    /// True when it stopped because that half-width was within ±5%.
    pub reached_target_width: bool,
    /// Why it stopped, in words (also printed).
    pub stopped_because: String,
}

/// The widest relative half-width at `target` rows among the judged
/// variants of `model`, and their predictions.
fn widest(model: &Model, target: u64) -> (f64, BTreeMap<String, Prediction>) {
    let mut h = 0.0f64;
    let mut out = BTreeMap::new();
    for name in JUDGED {
        let Ok(v) = model.variant(name) else {
            continue;
        };
        let p = model.predict(v, target, 0);
        h = h.max(
            p.interval
                .map_or(f64::INFINITY, |i| i.relative_half_width(p.peak_bytes)),
        );
        out.insert(name.to_string(), p);
    }
    (h, out)
}

/// What a budget replay sweep has measured so far.
struct Measured<'a> {
    args: &'a SweepSettings,
    cache_root: std::path::PathBuf,
    out: std::path::PathBuf,
    production: u64,
    times: TimeModel,
    points: BTreeMap<&'static str, Vec<Point>>,
    steps: Vec<ReplayBudgetStep>,
    reports: Vec<String>,
    machine: Option<crate::machine::MachineFacts>,
    allocator: String,
    /// The ladder's rows of every scale measured.
    ladder: Vec<u64>,
}

impl Measured<'_> {
    fn scale_of(&self, rows: u64) -> f64 {
        rows as f64 / self.production as f64
    }

    /// Every run of the scale at `rows` (its data first, outside the budget).
    fn step(&mut self, rows: u64, clock: &mut Budget, progress: &mut Progress) -> Result<()> {
        let scale = self.scale_of(rows);
        let plan = plan_sweep_at(self.args, vec![scale])?;
        let t0 = Instant::now();
        super::command::generate_data(
            &self.args.scenario,
            self.args.cache_dir.as_deref(),
            (scale, None),
            self.args.force,
            progress,
        )?;
        let data = t0.elapsed();
        clock.exclude(data);
        let t1 = Instant::now();
        let mut peak = 0u64;
        for run in plan.runs {
            let (report, path) = measure_run(
                self.args,
                (&plan.scenario, &self.cache_root),
                run,
                &self.out,
                (&mut self.points, progress),
            )?;
            let top = report.runs.iter().filter_map(|r| r.peak_bytes).max();
            peak = peak.max(top.unwrap_or(0));
            self.machine.get_or_insert(report.machine.clone());
            self.allocator = report.allocator.clone();
            self.reports.push(path.display().to_string());
        }
        let secs = t1.elapsed().as_secs_f64();
        self.times.add(rows, secs);
        self.ladder.push(rows);
        self.steps.push(ReplayBudgetStep {
            scale,
            rows: plan.scenario.scenario.sizes(scale).sample_rows,
            secs,
            data_secs: data.as_secs_f64(),
            peak_bytes: peak,
        });
        Ok(())
    }

    /// The scales measured, smallest first.
    fn scales(&self) -> Vec<f64> {
        let mut scales: Vec<f64> = self.steps.iter().map(|s| s.scale).collect();
        scales.sort_by(f64::total_cmp);
        scales
    }

    /// True when every run of the scale at `rows` is predicted to fit in
    /// `allowed` bytes: extrapolated from the scales measured as preflight
    /// does (+[`EXTRAPOLATION_SLACK`]), or, from one scale, in proportion to
    /// the rows (an overestimate: part of every peak is fixed).
    fn fits(&self, rows: u64, allowed: f64) -> bool {
        let Ok(plan) = plan_sweep_at(self.args, vec![self.scale_of(rows)]) else {
            return false;
        };
        let sizes = plan.scenario.scenario.sizes(self.scale_of(rows));
        plan.runs.iter().all(|run| {
            let estimates = extrapolated_estimates(
                &self.points,
                &run.strategies,
                (sizes.sample_rows, sizes.profile_numeric_columns),
                run.cap,
                run.mode,
            );
            run.strategies
                .iter()
                .all(|s| match estimates.get(s.name()) {
                    Some(e) => e.bytes as f64 <= allowed,
                    None => {
                        let measured = self
                            .points
                            .values()
                            .flatten()
                            .filter(|p| p.rows_in > 0)
                            .map(|p| p.peak_bytes as f64 / p.rows_in as f64)
                            .fold(0.0, f64::max);
                        measured * sizes.sample_rows as f64 * (1.0 + EXTRAPOLATION_SLACK) <= allowed
                    }
                })
        })
    }
}

/// Runs the replay sweep within `budget`, predicting at `--production-rows`
/// (the scenario's production rows when not given).
pub fn sweep_within(args: SweepSettings, budget: Duration) -> Result<Exit> {
    if !args.columns.is_empty() || args.production {
        return Err(bad_input(
            "sweep --budget picks the scales of the replay at the scenario's own columns: drop --columns and --production (or give --scales instead of a budget)",
        ));
    }
    let scenario = Scenario::load(&args.scenario)?;
    let production = scenario.scenario.production_sizes().sample_rows.max(1);
    let target = args.production_rows.unwrap_or(production);
    if target < 1 << START_SHIFT {
        return Err(bad_input(format!(
            "--production-rows {target}: a budget sweep starts at 1/{} of the target, so it needs at least {} rows",
            1u64 << START_SHIFT,
            1u64 << START_SHIFT
        )));
    }
    let mut progress = Progress::new(args.quiet);
    let usable = crate::preflight::usable_memory()?;
    let allowed = usable.0 as f64 * (1.0 - crate::preflight::MARGIN_SHARE);
    let mut m = Measured {
        args: &args,
        cache_root: args.cache_dir.clone().unwrap_or_else(default_cache_root),
        out: args.out_dir(&scenario.scenario.name),
        production,
        times: TimeModel::default(),
        points: BTreeMap::new(),
        steps: Vec::new(),
        reports: Vec::new(),
        machine: None,
        allocator: String::new(),
        ladder: Vec::new(),
    };
    let fit = |m: &Measured<'_>| -> Result<Option<Model>> {
        if m.steps.len() < 3 {
            return Ok(None);
        }
        let mut model = build_model(
            &scenario,
            &m.scales(),
            &m.cache_root,
            m.points.clone(),
            m.machine.clone().unwrap_or_default(),
            m.allocator.clone(),
        )?;
        model.streaming_chunk_rows = args.chunk_rows;
        model.memory_mode = args.memory_mode;
        Ok(Some(model))
    };

    let mut clock = Budget::start(budget);
    m.step(ladder_rows(target, START_SHIFT), &mut clock, &mut progress)?;
    let stop = loop {
        if !args.quiet {
            if let Some(model) = fit(&m)? {
                let (h, _) = widest(&model, target);
                eprintln!(
                    "budget: {} scales, {:.0}s of {:.0}s; at {} rows the widest interval is ±{:.1}%",
                    m.steps.len(),
                    clock.spent_secs(),
                    budget.as_secs_f64(),
                    format_count(target),
                    h * 100.0
                );
            }
        }
        match next_planned(
            target,
            &m.ladder,
            |rows| m.times.predict(rows),
            |rows| m.fits(rows, allowed),
            clock.left_secs(),
        ) {
            Plan::Run(rows) => m.step(rows, &mut clock, &mut progress)?,
            // The largest scales that fit are measured; a larger one, alone,
            // did not fit either (the plan would have taken it).
            Plan::Measured if m.ladder.contains(&ladder_top(target)) => break Stop::Top,
            Plan::Measured | Plan::Nothing => break Stop::Spent,
        }
    };
    let spent_secs = clock.spent_secs();
    let data_secs = clock.excluded_secs();
    let wall_secs = clock.wall_secs();
    let Some(model) = fit(&m)? else {
        return Err(bad_input(format!(
            "sweep --budget {}s: only {} scale(s) fit in the budget ({:.0}s spent), and a model needs 3 (the largest held out); give a larger budget",
            budget.as_secs(),
            m.steps.len(),
            spent_secs
        )));
    };
    let (half_width, predictions) = widest(&model, target);
    let stop = if half_width <= TARGET_HALF_WIDTH {
        Stop::Narrow
    } else {
        stop
    };
    let saved = model_path(args.model.as_deref());
    super::write_replay_model(&model, &m.out, Some(&saved), &m.reports)?;
    let outcome = ReplayBudgetOutcome {
        budget_secs: budget.as_secs_f64(),
        spent_secs,
        data_secs,
        wall_secs,
        target_rows: target,
        steps: m.steps.clone(),
        predictions,
        half_width,
        reached_target_width: stop == Stop::Narrow,
        stopped_because: stop_reason(half_width, stop),
    };
    let path = m.out.join("budget.json");
    report::write_atomically(&path, &serde_json::to_vec_pretty(&outcome)?)?;
    println!(
        "\nBudget {:.0}s: spent {:.1}s measuring ({:.1}s more getting data, outside the budget: generated once per ladder scale and cached; {:.1}s in all) at {} scales ({}); stopped: {}",
        outcome.budget_secs,
        spent_secs,
        data_secs,
        wall_secs,
        m.steps.len(),
        m.scales()
            .iter()
            .map(|s| format!("{s:.4}"))
            .collect::<Vec<_>>()
            .join(", "),
        outcome.stopped_because
    );
    for (name, p) in &outcome.predictions {
        println!(
            "At {} rows (the target), {name}: {}",
            format_count(target),
            p.describe()
        );
    }
    println!("budget: {}", path.display());
    Ok(Exit::Ok)
}
