//! Recognizing the pipeline's log lines, one line at a time.
//!
//! The lines are those of the write-up (`oom-fix-v2.md`) and of what kills a
//! process in a container, found anywhere in a line so that any prefix works
//! (`docker-compose` service names, Airflow's `[time] {file.py:12} INFO - `,
//! Python logging's `time - name - INFO - `). Matching is by phrase, case-
//! insensitive, with numbers parsed leniently (`8532146`, `8,532,146`). Nothing
//! here can panic on any input: every index is checked, every number parsed
//! with a fallback.
//!
//! The same classifier names the stages `record` cuts from a command's log, so
//! a recorded pandas run and a replay speak of the same stages.

use serde::{Deserialize, Serialize};

use crate::clock::unix_seconds;
use crate::units::parse_size;

/// One recognized line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum LogEvent {
    /// `Ranking samples: N rows before optimization`
    RankingSamples { rows: u64 },
    /// `Sampling ranking data: A -> B rows (set MAX_RANKING_SAMPLES=0 to disable)`
    Sampling { from: u64, to: u64 },
    /// `Ranking samples optimized: N rows`
    SamplesOptimized { rows: u64 },
    /// `Preparing ranking data (samples: N rows, datasets: M)`
    Preparing { samples: u64, datasets: Option<u64> },
    /// `Merging with dataset features (K columns)...`
    MergeDatasetFeatures { columns: u64 },
    /// `Merging with user features (K columns)...`
    MergeUserFeatures { columns: u64 },
    /// `Optimizing enriched DataFrame memory usage...`
    OptimizingMemory,
    /// `Memory optimization: X MB -> Y MB (Z% reduction)`
    MemoryOptimization {
        before_mb: f64,
        after_mb: f64,
        reduction_pct: Option<f64>,
    },
    /// `Ranking data prepared: N rows, F features`
    Prepared { rows: u64, features: Option<u64> },
    /// `MAX_RANKING_SAMPLES=N` printed somewhere (an `.env` dump, a settings line).
    MaxRankingSamples { value: u64 },
    /// A kill: exit code -9, `Killed`, the kernel's OOM killer, exit 137.
    Kill { kind: KillKind, text: String },
    /// The header of `docker stats` (`CONTAINER ID  NAME  CPU %  MEM USAGE / LIMIT ...`).
    StatsHeader,
    /// One `docker stats` row.
    Stats(StatsRow),
}

/// How a line says the process was killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KillKind {
    /// An exit code or status of -9 / SIGKILL / 137 (128 + 9).
    Sigkill,
    /// The kernel's OOM killer (`Out of memory: Killed process`, `oom-kill`, `OOMKilled`).
    OomKiller,
    /// A bare `Killed` (what a shell prints for a SIGKILLed job).
    Killed,
    /// Python's `MemoryError` (the process failed to allocate; not a kill).
    MemoryError,
}

/// A `docker stats` row: memory use against the container's limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsRow {
    pub name: String,
    pub usage_bytes: u64,
    pub limit_bytes: u64,
    pub mem_pct: Option<f64>,
}

impl LogEvent {
    /// The pipeline stage a line opens (the step the pipeline is in after it),
    /// in the replay's stage vocabulary where the two overlap.
    pub fn stage(&self) -> Option<&'static str> {
        Some(match self {
            LogEvent::RankingSamples { .. } => "optimize_samples",
            LogEvent::Sampling { .. } => "sample",
            LogEvent::SamplesOptimized { .. } => "samples_ready",
            LogEvent::Preparing { .. } => "prepare",
            LogEvent::MergeDatasetFeatures { .. } => "merge_dataset_profile",
            LogEvent::MergeUserFeatures { .. } => "merge_user_features",
            LogEvent::OptimizingMemory => "downcast",
            LogEvent::MemoryOptimization { .. } => "downcast_done",
            LogEvent::Prepared { .. } => "prepared",
            _ => return None,
        })
    }

    /// A short human label for timelines.
    pub fn describe(&self) -> String {
        match self {
            LogEvent::RankingSamples { rows } => format!("ranking samples loaded: {rows} rows"),
            LogEvent::Sampling { from, to } => format!("sampling {from} -> {to} rows"),
            LogEvent::SamplesOptimized { rows } => format!("samples optimized: {rows} rows"),
            LogEvent::Preparing { samples, datasets } => match datasets {
                Some(d) => format!("preparing: {samples} samples, {d} datasets"),
                None => format!("preparing: {samples} samples"),
            },
            LogEvent::MergeDatasetFeatures { columns } => {
                format!("merging dataset features ({columns} columns)")
            }
            LogEvent::MergeUserFeatures { columns } => {
                format!("merging user features ({columns} columns)")
            }
            LogEvent::OptimizingMemory => "optimizing memory".into(),
            LogEvent::MemoryOptimization {
                before_mb,
                after_mb,
                ..
            } => format!("memory optimization {before_mb:.2} MB -> {after_mb:.2} MB"),
            LogEvent::Prepared { rows, features } => match features {
                Some(f) => format!("prepared: {rows} rows, {f} features"),
                None => format!("prepared: {rows} rows"),
            },
            LogEvent::MaxRankingSamples { value } => format!("MAX_RANKING_SAMPLES={value}"),
            LogEvent::Kill { kind, .. } => format!("killed ({kind:?})"),
            LogEvent::StatsHeader => "docker stats header".into(),
            LogEvent::Stats(r) => {
                format!("docker stats {} / {} bytes", r.usage_bytes, r.limit_bytes)
            }
        }
    }
}

