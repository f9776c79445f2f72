//! One point of a command sweep: recording the command at one size (what the
//! sweep and the command gate share, so a gate's figures are a sweep's), and
//! turning repeated attempts into the median point the model is fitted on.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use super::template::substitute;
use super::Size;
use crate::error::{exit_with, Exit};
use crate::model::Point;
use crate::progress::Progress;
use crate::record::pattern::Pattern;
use crate::record::{record, RecordPlan, StageStream};
use crate::report::{self, Report, RunStatus};
use crate::settings::MAX_RANKING_SAMPLES_ENV;
use crate::units::format_count;

/// How one point of a command is recorded: what the sweep and the command
/// gate share, so a gate's figures are a sweep's figures.
#[derive(Debug, Clone)]
pub struct PointPlan<'a> {
    /// The command, placeholders unsubstituted.
    pub template: &'a [OsString],
    /// The size to run at.
    pub size: Size,
    /// The generated data for `{data_dir}`, if any.
    pub data_dir: Option<&'a Path>,
    /// Numeric profile columns of the point (`{columns}`, `$OOMLAB_COLUMNS`);
    /// `None` when no scenario says (the command gate without one).
    pub columns: Option<u64>,
    /// `MAX_RANKING_SAMPLES` (0: no cap).
    pub cap: u64,
    /// Stage markers.
    pub pattern: &'a Pattern,
    /// RSS sampling interval.
    pub interval: Duration,
    /// The point's report directory.
    pub out: PathBuf,
    /// Echo the command's output.
    pub passthrough: bool,
    /// For a sweep's point: the scenario file and whether the sweep has
    /// sampled runs, recorded in the report so `oomlab model fit` can refit
    /// from it (`None`: not a sweep's point).
    pub sweep: Option<(&'a Path, bool)>,
}

/// Variables set for a command on top of oomlab's environment.
pub type CommandEnv = Vec<(String, String)>;

/// The command of one point, placeholders substituted, and the variables
/// it is given (`OOMLAB_ROWS` and the like): what the kernel run and a
/// traced run (`--lines`) of the point share.
pub fn point_command(plan: &PointPlan<'_>) -> Result<(Vec<OsString>, CommandEnv)> {
    let size = plan.size;
    let command = substitute(
        plan.template,
        (size.rows, size.scale, plan.columns),
        plan.data_dir,
        plan.cap,
    )?;
    let mut env = vec![
        ("OOMLAB_ROWS".to_string(), size.rows.to_string()),
        ("OOMLAB_SCALE".to_string(), size.scale.to_string()),
        (MAX_RANKING_SAMPLES_ENV.to_string(), plan.cap.to_string()),
    ];
    if let Some(c) = plan.columns {
        env.push(("OOMLAB_COLUMNS".to_string(), c.to_string()));
    }
    if let Some(d) = plan.data_dir {
        env.push(("OOMLAB_DATA_DIR".to_string(), d.display().to_string()));
    }
    Ok((command, env))
}

/// One completed run of a command at one size.
#[derive(Debug, Clone)]
pub struct PointRun {
    /// The whole run's peak (process tree).
    pub peak_bytes: u64,
    /// Each stage's exact peak, in the order the stages started (a stage
    /// logged twice keeps its larger peak).
    pub stage_peaks: Vec<(String, u64)>,
    /// The point's `report.json`.
    pub report: PathBuf,
    /// The run's record (machine facts, stderr tail).
    pub record: Report,
}

/// Records one run of a command at one size through [`crate::record::record`],
/// writes its report directory, and refuses (exit 5/6, naming the size) a run
/// that did not complete.
pub fn record_point(plan: &PointPlan<'_>, progress: &mut Progress) -> Result<PointRun> {
    let size = plan.size;
    let (command, env) = point_command(plan)?;
    let record_plan = RecordPlan {
        command,
        interval: plan.interval,
        memory_limit: None,
        pattern: plan.pattern.clone(),
        stream: StageStream::Both,
        label: format!("rows-{}", size.rows),
        out: plan.out.clone(),
        passthrough: plan.passthrough,
        env,
        point: plan
            .sweep
            .map(|(scenario, sampled_sweep)| crate::report::CommandPoint {
                template: plan
                    .template
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
                scenario: scenario.display().to_string(),
                rows: size.rows,
                scale: size.scale,
                max_ranking_samples: plan.cap,
                sampled_sweep,
                allocator_env: crate::model::allocator_env(),
            }),
    };
    let report = record(&record_plan, progress)?;
    crate::summary::write_report_dir(&report, &plan.out)?;
    let path = plan.out.join("report.json");
    let run = match completed(&report, size.rows, plan.cap, &path, plan.sweep.is_some()) {
        Ok(run) => run,
        Err(e) => {
            let tail = report.runs.first().map_or(&[][..], |r| &r.stderr_tail[..]);
            return Err(missing_module(plan.template, tail).unwrap_or(e));
        }
    };
    let stage_peaks = stage_peaks_of(run);
    let peak_bytes = run.peak_bytes.unwrap_or(0);
    Ok(PointRun {
        peak_bytes,
        stage_peaks,
        report: path,
        record: report,
    })
}

