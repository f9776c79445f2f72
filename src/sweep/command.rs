//! `oomlab sweep -- CMD`: a user's own command, run at several sizes and
//! fitted with the replay sweep's model, in that command's own bytes.
//!
//! The replay models oomlab's idea of a pipeline; a team deploys, gates and
//! gets killed by its own code, on its own pandas. A pipeline's memory is
//! affine in its rows, so measuring the pipeline itself at a few small sizes
//! transfers where a replay calibrated by one factor does not. Every point
//! goes through [`crate::record`] (process tree, stages from its log lines,
//! exact per-stage peaks), the largest size is held out and predicted, and
//! the model says which command, Python and pandas produced it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use super::{fit_table, judged_table};
use crate::error::{bad_input, exit_with, Exit};
use crate::model::{
    model_path, HeldOut, Model, ModelScenario, ModelSource, Point, Validation, VariantModel,
    MODEL_SCHEMA_VERSION,
};
use crate::progress::Progress;
use crate::record::pattern::Pattern;
use crate::record::{record, RecordPlan, StageStream};
use crate::replay::{ReplaySettings, MAX_RANKING_SAMPLES_ENV};
use crate::report::{self, Report, RunStatus};
use crate::sampling::SamplingMode;
use crate::scenario::{validate_scale, LoadedScenario, Scenario};
use crate::units::{format_bytes, format_count};

/// The placeholders substituted into a command's arguments.
pub const PLACEHOLDERS: [&str; 5] = [
    "{rows}",
    "{scale}",
    "{data_dir}",
    "{max_ranking_samples}",
    "{columns}",
];

/// A command's peaks must grow by at least this share of the smallest peak
/// between the smallest and the largest size, else the sizes did not reach
/// it (no placeholder used, or the environment ignored) and a model of it
/// would extrapolate noise.
const FLAT_SHARE: f64 = 0.02;

/// The sizes a command sweep runs at.
#[derive(Debug, Clone, PartialEq)]
pub enum Sizes {
    /// Rows loaded, as given (`--rows`).
    Rows(Vec<u64>),
    /// Scales of the scenario (`--scales`): its sample rows at each.
    Scales(Vec<f64>),
}

/// What a command sweep is asked for.
#[derive(Debug, Clone)]
pub struct CommandSweepSettings {
    /// The command and its arguments, placeholders unsubstituted.
    pub template: Vec<OsString>,
    /// The scenario: production rows, and the data generated for `{data_dir}`.
    pub scenario: PathBuf,
    /// The sizes to run at (at least three; the largest is held out).
    pub sizes: Sizes,
    /// Caps as shares of the rows loaded (`--max-ranking-samples-fraction`);
    /// empty: unsampled runs only.
    pub fractions: Vec<f64>,
    /// Numeric profile column counts (`--columns`, for `{columns}` and the
    /// data generated for `{data_dir}`); empty: the scenario's count only.
    pub columns: Vec<u64>,
    /// Runs per point; each figure is their median.
    pub repeat: u32,
    /// Where generated data is cached (`None`: the default cache).
    pub cache_dir: Option<PathBuf>,
    /// RSS sampling interval.
    pub interval: Duration,
    /// The sweep's directory (`None`: `reports/runs/<time>-sweep-command/`).
    pub out: Option<PathBuf>,
    /// Where the model is also saved (`None`: only in the sweep's directory).
    pub model: Option<PathBuf>,
    /// The stage pattern (as `record --stage-pattern`).
    pub stage_pattern: String,
    /// Generate the scenario's data even when no argument names `{data_dir}`
    /// (for a command that reads `$OOMLAB_DATA_DIR`).
    pub generate_data: bool,
    /// Start the data generation even when preflight predicts it will not fit.
    pub force: bool,
    /// Print less (the command's own output is not echoed).
    pub quiet: bool,
    /// Run only this run of [`command_runs`] and write its report (a pod of
    /// an emitted sweep); no fit.
    pub point: Option<usize>,
}

