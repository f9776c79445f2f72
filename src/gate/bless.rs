//! Blessing: the baseline after `--update`, and the notes a verdict carries
//! when the figures may differ for reasons other than the code.

use super::baseline::*;
use super::median;
use super::verdict::StrategyResult;
use super::MeasuredScenario;
use crate::child::ALLOCATOR;
use crate::machine::MachineFacts;
use crate::report::utc_now_rfc3339;

/// Reasons the figures may differ for reasons other than the code.
pub fn comparability_notes(
    baseline: &Baseline,
    measured: &[MeasuredScenario],
    machine: &MachineFacts,
) -> Vec<String> {
    let mut notes = Vec::new();
    if baseline.machine.cpus != machine.cpus {
        notes.push(format!(
            "the baseline was blessed on a {}-CPU machine, this one has {}: RSS and allocation counts depend on the thread count; bless on the machine class that runs the gate",
            baseline.machine.cpus, machine.cpus
        ));
    }
    if baseline.allocator != ALLOCATOR {
        notes.push(format!(
            "the baseline's allocator was `{}`, now `{ALLOCATOR}`",
            baseline.allocator
        ));
    }
    if baseline.oomlab_version != env!("CARGO_PKG_VERSION") {
        notes.push(format!(
            "the baseline was blessed by oomlab {}, this is {}",
            baseline.oomlab_version,
            env!("CARGO_PKG_VERSION")
        ));
    }
    for m in measured {
        if let Some(b) = baseline.scenarios.iter().find(|b| b.path == m.path) {
            if b.data_hash != m.data_hash {
                notes.push(format!(
                    "{}: the generated data differs from the baseline's (hash {} now, {} blessed): the scenario or the generator changed",
                    m.path, m.data_hash, b.data_hash
                ));
            }
        }
    }
    notes
}

/// Stages whose RSS runs disagreed by more than the stage's tolerance: a
/// verdict on them is close to a coin toss, and the reader should know.
pub fn spread_notes(strategies: &[StrategyResult], floors: Floors) -> Vec<String> {
    let mut notes = Vec::new();
    for st in strategies {
        for s in &st.stages {
            let Some(rss) = &s.rss else { continue };
            let pct = rss.spread_bytes as f64 / rss.check.now.max(1) as f64 * 100.0;
            if pct > rss.check.tolerance_pct && rss.spread_bytes > floors.rss_bytes {
                notes.push(format!(
                    "{} / {} / {}: RSS varied by {pct:.1}% across runs, more than its {}% tolerance; raise --runs or the stage's rss_tolerance_pct",
                    st.scenario,
                    st.label(),
                    s.stage,
                    rss.check.tolerance_pct
                ));
            }
        }
    }
    notes
}

/// The baseline after `--update`: measured entries replace their scenario's
/// entry; per-stage tolerances and floors set by hand are kept.
pub fn bless(
    existing: Option<Baseline>,
    measured: &[MeasuredScenario],
    runs: u32,
    machine: &MachineFacts,
) -> Baseline {
    let mut baseline = existing.unwrap_or_else(|| Baseline {
        schema_version: BASELINE_SCHEMA_VERSION,
        kind: BASELINE_KIND.into(),
        oomlab_version: String::new(),
        created_at: String::new(),
        machine: BaselineMachine::from(machine),
        allocator: String::new(),
        floors: Floors::default(),
        scenarios: Vec::new(),
        commands: Vec::new(),
    });
    baseline.oomlab_version = env!("CARGO_PKG_VERSION").into();
    baseline.created_at = utc_now_rfc3339();
    baseline.machine = BaselineMachine::from(machine);
    baseline.allocator = ALLOCATOR.into();
    for m in measured {
        let old = baseline.scenario_mut(&m.path).map(|s| s.clone());
        let strategies = m
            .strategies
            .iter()
            .map(|st| {
                let old_st = old.as_ref().and_then(|o| o.strategy(&st.baseline));
                BaselineStrategy {
                    name: st.baseline.clone(),
                    stages: st
                        .stages
                        .iter()
                        .map(|s| {
                            let old_stage = old_st.and_then(|o| o.stage(&s.name));
                            BaselineStage {
                                name: s.name.clone(),
                                rss_peak_bytes: median(&s.rss_peak_runs_bytes),
                                rss_peak_runs_bytes: s.rss_peak_runs_bytes.clone(),
                                heap_peak_bytes: s.heap.peak_bytes,
                                heap_total_bytes: s.heap.total_bytes,
                                heap_allocs: s.heap.allocs,
                                rss_tolerance_pct: old_stage.and_then(|o| o.rss_tolerance_pct),
                                heap_tolerance_pct: old_stage.and_then(|o| o.heap_tolerance_pct),
                            }
                        })
                        .collect(),
                }
            })
            .collect();
        let entry = BaselineScenario {
            path: m.path.clone(),
            name: m.name.clone(),
            scale: m.scale,
            max_ranking_samples: m.max_ranking_samples,
            data_hash: m.data_hash.clone(),
            rss_runs: runs,
            strategies,
        };
        match baseline.scenario_mut(&m.path) {
            Some(slot) => *slot = entry,
            None => baseline.scenarios.push(entry),
        }
    }
    baseline
}
