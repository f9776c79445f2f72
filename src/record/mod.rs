//! `oomlab record -- CMD ARGS...`: measure any command as a replay is measured.
//!
//! The real pipeline is pandas, not oomlab; to attribute its memory to its own
//! stages, `record` runs it (no shell in between) through the same runner as a
//! replay: the parent follows the command's whole process tree (RSS summed,
//! every process listed), reads each process's kernel high-water mark at stage
//! boundaries, and cuts stages at the lines of the command's output that match
//! a pattern (by default the pipeline's `INFO ...` lines). The result is the
//! same `report.json`, `summary.md` and pictures as a replay, plus the
//! command's output saved as `stdout.log` and `stderr.log`.

pub mod pattern;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::ValueEnum;
use serde_json::json;

use crate::error::bad_input;
use crate::machine::MachineFacts;
use crate::postmortem::parse::classify;
use crate::progress::Progress;
use crate::report::{
    utc_now_rfc3339, Interruption, RecordedCommand, Report, RunRecord, RunStatus, ScenarioInfo,
    Settings, SCHEMA_VERSION,
};
use crate::runner::limit::MemoryLimit;
use crate::runner::{
    run_child, ChildSpec, LineMarker, Marker, OutputStages, RunOptions, StageSource,
};
use crate::scenario::Sizes;
use crate::settings::SettingSource;
use crate::units::format_bytes;
use pattern::Pattern;

/// The default stage pattern: the pipeline's log lines at level INFO, in any
/// of the usual layouts (`INFO msg`, `INFO:root:msg`, `... - INFO - msg`,
/// Airflow's `{file.py:12} INFO - msg`); the message is the first group.
pub const DEFAULT_STAGE_PATTERN: &str = r"\bINFO\b\W*(.*\S)";

/// Which output streams carry stage markers.
///
/// Both by default: `print` writes to stdout, and Python's `logging` (as
/// `basicConfig` sets it up) to stderr; a pipeline's stage lines are on
/// whichever its authors used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum StageStream {
    /// Standard output only (as `print` writes).
    Stdout,
    /// Standard error only (where Python's `logging` writes by default).
    Stderr,
    /// Both (the default).
    #[default]
    Both,
}

impl StageStream {
    fn name(self) -> &'static str {
        match self {
            StageStream::Stdout => "stdout",
            StageStream::Stderr => "stderr",
            StageStream::Both => "both",
        }
    }
}

/// What to record and how.
#[derive(Debug, Clone)]
pub struct RecordPlan {
    pub command: Vec<OsString>,
    pub interval: Duration,
    pub memory_limit: Option<MemoryLimit>,
    pub pattern: Pattern,
    pub stream: StageStream,
    pub label: String,
    /// Report directory (also gets `stdout.log` and `stderr.log`).
    pub out: PathBuf,
    /// Copy the command's output to oomlab's own as it comes (it is saved either way).
    pub passthrough: bool,
    /// Variables set for the command on top of oomlab's environment (a
    /// command sweep exports the size as `OOMLAB_ROWS` and the like).
    pub env: Vec<(String, String)>,
    /// The command sweep point this run is, recorded in the report's settings.
    pub point: Option<crate::report::CommandPoint>,
}

/// The level word of a log line (`INFO`, `WARNING`, ...), or empty.
fn level_of(line: &str) -> String {
    const LEVELS: [&str; 7] = [
        "CRITICAL", "ERROR", "WARNING", "WARN", "INFO", "DEBUG", "TRACE",
    ];
    line.split(|c: char| !c.is_ascii_alphabetic())
        .find(|w| LEVELS.contains(w))
        .unwrap_or("")
        .to_string()
}

/// A stage name from a marker's message: the pipeline's own stage when the
/// write-up's line is recognized, else a short slug of the message.
pub fn stage_name(message: &str) -> String {
    if let Some(stage) = classify(message).and_then(|e| e.stage()) {
        return stage.to_string();
    }
    let mut slug = String::new();
    for c in message.chars() {
        if c.is_alphanumeric() {
            slug.extend(c.to_lowercase());
        } else if !slug.ends_with('_') && !slug.is_empty() {
            slug.push('_');
        }
        if slug.chars().count() >= 40 {
            break;
        }
    }
    let slug = slug.trim_end_matches('_').to_string();
    if slug.is_empty() {
        "stage".into()
    } else {
        slug
    }
}

/// The marker function of a pattern: a matching line starts a stage named
/// after its message (the first group, else the whole match).
pub fn marker_for(pattern: Pattern) -> LineMarker {
    Arc::new(move |line: &str| {
        let m = pattern.find(line)?;
        let message = m
            .group1
            .filter(|g| !g.trim().is_empty())
            .unwrap_or(m.whole)
            .trim()
            .to_string();
        let message = if message.is_empty() {
            line.trim().chars().take(500).collect()
        } else {
            message
        };
        let message = strip_logger_name(line, message);
        Some(Marker {
            stage: explicit_stage(line).unwrap_or_else(|| stage_name(&message)),
            level: level_of(line),
            message,
        })
    })
}

