//! What a child tells its parent, one JSON line at a time.
//!
//! The child owns its stdout as the channel: protocol lines start with [`PREFIX`],
//! anything else (a library printing) is passed through as output. Timestamps are
//! `CLOCK_MONOTONIC` nanoseconds, a clock parent and child share, so stage spans
//! line up with the parent's RSS samples without guessing pipe latency.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Marks a protocol line on the child's stdout.
pub const PREFIX: &str = "@oomlab ";

/// One message from a child.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A stage begins; VmHWM was just reset.
    StageStart {
        stage: String,
        t_ns: u64,
        rss_bytes: u64,
    },
    /// A stage ended; `peak_bytes` is the kernel's VmHWM since the stage's start.
    StageEnd {
        stage: String,
        t_ns: u64,
        peak_bytes: u64,
        rss_bytes: u64,
        #[serde(default)]
        detail: BTreeMap<String, serde_json::Value>,
    },
    /// A pipeline log line, in the write-up's wording.
    Log {
        t_ns: u64,
        level: String,
        message: String,
    },
    /// The prepared output: what the pipeline hands to training.
    Output(OutputSummary),
}

impl Event {
    /// Serializes the event as one protocol line (with prefix, without newline).
    pub fn to_line(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string());
        format!("{PREFIX}{json}")
    }

    /// Parses a stdout line: `Some(Ok(event))` for protocol lines, `None` for
    /// ordinary output, `Some(Err)` for a protocol line that does not parse.
    pub fn parse_line(line: &str) -> Option<Result<Event, serde_json::Error>> {
        line.strip_prefix(PREFIX).map(serde_json::from_str)
    }
}

/// The shared clock protocol timestamps are on (kept here for the parent's
/// and child's callers; it lives with the other clocks).
pub use crate::clock::monotonic_ns;

/// The prepared frame handed to training.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct OutputSummary {
    pub rows: u64,
    pub features: u64,
    pub columns: u64,
    /// Bytes the prepared frame holds (every buffer once).
    pub bytes: u64,
    /// The floor of v2-style ranking prep: bytes of the prepared frame plus
    /// the slim lookup tables it is joined against (id + numeric profile
    /// columns, user features, narrowed). No strategy that holds its output
    /// can go below it. Only strategies that produce the v2 output report it.
    #[serde(default)]
    pub floor_bytes: Option<u64>,
    /// Content hash of the prepared frame (names, dtypes, values), when asked.
    #[serde(default)]
    pub hash: Option<String>,
    /// Parquet file the output was written to, when a sink was given.
    #[serde(default)]
    pub sink: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_ignores_plain_output() {
        let e = Event::Log {
            t_ns: 5,
            level: "INFO".into(),
            message: "Ranking samples: 3 rows".into(),
        };
        let line = e.to_line();
        assert_eq!(Event::parse_line(&line).unwrap().unwrap(), e);
        assert!(Event::parse_line("hello").is_none());
        assert!(Event::parse_line("@oomlab {nope").unwrap().is_err());
    }
}