/// One run of a command sweep: a size, a cap and which repeat, and its
/// report directory relative to the sweep's.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandRun {
    pub size: Size,
    /// Numeric profile columns of the run's data (`--columns`); `None`: the
    /// scenario's own.
    pub columns: Option<u64>,
    /// `MAX_RANKING_SAMPLES` (0: none).
    pub cap: u64,
    /// 1-based repeat.
    pub attempt: u32,
    /// `rows-N[-cap-C][-run-K]`.
    pub dir: String,
}

/// Every run of a command sweep in the order it measures them: per size,
/// unsampled then each cap, each `repeat` times. The sweep runs them all;
/// `--emit kubernetes` gives each its own pod (`--point INDEX`). With
/// `columns` (`--columns`), every size but the largest runs at every count
/// but the largest, and the point larger in both is held out.
pub fn command_runs(
    sizes: &[Size],
    fractions: &[f64],
    repeat: u32,
    columns: &[u64],
) -> Vec<CommandRun> {
    let design: Vec<(Size, Option<u64>)> = match columns.split_last() {
        None => sizes.iter().map(|s| (*s, None)).collect(),
        Some((top, rest)) => {
            let mut d = Vec::new();
            for s in &sizes[..sizes.len().saturating_sub(1)] {
                for &c in rest {
                    d.push((*s, Some(c)));
                }
            }
            if let Some(last) = sizes.last() {
                d.push((*last, Some(*top)));
            }
            d
        }
    };
    let mut runs = Vec::new();
    for (size, cols) in &design {
        let mut caps = vec![0u64];
        for f in fractions {
            caps.push(((size.rows as f64 * f).round() as u64).max(1));
        }
        for cap in caps {
            for attempt in 1..=repeat {
                let dir = format!(
                    "rows-{}{}{}{}",
                    size.rows,
                    cols.map(|c| format!("-columns-{c}")).unwrap_or_default(),
                    if cap > 0 {
                        format!("-cap-{cap}")
                    } else {
                        String::new()
                    },
                    if repeat > 1 {
                        format!("-run-{attempt}")
                    } else {
                        String::new()
                    }
                );
                runs.push(CommandRun {
                    size: *size,
                    columns: *cols,
                    cap,
                    attempt,
                    dir,
                });
            }
        }
    }
    runs
}

/// Checks a command sweep's settings and resolves its sizes (exit 2 on bad
/// input): what the sweep and `--emit` share.
pub fn plan_command_sweep(settings: &CommandSweepSettings) -> Result<(LoadedScenario, Vec<Size>)> {
    if settings.template.is_empty() {
        return Err(bad_input(
            "sweep --: no command given (usage: oomlab sweep --scales 0.02,0.04,0.08 -- CMD ARGS...)",
        ));
    }
    if settings.repeat == 0 {
        return Err(bad_input("--repeat 0: run each point at least once"));
    }
    let scenario = Scenario::load(&settings.scenario)?;
    let sizes = resolve_sizes(&scenario.scenario, &settings.sizes)?;
    if sizes.len() < 3 || sizes.iter().any(|s| s.rows == 0) {
        return Err(bad_input(
            "sweep -- CMD: expected at least 3 distinct, non-zero sizes (the model is fitted on all but the largest, which is held out)",
        ));
    }
    Ok((scenario, sizes))
}

/// One size a command runs at: the rows it is given and the scenario scale
/// that generates them (for `{scale}` and `{data_dir}`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Size {
    /// Rows loaded (`{rows}`).
    pub rows: u64,
    /// The scenario's scale at those rows (`{scale}`).
    pub scale: f64,
}

