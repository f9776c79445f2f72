//! The report: everything a run saw, in one versioned JSON document.
//!
//! `report.json` is the boundary between measuring and everything after it:
//! tables, pictures, models, gates and postmortems read it, possibly on another
//! machine, so it carries a schema version and never the environment.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::error::{bad_input, Exit};
use crate::machine::MachineFacts;
pub use crate::protocol::OutputSummary;
use crate::sampler::{PeakSource, SamplerStats, Timeline};
use crate::scenario::Sizes;

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
    /// Where that value came from: `flag`, `env` or `default`.
    pub max_ranking_samples_source: String,
    /// Sampling interval of the RSS timeline.
    pub interval_ms: f64,
    /// `SIMILARITY_MICRO_BATCH_SIZE` in force (similarity scenarios only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity_micro_batch_size: Option<u64>,
    /// Where it came from: `flag`, `env` or `scenario`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity_micro_batch_size_source: Option<String>,
    /// `SIMILARITY_TOP_K` in force (similarity scenarios only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity_top_k: Option<u64>,
    /// Where it came from: `flag`, `env` or `scenario`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity_top_k_source: Option<String>,
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

/// One strategy in one child process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub strategy: String,
    pub status: RunStatus,
    /// Wall time from spawn to exit, seconds.
    pub wall_s: f64,
    /// Largest kernel stage peak; `None` if no stage completed. Which figure
    /// it is (exact, or an upper bound for a tree) says `peak_source`.
    pub peak_bytes: Option<u64>,
    /// What `peak_bytes` is: `cgroup` (the high-water mark of a cgroup
    /// holding the whole tree), `vmhwm` (one process's own mark), or
    /// `sum-vmhwm-upper-bound` (a tree's marks summed without a cgroup:
    /// shared pages count once per process). Older reports have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_source: Option<PeakSource>,
    /// The largest summed proportional set size sampled, for a tree of
    /// several processes measured without a cgroup: beside the upper bound,
    /// a figure that counts shared pages once (sampled, so it can miss a spike).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pss_peak_bytes: Option<u64>,
    /// The high-water mark of the memory cgroup the child ran in, over the
    /// whole run, when one could be made: what the kernel charged (page
    /// cache and kernel memory included), the figure a container's limit meets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_peak_bytes: Option<u64>,
    /// What sampling cost and how steady it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampler: Option<SamplerStats>,
    /// Largest sampled RSS.
    pub sampled_peak_bytes: u64,
    pub stages: Vec<StageRecord>,
    pub logs: Vec<LogLine>,
    #[serde(default)]
    pub output: Option<OutputSummary>,
    /// Last lines of the child's stderr (kept when it failed).
    #[serde(default)]
    pub stderr_tail: Vec<String>,
    pub timeline: Timeline,
    /// The memory limit the run was under (`--memory-limit`) and how it was enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<LimitRecord>,
    /// Every process of a recorded command's tree (`record`); empty for a
    /// replay, whose child is one process.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<ProcessRecord>,
    /// The command `record` ran, and how it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<RecordedCommand>,
}

/// A memory limit a run was under: a reader needs the figure and who enforced
/// it to tell a kernel kill from the watchdog's.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LimitRecord {
    pub limit_bytes: u64,
    /// `cgroup-v2` (memory.max), `cgroup-v1` (memory.limit_in_bytes) or `watchdog`.
    pub enforced_by: String,
    /// Why no cgroup was used when `auto` fell back to the watchdog.
    #[serde(default)]
    pub fallback_reason: Option<String>,
    /// The cgroup made for the run.
    #[serde(default)]
    pub cgroup_path: Option<String>,
    /// The cgroup's peak charge (RSS + page cache + kernel memory): the figure
    /// the kernel compared with the limit.
    #[serde(default)]
    pub cgroup_peak_bytes: Option<u64>,
    /// Kills by the kernel's OOM killer inside the cgroup.
    #[serde(default)]
    pub oom_kills: Option<u64>,
}

/// One process of a recorded command's tree, so a child's memory is visible
/// apart from its parent's.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ProcessRecord {
    pub pid: i32,
    pub ppid: i32,
    /// The command that was run (true for exactly one process).
    pub root: bool,
    /// Its command line (at most 200 characters).
    pub command: String,
    pub first_seen_s: f64,
    pub last_seen_s: f64,
    /// The kernel's high-water mark (`VmHWM`, largest reading; for a lone
    /// root completed by `ru_maxrss`).
    pub peak_bytes: u64,
    /// Largest sampled RSS.
    pub sampled_peak_bytes: u64,
}

