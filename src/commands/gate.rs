//! `oomlab gate`: re-run what the baseline names, judge each stage, and exit
//! 0 (pass), 1 (regression) or 2 (unusable baseline or flags). With
//! `--update`, bless what was measured instead.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};

use crate::cli::GateArgs;
use oomlab::child::ALLOCATOR;
use oomlab::error::{bad_input, Exit};
use oomlab::gate::baseline::{
    parse_tolerance, Baseline, BaselineMachine, BaselineScenario, BaselineStage, BaselineStrategy,
    Floors, BASELINE_KIND, BASELINE_SCHEMA_VERSION,
};
use oomlab::gate::render::GateResult;
use oomlab::gate::verdict::{judge_all, StrategyResult, Tolerances};
use oomlab::gate::{measured_from_reports, median, require_completed, MeasuredScenario};
use oomlab::machine::MachineFacts;
use oomlab::progress::Progress;
use oomlab::replay::ReplaySettings;
use oomlab::replay::{parse_strategies, resolve_max_ranking_samples};
use oomlab::report::{utc_now_rfc3339, Report};
use oomlab::strategy;

/// Most plain runs a gate will do per scenario.
const MAX_RUNS: u32 = 25;

/// What to run for one scenario entry.
struct Target {
    path: String,
    scale: f64,
    max_ranking_samples: u64,
    /// (strategy to run, baseline strategy to judge it against).
    pairs: Vec<(String, String)>,
}

