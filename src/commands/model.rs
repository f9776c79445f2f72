//! `oomlab model fit`: the memory model from saved reports, so points
//! measured elsewhere (pods, production runs under `record`) feed it.

use anyhow::Result;

use crate::cli::{ModelAction, ModelCommand};
use oomlab::error::Exit;
use oomlab::sweep::refit::{refit, RefitSettings};

/// `oomlab model ...`.
pub fn model(args: ModelCommand) -> Result<Exit> {
    match args.action {
        ModelAction::Fit(fit) => refit(RefitSettings {
            inputs: fit.inputs,
            out: fit.out,
            model: fit.model,
            scenario: fit.scenario,
            cache_dir: fit.cache_dir,
        }),
    }
}
