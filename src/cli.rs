//! Command-line interface: one subcommand per job a user brings to oomlab.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Memory profiling and OOM diagnosis for data-preparation pipelines.
#[derive(Debug, Parser)]
#[command(name = "oomlab", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay legacy and optimized ranking prep side by side and write a report.
    Compare(ReplayArgs),
    /// Replay one or more named strategies (default: all) and write a report.
    Run(RunArgs),
    /// Generate (or find cached) the scenario's data and print its content hash.
    Data(DataArgs),
    /// Re-run what a committed baseline names; exit 1 on a memory regression.
    Gate(GateArgs),
    /// Run one job in this process (internal: the parent starts it).
    #[command(name = "__child", hide = true)]
    Child {
        #[arg(long)]
        job: String,
    },
}

/// Flags shared by every command that replays a scenario.
#[derive(Debug, Args, Clone)]
pub struct ScenarioArgs {
    /// Scenario file describing the shape of production data.
    #[arg(long, default_value = crate::scenario::DEFAULT_SCENARIO)]
    pub scenario: PathBuf,
    /// Multiply row counts (samples, and pools when the scenario says so).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Where generated data is cached (default: $OOMLAB_CACHE_DIR or ~/.cache/oomlab).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Cap on ranking samples after dropna (0 = no limit); overrides $MAX_RANKING_SAMPLES.
    #[arg(long)]
    pub max_ranking_samples: Option<u64>,
    /// RSS sampling interval, e.g. 10ms, 0.5s.
    #[arg(long, default_value = "10ms")]
    pub interval: String,
    /// Report directory (default: reports/runs/<time>-<scenario>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print only the table and the report location.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Strategies to run, comma-separated, or `all`.
    #[arg(long, default_value = "all")]
    pub strategy: String,
    /// Profile the heap with dhat in the children: exact heap figures per stage
    /// (slower; RSS of such a run includes dhat's bookkeeping).
    #[arg(long)]
    pub heap_profile: bool,
    #[command(flatten)]
    pub replay: ReplayArgs,
}

/// `oomlab gate`: the CI memory-regression gate (docs/gate.md).
#[derive(Debug, Args, Clone)]
pub struct GateArgs {
    /// The committed baseline to judge against (or to write with --update).
    #[arg(long, default_value = "reports/baseline.json")]
    pub baseline: PathBuf,
    /// Bless the figures measured now into the baseline instead of judging them.
    #[arg(long)]
    pub update: bool,
    /// Plain runs per scenario whose median RSS is compared (heap: one profiled run).
    #[arg(long, default_value_t = 3)]
    pub runs: u32,
    /// Allowed rise of each heap figure (peak, bytes allocated, allocations).
    #[arg(long, default_value = "2%")]
    pub heap_tolerance: String,
    /// Allowed rise of each stage's median peak RSS.
    #[arg(long, default_value = "10%")]
    pub rss_tolerance: String,
    /// Also write the result as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Run strategy RUN and judge it against the baseline's BASELINE figures,
    /// e.g. legacy=optimized to prove the gate catches a regression. Repeatable.
    #[arg(long = "strategy-as", value_name = "RUN=BASELINE")]
    pub strategy_as: Vec<String>,
    /// With --update: the scenario to (re)bless; without it, what the baseline names.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// With --update --scenario: strategies to bless, comma-separated, or `all`.
    #[arg(long)]
    pub strategy: Option<String>,
    /// With --update --scenario: row-count factor.
    #[arg(long)]
    pub scale: Option<f64>,
    /// With --update --scenario: MAX_RANKING_SAMPLES to bless (0 = no limit).
    #[arg(long)]
    pub max_ranking_samples: Option<u64>,
    /// Where generated data is cached (default: $OOMLAB_CACHE_DIR or ~/.cache/oomlab).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Print only the table and the verdict.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args, Clone)]
pub struct DataArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
}
