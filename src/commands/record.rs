//! `oomlab record -- CMD ARGS...`: run any command and report it like a replay.

use anyhow::Result;

use crate::cli::RecordArgs;
use oomlab::error::{bad_input, Exit};
use oomlab::progress::Progress;
use oomlab::record::pattern::Pattern;
use oomlab::record::{kill_sentence, record as record_command, RecordPlan};
use oomlab::report::exit_for;
use oomlab::report::RunStatus;
use oomlab::summary::write_report_dir;
use oomlab::table;
use oomlab::units::format_bytes;

/// `oomlab record`: exit 0 when the command completed, 5 when the memory limit
/// killed it, 6 when it failed on its own (its exit code is in the report).
pub fn record(args: RecordArgs) -> Result<Exit> {
    let pattern = Pattern::new(&args.stage_pattern)
        .map_err(|e| bad_input(format!("--stage-pattern {:?}: {e}", args.stage_pattern)))?;
    if args.lines {
        oomlab::lines::check_ready(&args.command)?;
    }
    let label = args.label.clone().unwrap_or_else(|| {
        args.command
            .first()
            .map(|c| {
                std::path::Path::new(c)
                    .file_name()
                    .unwrap_or(c)
                    .to_string_lossy()
                    .into_owned()
            })
            .unwrap_or_else(|| "command".into())
    });
    let safe: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| oomlab::report::default_out_dir(&format!("record-{safe}")));
    let plan = RecordPlan {
        command: args.command.clone(),
        interval: args.interval,
        memory_limit: args.limit.memory_limit(),
        pattern,
        stream: args.stage_stream,
        label,
        out: out.clone(),
        passthrough: true,
        env: Vec::new(),
        point: None,
    };
    let mut progress = Progress::new(args.quiet);
    let report = record_command(&plan, &mut progress)?;
    write_report_dir(&report, &out)?;
    if let Some(run) = report.runs.first() {
        eprintln!("\n{}", table::stages(run).to_text());
        let peak = run
            .peak_bytes
            .map(format_bytes)
            .unwrap_or_else(|| "-".into());
        // A killed run's kernel figure covers only the stages that finished.
        let which = if matches!(run.status, RunStatus::Killed { .. }) {
            "peak of the stages before the kill"
        } else {
            "peak"
        };
        let source = run.peak_source.map_or("kernel", |s| s.describe());
        eprintln!(
            "{}: {which} {} ({source}), sampled peak {}, {} process(es), {:.2} s",
            run.strategy,
            peak,
            format_bytes(run.sampled_peak_bytes),
            run.processes.len(),
            run.wall_s
        );
        if let Some(line) = kill_sentence(run) {
            eprintln!("{line}");
        }
    }
    if args.lines && exit_for(&report) == Exit::Ok {
        if let Some(run) = report.runs.first() {
            lines(&args, &plan, run)?;
        }
    }
    if let Some(line) = super::interrupted_sentence(&report) {
        eprintln!("{line}");
    }
    eprintln!("report: {}", out.join("report.json").display());
    Ok(exit_for(&report))
}

/// `record --lines`: the command once more under memray, each stage's lines
/// at its peak beside the kernel's figures of the run just recorded.
fn lines(args: &RecordArgs, plan: &RecordPlan, run: &oomlab::report::RunRecord) -> Result<()> {
    let dir = plan.out.join("lines");
    if !args.quiet {
        eprintln!("\nlines: running the command again under memray (a second, traced run)");
    }
    let traced = oomlab::lines::trace_run(&oomlab::lines::TracePlan {
        command: &plan.command,
        env: &plan.env,
        pattern: &plan.pattern,
        dir: &dir,
        passthrough: !args.quiet,
    })?;
    let kernel = oomlab::sweep::command::stage_peaks_of(run);
    let capture = &traced.traced.capture;
    eprintln!(
        "\n{}",
        oomlab::lines::render::provenance(&capture.memray, &capture.python)
    );
    eprint!(
        "{}",
        oomlab::lines::render::run_text(&traced.stages, &kernel)
    );
    let ratio = if run.wall_s > 0.0 {
        traced.traced.wall_s / run.wall_s
    } else {
        0.0
    };
    eprintln!(
        "tracing cost: {:.2} s traced against {:.2} s untraced ({ratio:.1}x); lines: {}",
        traced.traced.wall_s,
        run.wall_s,
        dir.join("lines.json").display()
    );
    Ok(())
}
