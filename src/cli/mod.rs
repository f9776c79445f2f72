//! Command-line interface: one subcommand per job a user brings to oomlab.
//! The flags parse themselves (`values`): a command gets a `Duration`, a
//! byte count or a list, never the text.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

mod values;

use oomlab::settings::{MemoryMode, OutputSettings, SamplingMode};
pub use values::List;
use values::{list, parse_budget, parse_interval, parse_stats_interval, percent, size};

/// Memory profiling and OOM diagnosis for data-preparation pipelines.
#[derive(Debug, Parser)]
#[command(name = "oomlab", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// One subcommand per job a user brings to oomlab. Parsed once per process,
/// so the size of its largest variant (`sweep`'s many flags) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay legacy and optimized ranking prep side by side and write a report.
    Compare(ReplayArgs),
    /// Replay one or more named strategies (default: all) and write a report.
    Run(RunArgs),
    /// Generate (or find cached) the scenario's data and print its content hash.
    Data(DataArgs),
    /// Re-draw the pictures (timeline, peaks) of a saved report.json.
    Plot(PlotArgs),
    /// Make the self-contained report.html of a saved report.json, model.json, postmortem.json or gate result.
    Html(HtmlArgs),
    /// Re-run what a committed baseline names; exit 1 on a memory regression.
    Gate(GateArgs),
    /// Measure every strategy (or your own command, after `--`) at several sizes, fit the memory model, save model.json.
    Sweep(SweepArgs),
    /// The largest MAX_RANKING_SAMPLES whose predicted peak fits a memory budget.
    Recommend(RecommendArgs),
    /// Pre-deploy capacity check: exit 0 when the planned settings fit, 1 when not.
    Check(CheckArgs),
    /// Run any command, follow its process tree's memory, and write the same report as a replay.
    Record(RecordArgs),
    /// Read a killed pipeline's logs (and docker stats) and write postmortem.md/.json.
    Postmortem(PostmortemArgs),
    /// Run the pandas reference and the replay at the same scales; fit both, report the ratios.
    Fidelity(FidelityArgs),
    /// List the scenarios, models and pandas reference built into oomlab; print one, or write them all out.
    Scenarios(ScenariosArgs),
    /// The memory model from saved reports: `oomlab model fit REPORT... | DIR...`.
    Model(ModelCommand),
    /// Run one job in this process (internal: the parent starts it).
    #[command(name = "__child", hide = true)]
    Child {
        #[arg(long)]
        job: String,
    },
}

/// `oomlab model ...`: the memory model, apart from measuring.
#[derive(Debug, Args, Clone)]
pub struct ModelCommand {
    #[command(subcommand)]
    pub action: ModelAction,
}

/// What `oomlab model` does.
#[derive(Debug, Subcommand, Clone)]
pub enum ModelAction {
    /// Fit model.json from report.json files (replay runs, `record` runs,
    /// command-sweep points, from any machine), as `sweep` fits it.
    Fit(ModelFitArgs),
}

/// `oomlab model fit REPORT... | DIR... | NAME=DIR...`.
#[derive(Debug, Args, Clone)]
pub struct ModelFitArgs {
    /// report.json files, or directories searched for them; NAME=DIR names
    /// a command's reports apart from another's (each name its own variant).
    #[arg(required = true, value_name = "REPORT|DIR|NAME=DIR")]
    pub inputs: Vec<String>,
    /// Output directory (default: reports/runs/<time>-model-fit-<scenario>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also save the model here (e.g. reports/model.json, which `recommend` and `check` read).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Replay reports: the scenario file, when the path the reports name is
    /// not readable here. Recorded runs: the scenario whose production rows
    /// the model extrapolates to (default: production).
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// The data cache the model names for coverage figures (default: $OOMLAB_CACHE_DIR or ~/.cache/oomlab).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
}

