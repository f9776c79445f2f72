//! The memory cgroup a measured tree runs in: its exact high-water mark and
//! current usage, read through files kept open.

use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::FromRawFd;
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
    /// `cgroup.procs`: every process in the cgroup, so the tree's members
    /// in one read, however and by whichever thread they were forked. Kept
    /// open on v2; on v1 opened for each read (see [`Self::procs`]).
    procs: Option<File>,
    procs_path: Option<CString>,
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
        let procs_at = dir.join("cgroup.procs");
        let procs = File::open(&procs_at).ok();
        let procs_path = CString::new(procs_at.into_os_string().into_encoded_bytes()).ok();
        let meter = Self {
            peak,
            current,
            procs,
            procs_path,
            v2,
        };
        meter.peak()?;
        Some(meter)
    }

    /// The cgroup's usage now, bytes: a tree's memory with each shared page
    /// counted once, for the timeline.
    pub fn current(&self) -> Option<u64> {
        let mut buf = [0u8; 32];
        field_u64(read_at(self.current.as_ref()?, &mut buf).ok()?, 0)
    }

    /// The pids of the processes in the cgroup now, as the kernel lists them
    /// (one decimal pid a line), read into `buf`; `None` when the file is
    /// not readable.
    ///
    /// v1 builds an open file's list at its first read and serves that list
    /// again at every later read from the start, so a file kept open would
    /// list the first members for ever (seen on this machine's v1): there
    /// it is opened afresh for each read, by a path built once.
    pub(super) fn procs<'b>(&self, buf: &'b mut [u8]) -> Option<&'b [u8]> {
        if self.v2 {
            return read_at(self.procs.as_ref()?, buf).ok();
        }
        let path = self.procs_path.as_ref()?;
        // SAFETY: `path` is a NUL-terminated string that outlives the call.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` was just opened and is owned here alone.
        let file = unsafe { File::from_raw_fd(fd) };
        let mut n = 0;
        // A fresh v1 file hands its list out in pieces: read to the end.
        while n < buf.len() {
            match (&file).read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(_) => return None,
            }
        }
        Some(&buf[..n])
    }

    /// Whether [`Self::procs`] is one `pread` of a file kept open (v2),
    /// cheap enough for every tick; v1 opens the file and builds the list
    /// afresh, dearer than a process's `children` file.
    pub(super) fn procs_kept_open(&self) -> bool {
        self.v2 && self.procs.is_some()
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
