//! RSS over time, sampled from outside the measured process.
//!
//! The sampler runs in the parent on its own thread and re-reads
//! `/proc/<pid>/statm` at a fixed interval through a file it keeps open
//! (`pread`, no allocation): cheap, and it never allocates in the child.
//! Samples give the shape of memory over time; exact peaks come from the
//! kernel's high-water marks (see `probe`, and [`CgroupMeter`] for a tree),
//! so the sampler can afford to be coarse. What sampling cost is kept in
//! [`SamplerStats`], so a report says what measuring took.
//!
//! `record` measures a command that knows nothing of oomlab, so there the
//! sampler follows the whole process tree ([`ProcessTree`]): each tick it
//! finds new children through `/proc/<pid>/task/<pid>/children` (a full scan
//! of `/proc` only every [`RESCAN_S`] and at stage boundaries), sums their
//! RSS, and keeps each process's kernel high-water mark (`VmHWM`), which the
//! runner resets at stage boundaries.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::protocol::monotonic_ns;

/// How often a followed tree is found again by a full scan of `/proc`
/// (between scans, new processes are found through their parents'
/// `children` files, which list only the children of each main thread).
pub const RESCAN_S: f64 = 1.0;
/// How often each process's `VmHWM` is read between stage boundaries: the
/// kernel keeps the mark, so reading it less often loses nothing while the
/// process lives (`/proc/<pid>/status` costs several times `statm`).
const HWM_EVERY_S: f64 = 0.1;
/// How often, at most, a tree without a cgroup has its proportional set
/// size summed. `smaps_rollup` walks the page tables (some 20 ms for a
/// 500 MiB process) under the process's memory-map lock, so the next
/// reading waits [`PSS_COST_FACTOR`] times what the last one took (0.5% of
/// a core, so that a tree of 10 stays within 2% in all), but never more than
/// [`PSS_AT_MOST_EVERY_S`]: a tree of very large processes pays more for a
/// PSS figure that is still worth having.
const PSS_EVERY_S: f64 = 0.25;
/// See [`PSS_EVERY_S`].
const PSS_COST_FACTOR: f64 = 200.0;
/// See [`PSS_EVERY_S`].
const PSS_AT_MOST_EVERY_S: f64 = 5.0;

/// RSS samples of one process, columnar so large timelines stay compact in JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Timeline {
    /// Sampling interval asked for, in milliseconds.
    pub interval_ms: f64,
    /// Seconds since the child was started.
    pub t_s: Vec<f64>,
    /// Resident set size at that time, bytes (for a tree of several
    /// processes, what [`Self::several`] names).
    pub rss_bytes: Vec<u64>,
    /// What a sample is while a tree has several processes alive, whose
    /// summed RSS would count every shared page once per process: the
    /// cgroup's current usage, or the summed RSS less the shared part found
    /// by the last PSS reading. `None`: one process at a time (its RSS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub several: Option<TreeSample>,
}

/// What a tree's timeline holds while several of its processes are alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TreeSample {
    /// The cgroup's `memory.current` (v2) or `memory.usage_in_bytes` (v1):
    /// each page once, page cache and kernel memory included.
    CgroupUsage,
    /// Summed RSS less (summed RSS - summed PSS) at the last PSS reading
    /// (at most every 0.25 s): shared pages about once.
    RssLessShared,
}

impl TreeSample {
    /// One line for the summary.
    pub fn describe(self) -> &'static str {
        match self {
            TreeSample::CgroupUsage => {
                "while several processes ran, the timeline is the cgroup's current usage (each shared page once, page cache included)"
            }
            TreeSample::RssLessShared => {
                "while several processes ran, the timeline is their summed RSS less the shared pages the last PSS reading found"
            }
        }
    }
}

impl Timeline {
    /// The largest sampled RSS within `[from_s, to_s]`, if any sample fell there.
    pub fn peak_between(&self, from_s: f64, to_s: f64) -> Option<u64> {
        self.t_s
            .iter()
            .zip(&self.rss_bytes)
            .filter(|(t, _)| **t >= from_s && **t <= to_s)
            .map(|(_, r)| *r)
            .max()
    }

    /// The largest sampled RSS overall.
    pub fn peak(&self) -> u64 {
        self.rss_bytes.iter().copied().max().unwrap_or(0)
    }
}

/// Which kernel figure a peak is, so a reader knows whether it is exact or a
/// bound: a tree's processes share pages, and summing their own marks counts
/// a shared page once per process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeakSource {
    /// The high-water mark of a memory cgroup holding the whole tree
    /// (`memory.peak` on v2, `memory.max_usage_in_bytes` on v1): exact, and
    /// the figure the kernel's OOM killer compares with a container's limit
    /// (it counts page cache and kernel memory too).
    Cgroup,
    /// One process's `VmHWM` (its RSS high-water mark): exact.
    Vmhwm,
    /// The `VmHWM`s of several processes summed over those alive together:
    /// an upper bound, since pages they share (a fork's) count once per process.
    SumVmhwmUpperBound,
}

impl PeakSource {
    /// A few words for terminals and summaries.
    pub fn describe(self) -> &'static str {
        match self {
            PeakSource::Cgroup => "the tree's cgroup high-water mark, exact",
            PeakSource::Vmhwm => "kernel VmHWM, exact",
            PeakSource::SumVmhwmUpperBound => {
                "upper bound: the processes' VmHWM summed, shared pages counted once per process"
            }
        }
    }
}

/// What measuring cost and how steady it was: a user sees in the report
/// that the sampler did not take the CPU the command needed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SamplerStats {
    /// Samples taken.
    pub samples: u64,
    /// CPU seconds (user + system) the sampler thread used, from
    /// `getrusage(RUSAGE_THREAD)`.
    pub cpu_s: f64,
    /// Seconds from the first sample to the last.
    pub wall_s: f64,
    /// The interval asked for, milliseconds.
    pub interval_ms: f64,
    /// The mean interval between samples achieved, milliseconds.
    pub achieved_interval_ms: f64,
    /// The largest distance of one interval from the one asked for, milliseconds.
    pub worst_jitter_ms: f64,
    /// CPU seconds all of oomlab's threads used while the child ran (the
    /// sampler, the output pumps, the live display), children not included.
    #[serde(default)]
    pub oomlab_cpu_s: f64,
}

