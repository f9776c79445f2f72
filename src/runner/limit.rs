//! Memory limits that kill, as a container's OOM killer does.
//!
//! The pipeline died with exit code -9 because the kernel killed it at its
//! container's limit. To reproduce that on demand, a measured child runs under
//! `--memory-limit`, enforced in one of two ways:
//!
//! - a memory cgroup made for the child (cgroup v2 `memory.max`, else v1
//!   `memory.limit_in_bytes`), so the kernel itself kills it at the limit, exactly
//!   as in a container (the charge counts page cache too, as a container's does);
//! - a watchdog in the parent that sends SIGKILL as soon as a sample of the
//!   child's RSS crosses the limit: portable, but it sees the limit only at
//!   sample times, so the child can overshoot by what it allocates in one interval.
//!
//! `auto` takes a cgroup when this machine lets oomlab make one, the watchdog
//! otherwise, and the report says which was used and why.

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use clap::ValueEnum;

use crate::machine::{own_cgroup_path, own_cgroups};
use crate::sampler::CgroupMeter;

/// How `--memory-limit` is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LimitBy {
    /// A cgroup when one can be made here, else the watchdog.
    #[default]
    Auto,
    /// A kernel kill through a memory cgroup; refuse to run without one.
    Cgroup,
    /// The parent's RSS watchdog (SIGKILL when a sample crosses the limit).
    Watchdog,
}

/// A limit to enforce on one measured child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimit {
    /// The limit in bytes.
    pub bytes: u64,
    /// How to enforce it.
    pub by: LimitBy,
}

/// Which cgroup interface a [`ChildCgroup`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

/// A memory cgroup made for one child under oomlab's own cgroup; removed on drop.
#[derive(Debug)]
pub struct ChildCgroup {
    dir: PathBuf,
    version: CgroupVersion,
    procs: CString,
}

static SEQUENCE: AtomicU32 = AtomicU32::new(0);

impl ChildCgroup {
    /// Makes a cgroup limited to `limit` bytes (none: a cgroup only to
    /// measure the tree's peak as the kernel charges it), v2 first, then v1;
    /// the error says why neither could be used (it goes into the report).
    pub fn create(limit: Option<u64>) -> Result<Self, String> {
        let own = own_cgroups()?;
        let v2 = match own_cgroup_path(&own, None) {
            Some(path) => Self::create_v2(&path, limit),
            None => Err("cgroup v2: this process is in no unified cgroup".to_string()),
        };
        let v2_err = match v2 {
            Ok(cg) => return Ok(cg),
            Err(e) => e,
        };
        let v1 = match own_cgroup_path(&own, Some("memory")) {
            Some(path) => Self::create_v1(&path, limit),
            None => Err("cgroup v1: no memory controller in /proc/self/cgroup".to_string()),
        };
        v1.map_err(|v1_err| format!("{v2_err}; {v1_err}"))
    }