/// `oomlab gate`.
pub fn gate(args: GateArgs) -> Result<Exit> {
    let started = Instant::now();
    let tolerances = Tolerances {
        rss_pct: parse_tolerance("--rss-tolerance", &args.rss_tolerance)?,
        heap_pct: parse_tolerance("--heap-tolerance", &args.heap_tolerance)?,
    };
    if !(1..=MAX_RUNS).contains(&args.runs) {
        return Err(bad_input(format!(
            "--runs {}: expected between 1 and {MAX_RUNS}",
            args.runs
        )));
    }
    let mapping = parse_strategy_as(&args.strategy_as)?;
    if args.update && !mapping.is_empty() {
        return Err(bad_input(
            "--strategy-as cannot be combined with --update: it would bless one strategy's figures under another's name",
        ));
    }
    let creating = args.scenario.is_some();
    if !args.update {
        for (flag, given) in [
            ("--scenario", creating),
            ("--strategy", args.strategy.is_some()),
            ("--scale", args.scale.is_some()),
            ("--max-ranking-samples", args.max_ranking_samples.is_some()),
        ] {
            if given {
                return Err(bad_input(format!(
                    "{flag} is only for --update: the gate re-runs what {} names",
                    args.baseline.display()
                )));
            }
        }
    } else if !creating
        && (args.strategy.is_some() || args.scale.is_some() || args.max_ranking_samples.is_some())
    {
        return Err(bad_input(
            "--strategy, --scale and --max-ranking-samples with --update need --scenario (which scenario to re-bless)",
        ));
    }

    let existing = if args.update && creating && !args.baseline.exists() {
        None
    } else {
        Some(Baseline::read(&args.baseline)?)
    };
    // `creating` implies --update (checked above); otherwise a baseline was read.
    let targets = match &existing {
        _ if creating => vec![creation_target(&args, existing.as_ref())?],
        Some(baseline) => baseline_targets(baseline, &mapping)?,
        None => Vec::new(),
    };

    // One line per run here; the stage-by-stage display of four runs would
    // bury the verdict in a CI log.
    let mut progress = Progress::new(true);
    let mut measured = Vec::new();
    for target in &targets {
        measured.push(measure(target, &args, &mut progress)?);
    }
    let machine = MachineFacts::collect();

    let floors = existing.as_ref().map(|b| b.floors).unwrap_or_default();
    let mut notes = Vec::new();
    if let Some(baseline) = &existing {
        notes.extend(comparability_notes(baseline, &measured, &machine));
    }
    let strategies = match &existing {
        Some(baseline) => judge_all(baseline, &measured, tolerances),
        None => Vec::new(),
    };
    notes.extend(spread_notes(&strategies, floors));
    let mut result = GateResult::new(
        args.baseline.display().to_string(),
        args.runs,
        tolerances,
        floors,
        notes,
        strategies,
    );

    if args.update {
        let blessed = bless(existing, &measured, args.runs, &machine);
        blessed.write(&args.baseline)?;
        result.updated = true;
        result.wall_s = started.elapsed().as_secs_f64();
        emit(&result, &args)?;
        if result.strategies.is_empty() {
            for sc in &blessed.scenarios {
                for st in &sc.strategies {
                    println!("\n{} ({}) / {}", sc.name, sc.path, st.name);
                    print!("{}", oomlab::gate::render::blessed_table(st).to_text());
                }
            }
        }
        let stages: usize = blessed
            .scenarios
            .iter()
            .flat_map(|s| &s.strategies)
            .map(|s| s.stages.len())
            .sum();
        println!(
            "gate: blessed {stages} stages into {} (commit it with the change that moved the figures)",
            args.baseline.display()
        );
        return Ok(Exit::Ok);
    }

    result.wall_s = started.elapsed().as_secs_f64();
    emit(&result, &args)?;
    Ok(if result.passed {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

/// Parses `--strategy-as RUN=BASELINE` flags.
fn parse_strategy_as(flags: &[String]) -> Result<BTreeMap<String, String>> {
    let mut by_baseline = BTreeMap::new();
    for flag in flags {
        let Some((run, base)) = flag.split_once('=') else {
            return Err(bad_input(format!(
                "--strategy-as {flag}: expected RUN=BASELINE, e.g. legacy=optimized"
            )));
        };
        let (run, base) = (run.trim(), base.trim());
        if strategy::by_name(run).is_none() {
            return Err(bad_input(format!(
                "--strategy-as {flag}: unknown strategy `{run}` (expected one of: {})",
                strategy::names().join(", ")
            )));
        }
        if by_baseline
            .insert(base.to_string(), run.to_string())
            .is_some()
        {
            return Err(bad_input(format!(
                "--strategy-as: baseline strategy `{base}` is mapped twice"
            )));
        }
    }
    Ok(by_baseline)
}

/// What a gate (or a plain `--update`) runs: everything the baseline names,
/// with `--strategy-as` substitutions.
fn baseline_targets(
    baseline: &Baseline,
    mapping: &BTreeMap<String, String>,
) -> Result<Vec<Target>> {
    for base in mapping.keys() {
        if !baseline
            .scenarios
            .iter()
            .any(|s| s.strategy(base).is_some())
        {
            return Err(bad_input(format!(
                "--strategy-as ...={base}: the baseline has no strategy `{base}` (it has: {})",
                baseline
                    .scenarios
                    .iter()
                    .flat_map(|s| s.strategies.iter().map(|t| t.name.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok(baseline
        .scenarios
        .iter()
        .map(|sc| Target {
            path: sc.path.clone(),
            scale: sc.scale,
            max_ranking_samples: sc.max_ranking_samples,
            pairs: sc
                .strategies
                .iter()
                .map(|st| {
                    let run = mapping.get(&st.name).unwrap_or(&st.name).clone();
                    (run, st.name.clone())
                })
                .collect(),
        })
        .collect())
}

/// What `--update --scenario` blesses: the flags, else the baseline's entry
/// for that file, else defaults.
fn creation_target(args: &GateArgs, existing: Option<&Baseline>) -> Result<Target> {
    let path = args
        .scenario
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let entry = existing.and_then(|b| b.scenarios.iter().find(|s| s.path == path));
    let names: Vec<String> = match (&args.strategy, entry) {
        (Some(list), _) => parse_strategies(list)?
            .iter()
            .map(|s| s.name().to_string())
            .collect(),
        (None, Some(e)) => e.strategies.iter().map(|s| s.name.clone()).collect(),
        (None, None) => {
            return Err(bad_input(format!(
                "--update --scenario {path}: name the strategies to bless with --strategy (e.g. optimized)"
            )))
        }
    };
    let max_ranking_samples = match (args.max_ranking_samples, entry) {
        (Some(v), _) => v,
        (None, Some(e)) => e.max_ranking_samples,
        (None, None) => resolve_max_ranking_samples(None)?.0,
    };
    Ok(Target {
        path,
        scale: args.scale.or(entry.map(|e| e.scale)).unwrap_or(1.0),
        max_ranking_samples,
        pairs: names.iter().map(|n| (n.clone(), n.clone())).collect(),
    })
}

/// The replay settings of a target: what the baseline names, every other
/// setting at its default.
fn replay_settings(target: &Target, args: &GateArgs) -> ReplaySettings {
    ReplaySettings {
        scenario: PathBuf::from(&target.path),
        scale: target.scale,
        max_ranking_samples: Some(target.max_ranking_samples),
        cache_dir: args.cache_dir.clone(),
        ..Default::default()
    }
}

/// One heap profiling run, then `--runs` plain runs, through the shared replay path.
fn measure(target: &Target, args: &GateArgs, progress: &mut Progress) -> Result<MeasuredScenario> {
    let settings = replay_settings(target, args);
    let mut strategies = Vec::new();
    for (run, base) in &target.pairs {
        strategies.push(strategy::by_name(run).ok_or_else(|| {
            bad_input(format!(
                "{}: scenario {} names strategy `{base}`, which this oomlab does not know (expected one of: {})",
                args.baseline.display(),
                target.path,
                strategy::names().join(", ")
            ))
        })?);
    }
    let mut plan = oomlab::replay::plan("gate", &settings, strategies)?;
    let total = args.runs + 1;
    say(
        args,
        &format!("gate: {} run 1/{total}: heap profiling (dhat)", target.path),
    );
    plan.heap_profile = true;
    let heap: Report = plan.run(progress)?;
    require_completed(&heap, "heap profiling")?;
    plan.heap_profile = false;
    let mut plain = Vec::new();
    for i in 0..args.runs {
        say(
            args,
            &format!("gate: {} run {}/{total}: RSS", target.path, i + 2),
        );
        let report = plan.run(progress)?;
        require_completed(&report, "RSS")?;
        plain.push(report);
    }
    measured_from_reports(&target.path, &heap, &plain, &target.pairs)
}

fn say(args: &GateArgs, line: &str) {
    if !args.quiet {
        eprintln!("{line}");
    }
}

/// Reasons the figures may differ for reasons other than the code.
fn comparability_notes(
    baseline: &Baseline,
    measured: &[MeasuredScenario],
    machine: &MachineFacts,
) -> Vec<String> {
    let mut notes = Vec::new();
    if baseline.machine.cpus != machine.cpus {
        notes.push(format!(
            "the baseline was blessed on a {}-CPU machine, this one has {}: RSS and allocation counts depend on the thread count; bless on the machine class that runs the gate",
            baseline.machine.cpus, machine.cpus
        ));
    }
    if baseline.allocator != ALLOCATOR {
        notes.push(format!(
            "the baseline's allocator was `{}`, now `{ALLOCATOR}`",
            baseline.allocator
        ));
    }
    if baseline.oomlab_version != env!("CARGO_PKG_VERSION") {
        notes.push(format!(
            "the baseline was blessed by oomlab {}, this is {}",
            baseline.oomlab_version,
            env!("CARGO_PKG_VERSION")
        ));
    }
    for m in measured {
        if let Some(b) = baseline.scenarios.iter().find(|b| b.path == m.path) {
            if b.data_hash != m.data_hash {
                notes.push(format!(
                    "{}: the generated data differs from the baseline's (hash {} now, {} blessed): the scenario or the generator changed",
                    m.path, m.data_hash, b.data_hash
                ));
            }
        }
    }
    notes
}

/// Stages whose RSS runs disagreed by more than the stage's tolerance: a
/// verdict on them is close to a coin toss, and the reader should know.
fn spread_notes(strategies: &[StrategyResult], floors: Floors) -> Vec<String> {
    let mut notes = Vec::new();
    for st in strategies {
        for s in &st.stages {
            let Some(rss) = &s.rss else { continue };
            let pct = rss.spread_bytes as f64 / rss.check.now.max(1) as f64 * 100.0;
            if pct > rss.check.tolerance_pct && rss.spread_bytes > floors.rss_bytes {
                notes.push(format!(
                    "{} / {} / {}: RSS varied by {pct:.1}% across runs, more than its {}% tolerance; raise --runs or the stage's rss_tolerance_pct",
                    st.scenario,
                    st.label(),
                    s.stage,
                    rss.check.tolerance_pct
                ));
            }
        }
    }
    notes
}

/// The baseline after `--update`: measured entries replace their scenario's
/// entry; per-stage tolerances and floors set by hand are kept.
fn bless(
    existing: Option<Baseline>,
    measured: &[MeasuredScenario],
    runs: u32,
    machine: &MachineFacts,
) -> Baseline {
    let mut baseline = existing.unwrap_or_else(|| Baseline {
        schema_version: BASELINE_SCHEMA_VERSION,
        kind: BASELINE_KIND.into(),
        oomlab_version: String::new(),
        created_at: String::new(),
        machine: BaselineMachine::from(machine),
        allocator: String::new(),
        floors: Floors::default(),
        scenarios: Vec::new(),
    });
    baseline.oomlab_version = env!("CARGO_PKG_VERSION").into();
    baseline.created_at = utc_now_rfc3339();
    baseline.machine = BaselineMachine::from(machine);
    baseline.allocator = ALLOCATOR.into();
    for m in measured {
        let old = baseline.scenario_mut(&m.path).map(|s| s.clone());
        let strategies = m
            .strategies
            .iter()
            .map(|st| {
                let old_st = old.as_ref().and_then(|o| o.strategy(&st.baseline));
                BaselineStrategy {
                    name: st.baseline.clone(),
                    stages: st
                        .stages
                        .iter()
                        .map(|s| {
                            let old_stage = old_st.and_then(|o| o.stage(&s.name));
                            BaselineStage {
                                name: s.name.clone(),
                                rss_peak_bytes: median(&s.rss_peak_runs_bytes),
                                rss_peak_runs_bytes: s.rss_peak_runs_bytes.clone(),
                                heap_peak_bytes: s.heap.peak_bytes,
                                heap_total_bytes: s.heap.total_bytes,
                                heap_allocs: s.heap.allocs,
                                rss_tolerance_pct: old_stage.and_then(|o| o.rss_tolerance_pct),
                                heap_tolerance_pct: old_stage.and_then(|o| o.heap_tolerance_pct),
                            }
                        })
                        .collect(),
                }
            })
            .collect();
        let entry = BaselineScenario {
            path: m.path.clone(),
            name: m.name.clone(),
            scale: m.scale,
            max_ranking_samples: m.max_ranking_samples,
            data_hash: m.data_hash.clone(),
            rss_runs: runs,
            strategies,
        };
        match baseline.scenario_mut(&m.path) {
            Some(slot) => *slot = entry,
            None => baseline.scenarios.push(entry),
        }
    }
    baseline
}

/// Prints the table and verdict, and writes the step summary and JSON.
fn emit(result: &GateResult, args: &GateArgs) -> Result<()> {
    if !result.strategies.is_empty() {
        println!("\n{}", result.to_text().trim_end());
    }
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if let Err(e) = append(&path, &result.to_markdown()) {
            eprintln!(
                "warning: could not write the step summary {}: {e:#}",
                path.display()
            );
        }
    }
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(result).context("serializing the gate result")?;
        oomlab::report::write_atomically(path, &json)?;
        if !args.quiet {
            eprintln!("gate: result written to {}", path.display());
        }
    }
    Ok(())
}

fn append(path: &Path, text: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}