/// What `oomlab record` ran and how it ended, so a report can be re-read
/// without the shell history.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RecordedCommand {
    /// The command and its arguments, as run (no shell).
    pub argv: Vec<String>,
    /// Working directory it ran in.
    pub cwd: String,
    /// The pattern whose matching lines started stages.
    pub stage_pattern: String,
    /// Which streams were searched for markers (`stdout`, `stderr`, `both`).
    pub stage_stream: String,
    /// How many marker lines were seen.
    #[serde(default)]
    pub markers: u64,
    /// The command's exit code (none when a signal ended it).
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// The signal that ended it.
    #[serde(default)]
    pub signal: Option<i32>,
    /// `ru_maxrss` of the reaped command: the largest single-process peak the
    /// kernel saw among it (since its last stage boundary) and the children it reaped.
    #[serde(default)]
    pub root_max_rss_bytes: Option<u64>,
    /// Files holding the command's output (relative to the report directory).
    #[serde(default)]
    pub stdout_log: Option<String>,
    #[serde(default)]
    pub stderr_log: Option<String>,
}

/// How a child ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunStatus {
    Completed,
    /// Killed by a signal (SIGKILL = -9, as the pipeline's exit code -9).
    Killed {
        signal: i32,
        stage: Option<String>,
        t_s: f64,
        rss_bytes: u64,
        /// What killed it: `watchdog`, `cgroup`, or `unknown`.
        by: String,
    },
    /// oomlab itself was interrupted (Ctrl-C, SIGTERM) and killed the
    /// process (its whole process group and tree) in `stage` at `t_s`.
    Interrupted {
        /// The signal oomlab received (2 = SIGINT, 15 = SIGTERM).
        signal: i32,
        stage: Option<String>,
        t_s: f64,
        /// The last sampled RSS.
        rss_bytes: u64,
    },
    /// Exited non-zero or died of a signal nobody sent on purpose.
    Failed {
        exit_code: Option<i32>,
        signal: Option<i32>,
        stage: Option<String>,
        message: String,
    },
}

/// One named stage of a strategy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageRecord {
    pub name: String,
    pub start_s: f64,
    pub end_s: f64,
    /// Kernel high-water mark over the stage (VmHWM after a reset, or the
    /// tree's cgroup mark; see `peak_source`); `None` if the stage never
    /// finished (the process was killed in it).
    pub exact_peak_bytes: Option<u64>,
    /// What `exact_peak_bytes` is (see [`RunRecord::peak_source`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_source: Option<PeakSource>,
    pub rss_start_bytes: u64,
    pub rss_end_bytes: u64,
    /// Largest sampled RSS within the stage's span.
    pub sampled_peak_bytes: Option<u64>,
    /// What the stage says of itself: rows, bytes, columns.
    #[serde(default)]
    pub detail: BTreeMap<String, serde_json::Value>,
}

impl StageRecord {
    /// The best peak known for the stage: exact when it finished, sampled otherwise.
    pub fn best_peak(&self) -> u64 {
        self.exact_peak_bytes
            .or(self.sampled_peak_bytes)
            .unwrap_or(self.rss_end_bytes)
    }
}

/// A log line the pipeline printed, with its time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogLine {
    pub t_s: f64,
    pub level: String,
    pub message: String,
}

impl RunRecord {
    /// Percentage by which the sampler under-reads the exact peak.
    pub fn sampling_gap_pct(&self) -> Option<f64> {
        let exact = self.peak_bytes? as f64;
        (exact > 0.0).then(|| (exact - self.sampled_peak_bytes as f64) / exact * 100.0)
    }

    /// The stage with the largest peak: the one that sets the memory need.
    pub fn peak_stage(&self) -> Option<&StageRecord> {
        self.stages.iter().max_by_key(|s| s.best_peak())
    }
}

