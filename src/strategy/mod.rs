//! Strategies: the ways of preparing ranking data that oomlab replays.
//!
//! Each strategy is a fixed list of named stages run inside a child process
//! under a [`Probe`], which brackets every stage with an exact kernel peak. The
//! list is declared up front so displays, tables and gates know the stages even
//! of a run that was killed halfway.

pub mod frame_ops;
pub mod legacy;
pub mod optimized;

use std::path::PathBuf;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::probe::Probe;
use crate::scenario::{Scenario, Sizes};

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
    &[&legacy::Legacy, &optimized::Optimized]
}

/// Looks a strategy up by name.
pub fn by_name(name: &str) -> Option<&'static dyn Strategy> {
    all().iter().copied().find(|s| s.name() == name)
}

/// Names of all strategies, for error messages.
pub fn names() -> Vec<&'static str> {
    all().iter().map(|s| s.name()).collect()
}
