//! Streaming through a log of any size, in large buffers of whole lines.
//!
//! A scheduler log can be gigabytes, a single "line" of binary junk can be all
//! of it, and bytes need not be UTF-8. The reader holds one buffer of
//! [`CHUNK_BYTES`] (a longer line is cut at [`MAX_LINE_BYTES`] and the rest
//! skipped); the analyzer keeps only what a postmortem reports (recognized
//! events up to a cap, the lines around the first kill, a thinned
//! `docker stats` series), so memory stays flat whatever the input.
//!
//! Almost every line of a scheduler log is noise, so a buffer is first
//! searched for the phrases a recognized line must hold ([`NEEDLES`], one
//! Aho-Corasick search over the whole buffer); only the lines with one are
//! read in full ([`Analyzer::feed`]). The others are counted, and what a full
//! read would have taken from them (the last time stamp, the lines kept as
//! context) is taken when a later line needs it: the result is the same as
//! feeding every line, which the tests check.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind};
use memchr::{memchr, memrchr};
use serde::{Deserialize, Serialize};

use super::parse::{
    classify, find_timestamp, size_before_slash, KillKind, LogEvent, StatsRow, NEEDLES,
};

/// Longest line kept, in bytes; the rest of a longer line is skipped (counted).
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Bytes read at a time: large reads keep system calls off the profile, and
/// one buffer bounds the reader's memory whatever the log.
pub const CHUNK_BYTES: usize = 1 << 20;
/// Longest line kept as context or event text, in characters.
const MAX_TEXT_CHARS: usize = 1000;
/// Recognized events kept for the timeline; later ones are counted, not kept.
pub const MAX_EVENTS: usize = 10_000;
/// `docker stats` points kept; past it, neighbours merge (keeping the larger).
pub const MAX_STATS_POINTS: usize = 20_000;

/// Counts of what a log held.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SourceStats {
    pub path: String,
    /// Size of what was read (every byte, whether kept or skipped).
    pub bytes: u64,
    pub lines: u64,
    /// Lines that were one of the known lines.
    pub recognized: u64,
    /// Non-empty lines that were not: skipped and counted.
    pub unknown: u64,
    pub empty: u64,
    /// Lines that were not valid UTF-8 (read with replacement characters).
    pub non_utf8: u64,
    /// Lines with NUL or other control bytes: binary data.
    pub binary: u64,
    /// Lines longer than the cap (their tail was not read).
    pub truncated: u64,
}

/// A line kept as context.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContextLine {
    /// 1-based line number in the log.
    pub line: u64,
    pub text: String,
}

/// A recognized line on the timeline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TimelineEvent {
    pub line: u64,
    /// Seconds since the Unix epoch, when the line (or one shortly before) had a time.
    pub t_unix: Option<f64>,
    /// The pipeline stage the line opens, in the replay's vocabulary.
    pub stage: Option<String>,
    pub event: LogEvent,
    /// The line itself (at most 1000 characters).
    pub text: String,
}

/// One `docker stats` reading.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatsPoint {
    /// Row number among the stats rows (0-based): the time axis when rows carry no time.
    pub index: u64,
    pub t_unix: Option<f64>,
    pub name: String,
    pub usage_bytes: u64,
    pub limit_bytes: u64,
    pub mem_pct: Option<f64>,
}

/// What one pipeline run (from its first line to the next run's) said.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunFacts {
    /// Line where this run's first recognized stage line was.
    pub first_line: u64,
    pub ranking_samples_rows: Option<u64>,
    pub sampling: Option<(u64, u64)>,
    pub samples_optimized_rows: Option<u64>,
    pub preparing_samples: Option<u64>,
    pub datasets: Option<u64>,
    pub dataset_feature_columns: Option<u64>,
    pub user_feature_columns: Option<u64>,
    pub memory_before_mb: Option<f64>,
    pub memory_after_mb: Option<f64>,
    pub prepared_rows: Option<u64>,
    pub prepared_features: Option<u64>,
    /// The last stage line of the run.
    pub last_stage: Option<TimelineEvent>,
}

impl RunFacts {
    fn is_empty(&self) -> bool {
        self.last_stage.is_none()
    }