/// `oomlab scenarios [show NAME | write DIR]`.
#[derive(Debug, Args, Clone)]
pub struct ScenariosArgs {
    /// `show` prints one bundled file; `write` writes every scenario and the
    /// pandas reference into a directory.
    #[arg(value_parser = ["show", "write"])]
    pub action: Option<String>,
    /// `show`: a scenario (`production`) or a reference file
    /// (`pandas/ranking_prep.py`); `write`: the directory.
    pub name: Option<String>,
}

/// Flags shared by every command that replays a scenario.
#[derive(Debug, Args, Clone)]
pub struct ScenarioArgs {
    /// Scenario file describing the shape of production data.
    #[arg(long, default_value = oomlab::scenario::DEFAULT_SCENARIO)]
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
    #[arg(long, default_value = "10ms", value_parser = parse_interval)]
    pub interval: Duration,
    /// Report directory (default: reports/runs/<time>-<scenario>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print only the table and the report location.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub limit: LimitArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Start children even when preflight predicts they will not fit in this
    /// machine's available memory (exit 3 otherwise).
    #[arg(long)]
    pub force: bool,
    /// How MAX_RANKING_SAMPLES picks rows: `uniform` (the pipeline's
    /// `sample(n, random_state=42)`) or `capped` (at most the same number per
    /// dataset, which keeps the long tail).
    #[arg(long, value_enum, default_value_t = SamplingMode::Uniform)]
    pub sampling: SamplingMode,
    /// How the replay holds its frames: `polars`, or `pandas` (object columns
    /// as 8-byte handles, pandas' merge/copy/astype allocations) so that
    /// figures track a pandas process's bytes per row.
    #[arg(long, value_enum, default_value_t = MemoryMode::Polars)]
    pub memory_mode: MemoryMode,
    /// Similarity scenarios: items per micro-batch; overrides $SIMILARITY_MICRO_BATCH_SIZE.
    #[arg(long)]
    pub similarity_micro_batch_size: Option<u64>,
    /// Similarity scenarios: neighbours kept per item; overrides $SIMILARITY_TOP_K.
    #[arg(long)]
    pub similarity_top_k: Option<u64>,
}

impl ReplayArgs {
    /// The typed settings these flags ask for (exit 2 on a bad interval).
    pub fn settings(&self) -> anyhow::Result<oomlab::replay::ReplaySettings> {
        Ok(oomlab::replay::ReplaySettings {
            scenario: self.scenario.scenario.clone(),
            scale: self.scenario.scale,
            cache_dir: self.scenario.cache_dir.clone(),
            max_ranking_samples: self.max_ranking_samples,
            interval: self.interval,
            sampling: self.sampling,
            memory_mode: self.memory_mode,
            output: self.output.settings(),
            force: self.force,
            similarity_micro_batch_size: self.similarity_micro_batch_size,
            similarity_top_k: self.similarity_top_k,
        })
    }
}

/// What happens to the prepared data.
#[derive(Debug, Args, Clone, Default)]
pub struct OutputArgs {
    /// Write the prepared data to this Parquet file (with several strategies,
    /// the strategy's name is added before the extension).
    #[arg(long = "output")]
    pub path: Option<PathBuf>,
    /// Hash the prepared frame (names, dtypes, values) into the report.
    #[arg(long)]
    pub hash_output: bool,
    /// Rows per chunk for the `streaming` strategy.
    #[arg(long, default_value_t = oomlab::strategy::streaming::DEFAULT_CHUNK_ROWS)]
    pub chunk_rows: u64,
}

