//! The kill as a measurement.
//!
//! A run killed at a memory limit, at N rows, in stage S, says more than
//! "it died": the pipeline needed *at least* the limit at N rows in S. That
//! is an observation a model can be calibrated with (a lower bound on its
//! peak, `ROWS:CAP>=LIMIT@STAGE` in `--observed` terms), and without any
//! model it still bounds the bytes per row from below (limit / rows), hence
//! the rows any cap can hold from above. Both keep the postmortem from ever
//! printing the setting that was just killed.

use serde::{Deserialize, Serialize};

use super::parse::KillKind;
use super::scan::{KillFinding, RunFacts};
use super::Facts;
use crate::model::advice::readable_floor;
use crate::model::ObservedPeak;
use crate::units::{format_bytes, format_count};

/// What the kill measured: the sizes and limit a run died at, and where in
/// the log each came from (so the write-up can name its sources).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KillEvidence {
    /// Ranking samples loaded by the killed run.
    pub rows_in: u64,
    /// `MAX_RANKING_SAMPLES` in force (0 = none).
    pub max_ranking_samples: u64,
    /// Rows the killed run held after sampling: no cap at or above this can
    /// be recommended under the same limit.
    pub killed_rows: u64,
    /// The limit it died at: its peak was at least this.
    pub limit_bytes: u64,
    /// Where the limit came from (`--memory-limit`, `docker stats`, ...).
    pub limit_source: String,
    /// The log's stage when it died (`merge_user_features`), if any.
    pub stage: Option<String>,
    /// Log line of that stage.
    pub stage_line: Option<u64>,
    /// Log line of the kill (0 when only another source recorded it).
    pub kill_line: u64,
    /// Where the kill was read: `log line 8`, or another source's file and line.
    #[serde(default)]
    pub kill_source: String,
}

/// Why a kill could not be used as a measurement, or what it measured.
pub fn evidence(
    run: &RunFacts,
    facts: &Facts,
    kill: Option<&KillFinding>,
    limit: Option<u64>,
    limit_source: &str,
) -> Result<KillEvidence, String> {
    let kill = kill.ok_or("no kill in the log")?;
    if kill.kind == KillKind::MemoryError {
        return Err(format!(
            "line {} is a Python MemoryError, not a kill at the limit: the process may have held less than the limit when an allocation failed, so it is not used as a peak",
            kill.line
        ));
    }
    let rows_in = facts
        .ranking_samples_rows
        .ok_or("the log gives no ranking_samples row count for the killed run")?;
    let stage = run.last_stage.as_ref();
    if stage.and_then(|s| s.stage.as_deref()) == Some("prepared") {
        return Err(format!(
            "the kill came after ranking prep had completed (line {}): it says nothing about ranking prep's peak",
            stage.map_or(0, |s| s.line)
        ));
    }
    let limit_bytes = limit
        .filter(|l| *l > 0)
        .ok_or("no memory limit known (give --memory-limit or --docker-stats)")?;
    let max_ranking_samples = facts.max_ranking_samples.unwrap_or(0);
    let killed_rows = if max_ranking_samples > 0 {
        max_ranking_samples.min(rows_in)
    } else {
        rows_in
    };
    Ok(KillEvidence {
        rows_in,
        max_ranking_samples,
        killed_rows,
        limit_bytes,
        limit_source: limit_source.to_string(),
        stage: stage.and_then(|s| s.stage.clone()),
        stage_line: stage.map(|s| s.line),
        kill_line: kill.line,
        kill_source: format!("log line {}", kill.line),
    })
}

/// The kill as a calibration point: at least the limit, at the logged rows
/// and cap, in the logged stage when the model has a stage of that name
/// (else against the model's overall peak, a weaker but still true bound).
pub fn observation(ev: &KillEvidence, model_stages: &[String]) -> ObservedPeak {
    ObservedPeak {
        rows_in: ev.rows_in,
        max_ranking_samples: ev.max_ranking_samples,
        peak_bytes: ev.limit_bytes,
        predicted_bytes: 0.0,
        at_least: true,
        stage: ev
            .stage
            .clone()
            .filter(|s| model_stages.iter().any(|m| m == s)),
    }
}

/// What the log alone says, without a model: at death the pipeline held at
/// least `limit / killed_rows` bytes per row, so under the same limit with
/// `headroom` kept free no cap above `killed_rows x (1 - headroom)` can fit
/// (true for any peak that grows linearly with rows from a non-negative
/// fixed cost). An upper bound on the safe cap, not a promise that it fits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogBound {
    /// Rows the killed run held.
    pub killed_rows: u64,
    /// The limit it died at.
    pub limit_bytes: u64,
    /// `limit / killed_rows`: what each row cost at least.
    pub bytes_per_row_at_least: f64,
    /// Share of the limit kept free, as `recommend` keeps it.
    pub headroom: f64,
    /// The largest cap the bound leaves (rounded down to two digits).
    pub cap_at_most: u64,
    /// Where the kill the bound rests on was read.
    pub kill_source: String,
}

