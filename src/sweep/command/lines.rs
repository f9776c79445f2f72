//! `sweep --lines -- CMD`: after the kernel runs, each size once more under
//! memray, and each line's bytes at each stage's peak fitted against rows
//! ([`crate::lines`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::points::{point_command, PointRun};
use super::{run_plan, CommandRun, CommandSweepSettings};
use crate::error::bad_input;
use crate::lines::render::{model_text, provenance};
use crate::lines::{fit_sites, trace_run, SizedLines, TracePlan};
use crate::record::pattern::Pattern;

/// One size to trace: its run (unsampled, first attempt), its data, and
/// what the kernel measured there.
struct LinePoint {
    run: CommandRun,
    data_dir: Option<PathBuf>,
    kernel: Vec<(String, u64)>,
    kernel_wall_s: f64,
}

/// The sizes a sweep traces, gathered as its kernel runs go (empty without
/// `--lines`).
pub(super) struct LinePoints {
    on: bool,
    points: Vec<LinePoint>,
}

impl LinePoints {
    /// Checks `--lines` against the sweep's settings before any run (exit 2:
    /// with `--columns` or `--point`, a non-Python command, no memray).
    pub(super) fn new(settings: &CommandSweepSettings) -> Result<LinePoints> {
        if settings.lines {
            if !settings.columns.is_empty() {
                return Err(bad_input(
                    "--lines with --columns: a line's bytes are fitted against rows at one column count; sweep columns without --lines",
                ));
            }
            if settings.point.is_some() {
                return Err(bad_input(
                    "--lines with --point: a pod runs one kernel point; trace the sweep on one machine",
                ));
            }
            crate::lines::check_ready(&settings.template)?;
        }
        Ok(LinePoints {
            on: settings.lines,
            points: Vec::new(),
        })
    }

    /// Keeps an unsampled size's first run, to trace it after the sweep.
    pub(super) fn keep(&mut self, run: &CommandRun, data_dir: Option<&Path>, point: &PointRun) {
        if !self.on || run.cap != 0 || run.attempt != 1 {
            return;
        }
        self.points.push(LinePoint {
            run: run.clone(),
            data_dir: data_dir.map(Path::to_path_buf),
            kernel: point.stage_peaks.clone(),
            kernel_wall_s: point.record.runs.first().map_or(0.0, |r| r.wall_s),
        });
    }

    /// Traces every kept size, fits each line, prints the table and writes
    /// `lines.json` into the sweep's directory.
    pub(super) fn trace(
        &self,
        settings: &CommandSweepSettings,
        pattern: &Pattern,
        (columns_ref, production_rows): (u64, u64),
        out: &Path,
    ) -> Result<()> {
        if !self.on {
            return Ok(());
        }
        let mut sized = Vec::new();
        let (mut traced_s, mut kernel_s) = (0.0, 0.0);
        let mut versions = (String::new(), String::new());
        for p in &self.points {
            let dir = out.join("lines").join(&p.run.dir);
            let plan = run_plan(
                settings,
                pattern,
                &p.run,
                (p.data_dir.as_deref(), columns_ref),
                &dir,
            );
            let (command, env) = point_command(&plan)?;
            if !settings.quiet {
                eprintln!(
                    "lines: tracing {} rows under memray (a second run)",
                    crate::units::format_count(p.run.size.rows)
                );
            }
            let traced = trace_run(&TracePlan {
                command: &command,
                env: &env,
                pattern,
                dir: &dir,
                passthrough: false,
            })?;
            traced_s += traced.traced.wall_s;
            kernel_s += p.kernel_wall_s;
            versions = (
                traced.traced.capture.memray.clone(),
                traced.traced.capture.python.clone(),
            );
            sized.push(SizedLines {
                rows: p.run.size.rows,
                stages: traced.stages,
                kernel: p.kernel.clone(),
            });
        }
        let model = fit_sites(&sized, &versions.0, &versions.1);
        let ratio = if kernel_s > 0.0 {
            traced_s / kernel_s
        } else {
            0.0
        };
        let path = out.join("lines.json");
        let json = serde_json::json!({
            "lines": model,
            "production_rows": production_rows,
            "traced_wall_s": traced_s,
            "untraced_wall_s": kernel_s,
        });
        std::fs::write(&path, serde_json::to_vec_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("\n{}", provenance(&model.memray, &model.python));
        print!("{}", model_text(&model, production_rows));
        println!(
            "tracing cost: the traced runs took {traced_s:.1} s, the same sizes untraced {kernel_s:.1} s ({ratio:.1}x)"
        );
        println!("lines: {}", path.display());
        Ok(())
    }
}
