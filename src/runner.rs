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

pub mod classify;
mod enforce;
pub mod limit;
mod pumps;
mod spawn;
mod stages;

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;

use crate::journal::Journal;
use crate::progress::Progress;
use crate::protocol::monotonic_ns;
use crate::report::{ProcessRecord, RecordedCommand, RunRecord, RunStatus};
use crate::sampler::{CgroupMeter, PeakSource, ProcessTree, Sampler, StagePeaks};
use classify::{classify, status_sentence, Ending};
use enforce::{Enforcement, KillNote};
use limit::{ChildCgroup, MemoryLimit};
use pumps::{Message, Pumps};
use spawn::{has_exited, spawn, stop_tree, wait_with_rusage};
use stages::{last_rss, StageBook};

/// After the root process exits, how long descendants may keep its output
/// pipes open before the run is closed without them.
const PIPE_GRACE: Duration = Duration::from_secs(2);

/// Set (to anything but `0`) to measure without a cgroup of oomlab's own
/// where one could be made: the peaks of a tree are then the processes'
/// marks summed, an upper bound (for comparing, and for the tests of that
/// case). A `--memory-limit` cgroup is not affected.
pub const NO_CGROUP_ENV: &str = "OOMLAB_NO_CGROUP";

/// Name of the stage from spawn to the first marker of a recorded command
/// (`run` when no marker ever came).
pub const FIRST_STAGE: &str = "start";

/// The command to measure and how to label it.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    /// Label in reports and displays (the strategy name).
    pub label: String,
    /// The executable (looked up in `$PATH` when it is a bare name).
    pub program: PathBuf,
    /// Its arguments, passed as they are (no shell).
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
    /// How often the child's RSS is sampled.
    pub interval: Duration,
    /// Kill the child when its memory crosses this limit (`--memory-limit`).
    pub memory_limit: Option<MemoryLimit>,
    /// The report directory, when known: the run's samples are streamed to
    /// `samples.<label>.jsonl` there as they are taken (see `journal`).
    pub journal_dir: Option<PathBuf>,
}

impl StageSource {
    /// The output handling of a recorded command (`None` for a replay child).
    fn output(&self) -> Option<&OutputStages> {
        match self {
            Self::Output(o) => Some(o),
            Self::Protocol => None,
        }
    }
}

/// The running child as the runner follows it: what the receive loop, the
/// sampler's callback and the end of the run share.
struct Live<'a> {
    label: &'a str,
    pid: i32,
    /// The process tree, followed for a recorded command.
    tree: Option<Arc<Mutex<ProcessTree>>>,
    /// The high-water mark of a replay child's cgroup (a tree's is in `tree`).
    meter: Option<CgroupMeter>,
    journal: Option<Arc<Journal>>,
    /// Where the limit's enforcement killed the tree, if it did.
    kill_note: KillNote,
}

impl<'a> Live<'a> {
    /// Follows the child `pid` of `spec` (its whole tree for a recorded
    /// command, with the high-water mark of its cgroup, `meter`, if it runs
    /// in one) and starts its journal.
    fn new(
        spec: &'a ChildSpec,
        pid: i32,
        journal: Option<Arc<Journal>>,
        interval: Duration,
        meter: Option<CgroupMeter>,
    ) -> Self {
        if let Some(j) = &journal {
            j.start(&spec.label, pid, interval.as_secs_f64() * 1e3);
        }
        let (tree, meter) = match spec.stages.output() {
            Some(_) => (
                Some(Arc::new(Mutex::new(
                    ProcessTree::new(pid).with_cgroup(meter),
                ))),
                None,
            ),
            None => (None, meter),
        };
        Self {
            label: &spec.label,
            pid,
            tree,
            meter,
            journal,
            kill_note: KillNote::default(),
        }
    }

    /// `(cgroup high-water mark over the run, summed-PSS peak)` of the
    /// child, where measured.
    fn kernel_figures(&self) -> (Option<u64>, Option<u64>) {
        match &self.tree {
            Some(tr) => tr
                .lock()
                .map(|t| (t.cgroup_peak(), t.pss_peak()))
                .unwrap_or((None, None)),
            None => (self.meter.as_ref().and_then(|m| m.peak()), None),
        }
    }

