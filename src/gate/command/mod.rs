//! Gating a team's own command: its per-stage peak at the largest of a few
//! small sizes, and its per-row slope between them.
//!
//! A replay gate catches regressions in oomlab, not in the pipeline the gate
//! exists for. A re-added `samples.copy()` or a merge of every profile column
//! changes what each row costs; that per-row cost is what production pays,
//! and unlike a fixed limit it barely depends on the CI machine's fixed costs
//! (interpreter, imports, allocator arenas). So each stage carries two
//! figures: the exact peak at the largest size (judged as a replay stage's
//! RSS), and the least-squares slope over the sizes' medians (judged with its
//! own tolerance and priced at production rows).
//!
//! Every point is recorded through [`crate::sweep::command::record_point`],
//! the same path as `oomlab sweep -- CMD`. This module measures and blesses;
//! [`judge`] compares a measurement with its blessing.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use super::baseline::{CommandEntry, CommandStage};
use super::median;
use crate::error::bad_input;
use crate::progress::Progress;
use crate::record::pattern::Pattern;
use crate::sweep::command::{generate_data, needs_data, record_point, PointPlan, Size};
use crate::units::format_count;

mod judge;

pub use judge::{
    command_notes, judge_command, signed_bytes, CommandResult, CommandStageResult,
    CommandTolerances, SlopeCheck, CARRIED,
};

/// Default sizes of a command entry, in rows: small enough that a pandas
/// pipeline runs each in a second or two, far enough apart that the slope
/// stands out of the run-to-run noise.
pub const DEFAULT_ROWS: [u64; 3] = [25_000, 50_000, 100_000];

/// What to run: one command template at some sizes.
#[derive(Debug, Clone)]
pub struct CommandSpec {
    /// The argv template (placeholders unsubstituted).
    pub template: Vec<OsString>,
    /// The scenario whose data `{data_dir}` names, if any.
    pub scenario: Option<PathBuf>,
    /// The sizes, smallest first (at least two).
    pub sizes: Vec<Size>,
    /// Stage markers (as `record --stage-pattern`).
    pub stage_pattern: String,
    /// Generate the data even when no argument names `{data_dir}`.
    pub generate_data: bool,
    /// Rows the slope's change is priced at.
    pub production_rows: u64,
}

impl CommandSpec {
    /// The spec a blessed entry describes, so a gate re-runs exactly it.
    pub fn from_entry(entry: &CommandEntry) -> CommandSpec {
        CommandSpec {
            template: entry.argv.iter().map(OsString::from).collect(),
            scenario: entry.scenario.as_ref().map(PathBuf::from),
            sizes: entry
                .rows
                .iter()
                .zip(&entry.scales)
                .map(|(&rows, &scale)| Size { rows, scale })
                .collect(),
            stage_pattern: entry.stage_pattern.clone(),
            generate_data: entry.generate_data,
            production_rows: entry.production_rows,
        }
    }

    /// The template as text, as the baseline keeps it.
    pub fn argv(&self) -> Vec<String> {
        self.template
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }
}

/// How command runs are made.
#[derive(Debug, Clone)]
pub struct CommandRunSettings {
    /// Runs per size and side; each figure is their median.
    pub runs: u32,
    /// Where generated data is cached.
    pub cache_dir: Option<PathBuf>,
    /// Where the points' reports go.
    pub out: PathBuf,
    /// Start data generation even when preflight predicts it will not fit.
    pub force: bool,
    /// One line per run on stderr unless quiet.
    pub quiet: bool,
}

/// One stage as measured: its exact peak in every run at every size.
#[derive(Debug, Clone, Serialize)]
pub struct MeasuredCommandStage {
    /// The stage's name, from the command's marker lines.
    pub name: String,
    /// `[size][run]` exact peaks, bytes (sizes as in the spec).
    pub peaks_bytes: Vec<Vec<u64>>,
    /// At the largest size, in most runs, the stage peaked where it started
    /// (see [`peaks_at_start`]): its figure is what the stage before left,
    /// and races the moment its marker line is read.
    pub peaks_at_start: bool,
}

/// Whether a stage's exact peak is its RSS at its start (within 4 MiB or
/// 2%): a stage that only frees or reads (`del` + `gc.collect()`, a column
/// selection). Its figure is then the previous stage's end state, which that
/// stage's own figure already holds, and it lands anywhere between that
/// state and what the stage's first millisecond freed, depending on whether
/// oomlab's reset at its marker came before or after the child's `del`: a
/// gate that judged it would fail unchanged code.
pub fn peaks_at_start(stage: &crate::report::StageRecord) -> bool {
    let (Some(peak), start) = (stage.exact_peak_bytes, stage.rss_start_bytes) else {
        return false;
    };
    start > 0 && peak.saturating_sub(start) <= (4u64 << 20).max(peak / 50)
}

