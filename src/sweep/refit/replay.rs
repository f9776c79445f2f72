//! Refitting replay reports: the scenario each ran, checked, and the model
//! fitted as the replay sweep that wrote them did.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::{kind_of, machines, say_machines, some_files, Input, RefitSettings};
use crate::error::{bad_input, Exit};
use crate::model::Point;
use crate::report::Report;
use crate::sampling::SamplingMode;
use crate::scenario::{LoadedScenario, Scenario, Workload};
use crate::sweep::{
    build_model, file_points, join_scales, judge_production, write_replay_model,
    PRODUCTION_CHECK_COMMAND,
};
use crate::units::format_count;

/// The scenario of a replay report: `--scenario`, else the path the report
/// names (a bundled scenario's path works anywhere), checked to be the one
/// the report ran.
fn replay_scenario(
    settings: &RefitSettings,
    report: &Report,
    path: &Path,
) -> Result<LoadedScenario> {
    let spec = settings
        .scenario
        .clone()
        .unwrap_or_else(|| PathBuf::from(&report.scenario.path));
    let loaded = Scenario::load(&spec).map_err(|e| {
        bad_input(format!(
            "{}: its scenario {} cannot be read here ({e:#}); pass --scenario FILE",
            path.display(),
            spec.display()
        ))
    })?;
    if loaded.scenario.name != report.scenario.name
        || loaded.scenario.production_sizes().sample_rows != report.scenario.production.sample_rows
    {
        return Err(bad_input(format!(
            "{}: ran scenario `{}` ({} production rows), but {} is `{}` ({} rows)",
            path.display(),
            report.scenario.name,
            format_count(report.scenario.production.sample_rows),
            spec.display(),
            loaded.scenario.name,
            format_count(loaded.scenario.production_sizes().sample_rows)
        )));
    }
    Ok(loaded)
}

/// Fits a replay model from replay reports, as the sweep that wrote them did.
pub(super) fn fit_replay(settings: &RefitSettings, inputs: Vec<Input>) -> Result<Exit> {
    let (mut checks, mut fitted): (Vec<Input>, Vec<Input>) = inputs
        .into_iter()
        .partition(|i| i.report.command == PRODUCTION_CHECK_COMMAND);
    let first = fitted
        .first()
        .ok_or_else(|| bad_input("model fit: only production-size checks, nothing to fit"))?;
    let scenario = replay_scenario(settings, &first.report, &first.path)?;
    if scenario.scenario.workload() == Workload::Similarity {
        return Err(bad_input(format!(
            "{}: a similarity replay; its model is fitted by `oomlab sweep --scenario {}`",
            first.path.display(),
            scenario.scenario.name
        )));
    }
    let how = |i: &Input| -> Result<(u64, SamplingMode)> {
        let cap = i.report.settings.max_ranking_samples;
        match i.report.settings.sampling {
            Some(mode) => Ok((cap, mode)),
            None if cap == 0 => Ok((0, SamplingMode::Uniform)),
            None => Err(bad_input(format!(
                "{}: MAX_RANKING_SAMPLES={cap}, but the report does not say how rows were sampled (written by an older oomlab): rerun it",
                i.path.display()
            ))),
        }
    };
    // The sweep's order: scale, then no cap, then each cap uniform before capped.
    let mut keyed = Vec::new();
    for i in fitted.drain(..) {
        let (cap, mode) = how(&i)?;
        keyed.push((
            (i.report.scenario.scale, cap, mode == SamplingMode::Capped),
            i,
        ));
    }
    keyed.sort_by(|(a, _), (b, _)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let fitted: Vec<Input> = keyed.into_iter().map(|(_, i)| i).collect();
    let mut scales: Vec<f64> = fitted.iter().map(|i| i.report.scenario.scale).collect();
    scales.dedup();
    if scales.len() < 3 {
        let files: Vec<&Path> = fitted.iter().map(|i| i.path.as_path()).collect();
        return Err(bad_input(format!(
            "model fit: these reports are at {} scale(s) ({}); expected at least 3 (the model is fitted on all but the largest, which is held out): {}",
            scales.len(),
            join_scales(&scales),
            some_files(&files)
        )));
    }
    let mut points: BTreeMap<&'static str, Vec<Point>> = BTreeMap::new();
    for i in &fitted {
        file_points(&mut points, &i.report, &i.path, how(i)?)?;
    }
    let all: Vec<&Input> = fitted.iter().chain(checks.iter()).collect();
    let machines = machines(&all);
    let cache_root = settings
        .cache_dir
        .clone()
        .unwrap_or_else(crate::data::cache::default_cache_root);
    let mut model = build_model(
        &scenario,
        &scales,
        &cache_root,
        points,
        fitted[0].report.machine.clone(),
        fitted
            .last()
            .map(|i| i.report.allocator.clone())
            .unwrap_or_default(),
    )?;
    model.streaming_chunk_rows = fitted
        .iter()
        .find_map(|i| i.report.settings.chunk_rows)
        .unwrap_or(crate::strategy::streaming::DEFAULT_CHUNK_ROWS);
    model.memory_mode = fitted[0].report.settings.memory_mode;
    if machines.len() > 1 {
        model.machines = machines.clone();
    }
    checks.sort_by_key(|i| i.path.clone());
    let mut reports: Vec<String> = fitted
        .iter()
        .map(|i| i.path.display().to_string())
        .collect();
    for i in &checks {
        model
            .production_checks
            .extend(judge_production(&model, &i.report, &i.path, how(i)?)?);
        reports.push(i.path.display().to_string());
    }
    let out = settings.out.clone().unwrap_or_else(|| {
        crate::report::default_out_dir(&format!("model-fit-{}", model.scenario.name))
    });
    println!(
        "Fitted from {} report(s) of {} ({} scales, {} production-size checks)",
        fitted.len() + checks.len(),
        kind_of(&fitted[0].report),
        scales.len(),
        checks.len()
    );
    say_machines(&machines);
    write_replay_model(&model, &out, settings.model.as_deref(), &reports)?;
    Ok(Exit::Ok)
}
