//! The page of a `report.json`: per run, the RSS timeline with its stage
//! lanes and exact per-stage peaks, and the before/after table in the form
//! of the write-up's memory table.
//!
//! A one-hour record at 10 ms is 360,000 samples; embedded whole, its JSON
//! alone would be several megabytes and the browser would draw far more
//! points than it has pixels. So each timeline is thinned here, before it is
//! embedded, to the smallest and the largest sample of each of
//! [`DRAW_BUCKETS`] equal time buckets (about one per pixel of a wide
//! screen): every sample kept is a real one with its own time, the shape of
//! the curve is kept at that width, and the largest sample (the sampled
//! peak) is always one of them. The exact peaks come from the kernel (VmHWM)
//! and are embedded apart from the curve, never read off it.

use serde::Serialize;

use super::{fact, machine_line, Fact, Kind, Page};
use crate::report::{exit_description, Report, RunRecord, RunStatus};
use crate::table::{self, peak_cell};
use crate::units::{format_bytes, format_count};

/// Time buckets a timeline is thinned to (two samples each at most).
pub const DRAW_BUCKETS: usize = 2000;

/// The samples of a timeline that are drawn, and how many there were.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DrawnTimeline {
    pub t_s: Vec<f64>,
    pub rss_bytes: Vec<u64>,
    /// Samples in the report.
    pub samples: usize,
    /// Buckets the samples were thinned to (0: all drawn).
    pub buckets: usize,
}

/// Indices of the samples to draw: all of them when there are at most two
/// per bucket, else the first and last sample and the smallest and largest
/// of each of `buckets` equal spans of time, in time order.
pub fn thin(t_s: &[f64], rss: &[u64], buckets: usize) -> Vec<usize> {
    let n = t_s.len().min(rss.len());
    if n <= 2 * buckets.max(1) {
        return (0..n).collect();
    }
    let (t0, t1) = (t_s[0], t_s[n - 1]);
    let span = t1 - t0;
    if !(span.is_finite() && span > 0.0) {
        // Times that do not advance: thin by position instead.
        return thin_by_position(rss, n, buckets);
    }
    let mut keep = Vec::with_capacity(2 * buckets + 2);
    keep.push(0);
    let mut i = 0;
    for b in 0..buckets {
        let end_t = t0 + span * (b + 1) as f64 / buckets as f64;
        let start = i;
        while i < n && (t_s[i] <= end_t || b == buckets - 1) {
            i += 1;
        }
        if i > start {
            push_extremes(&mut keep, rss, start, i);
        }
    }
    // Samples whose time is not finite fell through; keep them by position.
    if i < n {
        push_extremes(&mut keep, rss, i, n);
    }
    keep.push(n - 1);
    keep.sort_unstable();
    keep.dedup();
    keep
}

fn thin_by_position(rss: &[u64], n: usize, buckets: usize) -> Vec<usize> {
    let mut keep = vec![0];
    for b in 0..buckets {
        let (start, end) = (n * b / buckets, n * (b + 1) / buckets);
        if end > start {
            push_extremes(&mut keep, rss, start, end);
        }
    }
    keep.push(n - 1);
    keep.sort_unstable();
    keep.dedup();
    keep
}

/// Pushes the indices of the smallest and largest sample in `start..end`
/// (the first of equal largest values, so the peak is the first time it was seen).
fn push_extremes(keep: &mut Vec<usize>, rss: &[u64], start: usize, end: usize) {
    let mut lo = start;
    let mut hi = start;
    for j in start..end {
        if rss[j] < rss[lo] {
            lo = j;
        }
        if rss[j] > rss[hi] {
            hi = j;
        }
    }
    keep.push(lo);
    keep.push(hi);
}

/// The samples to draw for a run. A run that did not complete ends where it
/// was last seen holding memory: its trailing zero samples are the kernel
/// tearing the dead process down, not the pipeline (as in the pictures).
pub fn drawn(run: &RunRecord, buckets: usize) -> DrawnTimeline {
    let tl = &run.timeline;
    let mut n = tl.t_s.len().min(tl.rss_bytes.len());
    if run.status != RunStatus::Completed {
        let alive = tl.rss_bytes[..n]
            .iter()
            .rposition(|&b| b > 0)
            .map_or(0, |i| i + 1);
        if alive > 0 {
            n = alive;
        }
    }
    let keep = thin(&tl.t_s[..n], &tl.rss_bytes[..n], buckets);
    DrawnTimeline {
        t_s: keep.iter().map(|&i| tl.t_s[i]).collect(),
        rss_bytes: keep.iter().map(|&i| tl.rss_bytes[i]).collect(),
        samples: n,
        buckets: if keep.len() < n { buckets } else { 0 },
    }
}

