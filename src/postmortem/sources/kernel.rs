//! The kernel's OOM report, from `dmesg` or `journalctl -k` output.
//!
//! When a cgroup (a container) or the host runs out of memory the kernel
//! writes a report: who invoked the OOM killer, the cgroup's usage and limit
//! (`memory: usage 157286400kB, limit 157286400kB, failcnt ...`), the
//! constraint (`oom-kill:constraint=CONSTRAINT_MEMCG,...,task=python3,pid=...`:
//! a cgroup's limit, not the host's memory) and the kill itself
//! (`Memory cgroup out of memory: Killed process 1234 (python3) total-vm:...kB,
//! anon-rss:...kB, file-rss:...kB, shmem-rss:...kB`). Those say, better than
//! any application log, that the death was an OOM kill, at what limit, and
//! how much the process held when it died.

use std::path::Path;

use anyhow::Result;

use super::{each_line, kb, Fact, SourceFindings};
use crate::units::format_bytes;

/// Reads a kernel log (any prefix: `[12345.678]`, `Dec 25 08:19:29 host kernel:`).
pub fn read(path: &Path) -> Result<SourceFindings> {
    let mut out = SourceFindings::new("kernel log", path);
    each_line(path, "kernel log", |n, line| {
        out.lines += 1;
        if let Some(f) = recognize(&out, n, line) {
            out.recognized += 1;
            match f {
                Line::Kill(f) => {
                    if out.kill.is_none() {
                        out.kill = Some(f);
                    } else {
                        out.facts.push(f);
                    }
                }
                Line::Limit(limit, usage) => {
                    if out.limit.is_none() {
                        out.limit = Some(limit);
                    }
                    out.facts.push(usage);
                }
                Line::Other(f) => out.facts.push(f),
            }
        }
    })?;
    // The largest resident size at a kill is the highest memory it recorded.
    out.peak = out
        .all_facts()
        .filter(|f| f.what.starts_with("killed"))
        .filter_map(|f| f.bytes.map(|b| (b, f)))
        .max_by_key(|(b, _)| *b)
        .map(|(b, f)| Fact {
            what: format!("resident memory of the killed process: {}", format_bytes(b)),
            bytes: Some(b),
            at: f.at.clone(),
        });
    Ok(out)
}

enum Line {
    Kill(Fact),
    Limit(Fact, Fact),
    Other(Fact),
}

/// `key:NkB` in a kill line.
fn field_kb(line: &str, key: &str) -> Option<u64> {
    let start = line.find(key)? + key.len();
    let rest = &line[start..];
    let end = rest.find([',', ' ']).unwrap_or(rest.len());
    kb(&rest[..end])
}

fn recognize(out: &SourceFindings, n: u64, line: &str) -> Option<Line> {
    let at = || out.at(Some(n), line);
    if let Some(i) = line.find("Killed process ") {
        // `Killed process 1234 (python3) total-vm:...kB, anon-rss:...kB, ...`
        let rest = &line[i + "Killed process ".len()..];
        let pid = rest.split_whitespace().next().unwrap_or("?");
        let name = rest
            .find('(')
            .and_then(|a| rest[a + 1..].find(')').map(|b| &rest[a + 1..a + 1 + b]))
            .unwrap_or("?");
        let rss: u64 = ["anon-rss:", "file-rss:", "shmem-rss:"]
            .iter()
            .filter_map(|k| field_kb(rest, k))
            .sum();
        let scope = if line.contains("Memory cgroup out of memory") {
            "a memory cgroup's limit (a container)"
        } else {
            "the machine's memory"
        };
        return Some(Line::Kill(Fact {
            what: format!(
                "killed by the kernel's OOM killer for {scope}: process {pid} ({name}), resident {}",
                format_bytes(rss)
            ),
            bytes: (rss > 0).then_some(rss),
            at: at(),
        }));
    }
    if let Some(i) = line.find("oom-kill:") {
        let fields: Vec<(&str, &str)> = line[i + "oom-kill:".len()..]
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let get = |k: &str| fields.iter().find(|(a, _)| *a == k).map(|(_, v)| v.trim());
        let constraint = get("constraint").unwrap_or("?");
        let meaning = match constraint {
            "CONSTRAINT_MEMCG" => "a cgroup's limit was reached, not the host's memory",
            "CONSTRAINT_NONE" => "the whole machine ran out of memory",
            _ => "see the kernel's documentation",
        };
        return Some(Line::Other(Fact {
            what: format!(
                "OOM kill constraint {constraint} ({meaning}); task {} pid {}{}",
                get("task").unwrap_or("?"),
                get("pid").unwrap_or("?"),
                get("oom_memcg")
                    .map(|m| format!(", cgroup {m}"))
                    .unwrap_or_default()
            ),
            bytes: None,
            at: at(),
        }));
    }
    if let Some(i) = line.find("memory: usage ") {
        // `memory: usage 157286400kB, limit 157286400kB, failcnt 0` (not `memory+swap:`).
        let rest = &line[i + "memory: usage ".len()..];
        let usage = rest.split(',').next().and_then(kb)?;
        let limit = rest
            .split(", ")
            .find_map(|p| p.strip_prefix("limit "))
            .and_then(kb)?;
        return Some(Line::Limit(
            Fact {
                what: format!("cgroup memory limit {}", format_bytes(limit)),
                bytes: Some(limit),
                at: at(),
            },
            Fact {
                what: format!("cgroup memory usage at the OOM: {}", format_bytes(usage)),
                bytes: Some(usage),
                at: at(),
            },
        ));
    }
    if line.contains("invoked oom-killer") {
        let who = line
            .split("invoked oom-killer")
            .next()
            .and_then(|s| s.split_whitespace().last())
            .unwrap_or("?");
        return Some(Line::Other(Fact {
            what: format!("{who} invoked the OOM killer"),
            bytes: None,
            at: at(),
        }));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_cgroup_oom_report() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kern.log");
        std::fs::write(
            &path,
            "[ 1.0] eth0: link up\n\
             [812.1] python3 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0\n\
             [812.2] memory: usage 146484375kB, limit 146484375kB, failcnt 9\n\
             [812.2] memory+swap: usage 146484375kB, limit 9007199254740988kB, failcnt 0\n\
             [812.3] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=docker-1.scope,mems_allowed=0,oom_memcg=/docker/1,task_memcg=/docker/1,task=python3,pid=4242,uid=0\n\
             [812.3] Memory cgroup out of memory: Killed process 4242 (python3) total-vm:162000000kB, anon-rss:146000000kB, file-rss:4000kB, shmem-rss:0kB, UID:0 pgtables:300000kB oom_score_adj:0\n",
        )
        .unwrap();
        let f = read(&path).unwrap();
        let kill = f.kill.as_ref().unwrap();
        assert_eq!(kill.at.line, Some(6));
        assert!(
            kill.what.contains("process 4242 (python3)"),
            "{}",
            kill.what
        );
        assert!(kill.what.contains("memory cgroup"), "{}", kill.what);
        assert_eq!(kill.bytes, Some(146_004_000 * 1024));
        let limit = f.limit.as_ref().unwrap();
        assert_eq!(limit.bytes, Some(146_484_375 * 1024));
        assert_eq!(limit.at.line, Some(3));
        assert_eq!(f.peak.as_ref().unwrap().bytes, Some(146_004_000 * 1024));
        assert!(f
            .facts
            .iter()
            .any(|x| x.what.contains("CONSTRAINT_MEMCG") && x.at.line == Some(5)));
        assert_eq!((f.lines, f.recognized), (6, 4));
    }
}
