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
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn analyze(bytes: &[u8], context: usize) -> LogAnalysis {
        let mut a = Analyzer::new("t", context);
        a.read_all(bytes).unwrap();
        a.finish()
    }

    /// [`analyze`] with lines capped at `max` bytes, read `chunk` at a time.
    fn analyze_with(bytes: &[u8], context: usize, max: usize, chunk: usize) -> LogAnalysis {
        let mut a = Analyzer::new("t", context);
        a.max_line = max;
        a.chunk_bytes = chunk;
        a.read_all(bytes).unwrap();
        a.finish()
    }

    /// What the analyzer must find: every line split off naively and fed.
    fn reference(bytes: &[u8], context: usize, max: usize) -> LogAnalysis {
        let mut a = Analyzer::new("t", context);
        a.max_line = max;
        let mut rest = bytes;
        while !rest.is_empty() {
            let (raw, next) = match memchr(b'\n', rest) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &rest[rest.len()..]),
            };
            let (line, truncated) = kept(raw, max);
            a.feed(line, truncated);
            rest = next;
        }
        a.out.source.bytes = bytes.len() as u64;
        a.finish()
    }

    #[test]
    fn lines_are_capped_and_lose_their_endings() {
        let data = b"a\r\nbb\n\nccccccccc\nKilled";
        for chunk in [3, 4, 7, 64] {
            let a = analyze_with(data, 10, 6, chunk);
            let kept: Vec<&str> = a.context_before.iter().map(|l| l.text.as_str()).collect();
            assert_eq!(kept, ["a", "bb", "", "cccccc"], "chunk {chunk}");
            assert_eq!(a.source.truncated, 1);
            assert_eq!(a.source.empty, 1);
            assert_eq!(a.kill.unwrap().line, 5);
        }
    }

    #[test]
    fn bytes_read_counts_every_byte_kept_or_not() {
        for data in [&b""[..], b"a", b"a\n", b"a\r\nbb\n\nccc", b"xxxxxxxxxx\ny"] {
            for chunk in [4, 5, 8, 1 << 20] {
                let a = analyze_with(data, 2, 3, chunk);
                assert_eq!(a.source.bytes, data.len() as u64, "{data:?}");
                assert_eq!(a, reference(data, 2, 3), "{data:?} by {chunk}");
            }
            assert_eq!(analyze(data, 2).source.bytes, data.len() as u64, "{data:?}");
        }
    }

    /// A line of a log for the tests below: the pipeline's lines, kills,
    /// stats rows, times, blanks, odd bytes, and noise.
    fn log_line() -> impl Strategy<Value = Vec<u8>> {
        let known: Vec<&'static str> = vec![
            "[2025-12-25, 08:15:02 UTC] {train_models.py:1401} INFO - Ranking samples: 8532146 rows before optimization",
            "2025-12-25 08:16:00,123 - INFO - Sampling ranking data: 8532146 -> 5000000 rows",
            "INFO Preparing ranking data (samples: 100 rows, datasets: 7)",
            "INFO Merging with dataset features (87 columns)...",
            "INFO MERGING WITH USER FEATURES (12 columns)",
            "INFO Memory optimization: 3456.78 MB -> 1234.56 MB (64.3% reduction)",
            "Ranking data prepared: 5 rows, 4 features",
            "MAX_RANKING_SAMPLES=2000000",
            "Task exited with return code -9",
            "Task exited with return code 0",
            "bash: line 1:  4242 Killed    python3 prepare.py",
            "Out of memory: Killed process 4242 (python3)",
            "OOM at 08:19:29",
            "c1 app 1.0% 142.3GiB / 150GiB 94.9%",
            "c1\tapp\t1.5GiB\u{3000}/\u{a0}2GiB",
            "app 1.5GiB/2GiB",
            "CONTAINER ID NAME CPU % MEM USAGE / LIMIT MEM %",
            "Thu Dec 25 08:19:29 UTC 2025 tick",
            "2025-12-25T08:19:30Z no event",
            "loading /opt/airflow/dags/x.py from /tmp / home",
            "",
            "   ",
            "\u{a0}\u{3000}",
            "\r",
        ];
        prop_oneof![
            4 => proptest::sample::select(known).prop_map(|s| s.as_bytes().to_vec()),
            2 => "[ -~]{0,40}".prop_map(String::into_bytes),
            1 => ".{0,20}".prop_map(String::into_bytes),
            1 => proptest::collection::vec(any::<u8>(), 0..30),
            1 => (1usize..3).prop_map(|n| vec![b'y'; 30 * n]),
        ]
    }

    proptest! {
        #[test]
        fn reading_in_chunks_finds_what_feeding_every_line_does(
            lines in proptest::collection::vec((log_line(), any::<bool>()), 0..60),
            last_newline in any::<bool>(),
            context in 0usize..4,
            max in prop::sample::select(vec![8usize, 40, 64 * 1024]),
            chunk in 1usize..200,
        ) {
            let mut log = Vec::new();
            for (line, crlf) in &lines {
                log.extend_from_slice(line);
                log.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
            }
            if !last_newline && log.last() == Some(&b'\n') {
                log.pop();
            }
            let want = reference(&log, context, max);
            prop_assert_eq!(analyze_with(&log, context, max, chunk), want);
        }

        #[test]
        fn the_prefilter_passes_every_line_classify_knows(
            line in log_line(),
            noise in "[ -~]{0,10}",
        ) {
            for bytes in [line.clone(), [noise.as_bytes(), &line, noise.as_bytes()].concat()] {
                let text = String::from_utf8_lossy(&bytes);
                if classify(&text).is_some() {
                    prop_assert!(Prefilter::get().passes(&text), "{:?}", text);
                }
            }
        }
    }

    /// Yields `len` bytes of `x` (no newline) without ever holding them.
    struct Endless {
        left: u64,
        chunk: Vec<u8>,
    }

    impl io::Read for Endless {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = (out.len() as u64)
                .min(self.left)
                .min(self.chunk.len() as u64) as usize;
            out[..n].copy_from_slice(&self.chunk[..n]);
            self.left -= n as u64;
            Ok(n)
        }
    }

    #[test]
    fn a_line_larger_than_memory_is_streamed_through() {
        // A 1 GiB "line" (a binary dump, a log without newlines): read in
        // 64 KiB pieces, one capped line kept, every byte counted.
        const LEN: u64 = 1 << 30;
        let source = Endless {
            left: LEN,
            chunk: vec![b'x'; 64 * 1024],
        };
        let mut a = Analyzer::new("t", 3);
        a.read_all(io::BufReader::with_capacity(64 * 1024, source))
            .unwrap();
        let a = a.finish();
        assert_eq!(a.source.lines, 1);
        assert_eq!(a.source.truncated, 1);
        assert_eq!(a.source.bytes, LEN);
        assert_eq!(a.source.unknown, 1);
    }

    #[test]
    fn finds_the_kill_its_run_and_context() {
        let mut log = String::new();
        for i in 0..60 {
            log += &format!("noise {i}\n");
        }
        log += "INFO Ranking samples: 100 rows before optimization\n";
        log += "INFO Preparing ranking data (samples: 100 rows, datasets: 7)\n";
        log += "INFO Merging with dataset features (300 columns)...\n";
        log += "Task exited with return code -9\n";
        for i in 0..60 {
            log += &format!("after {i}\n");
        }
        let a = analyze(log.as_bytes(), 50);
        let kill = a.kill.unwrap();
        assert_eq!(kill.line, 64);
        assert_eq!(a.run.ranking_samples_rows, Some(100));
        assert_eq!(a.run.datasets, Some(7));
        assert_eq!(a.run.dataset_feature_columns, Some(300));
        assert_eq!(
            a.run.last_stage.unwrap().stage.as_deref(),
            Some("merge_dataset_profile")
        );
        assert_eq!(a.context_before.len(), 50);
        assert_eq!(a.context_before.last().unwrap().line, 63);
        assert_eq!(a.context_after.len(), 50);
        assert_eq!(a.context_after[0].line, 65);
        assert_eq!(a.source.unknown, 120);
        assert_eq!(a.runs_seen, 1);
    }

    #[test]
    fn a_new_run_starts_over() {
        let log = "Ranking samples: 5 rows before optimization\nMerging with dataset features (3 columns)\nRanking data prepared: 5 rows, 4 features\nRanking samples: 9 rows before optimization\nMerging with dataset features (3 columns)\nKilled\n";
        let a = analyze(log.as_bytes(), 5);
        assert_eq!(a.runs_seen, 2);
        assert_eq!(a.run.ranking_samples_rows, Some(9));
        assert_eq!(a.run.prepared_rows, None);
        assert_eq!(a.after_kill, None, "nothing ran after the kill");
    }

    #[test]
    fn a_retry_after_the_kill_is_kept_apart_from_the_killed_run() {
        let log = "Ranking samples: 9 rows before optimization\nMerging with dataset features (3 columns)\nKilled\nRanking samples: 9 rows before optimization\nSampling ranking data: 9 -> 4 rows\nRanking data prepared: 4 rows, 4 features\n";
        let a = analyze(log.as_bytes(), 5);
        assert_eq!(a.runs_seen, 2);
        assert_eq!(
            a.run.last_stage.unwrap().stage.as_deref(),
            Some("merge_dataset_profile")
        );
        let retry = a.after_kill.expect("the retry");
        assert_eq!(retry.first_line, 4);
        assert_eq!(retry.sampling, Some((9, 4)));
        assert_eq!(retry.prepared_rows, Some(4));
    }

    #[test]
    fn stats_are_thinned_not_unbounded() {
        let mut log = String::new();
        for i in 0..(MAX_STATS_POINTS * 3) {
            log += &format!("c1 app 1.0% {}MiB / 100GiB 1.0%\n", i % 1000 + 1);
        }
        let a = analyze(log.as_bytes(), 0);
        assert!(a.stats.len() <= MAX_STATS_POINTS);
        assert_eq!(
            a.stats.iter().map(|p| p.usage_bytes).max(),
            Some(1000 << 20)
        );
    }

    proptest! {
        #[test]
        fn any_bytes_scan_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096), context in 0usize..5) {
            let a = analyze(&bytes, context);
            prop_assert!(a.source.lines >= (bytes.iter().filter(|b| **b == b'\n').count() as u64));
        }

        #[test]
        fn lines_of_known_pieces_scan_without_panic(lines in proptest::collection::vec(
            prop_oneof![
                Just("INFO Ranking samples: 8532146 rows before optimization".to_string()),
                Just("INFO Merging with dataset features (87 columns)...".to_string()),
                Just("Killed".to_string()),
                Just("x 1GiB / 2GiB 50%".to_string()),
                ".{0,80}",
            ], 0..50)) {
            let text = lines.join("\n");
            let _ = analyze(text.as_bytes(), 3);
        }
    }
}