/// Pieces, lowercase, one of which every line [`classify`] recognizes holds
/// (`docker stats` rows aside, see [`size_before_slash`]): a scan looks for
/// these first and classifies only the lines that have one, so a log of noise
/// is read at the speed of a literal search. Few, and each with rare first
/// bytes, on purpose: the search (Teddy) keeps 8 buckets of patterns and
/// checks each place where a bucket's first three bytes may start, so a
/// ninth pattern shares a bucket and every common three letters it lets in
/// costs a check. One piece stands for several phrases (`mem` for every
/// memory phrase, `kill` for every kill word), and the two bucket mates are
/// chosen to let in little together: the first and the ninth (` -9`, `l 9`:
/// `[ ,l`][- ]9`), the second and the similarity step's word appended after
/// these (`mem`, `sim`: `[scm}][ie]m`). The order only changes the speed
/// (aho-corasick fills the buckets by pattern number); a test checks that
/// every phrase holds one, and a property test that no recognized line
/// lacks them.
pub const NEEDLES: &[&str] = &[
    // `status -9`, and the `exit code -9`, `return code -9`, `exit status
    // -9`, `returncode: -9` kills; a space then `-9` is rare in noise.
    " -9",
    // `optimizing enriched dataframe memory`, `memory optimization`, `out of
    // memory`, `memoryerror`, the `docker stats` header's `mem usage`.
    "mem",
    // The pipeline's lines: `ranking samples`, `sampling ranking data`,
    // `preparing ranking data`, `ranking data prepared`, `max_ranking_samples`.
    "ranking",
    "merging with",
    // Kills: each of OOM_KILLER and SIGKILL, and a shell's `Killed`, holds one.
    "kill",
    "exit",
    "return",
    "oom",
    // `signal 9`.
    "l 9",
];

/// True when the `/` at byte `slash` of `text` follows a size unit (`GiB /`,
/// `MB/`): the last non-blank character before it on its line is a `b`. Every
/// `docker stats` row [`parse_stats_row`] reads has such a slash.
pub fn size_before_slash(text: &str, slash: usize) -> bool {
    let Some(head) = text.get(..slash) else {
        return true;
    };
    head.chars()
        .rev()
        .find(|c| *c == '\n' || !c.is_whitespace())
        .is_some_and(|c| c.eq_ignore_ascii_case(&'b'))
}

/// Classifies one line; `None` when it is none of the known lines.
pub fn classify(line: &str) -> Option<LogEvent> {
    let lower = line.to_ascii_lowercase();
    // ASCII lowercasing keeps byte offsets, so positions found in `lower` are
    // valid in `line` too.
    pipeline_event(&lower)
        .or_else(|| kill_event(line, &lower))
        .or_else(|| stats_event(line, &lower))
}

/// The text after `phrase` in `lower`, if the phrase occurs.
fn after<'a>(lower: &'a str, phrase: &str) -> Option<&'a str> {
    let at = lower.find(phrase)?;
    lower.get(at + phrase.len()..)
}

/// The first whole number in `text` (digits with `,` or `_` separators).
fn first_number(text: &str) -> Option<(u64, &str)> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let rest = &text[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == ',' || c == '_'))
        .unwrap_or(rest.len());
    let digits: String = rest[..end].chars().filter(|c| c.is_ascii_digit()).collect();
    let value = digits.parse().ok()?;
    Some((value, &rest[end..]))
}

