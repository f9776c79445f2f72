//! The memory cgroup a measured tree runs in: its exact high-water mark and
//! current usage, read through files kept open.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::procfs::{field_u64, read_at};

/// The high-water mark of the memory cgroup a measured tree runs in, kept
/// open: the tree's exact peak as the kernel charges it, however many of its
/// processes share pages (see [`PeakSource::Cgroup`](super::PeakSource::Cgroup)).
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
