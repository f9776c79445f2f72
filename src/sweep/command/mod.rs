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

use anyhow::Result;

mod budget;
mod fit;
mod lines;
mod noise;
mod points;
pub mod similarity;
mod template;

use crate::error::{bad_input, Exit};
use crate::model::Point;
use crate::progress::Progress;
use crate::record::pattern::Pattern;
use crate::replay::ReplaySettings;
use crate::report::{self};
use crate::scenario::{validate_scale, LoadedScenario, Scenario};
pub use fit::{fit_command_model, write_command_model, CommandFit};
pub use points::{
    file_point, kept_in_logs, median_point, point_command, record_point, stage_peaks_of, Attempt,
    PointPlan, PointRun,
};
pub use template::{needs_data, parse_rows, substitute, uses_placeholders, versions, PLACEHOLDERS};

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
    /// `--budget`: pick the sizes within this much wall time instead of
    /// taking `sizes` (see [`crate::sweep::budget`]).
    pub budget: Option<Duration>,
    /// `--production-rows`: the rows a budget sweep predicts at (`None`:
    /// the scenario's production rows).
    pub production_rows: Option<u64>,
    /// Also trace each size once under memray and fit each line's bytes
    /// (`--lines`, [`crate::lines`]).
    pub lines: bool,
}

impl CommandSweepSettings {
    /// The command model of this sweep's points: what the fixed-size and the
    /// budget sweep share, so both record the same command, cache, stage
    /// pattern, allocator and columns.
    pub(crate) fn fit_model(
        &self,
        scenario: &LoadedScenario,
        points: BTreeMap<&'static str, Vec<Point>>,
        sizes: &[Size],
        machine: Option<crate::machine::MachineFacts>,
        versions: (Option<String>, Option<String>),
    ) -> Result<crate::model::Model> {
        fit_command_model(CommandFit {
            points,
            sizes,
            scenario: &LoadedScenario {
                path: self.scenario.clone(),
                scenario: scenario.scenario.clone(),
            },
            cache_root: self
                .cache_dir
                .clone()
                .unwrap_or_else(crate::data::cache::default_cache_root),
            machine: machine.unwrap_or_default(),
            versions,
            argv: self
                .template
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            stage_pattern: self.stage_pattern.clone(),
            allocator_env: crate::model::allocator_env(),
            columns: self.columns.clone(),
        })
    }
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
    if let Some(budget) = settings.budget {
        let target = settings.production_rows;
        return budget::sweep_within(settings, budget, target);
    }
    let (scenario, sizes) = plan_command_sweep(&settings)?;
    let mut traced = lines::LinePoints::new(&settings)?;
    let needs_data = needs_data(&settings.template, settings.generate_data);
    let pattern = Pattern::from_flag(&settings.stage_pattern)?;
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
        traced.keep(run, data, &point);
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
    let model = settings.fit_model(&scenario, points, &sizes, machine, version)?;
    write_command_model(&model, &sizes, &out, settings.model.as_deref(), &reports)?;
    let production_rows = scenario.scenario.production_sizes().sample_rows;
    if let (Ok(v), Some(first)) = (model.variant("command"), runs.first()) {
        // Repeats measured a run's own spread: say why it is wide, if it
        // is; without repeats, say that none was seen where one races.
        let at = model.predict(v, production_rows, 0);
        let evidence = noise::Evidence::gather(&settings.template, &out.join(&first.dir));
        if let Some(h) = noise::hint(noise::run_noise_share(v, &at), production_rows, &evidence) {
            println!("{h}");
        }
        if settings.repeat < 2 {
            if let Some(c) = noise::unrepeated_caution(&evidence) {
                println!("{c}");
            }
        }
    }
    traced.trace(&settings, &pattern, (columns_ref, production_rows), &out)?;
    Ok(Exit::Ok)
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