impl SamplerStats {
    /// The sampler's CPU as a percentage of one core over the run.
    pub fn cpu_pct_of_core(&self) -> f64 {
        if self.wall_s > 0.0 {
            self.cpu_s / self.wall_s * 100.0
        } else {
            0.0
        }
    }
}

/// CPU seconds (user + system) the calling thread has used.
pub fn thread_cpu_s() -> f64 {
    cpu_s(libc::RUSAGE_THREAD)
}

/// CPU seconds (user + system) this process's threads have used (its
/// children not included): what oomlab itself costs.
pub fn process_cpu_s() -> f64 {
    cpu_s(libc::RUSAGE_SELF)
}

fn cpu_s(who: libc::c_int) -> f64 {
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes only into `usage`.
    if unsafe { libc::getrusage(who, &mut usage) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Reads a file kept open from its start into `buf` (`pread`: the kernel
/// regenerates a `/proc` or cgroup file on each read at offset 0).
fn read_at<'b>(file: &File, buf: &'b mut [u8]) -> std::io::Result<&'b [u8]> {
    let n = file.read_at(buf, 0)?;
    Ok(&buf[..n])
}

/// The `n`th whitespace-separated field of `text` as a number.
fn field_u64(text: &[u8], n: usize) -> Option<u64> {
    let word = text
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .nth(n)?;
    std::str::from_utf8(word).ok()?.parse().ok()
}

/// The kB figure of the line `name` (`VmHWM:`, `Pss:`) of a `status` or
/// `smaps_rollup` text, in bytes.
fn kib_field(text: &[u8], name: &[u8]) -> Option<u64> {
    let at = text.windows(name.len()).position(|w| w == name)?;
    let line = text[at + name.len()..].split(|b| *b == b'\n').next()?;
    field_u64(line, 0).map(|kib| kib * 1024)
}

/// `/proc/<pid>/statm` kept open for sampling one process without allocating.
#[derive(Debug)]
struct Statm {
    file: File,
    page: u64,
}

impl Statm {
    fn open(pid: i32) -> Option<Self> {
        Some(Self {
            file: File::open(format!("/proc/{pid}/statm")).ok()?,
            page: page_size(),
        })
    }

    /// The RSS in bytes; `Ok(None)` for a process without memory (a zombie),
    /// `Err` once it was reaped.
    fn rss(&self) -> std::io::Result<Option<u64>> {
        let mut buf = [0u8; 128];
        let text = read_at(&self.file, &mut buf)?;
        let size = field_u64(text, 0).unwrap_or(0);
        let resident = field_u64(text, 1).unwrap_or(0);
        Ok((size > 0).then_some(resident * self.page))
    }
}

/// Reads the resident set size of `pid` in bytes (`None` once it is gone).
pub fn rss_of(pid: i32) -> Option<u64> {
    Statm::open(pid)?.rss().ok()?
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as u64
    } else {
        4096
    }
}

/// The high-water mark of the memory cgroup a measured tree runs in, kept
/// open: the tree's exact peak as the kernel charges it, however many of its
/// processes share pages (see [`PeakSource::Cgroup`]).
#[derive(Debug)]
pub struct CgroupMeter {
    peak: File,
    /// `memory.current` (v2) or `memory.usage_in_bytes` (v1).
    current: Option<File>,
    v2: bool,
}

impl CgroupMeter {
    /// Opens the high-water mark of the cgroup at `dir` (`v2`: `memory.peak`,
    /// Linux >= 5.19; else `memory.max_usage_in_bytes`); `None` when the
    /// kernel has none.
    pub fn open(dir: &Path, v2: bool) -> Option<Self> {
        let path = dir.join(if v2 {
            "memory.peak"
        } else {
            "memory.max_usage_in_bytes"
        });
        let peak = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .or_else(|_| File::open(&path))
            .ok()?;
        let current = File::open(dir.join(if v2 {
            "memory.current"
        } else {
            "memory.usage_in_bytes"
        }))
        .ok();
        let meter = Self { peak, current, v2 };
        meter.peak()?;
        Some(meter)
    }

    /// The cgroup's usage now, bytes: a tree's memory with each shared page
    /// counted once, for the timeline.
    pub fn current(&self) -> Option<u64> {
        let mut buf = [0u8; 32];
        field_u64(read_at(self.current.as_ref()?, &mut buf).ok()?, 0)
    }

    /// The high-water mark since the cgroup was made or last reset, bytes.
    pub fn peak(&self) -> Option<u64> {
        let mut buf = [0u8; 32];
        field_u64(read_at(&self.peak, &mut buf).ok()?, 0)
    }

    /// Resets the mark to the current usage, so the next stage starts afresh
    /// (v1: writing 0; v2: any write, Linux >= 6.12, for reads through this
    /// file). False when the kernel refused: the mark then spans earlier stages.
    pub fn reset_peak(&self) -> bool {
        let value: &[u8] = if self.v2 { b"reset" } else { b"0" };
        self.peak.write_at(value, 0).is_ok()
    }
}

/// A running sampler; stop it to get the timeline.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    latest: Arc<AtomicU64>,
    timeline: Arc<Mutex<Timeline>>,
    handle: Option<JoinHandle<SamplerStats>>,
}

/// Called on each sample with the RSS; returning `true` asks the sampler to stop.
pub type OnSample = Box<dyn FnMut(f64, u64) -> bool + Send>;

impl Sampler {
    /// Starts sampling `pid` every `interval`, with times relative to `origin_ns`.
    pub fn start(pid: i32, interval: Duration, origin_ns: u64, on_sample: OnSample) -> Self {
        let statm = Statm::open(pid);
        Self::spawn(interval, origin_ns, on_sample, move |_| {
            statm.as_ref()?.rss().ok().map(|r| r.unwrap_or(0))
        })
    }

