//! Orchestrates a replay: data, then each strategy in its own child, then a report.
//!
//! This is the one code path every measuring command goes through (`compare`,
//! `run`, and the sweeps and gates built on them), so a figure means the same
//! thing wherever it appears.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::child::ALLOCATOR;
use crate::data::DataCache;
use crate::error::{bad_input, exit_with, Exit};
use crate::machine::MachineFacts;
use crate::progress::Progress;
use crate::report::{utc_now_rfc3339, Report, RunStatus, ScenarioInfo, Settings, SCHEMA_VERSION};
use crate::runner::{run_child, ChildSpec, RunOptions};
use crate::scenario::LoadedScenario;
use crate::strategy::{self, Job, Strategy, GENERATE};

/// Where `MAX_RANKING_SAMPLES` is read from when no flag is given.
pub const MAX_RANKING_SAMPLES_ENV: &str = "MAX_RANKING_SAMPLES";

/// What to replay and how.
pub struct ReplayPlan {
    pub command: String,
    pub scenario: LoadedScenario,
    pub scale: f64,
    pub strategies: Vec<&'static dyn Strategy>,
    pub max_ranking_samples: u64,
    pub max_ranking_samples_source: String,
    pub interval: Duration,
    pub cache_root: PathBuf,
    /// Run the children with dhat heap profiling (exact heap figures per
    /// stage; slower, and its bookkeeping adds to RSS).
    pub heap_profile: bool,
}

/// Resolves `MAX_RANKING_SAMPLES`: the flag wins over the environment; 0 = no limit.
pub fn resolve_max_ranking_samples(flag: Option<u64>) -> Result<(u64, String)> {
    if let Some(v) = flag {
        return Ok((v, "flag".into()));
    }
    match std::env::var(MAX_RANKING_SAMPLES_ENV) {
        Ok(text) if !text.trim().is_empty() => {
            let v = text.trim().replace('_', "").parse::<u64>().map_err(|_| {
                bad_input(format!(
                    "environment variable {MAX_RANKING_SAMPLES_ENV}={text:?}: expected a non-negative whole number of rows (0 = no limit)"
                ))
            })?;
            Ok((v, "env".into()))
        }
        _ => Ok((0, "default".into())),
    }
}

/// Parses a comma-separated strategy list (or `all`).
pub fn parse_strategies(list: &str) -> Result<Vec<&'static dyn Strategy>> {
    if list.trim() == "all" {
        return Ok(strategy::all().to_vec());
    }
    list.split(',')
        .map(|name| {
            strategy::by_name(name.trim()).ok_or_else(|| {
                bad_input(format!(
                    "unknown strategy `{}` (expected one of: {}, or all)",
                    name.trim(),
                    strategy::names().join(", ")
                ))
            })
        })
        .collect()
}

impl ReplayPlan {
    fn job(&self, strategy: &str, cache: &DataCache) -> Job {
        Job {
            scenario: self.scenario.scenario.clone(),
            scale: self.scale,
            sizes: self.scenario.scenario.sizes(self.scale),
            strategy: strategy.to_string(),
            max_ranking_samples: self.max_ranking_samples,
            cache_dir: cache.dir.clone(),
            heap_profile: self.heap_profile && strategy != GENERATE,
        }
    }

    fn spec(&self, name: &str, cache: &DataCache) -> Result<ChildSpec> {
        let job = serde_json::to_string(&self.job(name, cache))?;
        ChildSpec::oomlab_child(name, job)
    }

    /// Runs the plan: generates data if the cache lacks it, then every strategy.
    pub fn run(&self, progress: &mut Progress) -> Result<Report> {
        let scenario = &self.scenario.scenario;
        let sizes = scenario.sizes(self.scale);
        let cache = DataCache::locate(&self.cache_root, scenario, &sizes);
        let options = RunOptions {
            interval: self.interval,
        };
        let mut data_generation = None;
        if cache.meta().is_none() {
            let record = run_child(&self.spec(GENERATE, &cache)?, options, progress)?;
            if record.status != RunStatus::Completed {
                return Err(exit_with(
                    Exit::ChildFailed,
                    format!(
                        "generating the data of scenario `{}` failed: {:?}\n{}",
                        scenario.name,
                        record.status,
                        record.stderr_tail.join("\n")
                    ),
                ));
            }
            data_generation = Some(record);
        }
        let meta = cache
            .meta()
            .with_context(|| format!("no data in cache {}", cache.dir.display()))?;
        let mut runs = Vec::new();
        for strategy in &self.strategies {
            runs.push(run_child(
                &self.spec(strategy.name(), &cache)?,
                options,
                progress,
            )?);
        }
        Ok(Report {
            schema_version: SCHEMA_VERSION,
            oomlab_version: env!("CARGO_PKG_VERSION").to_string(),
            command: self.command.clone(),
            created_at: utc_now_rfc3339(),
            scenario: ScenarioInfo {
                name: scenario.name.clone(),
                path: self.scenario.path.display().to_string(),
                description: scenario.description.clone(),
                seed: scenario.seed,
                scale: self.scale,
                scaled: sizes,
                production: scenario.production_sizes(),
                data_hash: meta.data_hash,
            },
            settings: Settings {
                max_ranking_samples: self.max_ranking_samples,
                max_ranking_samples_source: self.max_ranking_samples_source.clone(),
                interval_ms: self.interval.as_secs_f64() * 1e3,
            },
            machine: MachineFacts::collect(),
            allocator: if self.heap_profile {
                format!("{ALLOCATOR}, behind dhat heap profiling")
            } else {
                ALLOCATOR.to_string()
            },
            data_generation,
            runs,
        })
    }
}
