//! What one run recorded: how it ended, its stages and their peaks, its
//! timeline, its processes and log lines.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::OutputSummary;
use crate::sampler::{PeakSource, SamplerStats, Timeline};

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
