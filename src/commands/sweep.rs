//! `oomlab sweep`: measure every strategy at several small scales, fit the
//! memory model, check it on the largest scale, save `model.json`.

use anyhow::Result;

use super::parse_interval;
use crate::cli::SweepArgs;
use oomlab::error::Exit;
use oomlab::sweep::SweepSettings;

/// `oomlab sweep`.
pub fn sweep(args: SweepArgs) -> Result<Exit> {
    oomlab::sweep::sweep(SweepSettings {
        interval: parse_interval(&args.interval)?,
        scenario: args.scenario,
        scales: args.scales,
        max_ranking_samples_fraction: args.max_ranking_samples_fraction,
        cache_dir: args.cache_dir,
        out: args.out,
        model: args.model,
        force: args.force,
        chunk_rows: args.chunk_rows,
        memory_mode: args.memory_mode,
        production: args.production,
        quiet: args.quiet,
    })
}