/// The sizes asked for, in rows and scales of `scenario`, smallest first and
/// without duplicates; shared by the sweep and the command gate so both run a
/// command at the same points for the same flags.
pub fn resolve_sizes(scenario: &Scenario, sizes: &Sizes) -> Result<Vec<Size>> {
    let production_rows = scenario.production_sizes().sample_rows.max(1);
    let mut out: Vec<Size> = match sizes {
        Sizes::Rows(rows) => rows
            .iter()
            .map(|&r| Size {
                rows: r,
                scale: r as f64 / production_rows as f64,
            })
            .collect(),
        Sizes::Scales(scales) => scales
            .iter()
            .map(|&s| {
                Ok(Size {
                    rows: scenario.sizes(validate_scale(s)?).sample_rows,
                    scale: s,
                })
            })
            .collect::<Result<_>>()?,
    };
    out.sort_by_key(|s| s.rows);
    out.dedup_by_key(|s| s.rows);
    Ok(out)
}

/// Whether the command needs the scenario's data generated: an argument
/// names `{data_dir}`, or the caller asked for it (`$OOMLAB_DATA_DIR`).
pub fn needs_data(template: &[OsString], generate_data: bool) -> bool {
    generate_data
        || template
            .iter()
            .filter_map(|a| a.to_str())
            .any(|a| a.contains("{data_dir}"))
}

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
    let run = completed(&report, size.rows, plan.cap, &path, plan.sweep.is_some())?;
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
    for name in &order {
        let mut v: Vec<u64> = attempts
            .iter()
            .filter_map(|a| a.stage_peaks.iter().find(|(n, _)| n == name).map(|p| p.1))
            .collect();
        if v.len() == attempts.len() {
            stage_peaks.insert(name.clone(), median(&mut v));
        }
    }
    let mut peaks: Vec<u64> = attempts.iter().map(|a| a.peak_bytes).collect();
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

/// `--rows 100000,200000,400000` (underscores and thousands commas inside a
/// number are not accepted here: the list is comma-separated).
pub fn parse_rows(text: &str) -> Result<Vec<u64>> {
    text.split(',')
        .map(|t| {
            t.trim().replace('_', "").parse::<u64>().map_err(|_| {
                bad_input(format!(
                    "--rows {text}: `{}` is not a whole number of rows (expected a comma-separated list such as 100000,200000,400000)",
                    t.trim()
                ))
            })
        })
        .collect()
}

/// The argv of one run: every placeholder replaced (`{columns}` needs a
/// known column count: the sweep's, or the scenario's).
pub fn substitute(
    template: &[OsString],
    (rows, scale, columns): (u64, f64, Option<u64>),
    data_dir: Option<&Path>,
    cap: u64,
) -> Result<Vec<OsString>> {
    template
        .iter()
        .map(|arg| {
            let Some(text) = arg.to_str() else {
                return Ok(arg.clone());
            };
            if text.contains("{data_dir}") && data_dir.is_none() {
                return Err(bad_input(format!(
                    "sweep -- CMD: argument `{text}` names {{data_dir}}, but no data was generated (internal: data_dir missing)"
                )));
            }
            if text.contains("{columns}") && columns.is_none() {
                return Err(bad_input(format!(
                    "argument `{text}` names {{columns}}, but no scenario says how many numeric profile columns there are (give --scenario)"
                )));
            }
            let dir = data_dir.map(|d| d.display().to_string()).unwrap_or_default();
            Ok(OsString::from(
                text.replace("{rows}", &rows.to_string())
                    .replace("{scale}", &scale.to_string())
                    .replace("{data_dir}", &dir)
                    .replace("{max_ranking_samples}", &cap.to_string())
                    .replace("{columns}", &columns.unwrap_or(0).to_string()),
            ))
        })
        .collect()
}

/// Whether any argument names a placeholder.
pub fn uses_placeholders(template: &[OsString]) -> bool {
    template
        .iter()
        .filter_map(|a| a.to_str())
        .any(|a| PLACEHOLDERS.iter().any(|p| a.contains(p)))
}

/// The median of a non-empty list (the lower middle for an even count).
fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values[(values.len() - 1) / 2]
}

