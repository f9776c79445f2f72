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

pub mod curves;
mod findings;
pub mod kill;
pub mod model;
pub mod parse;
mod render;
pub mod scan;
pub mod similarity;
pub mod sources;
#[cfg(test)]
mod tests;
mod verdict;

pub use render::{render_markdown, write};

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::error::bad_input;
use crate::report::{utc_now_rfc3339, write_atomically};
use crate::units::{format_bytes, format_count};
use findings::{model_findings, retry_note, ModelContext};
use kill::{KillEvidence, LogBound};
use model::{FittingSetting, PredictedPeak, HEADROOM};
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
    /// `--container`: the series (container) a multi-series curve's figures
    /// are of; else the one the kill names, else the largest but the pod total.
    pub container: Option<String>,
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
    /// The container the figures are of (see `curves` for how it was chosen).
    pub container: Option<String>,
    /// The curve the peak is read from, by its own name (`docker stats`,
    /// `Prometheus`); `None` when no curve covers the kill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curve: Option<String>,
    /// That curve's file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curve_path: Option<String>,
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
    /// Every memory curve given, its chosen series and whether its window
    /// reaches the kill (a curve that does not is not used for the peak).
    #[serde(default)]
    pub curves: Vec<curves::CurveCheck>,
    /// A kill in item-item similarity and the knobs it calibrates.
    #[serde(default)]
    pub similarity: Option<similarity::SimilarityFindings>,
}

/// `docker stats` refreshes every 5 s by default.
fn default_stats_interval_s() -> f64 {
    5.0
}

fn scan_file(path: &Path, context: usize, what: &str) -> Result<LogAnalysis> {
    let file = sources::open(path, what)?;
    let mut analyzer = Analyzer::new(&path.display().to_string(), context);
    analyzer.read_file(file).map_err(|e| {
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
    // A similarity command's model answers a kill in similarity (below).
    let is_sim = |p: &&Path| crate::model::similarity_command::is_similarity_command_model(p);
    let sim_model = inputs
        .model
        .as_deref()
        .filter(is_sim)
        .map(|p| crate::model::similarity_command::SimilarityCommandModel::read(p).map(|m| (p, m)))
        .transpose()?;
    let model = inputs
        .model
        .as_deref()
        .filter(|p| !is_sim(p))
        .map(model::load)
        .transpose()?;
    let mut sources = read_sources(inputs)?;

    // Each memory curve under its own name; its series chosen and its
    // window set against the kill, so a curve that cannot describe the
    // moment of death is said to be so and not used for the peak.
    let mut docker_points: Vec<StatsPoint> = log.stats.clone();
    if let Some(s) = &stats_scan {
        docker_points.extend(s.stats.iter().cloned());
    }
    let mut curves = Vec::new();
    if !docker_points.is_empty() {
        curves.push(curves::Curve {
            source: "docker stats".into(),
            path: stats_scan
                .as_ref()
                .map_or(log.source.path.clone(), |s| s.source.path.clone()),
            points: docker_points,
        });
    }
    for s in &sources {
        if !s.curve.is_empty() {
            curves.push(curves::Curve {
                source: s.curve_name().into(),
                path: s.path.clone(),
                points: s.curve.clone(),
            });
        }
    }
    let stats_rows = curves.iter().map(|c| c.points.len() as u64).sum();
    let killed_container = sources.iter().find_map(|s| s.container.clone());
    let kill_t = log.kill.as_ref().and_then(|k| k.t_unix);
    let checks = curves::check(
        curves,
        inputs.container.as_deref(),
        killed_container.as_deref(),
        kill_t,
    );
    for s in sources.iter_mut() {
        if let Some(c) = checks
            .iter()
            .find(|c| c.path == s.path && !s.curve.is_empty())
        {
            s.settle_peak(c);
        }
    }
    let used = curves::chosen(&checks);
    let stats: Vec<StatsPoint> = used.map(|c| c.points.clone()).unwrap_or_default();
    // A limit is a setting, not a reading: the docker stats rows show it
    // whether or not they reach the kill.
    let limit_points: Vec<StatsPoint> = checks
        .iter()
        .filter(|c| c.source == "docker stats")
        .flat_map(|c| c.points.iter().cloned())
        .collect();
    let mut memory = memory_findings(inputs, &log, &stats, &limit_points, stats_rows);
    memory.container = used.and_then(|c| c.series.clone());
    memory.curve = used.map(|c| c.source.clone());
    memory.curve_path = used.map(|c| c.path.clone());
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
    let similarity = similarity::findings(
        log.kill.as_ref().map(|k| k.line),
        log.similarity.clone(),
        memory.limit_bytes,
        HEADROOM,
        sim_model.as_ref().map(|(p, m)| (*p, m)),
    )?;
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
        curves: checks,
        similarity,
    };
    pm.verdict = verdict::verdict(&pm);
    if let Some(s) = &pm.similarity {
        pm.verdict = format!("{} {}", s.sentences.join(" "), pm.verdict);
    }
    Ok(pm)
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
    limit_points: &[StatsPoint],
    stats_rows: u64,
) -> MemoryFindings {
    let stats_limit = limit_points
        .iter()
        .map(|p| p.limit_bytes)
        .max()
        .filter(|l| *l > 0);
    let (limit_bytes, limit_source) = match (inputs.memory_limit, stats_limit) {
        (Some(l), _) => (Some(l), "flag"),
        (None, Some(l)) => (Some(l), "docker stats"),
        (None, None) => (None, "unknown"),
    };
    let peak = curves::first_max(stats);
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
        container: None,
        curve: None,
        curve_path: None,
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

/// Log times as write-ups show them (`2025-12-25 08:29:29 UTC`), for the
/// pictures too.
pub use crate::clock::format_unix;
