//! RSS over time, sampled from outside the measured process.
//!
//! The sampler runs in the parent on its own thread and reads `/proc/<pid>/statm`
//! at a fixed interval: cheap (one small read), and it never allocates in the child.
//! Samples give the shape of memory over time; exact peaks come from the child's
//! kernel high-water marks (see `probe`), so the sampler can afford to be coarse.
//!
//! `record` measures a command that knows nothing of oomlab, so there the
//! sampler follows the whole process tree ([`ProcessTree`]): each tick it finds
//! the root's descendants, sums their RSS, and keeps each process's kernel
//! high-water mark (`VmHWM`), which the runner resets at stage boundaries.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::protocol::monotonic_ns;

/// RSS samples of one process, columnar so large timelines stay compact in JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Timeline {
    /// Sampling interval asked for, in milliseconds.
    pub interval_ms: f64,
    /// Seconds since the child was started.
    pub t_s: Vec<f64>,
    /// Resident set size at that time, bytes.
    pub rss_bytes: Vec<u64>,
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

/// Reads the resident set size of `pid` in bytes (`None` once it is gone).
///
/// The sampler's per-tick read, so by hand: one small read and one number,
/// where procfs' `statm` costs about half as much again (it opens the process
/// directory first and parses all seven fields).
pub fn rss_of(pid: i32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let resident: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(resident * page_size())
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

/// A running sampler; stop it to get the timeline.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    latest: Arc<AtomicU64>,
    timeline: Arc<Mutex<Timeline>>,
    handle: Option<JoinHandle<()>>,
}

/// Called on each sample with the RSS; returning `true` asks the sampler to stop.
pub type OnSample = Box<dyn FnMut(f64, u64) -> bool + Send>;

