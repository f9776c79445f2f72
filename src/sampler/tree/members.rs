//! Who belongs to a followed tree: found by a scan of `/proc` at the first
//! look, at stage boundaries and every [`RESCAN_S`](super::RESCAN_S) (reading only the
//! processes born since the last scan), and between scans through the
//! cgroup's `cgroup.procs` when a cgroup holds the tree, else through the
//! members' `children` files.

use std::collections::HashMap;

use super::{Handles, ProcessTree, TrackedProcess};
use crate::sampler::procfs::{command_of, field_u64, read_at, stat_of, StatLine};

/// The root (while it exists) and its live descendants, by a scan of
/// `/proc`. `known` holds the `stat` lines of the last scan and is replaced
/// by this one's. With `reuse`, a pid listed last time is not read again:
/// a process's parent changes only when it is orphaned, which takes it out
/// of the tree, never into it, so a periodic scan reads only the processes
/// born since (a hundred `stat` files a second on a busy machine was a
/// sixth of the sampler's CPU). What is traded: a pid that exited and was
/// reused between two scans keeps its old line until the next boundary's
/// scan (whose lines are all fresh); its new process is still found through
/// its parent's `children` file if a main thread forked it.
pub(super) fn discover(
    root: i32,
    known: &mut HashMap<i32, StatLine>,
    reuse: bool,
) -> Vec<(i32, StatLine)> {
    let Some(root_stat) = stat_of(root) else {
        return Vec::new();
    };
    let mut listed = HashMap::with_capacity(known.len());
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
            if pid == root {
                continue;
            }
            let st = match known.remove(&pid).filter(|_| reuse) {
                Some(st) => st,
                None => match stat_of(pid) {
                    Some(st) => st,
                    None => continue,
                },
            };
            listed.insert(pid, st.clone());
            children.entry(st.ppid).or_default().push((pid, st));
        }
    }
    *known = listed;
    let mut members = vec![(root, root_stat)];
    let mut i = 0;
    while i < members.len() {
        if let Some(kids) = children.remove(&members[i].0) {
            members.extend(kids);
        }
        i += 1;
    }
    members
}

/// The pids in a `children` or `cgroup.procs` text, parsed in place. A text
/// that filled its buffer (`cap` bytes) may end in a pid cut short: left out.
fn pids_in(text: &[u8], cap: usize) -> impl Iterator<Item = i32> + '_ {
    let whole = if text.len() >= cap {
        let end = text
            .iter()
            .rposition(|b| b.is_ascii_whitespace())
            .unwrap_or(0);
        &text[..end]
    } else {
        text
    };
    whole
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty() && w.len() <= 9 && w.iter().all(u8::is_ascii_digit))
        .map(|w| w.iter().fold(0i32, |n, d| n * 10 + i32::from(d - b'0')))
}

