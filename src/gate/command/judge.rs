//! Judging a command's measurement against its blessing: each stage's peak
//! at the largest size and its per-row slope, each with its tolerance and a
//! floor below which a change is noise, and the notes on figures that moved
//! for reasons other than the code (another pandas, runs that disagree).

use serde::Serialize;

use super::MeasuredCommand;
use crate::gate::baseline::{CommandEntry, Floors};
use crate::gate::verdict::{trim_pct, Check, Outcome, StageVerdict};
use crate::gate::{median, spread};
use crate::units::{format_bytes, format_count};

/// The tolerances a command is judged with, in percent.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CommandTolerances {
    /// The peak at the largest size (`--rss-tolerance`).
    pub peak_pct: f64,
    /// The per-row slope (`--slope-tolerance`).
    pub slope_pct: f64,
}

/// The per-row slope of a stage, before and after, and what the change
/// costs at production rows.
#[derive(Debug, Clone, Serialize)]
pub struct SlopeCheck {
    /// The blessed per-row cost.
    pub baseline_bytes_per_row: f64,
    /// The per-row cost measured now.
    pub now_bytes_per_row: f64,
    /// `None` when the baseline slope is not positive.
    pub change_pct: Option<f64>,
    /// The allowed rise, in percent of the blessed slope.
    pub tolerance_pct: f64,
    /// Changes smaller than this pass whatever the percentage: the RSS floor
    /// spread over the rows between the smallest and the largest size, or
    /// the spread of the per-run slopes (blessed or now), whichever is larger.
    pub floor_bytes_per_row: f64,
    /// Each run's own slope, to show how much the figure moves.
    pub runs_bytes_per_row: Vec<f64>,
    /// Largest minus smallest of `runs_bytes_per_row`.
    pub spread_bytes_per_row: f64,
    /// Rows the change is priced at.
    pub production_rows: u64,
    /// `(now - baseline) * production_rows`, bytes.
    pub at_production_bytes: f64,
    /// Regressed, improved or within tolerance.
    pub outcome: Outcome,
}

impl SlopeCheck {
    /// Judges a slope against a blessed one.
    pub fn judge(
        baseline: f64,
        now: f64,
        tolerance_pct: f64,
        floor_bytes_per_row: f64,
        runs: Vec<f64>,
        production_rows: u64,
    ) -> SlopeCheck {
        let allowed = baseline.abs() * tolerance_pct / 100.0;
        let delta = now - baseline;
        let outcome = if delta > allowed && delta > floor_bytes_per_row {
            Outcome::Regressed
        } else if -delta > allowed && -delta > floor_bytes_per_row {
            Outcome::Improved
        } else {
            Outcome::Ok
        };
        SlopeCheck {
            baseline_bytes_per_row: baseline,
            now_bytes_per_row: now,
            change_pct: (baseline > 0.0).then(|| delta / baseline * 100.0),
            tolerance_pct,
            floor_bytes_per_row,
            spread_bytes_per_row: spread_f64(&runs),
            runs_bytes_per_row: runs,
            production_rows,
            at_production_bytes: delta * production_rows as f64,
            outcome,
        }
    }

    /// `1,410 -> 2,870 B/row (+103%), +11.6 GiB at 8,532,146 rows`.
    pub fn sentence(&self) -> String {
        format!(
            "{} -> {} B/row ({}), {} at {} rows",
            signed_count(self.baseline_bytes_per_row),
            signed_count(self.now_bytes_per_row),
            self.change_pct
                .map(|p| format!("{p:+.0}%"))
                .unwrap_or_else(|| format!(
                    "{:+.0} B/row",
                    self.now_bytes_per_row - self.baseline_bytes_per_row
                )),
            signed_bytes(self.at_production_bytes),
            format_count(self.production_rows)
        )
    }
}

/// Largest minus smallest of a list of slopes (0 when empty).
fn spread_f64(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    max - min
}

/// `1,410` or `-57` for a slope.
fn signed_count(v: f64) -> String {
    let s = format_count(v.abs().round() as u64);
    if v < -0.5 {
        format!("-{s}")
    } else {
        s
    }
}

