//! One look at a followed tree: every member's RSS, its `VmHWM` on its
//! cadence, the summed PSS when it is due, and the sample the timeline gets.

use std::fs::File;

use super::{
    ProcessTree, HWM_EVERY_S, PSS_AT_MOST_EVERY_S, PSS_COST_FACTOR, PSS_EVERY_S, RESCAN_S,
};
use crate::protocol::monotonic_ns;
use crate::sampler::cgroup::CgroupMeter;
use crate::sampler::procfs::{command_of, kib_field, read_at, stat_of};
use crate::sampler::timeline::TreeSample;

impl ProcessTree {
    /// One look; `full` finds the tree by a full scan and reads every mark
    /// (a stage boundary).
    pub(super) fn look(&mut self, t_s: f64, full: bool) -> Option<u64> {
        // Between the looks that read the marks, several processes in a
        // cgroup of their own are sampled from its usage alone: the timeline
        // is that usage anyway, each process's mark is kept by the kernel,
        // and the cgroup's own mark is the tree's peak. One read a tick in
        // place of two per process. What is traded: each process's sampled
        // RSS, and whether it is alive, are seen every `HWM_EVERY_S`, not
        // every tick, so a process that lives less than that may be missing
        // from the list of processes (its memory is in the cgroup's figures).
        // A light tick is not a look: looks number the readings of every
        // member, which the peaks' spans count in.
        if !full && self.last_live > 1 && t_s - self.last_hwm_s < HWM_EVERY_S {
            if let Some(usage) = self.cgroup.as_ref().and_then(CgroupMeter::current) {
                return Some(usage);
            }
        }
        self.looks += 1;
        let look = self.looks;
        let due = t_s - self.last_scan_s >= RESCAN_S;
        // The last pid the kernel handed out, unchanged since the last look
        // that went looking: no process was made anywhere since, so no new
        // member can exist (nor a reused pid) and no file need be read to
        // find one. Exact, and most looks of a tree that is not forking.
        let last_pid = self.last_pid();
        let forked = last_pid.is_none() || last_pid != self.last_pid_seen;
        if full || self.procs.is_empty() {
            self.rescan(t_s, look, false);
        } else if !forked {
            if due {
                self.last_scan_s = t_s;
            }
        } else if self.follow_cgroup(t_s, look, due) {
            // The cgroup listed every member.
        } else if due {
            self.rescan(t_s, look, true);
        } else {
            self.follow_children(t_s, look);
        }
        self.last_pid_seen = last_pid;
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
            let marks = read_hwm || p.first_look == look;
            let status = h
                .status
                .as_ref()
                .filter(|_| marks)
                .and_then(|f| read_at(f, buf).ok());
            // A zombie has no memory, a reaped process no file: both are gone.
            let (rss, hwm) = match status {
                // `status` has the RSS too: one read where there were two.
                Some(text) => match kib_field(text, b"VmRSS:") {
                    Some(rss) => (rss, kib_field(text, b"VmHWM:")),
                    None => continue,
                },
                None => match h.statm.rss() {
                    Ok(Some(rss)) => (rss, None),
                    _ => continue,
                },
            };
            if marks {
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
        self.last_live = live;
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
}
