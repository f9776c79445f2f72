//! Judging measured figures against a baseline, stage by stage.
//!
//! A figure regresses when it rose by more than its tolerance (a percentage)
//! and by more than its floor (an absolute amount, so a tiny stage cannot fail
//! on a page). A stage the baseline does not know, or a blessed stage that no
//! longer runs, also fails: the baseline no longer describes the code, and a
//! renamed stage must not hide a regression. Lower figures pass and are
//! reported as improvements, to be blessed with `--update`.

use serde::Serialize;

use super::baseline::{Baseline, BaselineStage, Floors};
use super::{median, spread, MeasuredScenario, MeasuredStage};

/// The two tolerances given on the command line, in percent.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Tolerances {
    pub rss_pct: f64,
    pub heap_pct: f64,
}

/// How one figure compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Improved,
    Regressed,
}

/// One figure: baseline, now, change and the rule it was judged by.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub baseline: u64,
    pub now: u64,
    /// `(now - baseline) / baseline` in percent; `None` when the baseline is 0.
    pub change_pct: Option<f64>,
    pub tolerance_pct: f64,
    pub floor: u64,
    pub outcome: Outcome,
}

impl Check {
    /// Judges `now` against `baseline` with a tolerance and a floor.
    pub fn judge(baseline: u64, now: u64, tolerance_pct: f64, floor: u64) -> Check {
        let change_pct =
            (baseline > 0).then(|| (now as f64 - baseline as f64) / baseline as f64 * 100.0);
        let allowed = baseline as f64 * tolerance_pct / 100.0;
        let outcome =
            if now > baseline && (now - baseline) as f64 > allowed && now - baseline > floor {
                Outcome::Regressed
            } else if now < baseline && (baseline - now) as f64 > allowed && baseline - now > floor
            {
                Outcome::Improved
            } else {
                Outcome::Ok
            };
        Check {
            baseline,
            now,
            change_pct,
            tolerance_pct,
            floor,
            outcome,
        }
    }

    /// `+12.3%`, or `new` when there was nothing before.
    pub fn change_text(&self) -> String {
        match self.change_pct {
            Some(p) if p.abs() < 0.05 => "0.0%".into(),
            Some(p) => format!("{p:+.1}%"),
            None if self.now == 0 => "0.0%".into(),
            None => "new".into(),
        }
    }
}

/// The RSS figure of a stage: medians of several runs and their spreads.
#[derive(Debug, Clone, Serialize)]
pub struct RssCheck {
    #[serde(flatten)]
    pub check: Check,
    pub runs_bytes: Vec<u64>,
    pub spread_bytes: u64,
    pub baseline_runs_bytes: Vec<u64>,
    pub baseline_spread_bytes: u64,
}

/// A stage's overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageVerdict {
    Ok,
    Improved,
    Regressed,
    /// Ran now, but the baseline has no such stage.
    New,
    /// In the baseline, but did not run now.
    Missing,
}

impl StageVerdict {
    /// Whether this verdict fails the gate.
    pub fn fails(self) -> bool {
        matches!(self, Self::Regressed | Self::New | Self::Missing)
    }
}

/// Everything known about one stage.
#[derive(Debug, Clone, Serialize)]
pub struct StageResult {
    pub stage: String,
    pub verdict: StageVerdict,
    pub rss: Option<RssCheck>,
    pub heap_peak: Option<Check>,
    pub heap_total: Option<Check>,
    pub heap_allocs: Option<Check>,
    /// Why it failed or improved, one short phrase per figure.
    pub reasons: Vec<String>,
}

/// One strategy judged against one baseline strategy.
#[derive(Debug, Clone, Serialize)]
pub struct StrategyResult {
    pub scenario: String,
    pub scenario_path: String,
    /// The strategy that ran.
    pub strategy: String,
    /// The baseline strategy it was judged against.
    pub baseline_strategy: String,
    pub stages: Vec<StageResult>,
}

impl StrategyResult {
    /// `optimized`, or `legacy (as optimized)` under `--strategy-as`.
    pub fn label(&self) -> String {
        if self.strategy == self.baseline_strategy {
            self.strategy.clone()
        } else {
            format!("{} (as {})", self.strategy, self.baseline_strategy)
        }
    }

    /// The stages that fail the gate.
    pub fn failing(&self) -> impl Iterator<Item = &StageResult> {
        self.stages.iter().filter(|s| s.verdict.fails())
    }
}

