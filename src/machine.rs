//! Facts about the machine a report was measured on.
//!
//! Peaks depend on the machine (allocator, page size, kernel), so every report
//! says where it came from; the memory a pipeline can really use is the
//! container's limit when there is one, not the host's RAM.

use procfs::ProcessCGroup;
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

/// This process's cgroups (`/proc/self/cgroup`, parsed by procfs): the one
/// reader of that file, for the limit oomlab itself runs under and for the
/// child cgroups `--memory-limit` makes. Read once per run, so procfs'
/// few microseconds over a hand parser do not matter.
pub fn own_cgroups() -> Result<Vec<ProcessCGroup>, String> {
    procfs::process::Process::myself()
        .and_then(|p| p.cgroups())
        .map(|c| c.0)
        .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))
}

/// Whether a cgroup line is the v2 (unified) hierarchy's.
fn is_v2(cg: &ProcessCGroup) -> bool {
    cg.hierarchy == 0 && cg.controllers.is_empty()
}

/// The path (without a trailing `/`) of this process's cgroup in the v2
/// hierarchy (`controller` `None`) or in the v1 hierarchy `controller` is
/// bound to: where a child cgroup is made.
pub fn own_cgroup_path(cgroups: &[ProcessCGroup], controller: Option<&str>) -> Option<String> {
    cgroups.iter().find_map(|cg| {
        let hit = match controller {
            None => is_v2(cg),
            Some(c) => cg.controllers.iter().any(|x| x == c),
        };
        hit.then(|| cg.pathname.trim_end_matches('/').to_string())
    })
}

/// The memory limit of this process's cgroup (v2 `memory.max`, v1
/// `memory.limit_in_bytes`), or `None` when unlimited or unknown.
pub fn cgroup_memory_limit() -> Option<u64> {
    let mut candidates = Vec::new();
    for cg in own_cgroups().ok()? {
        let path = &cg.pathname;
        if is_v2(&cg) {
            candidates.push(format!("/sys/fs/cgroup{path}/memory.max"));
            candidates.push(format!("/sys/fs/cgroup/unified{path}/memory.max"));
        } else if cg.controllers.iter().any(|c| c == "memory") {
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
    fn finds_own_cgroup_paths() {
        use procfs::{FromBufRead, ProcessCGroups};
        let parse = |text: &str| ProcessCGroups::from_buf_read(text.as_bytes()).unwrap().0;
        let both = parse("4:memory:/a/b\n0::/user.slice/x\n");
        assert_eq!(
            own_cgroup_path(&both, Some("memory")).as_deref(),
            Some("/a/b")
        );
        assert_eq!(
            own_cgroup_path(&both, None).as_deref(),
            Some("/user.slice/x")
        );
        assert_eq!(own_cgroup_path(&parse("0::/\n"), None).as_deref(), Some(""));
        assert_eq!(own_cgroup_path(&parse(""), None), None);
        let v1 = parse("5:cpu,cpuacct:/c\n3:memory,hugetlb:/m/\n");
        assert_eq!(own_cgroup_path(&v1, Some("memory")).as_deref(), Some("/m"));
        assert_eq!(own_cgroup_path(&v1, None), None);
    }

    #[test]
    fn limit_parsing() {
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712\n"), None);
        assert_eq!(parse_limit("2147483648\n"), Some(2 << 30));
    }
}