/// The first decimal number in `text` (`3456.78`).
fn first_decimal(text: &str) -> Option<(f64, &str)> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let rest = &text[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .unwrap_or(rest.len());
    let value = rest[..end].replace(',', "").parse().ok()?;
    Some((value, &rest[end..]))
}

fn pipeline_event(lower: &str) -> Option<LogEvent> {
    if let Some(rest) = after(lower, "ranking samples optimized:") {
        return Some(LogEvent::SamplesOptimized {
            rows: first_number(rest)?.0,
        });
    }
    if let Some(rest) = after(lower, "ranking samples:") {
        let (rows, tail) = first_number(rest)?;
        if tail.trim_start().starts_with("row") {
            return Some(LogEvent::RankingSamples { rows });
        }
    }
    if let Some(rest) = after(lower, "sampling ranking data:") {
        let (from, tail) = first_number(rest)?;
        let tail = tail.trim_start().strip_prefix("->")?;
        let (to, _) = first_number(tail)?;
        return Some(LogEvent::Sampling { from, to });
    }
    if let Some(rest) = after(lower, "preparing ranking data") {
        let (samples, _) = first_number(after(rest, "samples:")?)?;
        let datasets = after(rest, "datasets:")
            .and_then(first_number)
            .map(|(d, _)| d);
        return Some(LogEvent::Preparing { samples, datasets });
    }
    if let Some(rest) = after(lower, "merging with dataset features") {
        return Some(LogEvent::MergeDatasetFeatures {
            columns: first_number(rest)?.0,
        });
    }
    if let Some(rest) = after(lower, "merging with user features") {
        return Some(LogEvent::MergeUserFeatures {
            columns: first_number(rest)?.0,
        });
    }
    if lower.contains("optimizing enriched dataframe memory") {
        return Some(LogEvent::OptimizingMemory);
    }
    if let Some(rest) = after(lower, "memory optimization:") {
        let (before_mb, tail) = first_decimal(rest)?;
        let tail = after(tail, "->")?;
        let (after_mb, tail) = first_decimal(tail)?;
        let reduction_pct = tail
            .find('(')
            .and_then(|i| first_decimal(&tail[i..]))
            .map(|(v, _)| v);
        return Some(LogEvent::MemoryOptimization {
            before_mb,
            after_mb,
            reduction_pct,
        });
    }
    if let Some(rest) = after(lower, "ranking data prepared:") {
        let (rows, tail) = first_number(rest)?;
        let features = after(tail, ",")
            .and_then(first_number)
            .filter(|(_, t)| t.trim_start().starts_with("feature"))
            .map(|(f, _)| f);
        return Some(LogEvent::Prepared { rows, features });
    }
    if let Some(rest) = after(lower, "max_ranking_samples") {
        let rest = rest.trim_start();
        let rest = rest
            .strip_prefix('=')
            .or_else(|| rest.strip_prefix(':'))?
            .trim_start()
            .trim_start_matches(['"', '\'']);
        if rest.starts_with(|c: char| c.is_ascii_digit()) {
            return Some(LogEvent::MaxRankingSamples {
                value: first_number(rest)?.0,
            });
        }
    }
    None
}

/// True when `word` occurs in `lower` as a whole word.
fn has_word(lower: &str, word: &str) -> bool {
    let bytes = lower.as_bytes();
    let mut from = 0;
    while let Some(i) = lower.get(from..).and_then(|s| s.find(word)) {
        let at = from + i;
        let end = at + word.len();
        let before = at == 0 || !bytes[at - 1].is_ascii_alphanumeric();
        let after = end >= bytes.len() || !bytes[end].is_ascii_alphanumeric();
        if before && after {
            return true;
        }
        from = at + 1;
    }
    false
}

/// A shell's report of a SIGKILLed job: `Killed` alone (or ending the line,
/// after a prefix such as a timestamp or `python3 x.py:`), or a job line
/// `... 4242 Killed    python3 x.py`. Capitalised, as shells print it; a
/// sentence that only mentions killing (`3 stale workers killed`, `killed by
/// the user`) is not a kill of this process.
fn shell_killed(line: &str) -> bool {
    let t = line.trim_end();
    if t.trim_start() == "Killed" {
        return true;
    }
    if let Some(head) = t.strip_suffix("Killed") {
        if head.ends_with([' ', ':', '\t']) {
            return true;
        }
    }
    let words: Vec<&str> = t.split_whitespace().take(64).collect();
    words.windows(2).any(|w| {
        w[1] == "Killed"
            && w[0]
                .trim_end_matches(':')
                .chars()
                .all(|c| c.is_ascii_digit())
            && !w[0].is_empty()
    })
}

