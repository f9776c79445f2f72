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
//! sampler follows the whole process tree ([`ProcessTree`]): each tick on
//! which a pid was handed out it finds new children through its cgroup's
//! `cgroup.procs` (v2) or `/proc/<pid>/task/<pid>/children` (a scan of
//! `/proc` only every [`RESCAN_S`] and at stage boundaries), sums their
//! RSS (or, for several processes in a cgroup, reads its usage), and keeps
//! each process's kernel high-water mark (`VmHWM`), which the runner resets
//! at stage boundaries. Sleeps are to absolute deadlines.

mod cgroup;
mod procfs;
mod thread;
mod timeline;
mod tree;

pub use cgroup::CgroupMeter;
pub use procfs::{reset_hwm_of, rss_and_hwm_of, rss_of, status_memory, StatusMemory};
pub use thread::{process_cpu_s, thread_cpu_s, OnSample, Sampler, SamplerStats};
pub use timeline::{Timeline, TreeSample};
pub use tree::{concurrent_bound, PeakSource, ProcessTree, StagePeaks, TrackedProcess, RESCAN_S};
