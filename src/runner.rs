//! Runs one measured child process and turns what it said into a `RunRecord`.
//!
//! The child is a separate process so that nothing the harness allocates (the
//! sampler, the progress display, JSON) is ever counted in a figure. The parent
//! samples the child's RSS, reads its stage markers and logs from a pipe, and
//! keeps the last lines of its stderr in case it dies.
//!
//! Two kinds of child go through the same code:
//! - a replay child (oomlab's own `__child`) speaks the `@oomlab` protocol and
//!   measures its own exact stage peaks ([`StageSource::Protocol`]);
//! - any command under `oomlab record` knows nothing of oomlab: its stages are
//!   the lines of its output that match a pattern, the parent follows its whole
//!   process tree and takes the exact peaks from the kernel itself, and its
//!   output is passed through and saved ([`StageSource::Output`]).
//!
//! Either can run under a memory limit ([`limit`]) that kills it as a
//! container's OOM killer would; the record then says who killed it, in which
//! stage, when and at what RSS, and the timeline runs up to the kill.

mod classify;
mod enforce;
pub mod limit;
mod pumps;
mod spawn;

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;

use crate::journal::Journal;
use crate::probe::Detail;
use crate::progress::Progress;
use crate::protocol::{monotonic_ns, Event};
use crate::report::{LogLine, ProcessRecord, RecordedCommand, RunRecord, RunStatus, StageRecord};
use crate::sampler::{ProcessTree, Sampler};
use classify::{classify, status_sentence, Ending};
use enforce::{Enforcement, KillNote};
use limit::MemoryLimit;
use pumps::{Message, Pumps};
use spawn::{has_exited, spawn, stop_tree, wait_with_rusage};

/// After the root process exits, how long descendants may keep its output
/// pipes open before the run is closed without them.
const PIPE_GRACE: Duration = Duration::from_secs(2);

/// Name of the stage from spawn to the first marker of a recorded command
/// (`run` when no marker ever came).
pub const FIRST_STAGE: &str = "start";

/// The command to measure and how to label it.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    /// Label in reports and displays (the strategy name).
    pub label: String,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// Environment variables to set for the child (the pipeline's documented knobs).
    pub env: Vec<(String, String)>,
    /// How the child's stages are known.
    pub stages: StageSource,
}

impl ChildSpec {
    /// A child that re-executes this binary's hidden `__child` subcommand.
    pub fn oomlab_child(label: &str, job_json: String) -> Result<Self> {
        let program = std::env::current_exe().context("locating the oomlab binary")?;
        Ok(Self {
            label: label.to_string(),
            program,
            args: vec!["__child".into(), "--job".into(), job_json.into()],
            env: Vec::new(),
            stages: StageSource::Protocol,
        })
    }
}

/// How a run's stages are known.
#[derive(Debug, Clone)]
pub enum StageSource {
    /// The `@oomlab` protocol: the child brackets each stage with its own
    /// kernel peak (it resets and reads its own VmHWM).
    Protocol,
    /// Any command: lines of its output start stages; the parent follows the
    /// whole process tree and reads the kernel's peaks itself.
    Output(Box<OutputStages>),
}

/// Decides whether an output line starts a stage, and names it.
pub type LineMarker = Arc<dyn Fn(&str) -> Option<Marker> + Send + Sync>;

/// A stage boundary found in a command's output.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    /// Name of the stage the line starts.
    pub stage: String,
    /// Log level the line carried (`INFO`), or empty.
    pub level: String,
    /// The line's message, kept in the run's logs.
    pub message: String,
}

/// Stage markers and output handling of a recorded command.
#[derive(Clone)]
pub struct OutputStages {
    /// Decides which lines are stage boundaries.
    pub marker: LineMarker,
    /// Look for markers on stdout.
    pub stdout_markers: bool,
    /// Look for markers on stderr.
    pub stderr_markers: bool,
    /// Directory that gets `stdout.log` and `stderr.log`.
    pub save_dir: Option<PathBuf>,
    /// Copy the command's output to oomlab's own stdout/stderr as it comes.
    pub passthrough: bool,
    /// What the report says about the command (completed by the runner).
    pub recorded: RecordedCommand,
}

