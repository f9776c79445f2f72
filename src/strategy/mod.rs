//! Strategies: the ways of preparing ranking data that oomlab replays.
//!
//! Each strategy is a fixed list of named stages run inside a child process
//! under a [`Probe`], which brackets every stage with an exact kernel peak. The
//! list is declared up front so displays, tables and gates know the stages even
//! of a run that was killed halfway.

pub mod frame;
pub mod frame_ops;
pub mod legacy;
pub mod memory;
pub mod optimized;
pub mod output;
pub mod similarity;
pub mod streaming;

use std::path::PathBuf;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::probe::Probe;
use crate::scenario::{Scenario, Sizes, Workload};

/// Everything a child needs to run one strategy (sent as JSON on its command line).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub scenario: Scenario,
    pub scale: f64,
    pub sizes: Sizes,
    /// A strategy name, or [`GENERATE`] to build the data cache.
    pub strategy: String,
    /// `MAX_RANKING_SAMPLES`: 0 = keep every row.
    pub max_ranking_samples: u64,
    /// The cache slot holding (or to hold) the generated inputs.
    pub cache_dir: PathBuf,
    /// Route allocations through dhat and add exact heap figures to every
    /// stage (`alloc.rs`); off unless asked, since it slows the child down.
    #[serde(default)]
    pub heap_profile: bool,
    /// How `MAX_RANKING_SAMPLES` picks its rows (`uniform`, the write-up's
    /// `sample(random_state=42)`, or `capped` per dataset); jobs without it are uniform.
    #[serde(default)]
    pub sampling: crate::sampling::SamplingMode,
    /// Parquet file to write the prepared data to (`--output`).
    #[serde(default)]
    pub output: Option<PathBuf>,
    /// Hash the prepared frame (names, dtypes, values) into the report.
    #[serde(default)]
    pub hash_output: bool,
    /// Rows per chunk for chunked strategies (`streaming`); 0 = their default.
    #[serde(default)]
    pub chunk_rows: u64,
    /// `SIMILARITY_MICRO_BATCH_SIZE` / `SIMILARITY_TOP_K` of a similarity job
    /// (kept out of the scenario so they never change the data cache's key);
    /// `None`: the scenario's defaults.
    #[serde(default)]
    pub similarity: Option<similarity::Knobs>,
    /// How the child holds its frames (`--memory-mode`); jobs without it are `polars`.
    #[serde(default)]
    pub memory_mode: memory::MemoryMode,
}

/// The pseudo-strategy that generates and caches the inputs.
pub const GENERATE: &str = "generate";

/// A replayable way of preparing ranking data.
pub trait Strategy: Sync {
    /// Name used on the command line and in reports.
    fn name(&self) -> &'static str;
    /// One line on what it replays.
    fn description(&self) -> &'static str;
    /// Its stages, in order.
    fn stages(&self) -> &'static [&'static str];
    /// Runs every stage under the probe.
    fn run(&self, job: &Job, probe: &Probe) -> Result<()>;
}

/// Every strategy oomlab knows, in table order (before, then after).
pub fn all() -> &'static [&'static dyn Strategy] {
    &[
        &legacy::Legacy,
        &optimized::Optimized,
        &streaming::Streaming,
    ]
}

/// Looks a strategy up by name.
pub fn by_name(name: &str) -> Option<&'static dyn Strategy> {
    all().iter().copied().find(|s| s.name() == name)
}

/// Names of all strategies, for error messages.
pub fn names() -> Vec<&'static str> {
    all().iter().map(|s| s.name()).collect()
}

/// The strategies of a workload, in table order (before, then after): the
/// ranking-prep ones, or the similarity replays under the same names, so
/// `compare` and `run --strategy legacy` mean the same on either kind of scenario.
pub fn all_for(workload: Workload) -> &'static [&'static dyn Strategy] {
    match workload {
        Workload::RankingPrep => all(),
        Workload::Similarity => &[
            &similarity::legacy::SimilarityLegacy,
            &similarity::optimized::SimilarityOptimized,
        ],
    }
}

/// Looks a strategy of a workload up by name.
pub fn by_name_for(workload: Workload, name: &str) -> Option<&'static dyn Strategy> {
    all_for(workload).iter().copied().find(|s| s.name() == name)
}

/// Names of a workload's strategies, for error messages.
pub fn names_for(workload: Workload) -> Vec<&'static str> {
    all_for(workload).iter().map(|s| s.name()).collect()
}
