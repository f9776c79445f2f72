//! The subcommands: thin glue from parsed flags to the modules that do the work.
//!
//! One file per subcommand; what several share (scenario flags, report
//! directories, exit codes of a replay) lives here.

pub mod check;
pub mod compare;
pub mod data;
pub mod fidelity;
pub mod gate;
pub mod plot;
pub mod postmortem;
pub mod recommend;
pub mod record;
pub mod similarity_model;
pub mod sweep;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::cli::{ReplayArgs, ScenarioArgs};
use crate::data::cache::default_cache_root;
use crate::error::{bad_input, Exit};
use crate::progress::Progress;
use crate::replay::{resolve_max_ranking_samples, ReplayPlan};
use crate::report::{self, Report, RunStatus};
use crate::scenario::{validate_scale, LoadedScenario, Scenario};
use crate::strategy::Strategy;
use crate::table;

/// Parses `--interval` (the RSS sampling interval: `10ms`, `0.5s`, `250us`;
/// a bare number is seconds) with [`crate::units::parse_duration`]: from
/// 0.1 ms, below which sampling costs more than it tells, to 60 s.
pub fn parse_interval(text: &str) -> Result<Duration> {
    crate::units::parse_duration("--interval", text, "0.1ms", "60s")
}

pub fn load_scenario(args: &ScenarioArgs) -> Result<(LoadedScenario, f64, PathBuf)> {
    let scenario = Scenario::load(&args.scenario)?;
    let scale = validate_scale(args.scale)?;
    let cache_root = args.cache_dir.clone().unwrap_or_else(default_cache_root);
    Ok((scenario, scale, cache_root))
}

pub fn plan(
    command: &str,
    args: &ReplayArgs,
    strategies: Vec<&'static dyn Strategy>,
) -> Result<ReplayPlan> {
    let (scenario, scale, cache_root) = load_scenario(&args.scenario)?;
    let (max_ranking_samples, source) = resolve_max_ranking_samples(args.max_ranking_samples)?;
    let memory_mode = crate::strategy::memory::MemoryMode::parse(&args.memory_mode)?;
    memory_mode.check_workload(scenario.scenario.workload())?;
    let strategies = memory_mode.replayable(strategies)?;
    let similarity = crate::strategy::similarity::resolve_knobs(
        scenario.scenario.similarity.as_ref(),
        args.similarity_micro_batch_size,
        args.similarity_top_k,
    )?;
    Ok(ReplayPlan {
        command: command.to_string(),
        scenario,
        scale,
        strategies,
        max_ranking_samples,
        max_ranking_samples_source: source,
        interval: parse_interval(&args.interval)?,
        cache_root,
        heap_profile: false,
        force: args.force,
        sampling: crate::sampling::SamplingMode::parse(&args.sampling)?,
        output: args.output.clone(),
        similarity,
        estimates: Default::default(),
        journal_dir: None,
        memory_mode,
    })
}

/// The `--memory-limit` a command was given, parsed (exit 2 on a bad size).
pub fn memory_limit(
    args: &crate::cli::LimitArgs,
) -> Result<Option<crate::runner::limit::MemoryLimit>> {
    args.memory_limit
        .as_deref()
        .map(|text| {
            crate::units::parse_size(text)
                .map_err(|e| bad_input(format!("--memory-limit {text}: {e}")))
                .map(|bytes| crate::runner::limit::MemoryLimit {
                    bytes,
                    by: args.limit_by,
                })
        })
        .transpose()
}

/// Default report directory: `reports/runs/<UTC time>-<scenario>/`.
pub fn default_out_dir(scenario: &str) -> PathBuf {
    let stamp = report::utc_now_rfc3339()
        .replace([':', '-'], "")
        .replace('T', "-");
    PathBuf::from("reports/runs").join(format!("{}-{scenario}", stamp.trim_end_matches('Z')))
}