    fn absorb(&mut self, ev: &LogEvent) {
        match *ev {
            LogEvent::RankingSamples { rows } => self.ranking_samples_rows = Some(rows),
            LogEvent::Sampling { from, to } => self.sampling = Some((from, to)),
            LogEvent::SamplesOptimized { rows } => self.samples_optimized_rows = Some(rows),
            LogEvent::Preparing { samples, datasets } => {
                self.preparing_samples = Some(samples);
                if datasets.is_some() {
                    self.datasets = datasets;
                }
            }
            LogEvent::MergeDatasetFeatures { columns } => {
                self.dataset_feature_columns = Some(columns)
            }
            LogEvent::MergeUserFeatures { columns } => self.user_feature_columns = Some(columns),
            LogEvent::MemoryOptimization {
                before_mb,
                after_mb,
                ..
            } => {
                self.memory_before_mb = Some(before_mb);
                self.memory_after_mb = Some(after_mb);
            }
            LogEvent::Prepared { rows, features } => {
                self.prepared_rows = Some(rows);
                self.prepared_features = features;
            }
            _ => {}
        }
    }
}

/// Where the first kill was.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KillFinding {
    pub line: u64,
    pub t_unix: Option<f64>,
    pub kind: KillKind,
    pub text: String,
}

/// A `MAX_RANKING_SAMPLES=N` line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SettingLine {
    pub line: u64,
    pub value: u64,
}

/// Order of the stages in one run: a stage earlier than the last one seen
/// means a new run began.
fn stage_order(stage: &str) -> usize {
    [
        "optimize_samples",
        "sample",
        "samples_ready",
        "prepare",
        "merge_dataset_profile",
        "merge_user_features",
        "downcast",
        "downcast_done",
        "prepared",
    ]
    .iter()
    .position(|s| *s == stage)
    .unwrap_or(0)
}

/// Everything a scan of one log found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogAnalysis {
    pub source: SourceStats,
    pub events: Vec<TimelineEvent>,
    pub events_dropped: u64,
    /// Pipeline runs seen (a run starts at its first stage line).
    pub runs_seen: u64,
    /// The first kill, and how many kill lines there were.
    pub kill: Option<KillFinding>,
    pub kill_lines: u64,
    /// The run the kill happened in (or the last run when nothing was killed).
    pub run: RunFacts,
    /// The last run that started after the kill (a retry), if any.
    pub after_kill: Option<RunFacts>,
    /// `MAX_RANKING_SAMPLES=N` lines before the kill (or in the whole log).
    pub setting: Option<SettingLine>,
    pub context_before: Vec<ContextLine>,
    pub context_after: Vec<ContextLine>,
    pub stats: Vec<StatsPoint>,
    /// Each kept stats point stands for this many rows (1 until thinned).
    pub stats_stride: u64,
}

/// Feeds lines one at a time and keeps only what a postmortem needs.
pub struct Analyzer {
    context: usize,
    out: LogAnalysis,
    current: RunFacts,
    ring: VecDeque<ContextLine>,
    after_needed: usize,
    last_time: Option<f64>,
    stats_rows: u64,
    pending_stats: Option<StatsPoint>,
    pending_count: u64,
    /// Longest line kept and bytes read at a time (small in tests, to
    /// exercise the edges).
    max_line: usize,
    chunk_bytes: usize,
}

/// The search for lines worth classifying: [`NEEDLES`] (Aho-Corasick, whose
/// Teddy search takes a buffer at a time), and slashes after a size unit (a
/// `docker stats` row, see [`size_before_slash`]).
struct Prefilter {
    needles: AhoCorasick,
}

impl Prefilter {
    fn get() -> &'static Prefilter {
        static PREFILTER: OnceLock<Prefilter> = OnceLock::new();
        PREFILTER.get_or_init(|| Prefilter {
            needles: AhoCorasick::builder()
                .kind(Some(AhoCorasickKind::DFA))
                .match_kind(MatchKind::LeftmostFirst)
                .build(NEEDLES)
                .expect("the needles are few and plain"),
        })
    }

    /// Where the first needle at or after `from` starts in `lower` (a text
    /// in ASCII lowercase: needles match whatever their case, as
    /// [`classify`] reads lines), or `usize::MAX`.
    fn next_needle(&self, lower: &[u8], from: usize) -> usize {
        let span = from.min(lower.len())..lower.len();
        self.needles
            .find(Input::new(lower).span(span))
            .map_or(usize::MAX, |m| m.start())
    }

    /// Where the first slash after a size unit at or after `from` is in
    /// `text`, or `usize::MAX`.
    fn next_size_slash(text: &str, mut from: usize) -> usize {
        let bytes = text.as_bytes();
        while let Some(i) = bytes.get(from..).and_then(|rest| memchr(b'/', rest)) {
            if size_before_slash(text, from + i) {
                return from + i;
            }
            from += i + 1;
        }
        usize::MAX
    }

    /// Whether a line may be one [`classify`] knows.
    #[cfg(test)]
    fn passes(&self, line: &str) -> bool {
        let lower = line.to_ascii_lowercase();
        self.next_needle(lower.as_bytes(), 0) != usize::MAX
            || Self::next_size_slash(line, 0) != usize::MAX
    }
}