/// The Python and pandas versions a command printed (`pandas 2.3.3`,
/// `pandas==3.0.1`, `Python 3.11.7`), searched in its saved output; the
/// sweep's model and the command gate's baseline both record them.
pub fn versions(dir: &Path) -> (Option<String>, Option<String>) {
    let mut text = String::new();
    for log in ["stdout.log", "stderr.log"] {
        if let Ok(bytes) = std::fs::read(dir.join(log)) {
            // The first lines carry a banner, if any.
            text.push_str(&String::from_utf8_lossy(
                &bytes[..bytes.len().min(64 << 10)],
            ));
        }
    }
    let find = |name: &'static str| -> Option<String> {
        let re = regex_lite_version(name);
        text.lines().find_map(&re)
    };
    (find("python"), find("pandas"))
}

/// A finder of `<name> <version>` (case-insensitive, `=`, `:` or `v` allowed
/// between) in a line.
fn regex_lite_version(name: &'static str) -> impl Fn(&str) -> Option<String> {
    move |line: &str| {
        let lower = line.to_ascii_lowercase();
        let at = lower.find(name)? + name.len();
        let rest = line[at..].trim_start_matches([' ', '=', ':', 'v']);
        let version: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        (version.contains('.') && version.starts_with(|c: char| c.is_ascii_digit()))
            .then(|| version.trim_end_matches('.').to_string())
    }
}

/// The recording of one run of a command sweep, in `dir`: the same for the
/// whole sweep and for one pod's `--point`. `columns_ref` is the scenario's
/// column count, for runs that do not vary it.
fn run_plan<'a>(
    settings: &'a CommandSweepSettings,
    pattern: &'a Pattern,
    run: &CommandRun,
    (data_dir, columns_ref): (Option<&'a Path>, u64),
    dir: &Path,
) -> PointPlan<'a> {
    PointPlan {
        template: &settings.template,
        size: run.size,
        data_dir,
        columns: Some(run.columns.unwrap_or(columns_ref)),
        cap: run.cap,
        pattern,
        interval: settings.interval,
        out: dir.to_path_buf(),
        passthrough: !settings.quiet,
        sweep: Some((&settings.scenario, !settings.fractions.is_empty())),
    }
}

