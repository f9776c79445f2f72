//! `oomlab postmortem`: what a killed pipeline's logs say, written up.
//!
//! The write-up asks whoever meets the next OOM for four facts: the rows of
//! `ranking_samples`, the columns and rows of `dataset_profile`, the
//! `MAX_RANKING_SAMPLES` in force, and the 50 log lines before and after the
//! kill. This module reads the scheduler log (and `docker stats` output, when
//! collected) as a stream, recognizes the pipeline's own lines and the kill
//! ([`parse`], [`scan`]), and writes `postmortem.md`, `postmortem.json` and,
//! when stats rows give a timeline, a picture: which stage was running, how
//! big the data was, how close memory came to the limit, and (with a model
//! from `oomlab sweep`) what peak those sizes need and what would have fitted.

pub mod kill;
pub mod model;
pub mod parse;
pub mod scan;
pub mod sources;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::error::bad_input;
use crate::model::ObservedPeak;
use crate::report::{utc_now_rfc3339, write_atomically};
use crate::units::{format_bytes, format_count};
use kill::{KillEvidence, LogBound};
use model::{FittingSetting, ModelColumns, ModelShape, PeakModel, PredictedPeak, HEADROOM};
use parse::LogEvent;
use scan::{
    Analyzer, ContextLine, KillFinding, LogAnalysis, RunFacts, SourceStats, StatsPoint,
    TimelineEvent,
};
use sources::SourceFindings;

/// Bumped whenever a reader of an older postmortem.json would misread a newer one.
pub const SCHEMA_VERSION: u32 = 1;

/// What to analyze.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub log: PathBuf,
    /// `--memory-limit`: wins over the limit `docker stats` shows.
    pub memory_limit: Option<u64>,
    pub docker_stats: Option<PathBuf>,
    /// Seconds between stats rows that carry no time.
    pub stats_interval_s: f64,
    pub model: Option<PathBuf>,
    /// `--fidelity`: calibrates the model to pandas' bytes.
    pub fidelity: Option<PathBuf>,
    /// `--observed ROWS[:CAP]=PEAK`: peaks seen elsewhere, calibrating the
    /// model together with the kill (as `oomlab check --observed` does).
    pub observed: Vec<String>,
    /// Lines kept before and after the kill.
    pub context: usize,
    /// `--kernel-log`: `dmesg` / `journalctl -k` output with the OOM report.
    pub kernel_log: Option<PathBuf>,
    /// `--cgroup-dir`: a copy of the container's memory cgroup directory.
    pub cgroup_dir: Option<PathBuf>,
    /// `--kubernetes`: `kubectl get pod -o json` or `kubectl describe pod` output.
    pub kubernetes: Option<PathBuf>,
    /// `--prometheus`: a range query of `container_memory_working_set_bytes`.
    pub prometheus: Option<PathBuf>,
}

/// The write-up's four facts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Facts {
    /// 1. `ranking_samples` rows (before sampling).
    pub ranking_samples_rows: Option<u64>,
    /// 2. `dataset_profile` rows (datasets) ...
    pub dataset_profile_rows: Option<u64>,
    /// ... and the feature columns merged from it.
    pub dataset_profile_columns: Option<u64>,
    /// 3. `MAX_RANKING_SAMPLES` in force (0 = no limit), when the log tells.
    pub max_ranking_samples: Option<u64>,
    /// How 3. was read, or why it could not be.
    pub max_ranking_samples_source: String,
    /// 4. The lines before and after the kill.
    pub log_lines_before_kill: Vec<ContextLine>,
    pub log_lines_after_kill: Vec<ContextLine>,
}

/// Memory as `docker stats` and the limit show it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MemoryFindings {
    pub limit_bytes: Option<u64>,
    /// `flag`, `docker stats`, or `unknown`.
    pub limit_source: String,
    /// The container the figures are of (the one that used the most memory).
    pub container: Option<String>,
    /// Stats rows read (all containers).
    pub stats_rows: u64,
    pub peak_usage_bytes: Option<u64>,
    pub peak_t_unix: Option<f64>,
    /// Peak as a share of the limit, percent.
    pub peak_pct_of_limit: Option<f64>,
    /// Last reading at or before the kill (when both carry times).
    pub last_usage_before_kill_bytes: Option<u64>,
}

/// What the model says about the killed run's sizes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ModelFindings {
    pub model: String,
    pub rows_in: u64,
    pub max_ranking_samples_in_force: u64,
    /// Predicted peak per strategy at those sizes.
    pub predicted: BTreeMap<String, PredictedPeak>,
    pub limit_bytes: Option<u64>,
    pub headroom: f64,
    /// The setting that would have fitted the limit (v2 pipeline).
    pub fitting: Option<FittingSetting>,
    /// `.env` lines to paste for it.
    pub env_snippet: Option<String>,
    /// The run was killed, yet every prediction fits the limit: the model
    /// under-predicts this workload and its setting is optimistic.
    #[serde(default)]
    pub under_predicts: bool,
    /// The kill as `--observed` takes it (`ROWS:CAP>=LIMIT@STAGE`): the
    /// calibration point the postmortem added.
    #[serde(default)]
    pub kill_observation: Option<String>,
    /// The largest prediction before the kill calibrated the model.
    #[serde(default)]
    pub largest_before_kill_bytes: Option<u64>,
    /// The setting is an upper bound: calibrated to a peak of *at least* the
    /// limit, the true peak (and so the per-row cost) may have been higher.
    #[serde(default)]
    pub cap_is_upper_bound: bool,
    /// Why no setting can be shown safe, when none can.
    #[serde(default)]
    pub no_safe_cap: Option<String>,
    /// `oomlab check` with the setting and the same calibration (exit 0).
    #[serde(default)]
    pub check_command: Option<String>,
    /// `oomlab check` with the killed setting and the same calibration (exit 1).
    #[serde(default)]
    pub check_killed_command: Option<String>,
    /// What to run to measure what is missing, when no setting is shown safe.
    #[serde(default)]
    pub measure_command: Option<String>,
    /// The numeric profile columns the predictions are at, when the log
    /// gave a count and the model has a column term (else its own count).
    #[serde(default)]
    pub columns: Option<u64>,
    /// Why a part could not be answered.
    pub notes: Vec<String>,
}

/// Everything a postmortem found, as `postmortem.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Postmortem {
    pub schema_version: u32,
    pub oomlab_version: String,
    pub created_at: String,
    /// The finding in one paragraph.
    pub verdict: String,
    pub log: SourceStats,
    pub docker_stats_source: Option<SourceStats>,
    pub kill: Option<KillFinding>,
    /// Lines that said the process was killed (the first one is `kill`).
    pub kill_lines: u64,
    /// What the kill measured (rows, cap, limit, stage), when it can be used.
    #[serde(default)]
    pub kill_evidence: Option<KillEvidence>,
    /// Why the kill could not be used as a measurement.
    #[serde(default)]
    pub kill_not_used: Option<String>,
    /// The cap bound the log alone gives (no model needed).
    #[serde(default)]
    pub log_bound: Option<LogBound>,
    /// The last pipeline stage reached before the kill (or in the log).
    pub last_stage: Option<TimelineEvent>,
    /// v2 (`sampling`/memory-optimization lines seen), or unknown.
    pub pipeline_version_hint: String,
    pub runs_seen: u64,
    /// Sizes the killed run (or the last run) logged.
    pub sizes: RunFacts,
    /// The last run that started after the kill (a retry): what it reached.
    #[serde(default)]
    pub after_kill: Option<RunFacts>,
    pub facts: Facts,
    pub memory: MemoryFindings,
    pub model: Option<ModelFindings>,
    /// Recognized events in log order (at most 10,000; the rest counted).
    pub timeline: Vec<TimelineEvent>,
    pub timeline_dropped: u64,
    /// `docker stats` readings of `memory.container` (thinned past 20,000).
    pub stats: Vec<StatsPoint>,
    /// Seconds between stats rows that carry no time of their own
    /// (`--stats-interval`): their time axis is row number x this.
    #[serde(default = "default_stats_interval_s")]
    pub stats_interval_s: f64,
    /// Pictures written next to the report.
    #[serde(default)]
    pub pictures: Vec<String>,
    /// What the other sources (`--kernel-log`, `--cgroup-dir`, `--kubernetes`,
    /// `--prometheus`) recorded, each fact with its file and line.
    #[serde(default)]
    pub sources: Vec<SourceFindings>,
}

