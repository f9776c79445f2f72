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
use crate::report::{
    utc_now_rfc3339, Interruption, Report, RunStatus, ScenarioInfo, Settings, SCHEMA_VERSION,
};
use crate::runner::{run_child, ChildSpec, RunOptions};
use crate::scenario::{LoadedScenario, Workload};
use crate::strategy::{self, Job, Strategy, GENERATE};

/// What a replay is asked for, typed once: the command line fills it from
/// its flags, and the library's own callers (sweeps, gates, fidelity) start
/// from [`Default`], which holds the same defaults as the flags, instead of
/// building an argv and parsing it again.
#[derive(Debug, Clone)]
pub struct ReplaySettings {
    /// The scenario file.
    pub scenario: PathBuf,
    /// Multiplies the scenario's row counts.
    pub scale: f64,
    /// Where generated data is cached (`None`: `$OOMLAB_CACHE_DIR` or `~/.cache/oomlab`).
    pub cache_dir: Option<PathBuf>,
    /// `MAX_RANKING_SAMPLES` from a flag (`None`: the environment, else no cap).
    pub max_ranking_samples: Option<u64>,
    /// RSS sampling interval.
    pub interval: Duration,
    /// How a cap picks rows.
    pub sampling: crate::settings::SamplingMode,
    /// How the children hold their frames.
    pub memory_mode: crate::settings::MemoryMode,
    /// What happens to the prepared data.
    pub output: crate::settings::OutputSettings,
    /// Start children even when preflight predicts they will not fit.
    pub force: bool,
    /// `SIMILARITY_MICRO_BATCH_SIZE` from a flag.
    pub similarity_micro_batch_size: Option<u64>,
    /// `SIMILARITY_TOP_K` from a flag.
    pub similarity_top_k: Option<u64>,
}

impl Default for ReplaySettings {
    fn default() -> Self {
        ReplaySettings {
            scenario: PathBuf::from(crate::scenario::DEFAULT_SCENARIO),
            scale: 1.0,
            cache_dir: None,
            max_ranking_samples: None,
            interval: DEFAULT_INTERVAL,
            sampling: Default::default(),
            memory_mode: Default::default(),
            output: crate::settings::OutputSettings {
                chunk_rows: crate::strategy::streaming::DEFAULT_CHUNK_ROWS,
                ..Default::default()
            },
            force: false,
            similarity_micro_batch_size: None,
            similarity_top_k: None,
        }
    }
}

/// The RSS sampling interval when none is asked for: fine enough to see a
/// stage's shape, coarse enough to cost little (exact peaks come from the
/// kernel whatever the interval).
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(10);

/// The plan a command's settings ask for: the scenario loaded and its scale
/// checked, `MAX_RANKING_SAMPLES` resolved (flag, then environment), the
/// strategies the memory mode can replay, and the similarity knobs resolved.
pub fn plan(
    command: &str,
    settings: &ReplaySettings,
    strategies: Vec<&'static dyn Strategy>,
) -> Result<ReplayPlan> {
    let scenario = crate::scenario::Scenario::load(&settings.scenario)?;
    let scale = crate::scenario::validate_scale(settings.scale)?;
    let cache_root = settings
        .cache_dir
        .clone()
        .unwrap_or_else(crate::data::cache::default_cache_root);
    let (max_ranking_samples, source) =
        crate::settings::resolve_max_ranking_samples(settings.max_ranking_samples)?;
    let memory_mode = settings.memory_mode;
    crate::strategy::memory::check_workload(memory_mode, scenario.scenario.workload())?;
    let strategies = crate::strategy::memory::replayable(memory_mode, strategies)?;
    let similarity = crate::strategy::similarity::resolve_knobs(
        scenario.scenario.similarity.as_ref(),
        settings.similarity_micro_batch_size,
        settings.similarity_top_k,
    )?;
    Ok(ReplayPlan {
        command: command.to_string(),
        scenario,
        scale,
        strategies,
        max_ranking_samples,
        max_ranking_samples_source: source,
        interval: settings.interval,
        cache_root,
        heap_profile: false,
        force: settings.force,
        sampling: settings.sampling,
        output: settings.output.clone(),
        similarity,
        estimates: Default::default(),
        journal_dir: None,
        memory_mode,
    })
}