/// The bound of [`LogBound`] from a kill.
pub fn log_bound(ev: &KillEvidence, headroom: f64) -> LogBound {
    let exact = (ev.killed_rows as f64 * (1.0 - headroom)).floor() as u64;
    let cap = readable_floor(exact).min(ev.killed_rows.saturating_sub(1));
    LogBound {
        killed_rows: ev.killed_rows,
        limit_bytes: ev.limit_bytes,
        bytes_per_row_at_least: ev.limit_bytes as f64 / ev.killed_rows.max(1) as f64,
        headroom,
        cap_at_most: cap,
        kill_source: ev.kill_source.clone(),
    }
}

impl LogBound {
    /// The bound in one sentence, labelled as coming from the log alone.
    pub fn describe(&self) -> String {
        if self.cap_at_most == 0 {
            return format!(
                "A bound from the log alone: killed holding {} rows at the {} limit ({}), the pipeline needed at least {} per row; with {:.0}% headroom no cap can be shown to fit that limit.",
                format_count(self.killed_rows),
                format_bytes(self.limit_bytes),
                self.kill_source,
                format_bytes(self.bytes_per_row_at_least.ceil() as u64),
                self.headroom * 100.0
            );
        }
        format!(
            "A bound from the log alone: killed holding {} rows at the {} limit ({}), the pipeline needed at least {} per row, so with {:.0}% headroom no MAX_RANKING_SAMPLES above {} can fit that limit. That is an upper bound: fixed costs and a peak above the limit make the safe cap lower; a model (`oomlab sweep`) or a measured run gives the cap itself.",
            format_count(self.killed_rows),
            format_bytes(self.limit_bytes),
            self.kill_source,
            format_bytes(self.bytes_per_row_at_least.ceil() as u64),
            self.headroom * 100.0,
            format_count(self.cap_at_most)
        )
    }
}

/// Quotes an argument for a POSIX shell when it needs it (`>=` would redirect).
pub fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=,+@%".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// The calibration a postmortem used, as `oomlab check` takes it.
#[derive(Debug, Clone, Default)]
pub struct CheckLine<'a> {
    /// The model file, as the postmortem was given it.
    pub model: &'a str,
    /// The fidelity result the model was calibrated with, if any.
    pub fidelity: Option<&'a str>,
    /// `--observed` values, in the order the postmortem calibrated with them
    /// (the order of a float sum: the same order gives the same factor).
    pub observed: Vec<String>,
    /// Rows the killed run loaded (`--rows`).
    pub rows_in: u64,
    /// The limit it died at (`--memory`), in bytes so nothing is rounded.
    pub memory_bytes: u64,
    /// The numeric profile columns the log merged, when the model predicts
    /// there (`--columns`).
    pub columns: Option<u64>,
}