/// The message without the logger name that `logging.basicConfig`'s
/// default layout (`%(levelname)s:%(name)s:%(message)s`, as in
/// `INFO:prep.ranking:Loading samples`) puts between the level and the
/// message, so that a stage is named after what the pipeline said, not after
/// its module. Only that layout is touched: the logger must follow the level
/// and a colon directly, and be a dotted name without spaces.
fn strip_logger_name(line: &str, message: String) -> String {
    const LEVELS: [&str; 7] = [
        "CRITICAL:",
        "ERROR:",
        "WARNING:",
        "WARN:",
        "INFO:",
        "DEBUG:",
        "TRACE:",
    ];
    let Some(after_level) = LEVELS
        .iter()
        .find_map(|level| line.find(level).map(|at| &line[at + level.len()..]))
    else {
        return message;
    };
    if !after_level.trim_end().ends_with(message.as_str()) {
        return message;
    }
    let Some((name, rest)) = message.split_once(':') else {
        return message;
    };
    let is_logger = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && after_level.starts_with(name);
    if is_logger && !rest.trim().is_empty() {
        rest.trim().to_string()
    } else {
        message
    }
}

/// A stage a program names itself: `[stage] NAME` in a matching line (as the
/// pandas reference under `scenarios/pandas/` prints), so its stages carry the
/// replay's names rather than slugs of its messages.
fn explicit_stage(line: &str) -> Option<String> {
    let rest = &line[line.find("[stage]")? + "[stage]".len()..];
    let name: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
        .take(40)
        .collect();
    (!name.is_empty()).then_some(name)
}

/// Runs the command and builds its report.
pub fn record(plan: &RecordPlan, progress: &mut Progress) -> Result<Report> {
    let (program, args) = plan.command.split_first().ok_or_else(|| {
        bad_input("record: no command given (usage: oomlab record -- CMD ARGS...)")
    })?;
    let argv: Vec<String> = plan
        .command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut env = plan.env.clone();
    if std::env::var_os("PYTHONUNBUFFERED").is_none() {
        // A Python command's prints reach the pipe when printed, so stage
        // boundaries fall where they happen (not at the next 8 KiB flush).
        env.push(("PYTHONUNBUFFERED".to_string(), "1".to_string()));
    }
    let spec = ChildSpec {
        label: plan.label.clone(),
        program: PathBuf::from(program),
        args: args.to_vec(),
        env,
        stages: StageSource::Output(Box::new(OutputStages {
            marker: marker_for(plan.pattern.clone()),
            stdout_markers: plan.stream != StageStream::Stderr,
            stderr_markers: plan.stream != StageStream::Stdout,
            save_dir: Some(plan.out.clone()),
            passthrough: plan.passthrough,
            recorded: RecordedCommand {
                argv: argv.clone(),
                cwd: std::env::current_dir()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
                stage_pattern: plan.pattern.source().to_string(),
                stage_stream: plan.stream.name().to_string(),
                stdout_log: Some("stdout.log".into()),
                stderr_log: Some("stderr.log".into()),
                ..RecordedCommand::default()
            },
        })),
    };
    let run = run_child(
        &spec,
        RunOptions {
            interval: plan.interval,
            memory_limit: plan.memory_limit,
            journal_dir: Some(plan.out.clone()),
        },
        progress,
    )?;

    // The command's own log lines give the data sizes, as in a postmortem.
    let mut facts =
        crate::postmortem::sizes_in_log(&plan.out.join("stdout.log")).unwrap_or_default();
    if facts.last_stage.is_none() {
        if let Some(f) = crate::postmortem::sizes_in_log(&plan.out.join("stderr.log")) {
            facts = f;
        }
    }
    let sample_rows = facts
        .ranking_samples_rows
        .or(facts.preparing_samples)
        .unwrap_or(0);
    let sizes: Sizes = serde_json::from_value(json!({
        "sample_rows": sample_rows,
        "datasets": facts.datasets.unwrap_or(0),
        "users": 0,
        "profile_columns": facts.dataset_feature_columns.unwrap_or(0),
        "profile_numeric_columns": 0,
        "user_columns": facts.user_feature_columns.unwrap_or(0),
    }))?;
    let (mrs, mrs_source) = match facts.sampling {
        Some((_, to)) => (to, SettingSource::Log),
        None => (0, SettingSource::Unknown),
    };
    Ok(Report {
        schema_version: SCHEMA_VERSION,
        oomlab_version: env!("CARGO_PKG_VERSION").to_string(),
        command: "record".into(),
        created_at: utc_now_rfc3339(),
        scenario: ScenarioInfo {
            name: format!("record: {}", plan.label),
            path: String::new(),
            description: format!(
                "`oomlab record -- {}`: sizes below are those the command logged (0 = not logged).",
                argv.join(" ")
            ),
            seed: 0,
            scale: 1.0,
            scaled: sizes,
            production: sizes,
            data_hash: String::new(),
        },
        settings: Settings {
            max_ranking_samples: mrs,
            max_ranking_samples_source: mrs_source,
            interval_ms: plan.interval.as_secs_f64() * 1e3,
            command_point: plan.point.clone(),
            ..Settings::default()
        },
        machine: MachineFacts::collect(),
        allocator: "the command's own (not chosen by oomlab)".into(),
        data_generation: None,
        runs: vec![run],
        floor_bytes: None,
        interrupted: crate::interrupt::received().map(|signal| Interruption {
            signal,
            signal_name: crate::interrupt::signal_name(signal),
            not_run: Vec::new(),
        }),
    })
}