/// One command as measured at every size.
#[derive(Debug, Clone, Serialize)]
pub struct MeasuredCommand {
    /// The argv template run (for a base side: with paths in the base worktree).
    pub argv: Vec<String>,
    /// The rows of each size, smallest first (the x of the slope).
    pub rows: Vec<u64>,
    /// The stages seen at every size, in the order they first started.
    pub stages: Vec<MeasuredCommandStage>,
    /// Python and pandas versions the command printed, for the notes.
    pub python: Option<String>,
    /// See `python`.
    pub pandas: Option<String>,
}

/// Least-squares line through `(x, y)`: (slope, value at zero).
pub fn fit_line(x: &[u64], y: &[u64]) -> (f64, f64) {
    let n = x.len().min(y.len()) as f64;
    if n < 1.0 {
        return (0.0, 0.0);
    }
    let mx = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let my = y.iter().map(|&v| v as f64).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (&a, &b) in x.iter().zip(y) {
        sxy += (a as f64 - mx) * (b as f64 - my);
        sxx += (a as f64 - mx) * (a as f64 - mx);
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    (slope, my - slope * mx)
}

impl MeasuredCommandStage {
    /// The median peak at each size.
    pub fn medians(&self) -> Vec<u64> {
        self.peaks_bytes.iter().map(|r| median(r)).collect()
    }

    /// Per-row cost and fixed part fitted on the medians.
    pub fn fit(&self, rows: &[u64]) -> (f64, f64) {
        fit_line(rows, &self.medians())
    }

    /// The runs' peaks at the largest size.
    pub fn largest_runs(&self) -> Vec<u64> {
        self.peaks_bytes.last().cloned().unwrap_or_default()
    }

    /// The slope of each run taken alone (run i at every size), to show how
    /// much the slope itself moves between runs.
    pub fn slope_runs(&self, rows: &[u64]) -> Vec<f64> {
        let runs = self.peaks_bytes.iter().map(Vec::len).min().unwrap_or(0);
        (0..runs)
            .map(|i| {
                let y: Vec<u64> = self.peaks_bytes.iter().map(|r| r[i]).collect();
                fit_line(rows, &y).0
            })
            .collect()
    }
}

/// How the gate records one point of a command, its measured runs and its
/// traced runs (`--lines`) alike: the command as written at `size` (no
/// column count, no cap), RSS sampled every 10 ms, its output not echoed,
/// and not a sweep's point; so a traced run is of the same command as the
/// runs whose figures it explains.
pub fn gate_point<'a>(
    template: &'a [OsString],
    size: Size,
    data_dir: Option<&'a Path>,
    pattern: &'a Pattern,
    out: PathBuf,
) -> PointPlan<'a> {
    PointPlan {
        template,
        size,
        data_dir,
        columns: None,
        cap: 0,
        pattern,
        interval: Duration::from_millis(10),
        out,
        passthrough: false,
        sweep: None,
    }
}

/// One run's stage peaks, in the order the stages started.
type StagePeaks = Vec<(String, u64)>;

