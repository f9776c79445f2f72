//! What a gate runs: the targets a baseline names, each measured through the
//! shared replay path (one heap-profiling run, then `runs` plain ones).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;

use super::baseline::Baseline;
use super::{measured_from_reports, require_completed, MeasuredScenario};
use crate::error::bad_input;
use crate::progress::Progress;
use crate::replay::ReplaySettings;
use crate::report::Report;
use crate::strategy;

/// How a gate measures: where the data is cached, how many plain runs, how
/// loud, and the baseline file (named in errors).
#[derive(Debug, Clone)]
pub struct MeasureSettings {
    /// The baseline file, named in error messages.
    pub baseline: PathBuf,
    /// Where generated data is cached (`None`: the default cache).
    pub cache_dir: Option<PathBuf>,
    /// Plain RSS runs per target (after one heap-profiling run).
    pub runs: u32,
    /// One line per run on stderr unless quiet.
    pub quiet: bool,
}

/// Most plain runs a gate will do per scenario.
pub const MAX_RUNS: u32 = 25;

/// What to run for one scenario entry: a baseline's entry, or what
/// `--update --scenario` names.
pub struct Target {
    /// The scenario file.
    pub path: String,
    /// Its scale.
    pub scale: f64,
    /// Its `MAX_RANKING_SAMPLES`.
    pub max_ranking_samples: u64,
    /// (strategy to run, baseline strategy to judge it against).
    pub pairs: Vec<(String, String)>,
}

/// Parses `--strategy-as RUN=BASELINE` flags.
pub fn parse_strategy_as(flags: &[String]) -> Result<BTreeMap<String, String>> {
    let mut by_baseline = BTreeMap::new();
    for flag in flags {
        let Some((run, base)) = flag.split_once('=') else {
            return Err(bad_input(format!(
                "--strategy-as {flag}: expected RUN=BASELINE, e.g. legacy=optimized"
            )));
        };
        let (run, base) = (run.trim(), base.trim());
        if strategy::by_name(run).is_none() {
            return Err(bad_input(format!(
                "--strategy-as {flag}: unknown strategy `{run}` (expected one of: {})",
                strategy::names().join(", ")
            )));
        }
        if by_baseline
            .insert(base.to_string(), run.to_string())
            .is_some()
        {
            return Err(bad_input(format!(
                "--strategy-as: baseline strategy `{base}` is mapped twice"
            )));
        }
    }
    Ok(by_baseline)
}

/// What a gate (or a plain `--update`) runs: everything the baseline names,
/// with `--strategy-as` substitutions.
pub fn baseline_targets(
    baseline: &Baseline,
    mapping: &BTreeMap<String, String>,
) -> Result<Vec<Target>> {
    for base in mapping.keys() {
        if !baseline
            .scenarios
            .iter()
            .any(|s| s.strategy(base).is_some())
        {
            return Err(bad_input(format!(
                "--strategy-as ...={base}: the baseline has no strategy `{base}` (it has: {})",
                baseline
                    .scenarios
                    .iter()
                    .flat_map(|s| s.strategies.iter().map(|t| t.name.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok(baseline
        .scenarios
        .iter()
        .map(|sc| Target {
            path: sc.path.clone(),
            scale: sc.scale,
            max_ranking_samples: sc.max_ranking_samples,
            pairs: sc
                .strategies
                .iter()
                .map(|st| {
                    let run = mapping.get(&st.name).unwrap_or(&st.name).clone();
                    (run, st.name.clone())
                })
                .collect(),
        })
        .collect())
}

/// The replay settings of a target: what the baseline names, every other
/// setting at its default.
fn replay_settings(target: &Target, how: &MeasureSettings) -> ReplaySettings {
    ReplaySettings {
        scenario: PathBuf::from(&target.path),
        scale: target.scale,
        max_ranking_samples: Some(target.max_ranking_samples),
        cache_dir: how.cache_dir.clone(),
        ..Default::default()
    }
}

/// One heap profiling run, then `--runs` plain runs, through the shared replay path.
pub fn measure(
    target: &Target,
    how: &MeasureSettings,
    progress: &mut Progress,
) -> Result<MeasuredScenario> {
    let settings = replay_settings(target, how);
    let mut strategies = Vec::new();
    for (run, base) in &target.pairs {
        strategies.push(strategy::by_name(run).ok_or_else(|| {
            bad_input(format!(
                "{}: scenario {} names strategy `{base}`, which this oomlab does not know (expected one of: {})",
                how.baseline.display(),
                target.path,
                strategy::names().join(", ")
            ))
        })?);
    }
    let mut plan = crate::replay::plan("gate", &settings, strategies)?;
    let total = how.runs + 1;
    say(
        how,
        &format!("gate: {} run 1/{total}: heap profiling (dhat)", target.path),
    );
    plan.heap_profile = true;
    let heap: Report = plan.run(progress)?;
    require_completed(&heap, "heap profiling")?;
    plan.heap_profile = false;
    let mut plain = Vec::new();
    for i in 0..how.runs {
        say(
            how,
            &format!("gate: {} run {}/{total}: RSS", target.path, i + 2),
        );
        let report = plan.run(progress)?;
        require_completed(&report, "RSS")?;
        plain.push(report);
    }
    measured_from_reports(&target.path, &heap, &plain, &target.pairs)
}

fn say(how: &MeasureSettings, line: &str) {
    if !how.quiet {
        eprintln!("{line}");
    }
}
