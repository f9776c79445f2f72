//! Other places an OOM is recorded, each read from a file of its own flag.
//!
//! The pipeline's log says what the pipeline was doing; whether and at what
//! limit it was killed is often written elsewhere: the kernel's OOM report
//! (`--kernel-log`), the cgroup's own counters (`--cgroup-dir`), Kubernetes'
//! pod status (`--kubernetes`), and the memory curve a Prometheus server kept
//! (`--prometheus`). Each reader returns [`SourceFindings`]: the kill, the
//! limit and the peak it recorded, and every other fact, each with the file
//! and line it was read from, so the write-up can name where each came from.

pub mod cgroup;
pub mod kernel;
pub mod kubernetes;
pub mod prometheus;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::scan::StatsPoint;
use crate::error::bad_input;

/// Where a fact was read: the file, the line (1-based; `None` for a whole
/// small file), and the line itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Where {
    /// The file (for a cgroup, the file inside the directory).
    pub path: String,
    /// 1-based line; `None` for a fact of the whole file.
    pub line: Option<u64>,
    /// The line as read (at most 300 characters).
    pub text: String,
}

impl Where {
    /// `` `memory.events` line 5 ``: how the write-up cites a fact.
    pub fn cite(&self) -> String {
        match self.line {
            Some(l) => format!("`{}` line {l}", self.path),
            None => format!("`{}`", self.path),
        }
    }
}

/// One fact a source recorded, in words, with its figure when it has one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fact {
    /// The fact in words, as the write-up prints it.
    pub what: String,
    /// Its figure in bytes (a limit, a peak, a resident size), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Where it was read.
    pub at: Where,
}

/// What one source recorded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceFindings {
    /// `kernel log`, `cgroup`, `kubernetes pod`, `prometheus`.
    pub source: String,
    /// The file (or cgroup directory) given by the flag.
    pub path: String,
    /// The OOM kill it recorded (the first, when several).
    pub kill: Option<Fact>,
    /// The memory limit it recorded.
    pub limit: Option<Fact>,
    /// The highest memory it recorded.
    pub peak: Option<Fact>,
    /// Every other fact, in file order.
    pub facts: Vec<Fact>,
    /// Lines (or entries) read...
    pub lines: u64,
    /// ...and how many said something the write-up uses.
    pub recognized: u64,
    /// The container this source says was killed (a pod's OOMKilled
    /// status), so a multi-series curve's figures can be of that one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// A memory curve (Prometheus), as the `docker stats` timeline takes it.
    #[serde(skip)]
    pub curve: Vec<StatsPoint>,
    /// Each series' peak as a fact with its line, so the peak cited is that
    /// of the series the postmortem chose ([`SourceFindings::settle_peak`]).
    #[serde(skip)]
    pub series_peaks: Vec<(String, Fact)>,
}

impl SourceFindings {
    fn new(source: &str, path: &Path) -> Self {
        SourceFindings {
            source: source.into(),
            path: path.display().to_string(),
            ..SourceFindings::default()
        }
    }

    fn at(&self, line: Option<u64>, text: &str) -> Where {
        Where {
            path: self.path.clone(),
            line,
            text: text.trim().chars().take(300).collect(),
        }
    }

    /// The name every sentence gives this source's memory curve.
    pub fn curve_name(&self) -> &'static str {
        match self.source.as_str() {
            "prometheus" => "Prometheus",
            "cgroup" => "cgroup",
            _ => "memory curve",
        }
    }

    /// Makes the peak this source cites that of the series the postmortem
    /// chose (`check`), at the same time printed everywhere, and says when
    /// the curve does not cover the kill.
    pub fn settle_peak(&mut self, check: &super::curves::CurveCheck) {
        let series = check.series.clone().unwrap_or_default();
        if let Some((_, fact)) = self.series_peaks.iter().find(|(n, _)| *n == series) {
            self.peak = Some(fact.clone());
        }
        if let (Some(peak), Some(note)) = (self.peak.as_mut(), &check.note) {
            if check.covers_kill == Some(false) {
                peak.what = format!("{} — {note}", peak.what);
            }
        }
    }

    /// Every fact, the kill, limit and peak first.
    pub fn all_facts(&self) -> impl Iterator<Item = &Fact> {
        self.kill
            .iter()
            .chain(self.limit.iter())
            .chain(self.peak.iter())
            .chain(self.facts.iter())
    }
}

