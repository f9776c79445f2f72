//! `oomlab model fit REPORT... | DIR...`: the memory model from any set of
//! `report.json` files, wherever they were measured.
//!
//! A sweep measures and fits in one go, on one machine. Where a user outgrows
//! that machine the points run elsewhere (pods of a Kubernetes Job, weeks of
//! production runs under `oomlab record`) and come back as reports. This
//! refits them through the sweep's own code: replay reports go through
//! [`super::file_points`] and [`super::build_model`], command points and
//! recorded runs through [`super::command::median_point`] and
//! [`super::command::fit_command_model`], so the reports of a sweep give the
//! sweep's model back. Reports of different scenarios or commands are
//! refused (one model answers for one pipeline) unless named apart
//! (`NAME=PATH`), each name then a variant of its own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::command::{
    fit_command_model, kept_in_logs, median_point, stage_peaks_of, write_command_model, Attempt,
    CommandFit, Size,
};
use super::{build_model, file_points, judge_production, write_replay_model};
use crate::error::{bad_input, Exit};
use crate::machine::MachineFacts;
use crate::model::{Model, ModelSource, Point};
use crate::report::{Report, RunStatus};
use crate::sampling::SamplingMode;
use crate::scenario::{LoadedScenario, Scenario, Workload};
use crate::units::{format_bytes, format_count};

/// What `oomlab model fit` is asked for.
#[derive(Debug, Clone, Default)]
pub struct RefitSettings {
    /// `PATH` or `NAME=PATH`: a report.json, or a directory searched for them.
    pub inputs: Vec<String>,
    /// Output directory (`None`: `reports/runs/<time>-model-fit-<scenario>/`).
    pub out: Option<PathBuf>,
    /// Also save the model here.
    pub model: Option<PathBuf>,
    /// The scenario, when the reports' own path cannot be read here (replay
    /// reports), or whose production rows recorded runs extrapolate to
    /// (default: `production`).
    pub scenario: Option<PathBuf>,
    /// The data cache the model names (default: the usual one).
    pub cache_dir: Option<PathBuf>,
}

/// The runs of one size and cap: the size, and each run with its report path.
type SizeRuns = (Size, Vec<(PathBuf, Attempt)>);

/// Reports of one kind under one name: (name, kind, reports).
type Group = (Option<String>, Kind, Vec<Input>);

/// One report as read, with the name it was given on the command line.
struct Input {
    name: Option<String>,
    path: PathBuf,
    report: Report,
}

/// What a report is a measurement of: reports of one model share it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// A replay of a scenario in a memory mode.
    Replay { scenario: String, mode: String },
    /// A command, by its template (sweep points) or its argv with every
    /// argument holding a digit taken for a size, date or path.
    Command { argv: String },
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Replay { scenario, mode } => {
                write!(
                    f,
                    "the replay of scenario `{scenario}` ({mode} memory mode)"
                )
            }
            Kind::Command { argv } => write!(f, "the command `{argv}`"),
        }
    }
}