/// `docker stats` refreshes every 5 s by default.
fn default_stats_interval_s() -> f64 {
    5.0
}

fn scan_file(path: &Path, context: usize, what: &str) -> Result<LogAnalysis> {
    let file = sources::open(path, what)?;
    let mut analyzer = Analyzer::new(&path.display().to_string(), context);
    analyzer.read_all(file).map_err(|e| {
        bad_input(format!(
            "{}: reading the {what} failed: {e}",
            path.display()
        ))
    })?;
    Ok(analyzer.finish())
}

/// Reads a log (streamed) and returns the sizes it logged: what `record`
/// reports as its data sizes. `None` when the file cannot be read.
pub fn sizes_in_log(path: &Path) -> Option<RunFacts> {
    scan_file(path, 0, "log").ok().map(|a| a.run)
}

/// Runs the whole analysis.
pub fn analyze(inputs: &Inputs) -> Result<Postmortem> {
    let log = scan_file(&inputs.log, inputs.context, "log")?;
    let stats_scan = inputs
        .docker_stats
        .as_deref()
        .map(|p| scan_file(p, 0, "docker stats file"))
        .transpose()?;
    if inputs.fidelity.is_some() && inputs.model.is_none() {
        return Err(bad_input(
            "--fidelity calibrates a model: pass --model model.json too",
        ));
    }
    if !inputs.observed.is_empty() && inputs.model.is_none() {
        return Err(bad_input(
            "--observed calibrates a model: pass --model model.json too",
        ));
    }
    let model = inputs.model.as_deref().map(model::load).transpose()?;
    let sources = read_sources(inputs)?;

    // Stats rows from both files; the container that used the most memory.
    let mut all_stats: Vec<StatsPoint> = log.stats.clone();
    if let Some(s) = &stats_scan {
        all_stats.extend(s.stats.iter().cloned());
    }
    for s in &sources {
        all_stats.extend(s.curve.iter().cloned());
    }
    let stats_rows = all_stats.len() as u64;
    let container = all_stats
        .iter()
        .max_by_key(|p| p.usage_bytes)
        .map(|p| p.name.clone());
    let mut stats: Vec<StatsPoint> = all_stats
        .into_iter()
        .filter(|p| Some(&p.name) == container.as_ref())
        .collect();
    for (i, p) in stats.iter_mut().enumerate() {
        p.index = i as u64;
    }

    let mut memory = memory_findings(inputs, &log, &stats, container, stats_rows);
    // A limit another source recorded wins over the one `docker stats` shows
    // (it is the cgroup's own, or the pod spec's), never over the flag.
    if memory.limit_source != "flag" {
        if let Some((s, f, b)) = sources
            .iter()
            .find_map(|s| s.limit.as_ref().and_then(|f| f.bytes.map(|b| (s, f, b))))
        {
            memory.limit_bytes = Some(b);
            memory.limit_source = format!("{}, {}", s.source, f.at.cite());
            memory.peak_pct_of_limit = match (memory.peak_usage_bytes, memory.limit_bytes) {
                (Some(p), Some(l)) if l > 0 => Some(p as f64 / l as f64 * 100.0),
                _ => None,
            };
        }
    }
    let facts = facts(&log);
    let hint = version_hint(&log.run);
    // The log's kill, else the first another source recorded.
    let external_kill = sources.iter().find_map(|s| s.kill.as_ref().map(|f| (s, f)));
    let synthesized = match (&log.kill, external_kill) {
        (None, Some((s, f))) => Some(KillFinding {
            line: 0,
            t_unix: None,
            kind: parse::KillKind::OomKiller,
            text: format!("{}: {}", s.source, f.what),
        }),
        _ => None,
    };
    let mut evidence = kill::evidence(
        &log.run,
        &facts,
        log.kill.as_ref().or(synthesized.as_ref()),
        memory.limit_bytes,
        &memory.limit_source,
    );
    if let (Ok(ev), Some(_), Some((s, f))) = (&mut evidence, &synthesized, external_kill) {
        ev.kill_source = format!("{}, {}", s.source, f.at.cite());
    }
    let killed = log.kill.is_some() || synthesized.is_some();
    let log_bound = evidence.as_ref().ok().map(|e| kill::log_bound(e, HEADROOM));
    let model = match (model, inputs.model.as_deref()) {
        (Some(mut m), Some(path)) => {
            let ctx = ModelContext {
                path: &path.display().to_string(),
                fidelity: inputs.fidelity.as_deref(),
                observed: &inputs.observed,
            };
            let mut found = model_findings(
                m.as_mut(),
                &ctx,
                &log.run,
                &facts,
                memory.limit_bytes,
                killed,
                &evidence,
            )?;
            if let (Some(note), true) = (
                retry_note(m.as_ref(), log.after_kill.as_ref(), memory.limit_bytes),
                killed,
            ) {
                found.notes.push(note);
            }
            if !hint.starts_with("v2") && evidence.is_ok() {
                found.notes.push(
                    "no v2-only line came before the kill: if the killed code was pre-v2, which needs more per row, the kill calibrates the v2 model high and its setting is cautious".into(),
                );
            }
            Some(found)
        }
        _ => None,
    };
    let mut pm = Postmortem {
        schema_version: SCHEMA_VERSION,
        oomlab_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: utc_now_rfc3339(),
        verdict: String::new(),
        log: log.source.clone(),
        docker_stats_source: stats_scan.map(|s| s.source),
        kill: log.kill.clone(),
        kill_lines: log.kill_lines,
        kill_not_used: evidence.as_ref().err().filter(|_| killed).cloned(),
        kill_evidence: evidence.ok(),
        log_bound,
        last_stage: log.run.last_stage.clone(),
        pipeline_version_hint: hint,
        runs_seen: log.runs_seen,
        sizes: log.run.clone(),
        after_kill: log.after_kill.clone(),
        facts,
        memory,
        model,
        timeline: log.events,
        timeline_dropped: log.events_dropped,
        stats,
        stats_interval_s: inputs.stats_interval_s,
        pictures: Vec::new(),
        sources,
    };
    pm.verdict = verdict(&pm);
    Ok(pm)
}

/// A retry that completed ranking prep with a cap, under the same limit, is
/// the other side of the kill: its peak stayed below the limit. The note
/// says whether the calibrated model agrees (a prediction over the limit for
/// a setting that held means the kill calibrated it too high for that setting).
fn retry_note(
    model: &dyn PeakModel,
    retry: Option<&RunFacts>,
    limit: Option<u64>,
) -> Option<String> {
    let r = retry?;
    let limit = limit?;
    if r.last_stage.as_ref()?.stage.as_deref() != Some("prepared") {
        return None;
    }
    let (from, cap) = r.sampling?;
    let rows = r.ranking_samples_rows.unwrap_or(from);
    let p = model.predict("optimized", rows, cap).ok()?;
    Some(format!(
        "a later run (line {}) completed ranking prep with {} rows and MAX_RANKING_SAMPLES={} under the same {} limit; the calibrated model predicts {} for it{}",
        r.first_line,
        format_count(rows),
        format_count(cap),
        format_bytes(limit),
        format_bytes(p.peak_bytes),
        if p.peak_bytes > limit {
            ": over the limit for a setting that held, so the kill calibrates the model too high there; measure that run's peak and pass it as --observed"
        } else {
            ", within the limit: the two runs agree"
        }
    ))
}

/// Reads every source given by its own flag, in a fixed order (the first
/// limit and kill found win, so the pod spec and the cgroup come first).
fn read_sources(inputs: &Inputs) -> Result<Vec<SourceFindings>> {
    let mut out = Vec::new();
    if let Some(p) = &inputs.kubernetes {
        out.push(sources::kubernetes::read(p)?);
    }
    if let Some(p) = &inputs.cgroup_dir {
        out.push(sources::cgroup::read(p)?);
    }
    if let Some(p) = &inputs.kernel_log {
        out.push(sources::kernel::read(p)?);
    }
    if let Some(p) = &inputs.prometheus {
        out.push(sources::prometheus::read(p)?);
    }
    Ok(out)
}

