//! What a gate prints: a table per strategy, a one-line verdict naming the
//! regressed stages, markdown for `$GITHUB_STEP_SUMMARY`, and JSON on request.

use serde::Serialize;

use super::baseline::{BaselineStrategy, Floors};
use super::verdict::{trim_pct, Check, StageResult, StageVerdict, StrategyResult, Tolerances};
use crate::table::Table;
use crate::units::{format_bytes, format_count};

/// Bumped whenever a reader of the gate's JSON would misread a newer one.
pub const GATE_RESULT_SCHEMA_VERSION: u32 = 1;

/// The whole outcome of a gate, as written by `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct GateResult {
    pub schema_version: u32,
    /// The baseline file judged against.
    pub baseline: String,
    /// No stage regressed, appeared or disappeared.
    pub passed: bool,
    /// The figures were blessed into the baseline (`--update`).
    pub updated: bool,
    /// Plain runs per scenario the RSS medians were taken over.
    pub runs: u32,
    pub tolerances: Tolerances,
    pub floors: Floors,
    /// Wall time of the whole gate, seconds.
    pub wall_s: f64,
    /// Things a reader should know (different machine, different data, ...).
    pub notes: Vec<String>,
    /// The failing stages, for scripts that only want names.
    pub regressed: Vec<RegressedStage>,
    pub strategies: Vec<StrategyResult>,
}

/// A stage that fails the gate, named.
#[derive(Debug, Clone, Serialize)]
pub struct RegressedStage {
    pub scenario: String,
    pub strategy: String,
    pub baseline_strategy: String,
    pub stage: String,
    pub verdict: StageVerdict,
    pub reasons: Vec<String>,
}

impl GateResult {
    /// Assembles the result; `passed` follows from the stages.
    pub fn new(
        baseline: String,
        runs: u32,
        tolerances: Tolerances,
        floors: Floors,
        notes: Vec<String>,
        strategies: Vec<StrategyResult>,
    ) -> Self {
        let regressed: Vec<RegressedStage> = strategies
            .iter()
            .flat_map(|st| {
                st.failing().map(move |s| RegressedStage {
                    scenario: st.scenario.clone(),
                    strategy: st.strategy.clone(),
                    baseline_strategy: st.baseline_strategy.clone(),
                    stage: s.stage.clone(),
                    verdict: s.verdict,
                    reasons: s.reasons.clone(),
                })
            })
            .collect();
        Self {
            schema_version: GATE_RESULT_SCHEMA_VERSION,
            baseline,
            passed: regressed.is_empty(),
            updated: false,
            runs,
            tolerances,
            floors,
            wall_s: 0.0,
            notes,
            regressed,
            strategies,
        }
    }

    /// The verdict in one line per failing strategy, naming its stages.
    pub fn headline(&self) -> String {
        let stages: usize = self.strategies.iter().map(|s| s.stages.len()).sum();
        if self.updated {
            return format!(
                "gate: UPDATED: new figures blessed into {} (the table compares them with the previous baseline)",
                self.baseline
            );
        }
        if self.passed {
            return format!(
                "gate: PASS: {stages} stages of {} strateg{} within tolerance (RSS: median of {} run{}, {}%; heap: {}%)",
                self.strategies.len(),
                if self.strategies.len() == 1 { "y" } else { "ies" },
                self.runs,
                if self.runs == 1 { "" } else { "s" },
                trim_pct(self.tolerances.rss_pct),
                trim_pct(self.tolerances.heap_pct),
            );
        }
        let mut lines = Vec::new();
        for st in &self.strategies {
            if st.failing().next().is_none() {
                continue;
            }
            lines.push(format!(
                "gate: REGRESSION in {} / {}",
                st.scenario,
                st.label()
            ));
            let of = |v: StageVerdict| -> Vec<&StageResult> {
                st.stages.iter().filter(|s| s.verdict == v).collect()
            };
            let over: Vec<String> = of(StageVerdict::Regressed)
                .iter()
                .map(|s| format!("{} ({})", s.stage, s.reasons.join(", ")))
                .collect();
            let names = |v: Vec<&StageResult>| -> String {
                v.iter()
                    .map(|s| s.stage.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            if !over.is_empty() {
                lines.push(format!("  over tolerance: {}", over.join("; ")));
            }
            let new = of(StageVerdict::New);
            if !new.is_empty() {
                lines.push(format!("  not in the baseline: {}", names(new)));
            }
            let missing = of(StageVerdict::Missing);
            if !missing.is_empty() {
                lines.push(format!(
                    "  in the baseline but did not run: {}",
                    names(missing)
                ));
            }
        }
        lines.join("\n")
    }

    /// Plain-text rendering for the terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for st in &self.strategies {
            out += &format!("{} ({}) / {}\n", st.scenario, st.scenario_path, st.label());
            out += &table(st, self.runs).to_text();
            out += "\n";
        }
        for note in &self.notes {
            out += &format!("note: {note}\n");
        }
        out += &self.headline();
        out += "\n";
        out
    }