/// The command a recorded run is of: its argv, with every argument that
/// holds a digit replaced by `…`, so runs of one pipeline on different
/// dates, sizes or data directories are one command.
fn command_identity(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.chars().any(|c| c.is_ascii_digit()) {
                "…"
            } else {
                a.as_str()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn kind_of(report: &Report) -> Kind {
    if let Some(p) = &report.settings.command_point {
        return Kind::Command {
            argv: p.template.join(" "),
        };
    }
    if report.command == "record" {
        let argv = report
            .runs
            .first()
            .and_then(|r| r.recorded.as_ref())
            .map(|r| command_identity(&r.argv))
            .unwrap_or_default();
        return Kind::Command { argv };
    }
    Kind::Replay {
        scenario: report.scenario.name.clone(),
        mode: report.settings.memory_mode.name().to_string(),
    }
}

/// Splits `NAME=PATH` (a name of letters, digits, `-` and `_`) from `PATH`.
fn split_name(input: &str) -> (Option<String>, &str) {
    if let Some((name, path)) = input.split_once('=') {
        if !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !Path::new(input).exists()
        {
            return (Some(name.to_string()), path);
        }
    }
    (None, input)
}

/// Every `report.json` under `dir`, depth first, in path order.
fn reports_under(dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| bad_input(format!("{}: cannot read directory: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            reports_under(&path, found)?;
        } else if path.file_name().is_some_and(|n| n == "report.json") {
            found.push(path);
        }
    }
    Ok(())
}

/// Reads every input, refusing (exit 2, naming it) what is missing,
/// unreadable or holds no report.
fn read_inputs(inputs: &[String]) -> Result<Vec<Input>> {
    if inputs.is_empty() {
        return Err(bad_input(
            "model fit: no reports given (usage: oomlab model fit REPORT.json... | DIR... | NAME=DIR...)",
        ));
    }
    let mut out = Vec::new();
    for input in inputs {
        let (name, path) = split_name(input);
        let path = Path::new(path);
        let mut files = Vec::new();
        if path.is_dir() {
            reports_under(path, &mut files)?;
            if files.is_empty() {
                return Err(bad_input(format!(
                    "{}: no report.json under this directory",
                    path.display()
                )));
            }
        } else if path.is_file() {
            files.push(path.to_path_buf());
        } else {
            return Err(bad_input(format!(
                "{}: no such report or directory",
                path.display()
            )));
        }
        for file in files {
            let report = Report::read_json(&file)?;
            out.push(Input {
                name: name.clone(),
                path: file,
                report,
            });
        }
    }
    Ok(out)
}

/// A few of `paths`, for a message.
fn some_files(paths: &[&Path]) -> String {
    let mut shown: Vec<String> = paths
        .iter()
        .take(3)
        .map(|p| p.display().to_string())
        .collect();
    if paths.len() > 3 {
        shown.push(format!("and {} more", paths.len() - 3));
    }
    shown.join(", ")
}

/// Refuses (exit 2) inputs that are of different scenarios or commands
/// unless named apart, and names within which they differ; returns the
/// groups: (name, kind, inputs).
fn group(inputs: Vec<Input>) -> Result<Vec<Group>> {
    let mut groups: Vec<Group> = Vec::new();
    for input in inputs {
        let kind = kind_of(&input.report);
        match groups
            .iter_mut()
            .find(|(n, k, _)| *n == input.name && *k == kind)
        {
            Some((_, _, members)) => members.push(input),
            None => groups.push((input.name.clone(), kind, vec![input])),
        }
    }
    let mut names: Vec<&Option<String>> = groups.iter().map(|(n, _, _)| n).collect();
    names.sort();
    let clash = names.windows(2).any(|w| w[0] == w[1]);
    let replay = groups
        .iter()
        .any(|(_, k, _)| matches!(k, Kind::Replay { .. }));
    if clash || (replay && groups.len() > 1) {
        let mut why = String::from(if replay {
            "model fit: these reports are of different scenarios or measurements, and one model is of one scenario's replay or of one pipeline (fit each on its own):"
        } else {
            "model fit: these reports are of different commands; name them apart (NAME=DIR, each name a variant of the model) or fit each on its own:"
        });
        for (name, kind, members) in &groups {
            let files: Vec<&Path> = members.iter().map(|i| i.path.as_path()).collect();
            why += &format!(
                "\n  {}{kind}: {}",
                name.as_ref().map(|n| format!("{n}= ")).unwrap_or_default(),
                some_files(&files)
            );
        }
        return Err(bad_input(why));
    }
    Ok(groups)
}

/// The distinct machines of `inputs`, in order of first appearance.
fn machines(inputs: &[&Input]) -> Vec<MachineFacts> {
    let mut out: Vec<MachineFacts> = Vec::new();
    for i in inputs {
        let m = &i.report.machine;
        let same = |o: &MachineFacts| {
            o.total_memory_bytes == m.total_memory_bytes
                && o.cpus == m.cpus
                && o.kernel == m.kernel
                && o.cgroup_memory_limit_bytes == m.cgroup_memory_limit_bytes
        };
        if !out.iter().any(same) {
            out.push(m.clone());
        }
    }
    out
}

/// One line per machine, when there were several.
fn say_machines(machines: &[MachineFacts]) {
    if machines.len() < 2 {
        return;
    }
    println!(
        "One model fitted from reports of {} machines (their peaks pooled in one fit):",
        machines.len()
    );
    for m in machines {
        println!(
            "  {} CPUs, {} memory{}, kernel {}",
            m.cpus,
            format_bytes(m.total_memory_bytes),
            m.cgroup_memory_limit_bytes
                .map(|l| format!(" (container limit {})", format_bytes(l)))
                .unwrap_or_default(),
            m.kernel
        );
    }
}

/// Runs that did not complete are not peaks of their sizes: skipped, said.
fn completed_only(inputs: &mut Vec<Input>) {
    for input in inputs.iter_mut() {
        let before = input.report.runs.len();
        input
            .report
            .runs
            .retain(|r| r.status == RunStatus::Completed);
        if input.report.runs.len() < before {
            println!(
                "note: {}: {} run(s) that did not complete left out (a run killed at its limit is a lower bound: `oomlab postmortem` reads it)",
                input.path.display(),
                before - input.report.runs.len()
            );
        }
    }
    inputs.retain(|i| !i.report.runs.is_empty());
}

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
fn fit_replay(settings: &RefitSettings, inputs: Vec<Input>) -> Result<Exit> {
    let (mut checks, mut fitted): (Vec<Input>, Vec<Input>) = inputs
        .into_iter()
        .partition(|i| i.report.command == super::PRODUCTION_CHECK_COMMAND);
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
            super::join_scales(&scales),
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
        super::command::file_point(&mut points, median_point(size, cap, &attempts), sampled);
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
        .map(|i| super::command::versions(i.path.parent().unwrap_or(Path::new("."))))
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
fn fit_command(settings: &RefitSettings, groups: Vec<Group>) -> Result<Exit> {
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

/// `oomlab model fit`: reads the reports, refuses mixtures, fits and writes
/// the model as the sweep that would have measured them does.
pub fn refit(settings: RefitSettings) -> Result<Exit> {
    let mut inputs = read_inputs(&settings.inputs)?;
    completed_only(&mut inputs);
    if inputs.is_empty() {
        return Err(bad_input(
            "model fit: no completed run in these reports, nothing to fit",
        ));
    }
    let mut groups = group(inputs)?;
    if groups.len() == 1 && matches!(groups[0].1, Kind::Replay { .. }) {
        let (_, _, inputs) = groups.remove(0);
        return fit_replay(&settings, inputs);
    }
    fit_command(&settings, groups)
}
