//! `oomlab fidelity`: the pandas reference and the replay on the same data,
//! at the same scales, fitted side by side.

use anyhow::Result;

use crate::cli::FidelityArgs;
use oomlab::error::Exit;
use oomlab::sweep::fidelity::{run, FidelitySettings};

/// `oomlab fidelity`.
pub fn fidelity(args: FidelityArgs) -> Result<Exit> {
    run(FidelitySettings {
        interval: args.interval,
        scenario: args.scenario,
        scales: args.scales,
        strategy: args.strategy,
        python: args.python,
        reference: args.reference,
        memory_mode: args.memory_mode,
        repeat: args.repeat,
        cache_dir: args.cache_dir,
        out: args.out,
        force: args.force,
        quiet: args.quiet,
    })
}