    /// Starts sampling the child (or its tree) every `interval`, under
    /// `enforcement`.
    fn start_sampler(
        &self,
        enforcement: &Enforcement,
        interval: Duration,
        origin_ns: u64,
    ) -> Sampler {
        let on_sample = enforcement.on_sample(
            self.pid,
            self.tree.clone(),
            self.kill_note.clone(),
            self.journal.clone(),
        );
        match &self.tree {
            Some(tr) => Sampler::start_tree(tr.clone(), interval, origin_ns, on_sample),
            None => Sampler::start(self.pid, interval, origin_ns, on_sample),
        }
    }

    /// The tree's figures over its last stage, once the root was reaped at
    /// `end_s` (`None` for a replay child).
    fn final_peaks(
        &self,
        end_s: f64,
        root_max_rss: Option<u64>,
        program: &Path,
    ) -> Option<StagePeaks> {
        self.tree.as_ref().and_then(|tr| {
            let command = program.display().to_string();
            tr.lock()
                .ok()
                .map(|mut tr| tr.finish(end_s, root_max_rss, &command))
        })
    }

    /// What the report says about a recorded command and its processes,
    /// once it has ended (`None` and no processes for a replay child).
    fn recorded(
        &self,
        output: Option<&OutputStages>,
        status: ExitStatus,
        root_max_rss: Option<u64>,
        markers: u64,
    ) -> (Vec<ProcessRecord>, Option<RecordedCommand>) {
        let (Some(o), Some(tree)) = (output, &self.tree) else {
            return (Vec::new(), None);
        };
        let mut r = o.recorded.clone();
        r.exit_code = status.code();
        r.signal = status.signal();
        r.root_max_rss_bytes = root_max_rss;
        r.markers = markers;
        (tree_processes(tree, self.pid), Some(r))
    }
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
    let output = spec.stages.output();
    if output.is_some() {
        // The kernel hands a spawned child our high-water mark, which then
        // floors the child's `ru_maxrss`: make it our current RSS (small).
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }
    let journal = options
        .journal_dir
        .as_deref()
        .map(|dir| Journal::create(dir, &spec.label).map(Arc::new))
        .transpose()?;
    let cpu_at_start = crate::sampler::process_cpu_s();
    let origin_ns = monotonic_ns();
    // A cgroup of its own for the child wherever one can be made, limit or
    // not: its high-water mark is a tree's exact peak (see `sampler`).
    let no_cgroup = std::env::var_os(NO_CGROUP_ENV).is_some_and(|v| v != "0");
    let mut measure = match enforcement.cgroup() {
        None if !no_cgroup => ChildCgroup::create(None).ok(),
        _ => None,
    };
    let mut child = spawn(spec, &mut enforcement, &mut measure, options.memory_limit)?;
    let meter = enforcement
        .cgroup()
        .or(measure.as_ref())
        .and_then(|c| c.meter());
    let live = Live::new(spec, child.id() as i32, journal, options.interval, meter);
    let sampler = live.start_sampler(&enforcement, options.interval, origin_ns);
    let pumps = Pumps::start(&mut child, output)?;
    let mut book = match output {
        Some(_) => StageBook::recorded(origin_ns, progress),
        None => StageBook::protocol(origin_ns),
    };
    let interrupted = follow(&live, &pumps.messages, &sampler, &mut book, progress);

    let (status, root_max_rss) = wait_with_rusage(live.pid).context("waiting for the child")?;
    drop(child);
    let end_s = book.secs(monotonic_ns());
    pumps::join_finished(pumps.readers);
    let final_peaks = live.final_peaks(end_s, root_max_rss, &spec.program);
    let (mut timeline, mut sampler_stats) = sampler.finish();
    timeline.several = live
        .tree
        .as_ref()
        .and_then(|tr| tr.lock().ok().and_then(|tr| tr.several()));
    sampler_stats.oomlab_cpu_s = crate::sampler::process_cpu_s() - cpu_at_start;
    progress.finish();
    let stderr_tail = pumps.stderr_tail.lines();
    let ending = Ending {
        status,
        kill_note: live.kill_note.lock().ok().and_then(|n| *n),
        cgroup_kills: enforcement.oom_kills(),
        interrupted,
    };
    let last_rss = last_rss(&timeline);
    let book = book.close(end_s, final_peaks.as_ref(), &ending, &timeline, progress);
    if timeline.t_s.is_empty() {
        timeline.t_s.push(0.0);
        timeline.rss_bytes.push(0);
    }
    let run_status = classify(&ending, book.died_in.clone(), end_s, last_rss, &stderr_tail);
    announce_end(&live, &run_status, end_s, progress);

