//! `oomlab data`: generate or find the scenario's data and print its hash.

use anyhow::Result;

use crate::cli::DataArgs;
use oomlab::error::Exit;
use oomlab::progress::Progress;
use oomlab::replay::ReplaySettings;

/// `oomlab data`: make sure the data exists and print its hash.
pub fn data(args: DataArgs) -> Result<Exit> {
    let settings = ReplaySettings {
        scenario: args.scenario.scenario,
        scale: args.scenario.scale,
        cache_dir: args.scenario.cache_dir,
        max_ranking_samples: Some(0),
        force: args.force,
        ..Default::default()
    };
    let plan = oomlab::replay::plan("data", &settings, Vec::new())?;
    let report = plan.run(&mut Progress::new(true))?;
    println!("{}", report.scenario.data_hash);
    let sizes = plan.scenario.scenario.sizes(plan.scale);
    let cache = oomlab::data::DataCache::locate(&plan.cache_root, &plan.scenario.scenario, &sizes);
    eprintln!("data: {}", cache.dir.display());
    Ok(Exit::Ok)
}