fn memory_findings(
    inputs: &Inputs,
    log: &LogAnalysis,
    stats: &[StatsPoint],
    container: Option<String>,
    stats_rows: u64,
) -> MemoryFindings {
    let stats_limit = stats.iter().map(|p| p.limit_bytes).max().filter(|l| *l > 0);
    let (limit_bytes, limit_source) = match (inputs.memory_limit, stats_limit) {
        (Some(l), _) => (Some(l), "flag"),
        (None, Some(l)) => (Some(l), "docker stats"),
        (None, None) => (None, "unknown"),
    };
    let peak = stats.iter().max_by_key(|p| p.usage_bytes);
    let kill_t = log.kill.as_ref().and_then(|k| k.t_unix);
    let last_before_kill = kill_t.and_then(|k| {
        stats
            .iter()
            .filter(|p| p.t_unix.is_some_and(|t| t <= k))
            .max_by(|a, b| a.t_unix.unwrap_or(0.0).total_cmp(&b.t_unix.unwrap_or(0.0)))
            .map(|p| p.usage_bytes)
    });
    MemoryFindings {
        limit_bytes,
        limit_source: limit_source.into(),
        container: container.filter(|c| !c.is_empty()),
        stats_rows,
        peak_usage_bytes: peak.map(|p| p.usage_bytes),
        peak_t_unix: peak.and_then(|p| p.t_unix),
        peak_pct_of_limit: match (peak, limit_bytes) {
            (Some(p), Some(l)) if l > 0 => Some(p.usage_bytes as f64 / l as f64 * 100.0),
            _ => None,
        },
        last_usage_before_kill_bytes: last_before_kill,
    }
}

fn facts(log: &LogAnalysis) -> Facts {
    let run = &log.run;
    let rows = run.ranking_samples_rows.or(run.preparing_samples);
    let (max_ranking_samples, source) = if let Some((from, to)) = run.sampling {
        (
            Some(to),
            format!("from the sampling line: {from} -> {to} rows"),
        )
    } else if let Some(s) = &log.setting {
        (
            Some(s.value),
            format!(
                "from `MAX_RANKING_SAMPLES={}` on line {}{}",
                s.value,
                s.line,
                if s.value > 0 && run.ranking_samples_rows.is_some_and(|r| r > s.value) {
                    " (but no sampling line followed: the running code may predate v2 sampling)"
                } else {
                    ""
                }
            ),
        )
    } else if run.ranking_samples_rows.is_some()
        && run.last_stage.as_ref().is_some_and(|e| {
            e.stage
                .as_deref()
                .map(|s| s != "optimize_samples")
                .unwrap_or(false)
        })
    {
        (
            None,
            "no sampling line: MAX_RANKING_SAMPLES was 0 (no limit), at least the row count, or the code predates v2".into(),
        )
    } else {
        (None, "not in the log".into())
    };
    Facts {
        ranking_samples_rows: rows,
        dataset_profile_rows: run.datasets,
        dataset_profile_columns: run.dataset_feature_columns,
        max_ranking_samples,
        max_ranking_samples_source: source,
        log_lines_before_kill: log.context_before.clone(),
        log_lines_after_kill: log.context_after.clone(),
    }
}

fn version_hint(run: &RunFacts) -> String {
    if run.sampling.is_some()
        || run.samples_optimized_rows.is_some()
        || run.memory_before_mb.is_some()
    {
        "v2 (sampling / memory-optimization lines seen)".into()
    } else if run.last_stage.is_some() {
        "unknown: no v2-only line (sampling, samples optimized, memory optimization) before the end; pre-v2 code, or v2 killed before those lines".into()
    } else {
        "unknown".into()
    }
}

/// The numeric profile columns a log's `Merging with dataset features (N
/// columns)` stands for: v2 logs the numeric columns it merges; a pre-v2 run
/// (no v2-only line) merging at least the model's whole profile logs every
/// column, of which the non-numeric ones are taken as the model's.
fn logged_numeric_columns(shape: ModelShape, run: &RunFacts) -> Option<u64> {
    let c = run.dataset_feature_columns?;
    let v2 = run.sampling.is_some()
        || run.samples_optimized_rows.is_some()
        || run.memory_before_mb.is_some();
    let non_numeric = shape
        .profile_columns
        .saturating_sub(shape.profile_numeric_columns);
    if v2 || c < shape.profile_columns || c <= non_numeric {
        Some(c)
    } else {
        Some(c - non_numeric)
    }
}

/// Where the log's data shape differs from the model's: predictions follow
/// the logged feature columns when the model has a column term (saying how
/// far outside its measured counts they are); other differences make its
/// per-row costs off for this log, and are named.
fn shape_notes(shape: ModelShape, columns: &ModelColumns, run: &RunFacts) -> Vec<String> {
    let mut notes = Vec::new();
    if let (Some(c), Some(numeric)) = (
        run.dataset_feature_columns,
        logged_numeric_columns(shape, run),
    ) {
        let measured = columns
            .measured
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let taken = if numeric == c {
            String::new()
        } else {
            format!(" ({numeric} of them numeric, the rest taken as the model's)")
        };
        if columns.modelled {
            let (lo, hi) = (
                columns.measured.first().copied().unwrap_or(columns.at),
                columns.measured.last().copied().unwrap_or(columns.at),
            );
            let range = if numeric > hi {
                format!(
                    "{} above the largest measured ({hi}), {:.0}% beyond it: extrapolated",
                    numeric - hi,
                    (numeric as f64 / hi.max(1) as f64 - 1.0) * 100.0
                )
            } else if numeric < lo {
                format!(
                    "{} below the smallest measured ({lo}): extrapolated",
                    lo - numeric
                )
            } else {
                "inside the measured range".into()
            };
            notes.push(format!(
                "predictions are at the logged column count: the log merged {c} dataset feature columns{taken}, so every figure is at {numeric} numeric profile columns (the model was measured at {measured}; {numeric} is {range})"
            ));
        } else if numeric != shape.profile_numeric_columns {
            notes.push(format!(
                "the log merged {c} dataset feature columns{taken}, the model was measured with {} ({} numeric) only and has no column term: its peaks are for {} numeric columns, off by about the ratio of the columns merged (sweep with --columns to predict at {numeric})",
                shape.profile_columns, shape.profile_numeric_columns, shape.profile_numeric_columns
            ));
        }
    }
    if let Some(c) = run.user_feature_columns {
        if c != shape.user_columns {
            notes.push(format!(
                "the log merged {c} user feature columns, the model was measured with {}",
                shape.user_columns
            ));
        }
    }
    if let Some(d) = run.datasets {
        if d != shape.datasets {
            notes.push(format!(
                "the log has {} datasets, the model's data {}: the dataset_profile frame itself grows with them",
                format_count(d),
                format_count(shape.datasets)
            ));
        }
    }
    notes
}

/// Where the model and its calibration came from, for the `oomlab check`
/// line that reproduces it.
struct ModelContext<'a> {
    path: &'a str,
    fidelity: Option<&'a Path>,
    observed: &'a [String],
}