impl OutputArgs {
    /// The settings a replay plan carries to its children.
    pub fn settings(&self) -> OutputSettings {
        OutputSettings {
            path: self.path.clone(),
            hash_output: self.hash_output,
            chunk_rows: self.chunk_rows,
        }
    }
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
    #[arg(long, default_value = "2%", value_name = "HEAP_TOLERANCE", value_parser = percent("--heap-tolerance"))]
    pub heap_tolerance: f64,
    /// Allowed rise of each stage's median peak RSS.
    #[arg(long, default_value = "10%", value_name = "RSS_TOLERANCE", value_parser = percent("--rss-tolerance"))]
    pub rss_tolerance: f64,
    /// Also write the result as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Run strategy RUN and judge it against the baseline's BASELINE figures,
    /// e.g. legacy=optimized to prove the gate catches a regression. Repeatable.
    #[arg(long = "strategy-as", value_name = "RUN=BASELINE")]
    pub strategy_as: Vec<String>,
    /// With --update: the scenario to (re)bless; without it, what the baseline names.
    /// With `-- CMD`: the scenario whose data `{data_dir}` names and whose
    /// production rows price the per-row cost.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// With `-- CMD`: rows to run the command at, comma-separated (default
    /// 25000,50000,100000; at least two, the slope is taken between them).
    #[arg(long, conflicts_with = "scales", value_name = "ROWS", value_parser = list(oomlab::sweep::command::parse_rows))]
    pub rows: Option<List<u64>>,
    /// With `-- CMD`: scales of --scenario to run the command at, comma-separated.
    #[arg(long, value_name = "SCALES", value_parser = list(oomlab::sweep::parse_scales))]
    pub scales: Option<List<f64>>,
    /// With `-- CMD`: the lines that start stages (as `record --stage-pattern`).
    #[arg(long, value_name = "REGEX")]
    pub stage_pattern: Option<String>,
    /// With `-- CMD`: generate the scenario's data even when no argument names
    /// {data_dir} (for a command that reads $OOMLAB_DATA_DIR).
    #[arg(long)]
    pub generate_data: bool,
    /// Allowed rise of each command stage's per-row cost (slope between sizes).
    #[arg(long, default_value = "5%", value_name = "SLOPE_TOLERANCE", value_parser = percent("--slope-tolerance"))]
    pub slope_tolerance: f64,
    /// Rows production loads: a command stage's per-row change is priced
    /// there (default: the entry's, else the scenario's production rows).
    #[arg(long)]
    pub production_rows: Option<u64>,
    /// Judge `-- CMD` in the working tree against the same command at git
    /// revision REV, checked out in a temporary worktree and run in this job,
    /// interleaved (no baseline file).
    #[arg(long, value_name = "REV")]
    pub against: Option<String>,
    /// With `-- CMD` or a baseline's command entries (Python): also run each
    /// size once under memray and name the lines of the command's own code
    /// whose per-row cost grew or appeared (with --update: bless them)
    /// (docs/lines.md).
    #[arg(long)]
    pub lines: bool,
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
    /// A command to gate, after `--` (alone: judge only its entry in the
    /// baseline; with --update: bless it into the baseline; with --against:
    /// compare it with REV's). Its arguments may
    /// name {rows}, {scale}, {data_dir} and {max_ranking_samples}.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args, Clone)]
pub struct DataArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Generate even when preflight predicts it will not fit (exit 3 otherwise).
    #[arg(long)]
    pub force: bool,
}

/// `oomlab plot`: pictures of a saved report, without re-running anything.
#[derive(Debug, Args, Clone)]
pub struct PlotArgs {
    /// The report to draw (report.json of any oomlab command, from any
    /// machine, or a fidelity.json).
    pub report: PathBuf,
    /// Directory for the pictures (default: the report's directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A memory budget to draw as a line, e.g. 64GiB, 150GB.
    #[arg(long, value_name = "BUDGET", value_parser = size("--budget"))]
    pub budget: Option<u64>,
}

/// `oomlab html`: the page of a saved document, without re-running anything.
#[derive(Debug, Args, Clone)]
pub struct HtmlArgs {
    /// The document: a report.json (of any command), a model.json, a
    /// postmortem.json, or a gate result (`gate --json`).
    pub file: PathBuf,
    /// Where to write the page (default: beside FILE, as .html).
    #[arg(short = 'o', long = "out", value_name = "OUT")]
    pub out: Option<PathBuf>,
    /// A model's headroom grid is judged against this budget, e.g. 64GiB
    /// (default: the write-up's 150 GB production limit).
    #[arg(long, value_name = "BUDGET", value_parser = size("--budget"))]
    pub budget: Option<u64>,
}