impl Report {
    /// Writes `report.json` atomically (temporary name, then rename).
    pub fn write_json(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).context("serializing the report")?;
        write_atomically(path, &json)
    }

    /// Reads a report, refusing other schema versions with a clear message (exit 2).
    pub fn read_json(path: &Path) -> Result<Report> {
        let bytes = std::fs::read(path)
            .map_err(|e| bad_input(format!("{}: cannot read report: {e}", path.display())))?;
        Self::from_json(&bytes, &path.display().to_string())
    }

    /// Parses a report's bytes; `origin` names the file in errors. Anything
    /// that is not a report of this schema is a bad-input error (exit 2),
    /// never a panic: reports travel between machines and get hand-edited.
    pub fn from_json(bytes: &[u8], origin: &str) -> Result<Report> {
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
            bad_input(format!(
                "{origin}: not a valid oomlab report (JSON error: {e})"
            ))
        })?;
        let version = value.get("schema_version").and_then(|v| v.as_u64());
        if version != Some(SCHEMA_VERSION as u64) {
            return Err(bad_input(format!(
                "{origin}: report schema_version is {}, this oomlab reads version {SCHEMA_VERSION}",
                version.map_or("missing".to_string(), |v| v.to_string())
            )));
        }
        serde_json::from_value(value)
            .map_err(|e| bad_input(format!("{origin}: not a valid oomlab report: {e}")))
    }

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

/// Writes a file so that readers see either the old content or the whole new one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating directory {}", dir.display()))?;
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| {
            use std::io::Write;
            f.write_all(bytes)?;
            // On disk before the rename: after a crash the name holds the old
            // content or the whole new one, never an empty file.
            f.sync_data()
        })
        .with_context(|| format!("writing {}", tmp.display()));
    let renamed = written.and_then(|_| {
        std::fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    });
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed
}

/// When a report was written, as RFC 3339 (kept here for its many callers).
pub use crate::clock::utc_now_rfc3339;

#[cfg(test)]
mod tests {
    use super::*;

    /// A small report with every kind of run, as the property tests' seed.
    fn sample_report() -> Report {
        let sizes: Sizes = serde_json::from_value(serde_json::json!({
            "sample_rows": 1000, "datasets": 10, "users": 20, "profile_columns": 5,
            "profile_numeric_columns": 3, "user_columns": 2,
        }))
        .expect("sizes");
        let stage = |name: &str, start: f64, end: f64, peak: Option<u64>| StageRecord {
            name: name.into(),
            start_s: start,
            end_s: end,
            exact_peak_bytes: peak,
            peak_source: Some(PeakSource::Vmhwm),
            rss_start_bytes: 10 << 20,
            rss_end_bytes: 20 << 20,
            sampled_peak_bytes: peak.map(|p| p - 1),
            detail: BTreeMap::from([("rows".to_string(), serde_json::json!(1000))]),
        };
        let run = |strategy: &str, status: RunStatus| RunRecord {
            strategy: strategy.into(),
            status,
            wall_s: 1.5,
            peak_bytes: Some(300 << 20),
            peak_source: Some(PeakSource::SumVmhwmUpperBound),
            pss_peak_bytes: Some(120 << 20),
            cgroup_peak_bytes: Some(310 << 20),
            sampler: Some(SamplerStats {
                samples: 150,
                cpu_s: 0.01,
                wall_s: 1.5,
                interval_ms: 10.0,
                achieved_interval_ms: 10.1,
                worst_jitter_ms: 2.0,
                oomlab_cpu_s: 0.02,
            }),
            sampled_peak_bytes: 290 << 20,
            stages: vec![
                stage("load", 0.0, 0.5, Some(100 << 20)),
                stage("merge_dataset_profile", 0.5, 1.5, Some(300 << 20)),
            ],
            logs: vec![LogLine {
                t_s: 0.1,
                level: "INFO".into(),
                message: "Ranking samples: 1000".into(),
            }],
            output: Some(OutputSummary {
                rows: 900,
                floor_bytes: Some(50 << 20),
                ..OutputSummary::default()
            }),
            stderr_tail: vec!["boom".into()],
            timeline: Timeline {
                interval_ms: 10.0,
                t_s: vec![0.0, 0.4, 0.9, 1.4],
                rss_bytes: vec![1 << 20, 100 << 20, 290 << 20, 20 << 20],
                several: None,
            },
            memory_limit: None,
            processes: Vec::new(),
            recorded: None,
        };
        Report {
            schema_version: SCHEMA_VERSION,
            oomlab_version: "0.1.0".into(),
            command: "compare".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            scenario: ScenarioInfo {
                name: "ci".into(),
                path: "scenarios/ci.toml".into(),
                description: String::new(),
                seed: 7,
                scale: 1.0,
                scaled: sizes,
                production: sizes,
                data_hash: "00".into(),
            },
            settings: Settings::default(),
            machine: MachineFacts::default(),
            allocator: "glibc".into(),
            data_generation: None,
            runs: vec![
                run("legacy", RunStatus::Completed),
                run(
                    "optimized",
                    RunStatus::Killed {
                        signal: 9,
                        stage: Some("load".into()),
                        t_s: 1.0,
                        rss_bytes: 5 << 20,
                        by: "watchdog".into(),
                    },
                ),
                run(
                    "interrupted",
                    RunStatus::Interrupted {
                        signal: 2,
                        stage: Some("merge_dataset_profile".into()),
                        t_s: 1.2,
                        rss_bytes: 200 << 20,
                    },
                ),
                run(
                    "streaming",
                    RunStatus::Failed {
                        exit_code: Some(101),
                        signal: None,
                        stage: None,
                        message: "panicked".into(),
                    },
                ),
            ],
            floor_bytes: Some(50 << 20),
            interrupted: Some(Interruption {
                signal: 2,
                signal_name: "SIGINT".into(),
                not_run: vec!["similarity".into()],
            }),
        }
    }

