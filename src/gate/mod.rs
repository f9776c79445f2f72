//! The memory-regression gate: re-run what a committed baseline names, compare
//! per stage, and fail the build when a stage needs more memory than blessed.
//!
//! Two kinds of figure, judged differently:
//! - heap figures from dhat (peak live bytes, bytes allocated, allocations) are
//!   exact and deterministic for a given build and input, so one heap
//!   profiling run is compared tightly (default 2%);
//! - the exact peak RSS (VmHWM) is what the OOM killer sees, but it moves a
//!   little from run to run, so the median of several runs without heap
//!   profiling (dhat's bookkeeping would inflate RSS) is compared with a wider
//!   tolerance (default 10%), and the spread is reported.
//!
//! Besides oomlab's own replay, a baseline can hold **command entries**: a
//! team's own pipeline run at a few small sizes, gated per stage on its peak
//! at the largest size and on its per-row slope, which is what production
//! pays ([`command`]); `--against REV` runs the same comparison against a
//! git revision in the same job ([`against`]).
//!
//! Measuring goes through [`crate::replay::ReplayPlan`] like every other
//! command ([`run`]); the rest turns reports into baselines ([`bless`]) and
//! verdicts ([`verdict`], [`render`]).

pub mod against;
pub mod baseline;
pub mod bless;
pub mod command;
pub mod lines;
pub mod render;
pub mod run;
pub mod verdict;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::error::{exit_with, Exit};
use crate::report::{Report, RunStatus};

/// One stage as measured now: RSS peaks of the plain runs, heap figures of the
/// heap profiling run.
#[derive(Debug, Clone, Serialize)]
pub struct MeasuredStage {
    pub name: String,
    /// Exact peak RSS (VmHWM) of the stage in each plain run, in run order.
    pub rss_peak_runs_bytes: Vec<u64>,
    pub heap: HeapFigures,
}

/// dhat's figures for one stage (see `alloc.rs` for what each one counts).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct HeapFigures {
    pub peak_bytes: u64,
    pub total_bytes: u64,
    pub allocs: u64,
}

/// One strategy as measured now.
#[derive(Debug, Clone, Serialize)]
pub struct MeasuredStrategy {
    /// The strategy that ran.
    pub run: String,
    /// The baseline strategy it is judged against (differs under `--strategy-as`).
    pub baseline: String,
    pub stages: Vec<MeasuredStage>,
}

/// One scenario entry as measured now.
#[derive(Debug, Clone, Serialize)]
pub struct MeasuredScenario {
    pub path: String,
    pub name: String,
    pub scale: f64,
    pub max_ranking_samples: u64,
    pub data_hash: String,
    pub strategies: Vec<MeasuredStrategy>,
}

/// Median of a non-empty list (the lower middle value for even lengths, so
/// the median is always a figure some run really had).
pub fn median(values: &[u64]) -> u64 {
    let mut v = values.to_vec();
    v.sort_unstable();
    v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or(0)
}

/// Largest minus smallest value: how much the runs disagreed.
pub fn spread(values: &[u64]) -> u64 {
    let max = values.iter().copied().max().unwrap_or(0);
    let min = values.iter().copied().min().unwrap_or(0);
    max - min
}

/// Refuses a report with a strategy that did not complete: there is nothing to
/// compare, and the replay's own exit code (5 killed, 6 failed) says why.
pub fn require_completed(report: &Report, what: &str) -> Result<()> {
    for run in &report.runs {
        if run.status != RunStatus::Completed {
            let exit = crate::report::exit_for(report);
            return Err(exit_with(
                exit,
                format!(
                    "gate: {} on {} did not complete in the {what} run: {:?}{}",
                    run.strategy,
                    report.scenario.name,
                    run.status,
                    if run.stderr_tail.is_empty() {
                        String::new()
                    } else {
                        format!("\n{}", run.stderr_tail.join("\n"))
                    }
                ),
            ));
        }
    }
    Ok(())
}

/// Combines one heap profiling report and the plain reports of the same plan
/// into per-stage figures. `pairs` maps each run strategy to the baseline
/// strategy it is judged against.
pub fn measured_from_reports(
    path: &str,
    heap: &Report,
    plain: &[Report],
    pairs: &[(String, String)],
) -> Result<MeasuredScenario> {
    let mut strategies = Vec::new();
    for (run_name, baseline_name) in pairs {
        let heap_run = heap
            .run(run_name)
            .with_context(|| format!("the heap run has no strategy {run_name}"))?;
        let mut stages = Vec::new();
        for stage in &heap_run.stages {
            let figure = |key: &str| {
                stage
                    .detail
                    .get(key)
                    .and_then(|v| v.as_u64())
                    .with_context(|| {
                        format!(
                            "{run_name}/{}: the heap profiling child reported no {key}",
                            stage.name
                        )
                    })
            };
            let heap_figures = HeapFigures {
                peak_bytes: figure("heap_peak_bytes")?,
                total_bytes: figure("heap_total_bytes")?,
                allocs: figure("heap_allocs")?,
            };
            let mut rss = Vec::new();
            for report in plain {
                let peak = report
                    .run(run_name)
                    .and_then(|r| r.stages.iter().find(|s| s.name == stage.name))
                    .and_then(|s| s.exact_peak_bytes)
                    .with_context(|| {
                        format!("{run_name}/{}: a plain run has no exact peak", stage.name)
                    })?;
                rss.push(peak);
            }
            stages.push(MeasuredStage {
                name: stage.name.clone(),
                rss_peak_runs_bytes: rss,
                heap: heap_figures,
            });
        }
        strategies.push(MeasuredStrategy {
            run: run_name.clone(),
            baseline: baseline_name.clone(),
            stages,
        });
    }
    let data_hash = heap.scenario.data_hash.clone();
    if let Some(other) = plain.iter().find(|r| r.scenario.data_hash != data_hash) {
        return Err(exit_with(
            Exit::Internal,
            format!(
                "gate: the data changed between runs ({data_hash} then {}); is another process regenerating the cache?",
                other.scenario.data_hash
            ),
        ));
    }
    Ok(MeasuredScenario {
        path: path.to_string(),
        name: heap.scenario.name.clone(),
        scale: heap.scenario.scale,
        max_ranking_samples: heap.settings.max_ranking_samples,
        data_hash,
        strategies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_spread() {
        assert_eq!(median(&[5, 1, 3]), 3);
        assert_eq!(median(&[4, 1, 3, 2]), 2);
        assert_eq!(median(&[7]), 7);
        assert_eq!(spread(&[5, 1, 3]), 4);
        assert_eq!(spread(&[7]), 0);
    }
}
