//! `oomlab gate`: re-run what the baseline names, judge each stage, and exit
//! 0 (pass), 1 (regression) or 2 (unusable baseline or flags). With
//! `--update`, bless what was measured instead.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};

use crate::cli::GateArgs;
use oomlab::error::{bad_input, Exit};
use oomlab::gate::against::BaseWorktree;
use oomlab::gate::baseline::Baseline;
use oomlab::gate::baseline::CommandEntry;
use oomlab::gate::bless::{bless, comparability_notes, spread_notes};
use oomlab::gate::command::{
    bless_command, command_notes, judge_command, measure_sides, CommandResult, CommandRunSettings,
    CommandSpec, CommandTolerances, DEFAULT_ROWS,
};
use oomlab::gate::lines::{judge_lines, trace_command};
use oomlab::gate::render::GateResult;
use oomlab::gate::run::{
    baseline_targets, measure, parse_strategy_as, MeasureSettings, Target, MAX_RUNS,
};
use oomlab::gate::verdict::{judge_all, Tolerances};
use oomlab::lines::render::{model_text, provenance};
use oomlab::machine::MachineFacts;
use oomlab::progress::Progress;
use oomlab::replay::parse_strategies;
use oomlab::scenario::Scenario;
use oomlab::settings::resolve_max_ranking_samples;
use oomlab::sweep::command::{resolve_sizes, Size, Sizes};

