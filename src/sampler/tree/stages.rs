//! A tree's peak over one stage: read at each boundary, the high-water
//! marks reset for the next, and which kernel figure the peak is.

use serde::{Deserialize, Serialize};

use super::{ProcessTree, TrackedProcess};
use crate::sampler::procfs::{reset_hwm_of, rss_and_hwm_of};

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

impl ProcessTree {
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