/// Judges everything measured against the baseline.
pub fn judge_all(
    baseline: &Baseline,
    measured: &[MeasuredScenario],
    tolerances: Tolerances,
) -> Vec<StrategyResult> {
    let mut out = Vec::new();
    for sc in measured {
        let entry = baseline.scenarios.iter().find(|b| b.path == sc.path);
        for st in &sc.strategies {
            let blessed = entry.and_then(|e| e.strategy(&st.baseline));
            let mut stages: Vec<StageResult> = st
                .stages
                .iter()
                .map(|m| match blessed.and_then(|b| b.stage(&m.name)) {
                    Some(b) => judge_stage(b, m, tolerances, baseline.floors),
                    None => new_stage(m),
                })
                .collect();
            if let Some(b) = blessed {
                for gone in b
                    .stages
                    .iter()
                    .filter(|b| !st.stages.iter().any(|m| m.name == b.name))
                {
                    stages.push(StageResult {
                        stage: gone.name.clone(),
                        verdict: StageVerdict::Missing,
                        rss: None,
                        heap_peak: None,
                        heap_total: None,
                        heap_allocs: None,
                        reasons: vec!["in the baseline but did not run".into()],
                    });
                }
            }
            out.push(StrategyResult {
                scenario: sc.name.clone(),
                scenario_path: sc.path.clone(),
                strategy: st.run.clone(),
                baseline_strategy: st.baseline.clone(),
                stages,
            });
        }
    }
    out
}

fn new_stage(m: &MeasuredStage) -> StageResult {
    StageResult {
        stage: m.name.clone(),
        verdict: StageVerdict::New,
        rss: None,
        heap_peak: None,
        heap_total: None,
        heap_allocs: None,
        reasons: vec!["not in the baseline".into()],
    }
}

/// Judges one stage: RSS median against the blessed median, heap figures exactly.
pub fn judge_stage(
    b: &BaselineStage,
    m: &MeasuredStage,
    tolerances: Tolerances,
    floors: Floors,
) -> StageResult {
    let rss_tol = b.rss_tolerance_pct.unwrap_or(tolerances.rss_pct);
    let heap_tol = b.heap_tolerance_pct.unwrap_or(tolerances.heap_pct);
    let rss = RssCheck {
        check: Check::judge(
            b.rss_peak_bytes,
            median(&m.rss_peak_runs_bytes),
            rss_tol,
            floors.rss_bytes,
        ),
        runs_bytes: m.rss_peak_runs_bytes.clone(),
        spread_bytes: spread(&m.rss_peak_runs_bytes),
        baseline_runs_bytes: b.rss_peak_runs_bytes.clone(),
        baseline_spread_bytes: spread(&b.rss_peak_runs_bytes),
    };
    let heap_peak = Check::judge(
        b.heap_peak_bytes,
        m.heap.peak_bytes,
        heap_tol,
        floors.heap_bytes,
    );
    let heap_total = Check::judge(
        b.heap_total_bytes,
        m.heap.total_bytes,
        heap_tol,
        floors.heap_bytes,
    );
    let heap_allocs = Check::judge(b.heap_allocs, m.heap.allocs, heap_tol, floors.heap_allocs);
    let named = [
        ("RSS peak", &rss.check),
        ("heap peak", &heap_peak),
        ("heap allocated", &heap_total),
        ("allocations", &heap_allocs),
    ];
    let mut reasons = Vec::new();
    for (name, c) in named
        .iter()
        .filter(|(_, c)| c.outcome == Outcome::Regressed)
    {
        reasons.push(format!(
            "{name} {} > {}%",
            c.change_text(),
            trim_pct(c.tolerance_pct)
        ));
    }
    let verdict = if !reasons.is_empty() {
        StageVerdict::Regressed
    } else if named.iter().any(|(_, c)| c.outcome == Outcome::Improved) {
        for (name, c) in named.iter().filter(|(_, c)| c.outcome == Outcome::Improved) {
            reasons.push(format!("{name} {}", c.change_text()));
        }
        StageVerdict::Improved
    } else {
        StageVerdict::Ok
    };
    StageResult {
        stage: m.name.clone(),
        verdict,
        rss: Some(rss),
        heap_peak: Some(heap_peak),
        heap_total: Some(heap_total),
        heap_allocs: Some(heap_allocs),
        reasons,
    }
}

/// `2` for 2.0, `2.5` for 2.5: tolerances as people wrote them.
pub fn trim_pct(p: f64) -> String {
    let s = format!("{p:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerance_and_floor_both_must_be_exceeded() {
        // +5% of 100 MiB is within 10%.
        assert_eq!(
            Check::judge(100 << 20, 105 << 20, 10.0, 4 << 20).outcome,
            Outcome::Ok
        );
        // +20% fails.
        assert_eq!(
            Check::judge(100 << 20, 120 << 20, 10.0, 4 << 20).outcome,
            Outcome::Regressed
        );
        // +50% of a tiny figure stays under the floor.
        assert_eq!(Check::judge(10, 15, 2.0, 256).outcome, Outcome::Ok);
        // A drop beyond tolerance and floor is an improvement.
        assert_eq!(
            Check::judge(100 << 20, 50 << 20, 10.0, 4 << 20).outcome,
            Outcome::Improved
        );
        // From nothing to something above the floor.
        let c = Check::judge(0, 1 << 20, 2.0, 1024);
        assert_eq!(c.outcome, Outcome::Regressed);
        assert_eq!(c.change_text(), "new");
    }

    #[test]
    fn percentages_print_as_written() {
        assert_eq!(trim_pct(2.0), "2");
        assert_eq!(trim_pct(2.5), "2.5");
        assert_eq!(trim_pct(10.0), "10");
    }
}
