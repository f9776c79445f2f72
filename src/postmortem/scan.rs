//! Streaming through a log of any size, one bounded line at a time.
//!
//! A scheduler log can be gigabytes, a single "line" of binary junk can be all
//! of it, and bytes need not be UTF-8. The reader never holds more than one
//! capped line; the analyzer keeps only what a postmortem reports (recognized
//! events up to a cap, the lines around the first kill, a thinned
//! `docker stats` series), so memory stays flat whatever the input.

use std::collections::VecDeque;
use std::io::{self, BufRead};

use serde::{Deserialize, Serialize};

use super::parse::{classify, find_timestamp, KillKind, LogEvent, StatsRow};

/// Longest line kept, in bytes; the rest of a longer line is skipped (counted).
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Longest line kept as context or event text, in characters.
const MAX_TEXT_CHARS: usize = 1000;
/// Recognized events kept for the timeline; later ones are counted, not kept.
pub const MAX_EVENTS: usize = 10_000;
/// `docker stats` points kept; past it, neighbours merge (keeping the larger).
pub const MAX_STATS_POINTS: usize = 20_000;

/// Reads lines of at most `max` bytes from a `BufRead`, without ever holding
/// more than that (a longer line's tail is consumed and dropped).
pub struct LineReader<R> {
    inner: R,
    max: usize,
    /// Bytes consumed so far, line endings and the skipped tails of long lines included.
    consumed: u64,
}

impl<R: BufRead> LineReader<R> {
    /// A reader keeping at most `max` bytes of each line.
    pub fn new(inner: R, max: usize) -> Self {
        Self {
            inner,
            max,
            consumed: 0,
        }
    }

    /// Bytes read from the stream so far: its size, once it is all read.
    pub fn bytes_read(&self) -> u64 {
        self.consumed
    }

    /// Reads the next line into `buf` (without `\n` or a trailing `\r`);
    /// `Some(truncated)` for a line, `None` at the end.
    pub fn next_line(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<bool>> {
        buf.clear();
        let mut truncated = false;
        let mut any = false;
        loop {
            let avail = match self.inner.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                break;
            }
            any = true;
            let (take, done) = match avail.iter().position(|b| *b == b'\n') {
                Some(i) => (i, true),
                None => (avail.len(), false),
            };
            let room = self.max.saturating_sub(buf.len());
            if take > room {
                truncated = true;
            }
            buf.extend_from_slice(&avail[..take.min(room)]);
            let used = if done { take + 1 } else { take };
            self.inner.consume(used);
            self.consumed += used as u64;
            if done {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        Ok(Some(truncated))
    }
}

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
#[derive(Debug, Clone, Default)]
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
        }
    }

    /// Reads a whole stream through the analyzer.
    pub fn read_all(&mut self, reader: impl BufRead) -> io::Result<()> {
        let mut lines = LineReader::new(reader, MAX_LINE_BYTES);
        let mut buf = Vec::with_capacity(1024);
        while let Some(truncated) = lines.next_line(&mut buf)? {
            self.feed(&buf, truncated);
        }
        // `feed` counts only what each line kept; the reader knows the rest.
        self.out.source.bytes = lines.bytes_read();
        Ok(())
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

    #[test]
    fn reader_caps_lines_and_handles_endings() {
        let data = b"a\r\nbb\n\nccc";
        let mut r = LineReader::new(&data[..], 2);
        let mut buf = Vec::new();
        let mut got = Vec::new();
        while let Some(t) = r.next_line(&mut buf).unwrap() {
            got.push((String::from_utf8(buf.clone()).unwrap(), t));
        }
        assert_eq!(
            got,
            vec![
                ("a".into(), false),
                ("bb".into(), false),
                ("".into(), false),
                ("cc".into(), true)
            ]
        );
    }

    #[test]
    fn bytes_read_counts_every_byte_kept_or_not() {
        for data in [&b""[..], b"a", b"a\n", b"a\r\nbb\n\nccc", b"xxxxxxxxxx\ny"] {
            let mut r = LineReader::new(data, 3);
            let mut buf = Vec::new();
            while r.next_line(&mut buf).unwrap().is_some() {}
            assert_eq!(r.bytes_read(), data.len() as u64, "{data:?}");
            assert_eq!(analyze(data, 2).source.bytes, data.len() as u64, "{data:?}");
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
