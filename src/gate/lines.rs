//! `gate --lines`: a command's stages judged as always, and each size traced
//! once more under memray so a regression names the line of the command's
//! own code whose per-row cost grew, or that appeared ([`crate::lines`]).

use std::ffi::OsString;
use std::path::Path;

use anyhow::Result;

use super::command::{gate_point, CommandRunSettings, CommandSpec, MeasuredCommand};
use crate::lines::render::{provenance, site_label};
use crate::lines::{changes, fit_sites, trace_run, LineChange, LinesModel, SizedLines, TracePlan};
use crate::progress::Progress;
use crate::record::pattern::Pattern;
use crate::sweep::command::{generate_data, needs_data, point_command};
use crate::units::format_count;

/// Traces `template` once at every size of `spec` and fits its lines; the
/// kernel figures beside them are `measured`'s medians (the untraced runs).
pub fn trace_command(
    spec: &CommandSpec,
    (label, template): (&str, &[OsString]),
    how: &CommandRunSettings,
    measured: &MeasuredCommand,
    progress: &mut Progress,
) -> Result<LinesModel> {
    let pattern = Pattern::from_flag(&spec.stage_pattern)?;
    let mut sized = Vec::new();
    let mut versions = (String::new(), String::new());
    for (si, size) in spec.sizes.iter().enumerate() {
        let data_dir = match (&spec.scenario, needs_data(template, spec.generate_data)) {
            (Some(scenario), true) => Some(generate_data(
                scenario,
                how.cache_dir.as_deref(),
                (size.scale, None),
                how.force,
                progress,
            )?),
            _ => None,
        };
        let dir = how.out.join(format!("{label}-lines-rows-{}", size.rows));
        let plan = gate_point(template, *size, data_dir.as_deref(), &pattern, dir.clone());
        let (command, env) = point_command(&plan)?;
        if !how.quiet {
            eprintln!(
                "gate: {label} lines: {} rows under memray (a second, traced run)",
                format_count(size.rows)
            );
        }
        let traced = trace_run(&TracePlan {
            command: &command,
            env: &env,
            pattern: &pattern,
            dir: Path::new(&dir),
            passthrough: false,
        })?;
        versions = (
            traced.traced.capture.memray.clone(),
            traced.traced.capture.python.clone(),
        );
        let kernel = measured
            .stages
            .iter()
            .filter_map(|s| s.medians().get(si).map(|p| (s.name.clone(), *p)))
            .collect();
        sized.push(SizedLines {
            rows: size.rows,
            stages: traced.stages,
            kernel,
        });
    }
    Ok(fit_sites(&sized, &versions.0, &versions.1))
}

/// The gate's verdict on the lines: each line whose per-row cost grew by
/// more than `tolerance_pct` or that appeared, against the blessed lines
/// ([`changes`]), and the notes that say where the figures come from (when
/// no lines were blessed: each stage's costliest line now, and nothing fails).
pub fn judge_lines(
    blessed: Option<&LinesModel>,
    now: &LinesModel,
    tolerance_pct: f64,
    production_rows: u64,
) -> (Vec<String>, Vec<LineChange>) {
    let mut notes = vec![provenance(&now.memray, &now.python)];
    let Some(base) = blessed else {
        notes.push(
            "lines: the baseline has no lines for this command (bless them with `gate --update --lines -- CMD`); each stage's costliest line now:".into(),
        );
        for stage in &now.stages {
            if let Some(top) = stage
                .sites
                .iter()
                .find(|s| !s.site.file.is_empty() && s.bytes_per_row >= 1.0)
            {
                notes.push(format!(
                    "lines: {}: {} {} B/row",
                    stage.stage,
                    site_label(&top.site),
                    format_count(top.bytes_per_row.round() as u64)
                ));
            }
        }
        return (notes, Vec::new());
    };
    let found = changes(base, now, tolerance_pct, production_rows);
    if found.is_empty() {
        notes.push(format!(
            "lines: no line held at every size grew by more than {}% of its per-row cost and none appeared",
            tolerance_pct.max(crate::lines::sites::LINE_NOISE_SHARE * 100.0)
        ));
    }
    (notes, found)
}