    /// Starts sampling `root` and all its descendants (RSS summed), keeping each
    /// process's kernel high-water mark for stage boundaries ([`ProcessTree`]).
    pub fn start_tree(
        tree: Arc<Mutex<ProcessTree>>,
        interval: Duration,
        origin_ns: u64,
        on_sample: OnSample,
    ) -> Self {
        Self::spawn(interval, origin_ns, on_sample, move |t| {
            tree.lock().ok()?.sample(t)
        })
    }

    fn spawn(
        interval: Duration,
        origin_ns: u64,
        mut on_sample: OnSample,
        mut measure: impl FnMut(f64) -> Option<u64> + Send + 'static,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let latest = Arc::new(AtomicU64::new(0));
        let interval_ms = interval.as_secs_f64() * 1e3;
        // Room for the first minutes, so a sample rarely grows the vectors.
        let room = (120_000.0 / interval_ms.max(1.0)) as usize;
        let timeline = Arc::new(Mutex::new(Timeline {
            interval_ms,
            t_s: Vec::with_capacity(room),
            rss_bytes: Vec::with_capacity(room),
            several: None,
        }));
        let handle = {
            let (stop, latest, timeline) = (stop.clone(), latest.clone(), timeline.clone());
            std::thread::Builder::new()
                .name("oomlab-sampler".into())
                .spawn(move || {
                    let mut stats = SamplerStats {
                        interval_ms,
                        ..SamplerStats::default()
                    };
                    let (mut first, mut last) = (None, 0u64);
                    let mut next = monotonic_ns();
                    while !stop.load(Ordering::Relaxed) {
                        let now_ns = monotonic_ns();
                        let t = now_ns.saturating_sub(origin_ns) as f64 / 1e9;
                        let Some(rss) = measure(t) else { break };
                        if first.is_some() {
                            let gap_ms = now_ns.saturating_sub(last) as f64 / 1e6;
                            stats.worst_jitter_ms =
                                stats.worst_jitter_ms.max((gap_ms - interval_ms).abs());
                        }
                        first.get_or_insert(now_ns);
                        last = now_ns;
                        stats.samples += 1;
                        latest.store(rss, Ordering::Relaxed);
                        if let Ok(mut tl) = timeline.lock() {
                            tl.t_s.push(t);
                            tl.rss_bytes.push(rss);
                        }
                        if on_sample(t, rss) {
                            break;
                        }
                        next += interval.as_nanos() as u64;
                        let now = monotonic_ns();
                        if next > now {
                            std::thread::sleep(Duration::from_nanos(next - now));
                        } else {
                            next = now;
                        }
                    }
                    if let Some(first) = first {
                        stats.wall_s = last.saturating_sub(first) as f64 / 1e9;
                        if stats.samples > 1 {
                            stats.achieved_interval_ms =
                                stats.wall_s * 1e3 / (stats.samples - 1) as f64;
                        }
                    }
                    stats.cpu_s = thread_cpu_s();
                    stats
                })
                .ok()
        };
        Self {
            stop,
            latest,
            timeline,
            handle,
        }
    }

    /// The most recent sample, for live displays.
    pub fn latest(&self) -> u64 {
        self.latest.load(Ordering::Relaxed)
    }

    /// Stops sampling and returns what was seen and what seeing it cost.
    pub fn finish(mut self) -> (Timeline, SamplerStats) {
        self.stop.store(true, Ordering::Relaxed);
        let stats = self
            .handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        let timeline = self
            .timeline
            .lock()
            .map(|tl| tl.clone())
            .unwrap_or_default();
        (timeline, stats)
    }
}

/// `(VmRSS, VmHWM)` of a live process in bytes; `None` once it exited (a
/// zombie has no memory left to report) or when it cannot be read.
pub fn rss_and_hwm_of(pid: i32) -> Option<(u64, u64)> {
    let status = std::fs::read(format!("/proc/{pid}/status")).ok()?;
    Some((
        kib_field(&status, b"VmRSS:")?,
        kib_field(&status, b"VmHWM:")?,
    ))
}

/// The memory lines of a process's `/proc/<pid>/status`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusMemory {
    /// `VmRSS`: resident now.
    pub rss: u64,
    /// `VmHWM`: the most resident since the process started or its last reset.
    pub hwm: u64,
    /// `RssAnon`: heap and anonymous mappings, no file pages (0 before Linux 4.5).
    pub rss_anon: u64,
}

/// Reads the memory lines of `/proc/<pid>/status`: the one reader of that
/// file, for the tree sampler (every process, every tick) and the child's
/// stage marks. By hand, because procfs' `Status` parses all ~55 lines into
/// owned strings first and costs about twice as much. `None` once the
/// process exited (a zombie has no memory left to report) or when it cannot
/// be read.
pub fn status_memory(pid: i32) -> Option<StatusMemory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let (mut rss, mut hwm, mut rss_anon) = (None, None, None);
    for line in status.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let slot = match name {
            "VmRSS" => &mut rss,
            "VmHWM" => &mut hwm,
            "RssAnon" => &mut rss_anon,
            _ => continue,
        };
        let kib = value
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok());
        *slot = Some(kib? * 1024);
        if rss.is_some() && hwm.is_some() && rss_anon.is_some() {
            break;
        }
    }
    Some(StatusMemory {
        rss: rss?,
        hwm: hwm?,
        rss_anon: rss_anon.unwrap_or(0),
    })
}