    fn create_v2(path: &str, limit: Option<u64>) -> Result<Self, String> {
        let root = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            "/sys/fs/cgroup"
        } else {
            "/sys/fs/cgroup/unified"
        };
        let parent = PathBuf::from(format!("{root}{path}"));
        let controllers = std::fs::read_to_string(parent.join("cgroup.controllers"))
            .map_err(|e| format!("cgroup v2: {}: {e}", parent.display()))?;
        if !controllers.split_whitespace().any(|c| c == "memory") {
            return Err(format!(
                "cgroup v2: the memory controller is not available in {}",
                parent.display()
            ));
        }
        let subtree =
            std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
        if !subtree.split_whitespace().any(|c| c == "memory") {
            std::fs::write(parent.join("cgroup.subtree_control"), "+memory").map_err(|e| {
                format!(
                    "cgroup v2: cannot enable the memory controller for children of {}: {e}",
                    parent.display()
                )
            })?;
        }
        let cg = Self::make_dir(&parent, CgroupVersion::V2)?;
        let Some(limit) = limit else {
            return Ok(cg);
        };
        cg.write("memory.max", &limit.to_string())?;
        // Without swap the kernel must kill at the limit instead of swapping.
        let _ = cg.write("memory.swap.max", "0");
        // Kill the whole group at once, as a container dies; where the kernel
        // lacks it (< 4.19) the runner ends the rest of the tree itself.
        let _ = cg.write("memory.oom.group", "1");
        Ok(cg)
    }

    fn create_v1(path: &str, limit: Option<u64>) -> Result<Self, String> {
        let parent = PathBuf::from(format!("/sys/fs/cgroup/memory{path}"));
        let cg = Self::make_dir(&parent, CgroupVersion::V1)?;
        let Some(limit) = limit else {
            return Ok(cg);
        };
        cg.write("memory.limit_in_bytes", &limit.to_string())?;
        // With swap accounting, memory+swap gets the same limit (no escape to swap).
        let _ = cg.write("memory.memsw.limit_in_bytes", &limit.to_string());
        let set = cg
            .read("memory.limit_in_bytes")
            .and_then(|t| t.trim().parse::<u64>().ok());
        match set {
            // The kernel rounds down to whole pages.
            Some(v) if v <= limit && v + 65_536 >= limit => Ok(cg),
            other => Err(format!(
                "cgroup v1: {} holds {other:?} after writing {limit}",
                cg.dir.join("memory.limit_in_bytes").display()
            )),
        }
    }

    fn make_dir(parent: &Path, version: CgroupVersion) -> Result<Self, String> {
        remove_stale(parent);
        let name = format!(
            "oomlab-{}-{}",
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed)
        );
        let dir = parent.join(name);
        let tag = match version {
            CgroupVersion::V1 => "cgroup v1",
            CgroupVersion::V2 => "cgroup v2",
        };
        std::fs::create_dir(&dir)
            .map_err(|e| format!("{tag}: cannot create {}: {e}", dir.display()))?;
        let procs = CString::new(dir.join("cgroup.procs").as_os_str().as_encoded_bytes())
            .map_err(|_| format!("{tag}: path with a NUL byte"))?;
        Ok(Self {
            dir,
            version,
            procs,
        })
    }

    fn write(&self, file: &str, value: &str) -> Result<(), String> {
        std::fs::write(self.dir.join(file), value)
            .map_err(|e| format!("{}: writing {value}: {e}", self.dir.join(file).display()))
    }

    fn read(&self, file: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join(file)).ok()
    }

    /// `cgroup-v1` or `cgroup-v2`, for reports.
    pub fn label(&self) -> &'static str {
        match self.version {
            CgroupVersion::V1 => "cgroup-v1",
            CgroupVersion::V2 => "cgroup-v2",
        }
    }

    /// Where the cgroup is, for reports.
    pub fn path(&self) -> String {
        self.dir.display().to_string()
    }

    /// How many times the kernel's OOM killer fired in this cgroup (kernel >= 4.13).
    pub fn oom_kills(&self) -> Option<u64> {
        read_oom_kills(&self.dir, self.version)
    }

    /// A reader of [`Self::oom_kills`] that owns what it needs, for the
    /// sampler thread: the kernel kills only its chosen victim (v1, or v2
    /// without `memory.oom.group`), so the runner watches this count and ends
    /// the rest of the process tree itself, as a container's death would.
    pub fn oom_kill_reader(&self) -> impl Fn() -> Option<u64> + Send + 'static {
        let (dir, version) = (self.dir.clone(), self.version);
        // Kept open and re-read (`pread`): the sampler calls this every tick.
        let file = std::fs::File::open(dir.join(oom_kills_file(version))).ok();
        move || match &file {
            Some(f) => {
                use std::os::unix::fs::FileExt;
                let mut buf = [0u8; 1024];
                let n = f.read_at(&mut buf, 0).ok()?;
                parse_oom_kills(std::str::from_utf8(&buf[..n]).ok()?)
            }
            None => read_oom_kills(&dir, version),
        }
    }

    /// The cgroup's peak charge (RSS plus page cache and kernel memory), the
    /// figure the kernel compares with the limit.
    pub fn peak_bytes(&self) -> Option<u64> {
        let file = match self.version {
            CgroupVersion::V1 => "memory.max_usage_in_bytes",
            CgroupVersion::V2 => "memory.peak",
        };
        self.read(file)?.trim().parse().ok()
    }

    /// The cgroup's high-water mark kept open for the sampler: the exact
    /// peak of the whole tree, each shared page counted once (`None` when
    /// the kernel keeps none, as v2 before Linux 5.19).
    pub fn meter(&self) -> Option<CgroupMeter> {
        CgroupMeter::open(&self.dir, self.version == CgroupVersion::V2)
    }

    /// A `pre_exec` hook that moves the forked child into this cgroup before it
    /// runs the command, so every page it touches is charged here.
    ///
    /// Only async-signal-safe calls (`open`, `getpid`, `write`, `close`) on
    /// buffers prepared before the fork: safe to run between fork and exec.
    pub fn join_hook(&self) -> impl FnMut() -> io::Result<()> + Send + Sync + 'static {
        let path = self.procs.clone();
        move || {
            // SAFETY: a NUL-terminated path we own; plain syscalls.
            let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut buf = [0u8; 16];
            // SAFETY: getpid has no preconditions.
            let len = format_pid(unsafe { libc::getpid() }, &mut buf);
            // SAFETY: writes `len` initialised bytes of our buffer to our fd.
            let written = unsafe { libc::write(fd, buf.as_ptr().cast(), len) };
            let err = io::Error::last_os_error();
            // SAFETY: closes the fd opened above.
            unsafe { libc::close(fd) };
            if written < 0 {
                Err(err)
            } else {
                Ok(())
            }
        }
    }
}