    /// Found by `report_edited_reports_are_a_report_or_bad_input`: a stage
    /// starting at 5.96e31 s put the peak note's anchor past `i32::MAX` pixels
    /// and the note placement panicked (`clamp` with min > max) in `oomlab
    /// plot` and in every report directory's pictures.
    #[test]
    fn absurd_times_and_sizes_draw_without_panic() {
        let mut report = sample_report();
        report.runs[0].stages[1].start_s = 5.958030845605301e31;
        check_answer(&serde_json::to_vec(&report).unwrap()).unwrap();
        for (t, bytes) in [
            (-1e300, u64::MAX),
            (1e300, 0),
            (f64::MIN_POSITIVE, u64::MAX / 2),
        ] {
            let mut report = sample_report();
            for run in &mut report.runs {
                run.wall_s = t;
                run.peak_bytes = Some(bytes);
                run.timeline.t_s.push(t);
                run.timeline.rss_bytes.push(bytes);
                for s in &mut run.stages {
                    s.end_s = t;
                    s.exact_peak_bytes = Some(bytes);
                }
            }
            check_answer(&serde_json::to_vec(&report).unwrap()).unwrap();
        }
    }

    /// Found by `report_edited_reports_are_a_report_or_bad_input` in a
    /// 10-minute run: a stage with an empty name has a 0-pixel label, and the
    /// callout placement panicked (`clamp` with min > max).
    #[test]
    fn empty_stage_names_draw_without_panic() {
        let mut report = sample_report();
        for run in &mut report.runs {
            for s in &mut run.stages {
                s.name = String::new();
                s.end_s = s.start_s;
            }
        }
        check_answer(&serde_json::to_vec(&report).unwrap()).unwrap();
    }