/// Runs a command sweep and prints what it measured; writes `model.json`,
/// the tables and the picture into the sweep's directory.
pub fn sweep(settings: CommandSweepSettings) -> Result<Exit> {
    let (scenario, sizes) = plan_command_sweep(&settings)?;
    let needs_data = needs_data(&settings.template, settings.generate_data);
    let argv_template: Vec<String> = settings
        .template
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let pattern = Pattern::new(&settings.stage_pattern)
        .map_err(|e| bad_input(format!("--stage-pattern {}: {e}", settings.stage_pattern)))?;
    let out = settings
        .out
        .clone()
        .unwrap_or_else(|| report::default_out_dir("sweep-command"));
    let mut progress = Progress::new(settings.quiet);
    let columns_ref = scenario.scenario.production_sizes().profile_numeric_columns;
    for &c in &settings.columns {
        scenario.scenario.with_numeric_profile_columns(c)?;
    }

    let mut points: BTreeMap<&'static str, Vec<Point>> = BTreeMap::new();
    let mut machine = None;
    let mut version = (None, None);
    let mut reports = Vec::new();
    let runs = command_runs(
        &sizes,
        &settings.fractions,
        settings.repeat,
        &settings.columns,
    );
    if let Some(index) = settings.point {
        // One pod's share of an emitted sweep: this run only, no fit.
        let run = runs.get(index).ok_or_else(|| {
            bad_input(format!(
                "--point {index}: this sweep has {} runs (0 to {})",
                runs.len(),
                runs.len().saturating_sub(1)
            ))
        })?;
        let data_dir = if needs_data {
            Some(generate(
                &settings,
                (run.size.scale, run.columns),
                &mut progress,
            )?)
        } else {
            None
        };
        let dir = out.join(&run.dir);
        record_point(
            &run_plan(
                &settings,
                &pattern,
                run,
                (data_dir.as_deref(), columns_ref),
                &dir,
            ),
            &mut progress,
        )?;
        println!("report: {}", dir.join("report.json").display());
        return Ok(Exit::Ok);
    }
    let mut data_dir: Option<((u64, Option<u64>), PathBuf)> = None;
    let mut attempts = Vec::new();
    for (n, run) in runs.iter().enumerate() {
        let size = run.size;
        let key = (size.rows, run.columns);
        if needs_data && data_dir.as_ref().is_none_or(|(k, _)| *k != key) {
            let dir = generate(&settings, (size.scale, run.columns), &mut progress)?;
            data_dir = Some((key, dir));
        }
        let dir = out.join(&run.dir);
        let data = data_dir.as_ref().map(|(_, d)| d.as_path());
        let point = record_point(
            &run_plan(&settings, &pattern, run, (data, columns_ref), &dir),
            &mut progress,
        )?;
        if version == (None, None) {
            version = versions(&dir);
        }
        machine.get_or_insert(point.record.machine.clone());
        let path = point.report.display().to_string();
        reports.push(path.clone());
        attempts.push(Attempt {
            peak_bytes: point.peak_bytes,
            stage_peaks: point.stage_peaks,
            kept: kept_in_logs(&dir),
            report: path,
        });
        let last_of_point = runs.get(n + 1).is_none_or(|next| {
            (next.size.rows, next.cap, next.columns) != (size.rows, run.cap, run.columns)
        });
        if last_of_point {
            let mut point = median_point(size, run.cap, &attempts);
            if let Some(c) = run.columns {
                // A column sweep's own count; else 0, the scenario's (as
                // `model fit` reads the same reports).
                point.columns = c;
            }
            file_point(&mut points, point, !settings.fractions.is_empty());
            attempts.clear();
        }
    }
    let model = fit_command_model(CommandFit {
        points,
        sizes: &sizes,
        scenario: &LoadedScenario {
            path: settings.scenario.clone(),
            scenario: scenario.scenario.clone(),
        },
        cache_root: settings
            .cache_dir
            .clone()
            .unwrap_or_else(crate::data::cache::default_cache_root),
        machine: machine.unwrap_or_default(),
        versions: version,
        argv: argv_template,
        stage_pattern: settings.stage_pattern.clone(),
        allocator_env: crate::model::allocator_env(),
        columns: settings.columns.clone(),
    })?;
    write_command_model(&model, &sizes, &out, settings.model.as_deref(), &reports)?;
    Ok(Exit::Ok)
}

/// What a command model is fitted from: the points (by variant), the sizes
/// they were run at, and where they came from.
pub struct CommandFit<'a> {
    /// Points by variant (`command`, `command-sampled`), as [`file_point`] files them.
    pub points: BTreeMap<&'static str, Vec<Point>>,
    /// The sizes, smallest first; the largest is held out.
    pub sizes: &'a [Size],
    /// The scenario whose production rows the answers extrapolate to.
    pub scenario: &'a LoadedScenario,
    /// The data cache (`{data_dir}`'s root).
    pub cache_root: PathBuf,
    /// The machine of the first point.
    pub machine: crate::machine::MachineFacts,
    /// Python and pandas versions the command printed.
    pub versions: (Option<String>, Option<String>),
    /// The argv template.
    pub argv: Vec<String>,
    /// The stage pattern.
    pub stage_pattern: String,
    /// The allocator settings the points ran under (see
    /// [`crate::model::allocator_env`]).
    pub allocator_env: BTreeMap<String, String>,
    /// The numeric profile column counts swept (`--columns`; empty: the
    /// scenario's own only); the largest is held out with the largest size.
    pub columns: Vec<u64>,
}

