//! The fidelity experiment: the pandas reference and the replay on the same
//! data, at the same scales, fitted side by side (see [`crate::fidelity`]
//! for the result and its analysis). It runs both sides, so it lives with the
//! sweeps, above the recorder and the pictures.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use super::{base_plan, parse_scales, run_plan};
use crate::data::cache::default_cache_root;
use crate::data::DataCache;
use crate::error::{bad_input, exit_with, Exit};
use crate::fidelity::{
    Fidelity, FidelityPoint, StrategyFidelity, FIDELITY_SCHEMA_VERSION, PANDAS_REFERENCE,
};
use crate::plot;
use crate::progress::Progress;
use crate::record::pattern::Pattern;
use crate::record::{record as record_command, RecordPlan, StageStream};
use crate::replay::parse_strategies;
use crate::report::{self, utc_now_rfc3339, RunRecord, RunStatus};
use crate::scenario::{Scenario, Workload};
use crate::settings::MemoryMode;
use crate::summary::write_report_dir;
use crate::table::Table;
use crate::units::format_bytes;

/// Stage boundaries of the pandas reference: its `INFO [stage] NAME` lines only
/// (the pipeline's own INFO lines are kept as logs, not cut into stages).
const STAGE_PATTERN: &str = r"^INFO \[stage\] (\S+)$";