    /// Every place of a JSON tree, as a path of object keys and array indices.
    fn paths(v: &serde_json::Value, at: Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(at.clone());
        match v {
            serde_json::Value::Object(m) => {
                for (k, child) in m {
                    let mut p = at.clone();
                    p.push(k.clone());
                    paths(child, p, out);
                }
            }
            serde_json::Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    let mut p = at.clone();
                    p.push(i.to_string());
                    paths(child, p, out);
                }
            }
            _ => {}
        }
    }

    fn at_path<'a>(
        v: &'a mut serde_json::Value,
        path: &[String],
    ) -> Option<&'a mut serde_json::Value> {
        path.iter().try_fold(v, |v, k| match v {
            serde_json::Value::Object(m) => m.get_mut(k),
            serde_json::Value::Array(a) => a.get_mut(k.parse::<usize>().ok()?),
            _ => None,
        })
    }

    /// What every answer of the reader must look like: a report every reader
    /// of reports (summary, tables, both pictures) can render, or a bad-input
    /// error (exit 2) that names the file.
    fn check_answer(bytes: &[u8]) -> Result<(), proptest::test_runner::TestCaseError> {
        match Report::from_json(bytes, "fuzz.json") {
            Ok(report) => {
                let _ = crate::summary::render(&report);
                let _ = crate::table::before_after(&report).to_text();
                for run in &report.runs {
                    let _ = crate::table::stages(run).to_markdown();
                    let _ = crate::record::kill_sentence(run);
                }
                let opts = crate::plot::PlotOptions {
                    budget_bytes: Some(1 << 30),
                    ..crate::plot::PlotOptions::for_report(&report)
                };
                // A picture may be refused as too large (bad input), never fail otherwise.
                let drawn = |r: Result<String>| match r {
                    Err(e) if crate::error::exit_code_of(&e) != crate::error::Exit::BadInput => {
                        Err(proptest::test_runner::TestCaseError::fail(format!("{e:#}")))
                    }
                    _ => Ok(()),
                };
                if crate::plot::timeline::TimelineChart::applies(&report) {
                    drawn(crate::plot::render_svg(
                        &crate::plot::timeline::TimelineChart::new(&report, &opts),
                    ))?;
                }
                if crate::plot::peaks::PeaksChart::applies(&report) {
                    drawn(crate::plot::render_svg(
                        &crate::plot::peaks::PeaksChart::new(&report, &opts),
                    ))?;
                }
            }
            Err(e) => {
                proptest::prop_assert_eq!(
                    crate::error::exit_code_of(&e),
                    crate::error::Exit::BadInput,
                    "{}",
                    e
                );
                proptest::prop_assert!(e.to_string().starts_with("fuzz.json"), "{e}");
            }
        }
        Ok(())
    }

    /// A JSON value of any type, hostile numbers included.
    fn hostile_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            (0u64..10).prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            prop::sample::select(vec![
                -1.0,
                0.0,
                -0.0,
                1e-300,
                1e300,
                f64::MAX,
                f64::MIN_POSITIVE,
                0.5
            ])
            .prop_map(serde_json::Value::from),
            "[ -~]{0,8}".prop_map(serde_json::Value::from),
            prop::sample::select(vec![
                "completed",
                "killed",
                "failed",
                "interrupted",
                "",
                "load"
            ])
            .prop_map(serde_json::Value::from),
            Just(serde_json::json!([])),
            Just(serde_json::json!({})),
            Just(serde_json::json!([0.0, 1e300, -5.0])),
        ]
    }

    // Case counts follow PROPTEST_CASES (README, "Property tests").
    proptest::proptest! {
        #[test]
        fn report_any_bytes_are_a_report_or_bad_input(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            check_answer(&bytes)?;
        }

        #[test]
        fn report_any_json_text_is_a_report_or_bad_input(text in "[\\[\\]{}\":,0-9a-z .eE+-]{0,200}") {
            check_answer(text.as_bytes())?;
        }

        #[test]
        fn report_edited_reports_are_a_report_or_bad_input(
            edits in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), hostile_value(), 0u8..6), 1..4),
        ) {
            let mut value = serde_json::to_value(sample_report()).expect("report to JSON");
            for (at, replacement, how) in edits {
                let mut all = Vec::new();
                paths(&value, Vec::new(), &mut all);
                let path = all[at.index(all.len())].clone();
                let Some((last, parent_path)) = path.split_last() else {
                    continue;
                };
                if how == 0 {
                    // Remove the key or element.
                    match at_path(&mut value, parent_path) {
                        Some(serde_json::Value::Object(m)) => {
                            m.remove(last);
                        }
                        Some(serde_json::Value::Array(a)) => {
                            if let Ok(i) = last.parse::<usize>() {
                                if i < a.len() {
                                    a.remove(i);
                                }
                            }
                        }
                        _ => {}
                    }
                } else if how == 1 {
                    // Duplicate an array element (longer lists, unsorted times).
                    if let Some(serde_json::Value::Array(a)) = at_path(&mut value, parent_path) {
                        if let Some(v) = last.parse::<usize>().ok().and_then(|i| a.get(i).cloned()) {
                            a.push(v);
                        }
                    }
                } else if let Some(slot) = at_path(&mut value, &path) {
                    // Half the time keep the slot's type, so the edit gets past
                    // the schema and reaches the readers: 0, 1, huge, or the
                    // random number; a float NaN-free but of any magnitude.
                    *slot = match (if (2..5).contains(&how) { 2 } else { how }, &*slot, &replacement) {
                        (2, serde_json::Value::Number(n), _) if n.is_u64() => {
                            let pick = [0, 1, u64::MAX, u64::MAX / 2, replacement.as_u64().unwrap_or(7)];
                            serde_json::Value::from(pick[at.index(pick.len())])
                        }
                        (2, serde_json::Value::Number(n), _) if n.is_f64() || n.is_i64() => {
                            let pick = [0.0, -1.0, 1e-9, 1e300, -1e300, replacement.as_f64().unwrap_or(0.25)];
                            serde_json::Value::from(pick[at.index(pick.len())])
                        }
                        (2, serde_json::Value::String(_), _) => {
                            serde_json::Value::from(replacement.to_string())
                        }
                        _ => replacement,
                    };
                }
            }
            let bytes = serde_json::to_vec(&value).expect("JSON");
            check_answer(&bytes)?;
        }
    }
}
