//! Refitting command reports (sweep points and recorded runs): each named
//! group's points at their sizes, fitted as a command sweep, its variants
//! named after the group.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::{machines, say_machines, some_files, Group, Input, RefitSettings, SizeRuns};
use crate::error::{bad_input, Exit};
use crate::model::{Model, ModelSource, Point};
use crate::scenario::{LoadedScenario, Scenario};
use crate::sweep::command::{
    fit_command_model, kept_in_logs, median_point, stage_peaks_of, write_command_model, Attempt,
    CommandFit, Size,
};

/// One group's points (a command's, or one named command's) and the sizes
/// it ran at.
struct CommandGroup {
    points: BTreeMap<&'static str, Vec<Point>>,
    sizes: Vec<Size>,
    scenario: LoadedScenario,
    argv: Vec<String>,
    stage_pattern: String,
    versions: (Option<String>, Option<String>),
    allocator_env: BTreeMap<String, String>,
}

/// The points of one command's reports: command-sweep points at the size
/// they were given, recorded runs at the rows they logged; runs of one size
/// and cap are repeats (medians), as in the sweep.
fn command_group(settings: &RefitSettings, inputs: &[Input]) -> Result<CommandGroup> {
    let sweep_scenario = inputs
        .iter()
        .find_map(|i| i.report.settings.command_point.as_ref())
        .map(|p| PathBuf::from(&p.scenario));
    let spec = settings
        .scenario
        .clone()
        .or(sweep_scenario)
        .unwrap_or_else(|| PathBuf::from("production"));
    let scenario = Scenario::load(&spec)?;
    let production_rows = scenario.scenario.production_sizes().sample_rows.max(1);
    let mut by_size: BTreeMap<(u64, u64), SizeRuns> = BTreeMap::new();
    let mut sampled = false;
    for i in inputs {
        let run = &i.report.runs[0];
        let (size, cap) = match &i.report.settings.command_point {
            Some(p) => {
                sampled |= p.sampled_sweep;
                (
                    Size {
                        rows: p.rows,
                        scale: p.scale,
                    },
                    p.max_ranking_samples,
                )
            }
            None => {
                let rows = i.report.scenario.scaled.sample_rows;
                if rows == 0 {
                    return Err(bad_input(format!(
                        "{}: the command logged no rows loaded (a line such as `Ranking samples: 8532146 rows before optimization`), so this run has no size to be a point at",
                        i.path.display()
                    )));
                }
                (
                    Size {
                        rows,
                        scale: rows as f64 / production_rows as f64,
                    },
                    i.report.settings.max_ranking_samples,
                )
            }
        };
        sampled |= cap > 0;
        let dir = i.path.parent().unwrap_or(Path::new("."));
        let attempt = Attempt {
            peak_bytes: run.peak_bytes.unwrap_or(0),
            stage_peaks: stage_peaks_of(run),
            kept: kept_in_logs(dir),
            report: i.path.display().to_string(),
        };
        by_size
            .entry((size.rows, cap))
            .or_insert_with(|| (size, Vec::new()))
            .1
            .push((i.path.clone(), attempt));
    }
    let mut points = BTreeMap::new();
    let mut sizes: Vec<Size> = Vec::new();
    for ((_, cap), (size, mut attempts)) in by_size {
        attempts.sort_by(|a, b| a.0.cmp(&b.0));
        let attempts: Vec<Attempt> = attempts.into_iter().map(|(_, a)| a).collect();
        crate::sweep::command::file_point(&mut points, median_point(size, cap, &attempts), sampled);
        if sizes.last().is_none_or(|s| s.rows != size.rows) {
            sizes.push(size);
        }
    }
    if sizes.len() < 3 {
        let files: Vec<&Path> = inputs.iter().map(|i| i.path.as_path()).collect();
        return Err(bad_input(format!(
            "model fit: these reports are at {} size(s); expected at least 3 distinct sizes (the model is fitted on all but the largest, which is held out): {}",
            sizes.len(),
            some_files(&files)
        )));
    }
    let first = &inputs[0];
    let argv = match &first.report.settings.command_point {
        Some(p) => p.template.clone(),
        None => first
            .report
            .runs
            .first()
            .and_then(|r| r.recorded.as_ref())
            .map(|r| r.argv.clone())
            .unwrap_or_default(),
    };
    let stage_pattern = first
        .report
        .runs
        .first()
        .and_then(|r| r.recorded.as_ref())
        .map(|r| r.stage_pattern.clone())
        .unwrap_or_default();
    let versions = inputs
        .iter()
        .map(|i| crate::sweep::command::versions(i.path.parent().unwrap_or(Path::new("."))))
        .find(|v| *v != (None, None))
        .unwrap_or((None, None));
    let allocator_env = inputs
        .iter()
        .find_map(|i| i.report.settings.command_point.as_ref())
        .map(|p| p.allocator_env.clone())
        .unwrap_or_default();
    Ok(CommandGroup {
        allocator_env,
        points,
        sizes,
        scenario: LoadedScenario {
            path: spec,
            scenario: scenario.scenario,
        },
        argv,
        stage_pattern,
        versions,
    })
}

