//! `oomlab sweep ... --emit FORMAT`: the sweep's runs as pods, instead of
//! run here.
//!
//! Each run keeps the directory the sweep would give it, under one results
//! directory per sweep on the volume, so `oomlab model fit` on the copied
//! results fits what the sweep would have. A replay run is an `oomlab run`
//! of its strategies at its scale and cap; a command's run is `oomlab sweep
//! --point INDEX` of the same sweep, which records that one point through
//! `record` with its size, data and template (what `model fit` needs).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use super::command::{command_runs, plan_command_sweep, CommandSweepSettings, Sizes};
use super::{plan_sweep, SweepSettings};
use crate::emit::{emitter, limits, EmitFormat, PodRun, Target, RESULTS_MOUNT};
use crate::error::{bad_input, Exit};
use crate::model::{find_model, FoundModel, Model, ModelSource};
use crate::units::format_bytes;

/// Where the pods run and how their limits are set (`--emit`'s flags).
#[derive(Debug, Clone)]
pub struct EmitSettings {
    pub format: EmitFormat,
    pub image: String,
    pub namespace: Option<String>,
    pub volume_claim: String,
    /// `KEY=VALUE` node labels.
    pub node_selector: Vec<String>,
    /// Every pod's memory limit (`--pod-memory`), else each run's prediction.
    pub pod_memory: Option<u64>,
    /// The model predicting each run's peak (default: as `recommend` finds one).
    pub limits_model: Option<std::path::PathBuf>,
    /// Share of a pod's limit kept above its predicted peak.
    pub headroom: f64,
    pub parallelism: Option<u32>,
}

fn node_selector(pairs: &[String]) -> Result<BTreeMap<String, String>> {
    pairs
        .iter()
        .map(|p| {
            p.split_once('=')
                .filter(|(k, _)| !k.trim().is_empty())
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| {
                    bad_input(format!(
                        "--node-selector {p}: expected KEY=VALUE, e.g. node.kubernetes.io/instance-type=r6i.4xlarge"
                    ))
                })
        })
        .collect()
}

/// The model for per-run limits, unless every pod gets `--pod-memory`.
fn limits_model(emit: &EmitSettings) -> Result<Option<FoundModel>> {
    if emit.pod_memory.is_some() {
        return Ok(None);
    }
    Ok(Some(find_model(emit.limits_model.as_deref())?))
}

/// The results directory of a sweep on the volume: the sweep's own
/// directory name (`--out`'s last component, else `<time>-<name>`).
fn results_id(out: Option<&Path>, name: &str) -> String {
    out.and_then(|o| o.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| {
            crate::report::default_out_dir(name)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| name.to_string())
        })
}

fn target(emit: &EmitSettings, name: &str, results_id: String) -> Result<Target> {
    crate::model::advice::validate_headroom(emit.headroom)?;
    Ok(Target {
        name: name.to_string(),
        results_id,
        image: emit.image.clone(),
        namespace: emit.namespace.clone(),
        volume_claim: emit.volume_claim.clone(),
        node_selector: node_selector(&emit.node_selector)?,
        parallelism: emit.parallelism,
    })
}

/// Writes the document on stdout and what it holds on stderr.
fn emit_out(emit: &EmitSettings, target: &Target, runs: &[PodRun]) -> Result<Exit> {
    let doc = emitter(emit.format).render(target, runs)?;
    print!("{doc}");
    let mut by_limit: BTreeMap<u64, usize> = BTreeMap::new();
    for r in runs {
        *by_limit.entry(r.limit_bytes).or_default() += 1;
    }
    eprintln!(
        "{} runs in {} Indexed Job(s) ({}); reports under {RESULTS_MOUNT}/{} on volume claim {}",
        runs.len(),
        by_limit.len(),
        by_limit
            .iter()
            .map(|(l, n)| format!("{n} at {}", format_bytes(*l)))
            .collect::<Vec<_>>()
            .join(", "),
        target.results_id,
        target.volume_claim
    );
    if let Some(r) = runs.first() {
        eprintln!("limits: {}", r.limit_source);
    }
    Ok(Exit::Ok)
}