    let best = book
        .stages
        .iter()
        .filter(|s| s.exact_peak_bytes.is_some())
        .max_by_key(|s| s.exact_peak_bytes);
    let mut peak_bytes = best.and_then(|s| s.exact_peak_bytes);
    let mut peak_source = best.and_then(|s| s.peak_source);
    if output.is_some() && !ending.ended_early() && root_max_rss > peak_bytes {
        // The biggest single process's kernel peak bounds the tree's from below.
        peak_bytes = root_max_rss;
        peak_source = Some(PeakSource::Vmhwm);
    }
    let (cgroup_peak_bytes, pss_peak_bytes) = live.kernel_figures();
    let (processes, recorded) = live.recorded(output, status, root_max_rss, book.markers);
    let mut memory_limit = enforcement.record();
    if let Some(l) = &mut memory_limit {
        // Stage boundaries reset the cgroup's own mark: the run's is kept here.
        if l.cgroup_peak_bytes.is_some() {
            l.cgroup_peak_bytes = l.cgroup_peak_bytes.max(cgroup_peak_bytes);
        }
    }
    // The tree's open mark goes before the cgroups it reads are removed.
    drop(live);
    drop(enforcement);
    drop(measure);
    Ok(RunRecord {
        strategy: spec.label.clone(),
        peak_bytes,
        peak_source,
        pss_peak_bytes,
        cgroup_peak_bytes,
        sampler: Some(sampler_stats),
        sampled_peak_bytes: timeline.peak(),
        wall_s: end_s,
        status: run_status,
        stages: book.stages,
        logs: book.logs,
        output: book.output,
        stderr_tail,
        timeline,
        memory_limit,
        processes,
        recorded,
    })
}

/// Receives what the child says until its output closes (or, once the root
/// has exited, until [`PIPE_GRACE`] runs out), keeping the live display and
/// the journal going and stopping the child when oomlab is interrupted.
/// Returns `(signal, seconds since spawn)` of that interrupt, if one came.
fn follow(
    live: &Live,
    messages: &mpsc::Receiver<Message>,
    sampler: &Sampler,
    book: &mut StageBook,
    progress: &mut Progress,
) -> Option<(i32, f64)> {
    let journal = live.journal.as_deref();
    let mut exited_at: Option<u64> = None;
    let mut interrupted = None;
    loop {
        if let Some(j) = journal {
            j.tick();
        }
        if interrupted.is_none() {
            if let Some(signal) = crate::interrupt::received() {
                interrupted = Some((signal, book.secs(monotonic_ns())));
                progress.warn(&format!(
                    "{}: stopping {} (pid {}) and every process it started",
                    crate::interrupt::signal_name(signal),
                    live.label,
                    live.pid
                ));
                stop_tree(live.pid);
            }
        }
        match messages.recv_timeout(Duration::from_millis(100)) {
            Ok(Message::Event(event)) => book.on_event(event, progress, journal),
            Ok(Message::Output(line)) => progress.log("OUT", &line),
            Ok(Message::Marker(t_ns, marker)) => {
                let tree = live.tree.as_deref();
                let boundary = |t| {
                    tree.and_then(|tr| tr.lock().ok().map(|mut tr| tr.boundary(t)))
                        .unwrap_or_default()
                };
                book.on_marker(t_ns, marker, boundary, progress, journal);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                progress.tick(book.secs(monotonic_ns()), sampler.latest());
                // Descendants may hold the output pipes after the root exited:
                // give them a grace period, then close the run without them.
                if exited_at.is_none() && has_exited(live.pid) {
                    exited_at = Some(monotonic_ns());
                }
                if exited_at.is_some_and(|t| monotonic_ns() - t > PIPE_GRACE.as_nanos() as u64) {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    interrupted
}

/// Says how a run ended: a warning unless it completed, and the journal's
/// last line.
fn announce_end(live: &Live, status: &RunStatus, end_s: f64, progress: &mut Progress) {
    if *status != RunStatus::Completed {
        progress.warn(&status_sentence(live.label, status));
    }
    if let Some(j) = &live.journal {
        j.event("end", end_s, json!({ "status": status }));
        if let Some(err) = j.finish() {
            progress.warn(&format!("samples journal incomplete: {err}"));
        }
    }
}

/// Every process a recorded command's tree had, for the report (`root` is `pid`).
fn tree_processes(tree: &Mutex<ProcessTree>, pid: i32) -> Vec<ProcessRecord> {
    let Ok(tree) = tree.lock() else {
        return Vec::new();
    };
    tree.processes()
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
        .collect()
}