/// Fits a command model from command-sweep points and recorded runs; named
/// groups each become variants of their own (`NAME`, `NAME-sampled`).
pub(super) fn fit_command(settings: &RefitSettings, groups: Vec<Group>) -> Result<Exit> {
    let all: Vec<&Input> = groups.iter().flat_map(|(_, _, i)| i.iter()).collect();
    let machines = machines(&all);
    let mut reports: Vec<String> = all.iter().map(|i| i.path.display().to_string()).collect();
    reports.sort();
    let cache_root = settings
        .cache_dir
        .clone()
        .unwrap_or_else(crate::data::cache::default_cache_root);
    let mut merged: Option<(Model, Vec<Size>)> = None;
    let mut described = Vec::new();
    for (name, kind, inputs) in &groups {
        let g = command_group(settings, inputs)?;
        let mut model = fit_command_model(CommandFit {
            points: g.points,
            sizes: &g.sizes,
            scenario: &g.scenario,
            cache_root: cache_root.clone(),
            machine: inputs[0].report.machine.clone(),
            versions: g.versions,
            argv: g.argv,
            stage_pattern: g.stage_pattern,
            allocator_env: g.allocator_env,
            columns: Vec::new(),
        })?;
        described.push(format!(
            "{}{kind} ({} reports, {} sizes)",
            name.as_ref().map(|n| format!("{n}: ")).unwrap_or_default(),
            inputs.len(),
            g.sizes.len()
        ));
        if let Some(name) = name {
            rename_variants(&mut model, name);
        }
        merged = Some(match merged {
            None => (model, g.sizes),
            Some((mut into, sizes)) => {
                if into.scenario.name != model.scenario.name {
                    return Err(bad_input(format!(
                        "model fit: the named commands extrapolate to different scenarios (`{}` and `{}`): pass --scenario",
                        into.scenario.name, model.scenario.name
                    )));
                }
                into.variants.extend(model.variants);
                into.validation.points.extend(model.validation.points);
                into.validation
                    .max_abs_error_pct
                    .extend(model.validation.max_abs_error_pct);
                if let (
                    ModelSource::Command { named: a, .. },
                    ModelSource::Command { named: b, .. },
                ) = (&mut into.source, model.source)
                {
                    a.extend(b);
                }
                (into, sizes)
            }
        });
    }
    let (mut model, sizes) = merged.ok_or_else(|| bad_input("model fit: nothing to fit"))?;
    if machines.len() > 1 {
        model.machines = machines.clone();
    }
    let out = settings
        .out
        .clone()
        .unwrap_or_else(|| crate::report::default_out_dir("model-fit-command"));
    println!("Fitted from {}", described.join("; "));
    say_machines(&machines);
    write_command_model(&model, &sizes, &out, settings.model.as_deref(), &reports)?;
    Ok(Exit::Ok)
}

/// Names a command model's variants after the name its reports were given
/// (`NAME`, `NAME-sampled`; strategy `NAME`, so `check --strategy NAME`
/// picks it), and records which command each name is.
fn rename_variants(model: &mut Model, name: &str) {
    for v in &mut model.variants {
        let suffix = v.name.strip_prefix("command").unwrap_or("").to_string();
        v.name = format!("{name}{suffix}");
        v.strategy = name.to_string();
    }
    for h in &mut model.validation.points {
        let suffix = h.variant.strip_prefix("command").unwrap_or("").to_string();
        h.variant = format!("{name}{suffix}");
    }
    model.validation.max_abs_error_pct = std::mem::take(&mut model.validation.max_abs_error_pct)
        .into_iter()
        .map(|(k, e)| {
            let suffix = k.strip_prefix("command").unwrap_or("").to_string();
            (format!("{name}{suffix}"), e)
        })
        .collect();
    if let ModelSource::Command { argv, named, .. } = &mut model.source {
        named.insert(name.to_string(), argv.clone());
    }
}