/// One stage of a run, as its lane shows it.
#[derive(Debug, Clone, Serialize)]
struct StageView {
    name: String,
    start_s: f64,
    end_s: f64,
    exact_peak_bytes: Option<u64>,
    sampled_peak_bytes: Option<u64>,
    /// What the exact figure is (VmHWM, cgroup, an upper bound).
    peak_source: Option<String>,
}

/// How a run ended, for the marker at its end.
#[derive(Debug, Clone, Serialize)]
struct Ending {
    /// `killed`, `failed`, `interrupted`.
    kind: &'static str,
    text: String,
    t_s: Option<f64>,
    rss_bytes: Option<u64>,
}

/// One run of the report.
#[derive(Debug, Clone, Serialize)]
struct RunView {
    strategy: String,
    /// The table's figure: the exact peak, or how the run ended.
    summary: String,
    peak_bytes: Option<u64>,
    peak_source: Option<String>,
    peak_stage: Option<String>,
    sampled_peak_bytes: u64,
    wall_s: f64,
    limit_bytes: Option<u64>,
    ending: Option<Ending>,
    stages: Vec<StageView>,
    timeline: DrawnTimeline,
}

/// The before/after table's cells.
#[derive(Debug, Clone, Serialize)]
struct TableView {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

#[derive(Debug, Clone, Serialize)]
struct ReportBody {
    command: String,
    interval_ms: f64,
    runs: Vec<RunView>,
    table: TableView,
    notes: Vec<String>,
}

fn ending(run: &RunRecord) -> Option<Ending> {
    match &run.status {
        RunStatus::Completed => None,
        RunStatus::Killed {
            stage,
            t_s,
            rss_bytes,
            by,
            ..
        } => Some(Ending {
            kind: "killed",
            text: format!(
                "OOM-killed ({by}) in {} at {t_s:.2} s, RSS {}",
                stage.as_deref().unwrap_or("start"),
                format_bytes(*rss_bytes)
            ),
            t_s: Some(*t_s),
            rss_bytes: Some(*rss_bytes),
        }),
        RunStatus::Interrupted {
            signal,
            stage,
            t_s,
            rss_bytes,
        } => Some(Ending {
            kind: "interrupted",
            text: format!(
                "interrupted (signal {signal}) in {} at {t_s:.2} s",
                stage.as_deref().unwrap_or("start")
            ),
            t_s: Some(*t_s),
            rss_bytes: Some(*rss_bytes),
        }),
        RunStatus::Failed {
            exit_code,
            signal,
            stage,
            message,
        } => Some(Ending {
            kind: "failed",
            text: format!(
                "failed ({}) in {}: {message}",
                exit_description(*exit_code, *signal),
                stage.as_deref().unwrap_or("start")
            ),
            t_s: None,
            rss_bytes: None,
        }),
    }
}

fn run_view(run: &RunRecord) -> RunView {
    RunView {
        strategy: run.strategy.clone(),
        summary: peak_cell(run),
        peak_bytes: run.peak_bytes,
        peak_source: run.peak_source.map(|s| s.describe().to_string()),
        peak_stage: run.peak_stage().map(|s| s.name.clone()),
        sampled_peak_bytes: run.sampled_peak_bytes,
        wall_s: run.wall_s,
        limit_bytes: run.memory_limit.as_ref().map(|l| l.limit_bytes),
        ending: ending(run),
        stages: run
            .stages
            .iter()
            .map(|s| StageView {
                name: s.name.clone(),
                start_s: s.start_s,
                end_s: s.end_s,
                exact_peak_bytes: s.exact_peak_bytes,
                sampled_peak_bytes: s.sampled_peak_bytes,
                peak_source: s.peak_source.map(|p| p.describe().to_string()),
            })
            .collect(),
        timeline: drawn(run, DRAW_BUCKETS),
    }
}

/// What produced a report's figures.
fn provenance(report: &Report, source: &str) -> Vec<Fact> {
    let s = &report.scenario;
    let recorded = report.runs.iter().find_map(|r| r.recorded.as_ref());
    let mut facts = Vec::new();
    match recorded {
        Some(rec) => {
            facts.push(fact(
                "command",
                format!("oomlab record -- {}", rec.argv.join(" ")),
            ));
            facts.push(fact(
                "replay mode",
                "none: a recorded command, measured as it ran (its process tree)",
            ));
            facts.push(fact(
                "pandas",
                "the recorded command's own (oomlab does not replay it)",
            ));
            facts.push(fact("working directory", rec.cwd.clone()));
        }
        None => {
            let strategies: Vec<&str> = report.runs.iter().map(|r| r.strategy.as_str()).collect();
            facts.push(fact(
                "command",
                format!(
                    "oomlab {} --scenario {} --scale {} ({})",
                    report.command,
                    s.path,
                    s.scale,
                    strategies.join(", ")
                ),
            ));
            let mode = report.settings.memory_mode;
            facts.push(fact(
                "replay mode",
                format!(
                    "oomlab's replay in Rust, memory mode {} (figures in {} bytes)",
                    mode.name(),
                    mode.label()
                ),
            ));
            facts.push(fact(
                "pandas",
                match mode {
                    crate::strategy::memory::MemoryMode::Pandas => {
                        "not run: the replay models pandas 2.x's memory (pandas 3 pays differently)"
                    }
                    crate::strategy::memory::MemoryMode::Polars => {
                        "not run: the replay holds frames as polars does"
                    }
                },
            ));
            facts.push(fact(
                "data",
                format!(
                    "scenario {} at scale {} (seed {}, data hash {}): {} samples",
                    s.name,
                    s.scale,
                    s.seed,
                    if s.data_hash.is_empty() {
                        "-"
                    } else {
                        &s.data_hash
                    },
                    format_count(s.scaled.sample_rows)
                ),
            ));
        }
    }
    let mrs = report.settings.max_ranking_samples;
    facts.push(fact(
        "MAX_RANKING_SAMPLES",
        format!(
            "{} ({})",
            if mrs == 0 {
                "0 (no limit)".to_string()
            } else {
                format_count(mrs)
            },
            report.settings.max_ranking_samples_source
        ),
    ));
    facts.push(fact(
        "sampling",
        format!(
            "RSS every {} ms from /proc in the parent; exact peaks from the kernel (VmHWM per stage)",
            report.settings.interval_ms
        ),
    ));
    facts.push(fact("allocator", report.allocator.clone()));
    facts.push(fact("machine", machine_line(&report.machine)));
    facts.push(fact(
        "written",
        format!(
            "{} by oomlab {} from {source}",
            report.created_at, report.oomlab_version
        ),
    ));
    facts
}

/// The page of a report; `source` names the `report.json` it shows.
pub fn page(report: &Report, source: &str) -> Page {
    let t = table::before_after(report);
    let mut notes = Vec::new();
    if let Some(i) = &report.interrupted {
        notes.push(format!(
            "Interrupted by {}: a partial report, with what was measured until then.",
            i.signal_name
        ));
    }
    if let Some(several) = report.runs.iter().find_map(|r| r.timeline.several) {
        notes.push(format!("Note: {}.", several.describe()));
    }
    let body = ReportBody {
        command: report.command.clone(),
        interval_ms: report.settings.interval_ms,
        runs: report.runs.iter().map(run_view).collect(),
        table: TableView {
            headers: t.headers,
            rows: t.rows,
        },
        notes,
    };
    let peaks: Vec<String> = report
        .runs
        .iter()
        .map(|r| format!("{} {}", r.strategy, peak_cell(r)))
        .collect();
    Page {
        kind: Kind::Report,
        title: format!("oomlab {}: {}", report.command, report.scenario.name),
        subtitle: peaks.join(" · "),
        provenance: provenance(report, source),
        body: serde_json::to_value(body).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_the_peak_the_ends_and_real_samples() {
        let n = 360_000;
        let t: Vec<f64> = (0..n).map(|i| i as f64 * 0.01).collect();
        let mut rss: Vec<u64> = (0..n)
            .map(|i| 1_000_000 + ((i * 7919) % 1000) as u64)
            .collect();
        rss[123_457] = 9_999_999_999;
        let keep = thin(&t, &rss, DRAW_BUCKETS);
        assert!(keep.len() <= 2 * DRAW_BUCKETS + 2, "{}", keep.len());
        assert!(keep.contains(&123_457));
        assert_eq!(keep.first(), Some(&0));
        assert_eq!(keep.last(), Some(&(n - 1)));
        assert!(keep.windows(2).all(|w| w[0] < w[1]));
        // Every bucket's smallest sample is kept too (the valleys stay).
        let min_kept = keep.iter().map(|&i| rss[i]).min().unwrap();
        assert_eq!(min_kept, *rss.iter().min().unwrap());
    }

    #[test]
    fn short_and_odd_timelines_are_drawn_whole_or_without_panic() {
        assert_eq!(thin(&[0.0, 1.0], &[1, 2], 10), vec![0, 1]);
        assert!(thin(&[], &[], 10).is_empty());
        let t = vec![5.0; 100];
        let rss: Vec<u64> = (0..100).collect();
        let keep = thin(&t, &rss, 10);
        assert!(keep.contains(&99) && keep.len() <= 22);
        let t: Vec<f64> = (0..100)
            .map(|i| if i == 50 { f64::NAN } else { i as f64 })
            .collect();
        let keep = thin(&t, &rss, 10);
        assert!(keep.contains(&99));
    }
}
