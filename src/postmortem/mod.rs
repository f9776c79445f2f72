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
mod render;
pub mod scan;
pub mod sources;
mod verdict;

pub use render::{render_markdown, write};

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
    pm.verdict = verdict::verdict(&pm);
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
