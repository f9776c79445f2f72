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

use crate::error::bad_input;

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
