//! The child's side of measurement: stage boundaries with exact kernel peaks.
//!
//! At each stage start the child resets its peak RSS (`echo 5 > /proc/self/clear_refs`)
//! and at the end reads `VmHWM`: the kernel's own high-water mark for exactly that
//! span, which no sampler can miss. Markers go to the parent over stdout.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{Context, Result};

use crate::protocol::OutputSummary;
use crate::protocol::{monotonic_ns, Event};
use crate::sampler::{reset_hwm_of, status_memory};

/// Test hook, read only in a replay child: the child panics right after it
/// starts the stage of this name, so the tests can prove that a crashing
/// child yields a report that says where and why, with exit code 6. Not for
/// production use (it is documented with the tests in README).
pub const PANIC_IN_STAGE_ENV: &str = "OOMLAB_TEST_PANIC_IN_STAGE";

/// Test hook, read only in a replay child: the child sleeps for 10 minutes
/// right after it starts the stage of this name, so the tests can interrupt
/// (or SIGKILL) oomlab at a known stage without racing a fast replay.
pub const PAUSE_IN_STAGE_ENV: &str = "OOMLAB_TEST_PAUSE_IN_STAGE";

/// This process's id, as `/proc/<pid>` names it (`/proc/self`).
fn own_pid() -> i32 {
    std::process::id() as i32
}

/// Resets this process's VmHWM to its current RSS.
pub fn reset_peak() -> Result<()> {
    if reset_hwm_of(own_pid()) {
        Ok(())
    } else {
        anyhow::bail!(
            "resetting the peak RSS via /proc/self/clear_refs failed (needs Linux >= 4.0)"
        )
    }
}

/// VmHWM, VmRSS and RssAnon of this process, bytes. RssAnon (heap and
/// anonymous mappings, no file pages) is what a stage's live frames occupy:
/// unlike VmRSS it does not fall when the kernel reclaims clean pages of a
/// memory-mapped input file under memory pressure.
fn peak_rss_anon() -> Result<(u64, u64, u64)> {
    let m = status_memory(own_pid()).context("reading /proc/self/status")?;
    Ok((m.hwm, m.rss, m.rss_anon))
}

/// Details a stage reports about itself (rows, bytes), merged into its marker.
pub type Detail = BTreeMap<String, serde_json::Value>;

/// Adds a stage's heap figures (heap profiling runs only) to its details.
///
/// Keys, all exact for a given build and input: `heap_peak_bytes` (most live
/// heap bytes at any moment of the stage), `heap_total_bytes` (bytes allocated
/// during it), `heap_allocs` (allocations during it), `heap_start_bytes` and
/// `heap_end_bytes` (live heap bytes at its start and end).
fn insert_heap_figures(detail: &mut Detail, f: crate::alloc::StageHeapFigures) {
    use serde_json::json;
    detail.insert("heap_peak_bytes".into(), json!(f.peak_bytes));
    detail.insert("heap_total_bytes".into(), json!(f.total_bytes));
    detail.insert("heap_allocs".into(), json!(f.allocs));
    detail.insert("heap_start_bytes".into(), json!(f.start_bytes));
    detail.insert("heap_end_bytes".into(), json!(f.end_bytes));
}

/// Emits stage markers and log lines to the parent.
pub struct Probe {
    out: std::io::Stdout,
}

impl Default for Probe {
    fn default() -> Self {
        Self::new()
    }
}

impl Probe {
    /// A probe writing to this process's stdout.
    pub fn new() -> Self {
        Self {
            out: std::io::stdout(),
        }
    }

    fn emit(&self, event: &Event) {
        let mut out = self.out.lock();
        // A parent that went away cannot be told anything; carry on.
        let _ = writeln!(out, "{}", event.to_line());
        let _ = out.flush();
    }

    /// Runs `body` as the named stage, bracketed by a peak reset and a peak read.
    pub fn stage<T>(&self, name: &str, body: impl FnOnce(&mut Detail) -> Result<T>) -> Result<T> {
        reset_peak()?;
        let (_, rss_start, anon_start) = peak_rss_anon()?;
        self.emit(&Event::StageStart {
            stage: name.to_string(),
            t_ns: monotonic_ns(),
            rss_bytes: rss_start,
        });
        if std::env::var(PANIC_IN_STAGE_ENV).is_ok_and(|s| s == name) {
            panic!("{PANIC_IN_STAGE_ENV}={name}: test hook, panicking in stage {name}");
        }
        if std::env::var(PAUSE_IN_STAGE_ENV).is_ok_and(|s| s == name) {
            std::thread::sleep(std::time::Duration::from_secs(600));
        }
        let mut detail = Detail::new();
        let heap = crate::alloc::stage_start();
        let value = body(&mut detail).with_context(|| format!("stage `{name}`"))?;
        if let Some(heap) = heap {
            insert_heap_figures(&mut detail, heap.finish());
        }
        let (peak, rss, anon_end) = peak_rss_anon()?;
        detail.insert("rss_anon_start_bytes".into(), anon_start.into());
        detail.insert("rss_anon_end_bytes".into(), anon_end.into());
        self.emit(&Event::StageEnd {
            stage: name.to_string(),
            t_ns: monotonic_ns(),
            peak_bytes: peak,
            rss_bytes: rss,
            detail,
        });
        Ok(value)
    }

    /// Emits a pipeline log line (`INFO ...`).
    pub fn info(&self, message: impl Into<String>) {
        self.emit(&Event::Log {
            t_ns: monotonic_ns(),
            level: "INFO".into(),
            message: message.into(),
        });
    }

    /// Reports the prepared output.
    pub fn output(&self, summary: OutputSummary) {
        self.emit(&Event::Output(summary));
    }
}