/// Each stage's exact peak of a recorded run, in the order the stages
/// started (a stage logged twice keeps its larger peak): what a point of a
/// command is made of, whether just recorded or read back from its report.
pub fn stage_peaks_of(run: &crate::report::RunRecord) -> Vec<(String, u64)> {
    let mut stage_peaks: Vec<(String, u64)> = Vec::new();
    for s in &run.stages {
        if let Some(p) = s.exact_peak_bytes {
            match stage_peaks.iter_mut().find(|(n, _)| *n == s.name) {
                Some((_, e)) => *e = (*e).max(p),
                None => stage_peaks.push((s.name.clone(), p)),
            }
        }
    }
    stage_peaks
}

/// One recorded run of a point, as the fit needs it.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The whole run's peak.
    pub peak_bytes: u64,
    /// Each stage's exact peak, in the order the stages started.
    pub stage_peaks: Vec<(String, u64)>,
    /// Rows the prepared frame kept, when the command logged them.
    pub kept: Option<u64>,
    /// The run's `report.json`.
    pub report: String,
}

/// Rows kept a run logged (`Ranking data prepared: N rows`), read from the
/// output saved beside its report.
pub fn kept_in_logs(dir: &Path) -> Option<u64> {
    crate::postmortem::sizes_in_log(&dir.join("stdout.log"))
        .filter(|f| f.prepared_rows.is_some())
        .or_else(|| crate::postmortem::sizes_in_log(&dir.join("stderr.log")))
        .and_then(|f| f.prepared_rows)
}

/// The point of one size and cap from its runs (`--repeat`): each figure the
/// median of the runs', a stage only when every run has it; shared by the
/// sweep and `oomlab model fit`, so a refit makes the same points.
pub fn median_point(size: Size, cap: u64, attempts: &[Attempt]) -> Point {
    let mut order: Vec<String> = Vec::new();
    for a in attempts {
        for (name, _) in &a.stage_peaks {
            if !order.contains(name) {
                order.push(name.clone());
            }
        }
    }
    let mut stage_peaks = BTreeMap::new();
    let mut repeat_stage_peaks = BTreeMap::new();
    for name in &order {
        let mut v: Vec<u64> = attempts
            .iter()
            .filter_map(|a| a.stage_peaks.iter().find(|(n, _)| n == name).map(|p| p.1))
            .collect();
        if v.len() == attempts.len() {
            if v.len() > 1 {
                repeat_stage_peaks.insert(name.clone(), v.clone());
            }
            stage_peaks.insert(name.clone(), median(&mut v));
        }
    }
    let mut peaks: Vec<u64> = attempts.iter().map(|a| a.peak_bytes).collect();
    let repeat_peaks = if peaks.len() > 1 {
        peaks.clone()
    } else {
        Vec::new()
    };
    let peak = if peaks.is_empty() {
        0
    } else {
        median(&mut peaks)
    };
    // The last run that logged them (as the sweep has always read them).
    let kept = attempts.iter().rev().find_map(|a| a.kept);
    let rows_kept = match kept {
        Some(k) => k,
        None if cap > 0 => cap.min(size.rows),
        None => size.rows,
    };
    let peak_stage = stage_peaks
        .iter()
        .max_by_key(|(_, p)| **p)
        .map(|(n, _)| n.clone())
        .unwrap_or_default();
    Point {
        scale: size.scale,
        rows_in: size.rows,
        rows_kept,
        max_ranking_samples: cap,
        peak_bytes: peak,
        peak_stage,
        stage_peaks,
        report: attempts
            .last()
            .map(|a| a.report.clone())
            .unwrap_or_default(),
        // The scenario's count; a column sweep sets the point's own.
        columns: 0,
        repeat_peaks,
        repeat_stage_peaks,
    }
}