/// What the kernel's OOM killer writes (lowercase).
const OOM_KILLER: &[&str] = &[
    "out of memory: kill",
    "memory cgroup out of memory",
    "oom-kill",
    "oom_kill",
    "oomkilled",
    "oom killer",
    "invoked oom-killer",
];

/// Exit codes and statuses of a SIGKILLed process (lowercase).
const SIGKILL: &[&str] = &[
    "exit code -9",
    "exit code: -9",
    "exit code=-9",
    "exitcode=-9",
    "exit_code=-9",
    "return code -9",
    "returncode=-9",
    "returncode: -9",
    "exit status -9",
    "status -9",
    "negsignal.sigkill",
    "signal 9",
    // Said of the process (`terminated by signal SIGKILL`, `killed by
    // SIGKILL`, Airflow's `Task received SIGKILL`, structlog's
    // `signal_sent=SIGKILL`); a line that only names the signal (`Sending
    // SIGKILL to worker 12`) is not a kill of this process.
    "signal sigkill",
    "by sigkill",
    "received sigkill",
    "signal_sent=sigkill",
    "\"signal_sent\":\"sigkill\"",
    "\"signal_name\":\"sigkill\"",
    "exited with code 137",
    "exit code 137",
    "exit code: 137",
    "exit status 137",
    "exitcode=137",
    // Airflow 3's structured (JSON) task logs: `"exit_code":-9`.
    "\"exit_code\":-9",
    "\"exit_code\": -9",
    "\"exit_code\":137",
    "\"exit_code\": 137",
];

fn kill_event(line: &str, lower: &str) -> Option<LogEvent> {
    let text = line.trim().chars().take(500).collect::<String>();
    let kind = if OOM_KILLER.iter().any(|p| lower.contains(p)) {
        KillKind::OomKiller
    } else if SIGKILL.iter().any(|p| lower.contains(p)) {
        KillKind::Sigkill
    } else if shell_killed(line) {
        KillKind::Killed
    } else if lower.contains("memoryerror") || has_word(lower, "oom") {
        if lower.contains("memoryerror") {
            KillKind::MemoryError
        } else {
            KillKind::OomKiller
        }
    } else {
        return None;
    };
    Some(LogEvent::Kill { kind, text })
}

fn stats_event(line: &str, lower: &str) -> Option<LogEvent> {
    if lower.contains("mem usage") && lower.contains("limit") {
        return Some(LogEvent::StatsHeader);
    }
    parse_stats_row(line).map(LogEvent::Stats)
}

/// Parses a `docker stats` row: the first `USAGE / LIMIT` pair of sizes, with
/// the container's name before it and `MEM %` after it when present.
pub fn parse_stats_row(line: &str) -> Option<StatsRow> {
    // Rows use runs of spaces; `--format` tables may use tabs.
    let tokens: Vec<&str> = line.split_whitespace().take(64).collect();
    for i in 0..tokens.len() {
        // `142.3GiB / 150GiB` (three tokens) or `142.3GiB/150GiB` (one).
        let (usage, limit, next) = if tokens.get(i + 1) == Some(&"/") {
            (tokens[i], *tokens.get(i + 2)?, i + 3)
        } else if let Some((a, b)) = tokens[i].split_once('/') {
            (a, b, i + 1)
        } else {
            continue;
        };
        let (Some(usage), Some(limit)) = (stats_size(usage), stats_size(limit)) else {
            continue;
        };
        let mem_pct = tokens
            .get(next)
            .and_then(|t| t.strip_suffix('%'))
            .and_then(|t| t.parse::<f64>().ok())
            .filter(|p| p.is_finite());
        // The name: the token before `CPU %` (which ends in `%`), or the one before the sizes.
        let before: Vec<&str> = tokens[..i].to_vec();
        let name = match before.last() {
            Some(t) if t.ends_with('%') => before.get(before.len().wrapping_sub(2)).copied(),
            other => other.copied(),
        }
        .unwrap_or("")
        .trim_end_matches(['|', ':'])
        .to_string();
        return Some(StatsRow {
            name,
            usage_bytes: usage,
            limit_bytes: limit,
            mem_pct,
        });
    }
    None
}