/// Fits a command's model from its points: refuses peaks that do not grow
/// with the size, fits every variant on all but the largest size and judges
/// it there, then fits on all. One path for `sweep -- CMD` and `oomlab model
/// fit` on its reports, so both give the same model.
pub fn fit_command_model(fit: CommandFit<'_>) -> Result<Model> {
    let CommandFit {
        mut points,
        sizes,
        scenario,
        cache_root,
        machine,
        versions: version,
        argv: argv_template,
        stage_pattern,
        allocator_env,
        columns,
    } = fit;
    let holdout_rows = sizes.last().map_or(0, |s| s.rows);
    let columns_ref = scenario.scenario.production_sizes().profile_numeric_columns;
    let holdout_columns = columns.last().copied();
    // Judged over the whole range only: at small sizes a pipeline's fixed
    // cost (imports, pyarrow's pool) can dominate, and its noise can make a
    // second size peak below the first (pandas 3 did, at 170,643 and 341,286
    // rows) although the command does see the size.
    refuse_flat(&points, &argv_template)?;

    let kept_ratio: Vec<f64> = points
        .get("command")
        .into_iter()
        .flatten()
        .filter(|p| p.max_ranking_samples == 0)
        .map(|p| p.rows_kept as f64 / p.rows_in as f64)
        .collect();
    let dropna_keep_ratio = if kept_ratio.is_empty() {
        1.0
    } else {
        kept_ratio.iter().sum::<f64>() / kept_ratio.len() as f64
    };
    let held_out =
        |p: &Point| p.rows_in >= holdout_rows && holdout_columns.is_none_or(|c| p.columns >= c);
    let mut variants = Vec::new();
    let mut held = Vec::new();
    let mut max_err = BTreeMap::new();
    for (name, sampling) in [
        ("command", None),
        ("command-sampled", Some(SamplingMode::Uniform)),
    ] {
        let Some(pts) = points.remove(name) else {
            continue;
        };
        let stage_names = common_stages(&pts);
        let names: Vec<&str> = stage_names.iter().map(String::as_str).collect();
        let train: Vec<Point> = pts.iter().filter(|p| !held_out(p)).cloned().collect();
        let checked = VariantModel::fit(name, "command", sampling, &names, train, columns_ref)?;
        let mut worst = 0.0f64;
        for p in pts.iter().filter(|p| held_out(p)) {
            let h: HeldOut = checked.judge(p);
            worst = worst.max(h.error_pct.abs());
            held.push(h);
        }
        max_err.insert(name.to_string(), worst);
        variants.push(VariantModel::fit(
            name,
            "command",
            sampling,
            &names,
            pts,
            columns_ref,
        )?);
    }
    let scales: Vec<f64> = sizes.iter().map(|s| s.scale).collect();
    Ok(Model {
        schema_version: MODEL_SCHEMA_VERSION,
        oomlab_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: report::utc_now_rfc3339(),
        scenario: ModelScenario {
            name: scenario.scenario.name.clone(),
            path: scenario.path.display().to_string(),
            scenario: scenario.scenario.clone(),
            production: scenario.scenario.production_sizes(),
        },
        scales: scales.clone(),
        cache_root,
        allocator: "the command's own (not chosen by oomlab)".into(),
        machine,
        dropna_keep_ratio,
        streaming_chunk_rows: 0,
        memory_mode: Default::default(),
        variants,
        validation: Validation {
            holdout_scale: *scales.last().context("no sizes")?,
            fitted_scales: scales[..scales.len() - 1].to_vec(),
            points: held,
            max_abs_error_pct: max_err,
            holdout_columns,
            fitted_columns: columns
                .split_last()
                .map(|(_, rest)| rest.to_vec())
                .unwrap_or_default(),
        },
        calibration: None,
        production_checks: Vec::new(),
        machines: Vec::new(),
        source: ModelSource::Command {
            argv: argv_template,
            stage_pattern,
            python: version.0,
            pandas: version.1,
            allocator_env,
            named: BTreeMap::new(),
        },
        columns: crate::model::ColumnAxis {
            at: columns_ref,
            measured: if columns.is_empty() {
                vec![columns_ref]
            } else {
                columns.clone()
            },
        },
    })
}

