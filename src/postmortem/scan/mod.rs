//! Streaming through a log of any size, in large buffers of whole lines.
//!
//! A scheduler log can be gigabytes, a single "line" of binary junk can be all
//! of it, and bytes need not be UTF-8. The reader holds one buffer of
//! [`CHUNK_BYTES`], or one mapped window of a large file (a longer line is
//! cut at [`MAX_LINE_BYTES`] and the rest skipped); the analyzer keeps only what a postmortem reports (recognized
//! events up to a cap, the lines around the first kill, a thinned
//! `docker stats` series, the similarity run the kill interrupted), so memory
//! stays flat whatever the input, and the log is read once.
//!
//! [`Analyzer::feed`] reads one line in full; `read` finds, a buffer at a
//! time, the few lines that need it and counts the others in bulk, with the
//! same result; `map` hands it the buffers of a large file without copying.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::parse::{classify, find_timestamp, KillKind, LogEvent, StatsRow};
use super::similarity::{self, SimilarityRun};

mod bytes;
mod map;
mod read;

/// Longest line kept, in bytes; the rest of a longer line is skipped (counted).
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Bytes read (or, of a mapped file, scanned) at a time: large enough to
/// keep system calls off the profile, small enough that the buffer's
/// lowercase copy and its marks stay in a core's L2 cache while the search
/// passes over them; one buffer bounds the reader's memory whatever the log.
pub const CHUNK_BYTES: usize = 256 << 10;
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
    /// The similarity run the first kill interrupted (a `Computing item
    /// similarity` line before it with no `Similarity computed` between),
    /// taken in the same pass so a postmortem reads the log once.
    pub similarity: Option<SimilarityRun>,
}

/// A line as kept for context or as an event's text: its first
/// [`MAX_TEXT_CHARS`] characters (copied whole when its bytes are fewer, the
/// common case, without walking its characters).
fn short_text(line: &str) -> String {
    if line.len() <= MAX_TEXT_CHARS {
        line.to_string()
    } else {
        line.chars().take(MAX_TEXT_CHARS).collect()
    }
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
    /// The similarity run open at the line being read (until the first kill).
    similarity_open: Option<SimilarityRun>,
    /// Longest line kept, bytes read at a time, and bytes mapped at a time
    /// (small in tests, to exercise the edges).
    max_line: usize,
    chunk_bytes: usize,
    window_bytes: usize,
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
            similarity_open: None,
            max_line: MAX_LINE_BYTES,
            chunk_bytes: CHUNK_BYTES,
            window_bytes: map::WINDOW_BYTES,
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
        let short = short_text(&text);
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
        if self.out.kill.is_none() {
            self.follow_similarity(line_no, &text);
        }
        self.remember(line_no, short);
    }

    /// Opens a similarity run at its `Computing item similarity` line and
    /// closes it at `Similarity computed`, so the run a kill interrupts is
    /// known when the kill comes.
    fn follow_similarity(&mut self, line: u64, text: &str) {
        if let Some((items, micro_batch_size, top_k)) = similarity::parse_line(text) {
            self.similarity_open = Some(SimilarityRun {
                line,
                items,
                micro_batch_size,
                top_k,
            });
        } else if text.contains(similarity::DONE) {
            self.similarity_open = None;
        }
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
                    self.out.similarity = self.similarity_open.take();
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