fn model_findings(
    model: &mut dyn PeakModel,
    ctx: &ModelContext,
    run: &RunFacts,
    facts: &Facts,
    limit: Option<u64>,
    killed: bool,
    evidence: &std::result::Result<KillEvidence, String>,
) -> Result<ModelFindings> {
    let user = ctx
        .observed
        .iter()
        .map(|o| ObservedPeak::parse(o))
        .collect::<Result<Vec<_>>>()?;
    // At the logged feature columns, as `check --columns` would be.
    let mut out_columns = None;
    if let Some(c) = logged_numeric_columns(model.shape(), run) {
        if model.columns().modelled {
            model.set_columns(c);
            out_columns = Some(c);
        }
    }
    // First as `check` would see it without the kill.
    model.calibrate(&user, ctx.fidelity)?;
    let mut out = ModelFindings {
        model: model.describe(),
        headroom: HEADROOM,
        limit_bytes: limit,
        columns: out_columns,
        ..ModelFindings::default()
    };
    let Some(rows_in) = facts.ranking_samples_rows else {
        out.notes
            .push("the log gives no ranking_samples row count: nothing to predict".into());
        return Ok(out);
    };
    out.rows_in = rows_in;
    out.max_ranking_samples_in_force = facts.max_ranking_samples.unwrap_or(0);
    out.notes
        .extend(shape_notes(model.shape(), &model.columns(), run));
    let largest = |model: &dyn PeakModel| {
        ["legacy", "optimized"]
            .iter()
            .filter_map(|s| {
                model
                    .predict(s, rows_in, out.max_ranking_samples_in_force)
                    .ok()
            })
            .map(|p| p.peak_bytes)
            .max()
    };
    let before = largest(model);
    out.largest_before_kill_bytes = before;
    // A kill the model cannot explain: even its largest prediction fits.
    if let (true, Some(limit), Some(before)) = (killed, limit, before) {
        if before < limit {
            out.under_predicts = true;
            out.notes.push(format!(
                "the run was killed at the {} limit, yet the model predicted at most {} at these sizes: it under-predicts this workload (another column mix, or memory held outside ranking prep)",
                format_bytes(limit),
                format_bytes(before)
            ));
        }
    }
    // The kill as an observation, calibrating the model with any --observed.
    let mut observed_args: Vec<String> = ctx.observed.to_vec();
    match evidence {
        Ok(ev) => {
            let o = kill::observation(ev, &model.stages());
            if let (Some(stage), None) = (&ev.stage, &o.stage) {
                out.notes.push(format!(
                    "the model has no stage `{stage}`: the kill bounds its overall peak instead"
                ));
            }
            let arg = o.to_arg();
            let mut all = user.clone();
            all.push(o);
            if let Err(e) = model.calibrate(&all, ctx.fidelity) {
                // The model cannot take the kill (it predicts nothing there):
                // say so, and answer from it as it was; the killed rows still
                // cap the setting below.
                model.calibrate(&user, ctx.fidelity)?;
                out.notes.push(format!(
                    "the kill could not calibrate the model ({e}): its answer is the model's own"
                ));
                return finish_findings(model, ctx, limit, evidence, out, observed_args);
            }
            out.notes.push(format!(
                "the kill calibrates the model: at {} rows (MAX_RANKING_SAMPLES={}) the pipeline needed at least the {} limit{} (kill: {}, limit from {}); as `--observed {arg}`",
                format_count(ev.rows_in),
                ev.max_ranking_samples,
                format_bytes(ev.limit_bytes),
                ev.stage
                    .as_deref()
                    .map(|s| format!(" in `{s}` (line {})", ev.stage_line.unwrap_or(0)))
                    .unwrap_or_default(),
                ev.kill_source,
                ev.limit_source,
            ));
            observed_args.push(arg.clone());
            out.kill_observation = Some(arg);
        }
        Err(why) if killed => out
            .notes
            .push(format!("the kill is not used as a measurement: {why}")),
        Err(_) => {}
    }
    finish_findings(model, ctx, limit, evidence, out, observed_args)
}

/// The predictions and the setting of a model as calibrated (with the kill
/// when `out.kill_observation` is set), and the `check` lines that reproduce them.
fn finish_findings(
    model: &mut dyn PeakModel,
    ctx: &ModelContext,
    limit: Option<u64>,
    evidence: &std::result::Result<KillEvidence, String>,
    mut out: ModelFindings,
    observed_args: Vec<String>,
) -> Result<ModelFindings> {
    let rows_in = out.rows_in;
    out.model = model.describe();
    for strategy in ["legacy", "optimized"] {
        match model.predict(strategy, rows_in, out.max_ranking_samples_in_force) {
            Ok(p) => {
                out.predicted.insert(strategy.to_string(), p);
            }
            Err(e) => out.notes.push(format!("{strategy}: {e}")),
        }
    }
    let Some(limit) = limit else {
        out.notes.push(
            "no memory limit known (give --memory-limit or --docker-stats): no setting computed"
                .into(),
        );
        return Ok(out);
    };
    // Lossy for a path that is not UTF-8, but never dropped: without it the
    // check line would calibrate differently.
    let fidelity = ctx.fidelity.map(|f| f.display().to_string());
    let line = kill::CheckLine {
        model: ctx.path,
        fidelity: fidelity.as_deref(),
        observed: observed_args,
        rows_in,
        memory_bytes: limit,
        columns: out.columns,
    };
    let killed_rows = evidence.as_ref().ok().map(|e| e.killed_rows);
    match model.fitting_setting(rows_in, limit, HEADROOM) {
        Ok(setting) => {
            // Never the setting that was killed, nor one above it.
            let cap = match &setting {
                FittingSetting::NoSampling { .. } => Some(0),
                FittingSetting::Cap { cap, .. } => Some(*cap),
                FittingSetting::NoFit { .. } => None,
            };
            let safe = cap.filter(|&c| match killed_rows {
                Some(k) => c > 0 && c < k,
                None => true,
            });
            match (cap, safe) {
                (_, Some(c)) => {
                    out.cap_is_upper_bound = out.kill_observation.is_some();
                    let note = if out.cap_is_upper_bound {
                        format!(
                            "postmortem: at most this fits {}, an upper bound",
                            format_bytes(limit)
                        )
                    } else {
                        format!("postmortem: fits {}", format_bytes(limit))
                    };
                    out.env_snippet = Some(crate::model::advice::env_snippet(c, &note));
                    out.check_command = Some(line.command(c));
                }
                (Some(c), None) => {
                    out.no_safe_cap = Some(format!(
                        "the model gives MAX_RANKING_SAMPLES={c}, at or above the {} rows killed under the same limit: it cannot be shown safe",
                        format_count(killed_rows.unwrap_or(0))
                    ));
                }
                (None, _) => {
                    out.no_safe_cap = Some(
                        "even sampling to one row is predicted over the limit after headroom"
                            .into(),
                    );
                }
            }
            out.fitting = Some(setting);
        }
        Err(e) => out.notes.push(format!("no setting computed: {e}")),
    }
    if let Ok(ev) = evidence {
        out.check_killed_command = Some(line.command(ev.max_ranking_samples));
        if out.no_safe_cap.is_some() {
            out.measure_command = Some(kill::measure_command(ev));
        }
    }
    Ok(out)
}

/// Log times as write-ups show them (`2025-12-25 08:29:29 UTC`), for the
/// pictures too.
pub use crate::clock::format_unix;

fn at_time(t: Option<f64>) -> String {
    t.map(|t| format!(" at {}", format_unix(t)))
        .unwrap_or_default()
}

/// What was odd about a log's bytes, as a sentence (empty when nothing was):
/// lines that were not UTF-8 or held binary data were read anyway, lossily.
fn encoding_note(log: &SourceStats) -> String {
    let mut odd = Vec::new();
    if log.non_utf8 > 0 {
        odd.push(format!(
            "{} not valid UTF-8 (read with replacement characters)",
            log.non_utf8
        ));
    }
    if log.binary > 0 {
        odd.push(format!("{} with binary bytes (NUL or control)", log.binary));
    }
    if log.truncated > 0 {
        odd.push(format!(
            "{} longer than 64 KiB (only the first 64 KiB read)",
            log.truncated
        ));
    }
    if odd.is_empty() {
        String::new()
    } else {
        format!(" Of its {} lines, {}.", log.lines, odd.join("; "))
    }
}

