//! The report: everything a run saw, in one versioned JSON document.
//!
//! `report.json` is the boundary between measuring and everything after it:
//! tables, pictures, models, gates and postmortems read it, possibly on another
//! machine, so it carries a schema version and never the environment.//!
//! This file holds the report and the invocation-wide facts; what one run
//! recorded is in `run.rs`, reading and writing the file in `json.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Exit;
use crate::machine::MachineFacts;
use crate::scenario::Sizes;

mod json;
mod run;

pub use json::write_atomically;
pub use run::{
    LimitRecord, LogLine, ProcessRecord, RecordedCommand, RunRecord, RunStatus, StageRecord,
};

pub use crate::protocol::OutputSummary;

/// Bumped whenever a reader of an older report would misread a newer one.
pub const SCHEMA_VERSION: u32 = 1;

/// One invocation's findings: one scenario, one or more strategy runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub oomlab_version: String,
    /// The subcommand that produced the report (`compare`, `run`, ...).
    pub command: String,
    /// UTC time the report was written, RFC 3339.
    pub created_at: String,
    pub scenario: ScenarioInfo,
    pub settings: Settings,
    pub machine: MachineFacts,
    /// The allocator the children ran with; RSS figures depend on it.
    pub allocator: String,
    /// The data generation run, when this invocation generated the data.
    #[serde(default)]
    pub data_generation: Option<RunRecord>,
    pub runs: Vec<RunRecord>,
    /// Bytes of the v2 prepared frame plus its slim lookup tables: the least a
    /// strategy holding its output can peak at (from any run that produced it).
    #[serde(default)]
    pub floor_bytes: Option<u64>,
    /// Set when oomlab was stopped (Ctrl-C, SIGTERM) before the invocation
    /// finished: the report holds what was measured until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<Interruption>,
}

/// How an invocation was cut short, so a partial report cannot pass for a
/// complete one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Interruption {
    /// The signal oomlab received (2 = SIGINT, 15 = SIGTERM).
    pub signal: i32,
    /// Its name, for readers without a signal table.
    pub signal_name: String,
    /// Strategies that never started because of it.
    #[serde(default)]
    pub not_run: Vec<String>,
}

/// Which scenario, at which size, with which data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub path: String,
    #[serde(default)]
    pub description: String,
    pub seed: u64,
    pub scale: f64,
    /// Sizes actually run.
    pub scaled: Sizes,
    /// Sizes at production (scale 1), for extrapolation and tables.
    pub production: Sizes,
    /// Content hash of the generated inputs (xxh3, hex).
    pub data_hash: String,
}

/// The pipeline settings the strategies ran with (only the documented ones).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Settings {
    /// `MAX_RANKING_SAMPLES` in force (0 = no limit).
    pub max_ranking_samples: u64,
    /// Where that value came from (`flag`, `env`, `.env`, `default`, ...).
    pub max_ranking_samples_source: crate::settings::SettingSource,
    /// Sampling interval of the RSS timeline.
    pub interval_ms: f64,
    /// `SIMILARITY_MICRO_BATCH_SIZE` in force (similarity scenarios only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity_micro_batch_size: Option<u64>,
    /// Where it came from: `flag`, `env` or `scenario`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity_micro_batch_size_source: Option<crate::settings::SettingSource>,
    /// `SIMILARITY_TOP_K` in force (similarity scenarios only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity_top_k: Option<u64>,
    /// Where it came from: `flag`, `env` or `scenario`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity_top_k_source: Option<crate::settings::SettingSource>,
    /// How the replay held its frames: `polars`, or `pandas` (figures in
    /// pandas' bytes; see `strategy::memory`). Reports without it are `polars`.
    #[serde(default)]
    pub memory_mode: crate::strategy::memory::MemoryMode,
    /// How `MAX_RANKING_SAMPLES` picked rows (a replay's): `oomlab model fit`
    /// needs it to tell which variant a sampled run is a point of. Older
    /// reports have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<crate::sampling::SamplingMode>,
    /// Rows per chunk of the `streaming` strategy (a replay's): the model
    /// of `streaming` is of this chunk size. Older reports have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_rows: Option<u64>,
    /// Set when a command sweep recorded this run as one of its points: the
    /// size and template, so `oomlab model fit` can refit from the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_point: Option<CommandPoint>,
}

/// One point of a command sweep (`oomlab sweep -- CMD`), as its report
/// records it: without it a report holds the command as run, not the size it
/// was given nor the template it came from.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CommandPoint {
    /// The argv template, placeholders unsubstituted.
    pub template: Vec<String>,
    /// The scenario file whose production rows the model extrapolates to.
    pub scenario: String,
    /// Rows the command was given (`{rows}`).
    pub rows: u64,
    /// The scenario's scale at those rows (`{scale}`).
    pub scale: f64,
    /// `MAX_RANKING_SAMPLES` of the run (0: none).
    pub max_ranking_samples: u64,
    /// Whether the sweep had sampled runs (`--max-ranking-samples-fraction`):
    /// then every point also feeds the sampled variant.
    pub sampled_sweep: bool,
    /// The allocator settings the command ran under (they move a pandas
    /// pipeline's peaks), so a refit model names them as the sweep's does.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub allocator_env: BTreeMap<String, String>,
}

impl Report {
    /// The floor as reported by the runs that produce the v2 output.
    pub fn floor_from_runs(runs: &[RunRecord]) -> Option<u64> {
        runs.iter()
            .filter(|r| r.status == RunStatus::Completed)
            .filter_map(|r| r.output.as_ref()?.floor_bytes)
            .min()
    }

    /// A run's exact peak as a multiple of the floor.
    pub fn floor_ratio(&self, run: &RunRecord) -> Option<f64> {
        let floor = self.floor_bytes? as f64;
        let peak = run.peak_bytes? as f64;
        (floor > 0.0).then(|| peak / floor)
    }

    /// The run of a strategy, if the report has one.
    pub fn run(&self, strategy: &str) -> Option<&RunRecord> {
        self.runs.iter().find(|r| r.strategy == strategy)
    }
}

/// How a failed process ended, in words (`exit code 1`, `signal 6`), for
/// every place that tells a reader (terminal, summary).
pub fn exit_description(exit_code: Option<i32>, signal: Option<i32>) -> String {
    match (exit_code, signal) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("signal {sig}"),
        (None, None) => "no exit status".to_string(),
    }
}

/// Default report directory: `reports/runs/<UTC time>-<scenario>/`.
pub fn default_out_dir(scenario: &str) -> std::path::PathBuf {
    let stamp = utc_now_rfc3339().replace([':', '-'], "").replace('T', "-");
    std::path::PathBuf::from("reports/runs")
        .join(format!("{}-{scenario}", stamp.trim_end_matches('Z')))
}

/// The exit code a finished run ends with: interrupted (130/143) first,
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

/// When a report was written, as RFC 3339 (kept here for its many callers).
pub use crate::clock::utc_now_rfc3339;
