//! Enforcing a run's memory limit while it runs.
//!
//! [`limit`](super::limit) makes the cgroup and kills processes; this module
//! decides, for one run, which enforcement applies (falling back from a
//! cgroup to the watchdog when `auto` allows it), and gives the sampler the
//! callback that journals each sample and ends the tree when the limit is hit.

use std::sync::{Arc, Mutex};

use anyhow::Result;

use super::limit::{kill_all, ChildCgroup, LimitBy, MemoryLimit};
use crate::error::bad_input;
use crate::journal::Journal;
use crate::report::LimitRecord;
use crate::sampler::{OnSample, ProcessTree};

/// Where a limit kill happened (watchdog, or a cgroup kill the sampler saw):
/// `(seconds since spawn, sampled RSS of the tree)`. Written by the sampler's
/// thread, read by the runner once the child is reaped.
pub type KillNote = Arc<Mutex<Option<(f64, u64)>>>;

/// How a run's memory limit is being enforced, so that the sampler knows
/// what to watch and the report can say what was used (and why not a cgroup).
pub enum Enforcement {
    /// No limit.
    None,
    /// The parent kills the tree when a sample crosses `bytes`.
    Watchdog {
        bytes: u64,
        /// Why a cgroup was not used under `--limit-by auto`.
        fallback_reason: Option<String>,
    },
    /// The kernel kills in the child's own memory cgroup.
    Cgroup { bytes: u64, cgroup: ChildCgroup },
}

impl Enforcement {
    /// Chooses how to enforce `limit` on this machine: a cgroup when asked
    /// for (an error when none can be made) or when `auto` can make one,
    /// else the watchdog.
    pub fn prepare(limit: Option<MemoryLimit>) -> Result<Self> {
        let Some(limit) = limit else {
            return Ok(Self::None);
        };
        Ok(match limit.by {
            LimitBy::Watchdog => Self::Watchdog {
                bytes: limit.bytes,
                fallback_reason: None,
            },
            LimitBy::Auto => match ChildCgroup::create(Some(limit.bytes)) {
                Ok(cgroup) => Self::Cgroup {
                    bytes: limit.bytes,
                    cgroup,
                },
                Err(reason) => Self::Watchdog {
                    bytes: limit.bytes,
                    fallback_reason: Some(reason),
                },
            },
            LimitBy::Cgroup => {
                let cgroup = ChildCgroup::create(Some(limit.bytes)).map_err(|e| {
                    bad_input(format!(
                        "--limit-by cgroup: no memory cgroup can be used here: {e} (use --limit-by auto or watchdog)"
                    ))
                })?;
                Self::Cgroup {
                    bytes: limit.bytes,
                    cgroup,
                }
            }
        })
    }

    /// The cgroup the child must join, if the kernel enforces the limit.
    pub fn cgroup(&self) -> Option<&ChildCgroup> {
        match self {
            Self::Cgroup { cgroup, .. } => Some(cgroup),
            _ => None,
        }
    }

    /// OOM kills the child's cgroup counted (0 without a cgroup): a kill
    /// the sampler may not have seen, since the kernel acts between samples.
    pub fn oom_kills(&self) -> u64 {
        self.cgroup().and_then(|c| c.oom_kills()).unwrap_or(0)
    }

    /// The limit as the report records it (read at the end: the cgroup's
    /// peak and kill count are the run's).
    pub fn record(&self) -> Option<LimitRecord> {
        match self {
            Self::None => None,
            Self::Watchdog {
                bytes,
                fallback_reason,
            } => Some(LimitRecord {
                limit_bytes: *bytes,
                enforced_by: "watchdog".into(),
                fallback_reason: fallback_reason.clone(),
                cgroup_path: None,
                cgroup_peak_bytes: None,
                oom_kills: None,
            }),
            Self::Cgroup { bytes, cgroup } => Some(LimitRecord {
                limit_bytes: *bytes,
                enforced_by: cgroup.label().into(),
                fallback_reason: None,
                cgroup_path: Some(cgroup.path()),
                cgroup_peak_bytes: cgroup.peak_bytes(),
                oom_kills: cgroup.oom_kills(),
            }),
        }
    }

    /// The sampler's callback for a child `pid` (and its `tree`, when
    /// followed): journals each sample and, under a limit, kills the whole
    /// tree when the limit is hit, noting where in `note`. It returns true
    /// once it has killed, which stops the sampler.
    pub fn on_sample(
        &self,
        pid: i32,
        tree: Option<Arc<Mutex<ProcessTree>>>,
        note: KillNote,
        journal: Option<Arc<Journal>>,
    ) -> OnSample {
        // Ends the whole tree: twice over, so a process forked between look
        // and kill is found by the second look.
        let kill_tree = move || {
            for _ in 0..2 {
                let mut pids = tree
                    .as_ref()
                    .and_then(|tr| tr.lock().ok().map(|t| t.live_pids()))
                    .unwrap_or_default();
                pids.push(pid);
                kill_all(&pids);
            }
        };
        match self {
            Self::Watchdog { bytes, .. } => {
                let limit = *bytes;
                Box::new(move |t, rss| {
                    if let Some(j) = &journal {
                        j.sample(t, rss);
                    }
                    if rss < limit {
                        return false;
                    }
                    kill_tree();
                    if let Ok(mut n) = note.lock() {
                        *n = Some((t, rss));
                    }
                    true
                })
            }
            Self::Cgroup { cgroup, .. } => {
                // The kernel kills one victim (the largest process); the rest
                // of the tree would run on, as if nothing happened. End it at
                // the first sample that sees the kill, and note the kill there
                // with the RSS of the sample before it (after it, the victim
                // is gone).
                let oom_kills = cgroup.oom_kill_reader();
                let mut rss_before = 0;
                Box::new(move |t, rss| {
                    if let Some(j) = &journal {
                        j.sample(t, rss);
                    }
                    if oom_kills().unwrap_or(0) == 0 {
                        rss_before = rss;
                        return false;
                    }
                    kill_tree();
                    if let Ok(mut n) = note.lock() {
                        *n = Some((t, rss_before.max(rss)));
                    }
                    true
                })
            }
            Self::None => Box::new(move |t, rss| {
                if let Some(j) = &journal {
                    j.sample(t, rss);
                }
                false
            }),
        }
    }
}