fn verdict(pm: &Postmortem) -> String {
    let mut v = String::new();
    if pm.log.bytes == 0 && pm.memory.stats_rows == 0 {
        return format!(
            "{} is empty (0 bytes): no kill, stage or size can be named from it.",
            pm.log.path
        );
    }
    if pm.log.recognized == 0 && pm.memory.stats_rows == 0 {
        return format!(
            "Nothing in {} was recognized ({} lines, {} skipped): not the pipeline's log, or its INFO lines were not captured. No kill, stage or size can be named from it.{}",
            pm.log.path,
            pm.log.lines,
            pm.log.unknown,
            encoding_note(&pm.log)
        );
    }
    let stage = pm.last_stage.as_ref();
    match &pm.kill {
        Some(k) => {
            let _ = write!(
                v,
                "The pipeline was killed ({}) on line {}{}: `{}`. ",
                kill_label(k.kind),
                k.line,
                at_time(k.t_unix),
                k.text.trim()
            );
            match stage {
                Some(s) if s.stage.as_deref() == Some("prepared") => {
                    let _ = write!(
                        v,
                        "Ranking data had already been prepared (line {}), so the kill came after ranking prep. ",
                        s.line
                    );
                }
                Some(s) => {
                    let _ = write!(
                        v,
                        "The last stage reached was `{}` (line {}: \"{}\"). ",
                        s.stage.as_deref().unwrap_or("?"),
                        s.line,
                        s.event.describe()
                    );
                }
                None => v.push_str("No pipeline stage line came before it. "),
            }
            if let Some(retry) = &pm.after_kill {
                let _ = write!(v, "A later run started on line {}", retry.first_line);
                if let Some((from, to)) = retry.sampling {
                    let _ = write!(
                        v,
                        ", sampled {} -> {} rows",
                        format_count(from),
                        format_count(to)
                    );
                }
                match retry.last_stage.as_ref().and_then(|s| s.stage.as_deref()) {
                    Some("prepared") => v.push_str(", and completed ranking prep. "),
                    Some(stage) => {
                        let _ = write!(v, ", and its last stage line was `{stage}`. ");
                    }
                    None => v.push_str(". "),
                }
            }
        }
        None => {
            v.push_str("No kill (exit code -9, Killed, OOM) was found in the log");
            match pm
                .sources
                .iter()
                .find_map(|s| s.kill.as_ref().map(|f| (s, f)))
            {
                Some((s, f)) => {
                    let _ = write!(v, ", but the {} recorded one ({}). ", s.source, f.at.cite());
                }
                None => v.push_str(". "),
            }
            if let Some(s) = stage {
                let _ = write!(
                    v,
                    "The last stage reached was `{}` (line {}). ",
                    s.stage.as_deref().unwrap_or("?"),
                    s.line
                );
            }
        }
    }
    let f = &pm.facts;
    if let Some(rows) = f.ranking_samples_rows {
        let _ = write!(v, "It was preparing {} ranking samples", format_count(rows));
        if let (Some(d), Some(c)) = (f.dataset_profile_rows, f.dataset_profile_columns) {
            let _ = write!(
                v,
                " against {} datasets x {} feature columns",
                format_count(d),
                c
            );
        } else if let Some(c) = f.dataset_profile_columns {
            let _ = write!(v, " with {c} dataset feature columns");
        }
        match f.max_ranking_samples {
            Some(0) => v.push_str(", MAX_RANKING_SAMPLES=0 (no limit). "),
            Some(m) => {
                let _ = write!(v, ", MAX_RANKING_SAMPLES={}. ", format_count(m));
            }
            None => v.push_str(", with no sampling line (no MAX_RANKING_SAMPLES in force). "),
        }
    }
    let m = &pm.memory;
    if let Some(peak) = m.peak_usage_bytes {
        let _ = write!(
            v,
            "docker stats peaked at {}{}",
            format_bytes(peak),
            at_time(m.peak_t_unix)
        );
        if let (Some(l), Some(p)) = (m.limit_bytes, m.peak_pct_of_limit) {
            let _ = write!(v, " ({p:.1}% of the {} limit)", format_bytes(l));
        }
        v.push_str(". ");
    }
    if let Some(model) = &pm.model {
        if let (Some(limit), Some(p)) = (model.limit_bytes, model.predicted.get("optimized")) {
            let sizes = match model.columns {
                Some(c) => format!("these sizes ({c} numeric profile columns, as logged)"),
                None => "these sizes".into(),
            };
            if model.under_predicts {
                let _ = write!(
                    v,
                    "The model predicted at most {} at {sizes}, yet the run was killed: it under-predicted this workload. ",
                    format_bytes(model.largest_before_kill_bytes.unwrap_or(0))
                );
            }
            let sizes = if model.under_predicts {
                "these sizes".to_string()
            } else {
                sizes
            };
            let _ = write!(
                v,
                "{} predicts {} for v2 at {sizes} against the {} limit",
                if model.kill_observation.is_some() {
                    "Calibrated with the kill, the model"
                } else {
                    "The model"
                },
                format_bytes(p.peak_bytes),
                format_bytes(limit)
            );
            match (&model.fitting, &model.no_safe_cap) {
                (_, Some(why)) => {
                    let _ = write!(v, "; no setting can be shown safe: {why}.");
                    if let (Some(cmd), Some(ev)) = (&model.measure_command, &pm.kill_evidence) {
                        let _ = write!(v, " Measure one: `{cmd}`, {}.", kill::measure_then(ev));
                    }
                }
                (Some(FittingSetting::NoSampling { .. }), None) => {
                    v.push_str("; it fits without sampling.")
                }
                (Some(FittingSetting::Cap { cap, .. }), None) if model.cap_is_upper_bound => {
                    let _ = write!(
                        v,
                        "; MAX_RANKING_SAMPLES={cap} is the largest setting that can fit, an upper bound: the kill shows the peak was at least the limit, and it may have been above it, so the safe cap may be lower."
                    );
                }
                (Some(FittingSetting::Cap { cap, .. }), None) => {
                    let _ = write!(v, "; MAX_RANKING_SAMPLES={cap} would have fitted.");
                }
                (Some(FittingSetting::NoFit { floor }), None) => {
                    let _ = write!(
                        v,
                        "; no setting fits (v2 needs at least {}).",
                        format_bytes(floor.peak_bytes)
                    );
                }
                (None, None) => v.push('.'),
            }
        }
    } else if let Some(b) = &pm.log_bound {
        v.push_str(&b.describe());
    }
    let mut v = v.trim_end().to_string();
    v.push_str(&sources_sentence(pm));
    v.push_str(&encoding_note(&pm.log));
    v
}

/// What the other sources add, one clause each, every one citing its file
/// and line (empty without sources).
fn sources_sentence(pm: &Postmortem) -> String {
    let mut parts = Vec::new();
    for s in &pm.sources {
        for f in [&s.kill, &s.limit, &s.peak].into_iter().flatten() {
            parts.push(format!("{} ({})", f.what, f.at.cite()));
        }
    }
    if parts.is_empty() {
        return String::new();
    }
    let lead = " Other sources";
    format!("{lead}: {}.", parts.join("; "))
}

fn kill_label(kind: parse::KillKind) -> &'static str {
    match kind {
        parse::KillKind::Sigkill => "exit code -9 / SIGKILL",
        parse::KillKind::OomKiller => "the kernel's OOM killer",
        parse::KillKind::Killed => "`Killed`",
        parse::KillKind::MemoryError => "Python MemoryError",
    }
}

fn opt_count(v: Option<u64>) -> String {
    v.map(format_count)
        .unwrap_or_else(|| "not in the log".into())
}

/// Where in the log the reported run said what `pick` picks: the last such
/// line of that run (the one its figure was read from), as `log line N`, or
/// `-` when the timeline (its first 10,000 events) does not hold it.
fn cite_log(pm: &Postmortem, pick: impl Fn(&LogEvent) -> bool) -> String {
    let from = pm.sizes.first_line;
    let to = pm.kill.as_ref().map_or(u64::MAX, |k| k.line);
    pm.timeline
        .iter()
        .filter(|e| e.line >= from && e.line <= to && pick(&e.event))
        .map(|e| e.line)
        .next_back()
        .map_or_else(|| "-".into(), |l| format!("log line {l}"))
}

