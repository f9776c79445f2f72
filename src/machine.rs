//! Facts about the machine a report was measured on.
//!
//! Peaks depend on the machine (allocator, page size, kernel), so every report
//! says where it came from; the memory a pipeline can really use is the
//! container's limit when there is one, not the host's RAM.

use serde::{Deserialize, Serialize};

/// What a reader of a report needs to know about the machine that produced it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MachineFacts {
    pub total_memory_bytes: u64,
    pub available_memory_bytes: u64,
    pub cpus: usize,
    pub kernel: String,
    pub os: String,
    /// Memory limit of the cgroup oomlab runs in, when one is set.
    #[serde(default)]
    pub cgroup_memory_limit_bytes: Option<u64>,
}

impl MachineFacts {
    /// Reads the facts now (sysinfo + cgroup files).
    pub fn collect() -> Self {
        let mut sys = sysinfo::System::new();
        sys.refresh_memory();
        Self {
            total_memory_bytes: sys.total_memory(),
            available_memory_bytes: sys.available_memory(),
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            kernel: sysinfo::System::kernel_version().unwrap_or_default(),
            os: sysinfo::System::long_os_version().unwrap_or_default(),
            cgroup_memory_limit_bytes: cgroup_memory_limit(),
        }
    }
}

/// The memory limit of this process's cgroup (v2 `memory.max`, v1
/// `memory.limit_in_bytes`), or `None` when unlimited or unknown.
pub fn cgroup_memory_limit() -> Option<u64> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mut candidates = Vec::new();
    for line in cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        if id == "0" && controllers.is_empty() {
            candidates.push(format!("/sys/fs/cgroup{path}/memory.max"));
            candidates.push(format!("/sys/fs/cgroup/unified{path}/memory.max"));
        } else if controllers.split(',').any(|c| c == "memory") {
            candidates.push(format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes"));
            candidates.push("/sys/fs/cgroup/memory/memory.limit_in_bytes".to_string());
        }
    }
    candidates
        .into_iter()
        .find_map(|p| parse_limit(&std::fs::read_to_string(p).ok()?))
}

/// Parses a cgroup limit file; "max" and the v1 "unlimited" sentinel mean none.
fn parse_limit(text: &str) -> Option<u64> {
    let v: u64 = text.trim().parse().ok()?;
    // cgroup v1 reports "unlimited" as a huge page-aligned number.
    (v < (1u64 << 60)).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_parsing() {
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712\n"), None);
        assert_eq!(parse_limit("2147483648\n"), Some(2 << 30));
    }
}