/// What to replay and how.
pub struct ReplayPlan {
    pub command: String,
    pub scenario: LoadedScenario,
    pub scale: f64,
    pub strategies: Vec<&'static dyn Strategy>,
    pub max_ranking_samples: u64,
    pub max_ranking_samples_source: crate::settings::SettingSource,
    pub interval: Duration,
    pub cache_root: PathBuf,
    /// Run the children with dhat heap profiling (exact heap figures per
    /// stage; slower, and its bookkeeping adds to RSS).
    pub heap_profile: bool,
    /// How `MAX_RANKING_SAMPLES` picks rows in the `optimized` child (uniform
    /// as the pipeline does, or capped per dataset); recorded in the sample stage.
    pub sampling: crate::sampling::SamplingMode,
    /// Start children even when preflight predicts they will not fit (`--force`).
    pub force: bool,
    /// Output sink, hashing and chunking of the prepared data.
    pub output: crate::settings::OutputSettings,
    /// `SIMILARITY_MICRO_BATCH_SIZE` / `SIMILARITY_TOP_K` and their sources
    /// (similarity scenarios; `None`: the scenario's defaults, or ranking prep).
    pub similarity: Option<crate::strategy::similarity::ResolvedKnobs>,
    /// Peaks the caller predicted per strategy (a sweep extrapolating its own
    /// smaller scales): preflight trusts them over the saved model and the
    /// conservative estimate, which can be several times too high for a
    /// scale the sweep has nearly measured already.
    pub estimates: std::collections::BTreeMap<String, crate::preflight::Estimate>,
    /// The report directory, when the command writes one: every child's
    /// samples are streamed there as they are taken (`samples.<run>.jsonl`),
    /// so they survive even a SIGKILL of oomlab.
    pub journal_dir: Option<PathBuf>,
    /// How the children hold their frames (`--memory-mode`), named in the report.
    pub memory_mode: crate::strategy::memory::MemoryMode,
}

/// Parses a comma-separated strategy list (or `all`).
pub fn parse_strategies(list: &str) -> Result<Vec<&'static dyn Strategy>> {
    parse_strategies_for(Workload::RankingPrep, list)
}