/// Writes the report directory: `report.json`, the pictures, `summary.md`.
pub fn write_report_dir(report: &Report, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    report.write_json(&dir.join("report.json"))?;
    // A picture that cannot be drawn must not cost the run its report or exit code.
    let opts = crate::plot::PlotOptions::for_report(report);
    if let Err(err) = crate::plot::draw_report(report, dir, &opts) {
        eprintln!("warning: pictures not drawn: {err:#}");
    }
    report::write_atomically(
        &dir.join("summary.md"),
        report::summary::render(report).as_bytes(),
    )?;
    Ok(())
}

/// The exit code a finished replay ends with: interrupted (130/143) first,
/// then a failed child (6), then a killed one (5).
pub fn exit_for(report: &Report) -> Exit {
    let stopped_by = report.interrupted.as_ref().map(|i| i.signal).or_else(|| {
        report.runs.iter().find_map(|r| match r.status {
            RunStatus::Interrupted { signal, .. } => Some(signal),
            _ => None,
        })
    });
    if let Some(signal) = stopped_by {
        Exit::for_signal(signal)
    } else if report
        .runs
        .iter()
        .any(|r| matches!(r.status, RunStatus::Failed { .. }))
    {
        Exit::ChildFailed
    } else if report
        .runs
        .iter()
        .any(|r| matches!(r.status, RunStatus::Killed { .. }))
    {
        Exit::OomKilled
    } else {
        Exit::Ok
    }
}

/// Runs a replay and writes its report directory. The directory is chosen
/// before anything runs, so the children's samples stream into it as they are
/// taken (`samples.<strategy>.jsonl`) and outlive even a SIGKILL of oomlab.
pub fn replay_and_report(mut plan: ReplayPlan, args: &ReplayArgs) -> Result<Exit> {
    let limit = memory_limit(&args.limit)?;
    let mut progress = Progress::new(args.quiet);
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| default_out_dir(&plan.scenario.scenario.name));
    plan.journal_dir = Some(dir.clone());
    let report = plan.run_limited(&mut progress, limit)?;
    write_report_dir(&report, &dir)?;
    println!("\n{}", table::before_after(&report).to_text());
    for line in report.runs.iter().filter_map(crate::record::kill_sentence) {
        println!("{line}");
    }
    if let Some(line) = interrupted_sentence(&report) {
        println!("{line}");
    }
    println!("report: {}", dir.join("report.json").display());
    Ok(exit_for(&report))
}

/// One sentence on an interrupted report (`None` for any other), for terminals.
pub fn interrupted_sentence(report: &Report) -> Option<String> {
    let i = report.interrupted.as_ref()?;
    let mut line = format!("interrupted by {}: partial report", i.signal_name);
    for run in &report.runs {
        if let RunStatus::Interrupted { stage, t_s, .. } = &run.status {
            line += &format!(
                "; {} was stopped in stage {} at {t_s:.2} s",
                run.strategy,
                stage.as_deref().unwrap_or("start")
            );
        }
    }
    if !i.not_run.is_empty() {
        line += &format!("; not run: {}", i.not_run.join(", "));
    }
    Some(line + ".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn intervals_people_write() {
        assert_eq!(parse_interval("10ms").unwrap(), Duration::from_millis(10));
        assert_eq!(parse_interval("0.5s").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_interval("250us").unwrap(), Duration::from_micros(250));
        for bad in ["", "fast", "0ms", "-5ms", "61s", "nan", "infs", "10 min"] {
            let err = parse_interval(bad).unwrap_err();
            assert_eq!(crate::error::exit_code_of(&err), Exit::BadInput, "{bad}");
            assert!(err.to_string().contains("--interval"), "{err}");
        }
    }

    // Case counts follow PROPTEST_CASES (README, "Property tests").
    proptest! {
        #[test]
        fn parse_interval_is_in_range_or_bad_input(
            text in ".{0,24}|[0-9.eE+-]{0,12}(ms|us|s|m|h|)",
        ) {
            match parse_interval(&text) {
                Ok(d) => prop_assert!(
                    d >= Duration::from_micros(99) && d <= Duration::from_secs(60),
                    "{text:?} -> {d:?}"
                ),
                Err(e) => {
                    prop_assert_eq!(crate::error::exit_code_of(&e), Exit::BadInput);
                    prop_assert!(e.to_string().contains(text.as_str()), "{}", e);
                }
            }
        }
    }
}
