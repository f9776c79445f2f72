//! Reading `/proc` for one process: its RSS through a `statm` kept open
//! (`pread`, no allocation), the memory lines of `status`, identity and
//! parent from `stat`, the command line, and resetting `VmHWM`. The tree
//! sampler and the child's stage marks read a process only through here.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// Reads a file kept open from its start into `buf` (`pread`: the kernel
/// regenerates a `/proc` or cgroup file on each read at offset 0).
pub(super) fn read_at<'b>(file: &File, buf: &'b mut [u8]) -> std::io::Result<&'b [u8]> {
    let n = file.read_at(buf, 0)?;
    Ok(&buf[..n])
}

/// The `n`th whitespace-separated field of `text` as a number.
pub(super) fn field_u64(text: &[u8], n: usize) -> Option<u64> {
    let word = text
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .nth(n)?;
    std::str::from_utf8(word).ok()?.parse().ok()
}

/// The kB figure of the line `name` (`VmHWM:`, `Pss:`) of a `status` or
/// `smaps_rollup` text, in bytes.
pub(super) fn kib_field(text: &[u8], name: &[u8]) -> Option<u64> {
    let at = text.windows(name.len()).position(|w| w == name)?;
    let line = text[at + name.len()..].split(|b| *b == b'\n').next()?;
    field_u64(line, 0).map(|kib| kib * 1024)
}

/// `/proc/<pid>/statm` kept open for sampling one process without allocating.
#[derive(Debug)]
pub(super) struct Statm {
    file: File,
    page: u64,
}

impl Statm {
    pub(super) fn open(pid: i32) -> Option<Self> {
        Some(Self {
            file: File::open(format!("/proc/{pid}/statm")).ok()?,
            page: page_size(),
        })
    }

    /// The RSS in bytes; `Ok(None)` for a process without memory (a zombie),
    /// `Err` once it was reaped.
    pub(super) fn rss(&self) -> std::io::Result<Option<u64>> {
        let mut buf = [0u8; 128];
        let text = read_at(&self.file, &mut buf)?;
        let size = field_u64(text, 0).unwrap_or(0);
        let resident = field_u64(text, 1).unwrap_or(0);
        Ok((size > 0).then_some(resident * self.page))
    }
}

/// Reads the resident set size of `pid` in bytes (`None` once it is gone).
pub fn rss_of(pid: i32) -> Option<u64> {
    Statm::open(pid)?.rss().ok()?
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as u64
    } else {
        4096
    }
}

/// `(VmRSS, VmHWM)` of a live process in bytes; `None` once it exited (a
/// zombie has no memory left to report) or when it cannot be read.
pub fn rss_and_hwm_of(pid: i32) -> Option<(u64, u64)> {
    let status = std::fs::read(format!("/proc/{pid}/status")).ok()?;
    Some((
        kib_field(&status, b"VmRSS:")?,
        kib_field(&status, b"VmHWM:")?,
    ))
}

/// The memory lines of a process's `/proc/<pid>/status`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusMemory {
    /// `VmRSS`: resident now.
    pub rss: u64,
    /// `VmHWM`: the most resident since the process started or its last reset.
    pub hwm: u64,
    /// `RssAnon`: heap and anonymous mappings, no file pages (0 before Linux 4.5).
    pub rss_anon: u64,
}

/// Reads the memory lines of `/proc/<pid>/status`: the one reader of that
/// file, for the tree sampler (every process, every tick) and the child's
/// stage marks. By hand, because procfs' `Status` parses all ~55 lines into
/// owned strings first and costs about twice as much. `None` once the
/// process exited (a zombie has no memory left to report) or when it cannot
/// be read.
pub fn status_memory(pid: i32) -> Option<StatusMemory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let (mut rss, mut hwm, mut rss_anon) = (None, None, None);
    for line in status.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let slot = match name {
            "VmRSS" => &mut rss,
            "VmHWM" => &mut hwm,
            "RssAnon" => &mut rss_anon,
            _ => continue,
        };
        let kib = value
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok());
        *slot = Some(kib? * 1024);
        if rss.is_some() && hwm.is_some() && rss_anon.is_some() {
            break;
        }
    }
    Some(StatusMemory {
        rss: rss?,
        hwm: hwm?,
        rss_anon: rss_anon.unwrap_or(0),
    })
}

/// Resets a process's `VmHWM` to its current RSS (`echo 5 > /proc/<pid>/clear_refs`).
///
/// Returns false when the kernel refused (process gone, or not ours to reset).
pub fn reset_hwm_of(pid: i32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Identity and parent of a process, from `/proc/<pid>/stat`.
#[derive(Debug, Clone)]
pub(super) struct StatLine {
    pub(super) ppid: i32,
    /// Start time in clock ticks since boot: tells a reused pid from the old one.
    pub(super) start_ticks: u64,
    pub(super) zombie: bool,
}

pub(super) fn stat_of(pid: i32) -> Option<StatLine> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(StatLine {
        zombie: matches!(fields.first(), Some(&"Z") | Some(&"X")),
        ppid: fields.get(1)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

/// The command line of a process, as one readable string (at most 200 chars).
pub(super) fn command_of(pid: i32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let text: String = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let text = if text.is_empty() {
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| format!("[{}]", c.trim()))
            .unwrap_or_default()
    } else {
        text
    };
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fields_are_read_without_allocating() {
        let status = b"Name:\tpython3\nVmPeak:\t  9000 kB\nVmHWM:\t  538124 kB\nVmRSS:\t 12 kB\n";
        assert_eq!(kib_field(status, b"VmHWM:"), Some(538_124 * 1024));
        assert_eq!(kib_field(status, b"VmRSS:"), Some(12 * 1024));
        assert_eq!(kib_field(status, b"VmSwap:"), None);
        let rollup = b"55d0-7ff [rollup]\nRss:  100 kB\nPss:  40 kB\nPss_Anon:  30 kB\n";
        assert_eq!(kib_field(rollup, b"\nPss:"), Some(40 * 1024));
        assert_eq!(field_u64(b"1234 567 89 0\n", 1), Some(567));
        assert_eq!(field_u64(b"", 0), None);
    }
}