/// Renders `postmortem.md`.
pub fn render_markdown(pm: &Postmortem) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Postmortem: {}\n", pm.log.path);
    let _ = writeln!(md, "{}\n", pm.verdict);
    for pic in &pm.pictures {
        if pic.ends_with(".svg") {
            let _ = writeln!(md, "![memory]({pic})\n");
        }
    }
    let f = &pm.facts;
    let _ = writeln!(md, "## The four facts (write-up: 如果再次出现 OOM)\n");
    let _ = writeln!(md, "| | | from |\n|---|---|---|");
    let rows_from = match cite_log(pm, |e| matches!(e, LogEvent::RankingSamples { .. })) {
        c if c == "-" => cite_log(pm, |e| matches!(e, LogEvent::Preparing { .. })),
        c => c,
    };
    let _ = writeln!(
        md,
        "| 1. `ranking_samples` rows | {} | {rows_from} |",
        opt_count(f.ranking_samples_rows)
    );
    let _ = writeln!(
        md,
        "| 2. `dataset_profile` columns x rows | {} feature columns x {} rows | {}, {} |",
        opt_count(f.dataset_profile_columns),
        opt_count(f.dataset_profile_rows),
        cite_log(pm, |e| matches!(e, LogEvent::MergeDatasetFeatures { .. })),
        cite_log(pm, |e| matches!(
            e,
            LogEvent::Preparing {
                datasets: Some(_),
                ..
            }
        ))
    );
    let _ = writeln!(
        md,
        "| 3. `MAX_RANKING_SAMPLES` in force | {} ({}) | {} |",
        f.max_ranking_samples
            .map(|v| v.to_string())
            .unwrap_or_else(|| "unknown".into()),
        f.max_ranking_samples_source,
        if pm.sizes.sampling.is_some() {
            cite_log(pm, |e| matches!(e, LogEvent::Sampling { .. }))
        } else if f.max_ranking_samples.is_some() {
            "the line named".into()
        } else {
            "-".into()
        }
    );
    let _ = writeln!(
        md,
        "| 4. log lines around the kill | {} before, {} after (below) | {} |\n",
        f.log_lines_before_kill.len(),
        f.log_lines_after_kill.len(),
        pm.kill
            .as_ref()
            .map_or_else(|| "-".into(), |k| format!("kill on log line {}", k.line))
    );

    let s = &pm.sizes;
    let _ = writeln!(md, "## Data sizes from the log\n");
    let _ = writeln!(md, "| | | from |\n|---|---|---|");
    type Pick = fn(&LogEvent) -> bool;
    let picks: [Pick; 10] = [
        |e| matches!(e, LogEvent::RankingSamples { .. }),
        |e| matches!(e, LogEvent::Sampling { .. }),
        |e| matches!(e, LogEvent::SamplesOptimized { .. }),
        |e| matches!(e, LogEvent::Preparing { .. }),
        |e| {
            matches!(
                e,
                LogEvent::Preparing {
                    datasets: Some(_),
                    ..
                }
            )
        },
        |e| matches!(e, LogEvent::MergeDatasetFeatures { .. }),
        |e| matches!(e, LogEvent::MergeUserFeatures { .. }),
        |e| matches!(e, LogEvent::MemoryOptimization { .. }),
        |e| matches!(e, LogEvent::Prepared { .. }),
        |e| {
            matches!(
                e,
                LogEvent::Prepared {
                    features: Some(_),
                    ..
                }
            )
        },
    ];
    let rows: [(&str, String); 10] = [
        (
            "ranking samples before optimization",
            opt_count(s.ranking_samples_rows),
        ),
        (
            "sampling",
            s.sampling
                .map(|(a, b)| format!("{} -> {}", format_count(a), format_count(b)))
                .unwrap_or_else(|| "no sampling line".into()),
        ),
        ("samples optimized", opt_count(s.samples_optimized_rows)),
        (
            "samples prepared (merge input)",
            opt_count(s.preparing_samples),
        ),
        ("datasets", opt_count(s.datasets)),
        (
            "dataset feature columns merged",
            opt_count(s.dataset_feature_columns),
        ),
        (
            "user feature columns merged",
            opt_count(s.user_feature_columns),
        ),
        (
            "memory optimization",
            match (s.memory_before_mb, s.memory_after_mb) {
                (Some(a), Some(b)) => format!("{a:.2} MB -> {b:.2} MB"),
                _ => "not reached".into(),
            },
        ),
        ("prepared rows", opt_count(s.prepared_rows)),
        ("prepared features", opt_count(s.prepared_features)),
    ];
    for ((k, v), pick) in rows.into_iter().zip(picks) {
        let _ = writeln!(md, "| {k} | {v} | {} |", cite_log(pm, pick));
    }
    let _ = writeln!(
        md,
        "\nPipeline version: {}. Pipeline runs in the log: {}.\n",
        pm.pipeline_version_hint, pm.runs_seen
    );

    if let Some(r) = &pm.after_kill {
        let _ = writeln!(md, "## After the kill: a later run\n");
        let _ = writeln!(
            md,
            "- Started on line {}: {} ranking samples loaded, {}.",
            r.first_line,
            opt_count(r.ranking_samples_rows.or(r.preparing_samples)),
            r.sampling
                .map(|(a, b)| format!("sampled {} -> {} rows", format_count(a), format_count(b)))
                .unwrap_or_else(|| "no sampling line".into())
        );
        match r.last_stage.as_ref() {
            Some(s) if s.stage.as_deref() == Some("prepared") => {
                let _ = writeln!(md, "- Completed ranking prep (line {}).", s.line);
                if let Some((_, to)) = r.sampling {
                    let _ = writeln!(
                        md,
                        "- So MAX_RANKING_SAMPLES={to} held through ranking prep in this log{}.",
                        pm.memory
                            .limit_bytes
                            .map(|l| format!(" (limit {})", format_bytes(l)))
                            .unwrap_or_default()
                    );
                }
            }
            Some(s) => {
                let _ = writeln!(
                    md,
                    "- Its last stage line was `{}` (line {}).",
                    s.stage.as_deref().unwrap_or("?"),
                    s.line
                );
            }
            None => {}
        }
        let _ = writeln!(md);
    }

    let m = &pm.memory;
    let _ = writeln!(md, "## Memory\n");
    match m.limit_bytes {
        Some(l) => {
            let _ = writeln!(
                md,
                "- Limit: {} (from {}).",
                format_bytes(l),
                match m.limit_source.as_str() {
                    "flag" => "`--memory-limit`".to_string(),
                    "docker stats" => format!(
                        "`docker stats` rows in `{}`",
                        pm.docker_stats_source
                            .as_ref()
                            .map_or(pm.log.path.as_str(), |s| s.path.as_str())
                    ),
                    other => other.to_string(),
                }
            );
        }
        None => {
            let _ = writeln!(
                md,
                "- Limit: unknown (give `--memory-limit` or `--docker-stats`)."
            );
        }
    }
    if m.stats_rows == 0 {
        let _ = writeln!(md, "- No `docker stats` rows were found.");
    } else {
        let _ = writeln!(
            md,
            "- `docker stats`: {} rows; container `{}` peaked at {}{}{}.",
            m.stats_rows,
            m.container.as_deref().unwrap_or("?"),
            m.peak_usage_bytes.map(format_bytes).unwrap_or_default(),
            at_time(m.peak_t_unix),
            m.peak_pct_of_limit
                .map(|p| format!(" ({p:.1}% of the limit)"))
                .unwrap_or_default()
        );
        if let Some(b) = m.last_usage_before_kill_bytes {
            let _ = writeln!(md, "- Last reading before the kill: {}.", format_bytes(b));
        }
    }
    let _ = writeln!(md);

    if !pm.sources.is_empty() {
        let _ = writeln!(md, "## Other sources\n");
        let _ = writeln!(
            md,
            "| source | fact | where | line as read |\n|---|---|---|---|"
        );
        for s in &pm.sources {
            for f in s.all_facts() {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | `{}` |",
                    s.source,
                    f.what.replace('|', "\\|"),
                    f.at.cite(),
                    f.at.text.replace('|', "\\|").replace('`', "'")
                );
            }
        }
        let _ = writeln!(md);
        for s in &pm.sources {
            let _ = writeln!(
                md,
                "- {} `{}`: {} lines, {} recognized.",
                s.source, s.path, s.lines, s.recognized
            );
        }
        let _ = writeln!(md);
    }

    let _ = writeln!(md, "## The kill as a measurement\n");
    match (&pm.kill_evidence, &pm.kill_not_used) {
        (Some(e), _) => {
            let _ = writeln!(
                md,
                "- Killed ({}) holding {} rows ({} loaded, MAX_RANKING_SAMPLES={}){}, at the {} limit (from {}): the peak was at least the limit.",
                e.kill_source,
                format_count(e.killed_rows),
                format_count(e.rows_in),
                e.max_ranking_samples,
                e.stage
                    .as_deref()
                    .map(|s| format!(" in `{s}` (line {})", e.stage_line.unwrap_or(0)))
                    .unwrap_or_default(),
                format_bytes(e.limit_bytes),
                e.limit_source
            );
        }
        (None, Some(why)) => {
            let _ = writeln!(md, "- Not used: {why}.");
        }
        (None, None) => {
            let _ = writeln!(md, "- No kill.");
        }
    }
    if let Some(b) = &pm.log_bound {
        let _ = writeln!(md, "- {}", b.describe());
        if pm.model.is_none() && b.cap_at_most > 0 {
            let _ = writeln!(
                md,
                "\n```bash\n{}```",
                crate::model::advice::env_snippet(
                    b.cap_at_most,
                    "a bound from the log alone: at most this, maybe less"
                )
            );
        }
    }
    let _ = writeln!(md);

    let _ = writeln!(md, "## Model\n");
    match &pm.model {
        None => {
            let _ = writeln!(
                md,
                "No model given (`--model model.json` from `oomlab sweep` adds the predicted peak and the settings that fit).\n"
            );
        }
        Some(mf) => {
            let _ = writeln!(md, "{}.\n", mf.model);
            if !mf.predicted.is_empty() {
                let _ = writeln!(
                    md,
                    "Predicted peaks at {} rows loaded, MAX_RANKING_SAMPLES={}:\n",
                    format_count(mf.rows_in),
                    mf.max_ranking_samples_in_force
                );
                let _ = writeln!(
                    md,
                    "| strategy | predicted peak | stage | vs limit |\n|---|---|---|---|"
                );
                for (name, p) in &mf.predicted {
                    let vs = mf
                        .limit_bytes
                        .map(|l| {
                            if p.peak_bytes > l {
                                format!("over by {}", format_bytes(p.peak_bytes - l))
                            } else {
                                format!(
                                    "fits ({:.0}% of it)",
                                    p.peak_bytes as f64 / l as f64 * 100.0
                                )
                            }
                        })
                        .unwrap_or_else(|| "-".into());
                    let _ = writeln!(
                        md,
                        "| {name} | {} | {} | {vs} |",
                        format_bytes(p.peak_bytes),
                        p.stage
                    );
                }
                let _ = writeln!(md);
            }
            match &mf.fitting {
                Some(FittingSetting::NoSampling { peak }) => {
                    let _ = writeln!(
                        md,
                        "With {:.0}% headroom, v2 fits without sampling (predicted {}).\n",
                        mf.headroom * 100.0,
                        format_bytes(peak.peak_bytes)
                    );
                }
                Some(FittingSetting::Cap { cap, peak }) => {
                    let _ = writeln!(
                        md,
                        "With {:.0}% headroom, the setting that fits: MAX_RANKING_SAMPLES={} (predicted {}, stage {}).\n",
                        mf.headroom * 100.0,
                        format_count(*cap),
                        format_bytes(peak.peak_bytes),
                        peak.stage
                    );
                }
                Some(FittingSetting::NoFit { floor }) => {
                    let _ = writeln!(
                        md,
                        "No setting fits: v2 needs at least {} (stage {}).\n",
                        format_bytes(floor.peak_bytes),
                        floor.stage
                    );
                }
                None => {}
            }
            if let Some(why) = &mf.no_safe_cap {
                let _ = writeln!(md, "No setting can be shown safe: {why}.\n");
            }
            if let Some(env) = &mf.env_snippet {
                if mf.cap_is_upper_bound {
                    let _ = writeln!(
                        md,
                        "An upper bound: the kill says the peak was at least the limit, not how far above it went, so the safe cap may be lower.\n"
                    );
                }
                let _ = writeln!(md, "```bash\n{}```\n", env);
            }
            if let Some(cmd) = &mf.check_command {
                let _ = writeln!(
                    md,
                    "The same calibration in `oomlab check` (exit 0: fits):\n\n```sh\n{cmd}\n```\n"
                );
            }
            if let Some(cmd) = &mf.check_killed_command {
                let _ = writeln!(
                    md,
                    "and with the killed setting (exit 1: does not fit):\n\n```sh\n{cmd}\n```\n"
                );
            }
            if let Some(cmd) = &mf.measure_command {
                let _ = writeln!(
                    md,
                    "To measure what is missing, one run at a smaller cap:\n\n```sh\n{cmd}\n```\n\n{}.\n",
                    pm.kill_evidence
                        .as_ref()
                        .map(kill::measure_then)
                        .unwrap_or_default()
                );
            }
            for n in &mf.notes {
                let _ = writeln!(md, "- {n}");
            }
            if !mf.notes.is_empty() {
                let _ = writeln!(md);
            }
        }
    }

    let _ = writeln!(md, "## Timeline of recognized lines\n");
    if pm.timeline.is_empty() {
        let _ = writeln!(md, "Nothing recognized.\n");
    } else {
        let _ = writeln!(md, "| line | time | stage | event |\n|---|---|---|---|");
        let shown = 200;
        for e in pm
            .timeline
            .iter()
            .filter(|e| !matches!(e.event, LogEvent::Stats(_)))
            .take(shown)
        {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                e.line,
                e.t_unix.map(format_unix).unwrap_or_default(),
                e.stage.as_deref().unwrap_or(""),
                e.event.describe().replace('|', "\\|")
            );
        }
        let total = pm.timeline.len() as u64 + pm.timeline_dropped;
        if total > shown as u64 {
            let _ = writeln!(
                md,
                "\n({} events in all; postmortem.json has the first 10,000.)",
                total
            );
        }
        let _ = writeln!(md);
    }

    if let Some(k) = &pm.kill {
        let _ = writeln!(
            md,
            "## {} lines before and after the kill (line {})\n",
            f.log_lines_before_kill
                .len()
                .max(f.log_lines_after_kill.len()),
            k.line
        );
        let _ = writeln!(md, "```");
        for l in &f.log_lines_before_kill {
            let _ = writeln!(md, "{:>8}  {}", l.line, l.text.replace("```", "'''"));
        }
        let _ = writeln!(md, "{:>8}> {}", k.line, k.text.replace("```", "'''"));
        for l in &f.log_lines_after_kill {
            let _ = writeln!(md, "{:>8}  {}", l.line, l.text.replace("```", "'''"));
        }
        let _ = writeln!(md, "```\n");
    }

    let l = &pm.log;
    let _ = writeln!(md, "## What was read\n");
    let _ = writeln!(
        md,
        "`{}`: {} bytes, {} lines: {} recognized, {} unknown (skipped), {} empty, {} not UTF-8, {} binary, {} longer than 64 KiB (cut).",
        l.path, l.bytes, l.lines, l.recognized, l.unknown, l.empty, l.non_utf8, l.binary, l.truncated
    );
    if let Some(s) = &pm.docker_stats_source {
        let _ = writeln!(
            md,
            "\n`{}`: {} lines, {} recognized, {} unknown.",
            s.path, s.lines, s.recognized, s.unknown
        );
    }
    md
}