/// `oomlab gate`.
pub fn gate(args: GateArgs) -> Result<Exit> {
    let started = Instant::now();
    let tolerances = Tolerances {
        rss_pct: args.rss_tolerance,
        heap_pct: args.heap_tolerance,
    };
    if !(1..=MAX_RUNS).contains(&args.runs) {
        return Err(bad_input(format!(
            "--runs {}: expected between 1 and {MAX_RUNS}",
            args.runs
        )));
    }
    let command_tolerances = CommandTolerances {
        peak_pct: tolerances.rss_pct,
        slope_pct: args.slope_tolerance,
    };
    if let Some(rev) = args.against.clone() {
        return against(&args, &rev, tolerances, command_tolerances, started);
    }
    if !args.command.is_empty() && args.update {
        return update_command(&args, tolerances, command_tolerances, started);
    }
    // `gate --baseline FILE -- CMD`: judge only that command's blessed entry
    // (what the pytest plugin runs per test), not the whole baseline.
    let only: Option<Vec<String>> = (!args.command.is_empty()).then(|| {
        args.command
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    });
    for (flag, given) in [
        ("--rows", args.rows.is_some()),
        ("--scales", args.scales.is_some()),
        ("--stage-pattern", args.stage_pattern.is_some()),
        ("--generate-data", args.generate_data),
    ] {
        if given {
            return Err(bad_input(format!(
                "{flag} is for a command: `oomlab gate --update {flag} ... -- CMD...` or `--against REV -- CMD...`"
            )));
        }
    }
    let mapping = parse_strategy_as(&args.strategy_as)?;
    if args.update && !mapping.is_empty() {
        return Err(bad_input(
            "--strategy-as cannot be combined with --update: it would bless one strategy's figures under another's name",
        ));
    }
    let creating = args.scenario.is_some();
    if !args.update {
        for (flag, given) in [
            ("--scenario", creating),
            ("--strategy", args.strategy.is_some()),
            ("--scale", args.scale.is_some()),
            ("--max-ranking-samples", args.max_ranking_samples.is_some()),
        ] {
            if given {
                return Err(bad_input(format!(
                    "{flag} is only for --update: the gate re-runs what {} names",
                    args.baseline.display()
                )));
            }
        }
    } else if !creating
        && (args.strategy.is_some() || args.scale.is_some() || args.max_ranking_samples.is_some())
    {
        return Err(bad_input(
            "--strategy, --scale and --max-ranking-samples with --update need --scenario (which scenario to re-bless)",
        ));
    }

    let existing = if args.update && creating && !args.baseline.exists() {
        None
    } else {
        Some(Baseline::read(&args.baseline)?)
    };
    // `creating` implies --update (checked above); otherwise a baseline was read.
    let targets = match &existing {
        _ if creating => vec![creation_target(&args, existing.as_ref())?],
        _ if only.is_some() => Vec::new(),
        Some(baseline) => baseline_targets(baseline, &mapping)?,
        None => Vec::new(),
    };

    // One line per run here; the stage-by-stage display of four runs would
    // bury the verdict in a CI log.
    let mut progress = Progress::new(true);
    let how = MeasureSettings {
        baseline: args.baseline.clone(),
        cache_dir: args.cache_dir.clone(),
        runs: args.runs,
        quiet: args.quiet,
    };
    let mut measured = Vec::new();
    for target in &targets {
        measured.push(measure(target, &how, &mut progress)?);
    }
    let machine = MachineFacts::collect();
    let floors = existing.as_ref().map(|b| b.floors).unwrap_or_default();

    // Command entries: judged (or re-blessed) with the replays, unless
    // --update --scenario re-blesses one replay scenario only.
    let mut entries: Vec<CommandEntry> = match &existing {
        Some(b) if !creating => b.commands.clone(),
        _ => Vec::new(),
    };
    if let Some(argv) = &only {
        entries.retain(|e| &e.argv == argv);
        if entries.is_empty() {
            return Err(bad_input(format!(
                "{} has no entry for `{}`: bless it first with `oomlab gate --baseline {} --update -- CMD`",
                args.baseline.display(),
                argv.join(" "),
                args.baseline.display()
            )));
        }
    }
    let mut command_results = Vec::new();
    let mut command_notes_all = Vec::new();
    let mut reblessed = Vec::new();
    let mut line_changes = Vec::new();
    if args.lines {
        if entries.is_empty() {
            return Err(bad_input(format!(
                "--lines: {} names no command to trace (the replay is oomlab's own code); bless one with `gate --update --lines -- CMD`",
                args.baseline.display()
            )));
        }
        for entry in &entries {
            oomlab::lines::check_ready(&CommandSpec::from_entry(entry).template)?;
        }
    }
    for entry in &entries {
        let spec = CommandSpec::from_entry(entry);
        let run_settings = run_settings(&args);
        let mut measured = measure_sides(
            &spec,
            &[("head".to_string(), spec.template.clone())],
            &run_settings,
            &mut progress,
        )?;
        let measured = measured.remove(0);
        let production_rows = args.production_rows.unwrap_or(entry.production_rows);
        let result = judge_command(
            entry,
            &measured,
            command_tolerances,
            floors,
            production_rows,
            &args.baseline.display().to_string(),
            args.runs,
        );
        command_notes_all.extend(command_notes(entry, &measured, &result));
        command_results.push(result);
        let mut blessed = bless_command(&spec, &measured, args.runs, Some(entry));
        if args.lines {
            let now = trace_command(
                &spec,
                ("head", &spec.template),
                &run_settings,
                &measured,
                &mut progress,
            )?;
            let (notes, changes) = judge_lines(
                entry.lines.as_ref(),
                &now,
                args.slope_tolerance,
                production_rows,
            );
            command_notes_all.extend(notes);
            line_changes.push((entry.label(), changes, production_rows));
            blessed.lines = Some(now);
        }
        reblessed.push(blessed);
    }

    let mut notes = Vec::new();
    if let Some(baseline) = &existing {
        notes.extend(comparability_notes(baseline, &measured, &machine));
    }
    let strategies = match &existing {
        Some(baseline) => judge_all(baseline, &measured, tolerances),
        None => Vec::new(),
    };
    notes.extend(spread_notes(&strategies, floors));
    notes.extend(command_notes_all);
    let mut result = GateResult::new(
        args.baseline.display().to_string(),
        args.runs,
        tolerances,
        floors,
        notes,
        strategies,
    )
    .with_commands(command_tolerances, command_results);
    for (label, changes, rows) in line_changes {
        result = result.with_lines(&label, changes, rows);
    }

    if args.update {
        let mut blessed = bless(existing, &measured, args.runs, &machine);
        for entry in reblessed {
            if let Some(slot) = blessed.commands.iter_mut().find(|c| c.argv == entry.argv) {
                *slot = entry;
            }
        }
        blessed.write(&args.baseline)?;
        result.updated = true;
        result.wall_s = started.elapsed().as_secs_f64();
        emit(&result, &args)?;
        if result.strategies.is_empty() {
            for sc in &blessed.scenarios {
                for st in &sc.strategies {
                    println!("\n{} ({}) / {}", sc.name, sc.path, st.name);
                    print!("{}", oomlab::gate::render::blessed_table(st).to_text());
                }
            }
        }
        let stages: usize = blessed
            .scenarios
            .iter()
            .flat_map(|s| &s.strategies)
            .map(|s| s.stages.len())
            .sum();
        println!(
            "gate: blessed {stages} stages into {} (commit it with the change that moved the figures)",
            args.baseline.display()
        );
        return Ok(Exit::Ok);
    }

    result.wall_s = started.elapsed().as_secs_f64();
    emit(&result, &args)?;
    Ok(if result.passed {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

/// What `--update --scenario` blesses: the flags, else the baseline's entry
/// for that file, else defaults.
fn creation_target(args: &GateArgs, existing: Option<&Baseline>) -> Result<Target> {
    let path = args
        .scenario
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let entry = existing.and_then(|b| b.scenarios.iter().find(|s| s.path == path));
    let names: Vec<String> = match (&args.strategy, entry) {
        (Some(list), _) => parse_strategies(list)?
            .iter()
            .map(|s| s.name().to_string())
            .collect(),
        (None, Some(e)) => e.strategies.iter().map(|s| s.name.clone()).collect(),
        (None, None) => {
            return Err(bad_input(format!(
                "--update --scenario {path}: name the strategies to bless with --strategy (e.g. optimized)"
            )))
        }
    };
    let max_ranking_samples = match (args.max_ranking_samples, entry) {
        (Some(v), _) => v,
        (None, Some(e)) => e.max_ranking_samples,
        (None, None) => resolve_max_ranking_samples(None)?.0,
    };
    Ok(Target {
        path,
        scale: args.scale.or(entry.map(|e| e.scale)).unwrap_or(1.0),
        max_ranking_samples,
        pairs: names.iter().map(|n| (n.clone(), n.clone())).collect(),
    })
}

/// Prints the table and verdict, and writes the step summary and JSON.
fn emit(result: &GateResult, args: &GateArgs) -> Result<()> {
    if !result.strategies.is_empty() || !result.commands.is_empty() {
        println!("\n{}", result.to_text().trim_end());
    }
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if let Err(e) = append(&path, &result.to_markdown()) {
            eprintln!(
                "warning: could not write the step summary {}: {e:#}",
                path.display()
            );
        }
    }
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(result).context("serializing the gate result")?;
        oomlab::report::write_atomically(path, &json)?;
        write_gate_page(path);
        if !args.quiet {
            eprintln!("gate: result written to {}", path.display());
        }
    }
    Ok(())
}

/// The gate's page beside its JSON (`gate.json` -> `gate.html`), made from
/// the file just written, as `oomlab html` would; a warning when it cannot be.
fn write_gate_page(json: &Path) {
    let page = oomlab::html::default_out(json);
    let made = oomlab::html::read_document(json).and_then(|doc| {
        let shown = json.display().to_string();
        oomlab::html::page_of(&doc, &shown, &Default::default()).write(&page)
    });
    if let Err(err) = made {
        eprintln!("warning: {} not written: {err:#}", page.display());
    }
}

fn append(path: &Path, text: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// How command points are run for these flags.
fn run_settings(args: &GateArgs) -> CommandRunSettings {
    CommandRunSettings {
        runs: args.runs,
        cache_dir: args.cache_dir.clone(),
        out: oomlab::report::default_out_dir("gate-command"),
        force: false,
        quiet: args.quiet,
    }
}

/// The command to run and where, from the flags, falling back on the
/// baseline's entry for the same argv, then on defaults.
fn command_spec(args: &GateArgs, previous: Option<&CommandEntry>) -> Result<CommandSpec> {
    let scenario_path: Option<PathBuf> = args
        .scenario
        .clone()
        .or_else(|| previous.and_then(|p| p.scenario.as_ref().map(PathBuf::from)));
    let scenario = scenario_path
        .as_deref()
        .map(Scenario::load)
        .transpose()?
        .map(|l| l.scenario);
    let sizes: Vec<Size> = match (&args.rows, &args.scales, previous) {
        (Some(rows), _, _) => sized(scenario.as_ref(), Sizes::Rows(rows.0.clone()), args)?,
        (None, Some(scales), _) => {
            let Some(sc) = &scenario else {
                return Err(bad_input(
                    "--scales needs --scenario (the scales are of its sample rows)",
                ));
            };
            resolve_sizes(sc, &Sizes::Scales(scales.0.clone()))?
        }
        (None, None, Some(p)) if args.scenario.is_none() => p
            .rows
            .iter()
            .zip(&p.scales)
            .map(|(&rows, &scale)| Size { rows, scale })
            .collect(),
        (None, None, _) => sized(scenario.as_ref(), Sizes::Rows(DEFAULT_ROWS.to_vec()), args)?,
    };
    if sizes.len() < 2 || sizes[0].rows == 0 {
        return Err(bad_input(
            "gate -- CMD: expected at least two distinct, non-zero sizes (the per-row cost is the slope between them)",
        ));
    }
    let production_rows = match (args.production_rows, &scenario, previous) {
        (Some(r), _, _) => r,
        (None, _, Some(p)) if args.scenario.is_none() => p.production_rows,
        (None, Some(sc), _) => sc.production_sizes().sample_rows,
        (None, None, _) => {
            return Err(bad_input(
                "gate -- CMD: say how many rows production loads, with --production-rows N or --scenario FILE (its production size), so a per-row change can be priced",
            ))
        }
    };
    Ok(CommandSpec {
        template: args.command.clone(),
        scenario: scenario_path,
        sizes,
        stage_pattern: args
            .stage_pattern
            .clone()
            .or_else(|| previous.map(|p| p.stage_pattern.clone()))
            .unwrap_or_else(|| oomlab::record::DEFAULT_STAGE_PATTERN.to_string()),
        generate_data: args.generate_data || previous.is_some_and(|p| p.generate_data),
        production_rows,
    })
}

/// Sizes in rows, with a scenario's scales when there is one (else the share
/// of production rows, for `{scale}`).
fn sized(
    scenario: Option<&oomlab::scenario::Scenario>,
    rows: Sizes,
    args: &GateArgs,
) -> Result<Vec<Size>> {
    if let Some(sc) = scenario {
        return resolve_sizes(sc, &rows);
    }
    let Sizes::Rows(list) = rows else {
        return Ok(Vec::new());
    };
    let production = args.production_rows.unwrap_or(0).max(1) as f64;
    let mut out: Vec<Size> = list
        .iter()
        .map(|&r| Size {
            rows: r,
            scale: if args.production_rows.is_some() {
                r as f64 / production
            } else {
                1.0
            },
        })
        .collect();
    out.sort_by_key(|s| s.rows);
    out.dedup_by_key(|s| s.rows);
    Ok(out)
}

/// `gate --update -- CMD`: measure the command and add (or refresh) its entry.
fn update_command(
    args: &GateArgs,
    tolerances: Tolerances,
    command_tolerances: CommandTolerances,
    started: Instant,
) -> Result<Exit> {
    if !(1..=MAX_RUNS).contains(&args.runs) {
        return Err(bad_input(format!(
            "--runs {}: expected between 1 and {MAX_RUNS}",
            args.runs
        )));
    }
    let existing = if args.baseline.exists() {
        Some(Baseline::read(&args.baseline)?)
    } else {
        None
    };
    let argv: Vec<String> = args
        .command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let previous = existing
        .as_ref()
        .and_then(|b| b.commands.iter().find(|c| c.argv == argv))
        .cloned();
    let spec = command_spec(args, previous.as_ref())?;
    if args.lines {
        oomlab::lines::check_ready(&spec.template)?;
    }
    let mut progress = Progress::new(true);
    let how = run_settings(args);
    let mut measured = measure_sides(
        &spec,
        &[("head".to_string(), spec.template.clone())],
        &how,
        &mut progress,
    )?;
    let measured = measured.remove(0);
    let floors = existing.as_ref().map(|b| b.floors).unwrap_or_default();
    let machine = MachineFacts::collect();
    let mut entry = bless_command(&spec, &measured, args.runs, previous.as_ref());
    if args.lines {
        entry.lines = Some(trace_command(
            &spec,
            ("head", &spec.template),
            &how,
            &measured,
            &mut progress,
        )?);
    }
    let mut results: Vec<CommandResult> = Vec::new();
    if let Some(p) = &previous {
        results.push(judge_command(
            p,
            &measured,
            command_tolerances,
            floors,
            spec.production_rows,
            &args.baseline.display().to_string(),
            args.runs,
        ));
    }
    let mut blessed = bless(existing, &[], args.runs, &machine);
    match blessed.commands.iter_mut().find(|c| c.argv == entry.argv) {
        Some(slot) => *slot = entry.clone(),
        None => blessed.commands.push(entry.clone()),
    }
    blessed.write(&args.baseline)?;
    let mut result = GateResult::new(
        args.baseline.display().to_string(),
        args.runs,
        tolerances,
        floors,
        Vec::new(),
        Vec::new(),
    )
    .with_commands(command_tolerances, results);
    result.updated = true;
    result.wall_s = started.elapsed().as_secs_f64();
    emit(&result, args)?;
    println!(
        "\n`{}` at {} rows (production: {} rows)",
        entry.label(),
        entry
            .rows
            .iter()
            .map(|r| oomlab::units::format_count(*r))
            .collect::<Vec<_>>()
            .join(", "),
        oomlab::units::format_count(entry.production_rows)
    );
    print!(
        "{}",
        oomlab::gate::render::blessed_command_table(&entry).to_text()
    );
    if let Some(lines) = &entry.lines {
        println!("\n{}", provenance(&lines.memray, &lines.python));
        print!("{}", model_text(lines, entry.production_rows));
    }
    println!(
        "gate: blessed {} stages of `{}` into {} (commit it with the change that moved the figures)",
        entry.stages.len(),
        entry.label(),
        args.baseline.display()
    );
    Ok(Exit::Ok)
}

/// `gate --against REV -- CMD`: base (REV, in a temporary worktree) and head
/// (the working tree) run interleaved in this job, head judged against base.
fn against(
    args: &GateArgs,
    rev: &str,
    tolerances: Tolerances,
    command_tolerances: CommandTolerances,
    started: Instant,
) -> Result<Exit> {
    if args.command.is_empty() {
        return Err(bad_input(
            "--against REV: name the command to compare after `--` (e.g. oomlab gate --against origin/main -- python3 pipeline.py --rows {rows})",
        ));
    }
    if args.update {
        return Err(bad_input(
            "--against cannot be combined with --update: it compares two revisions and writes no baseline",
        ));
    }
    if !(1..=MAX_RUNS).contains(&args.runs) {
        return Err(bad_input(format!(
            "--runs {}: expected between 1 and {MAX_RUNS}",
            args.runs
        )));
    }
    let spec = command_spec(args, None)?;
    if args.lines {
        oomlab::lines::check_ready(&spec.template)?;
    }
    let worktree = BaseWorktree::checkout(rev)?;
    if !args.quiet {
        eprintln!(
            "gate: base {rev} ({}) checked out in {}",
            &worktree.commit[..worktree.commit.len().min(12)],
            worktree.root.display()
        );
    }
    let sides = [
        ("base".to_string(), worktree.resolve_argv(&spec.template)),
        ("head".to_string(), spec.template.clone()),
    ];
    let mut progress = Progress::new(true);
    // The worktree is removed when `worktree` drops, on success or error.
    let how = run_settings(args);
    let measured = measure_sides(&spec, &sides, &how, &mut progress)?;
    let mut traced = Vec::new();
    if args.lines {
        for ((label, template), m) in sides.iter().zip(&measured) {
            traced.push(trace_command(
                &spec,
                (label, template),
                &how,
                m,
                &mut progress,
            )?);
        }
    }
    let commit = worktree.commit.clone();
    drop(worktree);
    let floors = oomlab::gate::baseline::Floors::default();
    let base = bless_command(&spec, &measured[0], args.runs, None);
    let against = format!("{rev} ({}, same job)", &commit[..commit.len().min(12)]);
    let result = judge_command(
        &base,
        &measured[1],
        command_tolerances,
        floors,
        spec.production_rows,
        &against,
        args.runs,
    );
    let mut notes = command_notes(&base, &measured[1], &result);
    let mut changes = Vec::new();
    if let [before, now] = &traced[..] {
        let (more, found) = judge_lines(
            Some(before),
            now,
            args.slope_tolerance,
            spec.production_rows,
        );
        notes.extend(more);
        changes = found;
    }
    let mut result = GateResult::new(
        format!("--against {rev}"),
        args.runs,
        tolerances,
        floors,
        notes,
        Vec::new(),
    )
    .with_commands(command_tolerances, vec![result])
    .with_lines(&base.label(), changes, spec.production_rows);
    result.wall_s = started.elapsed().as_secs_f64();
    emit(&result, args)?;
    Ok(if result.passed {
        Exit::Ok
    } else {
        Exit::Failed
    })
}
