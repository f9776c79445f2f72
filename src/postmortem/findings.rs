//! What the memory model says of the kill: the peak the logged sizes need,
//! the setting that would have fitted (calibrated by the kill, so it is never
//! the one that was killed), the notes on a model whose shape differs from
//! the log's, and whether a later capped retry agrees.

use std::path::Path;

use anyhow::Result;

use super::kill::{self, KillEvidence};
use super::model::{FittingSetting, ModelColumns, ModelShape, PeakModel, HEADROOM};
use super::scan::RunFacts;
use super::{Facts, ModelFindings};
use crate::model::ObservedPeak;
use crate::units::{format_bytes, format_count};

/// A retry that completed ranking prep with a cap, under the same limit, is
/// the other side of the kill: its peak stayed below the limit. The note
/// says whether the calibrated model agrees (a prediction over the limit for
/// a setting that held means the kill calibrated it too high for that setting).
pub(super) fn retry_note(
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

/// The numeric profile columns a log's `Merging with dataset features (N
/// columns)` stands for: v2 logs the numeric columns it merges; a pre-v2 run
/// (no v2-only line) merging at least the model's whole profile logs every
/// column, of which the non-numeric ones are taken as the model's.
pub(super) fn logged_numeric_columns(shape: ModelShape, run: &RunFacts) -> Option<u64> {
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
pub(super) fn shape_notes(
    shape: ModelShape,
    columns: &ModelColumns,
    run: &RunFacts,
) -> Vec<String> {
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
pub(super) struct ModelContext<'a> {
    pub(super) path: &'a str,
    pub(super) fidelity: Option<&'a Path>,
    pub(super) observed: &'a [String],
}

pub(super) fn model_findings(
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
pub(super) fn finish_findings(
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
