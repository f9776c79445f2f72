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
//!
//! This file reads and groups the reports; `replay.rs` and `command.rs`
//! refit each kind.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::command::{Attempt, Size};
use crate::error::{bad_input, Exit};
use crate::machine::MachineFacts;
use crate::report::{Report, RunStatus};
use crate::units::format_bytes;

mod command;
mod replay;

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
        return replay::fit_replay(&settings, inputs);
    }
    command::fit_command(&settings, groups)
}
