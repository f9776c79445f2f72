//! `oomlab sweep`: measure every strategy at several small scales (or a
//! user's own command at several sizes), fit the memory model, check it on
//! the largest size, save `model.json`.

use anyhow::Result;

use crate::cli::SweepArgs;
use oomlab::error::{bad_input, Exit};
use oomlab::sweep::command::similarity::SimilaritySweepSettings;
use oomlab::sweep::command::{parse_rows, CommandSweepSettings, Sizes};
use oomlab::sweep::pods::{emit_command, emit_replay, CommandFlags, EmitSettings};
use oomlab::sweep::{parse_fractions, parse_scales, SweepSettings};

/// `oomlab sweep`.
pub fn sweep(args: SweepArgs) -> Result<Exit> {
    let interval = args.interval;
    let emit = match args.emit {
        Some(format) => Some(EmitSettings {
            format,
            image: args.image.clone(),
            namespace: args.namespace.clone(),
            volume_claim: args.volume_claim.clone(),
            node_selector: args.node_selector.clone(),
            pod_memory: args.pod_memory,
            limits_model: args.limits_model.clone(),
            headroom: args.headroom,
            parallelism: args.parallelism,
        }),
        None => None,
    };
    let columns = args.columns.clone().map(|c| c.0).unwrap_or_default();
    if emit.is_some() && !columns.is_empty() {
        return Err(bad_input(
            "--emit kubernetes with --columns: the pods run each size at the scenario's own column count; sweep columns on one machine",
        ));
    }
    if args.budget.is_some() && emit.is_some() {
        return Err(bad_input(
            "--budget with --emit: a budget sweep chooses each size from the runs before it, on one machine; give --rows or --scales to --emit",
        ));
    }
    if let Some(items) = &args.items {
        return similarity_command(&args, items.0.clone(), emit.is_some());
    }
    if !args.command.is_empty() {
        let sizes = match &args.rows {
            Some(text) => Sizes::Rows(parse_rows(text)?),
            None => Sizes::Scales(parse_scales(&args.scales)?),
        };
        let fractions = match &args.max_ranking_samples_fraction {
            Some(text) => parse_fractions(text)?,
            None => Vec::new(),
        };
        let settings = CommandSweepSettings {
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
            point: args.point,
            budget: args.budget,
            production_rows: args.production_rows,
            lines: args.lines,
        };
        if let Some(emit) = emit {
            if args.lines {
                return Err(bad_input(
                    "--lines with --emit: the pods run the kernel points only; trace on one machine (`oomlab sweep --lines -- CMD`)",
                ));
            }
            let flags = CommandFlags {
                rows: args.rows.clone().unwrap_or_default(),
                scales: args.scales.clone(),
                fractions: args.max_ranking_samples_fraction.clone(),
            };
            return emit_command(&settings, &flags, &emit);
        }
        return oomlab::sweep::command::sweep(settings);
    }
    if args.lines {
        return Err(bad_input(
            "--lines is for a command sweep (`oomlab sweep --lines -- python3 prep.py ...`): the replay is oomlab's own code",
        ));
    }
    if args.point.is_some() {
        return Err(bad_input(
            "--point is for a command sweep's pods (`oomlab sweep --point N -- CMD ...`); a replay sweep's pods run `oomlab run`",
        ));
    }
    if args.rows.is_some() {
        return Err(bad_input(
            "--rows is for a command sweep (`oomlab sweep --rows a,b,c -- CMD ...`); the replay sweeps --scales",
        ));
    }
    let settings = SweepSettings {
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
        budget: args.budget,
        production_rows: args.production_rows,
    };
    match emit {
        Some(emit) => emit_replay(&settings, &emit),
        None => oomlab::sweep::sweep(settings),
    }
}

/// `oomlab sweep --items a,b,c [--batch-sizes ..] [--top-k ..] -- CMD`: a
/// similarity command by items and its two knobs (on the bundled similarity
/// scenario unless --scenario names another similarity scenario).
fn similarity_command(args: &SweepArgs, items: Vec<u64>, emit: bool) -> Result<Exit> {
    if emit || args.point.is_some() {
        return Err(bad_input(
            "--items with --emit or --point: a similarity command sweep runs on one machine",
        ));
    }
    if args.command.is_empty() {
        return Err(bad_input(
            "--items is for a similarity command sweep (`oomlab sweep --items 4000,6000,8000,12000 -- CMD ...`); the replay's similarity sweep takes --scenario scenarios/similarity.toml --scales",
        ));
    }
    let scenario = if args.scenario == std::path::Path::new(DEFAULT_SWEEP_SCENARIO) {
        std::path::PathBuf::from(SIMILARITY_SCENARIO)
    } else {
        args.scenario.clone()
    };
    oomlab::sweep::command::similarity::sweep(SimilaritySweepSettings {
        template: args.command.clone(),
        scenario,
        items,
        batch_sizes: args.batch_sizes.clone().map(|l| l.0).unwrap_or_default(),
        top_ks: args.top_k.clone().map(|l| l.0).unwrap_or_default(),
        repeat: args.repeat,
        cache_dir: args.cache_dir.clone(),
        interval: args.interval,
        out: args.out.clone(),
        model: args.model.clone(),
        stage_pattern: args.stage_pattern.clone(),
        generate_data: args.generate_data,
        force: args.force,
        quiet: args.quiet,
    })
}

/// `sweep --scenario`'s default (a ranking scenario).
const DEFAULT_SWEEP_SCENARIO: &str = "scenarios/production.toml";
/// The scenario a similarity command sweep uses when --scenario is left at
/// its default: the write-up's 500,000 items (bundled, so it works anywhere).
const SIMILARITY_SCENARIO: &str = "scenarios/similarity.toml";