/// One sentence on a killed run (`None` for any other), for terminals.
pub fn kill_sentence(run: &RunRecord) -> Option<String> {
    let RunStatus::Killed {
        signal,
        stage,
        t_s,
        rss_bytes,
        by,
    } = &run.status
    else {
        return None;
    };
    let how = match (&run.memory_limit, by.as_str()) {
        (Some(l), "cgroup") => format!(
            "by the kernel at its {} limit ({} memory.limit)",
            format_bytes(l.limit_bytes),
            l.enforced_by
        ),
        (Some(l), "watchdog") => format!(
            "by the watchdog at its {} limit",
            format_bytes(l.limit_bytes)
        ),
        _ => format!("by {by}"),
    };
    Some(format!(
        "{} was killed (-{signal}) {how} in stage {} at {t_s:.2} s, RSS {}.",
        run.strategy,
        stage.as_deref().unwrap_or("?"),
        format_bytes(*rss_bytes)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_pattern_names_the_pipelines_stages() {
        let m = marker_for(Pattern::new(DEFAULT_STAGE_PATTERN).unwrap());
        let got = m("2025-12-25 08:15:02,001 - train_models - INFO - Merging with dataset features (87 columns)...").unwrap();
        assert_eq!(got.stage, "merge_dataset_profile");
        assert_eq!(got.level, "INFO");
        assert_eq!(got.message, "Merging with dataset features (87 columns)...");
        let got = m("INFO:root:Loading features from s3://bucket/x").unwrap();
        assert_eq!(got.stage, "loading_features_from_s3_bucket_x");
        assert!(m("DEBUG nothing to see").is_none());
        assert!(m("INFORMATION").is_none());
    }

    /// The layouts Python pipelines log in: `basicConfig`'s default with the
    /// root and a named logger, the asctime/name/levelname form, a bare
    /// level, and Airflow's task-log prefix. Each names the stage after the
    /// message, never after the logger.
    #[test]
    fn common_logging_layouts_name_the_stage_after_the_message() {
        let m = marker_for(Pattern::new(DEFAULT_STAGE_PATTERN).unwrap());
        for line in [
            "INFO:root:Loading ranking samples",
            "INFO:prep:Loading ranking samples",
            "INFO:prep.ranking_v2:Loading ranking samples",
            "2026-11-27 10:00:01,123 - prep - INFO - Loading ranking samples",
            "2026-11-27 10:00:01,123 - prep.ranking - INFO - Loading ranking samples",
            "INFO Loading ranking samples",
            "[2026-11-27, 10:00:01 UTC] {ranking_prep.py:88} INFO - Loading ranking samples",
            "[2026-11-27T10:00:01.123+0000] {taskinstance.py:1234} INFO - Loading ranking samples",
        ] {
            let got = m(line).unwrap_or_else(|| panic!("no marker in {line}"));
            assert_eq!(got.stage, "loading_ranking_samples", "{line}");
            assert_eq!(got.message, "Loading ranking samples", "{line}");
            assert_eq!(got.level, "INFO", "{line}");
        }
        // A colon in the message itself is kept.
        let got = m("INFO Note: merging 94 columns").unwrap();
        assert_eq!(got.message, "Note: merging 94 columns");
        let got = m("INFO:prep:Ratio: 2.5").unwrap();
        assert_eq!(got.message, "Ratio: 2.5");
    }

    #[test]
    fn explicit_stage_markers_name_the_stage() {
        let marker = marker_for(Pattern::new(DEFAULT_STAGE_PATTERN).unwrap());
        let m = marker("INFO [stage] merge_user_features").unwrap();
        assert_eq!(m.stage, "merge_user_features");
        assert_eq!(explicit_stage("INFO [stage]   "), None);
        assert_eq!(explicit_stage("no marker here"), None);
    }

    #[test]
    fn slugs_are_short_and_safe() {
        assert_eq!(stage_name("  !!  "), "stage");
        assert!(stage_name(&"word ".repeat(50)).chars().count() <= 41);
    }
}