/// Writes `postmortem.json` and `postmortem.md` into `dir` (the picture is
/// drawn first by `plot::postmortem::draw`, which names it in `pm.pictures`).
pub fn write(pm: &Postmortem, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
    let json = serde_json::to_vec_pretty(pm)?;
    write_atomically(&dir.join("postmortem.json"), &json)?;
    write_atomically(&dir.join("postmortem.md"), render_markdown(pm).as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model whose peak is a fixed cost per row held, times a factor a
    /// kill can raise.
    struct PerRow {
        legacy: u64,
        optimized: u64,
        factor: f64,
    }

    fn per_row(legacy: u64, optimized: u64) -> PerRow {
        PerRow {
            legacy,
            optimized,
            factor: 1.0,
        }
    }

    fn kept(rows_in: u64, cap: u64) -> u64 {
        if cap > 0 && cap < rows_in {
            cap
        } else {
            rows_in
        }
    }

    impl PeakModel for PerRow {
        fn describe(&self) -> String {
            format!("per-row test model x{}", self.factor)
        }
        fn shape(&self) -> ModelShape {
            ModelShape {
                datasets: 5_000,
                profile_columns: 300,
                profile_numeric_columns: 87,
                user_columns: 12,
            }
        }
        fn predict(&self, strategy: &str, rows_in: u64, cap: u64) -> Result<PredictedPeak> {
            let per = if strategy == "legacy" {
                self.legacy
            } else {
                self.optimized
            };
            Ok(PredictedPeak {
                peak_bytes: (kept(rows_in, cap) as f64 * per as f64 * self.factor) as u64,
                stage: "merge_dataset_profile".into(),
            })
        }
        fn fitting_setting(&self, rows_in: u64, budget: u64, h: f64) -> Result<FittingSetting> {
            let limit = budget as f64 * (1.0 - h);
            let rows = (limit / (self.optimized as f64 * self.factor)).floor() as u64;
            Ok(if rows >= rows_in {
                FittingSetting::NoSampling {
                    peak: self.predict("optimized", rows_in, 0)?,
                }
            } else if rows >= 1 {
                FittingSetting::Cap {
                    cap: rows,
                    peak: self.predict("optimized", rows_in, rows)?,
                }
            } else {
                FittingSetting::NoFit {
                    floor: self.predict("optimized", rows_in, 1)?,
                }
            })
        }
        fn stages(&self) -> Vec<String> {
            vec!["merge_dataset_profile".into()]
        }
        fn calibrate(&mut self, observed: &[ObservedPeak], _: Option<&Path>) -> Result<()> {
            self.factor = observed
                .iter()
                .filter(|o| o.at_least)
                .map(|o| {
                    o.peak_bytes as f64
                        / (kept(o.rows_in, o.max_ranking_samples) * self.optimized) as f64
                })
                .fold(1.0, f64::max);
            Ok(())
        }
    }

    fn run_of(rows: u64, columns: u64, datasets: u64) -> (RunFacts, Facts) {
        let run = RunFacts {
            ranking_samples_rows: Some(rows),
            dataset_feature_columns: Some(columns),
            datasets: Some(datasets),
            ..RunFacts::default()
        };
        let facts = Facts {
            ranking_samples_rows: Some(rows),
            ..Facts::default()
        };
        (run, facts)
    }

    fn killed_at(rows: u64, limit: u64) -> std::result::Result<KillEvidence, String> {
        Ok(KillEvidence {
            rows_in: rows,
            max_ranking_samples: 0,
            killed_rows: rows,
            limit_bytes: limit,
            limit_source: "flag".into(),
            stage: Some("merge_dataset_profile".into()),
            stage_line: Some(5),
            kill_line: 6,
            kill_source: "log line 6".into(),
        })
    }

    fn findings(
        model: &mut PerRow,
        facts: (&RunFacts, &Facts),
        limit: u64,
        killed: bool,
        evidence: &std::result::Result<KillEvidence, String>,
    ) -> ModelFindings {
        let ctx = ModelContext {
            path: "model.json",
            fidelity: None,
            observed: &[],
        };
        model_findings(model, &ctx, facts.0, facts.1, Some(limit), killed, evidence).unwrap()
    }

    #[test]
    fn a_kill_calibrates_the_model_and_its_cap_stays_below_the_killed_rows() {
        let (run, facts) = run_of(1_000_000, 300, 5_000);
        // Killed at 10 GB, but the model predicts 1 GB at most.
        let ev = killed_at(1_000_000, 10_000_000_000);
        let found = findings(
            &mut per_row(1_000, 200),
            (&run, &facts),
            10_000_000_000,
            true,
            &ev,
        );
        assert!(found.under_predicts);
        assert_eq!(found.largest_before_kill_bytes, Some(1_000_000_000));
        assert_eq!(
            found.kill_observation.as_deref(),
            Some("1000000:0>=10000000000@merge_dataset_profile")
        );
        assert!(
            found.notes.iter().any(|n| n.contains("under-predicts")),
            "{:?}",
            found.notes
        );
        // x50 now: 8 GB after headroom at 10,000 B a row is 800,000 rows.
        match found.fitting {
            Some(FittingSetting::Cap { cap, .. }) => assert_eq!(cap, 800_000),
            ref other => panic!("{other:?}"),
        }
        assert!(found.cap_is_upper_bound);
        assert!(found
            .env_snippet
            .unwrap()
            .contains("MAX_RANKING_SAMPLES=800000"));
        assert!(found
            .check_command
            .unwrap()
            .ends_with("--rows 1000000 --memory 10000000000 --max-ranking-samples 800000"));
        assert!(found
            .check_killed_command
            .unwrap()
            .ends_with("--max-ranking-samples 0"));

        // Not killed: nothing to explain, nothing calibrated.
        let none = Err("no kill in the log".to_string());
        let found = findings(
            &mut per_row(1_000, 200),
            (&run, &facts),
            10_000_000_000,
            false,
            &none,
        );
        assert!(
            !found.under_predicts && found.notes.is_empty(),
            "{:?}",
            found.notes
        );
        assert!(found.kill_observation.is_none() && !found.cap_is_upper_bound);
        // Killed above the prediction: explained, and still no cap at or above the kill.
        let ev = killed_at(1_000_000, 500_000_000);
        let found = findings(
            &mut per_row(1_000, 200),
            (&run, &facts),
            500_000_000,
            true,
            &ev,
        );
        assert!(!found.under_predicts, "{:?}", found.notes);
        match found.fitting {
            Some(FittingSetting::Cap { cap, .. }) => assert!(cap < 1_000_000),
            ref other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_cap_shown_safe_says_how_to_measure_one() {
        let (run, facts) = run_of(1_000_000, 300, 5_000);
        // A model whose fixed answer is "no sampling" cannot overrule the kill.
        struct Stubborn(PerRow);
        impl PeakModel for Stubborn {
            fn describe(&self) -> String {
                self.0.describe()
            }
            fn shape(&self) -> ModelShape {
                self.0.shape()
            }
            fn predict(&self, s: &str, r: u64, c: u64) -> Result<PredictedPeak> {
                self.0.predict(s, r, c)
            }
            fn fitting_setting(&self, r: u64, _: u64, _: f64) -> Result<FittingSetting> {
                Ok(FittingSetting::NoSampling {
                    peak: self.0.predict("optimized", r, 0)?,
                })
            }
            fn stages(&self) -> Vec<String> {
                Vec::new()
            }
            fn calibrate(&mut self, o: &[ObservedPeak], f: Option<&Path>) -> Result<()> {
                self.0.calibrate(o, f)
            }
        }
        let ev = killed_at(1_000_000, 10_000_000_000);
        let ctx = ModelContext {
            path: "model.json",
            fidelity: None,
            observed: &[],
        };
        let mut m = Stubborn(per_row(1_000, 200));
        let found =
            model_findings(&mut m, &ctx, &run, &facts, Some(10_000_000_000), true, &ev).unwrap();
        assert!(found.env_snippet.is_none() && found.check_command.is_none());
        assert!(found.no_safe_cap.unwrap().contains("cannot be shown safe"));
        assert!(found
            .measure_command
            .unwrap()
            .starts_with("oomlab sweep --rows 25000,50000,100000 --max-ranking-samples-fraction 0.25,0.6 --model reports/model-pipeline.json -- "));
        assert!(found
            .notes
            .iter()
            .any(|n| n.contains("no stage `merge_dataset_profile`")));
    }

    #[test]
    fn a_log_of_another_shape_than_the_models_is_noted() {
        let model = per_row(1_000, 200);
        let shape = model.shape();
        // The legacy merge takes all 300 columns, v2 the 87 numeric ones: both match.
        let none = ModelColumns::default();
        for columns in [300, 87] {
            let (run, _) = run_of(1, columns, 5_000);
            assert!(shape_notes(shape, &none, &run).is_empty(), "{columns}");
        }
        let (mut run, _) = run_of(1, 312, 123_456);
        run.user_feature_columns = Some(40);
        let notes = shape_notes(shape, &none, &run);
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(
            notes[0].contains("312 dataset feature columns")
                && notes[0].contains("300 (87 numeric)")
        );
        assert!(notes[1].contains("40 user feature columns"));
        assert!(notes[2].contains("123,456 datasets"));
        // A model with a column term predicts at the logged count and says
        // how far outside its measured counts that is.
        let modelled = ModelColumns {
            modelled: true,
            at: 87,
            measured: vec![87, 137],
        };
        let (mut run, _) = run_of(1, 94, 5_000);
        run.samples_optimized_rows = Some(1);
        assert_eq!(logged_numeric_columns(shape, &run), Some(94));
        let notes = shape_notes(shape, &modelled, &run);
        assert!(
            notes[0].contains("every figure is at 94 numeric profile columns")
                && notes[0].contains("inside the measured range"),
            "{notes:?}"
        );
        let (run, _) = run_of(1, 200, 5_000);
        let notes = shape_notes(shape, &modelled, &run);
        assert!(
            notes[0].contains("63 above the largest measured (137)"),
            "{notes:?}"
        );
    }
}
