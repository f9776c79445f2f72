//! `oomlab sweep`: measure every strategy at several small scales (or a
//! user's own command at several sizes), fit the memory model, check it on
//! the largest size, save `model.json`.

use anyhow::Result;

use super::parse_interval;
use crate::cli::SweepArgs;
use oomlab::error::{bad_input, Exit};
use oomlab::sweep::command::{parse_rows, CommandSweepSettings, Sizes};
use oomlab::sweep::{parse_columns, parse_fractions, parse_scales, SweepSettings};

/// `oomlab sweep`.
pub fn sweep(args: SweepArgs) -> Result<Exit> {
    let interval = parse_interval(&args.interval)?;
    let columns = match &args.columns {
        Some(text) => parse_columns(text)?,
        None => Vec::new(),
    };
    if !args.command.is_empty() {
        let sizes = match &args.rows {
            Some(text) => Sizes::Rows(parse_rows(text)?),
            None => Sizes::Scales(parse_scales(&args.scales)?),
        };
        let fractions = match &args.max_ranking_samples_fraction {
            Some(text) => parse_fractions(text)?,
            None => Vec::new(),
        };
        return oomlab::sweep::command::sweep(CommandSweepSettings {
            template: args.command,
            scenario: args.scenario,
            sizes,
            fractions,
            columns: columns.clone(),
            repeat: args.repeat,
            cache_dir: args.cache_dir,
            interval,
            out: args.out,
            model: args.model,
            stage_pattern: args.stage_pattern,
            generate_data: args.generate_data,
            force: args.force,
            quiet: args.quiet,
        });
    }
    if args.rows.is_some() {
        return Err(bad_input(
            "--rows is for a command sweep (`oomlab sweep --rows a,b,c -- CMD ...`); the replay sweeps --scales",
        ));
    }
    oomlab::sweep::sweep(SweepSettings {
        interval,
        scenario: args.scenario,
        scales: args.scales,
        max_ranking_samples_fraction: args
            .max_ranking_samples_fraction
            .unwrap_or_else(|| "0.25,0.6".into()),
        cache_dir: args.cache_dir,
        out: args.out,
        model: args.model,
        force: args.force,
        chunk_rows: args.chunk_rows,
        memory_mode: args.memory_mode,
        production: args.production,
        columns,
        quiet: args.quiet,
    })
}