/// Writes a command model (`model.json`, `sweep.md`, the picture) into
/// `out`, and to `saved` when given, and prints the held-out check and the
/// per-row costs: what `sweep -- CMD` and `model fit` show of it.
pub fn write_command_model(
    model: &Model,
    sizes: &[Size],
    out: &Path,
    saved: Option<&Path>,
    reports: &[String],
) -> Result<()> {
    let holdout_rows = sizes.last().map_or(0, |s| s.rows);
    let holdout_columns = model.validation.holdout_columns;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    model.write(&out.join("model.json"))?;
    if let Some(path) = saved {
        model.write(&model_path(Some(path)))?;
    }
    let held_out = judged_table(&model.validation.points);
    let fits = fit_table(model);
    let pictures = crate::plot::render(&crate::plot::sweep::SweepChart::new(model), out)
        .unwrap_or_else(|e| {
            eprintln!("warning: picture not drawn: {e:#}");
            Vec::new()
        });
    let source = model.source.describe(model.memory_mode);
    let mut md = format!(
        "# Command sweep\n\nIn {source}.\n\nSizes (rows loaded): {}; held out: {}.\n\n## Held-out check\n\n{}\n## Fits\n\n{}\n",
        sizes
            .iter()
            .map(|s| format_count(s.rows))
            .collect::<Vec<_>>()
            .join(", "),
        format_count(holdout_rows),
        held_out.to_markdown(),
        fits.to_markdown()
    );
    md.push_str("\n## Reports\n\n");
    for r in reports {
        md.push_str(&format!("- `{r}`\n"));
    }
    report::write_atomically(&out.join("sweep.md"), md.as_bytes())?;

    println!("\nCommand sweep: {source}");
    println!(
        "Held-out check: fitted on {} rows{}, predicting {} rows{}",
        sizes[..sizes.len() - 1]
            .iter()
            .map(|s| format_count(s.rows))
            .collect::<Vec<_>>()
            .join(", "),
        if model.validation.fitted_columns.is_empty() {
            String::new()
        } else {
            format!(
                " x numeric profile columns {}",
                model
                    .validation
                    .fitted_columns
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        format_count(holdout_rows),
        holdout_columns
            .map(|c| format!(" at {c} columns (larger in both)"))
            .unwrap_or_default()
    );
    println!("{}", held_out.to_text());
    for (variant, err) in &model.validation.max_abs_error_pct {
        println!("  {variant}: largest held-out error {err:.1}%");
    }
    println!("\nPer-row costs (fitted on all sizes):");
    println!("{}", fits.to_text());
    for v in &model.variants {
        let at = model.predict(v, model.scenario.production.sample_rows, 0);
        println!(
            "  {}: {:.0} B/row loaded, fixed {}; at production size ({} rows, no cap) {} in {}",
            v.name,
            v.overall.bytes_per_row_in + v.overall.bytes_per_row_kept * model.dropna_keep_ratio,
            format_bytes(v.overall.fixed_bytes.max(0.0) as u64),
            format_count(model.scenario.production.sample_rows),
            format_bytes(at.peak_bytes as u64),
            at.peak_stage
        );
    }
    println!("model: {}", out.join("model.json").display());
    if let Some(path) = saved {
        println!("  (also saved as {})", path.display());
    }
    for p in &pictures {
        println!("picture: {}", p.display());
    }
    println!("summary: {}", out.join("sweep.md").display());
    Ok(())
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

/// Refuses (exit 2) a sweep whose peaks do not grow with the size: the
/// command never saw the sizes.
fn refuse_flat(points: &BTreeMap<&'static str, Vec<Point>>, argv: &[String]) -> Result<()> {
    let Some(pts) = points.get("command") else {
        return Ok(());
    };
    let unsampled: Vec<&Point> = pts.iter().filter(|p| p.max_ranking_samples == 0).collect();
    let (Some(small), Some(large)) = (
        unsampled.iter().min_by_key(|p| p.rows_in),
        unsampled.iter().max_by_key(|p| p.rows_in),
    ) else {
        return Ok(());
    };
    if large.rows_in <= small.rows_in {
        return Ok(());
    }
    let grew = large.peak_bytes as f64 - small.peak_bytes as f64;
    if grew < FLAT_SHARE * small.peak_bytes as f64 {
        let hint = if uses_placeholders(&argv.iter().map(OsString::from).collect::<Vec<_>>()) {
            "the command ignored the size it was given"
        } else {
            "no argument names {rows}, {scale}, {data_dir} or {max_ranking_samples}, and the command ignored $OOMLAB_ROWS, $OOMLAB_SCALE, $OOMLAB_DATA_DIR and $MAX_RANKING_SAMPLES"
        };
        return Err(bad_input(format!(
            "sweep -- {}: the peak did not grow with the size ({} at {} rows, {} at {} rows): {hint}; a model of it would extrapolate noise",
            argv.join(" "),
            format_bytes(small.peak_bytes),
            format_count(small.rows_in),
            format_bytes(large.peak_bytes),
            format_count(large.rows_in)
        )));
    }
    Ok(())
}

/// The stages every point has a peak for (by name): a stage the command
/// logs only at some sizes cannot be fitted.
fn common_stages(points: &[Point]) -> Vec<String> {
    let Some(first) = points.first() else {
        return Vec::new();
    };
    first
        .stage_peaks
        .keys()
        .filter(|name| points.iter().all(|p| p.stage_peaks.contains_key(*name)))
        .cloned()
        .collect()
}

/// The scenario's data at `scale` (generated through the measuring path on
/// first use, as `oomlab data` does): its directory, for `{data_dir}`.
fn generate(
    settings: &CommandSweepSettings,
    (scale, columns): (f64, Option<u64>),
    progress: &mut Progress,
) -> Result<PathBuf> {
    generate_data(
        &settings.scenario,
        settings.cache_dir.as_deref(),
        (scale, columns),
        settings.force,
        progress,
    )
}

/// The data of `scenario` at `scale` in the cache (generated through the
/// measuring path on first use, as `oomlab data` does): its directory, for
/// `{data_dir}`. Shared with the command gate, which feeds the same data to
/// both sides of a comparison.
pub fn generate_data(
    scenario: &Path,
    cache_dir: Option<&Path>,
    (scale, columns): (f64, Option<u64>),
    force: bool,
    progress: &mut Progress,
) -> Result<PathBuf> {
    let replay = ReplaySettings {
        scenario: scenario.to_path_buf(),
        scale,
        cache_dir: cache_dir.map(Path::to_path_buf),
        max_ranking_samples: Some(0),
        force,
        ..Default::default()
    };
    let mut plan = crate::replay::plan("sweep", &replay, Vec::new())?;
    if let Some(c) = columns {
        // As wide as asked: `{data_dir}` then holds that many numeric columns.
        plan.scenario.scenario = plan.scenario.scenario.with_numeric_profile_columns(c)?;
    }
    plan.run(progress)?;
    let sizes = plan.scenario.scenario.sizes(plan.scale);
    Ok(crate::data::DataCache::locate(&plan.cache_root, &plan.scenario.scenario, &sizes).dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_substituted_everywhere() {
        let t: Vec<OsString> = [
            "py",
            "--rows={rows}",
            "{scale}",
            "--d",
            "{data_dir}/x",
            "{max_ranking_samples}",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let got = substitute(&t, (1000, 0.5, Some(87)), Some(Path::new("/tmp/d")), 7).unwrap();
        let got: Vec<String> = got
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(got, ["py", "--rows=1000", "0.5", "--d", "/tmp/d/x", "7"]);
        assert!(uses_placeholders(&t));
        assert!(!uses_placeholders(&[
            OsString::from("python3"),
            OsString::from("x.py")
        ]));
    }

    #[test]
    fn versions_are_read_from_a_banner() {
        let f = regex_lite_version("pandas");
        assert_eq!(
            f("INFO python 3.11.7 pandas 2.3.3").as_deref(),
            Some("2.3.3")
        );
        assert_eq!(f("pandas==3.0.1").as_deref(), Some("3.0.1"));
        assert_eq!(f("using Pandas: v3.1.0.").as_deref(), Some("3.1.0"));
        assert_eq!(f("pandas is fun"), None);
    }
}
