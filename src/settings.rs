//! Settings that travel from the command line to a child and into a report:
//! typed once, where clap parses them, and never parsed again.
//!
//! A leaf: it imports nothing of oomlab's, so every layer may name a mode.

use std::path::PathBuf;

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

/// How a replay child holds its frames (`--memory-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum MemoryMode {
    /// polars' own representation, with pandas' allocation points.
    #[default]
    Polars,
    /// pandas 2.x's representation and merge/copy/astype behaviour (2.3's
    /// `concat(copy=True)` merges, no copy-on-write): pandas 3 merges do not
    /// deep-copy, so its figures are not pandas 3's (see `describe`).
    Pandas,
}

impl MemoryMode {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            MemoryMode::Polars => "polars",
            MemoryMode::Pandas => "pandas",
        }
    }

    /// What the mode is named where a figure's origin is printed: the pandas
    /// mode says which pandas it models, since pandas 3 pays differently.
    pub fn label(self) -> &'static str {
        match self {
            MemoryMode::Polars => "polars",
            MemoryMode::Pandas => "pandas 2.x",
        }
    }

    /// One line on what the mode's figures are made of, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            MemoryMode::Polars => {
                "polars: strings as 16-byte views plus their bytes; copies and merges allocate where pandas does"
            }
            MemoryMode::Pandas => {
                "pandas 2.x (2.3's merges and copies; pandas 3's copy-on-write merges do not deep-copy, so sweep a pandas 3 pipeline itself with `oomlab sweep -- CMD`): object columns as 8-byte handles to string objects stored once (CPython sizes); merge = join indexers + take + consolidating copy; astype keeps the old block until all its columns are replaced; the decoded Arrow tables stay, as pyarrow's pool keeps them"
            }
        }
    }
}

/// How `MAX_RANKING_SAMPLES` chooses the rows it keeps.
///
/// A child job carries it (serde default `uniform`, the write-up's behaviour),
/// so old jobs and reports read the same.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum SamplingMode {
    /// `sample(n=cap, random_state=42)`: every row equally likely.
    #[default]
    Uniform,
    /// At most `m` rows per dataset, `m` as large as the cap allows, ties broken
    /// by a seeded shuffle: the head is cut, the tail is kept.
    Capped,
}

impl SamplingMode {
    /// The name used on the command line, in jobs and in reports.
    pub fn name(self) -> &'static str {
        match self {
            SamplingMode::Uniform => "uniform",
            SamplingMode::Capped => "capped",
        }
    }
}

/// The seed of every random choice the replay makes (`sample(n,
/// random_state=42)` in the write-up's fix), so that the optimized and the
/// streaming strategies keep the same rows and a rerun keeps the same rows.
pub const SAMPLING_SEED: u64 = 42;

/// What happens to the prepared data (`--output`, `--hash-output`,
/// `--chunk-rows`): a replay plan hands it to every child.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutputSettings {
    /// Write the prepared data to this Parquet file (with several strategies,
    /// the strategy's name is added before the extension).
    pub path: Option<PathBuf>,
    /// Hash the prepared frame (names, dtypes, values) into the report.
    pub hash_output: bool,
    /// Rows per chunk for the `streaming` strategy.
    pub chunk_rows: u64,
}