/// A line as the analyzer keeps it: its first `max` bytes (without `\n`)
/// minus a final `\r`, and whether it was longer.
fn kept(raw: &[u8], max: usize) -> (&[u8], bool) {
    let truncated = raw.len() > max;
    let line = &raw[..raw.len().min(max)];
    (line.strip_suffix(b"\r").unwrap_or(line), truncated)
}

/// Offset of the first byte that makes a line binary (NUL or a control
/// character other than tab, CR, LF and ESC), blocks at a time so the check
/// vectorizes.
fn first_binary(bytes: &[u8]) -> Option<usize> {
    let odd = |b: u8| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x1b);
    let mut at = 0;
    for block in bytes.chunks(64) {
        if block.iter().fold(false, |any, &b| any | odd(b)) {
            return block.iter().position(|&b| odd(b)).map(|i| at + i);
        }
        at += block.len();
    }
    None
}

/// The longest head of `lines` (whole lines, each ending in `\n`) that is
/// UTF-8 without binary bytes: the part the fast path may read as text.
fn clean_head(lines: &[u8]) -> &str {
    let limit = first_binary(lines).unwrap_or(lines.len());
    let valid = match std::str::from_utf8(&lines[..limit]) {
        Ok(text) => text,
        // Whatever is not read here is read line by line, so "" is safe.
        Err(e) => std::str::from_utf8(&lines[..e.valid_up_to()]).unwrap_or(""),
    };
    &valid[..valid.rfind('\n').map_or(0, |i| i + 1)]
}

impl Analyzer {
    /// An analyzer keeping `context` lines before and after the first kill.
    pub fn new(path: &str, context: usize) -> Self {
        Self {
            context,
            out: LogAnalysis {
                source: SourceStats {
                    path: path.to_string(),
                    ..SourceStats::default()
                },
                stats_stride: 1,
                ..LogAnalysis::default()
            },
            current: RunFacts::default(),
            ring: VecDeque::new(),
            after_needed: 0,
            last_time: None,
            stats_rows: 0,
            pending_stats: None,
            pending_count: 0,
            max_line: MAX_LINE_BYTES,
            chunk_bytes: CHUNK_BYTES,
        }
    }

