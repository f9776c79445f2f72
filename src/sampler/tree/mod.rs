//! A process tree followed through `/proc`, and what was learnt about each
//! member. Who belongs to it (a scan of `/proc` now and then, the cgroup's
//! `cgroup.procs` or the parents' `children` files between) is found in
//! `members.rs`, each look's readings are in `look.rs`, the peaks at a stage
//! boundary in `stages.rs`.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;

use super::cgroup::CgroupMeter;
use super::procfs::{StatLine, Statm};
use super::timeline::TreeSample;

mod look;
mod members;
mod stages;

pub use stages::{concurrent_bound, PeakSource, StagePeaks};

/// How often a followed tree is found again by a scan of `/proc`, or on
/// cgroup v1 by its cgroup's `cgroup.procs` (between scans, new processes
/// are found through their parents' `children` files, which list only the
/// children of each main thread); skipped while no pid is handed out.
pub const RESCAN_S: f64 = 1.0;
/// How often each process's `VmHWM` is read between stage boundaries: the
/// kernel keeps the mark, so reading it less often loses nothing while the
/// process lives (`/proc/<pid>/status` costs several times `statm`).
const HWM_EVERY_S: f64 = 0.1;
/// How often, at most, a tree without a cgroup has its proportional set
/// size summed. `smaps_rollup` walks the page tables (some 20 ms for a
/// 500 MiB process) under the process's memory-map lock, so the next
/// reading waits [`PSS_COST_FACTOR`] times what the last one took (0.25% of
/// a core, so that a tree of 10 stays within 1.5% in all), but never more than
/// [`PSS_AT_MOST_EVERY_S`]: a tree of very large processes pays more for a
/// PSS figure that is still worth having.
const PSS_EVERY_S: f64 = 0.25;
/// See [`PSS_EVERY_S`].
const PSS_COST_FACTOR: f64 = 400.0;
/// See [`PSS_EVERY_S`].
const PSS_AT_MOST_EVERY_S: f64 = 5.0;

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
    /// When `/proc` was last scanned for the tree (or, with a cgroup that
    /// lists it, when reused pids were last looked for).
    last_scan_s: f64,
    /// Every process's `stat` line at the last scan of `/proc`, so the next
    /// periodic scan reads only those born since.
    scan_cache: HashMap<i32, StatLine>,
    /// Whether the cgroup's `cgroup.procs` lists the tree (decided at the
    /// second look; `None` before): then it finds new members every look.
    cgroup_lists: Option<bool>,
    last_hwm_s: f64,
    /// Members alive at the last look.
    last_live: usize,
    /// `/proc/loadavg`, whose last field is the last pid handed out.
    loadavg: Option<File>,
    /// That pid at the last look that looked for new members.
    last_pid_seen: Option<u64>,
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
            scan_cache: HashMap::new(),
            cgroup_lists: None,
            last_hwm_s: f64::NEG_INFINITY,
            last_live: 0,
            loadavg: File::open("/proc/loadavg").ok(),
            last_pid_seen: None,
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

    /// Takes one look: updates every member and returns the summed RSS, or
    /// `None` once the root is gone (reaped).
    pub fn sample(&mut self, t_s: f64) -> Option<u64> {
        self.look(t_s, false)
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
        members::discover(self.root, &mut HashMap::new(), false)
            .into_iter()
            .map(|(pid, _)| pid)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
}
