//! A container's memory cgroup, as its files read after the fact.
//!
//! The cgroup keeps counters the application never sees: v2's
//! `memory.events` counts OOM kills (`oom_kill N`), `memory.max` is the limit
//! and `memory.peak` the highest usage; v1 has `memory.limit_in_bytes`,
//! `memory.max_usage_in_bytes` and (newer kernels) `oom_kill` in
//! `memory.oom_control`. Copy the directory (`/sys/fs/cgroup/...` of the
//! container) before it is removed and pass it as `--cgroup-dir`.

use std::path::Path;

use anyhow::Result;

use super::{each_line, Fact, SourceFindings, Where};
use crate::error::bad_input;
use crate::units::format_bytes;

/// v1 reports "no limit" as a number near 2^63 (rounded to the page size).
const V1_UNLIMITED: u64 = 1 << 62;

/// The files read, in order.
const FILES: [&str; 8] = [
    "memory.events",
    "memory.max",
    "memory.peak",
    "memory.current",
    "memory.limit_in_bytes",
    "memory.max_usage_in_bytes",
    "memory.oom_control",
    "memory.failcnt",
];

/// Reads the memory files of a cgroup directory (v1 or v2).
pub fn read(dir: &Path) -> Result<SourceFindings> {
    if !dir.is_dir() {
        return Err(bad_input(format!(
            "{}: --cgroup-dir expects a cgroup directory (with memory.max, memory.events, or v1's memory.limit_in_bytes)",
            dir.display()
        )));
    }
    let mut out = SourceFindings::new("cgroup", dir);
    let mut found = 0;
    for name in FILES {
        let path = dir.join(name);
        if !path.is_file() {
            continue;
        }
        found += 1;
        let mut lines: Vec<(u64, String)> = Vec::new();
        each_line(&path, name, |n, l| lines.push((n, l.to_string())))?;
        let at = |n: u64, text: &str| Where {
            path: path.display().to_string(),
            line: Some(n),
            text: text.trim().chars().take(300).collect(),
        };
        let number = |n: u64, text: &str| -> Result<u64> {
            text.trim().parse::<u64>().map_err(|_| {
                bad_input(format!(
                    "{}: line {n}: expected a number of bytes, found `{}`",
                    path.display(),
                    text.trim()
                ))
            })
        };
        out.lines += lines.len() as u64;
        match name {
            // `key value` lines.
            "memory.events" | "memory.oom_control" => {
                for (n, l) in &lines {
                    let Some((key, value)) = l.split_once(char::is_whitespace) else {
                        continue;
                    };
                    let value = number(*n, value)?;
                    out.recognized += 1;
                    let fact = |what: String| Fact {
                        what,
                        bytes: None,
                        at: at(*n, l),
                    };
                    match key {
                        "oom_kill" if value > 0 => {
                            let f = fact(format!(
                                "the cgroup's OOM killer killed {value} process(es) (oom_kill {value})"
                            ));
                            if out.kill.is_none() {
                                out.kill = Some(f);
                            } else {
                                out.facts.push(f);
                            }
                        }
                        "oom_kill" => out.facts.push(fact("no OOM kill in this cgroup (oom_kill 0)".into())),
                        "oom" => out.facts.push(fact(format!(
                            "the cgroup hit its limit with nothing left to reclaim {value} time(s) (oom {value})"
                        ))),
                        "max" => out.facts.push(fact(format!(
                            "usage reached memory.max {value} time(s) (max {value})"
                        ))),
                        "under_oom" if value > 0 => {
                            out.facts.push(fact("the cgroup is under OOM now (under_oom 1)".into()))
                        }
                        _ => out.recognized -= 1,
                    }
                }
            }
            _ => {
                let Some((n, l)) = lines.iter().find(|(_, l)| !l.trim().is_empty()) else {
                    continue;
                };
                if name == "memory.max" && l.trim() == "max" {
                    out.recognized += 1;
                    out.facts.push(Fact {
                        what: "no memory limit (memory.max is `max`)".into(),
                        bytes: None,
                        at: at(*n, l),
                    });
                    continue;
                }
                let value = number(*n, l)?;
                out.recognized += 1;
                let fact = |what: String| Fact {
                    what,
                    bytes: Some(value),
                    at: at(*n, l),
                };
                match name {
                    "memory.max" | "memory.limit_in_bytes"
                        if name == "memory.max" || value < V1_UNLIMITED =>
                    {
                        let f = fact(format!("memory limit {} ({name})", format_bytes(value)));
                        if out.limit.is_none() {
                            out.limit = Some(f);
                        } else {
                            out.facts.push(f);
                        }
                    }
                    "memory.limit_in_bytes" => out.facts.push(Fact {
                        bytes: None,
                        ..fact("no memory limit (memory.limit_in_bytes is v1's unlimited)".into())
                    }),
                    "memory.peak" | "memory.max_usage_in_bytes" => {
                        let f = fact(format!("peak usage {} ({name})", format_bytes(value)));
                        if out.peak.as_ref().is_none_or(|p| p.bytes < Some(value)) {
                            if let Some(old) = out.peak.replace(f) {
                                out.facts.push(old);
                            }
                        } else {
                            out.facts.push(f);
                        }
                    }
                    "memory.current" => out.facts.push(fact(format!(
                        "usage now {} (memory.current; after the kill, not the peak)",
                        format_bytes(value)
                    ))),
                    "memory.failcnt" => out.facts.push(Fact {
                        bytes: None,
                        ..fact(format!(
                            "usage hit the limit {value} time(s) (memory.failcnt)"
                        ))
                    }),
                    _ => {}
                }
            }
        }
    }
    if found == 0 {
        return Err(bad_input(format!(
            "{}: no cgroup memory file in it (expected one of: {})",
            dir.display(),
            FILES.join(", ")
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_v2_and_v1_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("memory.events"),
            "low 0\nhigh 0\nmax 812\noom 3\noom_kill 1\noom_group_kill 0\n",
        )
        .unwrap();
        std::fs::write(d.join("memory.max"), "161061273600\n").unwrap();
        std::fs::write(d.join("memory.peak"), "161061261312\n").unwrap();
        let f = read(d).unwrap();
        let kill = f.kill.unwrap();
        assert_eq!(kill.at.line, Some(5));
        assert!(kill.at.path.ends_with("memory.events"));
        assert_eq!(f.limit.unwrap().bytes, Some(161_061_273_600));
        assert_eq!(f.peak.unwrap().bytes, Some(161_061_261_312));

        let v1 = tempfile::tempdir().unwrap();
        let d = v1.path();
        std::fs::write(d.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        std::fs::write(d.join("memory.max_usage_in_bytes"), "1024\n").unwrap();
        std::fs::write(
            d.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
        )
        .unwrap();
        let f = read(d).unwrap();
        assert!(f.kill.is_none() && f.limit.is_none());
        assert_eq!(f.peak.unwrap().bytes, Some(1024));

        // Bad content names the file and line; an empty directory says what it wanted.
        std::fs::write(d.join("memory.max_usage_in_bytes"), "lots\n").unwrap();
        let e = read(d).unwrap_err().to_string();
        assert!(e.contains("memory.max_usage_in_bytes: line 1"), "{e}");
        let empty = tempfile::tempdir().unwrap();
        assert!(read(empty.path())
            .unwrap_err()
            .to_string()
            .contains("no cgroup memory file"));
    }
}
