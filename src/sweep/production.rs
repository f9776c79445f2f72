//! `sweep --production`: the production table's cases measured at scale 1,
//! where the model fitted on the sweep's scales says this machine holds
//! them, each judged against that model: the check of the extrapolation
//! itself, not only of one doubling. `oomlab model fit` judges such reports
//! the same way.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use super::{
    point, run_plan, strategy_by_name, sweep_plan, variants_fed, SweepSettings,
    EXTRAPOLATION_SLACK, STRATEGIES, WRITE_UP_CAPS,
};
use crate::error::Exit;
use crate::model::{HeldOut, Model};
use crate::progress::Progress;
use crate::report::Report;
use crate::sampling::SamplingMode;
use crate::units::format_bytes;

/// Judges every run of a production-size report (`sweep --production`)
/// against the model: checks of the extrapolation, not points of the fit.
pub fn judge_production(
    model: &Model,
    report: &Report,
    path: &Path,
    (cap, mode): (u64, SamplingMode),
) -> Result<Vec<HeldOut>> {
    let mut checks = Vec::new();
    for run in &report.runs {
        let p = point(report, run, path)?;
        for variant in variants_fed(&run.strategy, cap, mode) {
            checks.push(model.variant(variant)?.judge(&p));
        }
    }
    Ok(checks)
}

/// The `command` of the reports `sweep --production` writes: `oomlab model
/// fit` judges them against the model instead of fitting on them, as the
/// sweep does.
pub const PRODUCTION_CHECK_COMMAND: &str = "sweep --production";

/// `--production`: measures the production table's cases at scale 1, each
/// strategy only when the model fitted on the sweep's scales (plus
/// [`EXTRAPOLATION_SLACK`]) predicts it fits this machine; the rest stay
/// extrapolated and the output says why. Every measured run is judged against
/// that model: the check of the extrapolation itself, not only of one doubling.
pub(super) fn measure_production(
    args: &SweepSettings,
    cache_root: &Path,
    model: &Model,
    out: &Path,
    progress: &mut Progress,
    reports: &mut Vec<String>,
) -> Result<Vec<HeldOut>> {
    let rows = model.scenario.production.sample_rows;
    if model.scales.iter().any(|s| (s - 1.0).abs() < 1e-12) {
        return Ok(Vec::new()); // the sweep measured production size already
    }
    let usable = crate::preflight::usable_memory()?;
    let kept = model.rows_after_dropna(rows);
    let mut cases = vec![(0u64, SamplingMode::Uniform)];
    for cap in WRITE_UP_CAPS.iter().copied().filter(|c| *c < kept) {
        cases.push((cap, SamplingMode::Uniform));
        cases.push((cap, SamplingMode::Capped));
    }
    let mut checks = Vec::new();
    for (cap, mode) in cases {
        let mut strategies = Vec::new();
        let mut estimates = BTreeMap::new();
        for name in STRATEGIES {
            let Some(variant) = variants_fed(name, cap, mode).first().copied() else {
                continue;
            };
            let Ok(v) = model.variant(variant) else {
                continue; // not in this model (streaming, in pandas mode)
            };
            if cap > 0 && v.sampling.is_none() {
                continue; // ignores the cap: measured (or not) without one
            }
            let predicted = model.predict(v, rows, cap).peak_bytes;
            let estimate = crate::preflight::Estimate {
                bytes: (predicted * (1.0 + EXTRAPOLATION_SLACK)) as u64,
                source: format!(
                    "the model fitted on this sweep's scales, +{:.0}%",
                    EXTRAPOLATION_SLACK * 100.0
                ),
            };
            // Never forced: --force is for the sweep's scales, not for runs
            // the model already says this machine cannot hold.
            if crate::preflight::check(name, &estimate, usable, false).is_ok() {
                strategies.push(strategy_by_name(name)?);
                estimates.insert(name.to_string(), estimate);
            } else {
                println!(
                    "production size: {variant} with MAX_RANKING_SAMPLES={cap} is predicted to peak at {} (+{:.0}% slack), more than this machine offers ({} of {}, less {:.0}%): left extrapolated",
                    format_bytes(predicted as u64),
                    EXTRAPOLATION_SLACK * 100.0,
                    format_bytes(usable.0),
                    usable.1,
                    crate::preflight::MARGIN_SHARE * 100.0
                );
            }
        }
        if strategies.is_empty() {
            continue;
        }
        let dir = out.join("production").join(if cap == 0 {
            "no-sampling".to_string()
        } else {
            format!("{}-{cap}", mode.name())
        });
        let mut plan = sweep_plan(args, cache_root, (1.0, cap, mode), strategies, estimates)?;
        plan.force = false;
        plan.command = PRODUCTION_CHECK_COMMAND.to_string();
        let report = match run_plan(plan, &dir, progress) {
            Ok(report) => report,
            Err(e) if crate::error::exit_code_of(&e) == Exit::Refused => {
                println!("production size: {e}; left extrapolated");
                continue;
            }
            Err(e) => return Err(e),
        };
        let path = dir.join("report.json");
        checks.extend(judge_production(model, &report, &path, (cap, mode))?);
        reports.push(path.display().to_string());
    }
    Ok(checks)
}