impl Drop for ChildCgroup {
    fn drop(&mut self) {
        // The child was reaped before this runs; the kernel may still be tearing
        // its memory down for a moment.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// Removes the cgroups an oomlab that is gone left in `parent` (one killed
/// by SIGKILL never ran its `Drop`): now that every child gets a cgroup,
/// they would pile up. Only empty ones go (the kernel refuses the others).
fn remove_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let owner = name
            .to_str()
            .and_then(|n| n.strip_prefix("oomlab-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = owner {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir(entry.path());
            }
        }
    }
}

/// The `oom_kill` count of the cgroup at `dir` (`memory.oom_control` in v1,
/// `memory.events` in v2), when the kernel reports one.
fn read_oom_kills(dir: &Path, version: CgroupVersion) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join(oom_kills_file(version))).ok()?;
    parse_oom_kills(&text)
}

/// The file that counts a cgroup's OOM kills.
fn oom_kills_file(version: CgroupVersion) -> &'static str {
    match version {
        CgroupVersion::V1 => "memory.oom_control",
        CgroupVersion::V2 => "memory.events",
    }
}

/// The value of the `oom_kill` line of a `memory.oom_control` or
/// `memory.events` file.
fn parse_oom_kills(text: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut parts = l.split_whitespace();
        (parts.next() == Some("oom_kill")).then(|| parts.next()?.parse().ok())?
    })
}

/// Writes `pid` in decimal into `buf` without allocating; returns the length.
fn format_pid(pid: i32, buf: &mut [u8; 16]) -> usize {
    let mut digits = [0u8; 16];
    let mut n = pid.unsigned_abs();
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 || len == digits.len() {
            break;
        }
    }
    for i in 0..len {
        buf[i] = digits[len - 1 - i];
    }
    len
}

/// Sends SIGKILL to each pid (the watchdog's kill; errors mean already gone).
pub fn kill_all(pids: &[i32]) {
    for &pid in pids {
        if pid > 0 {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_oom_kill_counts() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(parse_oom_kills(v1), Some(3));
        let v2 = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 1\n";
        assert_eq!(parse_oom_kills(v2), Some(1));
        assert_eq!(parse_oom_kills("oom_kill_disable 0\nunder_oom 0\n"), None);
        assert_eq!(parse_oom_kills(""), None);
    }

    #[test]
    fn formats_pids() {
        let mut buf = [0u8; 16];
        let n = format_pid(4_194_304, &mut buf);
        assert_eq!(&buf[..n], b"4194304");
        let n = format_pid(7, &mut buf);
        assert_eq!(&buf[..n], b"7");
    }
}