impl Sampler {
    /// Starts sampling `pid` every `interval`, with times relative to `origin_ns`.
    pub fn start(pid: i32, interval: Duration, origin_ns: u64, on_sample: OnSample) -> Self {
        Self::spawn(interval, origin_ns, on_sample, move |_| rss_of(pid))
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
        let timeline = Arc::new(Mutex::new(Timeline {
            interval_ms: interval.as_secs_f64() * 1e3,
            ..Timeline::default()
        }));
        let handle = {
            let (stop, latest, timeline) = (stop.clone(), latest.clone(), timeline.clone());
            std::thread::Builder::new()
                .name("oomlab-sampler".into())
                .spawn(move || {
                    let mut next = monotonic_ns();
                    while !stop.load(Ordering::Relaxed) {
                        let t = monotonic_ns().saturating_sub(origin_ns) as f64 / 1e9;
                        let Some(rss) = measure(t) else { break };
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

    /// Stops sampling and returns what was seen.
    pub fn finish(mut self) -> Timeline {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.timeline
            .lock()
            .map(|tl| tl.clone())
            .unwrap_or_default()
    }
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

/// Resets a process's `VmHWM` to its current RSS (`echo 5 > /proc/<pid>/clear_refs`):
/// the one writer of it, for the runner's processes and the child's own.
///
/// Fails when the kernel refused (process gone, not ours to reset, Linux < 4.0).
pub fn reset_hwm_of(pid: i32) -> std::io::Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
}

/// Identity and parent of a process, from `/proc/<pid>/stat`.
#[derive(Debug, Clone)]
struct StatLine {
    ppid: i32,
    /// Start time in clock ticks since boot: tells a reused pid from the old one.
    start_ticks: u64,
    zombie: bool,
}

/// By hand: the tree sampler reads every process's `stat` on every tick to
/// find the tree, and procfs' `Stat` (directory handle, all 52 fields) costs
/// more.
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
/// By hand: procfs' `cmdline` refuses arguments that are not UTF-8, which
/// are read here with replacement characters.
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
    pub pid: i32,
    pub ppid: i32,
    pub command: String,
    pub first_seen_s: f64,
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
#[derive(Debug, Clone, Default)]
pub struct StagePeaks {
    /// The tree's peak over the stage: each process's exact peak, summed over
    /// the processes that can have run at the same time (see [`ProcessTree`]).
    pub total_bytes: u64,
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
}

/// A process and its descendants, followed through `/proc`.
///
/// What is exact for a tree: each process's own peak is the kernel's `VmHWM`
/// (reset at every stage boundary through `/proc/<pid>/clear_refs`), read at
/// each sample and at each boundary, so a live process's stage peak is exact.
/// The tree's stage figure sums its processes' stage peaks over those that can
/// have been alive at the same time ([`concurrent_bound`]; a process was born
/// after the look before the one that first saw it, and gone before the look
/// that missed it): exact for one process, and an upper bound on the tree's
/// simultaneous peak when several processes peak at different moments (the
/// sampled sum is the lower bound). A descendant that exits before the next
/// reading after its peak is under-read; the root's last stage is completed
/// from `wait4`'s `ru_maxrss`.
#[derive(Debug)]
pub struct ProcessTree {
    root: i32,
    procs: BTreeMap<(i32, u64), TrackedProcess>,
    /// Looks taken so far (each [`Self::sample`] is one).
    looks: u64,
    /// The figure of the last boundary that read a process (see [`StagePeaks::late`]).
    carry: u64,
}

impl ProcessTree {
    /// A tree rooted at `root` (found on the first look).
    pub fn new(root: i32) -> Self {
        Self {
            root,
            procs: BTreeMap::new(),
            looks: 0,
            carry: 0,
        }
    }

    /// The current members: the root (while it exists) and its live descendants.
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

    /// Takes one look: updates every member and returns the summed RSS, or
    /// `None` once the root is gone (reaped).
    pub fn sample(&mut self, t_s: f64) -> Option<u64> {
        self.looks += 1;
        let look = self.looks;
        let members = self.discover();
        if members.is_empty() {
            self.mark_exited(&[]);
            return None;
        }
        let mut total = 0;
        let mut seen = Vec::with_capacity(members.len());
        for (pid, st) in members {
            let key = (pid, st.start_ticks);
            let reading = if st.zombie {
                None
            } else {
                status_memory(pid).map(|m| (m.rss, m.hwm))
            };
            let Some((rss, hwm)) = reading else { continue };
            seen.push(key);
            total += rss;
            let p = self.procs.entry(key).or_insert_with(|| TrackedProcess {
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
            });
            if t_s - p.first_seen_s < 1.0 {
                // Early in its life a process may still exec: keep its name current.
                p.command = command_of(pid);
            }
            p.last_seen_s = t_s;
            p.alive = true;
            p.gone_look = None;
            p.stage_hwm = p.stage_hwm.max(hwm);
            p.peak_bytes = p.peak_bytes.max(hwm);
            p.sampled_peak_bytes = p.sampled_peak_bytes.max(rss);
        }
        self.mark_exited(&seen);
        Some(total)
    }

    fn mark_exited(&mut self, seen: &[(i32, u64)]) {
        let look = self.looks;
        for (key, p) in self.procs.iter_mut() {
            if p.alive && !seen.contains(key) {
                p.alive = false;
                p.pending = true;
                p.gone_look = Some(look);
            }
        }
    }

    /// Ends a stage at `t_s`: reads every process's peak over the stage, then
    /// resets the live ones' high-water marks so the next stage starts afresh.
    pub fn boundary(&mut self, t_s: f64) -> StagePeaks {
        let _ = self.sample(t_s);
        let mut out = StagePeaks {
            reset_ok: true,
            ..StagePeaks::default()
        };
        let mut spans = Vec::new();
        for p in self.procs.values_mut() {
            if p.alive {
                // Read once more right at the boundary, then reset.
                let mut rss_now = None;
                if let Some(StatusMemory { rss, hwm, .. }) = status_memory(p.pid) {
                    p.stage_hwm = p.stage_hwm.max(hwm);
                    p.peak_bytes = p.peak_bytes.max(hwm);
                    out.rss_bytes += rss;
                    rss_now = Some(rss);
                }
                spans.push((p.alive_span(), p.stage_hwm));
                out.per_process
                    .push((p.pid, p.command.clone(), p.stage_hwm));
                if reset_hwm_of(p.pid).is_ok() {
                    // The next stage starts from the RSS the reset set VmHWM
                    // to; should the process exit before it can be read, from
                    // the RSS read a moment ago (never from nothing).
                    p.stage_hwm = status_memory(p.pid).map(|m| m.rss).or(rss_now).unwrap_or(0);
                } else {
                    out.reset_ok = false;
                }
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
        if spans.iter().all(|&(_, _, bytes)| bytes == 0) {
            out.late = true;
            out.total_bytes = self.carry;
            out.sum_bytes = self.carry;
        } else {
            out.sum_bytes = spans.iter().map(|s| s.2).sum();
            out.total_bytes = concurrent_bound(&spans);
            self.carry = out.total_bytes;
        }
        out
    }

    /// Ends the last stage after the root was reaped. `root_max_rss` is
    /// `ru_maxrss` from `wait4`: the root's peak since its last reset, or that
    /// of a descendant it reaped if larger, so it completes the root's figure
    /// only when the root was the tree's only process.
    pub fn finish(&mut self, t_s: f64, root_max_rss: Option<u64>, command: &str) -> StagePeaks {
        let root = self.root;
        let alone = self.procs.values().all(|p| p.pid == root);
        if let (true, Some(max_rss)) = (alone, root_max_rss) {
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
                    },
                );
            }
            for p in self.procs.values_mut() {
                p.stage_hwm = p.stage_hwm.max(max_rss);
                p.peak_bytes = p.peak_bytes.max(max_rss);
            }
            // The root's peak since its last reset, should it have been read
            // already (a late boundary) and so not count again below.
            self.carry = self.carry.max(max_rss);
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
    fn reads_its_own_memory_lines() {
        let me = std::process::id() as i32;
        let m = status_memory(me).expect("own status");
        assert!(m.rss > 0 && m.hwm >= m.rss && m.rss_anon > 0, "{m:?}");
        assert!(m.rss_anon <= m.rss, "{m:?}");
        let statm = rss_of(me).expect("own statm");
        // Two reads a moment apart: the same order of size.
        assert!(statm / 2 < m.rss && m.rss < statm * 2, "{statm} vs {m:?}");
        assert_eq!(status_memory(-1), None);
    }

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