/// Files a point under the variants it feeds: `command` (unsampled runs),
/// and `command-sampled` (every run) when the sweep has sampled runs.
pub fn file_point(points: &mut BTreeMap<&'static str, Vec<Point>>, point: Point, sampled: bool) {
    let cap = point.max_ranking_samples;
    let variant = if cap > 0 || sampled {
        "command-sampled"
    } else {
        "command"
    };
    points.entry(variant).or_default().push(point.clone());
    if cap == 0 && sampled {
        // Unsampled runs are points of the sampled variant too (no cap, nothing sampled).
        points.entry("command").or_default().push(point);
    }
}

/// The median of a non-empty list (the lower middle for an even count).
fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values[(values.len() - 1) / 2]
}

/// The one run of a recorded point, refused (exit 6, naming the size and the
/// command's last stderr lines) unless it completed. `sweep`: the point
/// belongs to a sweep, which stops without a model; otherwise (a gate's
/// point) only the point failed, and the message says so.
fn completed<'a>(
    report: &'a Report,
    rows: u64,
    cap: u64,
    path: &Path,
    sweep: bool,
) -> Result<&'a crate::report::RunRecord> {
    let run = report.runs.first().context("the record has no run")?;
    if run.status == RunStatus::Completed {
        return Ok(run);
    }
    let exit = match report::exit_for(report) {
        Exit::Ok => Exit::ChildFailed,
        e => e,
    };
    Err(exit_with(
        exit,
        format!(
            "{}the command did not complete at {} rows{} ({}); {}report: {}{}",
            if sweep {
                "sweep stopped: "
            } else {
                "point failed: "
            },
            format_count(rows),
            if cap > 0 {
                format!(" with MAX_RANKING_SAMPLES={cap}")
            } else {
                String::new()
            },
            crate::runner::classify::status_sentence("the command", &run.status),
            if sweep { "no model written; " } else { "" },
            path.display(),
            if run.stderr_tail.is_empty() {
                String::new()
            } else {
                format!("\nits stderr ended with:\n{}", run.stderr_tail.join("\n"))
            }
        ),
    ))
}

/// The README line that installs the pandas reference's Python packages,
/// found in the README compiled in (so the number stays true as it is edited).
fn readme_install_line() -> (usize, &'static str) {
    const README: &str = include_str!("../../../README.md");
    README
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("pip install -r scenarios/pandas/requirements.txt"))
        .map_or(
            (
                0,
                "python3 -m pip install -r scenarios/pandas/requirements.txt",
            ),
            |(i, l)| (i + 1, l.split("  #").next().unwrap_or(l).trim()),
        )
}

/// A command that died because its interpreter lacks a module is bad input
/// (exit 2), not a failed pipeline: the message names the interpreter as
/// given and as found on `PATH`, the module, and how to install it, instead
/// of leaving a Python traceback to be read as a regression.
pub fn missing_module(template: &[OsString], stderr_tail: &[String]) -> Option<anyhow::Error> {
    let module = stderr_tail.iter().rev().find_map(|l| {
        let rest = l.split("ModuleNotFoundError: No module named ").nth(1)?;
        let name = rest.trim().trim_matches(|c| c == '\'' || c == '"');
        Some(name.split('.').next().unwrap_or(name).to_string())
    })?;
    let interpreter = template.first()?.to_string_lossy().into_owned();
    let found = which(&interpreter)
        .map(|p| format!(" ({})", p.display()))
        .unwrap_or_default();
    let install = if ["pandas", "numpy", "pyarrow"].contains(&module.as_str()) {
        let (line, text) = readme_install_line();
        format!("the README installs it for the pandas reference (README.md:{line}: `{text}`), or `{interpreter} -m pip install {module}`")
    } else {
        format!("install it with `{interpreter} -m pip install {module}`")
    };
    Some(crate::error::bad_input(format!(
        "the interpreter `{interpreter}`{found} cannot import `{module}` (ModuleNotFoundError), which the command needs: {install}; or name an interpreter that has it"
    )))
}

/// `program` as the shell would find it on `PATH` (itself when it has a slash).
fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_module_names_interpreter_module_and_install_line() {
        let tail = vec![
            "Traceback (most recent call last):".to_string(),
            "ModuleNotFoundError: No module named 'pandas'".to_string(),
        ];
        let e = missing_module(&[OsString::from("/opt/py/bin/python3")], &tail)
            .unwrap()
            .to_string();
        assert!(
            e.contains("`/opt/py/bin/python3`") && e.contains("`pandas`"),
            "{e}"
        );
        let (line, text) = readme_install_line();
        assert!(line > 0 && e.contains(&format!("README.md:{line}")), "{e}");
        assert!(text.contains("requirements.txt"), "{text}");
        assert!(missing_module(&[OsString::from("python3")], &["boom".to_string()]).is_none());
    }
}