impl CheckLine<'_> {
    /// `oomlab check ... --max-ranking-samples CAP`: runs the same
    /// calibration on the planned setting, exit 0 when it fits.
    pub fn command(&self, cap: u64) -> String {
        let mut args: Vec<String> = vec![
            "oomlab".into(),
            "check".into(),
            "--model".into(),
            self.model.into(),
        ];
        if let Some(f) = self.fidelity {
            args.extend(["--fidelity".into(), f.into()]);
        }
        for o in &self.observed {
            args.extend(["--observed".into(), o.clone()]);
        }
        if let Some(c) = self.columns {
            args.extend(["--columns".into(), c.to_string()]);
        }
        args.extend([
            "--rows".into(),
            self.rows_in.to_string(),
            "--memory".into(),
            self.memory_bytes.to_string(),
            "--max-ranking-samples".into(),
            cap.to_string(),
        ]);
        args.iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Where [`measure_command`] saves the pipeline's own model.
pub const PIPELINE_MODEL: &str = "reports/model-pipeline.json";

/// The command that measures what a postmortem could not show: the
/// pipeline's own command swept at a few small sizes, capped and not
/// (`oomlab sweep -- CMD`, every point through `record`), so the answer comes
/// from the pipeline's own bytes instead of a replay calibrated by one kill.
pub fn measure_command(ev: &KillEvidence) -> String {
    let sizes: Vec<String> = [40, 20, 10]
        .iter()
        .map(|d| readable_floor((ev.rows_in / d).max(1)).to_string())
        .collect();
    format!(
        "oomlab sweep --rows {} --max-ranking-samples-fraction 0.25,0.6 --model {PIPELINE_MODEL} -- <the pipeline's command, taking {{rows}} and {{max_ranking_samples}}>",
        sizes.join(",")
    )
}

/// What to do with the model [`measure_command`] writes.
pub fn measure_then(_ev: &KillEvidence) -> String {
    format!(
        "then rerun the postmortem with `--model {PIPELINE_MODEL}`, a model in the pipeline's own bytes (the kill still bounds it)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postmortem::scan::TimelineEvent;

    fn killed(rows: u64, cap: Option<u64>, stage: &str) -> (RunFacts, Facts, KillFinding) {
        let run = RunFacts {
            ranking_samples_rows: Some(rows),
            last_stage: Some(TimelineEvent {
                line: 6,
                t_unix: None,
                stage: Some(stage.into()),
                event: super::super::parse::LogEvent::MergeUserFeatures { columns: 12 },
                text: String::new(),
            }),
            ..RunFacts::default()
        };
        let facts = Facts {
            ranking_samples_rows: Some(rows),
            max_ranking_samples: cap,
            ..Facts::default()
        };
        let kill = KillFinding {
            line: 7,
            t_unix: None,
            kind: KillKind::Sigkill,
            text: "Task exited with return code -9".into(),
        };
        (run, facts, kill)
    }

    #[test]
    fn the_kill_is_a_lower_bound_in_its_stage() {
        let (run, facts, kill) = killed(11_873_402, Some(0), "merge_user_features");
        let ev = evidence(&run, &facts, Some(&kill), Some(150_000_000_000), "flag").unwrap();
        assert_eq!(ev.killed_rows, 11_873_402);
        let o = observation(&ev, &["load".into(), "merge_user_features".into()]);
        assert_eq!(o.to_arg(), "11873402:0>=150000000000@merge_user_features");
        // A stage the model lacks: the overall peak carries the bound.
        assert_eq!(observation(&ev, &["load".into()]).stage, None);
        // Sampled: the rows held were the cap.
        let (run, facts, kill) = killed(52_000_000, Some(2_000_000), "merge_user_features");
        let ev = evidence(&run, &facts, Some(&kill), Some(1 << 30), "flag").unwrap();
        assert_eq!(ev.killed_rows, 2_000_000);
    }

    #[test]
    fn unusable_kills_say_why() {
        let (run, facts, kill) = killed(1_000, None, "prepared");
        let e = evidence(&run, &facts, Some(&kill), Some(1 << 30), "flag").unwrap_err();
        assert!(e.contains("after ranking prep"), "{e}");
        let (run, facts, mut kill) = killed(1_000, None, "merge_user_features");
        assert!(evidence(&run, &facts, Some(&kill), None, "unknown")
            .unwrap_err()
            .contains("no memory limit"));
        kill.kind = KillKind::MemoryError;
        assert!(evidence(&run, &facts, Some(&kill), Some(1), "flag")
            .unwrap_err()
            .contains("MemoryError"));
        assert!(evidence(&run, &facts, None, Some(1), "flag").is_err());
    }

    #[test]
    fn the_log_alone_bounds_the_cap_below_the_killed_rows() {
        let (run, facts, kill) = killed(11_873_402, Some(0), "merge_user_features");
        let ev = evidence(&run, &facts, Some(&kill), Some(150_000_000_000), "flag").unwrap();
        let b = log_bound(&ev, 0.2);
        assert_eq!(b.cap_at_most, 9_400_000);
        assert!(b.cap_at_most < ev.killed_rows);
        assert!((b.bytes_per_row_at_least - 150e9 / 11_873_402.0).abs() < 1e-6);
        assert!(b.describe().contains("A bound from the log alone"));
        // One row killed: nothing fits.
        let (run, facts, kill) = killed(1, None, "merge_user_features");
        let ev = evidence(&run, &facts, Some(&kill), Some(1 << 30), "flag").unwrap();
        assert_eq!(log_bound(&ev, 0.2).cap_at_most, 0);
    }

    #[test]
    fn check_lines_quote_what_the_shell_would_eat() {
        let line = CheckLine {
            model: "reports/model.json",
            fidelity: None,
            observed: vec!["11873402:0>=150000000000@merge_user_features".into()],
            rows_in: 11_873_402,
            memory_bytes: 150_000_000_000,
            columns: None,
        };
        assert_eq!(
            line.command(4_800_000),
            "oomlab check --model reports/model.json --observed '11873402:0>=150000000000@merge_user_features' --rows 11873402 --memory 150000000000 --max-ranking-samples 4800000"
        );
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
