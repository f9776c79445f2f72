//! Memory modes: how the replay holds its data.
//!
//! The replay's figures are only useful if they transfer to the pandas pipeline
//! that gets OOM-killed. `polars` holds data the way polars does (strings as
//! 16-byte views plus their bytes), with pandas' allocation points (a copy
//! copies, a merge materializes). `pandas` goes further and holds it the way a
//! pandas 2.x process does (see [`super::frame`]): object columns as 8-byte
//! handles to string objects stored once, merges through pandas' take and
//! consolidating copy, and `astype` column swaps that keep the old block
//! alive. `oomlab fidelity` measures how close each mode's per-row costs come
//! to real pandas. What neither mode emulates: glibc keeping freed memory in a
//! Python process's RSS, which depends on that process's own history.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::Strategy;
use crate::error::bad_input;
use crate::scenario::Workload;

/// How a replay child holds its frames (`--memory-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemoryMode {
    /// polars' own representation, with pandas' allocation points.
    #[default]
    Polars,
    /// pandas 2.x's representation and merge/copy/astype behaviour.
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

    /// One line on what the mode's figures are made of, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            MemoryMode::Polars => {
                "polars: strings as 16-byte views plus their bytes; copies and merges allocate where pandas does"
            }
            MemoryMode::Pandas => {
                "pandas: object columns as 8-byte handles to string objects stored once (CPython sizes); merge = join indexers + take + consolidating copy; astype keeps the old block until all its columns are replaced; the decoded Arrow tables stay, as pyarrow's pool keeps them"
            }
        }
    }

    /// Refuses (exit 2) a workload the mode has no model of: `pandas` mode
    /// models pandas' ranking prep; similarity is numpy, replayed as is.
    pub fn check_workload(self, workload: Workload) -> Result<()> {
        if self == MemoryMode::Pandas && workload != Workload::RankingPrep {
            return Err(bad_input(
                "--memory-mode pandas: only ranking-prep scenarios have a pandas memory mode (similarity is numpy, replayed as is)",
            ));
        }
        Ok(())
    }

    /// The strategies this mode replays: `pandas` mode models `legacy` and
    /// `optimized`; `streaming` has no pandas counterpart and is left out with
    /// a note, and naming only it is an error (exit 2).
    pub fn replayable(
        self,
        strategies: Vec<&'static dyn Strategy>,
    ) -> Result<Vec<&'static dyn Strategy>> {
        if self != MemoryMode::Pandas {
            return Ok(strategies);
        }
        let (kept, dropped): (Vec<_>, Vec<_>) = strategies
            .into_iter()
            .partition(|s| s.name() != super::streaming::Streaming.name());
        if kept.is_empty() {
            return Err(bad_input(
                "--memory-mode pandas: `streaming` has no pandas counterpart; replay legacy or optimized",
            ));
        }
        if !dropped.is_empty() {
            eprintln!("note: --memory-mode pandas leaves out `streaming` (no pandas counterpart)");
        }
        Ok(kept)
    }

    /// Parses `--memory-mode` (exit 2 on anything else).
    pub fn parse(text: &str) -> Result<Self> {
        match text.trim() {
            "polars" => Ok(MemoryMode::Polars),
            "pandas" => Ok(MemoryMode::Pandas),
            other => Err(bad_input(format!(
                "--memory-mode {other}: expected `polars` or `pandas`"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_names_and_refuses_others() {
        assert_eq!(MemoryMode::parse("pandas").unwrap(), MemoryMode::Pandas);
        assert_eq!(MemoryMode::parse(" polars ").unwrap(), MemoryMode::Polars);
        let err = MemoryMode::parse("numpy").unwrap_err().to_string();
        assert!(err.contains("numpy") && err.contains("pandas"), "{err}");
    }
}