/// Opens a source file (exit 2 naming it when it cannot be read or is a
/// directory): every file postmortem reads, the logs included.
pub(super) fn open(path: &Path, what: &str) -> Result<File> {
    let file = File::open(path)
        .map_err(|e| bad_input(format!("{}: cannot read the {what}: {e}", path.display())))?;
    if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(bad_input(format!(
            "{}: is a directory, expected the {what} file",
            path.display()
        )));
    }
    Ok(file)
}

/// Reads a text source line by line, lossily (logs hold odd bytes), calling
/// `each(line_number, line)`; lines past 64 KiB are cut.
fn each_line(path: &Path, what: &str, mut each: impl FnMut(u64, &str)) -> Result<()> {
    let mut reader = BufReader::with_capacity(64 * 1024, open(path, what)?);
    let mut buf = Vec::new();
    let mut n = 0u64;
    loop {
        buf.clear();
        let read = (&mut reader)
            .take(64 * 1024)
            .read_until(b'\n', &mut buf)
            .map_err(|e| {
                bad_input(format!(
                    "{}: line {}: reading the {what} failed: {e}",
                    path.display(),
                    n + 1
                ))
            })?;
        if read == 0 {
            return Ok(());
        }
        if !buf.ends_with(b"\n") && read == 64 * 1024 {
            // Skip the rest of an over-long line.
            let mut rest = Vec::new();
            reader
                .read_until(b'\n', &mut rest)
                .map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
        }
        n += 1;
        let text = String::from_utf8_lossy(&buf);
        each(n, text.trim_end_matches(['\n', '\r']));
    }
}

/// Reads a whole JSON source (small: one pod, one query result), naming the
/// file, line and column of a syntax error.
fn read_json(path: &Path, what: &str) -> Result<(String, serde_json::Value)> {
    let mut text = String::new();
    open(path, what)?.read_to_string(&mut text).map_err(|e| {
        bad_input(format!(
            "{}: cannot read the {what} as text: {e}",
            path.display()
        ))
    })?;
    let value = serde_json::from_str(&text).map_err(|e| {
        bad_input(format!(
            "{}: line {}, column {}: not valid JSON for the {what}: {e}",
            path.display(),
            e.line(),
            e.column()
        ))
    })?;
    Ok((text, value))
}

/// The 1-based line of `text` that first holds every one of `needles`
/// (how a fact read from parsed JSON is cited back to its file).
fn line_holding(text: &str, needles: &[&str]) -> Option<u64> {
    text.lines()
        .position(|l| needles.iter().all(|n| l.contains(n)))
        .map(|i| i as u64 + 1)
}

/// The text of line `n` (1-based).
fn line_text(text: &str, n: Option<u64>) -> String {
    n.and_then(|n| text.lines().nth(n as usize - 1))
        .unwrap_or("")
        .to_string()
}

/// Parses `157286400kB` (the kernel's unit is KiB) into bytes.
fn kb(text: &str) -> Option<u64> {
    let digits = text.trim().trim_end_matches("kB").trim_end_matches("KB");
    digits.parse::<u64>().ok().map(|k| k.saturating_mul(1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cites_and_finds_lines() {
        let text = "{\n  \"a\": 1,\n  \"reason\": \"OOMKilled\"\n}";
        assert_eq!(line_holding(text, &["reason", "OOMKilled"]), Some(3));
        assert_eq!(line_text(text, Some(3)).trim(), "\"reason\": \"OOMKilled\"");
        assert_eq!(kb("157286400kB"), Some(157_286_400 * 1024));
        let w = Where {
            path: "k.log".into(),
            line: Some(4),
            text: String::new(),
        };
        assert_eq!(w.cite(), "`k.log` line 4");
    }
}
