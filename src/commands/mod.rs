//! The subcommands: thin glue from parsed flags to the modules that do the work.
//!
//! One file per subcommand; what several share (scenario flags, report
//! directories, exit codes of a replay) lives here.

pub mod check;
pub mod compare;
pub mod data;
pub mod fidelity;
pub mod gate;
pub mod model;
pub mod plot;
pub mod postmortem;
pub mod recommend;
pub mod record;
pub mod scenarios;
pub mod sweep;

use std::time::Duration;

use anyhow::Result;

use crate::cli::ReplayArgs;
use oomlab::error::{bad_input, Exit};
use oomlab::progress::Progress;
use oomlab::replay::ReplayPlan;
use oomlab::report::{self, exit_for, Report, RunStatus};
use oomlab::strategy::Strategy;
use oomlab::summary::write_report_dir;
use oomlab::table;

/// Parses `--interval` (the RSS sampling interval: `10ms`, `0.5s`, `250us`;
/// a bare number is seconds) with [`oomlab::units::parse_duration`]: from
/// 0.1 ms, below which sampling costs more than it tells, to 60 s.
pub fn parse_interval(text: &str) -> Result<Duration> {
    oomlab::units::parse_duration("--interval", text, "0.1ms", "60s")
}

/// The plan a replaying command's flags ask for.
pub fn plan(
    command: &str,
    args: &ReplayArgs,
    strategies: Vec<&'static dyn Strategy>,
) -> Result<ReplayPlan> {
    oomlab::replay::plan(command, &args.settings()?, strategies)
}

/// The `--memory-limit` a command was given, parsed (exit 2 on a bad size).
pub fn memory_limit(
    args: &crate::cli::LimitArgs,
) -> Result<Option<oomlab::runner::limit::MemoryLimit>> {
    args.memory_limit
        .as_deref()
        .map(|text| {
            oomlab::units::parse_size(text)
                .map_err(|e| bad_input(format!("--memory-limit {text}: {e}")))
                .map(|bytes| oomlab::runner::limit::MemoryLimit {
                    bytes,
                    by: args.limit_by,
                })
        })
        .transpose()
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
        .unwrap_or_else(|| report::default_out_dir(&plan.scenario.scenario.name));
    plan.journal_dir = Some(dir.clone());
    let report = plan.run_limited(&mut progress, limit)?;
    write_report_dir(&report, &dir)?;
    println!("\n{}", table::before_after(&report).to_text());
    for line in report.runs.iter().filter_map(oomlab::record::kill_sentence) {
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
            assert_eq!(oomlab::error::exit_code_of(&err), Exit::BadInput, "{bad}");
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
                    prop_assert_eq!(oomlab::error::exit_code_of(&e), Exit::BadInput);
                    prop_assert!(e.to_string().contains(text.as_str()), "{}", e);
                }
            }
        }
    }
}
