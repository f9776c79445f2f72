//! `oomlab compare` and `oomlab run`: replay strategies and report.

use anyhow::Result;

use super::{plan, replay_and_report};
use crate::cli::{ReplayArgs, RunArgs};
use oomlab::error::Exit;
use oomlab::replay::parse_strategies_for;
use oomlab::scenario::Scenario;
use oomlab::strategy;

/// `oomlab compare`: legacy against optimized (of the scenario's workload).
pub fn compare(args: ReplayArgs) -> Result<Exit> {
    let workload = Scenario::load(&args.scenario.scenario)?.scenario.workload();
    let strategies = ["legacy", "optimized"]
        .iter()
        .filter_map(|n| strategy::by_name_for(workload, n))
        .collect();
    let plan = plan("compare", &args, strategies)?;
    replay_and_report(plan, &args)
}

/// `oomlab run`: the named strategies.
pub fn run(args: RunArgs) -> Result<Exit> {
    let workload = Scenario::load(&args.replay.scenario.scenario)?
        .scenario
        .workload();
    let strategies = parse_strategies_for(workload, &args.strategy)?;
    let mut plan = plan("run", &args.replay, strategies)?;
    plan.heap_profile = args.heap_profile;
    replay_and_report(plan, &args.replay)
}