/// Runs each side's template at every size, `runs` times, interleaved
/// (size by size, run by run, side by side) so that a machine's slow minute
/// falls on both sides alike. Data is generated once per size and fed to all.
pub fn measure_sides(
    spec: &CommandSpec,
    sides: &[(String, Vec<OsString>)],
    how: &CommandRunSettings,
    progress: &mut Progress,
) -> Result<Vec<MeasuredCommand>> {
    if spec.sizes.len() < 2 {
        return Err(bad_input(
            "gate -- CMD: expected at least two distinct sizes (the slope is taken between them)",
        ));
    }
    let pattern = Pattern::from_flag(&spec.stage_pattern)?;
    let needs = sides.iter().any(|(_, t)| needs_data(t, spec.generate_data));
    // [side][size][run] -> stage peaks, and the stages that peaked at their start
    let mut seen: Vec<Vec<Vec<StagePeaks>>> = vec![vec![Vec::new(); spec.sizes.len()]; sides.len()];
    let mut at_start: Vec<Vec<Vec<String>>> = vec![Vec::new(); sides.len()];
    let mut versions: Vec<(Option<String>, Option<String>)> = vec![(None, None); sides.len()];
    let total = spec.sizes.len() as u32 * how.runs * sides.len() as u32;
    let mut done = 0;
    for (si, size) in spec.sizes.iter().enumerate() {
        let data_dir = if needs {
            let Some(scenario) = &spec.scenario else {
                return Err(bad_input(
                    "gate -- CMD: the command names {data_dir} (or --generate-data is set), but no --scenario says what data to generate",
                ));
            };
            Some(generate_data(
                scenario,
                how.cache_dir.as_deref(),
                (size.scale, None),
                how.force,
                progress,
            )?)
        } else {
            None
        };
        for run in 0..how.runs {
            for (side, (label, template)) in sides.iter().enumerate() {
                done += 1;
                if !how.quiet {
                    eprintln!(
                        "gate: {label} run {done}/{total}: {} rows (run {} of {})",
                        format_count(size.rows),
                        run + 1,
                        how.runs
                    );
                }
                let point = record_point(
                    &gate_point(
                        template,
                        *size,
                        data_dir.as_deref(),
                        &pattern,
                        how.out
                            .join(format!("{label}-rows-{}-run-{}", size.rows, run + 1)),
                    ),
                    progress,
                )?;
                if versions[side] == (None, None) {
                    versions[side] = crate::sweep::command::versions(
                        point.report.parent().unwrap_or(Path::new(".")),
                    );
                }
                if si + 1 == spec.sizes.len() {
                    at_start[side].extend(point.record.runs.iter().map(|r| {
                        r.stages
                            .iter()
                            .filter(|st| peaks_at_start(st))
                            .map(|st| st.name.clone())
                            .collect()
                    }));
                }
                seen[side][si].push(point.stage_peaks);
            }
        }
    }
    Ok(sides
        .iter()
        .enumerate()
        .map(|(side, (_, template))| {
            let per_size = &seen[side];
            let mut order: Vec<String> = Vec::new();
            for runs in per_size {
                for stages in runs {
                    for (name, _) in stages {
                        if !order.contains(name) {
                            order.push(name.clone());
                        }
                    }
                }
            }
            let stages = order
                .into_iter()
                .filter_map(|name| {
                    let peaks: Vec<Vec<u64>> = per_size
                        .iter()
                        .map(|runs| {
                            runs.iter()
                                .filter_map(|st| {
                                    st.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
                                })
                                .collect()
                        })
                        .collect();
                    // A stage the command logs only at some sizes has no slope.
                    let runs = &at_start[side];
                    let starts = runs.iter().filter(|r| r.contains(&name)).count();
                    peaks
                        .iter()
                        .all(|p| !p.is_empty())
                        .then_some(MeasuredCommandStage {
                            peaks_at_start: !runs.is_empty() && 2 * starts > runs.len(),
                            name,
                            peaks_bytes: peaks,
                        })
                })
                .collect();
            MeasuredCommand {
                argv: template
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
                rows: spec.sizes.iter().map(|s| s.rows).collect(),
                stages,
                python: versions[side].0.clone(),
                pandas: versions[side].1.clone(),
            }
        })
        .collect())
}

/// The entry a measurement blesses; per-stage tolerances set by hand in the
/// previous entry are kept.
pub fn bless_command(
    spec: &CommandSpec,
    measured: &MeasuredCommand,
    runs: u32,
    previous: Option<&CommandEntry>,
) -> CommandEntry {
    CommandEntry {
        argv: spec.argv(),
        rows: spec.sizes.iter().map(|s| s.rows).collect(),
        scales: spec.sizes.iter().map(|s| s.scale).collect(),
        scenario: spec.scenario.as_ref().map(|p| p.display().to_string()),
        stage_pattern: spec.stage_pattern.clone(),
        production_rows: spec.production_rows,
        generate_data: spec.generate_data,
        runs,
        python: measured.python.clone(),
        pandas: measured.pandas.clone(),
        stages: measured
            .stages
            .iter()
            .map(|s| {
                let (bytes_per_row, fixed_bytes) = s.fit(&measured.rows);
                let old = previous.and_then(|p| p.stage(&s.name));
                let runs = s.largest_runs();
                CommandStage {
                    name: s.name.clone(),
                    peak_bytes: median(&runs),
                    peak_runs_bytes: runs,
                    bytes_per_row: bytes_per_row.round(),
                    fixed_bytes: fixed_bytes.round(),
                    bytes_per_row_runs: s
                        .slope_runs(&measured.rows)
                        .iter()
                        .map(|v| v.round())
                        .collect(),
                    peak_tolerance_pct: old.and_then(|o| o.peak_tolerance_pct),
                    slope_tolerance_pct: old.and_then(|o| o.slope_tolerance_pct),
                }
            })
            .collect(),
        // Set by `--lines` (commands/gate.rs): lines blessed without
        // tracing would describe older code.
        lines: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_fitted_exactly() {
        let (slope, fixed) = fit_line(&[10, 20, 40], &[1_100, 1_200, 1_400]);
        assert!((slope - 10.0).abs() < 1e-9);
        assert!((fixed - 1_000.0).abs() < 1e-6);
    }
}