/// Resets a process's `VmHWM` to its current RSS (`echo 5 > /proc/<pid>/clear_refs`).
///
/// Returns false when the kernel refused (process gone, or not ours to reset).
pub fn reset_hwm_of(pid: i32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Identity and parent of a process, from `/proc/<pid>/stat`.
#[derive(Debug, Clone)]
struct StatLine {
    ppid: i32,
    /// Start time in clock ticks since boot: tells a reused pid from the old one.
    start_ticks: u64,
    zombie: bool,
}

fn stat_of(pid: i32) -> Option<StatLine> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(StatLine {
        zombie: matches!(fields.first(), Some(&"Z") | Some(&"X")),
        ppid: fields.get(1)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

/// The command line of a process, as one readable string (at most 200 chars).
fn command_of(pid: i32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let text: String = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let text = if text.is_empty() {
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| format!("[{}]", c.trim()))
            .unwrap_or_default()
    } else {
        text
    };
    text.chars().take(200).collect()
}

/// One process of a followed tree and what was learnt about its memory.
#[derive(Debug, Clone)]
pub struct TrackedProcess {
    /// Its process id.
    pub pid: i32,
    /// Its parent's, when first seen.
    pub ppid: i32,
    /// Its command line (at most 200 characters).
    pub command: String,
    /// Seconds since spawn of the first look that saw it.
    pub first_seen_s: f64,
    /// Seconds since spawn of the last look that saw it.
    pub last_seen_s: f64,
    /// Still running at the last look.
    pub alive: bool,
    /// Largest `VmHWM` read over its life: its exact peak, unless it reached a
    /// new peak after the last reading and exited before the next.
    pub peak_bytes: u64,
    /// Largest sampled `VmRSS`.
    pub sampled_peak_bytes: u64,
    /// `VmHWM` readings since the last stage boundary (max).
    stage_hwm: u64,
    /// Exited during the current stage: counted in it once more, then done.
    pending: bool,
    start_ticks: u64,
    /// Number of the look that first saw it (it was born after the one before).
    first_look: u64,
    /// Number of the look that found it gone (it exited before that look ended).
    gone_look: Option<u64>,
    /// Number of the last look that read it.
    seen_look: u64,
}

/// Ends a live process's stage at a boundary: its mark over the stage into
/// `out` and `spans`, then a reset so the next stage starts from its RSS now.
/// With `only_if_readable`, a process that cannot be read (it just exited)
/// is left alone for the scan to find gone; returns whether it was closed.
fn close_live(
    p: &mut TrackedProcess,
    out: &mut StagePeaks,
    spans: &mut Vec<((u64, u64), u64)>,
    only_if_readable: bool,
) -> bool {
    let now = rss_and_hwm_of(p.pid);
    if now.is_none() && only_if_readable {
        return false;
    }
    let mut rss_now = None;
    if let Some((rss, hwm)) = now {
        p.stage_hwm = p.stage_hwm.max(hwm);
        p.peak_bytes = p.peak_bytes.max(hwm);
        out.rss_bytes += rss;
        rss_now = Some(rss);
    }
    spans.push((p.alive_span(), p.stage_hwm));
    out.per_process
        .push((p.pid, p.command.clone(), p.stage_hwm));
    if reset_hwm_of(p.pid) {
        // The next stage starts from the RSS the reset set VmHWM to; should
        // the process exit before it can be read, from the RSS read a moment
        // ago (never from nothing).
        p.stage_hwm = rss_and_hwm_of(p.pid)
            .map(|(rss, _)| rss)
            .or(rss_now)
            .unwrap_or(0);
    } else {
        out.reset_ok = false;
    }
    true
}

impl TrackedProcess {
    /// The looks between which the process can have been alive, inclusive:
    /// from the look before it was first seen to the look that missed it.
    fn alive_span(&self) -> (u64, u64) {
        (
            self.first_look.saturating_sub(1),
            self.gone_look.unwrap_or(u64::MAX),
        )
    }
}

/// The files of a live process kept open between looks, so a look neither
/// opens files nor allocates.
#[derive(Debug)]
struct Handles {
    statm: Statm,
    status: Option<File>,
    /// `/proc/<pid>/task/<pid>/children` (kernels with `CONFIG_PROC_CHILDREN`).
    children: Option<File>,
    /// `/proc/<pid>/smaps_rollup`, opened when first needed.
    smaps_rollup: Option<File>,
}

impl Handles {
    fn open(pid: i32) -> Option<Self> {
        Some(Self {
            statm: Statm::open(pid)?,
            status: File::open(format!("/proc/{pid}/status")).ok(),
            children: File::open(format!("/proc/{pid}/task/{pid}/children")).ok(),
            smaps_rollup: None,
        })
    }
}

/// The most the processes can have held at one moment: the largest sum of
/// peaks over processes whose alive spans share a look.
///
/// Each span is `(first, last, bytes)`, inclusive. Processes whose spans do
/// not meet never ran at the same time (one was gone before the other was
/// born), so their peaks cannot add up; summing every process's peak would
/// count, say, a dozen short helper processes run one after another as if
/// they had all run at once.
pub fn concurrent_bound(spans: &[(u64, u64, u64)]) -> u64 {
    // Starts sort before ends at the same look: touching spans overlap.
    let mut events: Vec<(u64, bool, u64)> = spans
        .iter()
        .flat_map(|&(first, last, bytes)| [(first, false, bytes), (last, true, bytes)])
        .collect();
    events.sort_unstable_by_key(|&(at, is_end, _)| (at, is_end));
    let (mut now, mut best) = (0u64, 0u64);
    for (_, is_end, bytes) in events {
        if is_end {
            now = now.saturating_sub(bytes);
        } else {
            now = now.saturating_add(bytes);
            best = best.max(now);
        }
    }
    best
}

/// What a process tree held over one stage.
#[derive(Debug, Clone)]
pub struct StagePeaks {
    /// The tree's peak over the stage; which figure it is says [`Self::source`].
    pub total_bytes: u64,
    /// What `total_bytes` is: the cgroup's mark when the stage had several
    /// processes and a cgroup holds the tree, one process's `VmHWM`, or else
    /// the processes' `VmHWM`s summed over those that can have run at the same
    /// time (see [`ProcessTree`]), an upper bound.
    pub source: PeakSource,
    /// Every process's peak summed, concurrent or not (kept in the details).
    pub sum_bytes: u64,
    /// Sum of the RSS at the boundary.
    pub rss_bytes: u64,
    /// Per process: `(pid, command, peak over the stage)`.
    pub per_process: Vec<(i32, String, u64)>,
    /// False when a high-water mark could not be reset (the figure then spans
    /// more than the stage).
    pub reset_ok: bool,
    /// Every process had exited before the stage's boundary could be read (a
    /// command that printed its last markers and ended at once), or none
    /// left a reading: the figure is that of the last stage read, whose
    /// high-water marks ran on until the processes exited, so it spans this
    /// stage and earlier ones.
    pub late: bool,
    /// The cgroup's high-water mark over the stage, when a cgroup holds the tree.
    pub cgroup_bytes: Option<u64>,
    /// The largest summed proportional set size sampled over the stage (a
    /// tree of several processes without a cgroup): beside the upper bound,
    /// a figure that counts shared pages once.
    pub pss_bytes: Option<u64>,
}

impl Default for StagePeaks {
    fn default() -> Self {
        Self {
            total_bytes: 0,
            source: PeakSource::Vmhwm,
            sum_bytes: 0,
            rss_bytes: 0,
            per_process: Vec::new(),
            reset_ok: false,
            late: false,
            cgroup_bytes: None,
            pss_bytes: None,
        }
    }
}

/// A process and its descendants, followed through `/proc`.
///
/// What is exact for a tree: when a memory cgroup holds it ([`CgroupMeter`]),
/// the cgroup's high-water mark (reset at every stage boundary), which counts
/// each page once however many processes map it. Without one, each process's
/// own peak is the kernel's `VmHWM` (reset at every stage boundary through
/// `/proc/<pid>/clear_refs`), read every [`HWM_EVERY_S`] and at each
/// boundary, so a live process's stage peak is exact; the tree's stage figure
/// sums its processes' stage peaks over those that can have been alive at the
/// same time ([`concurrent_bound`]; a process was born after the look before
/// the one that first saw it, and gone before the look that missed it): exact
/// for one process, and an upper bound on the tree's simultaneous peak when
/// several processes peak at different moments or share pages (the sampled
/// sum of proportional set sizes is given beside it). A descendant that exits
/// before the next reading after its peak is under-read; the root's last
/// stage is completed from `wait4`'s `ru_maxrss`.
#[derive(Debug)]
pub struct ProcessTree {
    root: i32,
    procs: BTreeMap<(i32, u64), TrackedProcess>,
    handles: HashMap<(i32, u64), Handles>,
    /// Looks taken so far (each [`Self::sample`] is one).
    looks: u64,
    /// The figure of the last boundary that read a process (see [`StagePeaks::late`]).
    carry: u64,
    /// What `carry` is.
    carry_source: PeakSource,
    cgroup: Option<CgroupMeter>,
    /// The cgroup's largest mark over the run (resets lower the file's own).
    cgroup_peak: Option<u64>,
    /// The last reset of the cgroup's mark worked.
    cgroup_reset_ok: bool,
    /// Summed PSS: largest over the current stage and over the run.
    stage_pss: Option<u64>,
    pss_peak: Option<u64>,
    last_scan_s: f64,
    last_hwm_s: f64,
    /// When the next PSS reading is due.
    next_pss_s: f64,
    /// Summed RSS less summed PSS at the last PSS reading: the shared pages
    /// counted more than once, taken off the timeline's samples.
    shared_bytes: u64,
    /// Summed RSS at the last PSS reading.
    pss_rss_total: u64,
    /// What the timeline's samples were while several processes lived.
    several: Option<TreeSample>,
    /// Scratch space reused by every look.
    buf: Vec<u8>,
    found: Vec<i32>,
}

impl ProcessTree {
    /// A tree rooted at `root` (found on the first look).
    pub fn new(root: i32) -> Self {
        Self {
            root,
            procs: BTreeMap::new(),
            handles: HashMap::new(),
            looks: 0,
            carry: 0,
            carry_source: PeakSource::Vmhwm,
            cgroup: None,
            cgroup_peak: None,
            cgroup_reset_ok: true,
            stage_pss: None,
            pss_peak: None,
            last_scan_s: f64::NEG_INFINITY,
            last_hwm_s: f64::NEG_INFINITY,
            next_pss_s: f64::NEG_INFINITY,
            shared_bytes: 0,
            pss_rss_total: 0,
            several: None,
            buf: vec![0; 64 << 10],
            found: Vec::with_capacity(64),
        }
    }

    /// The tree runs in a memory cgroup of its own: its stage peaks become
    /// the cgroup's high-water marks wherever several processes ran.
    pub fn with_cgroup(mut self, meter: Option<CgroupMeter>) -> Self {
        self.cgroup = meter;
        self
    }

    /// The cgroup's largest high-water mark over the run so far (`None`
    /// without a cgroup).
    pub fn cgroup_peak(&self) -> Option<u64> {
        let now = self.cgroup.as_ref().and_then(|c| c.peak());
        match (self.cgroup_peak, now) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// What the timeline held while several processes lived (`None`: never
    /// more than one at a time).
    pub fn several(&self) -> Option<TreeSample> {
        self.several
    }

    /// The largest summed proportional set size sampled (`None` when never
    /// read: one process, or a cgroup).
    pub fn pss_peak(&self) -> Option<u64> {
        self.pss_peak
    }

    /// The current members by a full scan of `/proc`: the root (while it
    /// exists) and its live descendants.
    fn discover(&self) -> Vec<(i32, StatLine)> {
        let Some(root_stat) = stat_of(self.root) else {
            return Vec::new();
        };
        let mut children: HashMap<i32, Vec<(i32, StatLine)>> = HashMap::new();
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for entry in dir.flatten() {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<i32>().ok())
                else {
                    continue;
                };
                if pid == self.root {
                    continue;
                }
                if let Some(st) = stat_of(pid) {
                    children.entry(st.ppid).or_default().push((pid, st));
                }
            }
        }
        let mut members = vec![(self.root, root_stat)];
        let mut i = 0;
        while i < members.len() {
            if let Some(kids) = children.remove(&members[i].0) {
                members.extend(kids);
            }
            i += 1;
        }
        members
    }

    /// True when `pid` was already followed (see [`Self::adopt`]).
    fn follows(&self, pid: i32) -> bool {
        self.procs
            .range((pid, 0)..=(pid, u64::MAX))
            .next()
            .is_some()
    }

    /// Starts following a process found at look `look`.
    fn adopt(&mut self, pid: i32, st: &StatLine, t_s: f64, look: u64) {
        let key = (pid, st.start_ticks);
        // Once gone, a process stays gone: one that has released its memory
        // is not a zombie yet for a moment, and must not start afresh.
        if st.zombie || self.procs.contains_key(&key) {
            return;
        }
        let Some(handles) = Handles::open(pid) else {
            return;
        };
        self.handles.insert(key, handles);
        self.procs.insert(
            key,
            TrackedProcess {
                pid,
                ppid: st.ppid,
                command: command_of(pid),
                first_seen_s: t_s,
                last_seen_s: t_s,
                alive: true,
                peak_bytes: 0,
                sampled_peak_bytes: 0,
                stage_hwm: 0,
                pending: false,
                start_ticks: st.start_ticks,
                first_look: look,
                gone_look: None,
                seen_look: 0,
            },
        );
    }

    /// Finds the whole tree again by a full scan of `/proc`.
    fn rescan(&mut self, t_s: f64, look: u64) {
        for (pid, st) in self.discover() {
            self.adopt(pid, &st, t_s, look);
        }
        self.last_scan_s = t_s;
    }

    /// Finds children born since the last look through the `children` files
    /// of the members' main threads (children forked by other threads wait
    /// for the next full scan).
    fn follow_children(&mut self, t_s: f64, look: u64) {
        let Self {
            procs,
            handles,
            buf,
            found,
            ..
        } = self;
        found.clear();
        for (key, p) in procs.iter() {
            let Some(file) = handles.get(key).and_then(|h| h.children.as_ref()) else {
                continue;
            };
            if !p.alive {
                continue;
            }
            let Ok(text) = read_at(file, buf) else {
                continue;
            };
            for word in text.split(|b| b.is_ascii_whitespace()) {
                let pid = std::str::from_utf8(word).ok().and_then(|w| w.parse().ok());
                if let Some(pid) = pid {
                    // A pid seen before, alive or on its way out (a new
                    // process that reused it is found by the next full scan).
                    let known = procs.range((pid, 0)..=(pid, u64::MAX)).next().is_some();
                    if !known {
                        found.push(pid);
                    }
                }
            }
        }
        let mut i = 0;
        while i < self.found.len() {
            let pid = self.found[i];
            i += 1;
            if self.follows(pid) {
                continue;
            }
            if let Some(st) = stat_of(pid) {
                self.adopt(pid, &st, t_s, look);
            }
            // Its own children, born between two looks.
            let kids = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .unwrap_or_default();
            self.found.extend(
                kids.split_whitespace()
                    .filter_map(|w| w.parse::<i32>().ok()),
            );
        }
    }

    /// Takes one look: updates every member and returns the summed RSS, or
    /// `None` once the root is gone (reaped).
    pub fn sample(&mut self, t_s: f64) -> Option<u64> {
        self.look(t_s, false)
    }

    /// One look; `full` finds the tree by a full scan and reads every mark
    /// (a stage boundary).
    fn look(&mut self, t_s: f64, full: bool) -> Option<u64> {
        self.looks += 1;
        let look = self.looks;
        if full || self.procs.is_empty() || t_s - self.last_scan_s >= RESCAN_S {
            self.rescan(t_s, look);
        } else {
            self.follow_children(t_s, look);
        }
        let read_hwm = full || t_s - self.last_hwm_s >= HWM_EVERY_S;
        if read_hwm {
            self.last_hwm_s = t_s;
        }
        let root = self.root;
        let (mut total, mut live, mut largest) = (0, 0, 0);
        let Self {
            procs,
            handles,
            buf,
            ..
        } = self;
        for (key, p) in procs.iter_mut() {
            if !p.alive {
                continue;
            }
            let Some(h) = handles.get(key) else { continue };
            // A zombie has no memory, a reaped process no file: both are gone.
            let Ok(Some(rss)) = h.statm.rss() else {
                continue;
            };
            if read_hwm || p.first_look == look {
                let hwm = h
                    .status
                    .as_ref()
                    .and_then(|f| read_at(f, buf).ok())
                    .and_then(|text| kib_field(text, b"VmHWM:"));
                if let Some(hwm) = hwm {
                    p.stage_hwm = p.stage_hwm.max(hwm);
                    p.peak_bytes = p.peak_bytes.max(hwm);
                }
                if t_s - p.first_seen_s < 1.0 {
                    // Early in its life a process may still exec: keep its name current.
                    p.command = command_of(p.pid);
                }
            }
            p.seen_look = look;
            p.last_seen_s = t_s;
            p.sampled_peak_bytes = p.sampled_peak_bytes.max(rss);
            // A stage's figure cannot be below what the process holds now.
            p.stage_hwm = p.stage_hwm.max(rss);
            p.peak_bytes = p.peak_bytes.max(rss);
            total += rss;
            largest = largest.max(rss);
            live += 1;
        }
        self.mark_exited();
        // PSS on its cadence, and at once when the tree's RSS grew by a quarter
        // since the last reading (forked workers faulting in shared pages),
        // which would leave the shared part the timeline takes off stale.
        let grown = total > self.pss_rss_total + self.pss_rss_total / 4 + (64 << 20);
        if self.cgroup.is_none() && live > 1 && (full || grown || t_s >= self.next_pss_s) {
            let started = monotonic_ns();
            self.read_pss(total);
            let cost_s = monotonic_ns().saturating_sub(started) as f64 / 1e9;
            self.next_pss_s =
                t_s + (cost_s * PSS_COST_FACTOR).clamp(PSS_EVERY_S, PSS_AT_MOST_EVERY_S);
        }
        // Several processes share pages: the timeline counts them once.
        let mut sample = total;
        if live > 1 {
            if let Some(usage) = self.cgroup.as_ref().and_then(CgroupMeter::current) {
                sample = usage;
                self.several = Some(TreeSample::CgroupUsage);
            } else if self.cgroup.is_none() {
                sample = total.saturating_sub(self.shared_bytes).max(largest);
                self.several = Some(TreeSample::RssLessShared);
            }
        }
        let root_alive = self.procs.iter().any(|(k, p)| k.0 == root && p.alive);
        if !root_alive && stat_of(root).is_none() {
            // Reaped: the run is over.
            return None;
        }
        Some(sample)
    }

    /// Sums the live members' proportional set sizes into the PSS peaks, and
    /// keeps how much of `rss_total` (their summed RSS now) was shared.
    fn read_pss(&mut self, rss_total: u64) {
        let mut sum = 0;
        for (key, p) in &self.procs {
            if !p.alive {
                continue;
            }
            let Some(h) = self.handles.get_mut(key) else {
                continue;
            };
            if h.smaps_rollup.is_none() {
                h.smaps_rollup = File::open(format!("/proc/{}/smaps_rollup", p.pid)).ok();
            }
            let pss = h
                .smaps_rollup
                .as_ref()
                .and_then(|f| read_at(f, &mut self.buf).ok())
                .and_then(|text| kib_field(text, b"\nPss:"));
            sum += pss.unwrap_or(0);
        }
        self.stage_pss = Some(self.stage_pss.unwrap_or(0).max(sum));
        self.pss_peak = Some(self.pss_peak.unwrap_or(0).max(sum));
        self.shared_bytes = rss_total.saturating_sub(sum);
        self.pss_rss_total = rss_total;
    }

    fn mark_exited(&mut self) {
        let look = self.looks;
        for (key, p) in self.procs.iter_mut() {
            if p.alive && p.seen_look != look {
                p.alive = false;
                p.pending = true;
                p.gone_look = Some(look);
                self.handles.remove(key);
            }
        }
    }

    /// Ends a stage at `t_s`: reads every process's peak over the stage, then
    /// resets the live ones' high-water marks (and the cgroup's) so the next
    /// stage starts afresh.
    pub fn boundary(&mut self, t_s: f64) -> StagePeaks {
        let mut out = StagePeaks {
            reset_ok: true,
            ..StagePeaks::default()
        };
        let mut spans = Vec::new();
        // The processes already followed first: read and reset at once. The
        // full scan that finds new ones takes milliseconds on a busy machine,
        // and a reset that waits for it lends the next stage's first
        // allocations to this one (a short stage then takes in the merge
        // that follows it).
        let mut closed = Vec::new();
        for (key, p) in self.procs.iter_mut() {
            if p.alive && close_live(p, &mut out, &mut spans, true) {
                closed.push(*key);
            }
        }
        let _ = self.look(t_s, true);
        for (key, p) in self.procs.iter_mut() {
            if closed.contains(key) {
                continue;
            }
            if p.alive {
                close_live(p, &mut out, &mut spans, false);
            } else if p.pending {
                spans.push((p.alive_span(), p.stage_hwm));
                out.per_process
                    .push((p.pid, p.command.clone(), p.stage_hwm));
                p.pending = false;
                p.stage_hwm = 0;
            }
        }
        let spans: Vec<(u64, u64, u64)> = spans
            .into_iter()
            .map(|((first, last), bytes)| (first, last, bytes))
            .collect();
        out.late = spans.iter().all(|&(_, _, bytes)| bytes == 0);
        out.pss_bytes = self.stage_pss.take();
        // The cgroup's mark over the stage: reset at each boundary that read
        // a process; a late boundary leaves it running, as `carry` does.
        if let Some(meter) = &self.cgroup {
            out.cgroup_bytes = meter.peak();
            if let Some(b) = out.cgroup_bytes {
                self.cgroup_peak = Some(self.cgroup_peak.unwrap_or(0).max(b));
            }
            if !self.cgroup_reset_ok {
                out.reset_ok = false;
            }
            if !out.late {
                self.cgroup_reset_ok = meter.reset_peak();
            }
        }
        let several = out.per_process.len() > 1;
        if out.late {
            out.source = self.carry_source;
            out.total_bytes = self.carry;
            out.sum_bytes = self.carry;
            if let (PeakSource::Cgroup, Some(c)) = (self.carry_source, out.cgroup_bytes) {
                out.total_bytes = c;
                out.sum_bytes = c;
            }
        } else {
            out.sum_bytes = spans.iter().map(|s| s.2).sum();
            (out.total_bytes, out.source) = match (several, out.cgroup_bytes) {
                (true, Some(c)) => (c, PeakSource::Cgroup),
                (true, None) => (concurrent_bound(&spans), PeakSource::SumVmhwmUpperBound),
                (false, _) => (concurrent_bound(&spans), PeakSource::Vmhwm),
            };
            self.carry = out.total_bytes;
            self.carry_source = out.source;
        }
        out
    }

    /// Ends the last stage after the root was reaped. `root_max_rss` is
    /// `ru_maxrss` from `wait4`: the root's peak since its last reset, or that
    /// of a descendant it reaped if larger. It completes the root's figure
    /// when the root was the tree's only process, and also when it is above
    /// every peak read so far: every earlier stage's peaks were read at its
    /// boundary, and a descendant's own figure starts from the root's
    /// high-water mark at its fork, so a larger one can only be the root's
    /// last moments. That is where a pipeline often peaks (its last merge,
    /// just before it exits), and a launcher such as pyenv's shim leaves
    /// short-lived children behind, so without the second case the last
    /// stage's peak was whatever the last sample happened to catch.
    pub fn finish(&mut self, t_s: f64, root_max_rss: Option<u64>, command: &str) -> StagePeaks {
        let root = self.root;
        let alone = self.procs.values().all(|p| p.pid == root);
        let seen = self.procs.values().map(|p| p.peak_bytes).max().unwrap_or(0);
        // Alone, every figure is the root's; otherwise only one above all
        // that was read can be (see above).
        if let Some(max_rss) = root_max_rss.filter(|&m| alone || m > seen) {
            if self.procs.is_empty() {
                // It ended before the first look: the kernel's figure is all there is.
                self.procs.insert(
                    (root, 0),
                    TrackedProcess {
                        pid: root,
                        ppid: 0,
                        command: command.chars().take(200).collect(),
                        first_seen_s: 0.0,
                        last_seen_s: t_s,
                        alive: false,
                        peak_bytes: 0,
                        sampled_peak_bytes: 0,
                        stage_hwm: 0,
                        pending: true,
                        start_ticks: 0,
                        first_look: 0,
                        gone_look: Some(self.looks),
                        seen_look: 0,
                    },
                );
            }
            for p in self.procs.values_mut().filter(|p| p.pid == root) {
                p.stage_hwm = p.stage_hwm.max(max_rss);
                p.peak_bytes = p.peak_bytes.max(max_rss);
            }
            // The root's peak since its last reset, should it have been read
            // already (a late boundary) and so not count again below.
            if self.carry_source == PeakSource::Vmhwm {
                self.carry = self.carry.max(max_rss);
            }
        }
        let mut out = self.boundary(t_s);
        out.rss_bytes = 0;
        out
    }

    /// Every process seen, in order of first sight.
    pub fn processes(&self) -> Vec<TrackedProcess> {
        let mut all: Vec<TrackedProcess> = self.procs.values().cloned().collect();
        all.sort_by(|a, b| {
            a.first_seen_s
                .total_cmp(&b.first_seen_s)
                .then(a.start_ticks.cmp(&b.start_ticks))
        });
        all
    }

    /// Pids of the members alive now (for the watchdog to kill).
    pub fn live_pids(&self) -> Vec<i32> {
        self.discover().into_iter().map(|(pid, _)| pid).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn boundaries_read_after_every_process_exited_carry_the_last_figure() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep runs");
        let mut tree = ProcessTree::new(child.id() as i32);
        assert!(tree.sample(0.0).is_some());
        let first = tree.boundary(0.1);
        assert!(!first.late && first.total_bytes > 0, "{first:?}");
        child.kill().unwrap();
        child.wait().unwrap();
        // The stage the process was in when it went: read from what it left.
        let last_read = tree.boundary(0.2);
        assert!(
            !last_read.late && last_read.total_bytes > 0,
            "{last_read:?}"
        );
        assert_eq!(last_read.per_process.len(), 1);
        // Stages whose boundaries came later still: the same figure, flagged.
        for t in [0.3, 0.4] {
            let late = tree.boundary(t);
            assert!(late.late, "{late:?}");
            assert_eq!(late.total_bytes, last_read.total_bytes);
            assert!(late.per_process.is_empty());
        }
        // The end raises it to the kernel's figure when that is larger.
        let end = tree.finish(0.5, Some(last_read.total_bytes + MIB), "sleep");
        assert!(end.late);
        assert_eq!(end.total_bytes, last_read.total_bytes + MIB);
    }

    #[test]
    fn proc_fields_are_read_without_allocating() {
        let status = b"Name:\tpython3\nVmPeak:\t  9000 kB\nVmHWM:\t  538124 kB\nVmRSS:\t 12 kB\n";
        assert_eq!(kib_field(status, b"VmHWM:"), Some(538_124 * 1024));
        assert_eq!(kib_field(status, b"VmRSS:"), Some(12 * 1024));
        assert_eq!(kib_field(status, b"VmSwap:"), None);
        let rollup = b"55d0-7ff [rollup]\nRss:  100 kB\nPss:  40 kB\nPss_Anon:  30 kB\n";
        assert_eq!(kib_field(rollup, b"\nPss:"), Some(40 * 1024));
        assert_eq!(field_u64(b"1234 567 89 0\n", 1), Some(567));
        assert_eq!(field_u64(b"", 0), None);
    }

    #[test]
    fn children_are_found_between_full_scans() {
        let mut root = std::process::Command::new("sh")
            .args(["-c", "sleep 0.3; sleep 30 & wait"])
            .spawn()
            .expect("sh runs");
        let mut tree = ProcessTree::new(root.id() as i32);
        assert!(tree.sample(0.0).is_some());
        std::thread::sleep(Duration::from_millis(800));
        // Well before the next full scan: found through the root's `children`.
        assert!(tree.sample(0.1).is_some());
        assert_eq!(tree.last_scan_s, 0.0);
        let found = tree.processes();
        let live_pids = tree.live_pids();
        for pid in &live_pids {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
        root.wait().unwrap();
        assert!(
            found
                .iter()
                .any(|p| p.command.contains("sleep 30") && p.sampled_peak_bytes > 0),
            "{found:?}"
        );
    }

    #[test]
    fn processes_one_after_another_do_not_add_up() {
        // A root alive throughout, and three helpers run one after another
        // (each gone before the next was seen).
        let spans = [
            (0, u64::MAX, 14 * MIB),
            (1, 3, 3 * MIB),
            (4, 6, 3 * MIB),
            (7, 9, 3 * MIB),
        ];
        assert_eq!(concurrent_bound(&spans), 17 * MIB);
    }

    #[test]
    fn overlapping_or_touching_spans_add_up() {
        // Touching at look 3: they may have been alive at the same moment.
        assert_eq!(concurrent_bound(&[(0, 3, MIB), (3, 5, 2 * MIB)]), 3 * MIB);
        // A nested chain (a parent waiting on its child) adds up all the way.
        let chain = [(0, 10, MIB), (2, 8, MIB), (4, 6, MIB), (9, 12, 5 * MIB)];
        assert_eq!(concurrent_bound(&chain), 6 * MIB);
        assert_eq!(concurrent_bound(&[]), 0);
    }

    #[test]
    fn the_bound_lies_between_the_largest_process_and_the_sum() {
        let spans = [
            (0, 4, 5 * MIB),
            (2, 9, 7 * MIB),
            (6, 8, 11 * MIB),
            (10, 11, MIB),
        ];
        let bound = concurrent_bound(&spans);
        assert!(bound >= 11 * MIB);
        assert!(bound <= spans.iter().map(|s| s.2).sum());
        assert_eq!(bound, 18 * MIB);
    }
}
