//! `oomlab gate`: re-run what the baseline names, judge each stage, and exit
//! 0 (pass), 1 (regression) or 2 (unusable baseline or flags). With
//! `--update`, bless what was measured instead.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};

use crate::cli::GateArgs;
use oomlab::error::{bad_input, Exit};
use oomlab::gate::baseline::{parse_tolerance, Baseline};
use oomlab::gate::bless::{bless, comparability_notes, spread_notes};
use oomlab::gate::render::GateResult;
use oomlab::gate::run::{
    baseline_targets, measure, parse_strategy_as, MeasureSettings, Target, MAX_RUNS,
};
use oomlab::gate::verdict::{judge_all, Tolerances};
use oomlab::machine::MachineFacts;
use oomlab::progress::Progress;
use oomlab::replay::{parse_strategies, resolve_max_ranking_samples};

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
    let how = MeasureSettings {
        baseline: args.baseline.clone(),
        cache_dir: args.cache_dir.clone(),
        runs: args.runs,
        quiet: args.quiet,
    };
    let mut measured = Vec::new();
    for target in &targets {
        measured.push(measure(target, &how, &mut progress)?);
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