    /// Markdown for `$GITHUB_STEP_SUMMARY` and pull-request comments.
    pub fn to_markdown(&self) -> String {
        let mut out = format!(
            "## oomlab memory gate: {}\n\n",
            if self.updated {
                "baseline updated"
            } else if self.passed {
                "✅ pass"
            } else {
                "❌ regression"
            }
        );
        for st in &self.strategies {
            out += &format!(
                "### {} / {} (`{}`)\n\n",
                st.scenario,
                st.label(),
                st.scenario_path
            );
            out += &table(st, self.runs).to_markdown();
            out += "\n";
        }
        out += &format!(
            "RSS: exact per-stage peak (VmHWM), median of {} run(s), tolerance {}%. Heap: dhat, one profiled run, exact, tolerance {}%. Baseline: `{}`.\n\n",
            self.runs,
            trim_pct(self.tolerances.rss_pct),
            trim_pct(self.tolerances.heap_pct),
            self.baseline
        );
        for note in &self.notes {
            out += &format!("> {note}\n\n");
        }
        for (i, line) in self.headline().lines().enumerate() {
            if i == 0 {
                out += &format!("**{line}**\n\n");
            } else {
                out += &format!("- {}\n", line.trim());
            }
        }
        out
    }
}

/// The per-stage table of one strategy.
pub fn table(st: &StrategyResult, runs: u32) -> Table {
    let headers = [
        "Stage".to_string(),
        "RSS baseline".to_string(),
        format!("RSS now (median of {runs})"),
        "Spread".to_string(),
        "RSS Δ".to_string(),
        "Heap peak baseline".to_string(),
        "Heap peak now".to_string(),
        "Heap Δ".to_string(),
        "Allocated Δ".to_string(),
        "Allocs Δ".to_string(),
        "Verdict".to_string(),
    ]
    .to_vec();
    let rows = st.stages.iter().map(row).collect();
    Table { headers, rows }
}

fn row(s: &StageResult) -> Vec<String> {
    let bytes = |c: Option<&Check>, now: bool| {
        c.map(|c| format_bytes(if now { c.now } else { c.baseline }))
            .unwrap_or_else(|| "-".into())
    };
    let change = |c: Option<&Check>| c.map(Check::change_text).unwrap_or_else(|| "-".into());
    let rss = s.rss.as_ref().map(|r| &r.check);
    vec![
        s.stage.clone(),
        bytes(rss, false),
        bytes(rss, true),
        s.rss
            .as_ref()
            .map(|r| format_bytes(r.spread_bytes))
            .unwrap_or_else(|| "-".into()),
        change(rss),
        bytes(s.heap_peak.as_ref(), false),
        bytes(s.heap_peak.as_ref(), true),
        change(s.heap_peak.as_ref()),
        change(s.heap_total.as_ref()),
        s.heap_allocs
            .as_ref()
            .map(|c| format!("{} ({})", c.change_text(), format_count(c.now)))
            .unwrap_or_else(|| "-".into()),
        verdict_cell(s),
    ]
}

fn verdict_cell(s: &StageResult) -> String {
    match s.verdict {
        StageVerdict::Ok => "ok".into(),
        StageVerdict::Improved => format!("improved: {}", s.reasons.join(", ")),
        StageVerdict::Regressed => format!("REGRESSED: {}", s.reasons.join(", ")),
        StageVerdict::New => "NEW: not in the baseline".into(),
        StageVerdict::Missing => "MISSING: did not run".into(),
    }
}

/// The figures of a freshly blessed strategy (nothing to compare them with yet).
pub fn blessed_table(st: &BaselineStrategy) -> Table {
    let headers = [
        "Stage",
        "RSS peak (median)",
        "Spread",
        "Heap peak",
        "Heap allocated",
        "Allocations",
    ]
    .map(String::from)
    .to_vec();
    let rows = st
        .stages
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                format_bytes(s.rss_peak_bytes),
                format_bytes(super::spread(&s.rss_peak_runs_bytes)),
                format_bytes(s.heap_peak_bytes),
                format_bytes(s.heap_total_bytes),
                format_count(s.heap_allocs),
            ]
        })
        .collect();
    Table { headers, rows }
}
