//! The subcommands: thin glue from parsed flags to the modules that do the work.
//!
//! One file per subcommand; what several share (scenario flags, report
//! directories, exit codes of a replay) lives here.

pub mod check;
pub mod compare;
pub mod data;
pub mod fidelity;
pub mod gate;
pub mod html;
pub mod model;
pub mod plot;
pub mod postmortem;
pub mod recommend;
pub mod record;
pub mod scenarios;
pub mod sweep;

use anyhow::Result;

use crate::cli::ReplayArgs;
use oomlab::error::Exit;
use oomlab::progress::Progress;
use oomlab::replay::ReplayPlan;
use oomlab::report::{self, exit_for, Report, RunStatus};
use oomlab::strategy::Strategy;
use oomlab::summary::write_report_dir;
use oomlab::table;

/// The plan a replaying command's flags ask for.
pub fn plan(
    command: &str,
    args: &ReplayArgs,
    strategies: Vec<&'static dyn Strategy>,
) -> Result<ReplayPlan> {
    oomlab::replay::plan(command, &args.settings()?, strategies)
}

/// Runs a replay and writes its report directory. The directory is chosen
/// before anything runs, so the children's samples stream into it as they are
/// taken (`samples.<strategy>.jsonl`) and outlive even a SIGKILL of oomlab.
pub fn replay_and_report(mut plan: ReplayPlan, args: &ReplayArgs) -> Result<Exit> {
    let limit = args.limit.memory_limit();
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