/// `+11.6 GiB` or `-3.0 MiB`.
pub fn signed_bytes(v: f64) -> String {
    let s = format_bytes(v.abs().round() as u64);
    if v < 0.0 {
        format!("-{s}")
    } else {
        format!("+{s}")
    }
}

/// One stage of a command, judged.
#[derive(Debug, Clone, Serialize)]
pub struct CommandStageResult {
    /// The stage's name.
    pub stage: String,
    /// Whether it fails the gate, and why in one word.
    pub verdict: StageVerdict,
    /// The exact peak at the largest size (median of the runs).
    pub peak: Option<Check>,
    /// Each run's peak at the largest size.
    pub peak_runs_bytes: Vec<u64>,
    /// Largest minus smallest of `peak_runs_bytes`.
    pub peak_spread_bytes: u64,
    /// The per-row cost, before and after (none for a new or missing stage).
    pub slope: Option<SlopeCheck>,
    /// Why it failed or improved, one phrase per figure.
    pub reasons: Vec<String>,
}

/// One command, judged.
#[derive(Debug, Clone, Serialize)]
pub struct CommandResult {
    /// The argv template, as one line.
    pub command: String,
    /// What it was judged against: the baseline file, or `REV (same job)`.
    pub against: String,
    /// The sizes run, in rows.
    pub rows: Vec<u64>,
    /// Runs per size (and side).
    pub runs: u32,
    /// Rows the slope's change was priced at.
    pub production_rows: u64,
    /// Every stage, judged.
    pub stages: Vec<CommandStageResult>,
}

impl CommandResult {
    /// The stages that fail the gate.
    pub fn failing(&self) -> impl Iterator<Item = &CommandStageResult> {
        self.stages.iter().filter(|s| s.verdict.fails())
    }
}

/// Why a stage that peaked where it started is shown but not judged.
pub const CARRIED: &str = "not judged: peaks where it starts (the stage before holds that)";

/// Judges a measured command against its blessed entry, stage by stage.
pub fn judge_command(
    entry: &CommandEntry,
    measured: &MeasuredCommand,
    tolerances: CommandTolerances,
    floors: Floors,
    production_rows: u64,
    against: &str,
    runs: u32,
) -> CommandResult {
    let rows = &measured.rows;
    let span = rows.last().copied().unwrap_or(0) - rows.first().copied().unwrap_or(0);
    let slope_floor = floors.rss_bytes as f64 / span.max(1) as f64;
    let mut stages = Vec::new();
    for m in &measured.stages {
        let Some(b) = entry.stage(&m.name) else {
            stages.push(CommandStageResult {
                stage: m.name.clone(),
                verdict: StageVerdict::New,
                peak: None,
                peak_runs_bytes: m.largest_runs(),
                peak_spread_bytes: spread(&m.largest_runs()),
                slope: None,
                reasons: vec![format!(
                    "appeared: not in the baseline ({} B/row, peak {})",
                    signed_count(m.fit(rows).0),
                    format_bytes(median(&m.largest_runs()))
                )],
            });
            continue;
        };
        let runs_now = m.largest_runs();
        let peak = Check::judge(
            b.peak_bytes,
            median(&runs_now),
            b.peak_tolerance_pct.unwrap_or(tolerances.peak_pct),
            floors.rss_bytes,
        );
        // The floor: the RSS floor spread over the rows, or the run-to-run
        // spread of this stage's slope (blessed or now), whichever is larger.
        let runs_slopes = m.slope_runs(rows);
        let floor = slope_floor
            .max(spread_f64(&b.bytes_per_row_runs))
            .max(spread_f64(&runs_slopes));
        let slope = SlopeCheck::judge(
            b.bytes_per_row,
            m.fit(rows).0,
            b.slope_tolerance_pct.unwrap_or(tolerances.slope_pct),
            floor,
            runs_slopes,
            production_rows,
        );
        let mut reasons = Vec::new();
        if slope.outcome == Outcome::Regressed {
            reasons.push(format!(
                "{} (> {}%)",
                slope.sentence(),
                trim_pct(slope.tolerance_pct)
            ));
        }
        if peak.outcome == Outcome::Regressed {
            reasons.push(format!(
                "peak {} -> {} ({} > {}%) at {} rows",
                format_bytes(peak.baseline),
                format_bytes(peak.now),
                peak.change_text(),
                trim_pct(peak.tolerance_pct),
                format_count(rows.last().copied().unwrap_or(0))
            ));
        }
        let verdict = if m.peaks_at_start {
            // What it holds is judged in the stage before (and after) it.
            reasons = vec![CARRIED.to_string()];
            StageVerdict::Ok
        } else if !reasons.is_empty() {
            StageVerdict::Regressed
        } else if slope.outcome == Outcome::Improved || peak.outcome == Outcome::Improved {
            if slope.outcome == Outcome::Improved {
                reasons.push(slope.sentence());
            }
            if peak.outcome == Outcome::Improved {
                reasons.push(format!("peak {}", peak.change_text()));
            }
            StageVerdict::Improved
        } else {
            StageVerdict::Ok
        };
        stages.push(CommandStageResult {
            stage: m.name.clone(),
            verdict,
            peak_spread_bytes: spread(&runs_now),
            peak_runs_bytes: runs_now,
            peak: Some(peak),
            slope: Some(slope),
            reasons,
        });
    }
    for gone in entry
        .stages
        .iter()
        .filter(|b| !measured.stages.iter().any(|m| m.name == b.name))
    {
        stages.push(CommandStageResult {
            stage: gone.name.clone(),
            verdict: StageVerdict::Missing,
            peak: None,
            peak_runs_bytes: Vec::new(),
            peak_spread_bytes: 0,
            slope: None,
            reasons: vec![format!(
                "disappeared: in the baseline ({} B/row) but did not run",
                signed_count(gone.bytes_per_row)
            )],
        });
    }
    CommandResult {
        command: entry.label(),
        against: against.to_string(),
        rows: rows.clone(),
        runs,
        production_rows,
        stages,
    }
}