impl std::fmt::Debug for OutputStages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputStages")
            .field("stdout_markers", &self.stdout_markers)
            .field("stderr_markers", &self.stderr_markers)
            .field("save_dir", &self.save_dir)
            .field("passthrough", &self.passthrough)
            .field("recorded", &self.recorded)
            .finish_non_exhaustive()
    }
}

/// Sampling settings for a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub interval: Duration,
    /// Kill the child when its memory crosses this limit (`--memory-limit`).
    pub memory_limit: Option<MemoryLimit>,
    /// The report directory, when known: the run's samples are streamed to
    /// `samples.<label>.jsonl` there as they are taken (see `journal`).
    pub journal_dir: Option<PathBuf>,
}

struct OpenStage {
    name: String,
    start_s: f64,
    rss_start: u64,
}

/// Spawns the child, samples it until it exits, and records everything it said.
pub fn run_child(
    spec: &ChildSpec,
    options: RunOptions,
    progress: &mut Progress,
) -> Result<RunRecord> {
    progress.begin(&spec.label);
    // SIGINT/SIGTERM stop this child (see `interrupt`) while it runs.
    let _interrupt = crate::interrupt::Guard::install();
    let mut enforcement = Enforcement::prepare(options.memory_limit)?;
    let output_mode = match &spec.stages {
        StageSource::Output(o) => Some(o.as_ref().clone()),
        StageSource::Protocol => None,
    };
    if output_mode.is_some() {
        // The kernel hands a spawned child our high-water mark, which then
        // floors the child's `ru_maxrss`: make it our current RSS (small).
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }
    let journal = options
        .journal_dir
        .as_deref()
        .map(|dir| Journal::create(dir, &spec.label).map(Arc::new))
        .transpose()?;
    let origin_ns = monotonic_ns();
    let mut child = spawn(spec, &mut enforcement, options.memory_limit)?;
    let pid = child.id() as i32;
    if let Some(j) = &journal {
        j.start(&spec.label, pid, options.interval.as_secs_f64() * 1e3);
    }
    let tree = output_mode
        .as_ref()
        .map(|_| Arc::new(Mutex::new(ProcessTree::new(pid))));
    let kill_note = KillNote::default();
    let on_sample = enforcement.on_sample(pid, tree.clone(), kill_note.clone(), journal.clone());
    let sampler = match &tree {
        Some(tr) => Sampler::start_tree(tr.clone(), options.interval, origin_ns, on_sample),
        None => Sampler::start(pid, options.interval, origin_ns, on_sample),
    };

    let pumps = Pumps::start(&mut child, output_mode.as_ref())?;

    let secs = |t_ns: u64| t_ns.saturating_sub(origin_ns) as f64 / 1e9;
    let mut stages = Vec::new();
    let mut logs = Vec::new();
    let mut output = None;
    let mut markers_seen = 0u64;
    let mut open: Option<OpenStage> = output_mode.as_ref().map(|_| OpenStage {
        name: FIRST_STAGE.to_string(),
        start_s: 0.0,
        rss_start: 0,
    });
    if output_mode.is_some() {
        progress.stage_start(FIRST_STAGE, 0.0);
    }
    let mut exited_at: Option<u64> = None;
    // `(signal, seconds since spawn)` once oomlab was interrupted.
    let mut interrupted: Option<(i32, f64)> = None;
    loop {
        if let Some(j) = &journal {
            j.tick();
        }
        if interrupted.is_none() {
            if let Some(signal) = crate::interrupt::received() {
                interrupted = Some((signal, secs(monotonic_ns())));
                progress.warn(&format!(
                    "{}: stopping {} (pid {pid}) and every process it started",
                    crate::interrupt::signal_name(signal),
                    spec.label
                ));
                stop_tree(pid);
            }
        }
        match pumps.messages.recv_timeout(Duration::from_millis(100)) {
            Ok(Message::Event(event)) => match event {
                Event::StageStart {
                    stage,
                    t_ns,
                    rss_bytes,
                } => {
                    if let Some(j) = &journal {
                        j.event("stage_start", secs(t_ns), json!({ "stage": stage }));
                    }
                    progress.stage_start(&stage, secs(t_ns));
                    open = Some(OpenStage {
                        name: stage,
                        start_s: secs(t_ns),
                        rss_start: rss_bytes,
                    });
                }
                Event::StageEnd {
                    stage,
                    t_ns,
                    peak_bytes,
                    rss_bytes,
                    detail,
                } => {
                    if let Some(j) = &journal {
                        j.event(
                            "stage_end",
                            secs(t_ns),
                            json!({ "stage": stage, "peak_bytes": peak_bytes }),
                        );
                    }
                    let (start_s, rss_start) = match open.take() {
                        Some(o) if o.name == stage => (o.start_s, o.rss_start),
                        _ => (secs(t_ns), rss_bytes),
                    };
                    progress.stage_end(&stage, secs(t_ns) - start_s, peak_bytes);
                    stages.push(stage_record(
                        stage,
                        start_s,
                        secs(t_ns),
                        Some(peak_bytes),
                        rss_start,
                        rss_bytes,
                        detail,
                    ));
                }
                Event::Log {
                    t_ns,
                    level,
                    message,
                } => {
                    if let Some(j) = &journal {
                        j.event(
                            "log",
                            secs(t_ns),
                            json!({ "level": level, "message": message }),
                        );
                    }
                    progress.log(&level, &message);
                    logs.push(LogLine {
                        t_s: secs(t_ns),
                        level,
                        message,
                    });
                }
                Event::Output(summary) => output = Some(summary),
            },
            Ok(Message::Output(line)) => progress.log("OUT", &line),
            Ok(Message::Marker(t_ns, marker)) => {
                markers_seen += 1;
                let t = secs(t_ns);
                if let Some(j) = &journal {
                    j.event(
                        "stage_start",
                        t,
                        json!({ "stage": marker.stage, "message": marker.message }),
                    );
                }
                let peaks = tree
                    .as_ref()
                    .and_then(|tr| tr.lock().ok().map(|mut tr| tr.boundary(t)))
                    .unwrap_or_default();
                if let Some(o) = open.take() {
                    progress.stage_end(&o.name, t - o.start_s, peaks.total_bytes);
                    stages.push(stage_record(
                        o.name,
                        o.start_s,
                        t,
                        Some(peaks.total_bytes),
                        o.rss_start,
                        peaks.rss_bytes,
                        tree_detail(&peaks),
                    ));
                }
                progress.stage_start(&marker.stage, t);
                open = Some(OpenStage {
                    name: marker.stage,
                    start_s: t,
                    rss_start: peaks.rss_bytes,
                });
                logs.push(LogLine {
                    t_s: t,
                    level: marker.level,
                    message: marker.message,
                });
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                progress.tick(secs(monotonic_ns()), sampler.latest());
                // Descendants may hold the output pipes after the root exited:
                // give them a grace period, then close the run without them.
                if exited_at.is_none() && has_exited(pid) {
                    exited_at = Some(monotonic_ns());
                }
                if exited_at.is_some_and(|t| monotonic_ns() - t > PIPE_GRACE.as_nanos() as u64) {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let (status, root_max_rss) = wait_with_rusage(pid).context("waiting for the child")?;
    drop(child);
    let end_ns = monotonic_ns();
    let end_s = secs(end_ns);
    pumps::join_finished(pumps.readers);
    let final_peaks = tree.as_ref().and_then(|tr| {
        let command = spec.program.display().to_string();
        tr.lock()
            .ok()
            .map(|mut tr| tr.finish(end_s, root_max_rss, &command))
    });
    let mut timeline = sampler.finish();
    progress.finish();
    let stderr_tail = pumps.stderr_tail.lines();

    let ending = Ending {
        status,
        kill_note: kill_note.lock().ok().and_then(|n| *n),
        cgroup_kills: enforcement
            .cgroup()
            .and_then(|c| c.oom_kills())
            .unwrap_or(0),
        interrupted,
    };
    let ended_early = ending.ended_early();
    let last_rss = timeline
        .rss_bytes
        .iter()
        .rev()
        .copied()
        .find(|r| *r > 0)
        .unwrap_or(0);

    // A stage still open when the child ended: for a replay child that means
    // it died in it; a recorded command's last stage ends when it exits, and
    // is where it died when it was killed or failed.
    let mut died_in = None;
    if let Some(mut o) = open {
        if output_mode.is_some() && markers_seen == 0 {
            o.name = "run".into();
        }
        let (exact, detail) = match (&final_peaks, ended_early) {
            (Some(p), false) => (Some(p.total_bytes), tree_detail(p)),
            _ => (None, Detail::new()),
        };
        if output_mode.is_none() || ending.ended_badly() || ended_early {
            died_in = Some(o.name.clone());
        }
        if let Some(peak) = exact {
            progress.stage_end(&o.name, end_s - o.start_s, peak);
        }
        let rss_end = if output_mode.is_some() || ended_early {
            last_rss
        } else {
            timeline.rss_bytes.last().copied().unwrap_or(o.rss_start)
        };
        stages.push(stage_record(
            o.name,
            o.start_s,
            end_s,
            exact,
            o.rss_start,
            rss_end,
            detail,
        ));
    }
    for stage in &mut stages {
        stage.sampled_peak_bytes = timeline.peak_between(stage.start_s, stage.end_s);
    }
    if timeline.t_s.is_empty() {
        timeline.t_s.push(0.0);
        timeline.rss_bytes.push(0);
    }

    let run_status = classify(&ending, died_in, end_s, last_rss, &stderr_tail);
    if run_status != RunStatus::Completed {
        progress.warn(&status_sentence(&spec.label, &run_status));
    }
    if let Some(j) = &journal {
        j.event("end", end_s, json!({ "status": run_status }));
        if let Some(err) = j.finish() {
            progress.warn(&format!("samples journal incomplete: {err}"));
        }
    }
    let mut peak_bytes = stages.iter().filter_map(|s| s.exact_peak_bytes).max();
    let mut processes = Vec::new();
    let mut recorded = None;
    if let (Some(o), Some(tree)) = (&output_mode, &tree) {
        if !ended_early {
            // The biggest single process's kernel peak bounds the tree's from below.
            peak_bytes = peak_bytes.max(root_max_rss);
        }
        if let Ok(tree) = tree.lock() {
            processes = tree
                .processes()
                .into_iter()
                .map(|p| ProcessRecord {
                    root: p.pid == pid,
                    pid: p.pid,
                    ppid: p.ppid,
                    command: p.command,
                    first_seen_s: p.first_seen_s,
                    last_seen_s: p.last_seen_s,
                    peak_bytes: p.peak_bytes,
                    sampled_peak_bytes: p.sampled_peak_bytes,
                })
                .collect();
        }
        let mut r = o.recorded.clone();
        r.exit_code = status.code();
        r.signal = status.signal();
        r.root_max_rss_bytes = root_max_rss;
        r.markers = markers_seen;
        recorded = Some(r);
    }
    let memory_limit = enforcement.record();
    drop(enforcement);
    Ok(RunRecord {
        strategy: spec.label.clone(),
        peak_bytes,
        sampled_peak_bytes: timeline.peak(),
        wall_s: end_s,
        status: run_status,
        stages,
        logs,
        output,
        stderr_tail,
        timeline,
        memory_limit,
        processes,
        recorded,
    })
}

/// Per-process figures of a tree stage, kept in the stage's details.
fn tree_detail(peaks: &crate::sampler::StagePeaks) -> Detail {
    let mut detail = Detail::new();
    let per: serde_json::Map<String, serde_json::Value> = peaks
        .per_process
        .iter()
        .map(|(pid, _, bytes)| (pid.to_string(), json!(bytes)))
        .collect();
    detail.insert("process_peaks".into(), serde_json::Value::Object(per));
    detail.insert("processes".into(), json!(peaks.per_process.len()));
    if peaks.sum_bytes != peaks.total_bytes {
        // Processes that never ran at the same time: their plain sum, for comparison.
        detail.insert("sum_of_process_peaks".into(), json!(peaks.sum_bytes));
    }
    if !peaks.reset_ok {
        detail.insert("peak_reset_failed".into(), json!(true));
    }
    if peaks.late {
        // The command had ended before this stage's boundary was read: the
        // figure is the last one read, which spans this stage and earlier ones.
        detail.insert("peak_spans_earlier_stages".into(), json!(true));
    }
    detail
}

fn stage_record(
    name: String,
    start_s: f64,
    end_s: f64,
    exact_peak_bytes: Option<u64>,
    rss_start_bytes: u64,
    rss_end_bytes: u64,
    detail: Detail,
) -> StageRecord {
    StageRecord {
        name,
        start_s,
        end_s,
        exact_peak_bytes,
        rss_start_bytes,
        rss_end_bytes,
        sampled_peak_bytes: None,
        detail,
    }
}