/// The interpreter's real path (a pyenv or venv shim would otherwise add its
/// own processes to the recorded tree) and its pandas version; exit 2 with how
/// to install the reference's requirements when pandas is missing.
fn python(interpreter: &str) -> Result<(String, String)> {
    let out = Command::new(interpreter)
        .args([
            "-c",
            "import sys, pandas, pyarrow; print(sys.executable); print(pandas.__version__)",
        ])
        .output()
        .map_err(|e| bad_input(format!("--python {interpreter}: cannot run it: {e}")))?;
    if !out.status.success() {
        return Err(bad_input(format!(
            "--python {interpreter}: pandas and pyarrow are not importable ({}); install the reference's requirements: {interpreter} -m pip install -r scenarios/pandas/requirements.txt",
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("").trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut lines = text.lines();
    let exe = lines.next().unwrap_or(interpreter).trim().to_string();
    let version = lines.next().unwrap_or("").trim().to_string();
    Ok((exe, version))
}

fn stage_peaks(run: &RunRecord) -> BTreeMap<String, u64> {
    run.stages
        .iter()
        .filter_map(|s| s.exact_peak_bytes.map(|p| (s.name.clone(), p)))
        .collect()
}

fn completed(run: &RunRecord, what: &str, report: &Path) -> Result<u64> {
    if run.status != RunStatus::Completed {
        return Err(exit_with(
            Exit::ChildFailed,
            format!(
                "{what} did not complete ({:?}); report: {}\n{}",
                run.status,
                report.display(),
                run.stderr_tail.join("\n")
            ),
        ));
    }
    run.peak_bytes
        .with_context(|| format!("{what}: no exact peak in {}", report.display()))
}

/// The median of some peaks (the lower middle of an even count: a peak seen
/// is never invented).
fn median(values: &[u64]) -> u64 {
    let mut v = values.to_vec();
    v.sort_unstable();
    v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or(0)
}

/// Each stage's median over the runs that measured it.
fn median_stages(runs: &[BTreeMap<String, u64>]) -> BTreeMap<String, u64> {
    let mut all: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for run in runs {
        for (stage, peak) in run {
            all.entry(stage.clone()).or_default().push(*peak);
        }
    }
    all.into_iter()
        .filter(|(_, v)| v.len() == runs.len())
        .map(|(stage, v)| (stage, median(&v)))
        .collect()
}

/// What the experiment is asked for (`oomlab fidelity`'s flags, typed).
#[derive(Debug, Clone)]
pub struct FidelitySettings {
    /// The scenario file (ranking prep).
    pub scenario: PathBuf,
    /// The scales, as given (`--scales`), checked by [`parse_scales`].
    pub scales: String,
    /// The strategies, as given (`--strategy`): legacy and/or optimized.
    pub strategy: String,
    /// The Python interpreter that has pandas.
    pub python: String,
    /// The pandas reference script.
    pub reference: PathBuf,
    /// How the replay side holds its frames.
    pub memory_mode: MemoryMode,
    /// Runs of the pandas reference per scale and strategy (medians).
    pub repeat: u32,
    /// Where generated data is cached (`None`: the default cache).
    pub cache_dir: Option<PathBuf>,
    /// RSS sampling interval.
    pub interval: Duration,
    /// Output directory (`None`: `reports/runs/<time>-fidelity-<scenario>/`).
    pub out: Option<PathBuf>,
    /// Start children even when preflight predicts they will not fit.
    pub force: bool,
    /// Print less.
    pub quiet: bool,
}

/// `oomlab fidelity`: runs both sides at every scale, writes
/// `fidelity.json`, `fidelity.md` and the picture, and prints the result.
pub fn run(args: FidelitySettings) -> Result<Exit> {
    let scenario = Scenario::load(&args.scenario)?;
    if scenario.scenario.workload() != Workload::RankingPrep {
        return Err(bad_input(format!(
            "{}: fidelity compares ranking prep with its pandas reference; this is a similarity scenario",
            args.scenario.display()
        )));
    }
    let scales = parse_scales(&args.scales)?;
    let strategies = parse_strategies(&args.strategy)?;
    if let Some(s) = strategies.iter().find(|s| s.name() == "streaming") {
        return Err(bad_input(format!(
            "--strategy {}: the pandas reference has legacy and optimized only",
            s.name()
        )));
    }
    let interval = args.interval;
    let memory_mode = args.memory_mode;
    let repeat = args.repeat;
    if repeat == 0 {
        return Err(bad_input(
            "--repeat 0: run the pandas reference at least once",
        ));
    }
    let mut reference = args.reference.clone();
    if !reference.is_file() && reference == Path::new(PANDAS_REFERENCE) {
        // Outside a checkout: the reference built into the binary, written
        // once per version next to the data cache.
        let root = args.cache_dir.clone().unwrap_or_else(default_cache_root);
        let dir = root.join(format!("scenarios-{}", env!("CARGO_PKG_VERSION")));
        crate::scenario::write_bundled(&dir)?;
        reference = dir.join("pandas/ranking_prep.py");
    }
    if !reference.is_file() {
        return Err(bad_input(format!(
            "{}: the pandas reference is missing (expected the repository's {PANDAS_REFERENCE})",
            reference.display()
        )));
    }
    let (exe, pandas_version) = python(&args.python)?;
    let cache_root = args.cache_dir.clone().unwrap_or_else(default_cache_root);
    let out = args.out.clone().unwrap_or_else(|| {
        crate::report::default_out_dir(&format!("fidelity-{}", scenario.scenario.name))
    });
    let mut progress = Progress::new(args.quiet);
    let mut points: BTreeMap<String, Vec<FidelityPoint>> = BTreeMap::new();
    let mut machine = None;
    for &scale in &scales {
        let mut plan = base_plan(
            "fidelity",
            &args.scenario,
            &cache_root,
            interval,
            strategies.clone(),
        )?;
        plan.scale = scale;
        plan.force = args.force;
        plan.memory_mode = memory_mode;
        let dir = out.join(format!("scale-{scale}"));
        let replay_dir = dir.join("oomlab");
        let replay = run_plan(plan, &replay_dir, &mut progress)?;
        machine.get_or_insert(replay.machine.clone());
        let sizes = scenario.scenario.sizes(scale);
        let data = DataCache::locate(&cache_root, &scenario.scenario, &sizes).dir;
        for run in &replay.runs {
            let replay_path = replay_dir.join("report.json");
            let oomlab_peak = completed(run, &format!("oomlab {}", run.strategy), &replay_path)?;
            // The reference is run `--repeat` times and each figure is the
            // median: a Python process's peak moves from run to run (glibc
            // keeps freed arrays in RSS depending on its history) by more
            // than the replay's does.
            let mut peaks = Vec::new();
            let mut stage_runs: Vec<BTreeMap<String, u64>> = Vec::new();
            let mut reports = Vec::new();
            for attempt in 1..=repeat {
                let pandas_dir = if repeat == 1 {
                    dir.join(format!("pandas-{}", run.strategy))
                } else {
                    dir.join(format!("pandas-{}-{attempt}", run.strategy))
                };
                let record_plan = RecordPlan {
                    command: vec![
                        OsString::from(&exe),
                        reference.clone().into_os_string(),
                        "--strategy".into(),
                        run.strategy.clone().into(),
                        "--data-dir".into(),
                        data.clone().into_os_string(),
                        "--max-ranking-samples".into(),
                        "0".into(),
                    ],
                    interval,
                    memory_limit: None,
                    pattern: Pattern::new(STAGE_PATTERN).map_err(anyhow::Error::msg)?,
                    stream: StageStream::Stdout,
                    label: format!("pandas-{}", run.strategy),
                    out: pandas_dir.clone(),
                    passthrough: !args.quiet,
                    env: Vec::new(),
                    point: None,
                };
                let pandas = record_command(&record_plan, &mut progress)?;
                write_report_dir(&pandas, &pandas_dir)?;
                let pandas_path = pandas_dir.join("report.json");
                let prun = pandas
                    .runs
                    .first()
                    .context("the pandas record has no run")?;
                peaks.push(completed(
                    prun,
                    &format!("pandas {}", run.strategy),
                    &pandas_path,
                )?);
                stage_runs.push(stage_peaks(prun));
                reports.push(pandas_path.display().to_string());
            }
            let pandas_peak = median(&peaks);
            let pandas_stages = median_stages(&stage_runs);
            points
                .entry(run.strategy.clone())
                .or_default()
                .push(FidelityPoint {
                    scale,
                    rows: sizes.sample_rows,
                    oomlab_peak_bytes: oomlab_peak,
                    pandas_peak_bytes: pandas_peak,
                    pandas_repeats: peaks,
                    oomlab_stages: stage_peaks(run),
                    pandas_stages,
                    oomlab_report: replay_path.display().to_string(),
                    pandas_report: reports.join(", "),
                });
        }
    }
    let mut analyzed = Vec::new();
    for s in &strategies {
        let pts = points.remove(s.name()).unwrap_or_default();
        analyzed.push(StrategyFidelity::analyze(s.name(), pts)?);
    }
    let result = Fidelity {
        schema_version: FIDELITY_SCHEMA_VERSION,
        oomlab_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: utc_now_rfc3339(),
        scenario: scenario.scenario.name.clone(),
        scenario_path: args.scenario.display().to_string(),
        scales,
        memory_mode,
        memory_mode_description: memory_mode.describe().into(),
        python: format!("{exe} (pandas {pandas_version})"),
        reference: reference.display().to_string(),
        machine: machine.unwrap_or_default(),
        strategies: analyzed,
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    result.write(&out.join("fidelity.json"))?;
    let pictures = plot::render(&plot::fits::FitChart::fidelity(&result), &out)?;
    let md = render(&result, &pictures);
    report::write_atomically(&out.join("fidelity.md"), md.as_bytes())?;
    println!("\n{md}");
    println!("fidelity: {}", out.join("fidelity.json").display());
    Ok(Exit::Ok)
}

fn per_row(fit: &crate::model::fit::Fit) -> String {
    format!("{:.0} B", fit.bytes_per_row_in)
}

fn fixed(fit: &crate::model::fit::Fit) -> String {
    format_bytes(fit.fixed_bytes.max(0.0) as u64)
}

/// The result as markdown: per strategy and stage, both sides' fits and ratios.
fn render(f: &Fidelity, pictures: &[PathBuf]) -> String {
    let mut table = Table {
        headers: vec![
            "Strategy".into(),
            "Stage".into(),
            "pandas fixed".into(),
            "pandas per row".into(),
            format!("oomlab ({} mode) fixed", f.memory_mode.name()),
            format!("oomlab ({} mode) per row", f.memory_mode.name()),
            "Per-row ratio oomlab/pandas".into(),
        ],
        rows: Vec::new(),
    };
    for s in &f.strategies {
        let mut row = |stage: &str, c: &crate::fidelity::Comparison| {
            table.rows.push(vec![
                s.strategy.clone(),
                stage.to_string(),
                fixed(&c.pandas),
                per_row(&c.pandas),
                fixed(&c.oomlab),
                per_row(&c.oomlab),
                format!("{:.2}", c.per_row_ratio),
            ]);
        };
        row("(whole run)", &s.overall);
        for st in &s.stages {
            row(&st.stage, &st.comparison);
        }
    }
    let mut summary = Table {
        headers: vec![
            "Strategy".into(),
            "pandas per row (stage)".into(),
            format!("oomlab ({} mode) per row (stage)", f.memory_mode.name()),
            "Ratio oomlab/pandas".into(),
        ],
        rows: Vec::new(),
    };
    for s in &f.strategies {
        if let Some(p) = &s.per_row {
            summary.rows.push(vec![
                s.strategy.clone(),
                format!("{:.0} B ({})", p.pandas_bytes_per_row, p.pandas_stage),
                format!("{:.0} B ({})", p.oomlab_bytes_per_row, p.oomlab_stage),
                format!("{:.2}", p.ratio),
            ]);
        }
    }
    let mut md = format!(
        "# Fidelity: {} (oomlab replay vs pandas reference)\n\nScales {}; replay memory mode: {}; pandas side: {} running {}.\n\n## Per-row cost of the peak\n\nOn each side the stage whose cost grows fastest with the rows (it sets the peak at production sizes):\n\n{}\n",
        f.scenario,
        f.scales
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        f.memory_mode_description,
        f.python,
        f.reference,
        summary.to_markdown()
    );
    if let Some((o, p)) = f.legacy_optimized_ratios() {
        md += &format!(
            "legacy/optimized per-row ratio: oomlab {o:.2}, pandas {p:.2} (oomlab's ratio is {:.0}% of pandas').\n\n",
            o / p * 100.0
        );
    }
    md += &format!(
        "## Per stage\n\nFits of each stage's peak, `fixed + per_row x rows`, on both sides (\"whole run\" fits the run's peak as measured, whichever stage set it):\n\n{}\n",
        table.to_markdown()
    );
    for s in &f.strategies {
        if let Some(h) = &s.calibrated_holdout {
            md += &format!(
                "{}: {}\n",
                s.strategy,
                h.sentence("the replay calibrated to pandas as offset + k x oomlab")
            );
        }
        if let Some(h) = &s.holdout {
            md += &format!("{}: {}\n", s.strategy, h.sentence("pandas' own stage fits"));
        }
    }
    md += "\nCalibrate a model to these pandas peaks with `oomlab recommend --fidelity <this dir>/fidelity.json` (or `check --fidelity`).\n";
    for p in pictures
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
    {
        if let Some(name) = p.file_name() {
            md += &format!("\n![fidelity]({})\n", name.to_string_lossy());
        }
    }
    md
}