/// Notes on a command's figures that may differ for reasons other than the
/// code: another pandas, or runs that disagree more than the tolerance.
pub fn command_notes(
    entry: &CommandEntry,
    measured: &MeasuredCommand,
    result: &CommandResult,
) -> Vec<String> {
    let mut notes = Vec::new();
    for (what, before, now) in [
        ("pandas", &entry.pandas, &measured.pandas),
        ("Python", &entry.python, &measured.python),
    ] {
        if let (Some(b), Some(n)) = (before, now) {
            if b != n {
                notes.push(format!(
                    "`{}`: blessed under {what} {b}, ran under {n}: figures move with the library, not only the code",
                    result.command
                ));
            }
        }
    }
    for s in &result.stages {
        if let Some(slope) = &s.slope {
            // A stage whose rows move less than the floor cannot fail on its
            // slope; its noise is not worth a note.
            if slope.baseline_bytes_per_row.abs() <= slope.floor_bytes_per_row {
                continue;
            }
            let pct = slope.spread_bytes_per_row / slope.now_bytes_per_row.abs().max(1.0) * 100.0;
            if pct > slope.tolerance_pct && slope.spread_bytes_per_row > slope.floor_bytes_per_row {
                notes.push(format!(
                    "`{}` / {}: the per-row cost varied by {pct:.1}% between runs, more than its {}% tolerance; raise --runs or the sizes, or the stage's slope_tolerance_pct",
                    result.command,
                    s.stage,
                    trim_pct(slope.tolerance_pct)
                ));
            }
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slope_regresses_beyond_tolerance_and_floor() {
        let c = SlopeCheck::judge(1_410.0, 2_870.0, 5.0, 50.0, vec![], 8_532_146);
        assert_eq!(c.outcome, Outcome::Regressed);
        assert_eq!(
            c.sentence(),
            "1,410 -> 2,870 B/row (+104%), +11.60 GiB at 8,532,146 rows"
        );
        // +4% passes a 5% tolerance; +20 B/row passes a 50 B/row floor.
        assert_eq!(
            SlopeCheck::judge(1_000.0, 1_040.0, 5.0, 10.0, vec![], 1).outcome,
            Outcome::Ok
        );
        assert_eq!(
            SlopeCheck::judge(100.0, 120.0, 5.0, 50.0, vec![], 1).outcome,
            Outcome::Ok
        );
        assert_eq!(
            SlopeCheck::judge(1_000.0, 800.0, 5.0, 10.0, vec![], 1).outcome,
            Outcome::Improved
        );
    }
}
