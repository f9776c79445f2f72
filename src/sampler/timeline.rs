//! What the sampler records: RSS over time, and what a tree's samples are
//! while several of its processes are alive.

use serde::{Deserialize, Serialize};

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
