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

use super::Strategy;
use crate::error::bad_input;
use crate::scenario::Workload;
pub use crate::settings::MemoryMode;

/// Refuses (exit 2) a workload the mode has no model of: `pandas` mode
/// models pandas' ranking prep; similarity is numpy, replayed as is.
pub fn check_workload(mode: MemoryMode, workload: Workload) -> Result<()> {
    if mode == MemoryMode::Pandas && workload != Workload::RankingPrep {
        return Err(bad_input(
            "--memory-mode pandas: only ranking-prep scenarios have a pandas memory mode (similarity is numpy, replayed as is)",
        ));
    }
    Ok(())
}

/// The strategies a mode replays: `pandas` mode models `legacy` and
/// `optimized`; `streaming` has no pandas counterpart and is left out with
/// a note, and naming only it is an error (exit 2).
pub fn replayable(
    mode: MemoryMode,
    strategies: Vec<&'static dyn Strategy>,
) -> Result<Vec<&'static dyn Strategy>> {
    if mode != MemoryMode::Pandas {
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