/// `oomlab sweep`: measure at several scales, fit, hold out, save the model.
/// With `-- CMD ARGS...`, the command is measured instead of the replay: its
/// arguments may name `{rows}`, `{scale}`, `{data_dir}`,
/// `{max_ranking_samples}` and `{columns}`, also exported as OOMLAB_ROWS,
/// OOMLAB_SCALE, OOMLAB_DATA_DIR, MAX_RANKING_SAMPLES and OOMLAB_COLUMNS.
#[derive(Debug, Args, Clone)]
pub struct SweepArgs {
    /// Scenario file describing the shape of production data.
    #[arg(long, default_value = "scenarios/production.toml")]
    pub scenario: PathBuf,
    /// Scales to measure, comma-separated (at least 3; the largest is held out).
    #[arg(long, default_value = "0.01,0.02,0.04,0.08")]
    pub scales: String,
    /// Command sweeps: rows to run the command at, comma-separated (instead of --scales).
    #[arg(long, conflicts_with = "scales")]
    pub rows: Option<String>,
    /// Numeric profile column counts to measure at each size, comma-separated
    /// (at least 3): the data is generated that wide and the model gets a
    /// column term; the largest count is held out with the largest size.
    #[arg(long, value_name = "COLUMNS", value_parser = list(oomlab::sweep::parse_columns))]
    pub columns: Option<List<u64>>,
    /// Similarity command sweeps: item counts to run the command at,
    /// comma-separated (at least 3; the largest is held out): {items},
    /// $OOMLAB_ITEMS, and the data of a similarity --scenario for {data_dir}.
    #[arg(long, value_name = "ITEMS", conflicts_with_all = ["rows", "columns"], value_parser = list(|t| oomlab::sweep::command::similarity::parse_counts("--items", t)))]
    pub items: Option<List<u64>>,
    /// Similarity command sweeps: SIMILARITY_MICRO_BATCH_SIZE values
    /// ({batch_size}), comma-separated; the first is the base the other knob varies around.
    #[arg(long, value_name = "SIZES", requires = "items", value_parser = list(|t| oomlab::sweep::command::similarity::parse_counts("--batch-sizes", t)))]
    pub batch_sizes: Option<List<u64>>,
    /// Similarity command sweeps: SIMILARITY_TOP_K values ({top_k}),
    /// comma-separated; the first is the base.
    #[arg(long = "top-k", value_name = "KS", requires = "items", value_parser = list(|t| oomlab::sweep::command::similarity::parse_counts("--top-k", t)))]
    pub top_k: Option<List<u64>>,
    /// MAX_RANKING_SAMPLES of the sampled runs, as fractions of the rows loaded
    /// at each scale, comma-separated (`none`: no sampled runs). Default:
    /// 0.25,0.6 for the replay; none for a command.
    #[arg(long)]
    pub max_ranking_samples_fraction: Option<String>,
    /// Command sweeps: runs per point; each figure is their median.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Pick the sizes (a command's rows, or the replay's scales) within this
    /// much wall time (`2m`, `90s`) instead of --rows/--scales: one small
    /// size, then the largest sizes whose runs fit in what is left, then
    /// repeats where they narrow the 95% interval at the production rows;
    /// stop at ±5% or when the time is spent. Generating data is not counted
    /// (cached per size, reported apart) (docs/command-sweep.md).
    #[arg(long, value_name = "DURATION", value_parser = parse_budget, conflicts_with_all = ["rows", "scales", "repeat"])]
    pub budget: Option<Duration>,
    /// With --budget: the rows to predict at (default: the scenario's production rows).
    #[arg(long, value_name = "ROWS", requires = "budget")]
    pub production_rows: Option<u64>,
    /// Command sweeps: the lines that start stages (as `record --stage-pattern`).
    #[arg(long, default_value = oomlab::record::DEFAULT_STAGE_PATTERN, value_name = "REGEX")]
    pub stage_pattern: String,
    /// Command sweeps: generate the scenario's data at each size even when no
    /// argument names {data_dir} (for a command that reads $OOMLAB_DATA_DIR).
    #[arg(long)]
    pub generate_data: bool,
    /// Where generated data is cached (default: $OOMLAB_CACHE_DIR or ~/.cache/oomlab).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// RSS sampling interval, e.g. 10ms, 0.5s.
    #[arg(long, default_value = "10ms", value_parser = parse_interval)]
    pub interval: Duration,
    /// Output directory (default: reports/runs/<time>-sweep-<scenario>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also save the model here, for `recommend` and `check` (default: reports/model.json).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Run every scale even when preflight predicts it will not fit in this
    /// machine's available memory (exit 3 otherwise).
    #[arg(long)]
    pub force: bool,
    /// Rows per chunk of the `streaming` strategy's runs (recorded in the
    /// model: its fixed cost holds one chunk's working set).
    #[arg(long, default_value_t = oomlab::strategy::streaming::DEFAULT_CHUNK_ROWS)]
    pub chunk_rows: u64,
    /// How the children hold their frames: `polars`, or `pandas` (a model in
    /// the bytes of the pandas pipeline's representation; no `streaming`).
    #[arg(long, value_enum, default_value_t = MemoryMode::Polars)]
    pub memory_mode: MemoryMode,
    /// After fitting, also measure the production table's cases at scale 1
    /// where the model predicts they fit this machine (the rest stay
    /// extrapolated); reports the model's error on them.
    #[arg(long)]
    pub production: bool,
    /// Command sweeps (Python): also run each size once under memray and fit
    /// what each line of the command's own code holds at each stage's peak
    /// against rows (docs/lines.md).
    #[arg(long)]
    pub lines: bool,
    /// Print only the tables and the output location.
    #[arg(long, short)]
    pub quiet: bool,
    /// Write the sweep for somewhere else to run instead of running it:
    /// `kubernetes` prints Indexed Jobs (one pod per run) to apply with
    /// `kubectl apply -f` (docs/kubernetes.md).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub emit: Option<oomlab::emit::EmitFormat>,
    /// --emit: the container image (oomlab, and what a swept command needs).
    #[arg(long, default_value = "oomlab:latest")]
    pub image: String,
    /// --emit: the Jobs' namespace (default: kubectl's current one).
    #[arg(long)]
    pub namespace: Option<String>,
    /// --emit: the PersistentVolumeClaim the pods write their reports to (mounted at /results).
    #[arg(long, default_value = "oomlab-results")]
    pub volume_claim: String,
    /// --emit: a node label the pods must match, KEY=VALUE (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub node_selector: Vec<String>,
    /// --emit: every pod's memory limit (the budget to rehearse); without
    /// it, each run's predicted peak plus --headroom, from --limits-model.
    #[arg(long, value_name = "SIZE", value_parser = size("--pod-memory"))]
    pub pod_memory: Option<u64>,
    /// --emit: the model predicting each run's peak for its pod's limit
    /// (default: $OOMLAB_MODEL, else reports/model.json, else the bundled one).
    #[arg(long, value_name = "MODEL")]
    pub limits_model: Option<PathBuf>,
    /// --emit: share of a pod's limit kept above its run's predicted peak.
    #[arg(long, default_value_t = oomlab::model::advice::DEFAULT_HEADROOM)]
    pub headroom: f64,
    /// --emit: pods of one Job running at once (default: all).
    #[arg(long)]
    pub parallelism: Option<u32>,
    /// Command sweeps: run only run INDEX of this sweep and write its report
    /// (what each pod of `--emit kubernetes` runs); no fit.
    #[arg(long, value_name = "INDEX")]
    pub point: Option<usize>,
    /// The command to sweep instead of the replay, after `--`.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

/// `oomlab recommend`: the MAX_RANKING_SAMPLES a budget allows.
#[derive(Debug, Args, Clone)]
pub struct RecommendArgs {
    /// Memory budget, e.g. 64GiB, 150GB (default: the container's limit, else available memory).
    #[arg(long)]
    pub memory: Option<String>,
    /// Item-item similarity: items to compute (e.g. 500000); answers
    /// SIMILARITY_MICRO_BATCH_SIZE and SIMILARITY_TOP_K from the similarity
    /// model (reports/similarity-model.json, or --model).
    #[arg(long)]
    pub items: Option<String>,
    /// Ranking samples loaded (default: the scenario's production rows).
    #[arg(long)]
    pub rows: Option<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Share of the budget kept free.
    #[arg(long, default_value_t = oomlab::model::advice::DEFAULT_HEADROOM)]
    pub headroom: f64,
    /// How the cap picks rows: uniform (the pipeline's sample()) or capped per dataset.
    #[arg(long, value_enum, default_value_t = SamplingMode::Uniform)]
    pub sampling: SamplingMode,
    /// Scale of the scenario data the coverage figures are measured on (default: the sweep's largest).
    #[arg(long)]
    pub coverage_scale: Option<f64>,
    /// Skip the coverage figures (they read, or generate, the scenario's data).
    #[arg(long)]
    pub no_coverage: bool,
    /// Where generated data is cached (default: the cache the sweep used, when it
    /// exists here; else $OOMLAB_CACHE_DIR or ~/.cache/oomlab).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Print the answer as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also draw the growth headroom (headroom.png, headroom.svg) into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The memory model `recommend` and `check` answer from, and how to
/// calibrate it to the real pipeline's bytes.
#[derive(Debug, Args, Clone)]
pub struct ModelArgs {
    /// Model file, or a bundled model's name (`oomlab scenarios` lists them).
    /// Default: $OOMLAB_MODEL, else reports/model.json here (written by
    /// `sweep`), else the bundled `production` model.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// A peak seen elsewhere, ROWS=PEAK or ROWS:MAX_RANKING_SAMPLES=PEAK (repeatable): rescales the model.
    #[arg(long)]
    pub observed: Vec<String>,
    /// A fidelity result (fidelity.json from `oomlab fidelity`): calibrate the
    /// model to its pandas peaks, so the answer is in pandas bytes.
    #[arg(long)]
    pub fidelity: Option<PathBuf>,
    /// Numeric profile columns the run merges, as its log says (`Merging with
    /// dataset features (94 columns)`; default: the model's count). Needs a
    /// model swept with --columns to change the answer.
    #[arg(long)]
    pub columns: Option<u64>,
}

/// `oomlab check`: do the planned settings fit the budget?
impl ModelArgs {
    /// Where the model and its calibration come from.
    pub fn source(&self) -> oomlab::recommend::ModelSource {
        oomlab::recommend::ModelSource {
            model: self.model.clone(),
            observed: self.observed.clone(),
            fidelity: self.fidelity.clone(),
            columns: self.columns,
        }
    }
}

#[derive(Debug, Args, Clone)]
pub struct CheckArgs {
    /// Memory budget, e.g. 150GiB (default: the container's limit, else available memory).
    #[arg(long)]
    pub memory: Option<String>,
    /// Ranking samples loaded (default: the scenario's production rows).
    #[arg(long)]
    pub rows: Option<String>,
    /// Planned MAX_RANKING_SAMPLES (default: $MAX_RANKING_SAMPLES, else 0).
    #[arg(long)]
    pub max_ranking_samples: Option<u64>,
    /// Planned strategy.
    #[arg(long, default_value = "optimized")]
    pub strategy: String,
    /// Item-item similarity: items to compute; checks the planned knobs
    /// against a similarity command model (`sweep --items ... -- CMD`, --model).
    #[arg(long)]
    pub items: Option<String>,
    /// With --items: planned SIMILARITY_MICRO_BATCH_SIZE (default: $SIMILARITY_MICRO_BATCH_SIZE, else the sweep's base).
    #[arg(long, requires = "items")]
    pub similarity_micro_batch_size: Option<u64>,
    /// With --items: planned SIMILARITY_TOP_K (default: $SIMILARITY_TOP_K, else the sweep's base).
    #[arg(long, requires = "items")]
    pub similarity_top_k: Option<u64>,
    /// How the cap picks rows: uniform or capped.
    #[arg(long, value_enum, default_value_t = SamplingMode::Uniform)]
    pub sampling: SamplingMode,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Share of the budget kept free.
    #[arg(long, default_value_t = oomlab::model::advice::DEFAULT_HEADROOM)]
    pub headroom: f64,
    /// Print the verdict as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also draw the growth headroom (headroom.png, headroom.svg) into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `--memory-limit`: kill a measured child at a limit, as a container would.
#[derive(Debug, Args, Clone, Default)]
pub struct LimitArgs {
    /// Kill a child whose memory crosses this limit (e.g. 2GiB, 800MiB, 150GB),
    /// as a container's OOM killer does; the report says where it died.
    #[arg(long, value_name = "SIZE", value_parser = size("--memory-limit"))]
    pub memory_limit: Option<u64>,
    /// How to enforce --memory-limit: a kernel kill through a memory cgroup,
    /// the parent's RSS watchdog, or auto (a cgroup when one can be made).
    #[arg(long, value_enum, default_value_t = oomlab::runner::limit::LimitBy::Auto, value_name = "HOW")]
    pub limit_by: oomlab::runner::limit::LimitBy,
}

impl LimitArgs {
    /// The limit to hold a measured child to, when one was asked for.
    pub fn memory_limit(&self) -> Option<oomlab::runner::limit::MemoryLimit> {
        self.memory_limit
            .map(|bytes| oomlab::runner::limit::MemoryLimit {
                bytes,
                by: self.limit_by,
            })
    }
}

/// `oomlab record -- CMD ARGS...`: measure any command like a replay (README, "Measuring your own command").
#[derive(Debug, Args, Clone)]
pub struct RecordArgs {
    /// RSS sampling interval of the process tree, e.g. 10ms, 0.5s.
    #[arg(long, default_value = "10ms", value_parser = parse_interval)]
    pub interval: Duration,
    #[command(flatten)]
    pub limit: LimitArgs,
    /// Regular expression: output lines that match start a new stage (the first
    /// capture group, else the match, is the stage's message).
    #[arg(long, default_value = oomlab::record::DEFAULT_STAGE_PATTERN, value_name = "REGEX")]
    pub stage_pattern: String,
    /// Which of the command's streams carry stage markers.
    #[arg(long, value_enum, default_value_t = oomlab::record::StageStream::Both)]
    pub stage_stream: oomlab::record::StageStream,
    /// Label of the run in the report (default: the command's file name).
    #[arg(long)]
    pub label: Option<String>,
    /// Report directory (default: reports/runs/<time>-record-<command>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Python commands: run the command a second time under memray and name
    /// the lines of its own code holding memory at each stage's peak
    /// (docs/lines.md).
    #[arg(long)]
    pub lines: bool,
    /// Print only the summary and the report location (the command's output still passes through).
    #[arg(long, short)]
    pub quiet: bool,
    /// The command and its arguments, after `--` (run directly, no shell).
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

/// `oomlab postmortem --log FILE`: what a killed pipeline's logs say (README, "After an OOM").
#[derive(Debug, Args, Clone)]
pub struct PostmortemArgs {
    /// The pipeline's log (scheduler log, `docker-compose logs` output); read as a stream.
    #[arg(long)]
    pub log: PathBuf,
    /// The container's memory limit (e.g. 150GB), when the log does not show it.
    #[arg(long, value_name = "SIZE", value_parser = size("--memory-limit"))]
    pub memory_limit: Option<u64>,
    /// `docker stats` output collected while it ran (rows with MEM USAGE / LIMIT).
    #[arg(long)]
    pub docker_stats: Option<PathBuf>,
    /// Time between `docker stats` rows that carry no time of their own.
    #[arg(long, default_value = "5s", value_parser = parse_stats_interval)]
    pub stats_interval: Duration,
    /// A memory model (model.json from `oomlab sweep`) to predict the peak and the settings that fit.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// A fidelity result (`oomlab fidelity`): calibrates the model to its pandas
    /// runs, so predicted peaks and settings are in the pandas pipeline's bytes.
    #[arg(long, requires = "model")]
    pub fidelity: Option<PathBuf>,
    /// A peak seen elsewhere, ROWS=PEAK or ROWS:MAX_RANKING_SAMPLES=PEAK
    /// (repeatable): calibrates the model together with the kill, as
    /// `oomlab check --observed` does.
    #[arg(long, requires = "model")]
    pub observed: Vec<String>,
    /// Lines of context kept before and after the kill.
    #[arg(long, default_value_t = 50)]
    pub context: usize,
    /// The kernel's log (`dmesg` or `journalctl -k` output): the OOM killer's
    /// report names the kill, the cgroup's limit and what the process held.
    #[arg(long, value_name = "FILE")]
    pub kernel_log: Option<PathBuf>,
    /// A copy of the container's memory cgroup directory (v2 memory.events,
    /// memory.max, memory.peak; v1 memory.limit_in_bytes, memory.max_usage_in_bytes).
    #[arg(long, value_name = "DIR")]
    pub cgroup_dir: Option<PathBuf>,
    /// `kubectl get pod NAME -o json` or `kubectl describe pod NAME` output:
    /// OOMKilled, exit code 137 and the pod's memory limit.
    #[arg(long, value_name = "FILE")]
    pub kubernetes: Option<PathBuf>,
    /// A Prometheus range query result (JSON) of container_memory_working_set_bytes:
    /// the memory curve, instead of `docker stats`.
    #[arg(long, value_name = "FILE")]
    pub prometheus: Option<PathBuf>,
    /// The container whose series a multi-series curve is read for (default:
    /// the one the kill names, else the largest that is not the pod total).
    #[arg(long, value_name = "NAME")]
    pub container: Option<String>,
    /// Output directory (default: reports/runs/<time>-postmortem/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `oomlab fidelity`: how the replay's memory figures transfer to pandas.
#[derive(Debug, Args, Clone)]
pub struct FidelityArgs {
    /// Ranking-prep scenario; both sides read the same generated data.
    #[arg(long, default_value = "scenarios/production.toml")]
    pub scenario: PathBuf,
    /// Scales to measure, comma-separated (at least 3; the largest checks the
    /// extrapolation, so make it about twice the one before).
    #[arg(long, default_value = "0.02,0.04,0.08")]
    pub scales: String,
    /// Strategies, comma-separated (legacy, optimized).
    #[arg(long, default_value = "legacy,optimized")]
    pub strategy: String,
    /// Python interpreter with pandas and pyarrow (scenarios/pandas/requirements.txt).
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// The pandas reference implementation.
    #[arg(long, default_value = oomlab::fidelity::PANDAS_REFERENCE)]
    pub reference: PathBuf,
    /// How the replay side holds its frames: `pandas` (the mode meant to
    /// track pandas) or `polars` (to see how far polars' own bytes are).
    #[arg(long, value_enum, default_value_t = MemoryMode::Pandas)]
    pub memory_mode: MemoryMode,
    /// Runs of the pandas reference per scale and strategy; each of its
    /// figures is the median (its peaks move from run to run, the replay's
    /// hardly do).
    #[arg(long, default_value_t = 3)]
    pub repeat: u32,
    /// Where generated data is cached (default: $OOMLAB_CACHE_DIR or ~/.cache/oomlab).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// RSS sampling interval, e.g. 10ms, 0.5s.
    #[arg(long, default_value = "10ms", value_parser = parse_interval)]
    pub interval: Duration,
    /// Output directory (default: reports/runs/<time>-fidelity-<scenario>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Start runs even when preflight predicts they will not fit.
    #[arg(long)]
    pub force: bool,
    /// Print only the tables and the output location.
    #[arg(long, short)]
    pub quiet: bool,
}