    /// Reads a whole stream through the analyzer, [`CHUNK_BYTES`] at a time
    /// (no need for a `BufReader`): the same findings as [`Analyzer::feed`]
    /// on every line.
    pub fn read_all(&mut self, mut reader: impl Read) -> io::Result<()> {
        let mut buf = vec![0u8; self.chunk_bytes.max(self.max_line + 1)];
        let mut lower = Vec::new();
        let mut filled = 0;
        let mut total = 0u64;
        // The head of a line longer than the buffer, while its tail is skipped.
        let mut long_head: Option<Vec<u8>> = None;
        let mut eof = false;
        while !eof {
            while filled < buf.len() {
                match reader.read(&mut buf[filled..]) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => {
                        filled += n;
                        total += n as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            let mut start = 0;
            if let Some(head) = &long_head {
                let Some(nl) = memchr(b'\n', &buf[..filled]) else {
                    filled = 0;
                    continue;
                };
                let (line, truncated) = kept(head, self.max_line);
                self.feed(line, truncated);
                long_head = None;
                start = nl + 1;
            }
            let end = memrchr(b'\n', &buf[start..filled]).map_or(start, |i| start + i + 1);
            self.scan_lines(&buf[start..end], &mut lower);
            if eof {
                if end < filled {
                    // The last line, without a line ending.
                    let (line, truncated) = kept(&buf[end..filled], self.max_line);
                    self.feed(line, truncated);
                }
            } else if filled - end == buf.len() {
                // One line fills the buffer: keep its head, skip to its end.
                long_head = Some(buf[..self.max_line + 1].to_vec());
                filled = 0;
            } else {
                buf.copy_within(end..filled, 0);
                filled -= end;
            }
        }
        if let Some(head) = long_head {
            let (line, truncated) = kept(&head, self.max_line);
            self.feed(line, truncated);
        }
        // `feed` counts only what each line kept; the reader knows the rest.
        self.out.source.bytes = total;
        Ok(())
    }

    /// Reads whole lines (each ending in `\n`): clean text on the fast path,
    /// any line that is not UTF-8 or holds binary bytes in full.
    fn scan_lines(&mut self, mut lines: &[u8], lower: &mut Vec<u8>) {
        while !lines.is_empty() {
            let text = clean_head(lines);
            self.scan_text(text, lower);
            lines = &lines[text.len()..];
            if let Some(nl) = memchr(b'\n', lines) {
                let (line, truncated) = kept(&lines[..nl], self.max_line);
                self.feed(line, truncated);
                lines = &lines[nl + 1..];
            }
        }
    }

    /// The fast path over whole lines of clean text: lines the prefilter
    /// passes (and the overlong ones, and those kept after a kill) are fed in
    /// full, the rest only counted until [`Analyzer::settle`] takes what a
    /// full read would have.
    fn scan_text(&mut self, text: &str, lower: &mut Vec<u8>) {
        if text.is_empty() {
            return;
        }
        lower.clear();
        lower.extend_from_slice(text.as_bytes());
        lower.make_ascii_lowercase();
        let prefilter = Prefilter::get();
        let bytes = text.as_bytes();
        // The next hit of each search: both run ahead, line by line follows.
        let mut needle = prefilter.next_needle(lower, 0);
        let mut slash = Prefilter::next_size_slash(text, 0);
        // Start of the lines counted but not yet settled.
        let mut gap = 0;
        let mut pos = 0;
        while let Some(i) = memchr(b'\n', &bytes[pos..]) {
            let nl = pos + i;
            if needle.min(slash) < nl || nl - pos > self.max_line || self.after_needed > 0 {
                self.settle(&text[gap..pos]);
                let (line, truncated) = kept(&bytes[pos..nl], self.max_line);
                self.feed(line, truncated);
                gap = nl + 1;
                if needle < nl {
                    needle = prefilter.next_needle(lower, nl + 1);
                }
                if slash < nl {
                    slash = Prefilter::next_size_slash(text, nl + 1);
                }
            } else {
                let line = &text[pos..nl];
                let s = &mut self.out.source;
                s.lines += 1;
                if line.trim().is_empty() {
                    s.empty += 1;
                } else {
                    s.unknown += 1;
                }
            }
            pos = nl + 1;
        }
        self.settle(&text[gap..pos]);
    }

    /// Takes from lines that were only counted (each ending in `\n`, the
    /// last being the last line counted) what [`Analyzer::feed`] would have:
    /// the latest time stamp, and the lines kept as context.
    fn settle(&mut self, skipped: &str) {
        let Some(skipped) = skipped.strip_suffix('\n') else {
            return;
        };
        if let Some(t) = skipped
            .rsplit('\n')
            .find_map(|l| find_timestamp(l.strip_suffix('\r').unwrap_or(l)))
        {
            self.last_time = Some(t);
        }
        if self.context == 0 || self.out.kill.is_some() {
            return;
        }
        let last = self.out.source.lines;
        let mut kept: Vec<&str> = skipped.rsplit('\n').take(self.context).collect();
        kept.reverse();
        let first = last + 1 - kept.len() as u64;
        for (i, l) in kept.into_iter().enumerate() {
            let l = l.strip_suffix('\r').unwrap_or(l);
            let short: String = l.chars().take(MAX_TEXT_CHARS).collect();
            self.remember(first + i as u64, short);
        }
    }

    /// Takes one line (raw bytes, no line ending).
    pub fn feed(&mut self, bytes: &[u8], truncated: bool) {
        let s = &mut self.out.source;
        s.lines += 1;
        s.bytes += bytes.len() as u64 + 1;
        if truncated {
            s.truncated += 1;
        }
        let line_no = s.lines;
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => std::borrow::Cow::Borrowed(t),
            Err(_) => {
                s.non_utf8 += 1;
                String::from_utf8_lossy(bytes)
            }
        };
        if bytes
            .iter()
            .any(|b| *b == 0 || (*b < 0x20 && !matches!(*b, b'\t' | b'\r' | 0x1b)))
        {
            s.binary += 1;
        }
        let short: String = text.chars().take(MAX_TEXT_CHARS).collect();
        // Context after the kill.
        if self.after_needed > 0 {
            self.out.context_after.push(ContextLine {
                line: line_no,
                text: short.clone(),
            });
            self.after_needed -= 1;
        }
        if text.trim().is_empty() {
            self.out.source.empty += 1;
            self.remember(line_no, short);
            return;
        }
        let stamp = find_timestamp(&text);
        if stamp.is_some() {
            self.last_time = stamp;
        }
        match classify(&text) {
            Some(ev) => {
                self.out.source.recognized += 1;
                self.take(line_no, stamp, ev, &short);
            }
            None => self.out.source.unknown += 1,
        }
        self.remember(line_no, short);
    }

    fn remember(&mut self, line: u64, text: String) {
        if self.context == 0 || self.out.kill.is_some() {
            return;
        }
        if self.ring.len() == self.context {
            self.ring.pop_front();
        }
        self.ring.push_back(ContextLine { line, text });
    }

    fn push_event(&mut self, ev: TimelineEvent) {
        if self.out.events.len() < MAX_EVENTS {
            self.out.events.push(ev);
        } else {
            self.out.events_dropped += 1;
        }
    }

    fn take(&mut self, line: u64, stamp: Option<f64>, ev: LogEvent, text: &str) {
        match &ev {
            LogEvent::Stats(row) => return self.take_stats(stamp, row.clone()),
            LogEvent::StatsHeader => return,
            LogEvent::Kill { kind, .. } => {
                self.out.kill_lines += 1;
                if self.out.kill.is_none() {
                    self.out.kill = Some(KillFinding {
                        line,
                        t_unix: stamp.or(self.last_time),
                        kind: *kind,
                        text: text.to_string(),
                    });
                    // The run the kill ended, and the lines before it.
                    self.out.run = self.current.clone();
                    self.out.context_before = self.ring.drain(..).collect();
                    self.after_needed = self.context;
                }
            }
            LogEvent::MaxRankingSamples { value } if self.out.kill.is_none() => {
                self.out.setting = Some(SettingLine {
                    line,
                    value: *value,
                });
            }
            _ => {}
        }
        let stage = ev.stage();
        let event = TimelineEvent {
            line,
            t_unix: stamp.or(self.last_time),
            stage: stage.map(str::to_string),
            event: ev,
            text: text.to_string(),
        };
        if let Some(stage) = stage {
            let restart = self.current.last_stage.as_ref().is_some_and(|last| {
                let prev = last.stage.as_deref().map(stage_order).unwrap_or(0);
                let now = stage_order(stage);
                now < prev || (now == prev && now <= stage_order("prepare"))
            });
            if self.current.is_empty() || restart {
                if restart {
                    self.current = RunFacts::default();
                }
                self.current.first_line = line;
                self.out.runs_seen += 1;
            }
            self.current.absorb(&event.event);
            self.current.last_stage = Some(event.clone());
        }
        self.push_event(event);
    }

    fn take_stats(&mut self, stamp: Option<f64>, row: StatsRow) {
        let point = StatsPoint {
            index: self.stats_rows,
            t_unix: stamp.or(self.last_time),
            name: row.name,
            usage_bytes: row.usage_bytes,
            limit_bytes: row.limit_bytes,
            mem_pct: row.mem_pct,
        };
        self.stats_rows += 1;
        // Thinning: `stride` rows become one point, the one with the most memory.
        let keep = match self.pending_stats.take() {
            Some(p) if p.usage_bytes >= point.usage_bytes => p,
            _ => point,
        };
        self.pending_count += 1;
        if self.pending_count < self.out.stats_stride {
            self.pending_stats = Some(keep);
            return;
        }
        self.pending_count = 0;
        self.out.stats.push(keep);
        if self.out.stats.len() >= MAX_STATS_POINTS {
            let old = std::mem::take(&mut self.out.stats);
            self.out.stats = old
                .chunks(2)
                .filter_map(|pair| pair.iter().max_by_key(|p| p.usage_bytes).cloned())
                .collect();
            self.out.stats_stride *= 2;
        }
    }

    /// Ends the scan and returns the findings.
    pub fn finish(mut self) -> LogAnalysis {
        if let Some(p) = self.pending_stats.take() {
            self.out.stats.push(p);
        }
        match &self.out.kill {
            None => self.out.run = self.current,
            Some(k) if self.current.first_line > k.line => {
                self.out.after_kill = Some(self.current);
            }
            Some(_) => {}
        }
        self.out
    }
}

#[cfg(test)]
mod tests;