impl ProcessTree {
    /// The last pid the kernel handed out in oomlab's pid namespace (the
    /// last field of `/proc/loadavg`, kept open), which every fork below
    /// it moves on; `None` when unreadable.
    pub(super) fn last_pid(&self) -> Option<u64> {
        let mut buf = [0u8; 128];
        field_u64(read_at(self.loadavg.as_ref()?, &mut buf).ok()?, 4)
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

    /// Finds the whole tree again by a scan of `/proc`; with `reuse`, the
    /// `stat` lines of processes listed at the last scan are taken from it
    /// (see [`discover`]).
    pub(super) fn rescan(&mut self, t_s: f64, look: u64, reuse: bool) {
        let root = self.root;
        for (pid, st) in discover(root, &mut self.scan_cache, reuse) {
            if self.procs.contains_key(&(pid, st.start_ticks)) {
                continue;
            }
            if pid == root || !reuse {
                self.adopt(pid, &st, t_s, look);
                continue;
            }
            // A member not followed yet, from a remembered line: read afresh
            // (a zombie now, or its pid reused since) before following it.
            match stat_of(pid) {
                Some(now) if now.start_ticks == st.start_ticks => self.adopt(pid, &now, t_s, look),
                _ => {
                    self.scan_cache.remove(&pid);
                }
            }
        }
        self.last_scan_s = t_s;
    }

    /// Finds new members through the cgroup's `cgroup.procs` (one read lists
    /// the whole tree, children of any thread included, in place of a scan
    /// of `/proc`): every look on cgroup v2, where the file is kept open,
    /// and on v1 only when a scan is `due` (every [`RESCAN_S`](super::RESCAN_S); the
    /// `children` files serve between). A listed pid whose process was
    /// followed and is gone is looked at again when a scan is due, in case
    /// it was reused. Returns false when it did not look: no cgroup, one
    /// that does not list the root (the tree is then found through
    /// `/proc`), or v1 between scans.
    pub(super) fn follow_cgroup(&mut self, t_s: f64, look: u64, due: bool) -> bool {
        let every_look = self.cgroup.as_ref().is_some_and(|c| c.procs_kept_open());
        if self.cgroup_lists == Some(false) || !(due || every_look) {
            return false;
        }
        let recheck = due;
        let Self {
            procs,
            cgroup,
            buf,
            found,
            root,
            cgroup_lists,
            ..
        } = self;
        let cap = buf.len();
        let Some(text) = cgroup.as_ref().and_then(|c| c.procs(buf)) else {
            *cgroup_lists = Some(false);
            return false;
        };
        found.clear();
        let mut root_listed = false;
        for pid in pids_in(text, cap) {
            root_listed |= pid == *root;
            let mut same = procs.range((pid, 0)..=(pid, u64::MAX)).peekable();
            let known = same.peek().is_some();
            let alive = same.any(|(_, p)| p.alive);
            if !known || (!alive && recheck) {
                found.push(pid);
            }
        }
        if cgroup_lists.is_none() {
            *cgroup_lists = Some(root_listed);
            if !root_listed {
                return false;
            }
        }
        if recheck {
            self.last_scan_s = t_s;
        }
        for i in 0..self.found.len() {
            let pid = self.found[i];
            if let Some(st) = stat_of(pid) {
                self.adopt(pid, &st, t_s, look);
            }
        }
        true
    }

    /// Finds children born since the last look through the `children` files
    /// of the members' main threads (children forked by other threads wait
    /// for the next scan of `/proc`).
    pub(super) fn follow_children(&mut self, t_s: f64, look: u64) {
        let Self {
            procs,
            handles,
            buf,
            found,
            ..
        } = self;
        found.clear();
        let cap = buf.len();
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
            for pid in pids_in(text, cap) {
                // A pid seen before, alive or on its way out (a new
                // process that reused it is found by the next scan).
                let known = procs.range((pid, 0)..=(pid, u64::MAX)).next().is_some();
                if !known {
                    found.push(pid);
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_periodic_scan_from_remembered_lines_finds_a_threads_child() {
        // A child forked by a thread other than the main one: no `children`
        // file of a main thread lists it, so the periodic scan must, though
        // it reads only the lines of processes born since the last scan.
        let mut root = std::process::Command::new("python3")
            .args([
                "-c",
                "import subprocess, threading, time\n\
                 time.sleep(0.3)\n\
                 t = threading.Thread(target=lambda: subprocess.run(['sleep', '30']))\n\
                 t.start(); t.join()",
            ])
            .spawn()
            .expect("python3 runs");
        let mut tree = ProcessTree::new(root.id() as i32);
        assert!(tree.sample(0.0).is_some());
        assert!(!tree.scan_cache.is_empty());
        std::thread::sleep(Duration::from_millis(1500));
        // Due for a scan (every RESCAN_S), from the lines remembered at the first.
        assert!(tree.sample(super::super::RESCAN_S + 0.1).is_some());
        let found = tree.processes();
        for pid in tree.live_pids() {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        root.wait().unwrap();
        assert!(
            found.iter().any(|p| p.command.contains("sleep 30")),
            "{found:?}"
        );
    }

    #[test]
    fn pids_are_parsed_in_place_and_a_cut_last_one_is_left_out() {
        let all: Vec<i32> = pids_in(b"12 345\n6789\n", 64).collect();
        assert_eq!(all, [12, 345, 6789]);
        // The buffer was full: "67" may be the start of 6789.
        let cut: Vec<i32> = pids_in(b"12 345\n67", 9).collect();
        assert_eq!(cut, [12, 345]);
        assert_eq!(pids_in(b"", 64).count(), 0);
        assert_eq!(pids_in(b"x1 99999999999\n", 64).count(), 0);
    }
}
