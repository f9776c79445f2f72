//! A run's samples on disk as they are taken (`samples.<run>.jsonl`).
//!
//! `report.json` is written when a run ends. A harness that dies before that
//! (SIGKILL, the machine's OOM killer, a CI job's timeout) would lose the
//! whole timeline, and the timeline up to a death is the figure a memory
//! investigation needs most. So every run whose report directory is known
//! appends each RSS sample, stage marker and log line to its journal in that
//! directory as it comes, handed to the kernel at least every
//! [`FLUSH_EVERY`]: whatever kills oomlab, the file holds everything up to the
//! last half second. A replay and `record` share it (both go through
//! `runner::run_child`).
//!
//! One JSON object per line, each with an `event`:
//!
//! ```text
//! {"event":"start","run":"legacy","pid":4242,"interval_ms":10.0,"started_at":"2026-11-25T06:15:03Z"}
//! {"event":"sample","t_s":0.010213,"rss_bytes":1843200}
//! {"event":"stage_start","t_s":0.0121,"stage":"load"}
//! {"event":"stage_end","t_s":0.52,"stage":"load","peak_bytes":412000000}
//! {"event":"log","t_s":0.3,"level":"INFO","message":"Ranking samples: 200000"}
//! {"event":"end","t_s":4.6,"status":{"kind":"completed"}}
//! ```
//!
//! Times are seconds since the child was started, as in `report.json`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{json, Value};

use crate::error::bad_input;

/// Longest a sample may wait in memory before it is handed to the kernel.
pub const FLUSH_EVERY: Duration = Duration::from_millis(500);

/// The journal of one run.
pub struct Journal {
    path: PathBuf,
    state: Mutex<State>,
}

struct State {
    out: BufWriter<File>,
    last_flush: Instant,
    /// The first write error; the journal stops writing after it.
    error: Option<String>,
}

/// The journal's file name for a run label (characters outside
/// `[A-Za-z0-9._-]` become `_`, so any `--label` makes a plain file name).
pub fn file_name(label: &str) -> String {
    let safe: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("samples.{}.jsonl", safe.trim_start_matches('.'))
}

impl Journal {
    /// Creates (or truncates) the journal of run `label` in `dir`, creating
    /// the directory. Fails with a bad-input error (exit 2) naming the
    /// directory: it is the report directory the user asked for (`--out`).
    pub fn create(dir: &Path, label: &str) -> Result<Self> {
        let path = dir.join(file_name(label));
        let file = std::fs::create_dir_all(dir)
            .and_then(|_| File::create(&path))
            .map_err(|e| {
                bad_input(format!(
                    "{}: cannot write the report directory: {e}",
                    dir.display()
                ))
            })?;
        Ok(Self {
            path,
            state: Mutex::new(State {
                out: BufWriter::new(file),
                last_flush: Instant::now(),
                error: None,
            }),
        })
    }

    fn write_line(&self, line: std::fmt::Arguments, flush_now: bool) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        if st.error.is_some() {
            return;
        }
        let mut result = writeln!(st.out, "{line}");
        if result.is_ok() && (flush_now || st.last_flush.elapsed() >= FLUSH_EVERY) {
            result = st.out.flush();
            st.last_flush = Instant::now();
        }
        if let Err(e) = result {
            st.error = Some(format!("{}: {e}", self.path.display()));
        }
    }

    /// The run's first line: which run, which process, when.
    pub fn start(&self, run: &str, pid: i32, interval_ms: f64) {
        let line = json!({
            "event": "start",
            "run": run,
            "pid": pid,
            "interval_ms": interval_ms,
            "started_at": crate::report::utc_now_rfc3339(),
        });
        self.write_line(format_args!("{line}"), true);
    }

    /// One RSS sample, written straight into the buffer: the sampler calls
    /// this every tick, and formatting the line into a `String` first (a
    /// float to six places, an allocation) cost about a fifth of its CPU.
    /// The time is whole microseconds printed as seconds, the text `{:.6}`
    /// gives.
    pub fn sample(&self, t_s: f64, rss_bytes: u64) {
        let micros = (t_s.max(0.0) * 1e6).round() as u64;
        self.write_line(
            format_args!(
                r#"{{"event":"sample","t_s":{}.{:06},"rss_bytes":{rss_bytes}}}"#,
                micros / 1_000_000,
                micros % 1_000_000
            ),
            false,
        );
    }

    /// A stage marker, log line or the end: `fields` are merged after
    /// `event` and `t_s`. Stage markers and the end are flushed at once.
    pub fn event(&self, event: &str, t_s: f64, fields: Value) {
        let mut line = json!({ "event": event, "t_s": t_s });
        if let (Some(obj), Value::Object(more)) = (line.as_object_mut(), fields) {
            obj.extend(more);
        }
        self.write_line(format_args!("{line}"), event != "log");
    }

    /// Hands buffered lines to the kernel when the last flush is
    /// [`FLUSH_EVERY`] old (the runner calls this at least every 100 ms).
    pub fn tick(&self) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        if st.error.is_none() && st.last_flush.elapsed() >= FLUSH_EVERY {
            if let Err(e) = st.out.flush() {
                st.error = Some(format!("{}: {e}", self.path.display()));
            }
            st.last_flush = Instant::now();
        }
    }

    /// Flushes and syncs the file; returns the first write error, if any
    /// (the run's figures are still in its report).
    pub fn finish(&self) -> Option<String> {
        let mut st = self.state.lock().ok()?;
        if st.error.is_none() {
            if let Err(e) = st.out.flush().and_then(|_| st.out.get_ref().sync_data()) {
                st.error = Some(format!("{}: {e}", self.path.display()));
            }
        }
        st.error.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_json_and_reach_the_file_before_finish() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::create(&dir.path().join("sub"), "my run/1").unwrap();
        let path = dir.path().join("sub").join("samples.my_run_1.jsonl");
        j.start("my run/1", 42, 10.0);
        j.sample(0.5, 1024);
        j.event("stage_start", 0.6, json!({ "stage": "load" }));
        // Stage markers are flushed at once: readable while the run goes on.
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0]["pid"], 42);
        assert_eq!(lines[1]["rss_bytes"], 1024);
        assert_eq!(
            text.lines().nth(1),
            Some(r#"{"event":"sample","t_s":0.500000,"rss_bytes":1024}"#)
        );
        assert_eq!(lines[2]["stage"], "load");
        j.event("log", 0.7, json!({ "message": "a \"quoted\"\nline" }));
        assert_eq!(j.finish(), None);
        let text = std::fs::read_to_string(&path).unwrap();
        let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last["message"], "a \"quoted\"\nline");
    }

    #[test]
    fn an_unwritable_directory_is_bad_input_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, "x").unwrap();
        let err = Journal::create(&file.join("sub"), "legacy").err().unwrap();
        assert_eq!(
            crate::error::exit_code_of(&err),
            crate::error::Exit::BadInput
        );
        assert!(err.to_string().contains("plain-file"), "{err}");
    }
}
