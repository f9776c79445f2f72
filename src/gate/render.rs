//! What a gate prints: a table per strategy, a one-line verdict naming the
//! regressed stages, markdown for `$GITHUB_STEP_SUMMARY`, and JSON on request.

use serde::Serialize;

use super::baseline::{BaselineStrategy, CommandEntry, Floors};
use super::command::{signed_bytes, CommandResult, CommandTolerances};
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
    /// Tolerances of the command entries (peak and per-row slope).
    pub command_tolerances: CommandTolerances,
    /// Command entries judged: per stage, the peak at the largest size and
    /// the per-row slope.
    pub commands: Vec<CommandResult>,
    /// `--lines`: lines of a command's own code whose per-row cost grew or
    /// that appeared (any fails the gate), from a second, traced run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<(String, crate::lines::LineChange)>,
    /// Rows the lines' changes are priced at.
    #[serde(skip)]
    pub lines_production_rows: u64,
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
            command_tolerances: CommandTolerances {
                peak_pct: tolerances.rss_pct,
                slope_pct: 5.0,
            },
            commands: Vec::new(),
            lines: Vec::new(),
            lines_production_rows: 0,
        }
    }

    /// Adds `--lines`' changed lines of `command` (priced at
    /// `production_rows`); any fails the gate.
    pub fn with_lines(
        mut self,
        command: &str,
        changes: Vec<crate::lines::LineChange>,
        production_rows: u64,
    ) -> Self {
        if !changes.is_empty() {
            self.passed = false;
        }
        self.lines_production_rows = production_rows;
        self.lines
            .extend(changes.into_iter().map(|c| (command.to_string(), c)));
        self
    }

    /// Adds the judged command entries; `passed` and `regressed` follow.
    pub fn with_commands(
        mut self,
        tolerances: CommandTolerances,
        commands: Vec<CommandResult>,
    ) -> Self {
        for c in &commands {
            for s in c.failing() {
                self.regressed.push(RegressedStage {
                    scenario: "command".into(),
                    strategy: c.command.clone(),
                    baseline_strategy: c.against.clone(),
                    stage: s.stage.clone(),
                    verdict: s.verdict,
                    reasons: s.reasons.clone(),
                });
            }
        }
        self.passed = self.regressed.is_empty();
        self.command_tolerances = tolerances;
        self.commands = commands;
        self
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
        if self.passed && self.strategies.is_empty() {
            let stages: usize = self.commands.iter().map(|c| c.stages.len()).sum();
            return format!(
                "gate: PASS: {stages} stages of {} command{} within tolerance (peak: median of {} run{}, {}%; per-row cost: {}%)",
                self.commands.len(),
                if self.commands.len() == 1 { "" } else { "s" },
                self.runs,
                if self.runs == 1 { "" } else { "s" },
                trim_pct(self.command_tolerances.peak_pct),
                trim_pct(self.command_tolerances.slope_pct),
            );
        }
        if self.passed {
            let commands = if self.commands.is_empty() {
                String::new()
            } else {
                format!(
                    ", and {} stages of {} command{} (per-row cost: {}%)",
                    self.commands.iter().map(|c| c.stages.len()).sum::<usize>(),
                    self.commands.len(),
                    if self.commands.len() == 1 { "" } else { "s" },
                    trim_pct(self.command_tolerances.slope_pct)
                )
            };
            return format!(
                "gate: PASS: {stages} stages of {} strateg{} within tolerance (RSS: median of {} run{}, {}%; heap: {}%){commands}",
                self.strategies.len(),
                if self.strategies.len() == 1 { "y" } else { "ies" },
                self.runs,
                if self.runs == 1 { "" } else { "s" },
                trim_pct(self.tolerances.rss_pct),
                trim_pct(self.tolerances.heap_pct),
            );
        }
        let mut lines = Vec::new();
        for c in &self.commands {
            if c.failing().next().is_none() {
                continue;
            }
            lines.push(format!(
                "gate: REGRESSION in `{}` (against {})",
                c.command, c.against
            ));
            for s in c.failing() {
                lines.push(format!("  {}: {}", s.stage, s.reasons.join("; ")));
            }
        }
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
        let mut commands: Vec<&str> = Vec::new();
        for (command, _) in &self.lines {
            if !commands.contains(&command.as_str()) {
                commands.push(command);
            }
        }
        for command in commands {
            lines.push(format!(
                "gate: REGRESSION in the lines of `{command}` (a line's per-row cost grew or a line appeared)"
            ));
            let changes: Vec<crate::lines::LineChange> = self
                .lines
                .iter()
                .filter(|(c, _)| c == command)
                .map(|(_, l)| l.clone())
                .collect();
            lines.extend(
                crate::lines::render::changes_text(&changes, self.lines_production_rows)
                    .lines()
                    .map(String::from),
            );
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
        for c in &self.commands {
            out += &format!(
                "`{}` against {} (rows {}; production {} rows)\n",
                c.command,
                c.against,
                rows_list(&c.rows),
                format_count(c.production_rows)
            );
            out += &command_table(c).to_text();
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
        for c in &self.commands {
            out += &format!(
                "### `{}` against {}\n\nRows: {}; per-row cost priced at {} production rows.\n\n",
                c.command,
                c.against,
                rows_list(&c.rows),
                format_count(c.production_rows)
            );
            out += &command_table(c).to_markdown();
            out += "\n";
        }
        if !self.commands.is_empty() {
            out += &format!(
                "Commands: exact per-stage peak at the largest size, median of {} run(s), tolerance {}%; per-row cost: least-squares slope over the sizes' medians, tolerance {}%.\n\n",
                self.runs,
                trim_pct(self.command_tolerances.peak_pct),
                trim_pct(self.command_tolerances.slope_pct)
            );
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

fn rows_list(rows: &[u64]) -> String {
    rows.iter()
        .map(|r| format_count(*r))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The per-stage table of one command: the peak at the largest size and the
/// per-row slope, each with its spread across runs.
pub fn command_table(c: &CommandResult) -> Table {
    let headers = [
        "Stage".to_string(),
        "Peak baseline".to_string(),
        format!("Peak now (median of {})", c.runs),
        "Spread".to_string(),
        "Peak Δ".to_string(),
        "B/row baseline".to_string(),
        "B/row now".to_string(),
        "Spread".to_string(),
        "B/row Δ".to_string(),
        format!("At {} rows", format_count(c.production_rows)),
        "Verdict".to_string(),
    ]
    .to_vec();
    let rows = c
        .stages
        .iter()
        .map(|s| {
            let dash = || "-".to_string();
            let peak = s.peak.as_ref();
            let slope = s.slope.as_ref();
            vec![
                s.stage.clone(),
                peak.map(|p| format_bytes(p.baseline)).unwrap_or_else(dash),
                peak.map(|p| format_bytes(p.now)).unwrap_or_else(dash),
                if s.peak_runs_bytes.is_empty() {
                    dash()
                } else {
                    format_bytes(s.peak_spread_bytes)
                },
                peak.map(Check::change_text).unwrap_or_else(dash),
                slope
                    .map(|v| format!("{:.0}", v.baseline_bytes_per_row))
                    .unwrap_or_else(dash),
                slope
                    .map(|v| format!("{:.0}", v.now_bytes_per_row))
                    .unwrap_or_else(dash),
                slope
                    .map(|v| format!("{:.0}", v.spread_bytes_per_row))
                    .unwrap_or_else(dash),
                slope
                    .map(|v| match v.change_pct {
                        Some(p) => format!("{p:+.1}%"),
                        None => format!("{:+.0}", v.now_bytes_per_row - v.baseline_bytes_per_row),
                    })
                    .unwrap_or_else(dash),
                slope
                    .map(|v| signed_bytes(v.at_production_bytes))
                    .unwrap_or_else(dash),
                match s.verdict {
                    StageVerdict::Ok if s.reasons.is_empty() => "ok".into(),
                    StageVerdict::Ok => format!("ok, {}", s.reasons.join(", ")),
                    StageVerdict::Improved => format!("improved: {}", s.reasons.join(", ")),
                    StageVerdict::Regressed => "REGRESSED".into(),
                    StageVerdict::New => "NEW: appeared".into(),
                    StageVerdict::Missing => "MISSING: disappeared".into(),
                },
            ]
        })
        .collect();
    Table { headers, rows }
}

/// The figures of a freshly blessed command entry.
pub fn blessed_command_table(c: &CommandEntry) -> Table {
    let headers = [
        "Stage",
        "Peak at largest size (median)",
        "Spread",
        "B/row",
        "Fixed",
    ]
    .map(String::from)
    .to_vec();
    let rows = c
        .stages
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                format_bytes(s.peak_bytes),
                format_bytes(super::spread(&s.peak_runs_bytes)),
                format!("{:.0}", s.bytes_per_row),
                signed_bytes(s.fixed_bytes),
            ]
        })
        .collect();
    Table { headers, rows }
}