/// Parses a comma-separated strategy list (or `all`) of a workload's strategies.
pub fn parse_strategies_for(workload: Workload, list: &str) -> Result<Vec<&'static dyn Strategy>> {
    if list.trim() == "all" {
        return Ok(strategy::all_for(workload).to_vec());
    }
    list.split(',')
        .map(|name| {
            strategy::by_name_for(workload, name.trim()).ok_or_else(|| {
                bad_input(format!(
                    "unknown strategy `{}` (expected one of: {}, or all)",
                    name.trim(),
                    strategy::names_for(workload).join(", ")
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
            sampling: self.sampling,
            output: self.output.path.as_ref().map(|p| {
                if self.strategies.len() > 1 {
                    let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned());
                    p.with_file_name(format!("{}.{strategy}.parquet", stem.unwrap_or_default()))
                } else {
                    p.clone()
                }
            }),
            hash_output: self.output.hash_output,
            chunk_rows: self.output.chunk_rows,
            similarity: self.similarity.as_ref().map(|r| r.knobs),
            memory_mode: self.memory_mode,
        }
    }

    /// Refuses (exit 3) to start `strategy` when its predicted peak exceeds what
    /// the machine offers, unless `--force`, or a memory limit low enough to
    /// kill it first, was given.
    fn preflight(&self, strategy: &str, limit: Option<u64>) -> Result<()> {
        let usable = crate::preflight::usable_memory()?;
        if self.force || limit.is_some_and(|l| l < usable.0) {
            return Ok(());
        }
        let scenario = &self.scenario.scenario;
        let sizes = scenario.sizes(self.scale);
        let estimate = self
            .estimates
            .get(strategy)
            .cloned()
            .or_else(|| {
                crate::preflight::from_model(
                    scenario,
                    &sizes,
                    strategy,
                    self.max_ranking_samples,
                    self.sampling,
                )
            })
            .unwrap_or_else(|| {
                crate::preflight::conservative(
                    scenario,
                    &sizes,
                    strategy,
                    self.max_ranking_samples,
                    self.similarity.as_ref().map(|r| r.knobs),
                )
            });
        crate::preflight::check(strategy, &estimate, usable, false)
    }

    fn spec(&self, name: &str, cache: &DataCache) -> Result<ChildSpec> {
        let job = serde_json::to_string(&self.job(name, cache))?;
        ChildSpec::oomlab_child(name, job)
    }

    /// Runs the plan: generates data if the cache lacks it, then every strategy.
    pub fn run(&self, progress: &mut Progress) -> Result<Report> {
        self.run_limited(progress, None)
    }

    /// Checks every strategy of the plan against the machine (exit 3 when one
    /// would not fit), as [`ReplayPlan::run_limited`] does before it starts
    /// anything; commands that run several plans check them all first.
    pub fn preflight_all(&self, memory_limit: Option<u64>) -> Result<()> {
        for strategy in &self.strategies {
            self.preflight(strategy.name(), memory_limit)?;
        }
        Ok(())
    }

    /// Runs the plan with every strategy's child under `memory_limit`
    /// (`--memory-limit`; data generation runs without it).
    ///
    /// Interrupted (Ctrl-C, SIGTERM; see `interrupt`), it stops the running
    /// child and starts no other: the report holds the runs so far, the
    /// stopped one marked interrupted, and says which never started.
    pub fn run_limited(
        &self,
        progress: &mut Progress,
        memory_limit: Option<crate::runner::limit::MemoryLimit>,
    ) -> Result<Report> {
        let scenario = &self.scenario.scenario;
        let sizes = scenario.sizes(self.scale);
        let cache = DataCache::locate(&self.cache_root, scenario, &sizes);
        let options = RunOptions {
            interval: self.interval,
            memory_limit: None,
            journal_dir: self.journal_dir.clone(),
        };
        if let Some(signal) = crate::interrupt::received() {
            return Err(exit_with(
                Exit::for_signal(signal),
                format!(
                    "interrupted ({}) before scenario `{}` started; nothing was measured",
                    crate::interrupt::signal_name(signal),
                    scenario.name
                ),
            ));
        }
        let workload = scenario.workload();
        if let Some(s) = self
            .strategies
            .iter()
            .find(|s| strategy::by_name_for(workload, s.name()).is_none())
        {
            return Err(bad_input(format!(
                "strategy `{}` does not apply to scenario `{}` (expected one of: {})",
                s.name(),
                scenario.name,
                strategy::names_for(workload).join(", ")
            )));
        }
        // Every strategy is checked before anything runs, generation included.
        self.preflight_all(memory_limit.map(|l| l.bytes))?;
        let mut data_generation = None;
        if cache.meta().is_none() {
            self.preflight(GENERATE, None)?;
            let record = run_child(&self.spec(GENERATE, &cache)?, options.clone(), progress)?;
            if let RunStatus::Interrupted { signal, .. } = record.status {
                return Err(exit_with(
                    Exit::for_signal(signal),
                    format!(
                        "interrupted ({}) while generating the data of scenario `{}`; nothing was measured",
                        crate::interrupt::signal_name(signal),
                        scenario.name
                    ),
                ));
            }
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
        let mut not_run = Vec::new();
        for strategy in &self.strategies {
            if crate::interrupt::received().is_some() {
                not_run.push(strategy.name().to_string());
                continue;
            }
            runs.push(run_child(
                &self.spec(strategy.name(), &cache)?,
                RunOptions {
                    memory_limit,
                    ..options.clone()
                },
                progress,
            )?);
        }
        let interrupted = crate::interrupt::received().map(|signal| Interruption {
            signal,
            signal_name: crate::interrupt::signal_name(signal),
            not_run,
        });
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
                max_ranking_samples_source: self.max_ranking_samples_source,
                interval_ms: self.interval.as_secs_f64() * 1e3,
                similarity_micro_batch_size: self
                    .similarity
                    .as_ref()
                    .map(|r| r.knobs.micro_batch_size),
                similarity_micro_batch_size_source: self
                    .similarity
                    .as_ref()
                    .map(|r| r.micro_batch_size_source),
                similarity_top_k: self.similarity.as_ref().map(|r| r.knobs.top_k),
                similarity_top_k_source: self.similarity.as_ref().map(|r| r.top_k_source),
                memory_mode: self.memory_mode,
                sampling: Some(self.sampling),
                chunk_rows: Some(self.output.chunk_rows),
                command_point: None,
            },
            machine: MachineFacts::collect(),
            allocator: if self.heap_profile {
                format!("{ALLOCATOR}, behind dhat heap profiling")
            } else {
                ALLOCATOR.to_string()
            },
            data_generation,
            floor_bytes: Report::floor_from_runs(&runs),
            runs,
            interrupted,
        })
    }
}