/// The replay sweep as pods: one `oomlab run` per run of the sweep.
pub fn emit_replay(args: &SweepSettings, emit: &EmitSettings) -> Result<Exit> {
    let plan = plan_sweep(args)?;
    if plan.runs.iter().any(|r| r.columns.is_some()) {
        return Err(bad_input(
            "--emit kubernetes with --columns: a pod runs `oomlab run`, which replays the scenario's own column count; sweep columns on one machine, or write one scenario file per column count",
        ));
    }
    let name = format!("sweep-{}", plan.scenario.scenario.name);
    let target = target(emit, &name, results_id(args.out.as_deref(), &name))?;
    let scenario = args.scenario.display().to_string();
    if crate::scenario::bundled(&args.scenario).is_none() {
        eprintln!(
            "note: {scenario} is not a bundled scenario: the image must hold it at that path"
        );
    }
    let mut runs: Vec<PodRun> = plan
        .runs
        .iter()
        .map(|r| {
            let names: Vec<&str> = r.strategies.iter().map(|s| s.name()).collect();
            let out = format!("{RESULTS_MOUNT}/{}/{}", target.results_id, r.dir.display());
            PodRun {
                dir: r.dir.display().to_string(),
                args: [
                    "run",
                    "--scenario",
                    &scenario,
                    "--scale",
                    &r.scale.to_string(),
                    "--strategy",
                    &names.join(","),
                    "--max-ranking-samples",
                    &r.cap.to_string(),
                    "--sampling",
                    r.mode.name(),
                    "--chunk-rows",
                    &args.chunk_rows.to_string(),
                    "--memory-mode",
                    args.memory_mode.name(),
                    "--interval",
                    &format!("{}ms", args.interval.as_millis().max(1)),
                    "--out",
                    &out,
                    // The pod's limit judges, not this run's preflight.
                    // Not --quiet: the pod's log keeps the pipeline's lines,
                    // which `oomlab postmortem` reads after a kill.
                    "--force",
                ]
                .map(String::from)
                .to_vec(),
                limit_bytes: 0,
                limit_source: String::new(),
            }
        })
        .collect();
    let found = limits_model(emit)?;
    let label = found.as_ref().map(|f| f.path.display().to_string());
    let scenario_name = plan.scenario.scenario.name.clone();
    let predicted = |m: &Model, i: usize| -> Option<f64> {
        let r = &plan.runs[i];
        if m.scenario.name != scenario_name
            || m.memory_mode != args.memory_mode
            || m.source != ModelSource::Replay
        {
            return None;
        }
        let rows = plan.scenario.scenario.sizes(r.scale).sample_rows;
        r.strategies
            .iter()
            .map(|s| {
                m.variant_for(s.name(), r.mode)
                    .ok()
                    .map(|v| m.predict(v, rows, r.cap).peak_bytes)
            })
            .try_fold(0.0f64, |acc, p| p.map(|p| acc.max(p)))
    };
    limits(
        &mut runs,
        emit.pod_memory,
        found
            .as_ref()
            .map(|f| (&f.model, label.as_deref().unwrap_or(""))),
        emit.headroom,
        &predicted,
    )?;
    emit_out(emit, &target, &runs)
}

/// A command sweep as pods: each runs `oomlab sweep --point INDEX` of the
/// same sweep (the same flags, `--out` on the volume).
pub fn emit_command(
    settings: &CommandSweepSettings,
    flags: &CommandFlags,
    emit: &EmitSettings,
) -> Result<Exit> {
    let (_, sizes) = plan_command_sweep(settings)?;
    let runs_planned = command_runs(
        &sizes,
        &settings.fractions,
        settings.repeat,
        &settings.columns,
    );
    let name = "sweep-command".to_string();
    let target = target(emit, &name, results_id(settings.out.as_deref(), &name))?;
    let out = format!("{RESULTS_MOUNT}/{}", target.results_id);
    let mut runs: Vec<PodRun> = runs_planned
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut args: Vec<String> = vec![
                "sweep".into(),
                "--scenario".into(),
                settings.scenario.display().to_string(),
            ];
            match &settings.sizes {
                Sizes::Rows(_) => args.extend(["--rows".into(), flags.rows.clone()]),
                Sizes::Scales(_) => args.extend(["--scales".into(), flags.scales.clone()]),
            }
            if let Some(f) = &flags.fractions {
                args.extend(["--max-ranking-samples-fraction".into(), f.clone()]);
            }
            args.extend([
                "--repeat".into(),
                settings.repeat.to_string(),
                "--stage-pattern".into(),
                settings.stage_pattern.clone(),
                "--interval".into(),
                format!("{}ms", settings.interval.as_millis().max(1)),
                "--out".into(),
                out.clone(),
                "--point".into(),
                i.to_string(),
                "--force".into(),
            ]);
            if settings.generate_data {
                args.push("--generate-data".into());
            }
            args.push("--".into());
            args.extend(
                settings
                    .template
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned()),
            );
            PodRun {
                dir: r.dir.clone(),
                args,
                limit_bytes: 0,
                limit_source: String::new(),
            }
        })
        .collect();
    let found = limits_model(emit)?;
    let label = found.as_ref().map(|f| f.path.display().to_string());
    let template: Vec<String> = settings
        .template
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let predicted = |m: &Model, i: usize| -> Option<f64> {
        let r = &runs_planned[i];
        match &m.source {
            ModelSource::Command { argv, .. } if *argv == template => {}
            _ => return None,
        }
        let v = m
            .variant_for("command", crate::sampling::SamplingMode::Uniform)
            .ok()?;
        Some(m.predict(v, r.size.rows, r.cap).peak_bytes)
    };
    limits(
        &mut runs,
        emit.pod_memory,
        found
            .as_ref()
            .map(|f| (&f.model, label.as_deref().unwrap_or(""))),
        emit.headroom,
        &predicted,
    )?;
    emit_out(emit, &target, &runs)
}

/// A command sweep's size flags as given, so each pod's `sweep --point`
/// resolves the very sizes this sweep did.
#[derive(Debug, Clone, Default)]
pub struct CommandFlags {
    pub rows: String,
    pub scales: String,
    pub fractions: Option<String>,
}
