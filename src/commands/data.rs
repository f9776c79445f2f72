//! `oomlab data`: generate or find the scenario's data and print its hash.

use anyhow::Result;

use super::plan;
use crate::cli::{DataArgs, ReplayArgs};
use crate::error::Exit;
use crate::progress::Progress;

/// `oomlab data`: make sure the data exists and print its hash.
pub fn data(args: DataArgs) -> Result<Exit> {
    let replay = ReplayArgs {
        scenario: args.scenario,
        max_ranking_samples: Some(0),
        interval: "10ms".into(),
        out: None,
        quiet: true,
        limit: Default::default(),
        output: Default::default(),
        similarity_micro_batch_size: None,
        similarity_top_k: None,
        force: args.force,
        sampling: "uniform".into(),
        memory_mode: "polars".into(),
    };
    let plan = plan("data", &replay, Vec::new())?;
    let report = plan.run(&mut Progress::new(true))?;
    println!("{}", report.scenario.data_hash);
    let sizes = plan.scenario.scenario.sizes(plan.scale);
    let cache = crate::data::DataCache::locate(&plan.cache_root, &plan.scenario.scenario, &sizes);
    eprintln!("data: {}", cache.dir.display());
    Ok(Exit::Ok)
}