/// A size as `docker stats` prints it: a number with a unit (`1.5GiB`, `800MB`, `0B`).
fn stats_size(token: &str) -> Option<u64> {
    let t = token.trim();
    let first = t.chars().next()?;
    let last = t.chars().last()?;
    if !first.is_ascii_digit() || !last.is_ascii_alphabetic() || !last.eq_ignore_ascii_case(&'b') {
        return None;
    }
    if t.eq_ignore_ascii_case("0b") {
        return Some(0);
    }
    parse_size(t).ok()
}

/// Seconds since the Unix epoch of the first timestamp in a line, if any:
/// `2025-12-25 08:19:29`, `2025-12-25T08:19:29.123Z`, Airflow's
/// `[2025-12-25, 08:19:29 UTC]`, or `date`'s `Thu Dec 25 08:19:29 UTC 2025`.
/// Times are taken as UTC (time zones other than UTC/Z are not applied).
pub fn find_timestamp(line: &str) -> Option<f64> {
    let b = line.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(|c| c.is_ascii_digit());
    let num = |from: usize, len: usize| -> Option<i64> { line.get(from..from + len)?.parse().ok() };
    let limit = b.len().min(400);
    for i in 0..limit {
        // YYYY-MM-DD
        if !(digit(i)
            && digit(i + 1)
            && digit(i + 2)
            && digit(i + 3)
            && b.get(i + 4) == Some(&b'-'))
        {
            continue;
        }
        if !(digit(i + 5)
            && digit(i + 6)
            && b.get(i + 7) == Some(&b'-')
            && digit(i + 8)
            && digit(i + 9))
        {
            continue;
        }
        let (y, mo, d) = (num(i, 4)?, num(i + 5, 2)?, num(i + 8, 2)?);
        // Separator: `T`, ` `, or `, ` (Airflow).
        let mut j = i + 10;
        match b.get(j) {
            Some(b'T') | Some(b' ') | Some(b'_') => j += 1,
            Some(b',') if b.get(j + 1) == Some(&b' ') => j += 2,
            _ => continue,
        }
        let Some(secs) = clock(line, j) else { continue };
        return unix_seconds(y, mo, d, secs);
    }
    date_output(line)
}

/// `HH:MM:SS[.fff|,fff]` at byte `j`, as seconds into the day.
fn clock(line: &str, j: usize) -> Option<f64> {
    let b = line.as_bytes();
    let two = |k: usize| -> Option<f64> {
        let s = line.get(k..k + 2)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (h, m, s) = (two(j)?, two(j + 3)?, two(j + 6)?);
    if b.get(j + 2) != Some(&b':')
        || b.get(j + 5) != Some(&b':')
        || h > 23.0
        || m > 59.0
        || s > 60.0
    {
        return None;
    }
    let mut frac = 0.0;
    if matches!(b.get(j + 8), Some(b'.') | Some(b',')) {
        let digits: String = line
            .get(j + 9..)
            .unwrap_or("")
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .take(9)
            .collect();
        if !digits.is_empty() {
            frac = format!("0.{digits}").parse().unwrap_or(0.0);
        }
    }
    Some(h * 3600.0 + m * 60.0 + s + frac)
}

/// `date` output: `Thu Dec 25 08:19:29 UTC 2025`.
fn date_output(line: &str) -> Option<f64> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let tokens: Vec<&str> = line.split_whitespace().take(12).collect();
    for k in 0..tokens.len().saturating_sub(3) {
        let (month, day, time) = (tokens[k], tokens[k + 1], tokens[k + 2]);
        let Some(mo) = MONTHS.iter().position(|m| {
            month.len() >= 3 && month.get(..3).is_some_and(|p| p.eq_ignore_ascii_case(m))
        }) else {
            continue;
        };
        let Ok(d) = day.parse::<i64>() else { continue };
        let Some(secs) = (time.len() >= 8).then(|| clock(time, 0)).flatten() else {
            continue;
        };
        // The year follows, after an optional zone.
        let year = tokens[k + 3..]
            .iter()
            .take(2)
            .find_map(|t| t.parse::<i64>().ok().filter(|y| (1970..=9999).contains(y)));
        if let Some(y) = year {
            return unix_seconds(y, mo as i64 + 1, d, secs);
        }
    }
    None
}

#[cfg(test)]
mod tests;
