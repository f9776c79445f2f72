//! `oomlab recommend`: the largest `MAX_RANKING_SAMPLES` a memory budget allows,
//! with the write-up's rule of thumb beside it and what the cap costs the tail.

use anyhow::Result;

use crate::cli::RecommendArgs;
use oomlab::error::{bad_input, exit_with, Exit};
use oomlab::model::advice::{
    self, budget, describe_limit, env_snippet, readable_floor, validate_headroom, Answer,
};
use oomlab::model::VariantModel;
use oomlab::recommend::similarity;
use oomlab::recommend::*;
use oomlab::scenario::validate_scale;
use oomlab::units::{format_bytes, format_count};

/// `oomlab recommend`.
pub fn recommend(args: RecommendArgs) -> Result<Exit> {
    if let Some(items) = args.items.as_deref() {
        return similarity::recommend(
            &similarity::SimilarityAsk {
                headroom: args.headroom,
                model: args.model.model.clone(),
                memory: args.memory.clone(),
                rows: args.rows.clone(),
            },
            items,
        );
    }
    let headroom = validate_headroom(args.headroom)?;
    let sampling = args.sampling;
    let (loaded, variant_name) = load_model(&args.model.source(), "optimized", sampling)?;
    if let Some(note) = &loaded.fallback {
        // First: every answer below is this model's. On stderr under
        // --json, so stdout stays one JSON document.
        if args.json {
            eprintln!("{note}");
        } else {
            println!("{note}");
        }
    }
    let model = &loaded.model;
    let variant = model.variant(&variant_name)?;
    let rows_in = parse_rows(args.rows.as_deref(), model)?;
    let budget = budget(args.memory.as_deref())?;
    let limit = budget.bytes as f64 * (1.0 - headroom);
    if !variant.sampling_identified() {
        return without_sampled_runs(&loaded, variant, rows_in, limit, args.json);
    }
    let answer = advice::recommend(model, variant, rows_in, limit)?;
    let prediction = answer.prediction().clone();
    let needs = match &answer {
        Answer::NoFit { floor } => Some(needs_at_least(floor.peak_bytes, headroom)),
        _ => None,
    };
    let table = budget_rows(model, variant, rows_in, headroom)?;
    let mut warnings = Vec::new();
    let largest = model
        .scenario
        .scenario
        .sizes(*model.scales.last().unwrap_or(&1.0))
        .sample_rows;
    if rows_in > largest.saturating_mul(4) {
        warnings.push(format!(
            "{} rows is {:.0}x the largest measured run ({} rows): the figures are extrapolated, and an error in the per-row cost grows with the distance",
            format_count(rows_in),
            rows_in as f64 / largest.max(1) as f64,
            format_count(largest)
        ));
    }
    if model.calibration.is_none() {
        warnings.push(oomlab::model::uncalibrated_note(model));
    }
    let coverage = if args.no_coverage {
        None
    } else {
        let scale = validate_scale(
            args.coverage_scale
                .unwrap_or(*model.scales.last().unwrap_or(&1.0)),
        )?;
        // The sweep's cache when it is on this machine (a committed model
        // names another machine's), else the usual one.
        let root = args.cache_dir.clone().unwrap_or_else(|| {
            if model.cache_root.is_dir() {
                model.cache_root.clone()
            } else {
                oomlab::data::cache::default_cache_root()
            }
        });
        let kept = model.rows_after_dropna(rows_in);
        let mut caps: Vec<u64> = answer
            .setting()
            .filter(|c| *c > 0)
            .into_iter()
            .chain(WRITE_UP_CAPS)
            .filter(|c| *c < kept)
            .collect();
        if caps.is_empty() {
            caps.push(readable_floor(kept / 2));
        }
        caps.sort_unstable_by(|a, b| b.cmp(a));
        caps.dedup();
        Some(coverage(model, rows_in, &caps, scale, &root)?)
    };
    let output = RecommendOutput {
        model: loaded.path.display().to_string(),
        budget: budget.clone(),
        headroom,
        limit_bytes: limit,
        rows_in,
        rows_after_dropna: model.rows_after_dropna(rows_in),
        sampling,
        answer: answer.clone(),
        max_ranking_samples: answer.setting(),
        margin_bytes: limit - prediction.peak_bytes,
        streaming_no_sampling_max_rows: streaming_rows(model, limit),
        needs_at_least_bytes: needs,
        table: table.clone(),
        coverage: coverage.clone(),
        calibration: model.calibration.clone(),
        rows_headroom: answer
            .setting()
            .map(|cap| advice::rows_headroom(model, variant, rows_in, cap, limit)),
        growth: answer
            .setting()
            .map(|cap| advice::growth(model, variant, rows_in, cap, limit)),
        warnings: warnings.clone(),
    };
    let pictures = match (&args.out, &output.growth) {
        (Some(dir), Some(growth)) => oomlab::plot::render(
            &oomlab::plot::headroom::HeadroomChart::new(
                model,
                variant,
                (rows_in, answer.setting().unwrap_or(0), answer.setting()),
                limit,
                &growth.table,
            ),
            dir,
        )?,
        _ => Vec::new(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&output)?);
    } else {
        print_text(&loaded, variant, &output, &table, coverage.as_ref());
        for p in &pictures {
            println!("picture: {}", p.display());
        }
    }
    match needs {
        Some(n) => Err(exit_with(
            Exit::NoFit,
            format!(
                "no setting fits {}: needs at least {} ({n} bytes: even sampling to one row peaks at {} in stage {}, plus {:.0}% headroom)",
                format_bytes(budget.bytes),
                format_bytes(n),
                format_bytes(prediction.peak_bytes as u64),
                prediction.peak_stage,
                headroom * 100.0
            ),
        )),
        None => Ok(Exit::Ok),
    }
}

/// A model with no sampled runs cannot say what a cap saves, but it can say
/// whether the unsampled run fits: then the answer is `MAX_RANKING_SAMPLES=0`
/// (no cap needed), with why; only when it does not fit is there nothing to
/// recommend from this model (exit 2: sweep with sampled runs).
fn without_sampled_runs(
    loaded: &LoadedModel,
    variant: &VariantModel,
    rows_in: u64,
    limit: f64,
    json: bool,
) -> Result<Exit> {
    let model = &loaded.model;
    let p = model.predict(variant, rows_in, 0);
    let why = format!(
        "the model of `{}` ({}) has no sampled runs, so it cannot tell what a cap would save",
        variant.name,
        loaded.path.display()
    );
    if p.peak_bytes > limit {
        return Err(bad_input(format!(
            "{why}, and unsampled {} rows are predicted to peak at {} (stage {}), over the {} limit: rerun `oomlab sweep` with --max-ranking-samples-fraction (or `sweep -- CMD` with {{max_ranking_samples}}) to measure what a cap saves",
            format_count(rows_in),
            format_bytes(p.peak_bytes as u64),
            p.peak_stage,
            format_bytes(limit as u64)
        )));
    }
    let reason = format!(
        "no cap needed: unsampled, {} rows are predicted to peak at {} (stage {}), within the {} limit ({} to spare); {why}",
        format_count(rows_in),
        format_bytes(p.peak_bytes as u64),
        p.peak_stage,
        format_bytes(limit as u64),
        format_bytes((limit - p.peak_bytes) as u64)
    );
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "model": loaded.path.display().to_string(),
                "rows_in": rows_in,
                "limit_bytes": limit,
                "max_ranking_samples": 0,
                "predicted_peak_bytes": p.peak_bytes,
                "peak_stage": p.peak_stage,
                "sampling_identified": false,
                "reason": reason,
            }))?
        );
    } else {
        println!("MAX_RANKING_SAMPLES=0: {reason}.\n");
        print!("{}", env_snippet(0, "无需限制"));
    }
    Ok(Exit::Ok)
}

fn print_text(
    loaded: &LoadedModel,
    variant: &VariantModel,
    out: &RecommendOutput,
    table: &[BudgetRow],
    coverage: Option<&CoverageReport>,
) {
    let model = &loaded.model;
    let errors = model
        .validation
        .max_abs_error_pct
        .iter()
        .map(|(v, e)| format!("{v} {e:.1}%"))
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "Model: {} ({} scenario, in {}, fitted {} on scales {:?}; held-out error {})",
        loaded.path.display(),
        model.scenario.name,
        model.source.describe(model.memory_mode),
        model.created_at,
        model.scales,
        errors
    );
    println!(
        "Budget: {} ({})",
        format_bytes(out.budget.bytes),
        out.budget.source
    );
    println!("        {}", describe_limit(out.budget.bytes, out.headroom));
    println!(
        "Rows: {} loaded, {} after dropna; {} sampling ({}){}",
        format_count(out.rows_in),
        format_count(out.rows_after_dropna),
        out.sampling.name(),
        variant.name,
        if model.has_column_term() {
            format!(
                "; {} {}{}",
                model.columns_now(),
                oomlab::model::COLUMNS_WHAT,
                model
                    .columns_outside(model.columns_now())
                    .map(|o| format!(" ({o})"))
                    .unwrap_or_default()
            )
        } else {
            String::new()
        }
    );
    let p = out.answer.prediction();
    match &out.answer {
        Answer::NoSampling { .. } | Answer::Cap { .. } => {
            let setting = out.max_ranking_samples.unwrap_or(0);
            println!(
                "\nMAX_RANKING_SAMPLES={setting}{}",
                if setting == 0 {
                    "  (everything fits: no sampling)"
                } else {
                    ""
                }
            );
            println!(
                "  predicted peak {} (set by stage {}); margin {} under the limit, {} under the budget",
                format_bytes(p.peak_bytes as u64),
                p.peak_stage,
                format_bytes(out.margin_bytes.max(0.0) as u64),
                format_bytes((out.budget.bytes as f64 - p.peak_bytes).max(0.0) as u64)
            );
            if let Some(g) = &out.growth {
                print!(
                    "{}",
                    growth_text(g, setting, oomlab::recommend::knows_columns(model))
                );
            }
            let note = format!(
                "oomlab recommend: {} budget, {:.0}% headroom, {} rows, predicted peak {}",
                format_bytes(out.budget.bytes),
                out.headroom * 100.0,
                format_count(out.rows_in),
                format_bytes(p.peak_bytes as u64)
            );
            println!("\n{}", env_snippet(setting, &note));
        }
        Answer::NoFit { .. } => {
            println!(
                "\nno setting fits: even sampling to one row peaks at {} (stage {}); needs at least {}",
                format_bytes(p.peak_bytes as u64),
                p.peak_stage,
                format_bytes(out.needs_at_least_bytes.unwrap_or(0))
            );
        }
    }
    if let Some(rows) = out.streaming_no_sampling_max_rows {
        let largest = model
            .scenario
            .scenario
            .sizes(*model.scales.last().unwrap_or(&1.0))
            .sample_rows
            .max(1);
        println!(
            "With streaming, no sampling needed up to {} rows at {} ({} after headroom){}{}\n",
            format_count(rows),
            format_bytes(out.budget.bytes),
            format_bytes(out.limit_bytes as u64),
            if rows >= out.rows_in {
                format!(
                    ": {} rows fit with MAX_RANKING_SAMPLES=0",
                    format_count(out.rows_in)
                )
            } else {
                format!(
                    ": {} rows need sampling even there",
                    format_count(out.rows_in)
                )
            },
            if rows > largest.saturating_mul(4) {
                format!(
                    " (extrapolated {:.0}x beyond the largest measured run)",
                    rows as f64 / largest as f64
                )
            } else {
                String::new()
            }
        );
    }
    if let Some(t) = calibration_table(
        &loaded.before,
        model,
        variant,
        out.rows_in,
        out.max_ranking_samples.unwrap_or(0),
    ) {
        if let Some(line) = oomlab::model::calibration_line(model) {
            println!("{line}");
        }
        println!("{}", t.to_text());
    }
    println!(
        "By budget ({} rows), beside the write-up's rule of thumb (<50 GB -> 2,000,000; 50-100 GB -> 5,000,000; >100 GB -> 0):",
        format_count(out.rows_in)
    );
    println!("{}", budget_table(table, out.headroom).to_text());
    if let Some(c) = coverage {
        println!(
            "What sampling costs the long tail ({} datasets; shares expected at {} rows from the scenario's Zipf law; measured on its generated data at scale {}, {} rows after dropna, caps scaled alike):",
            format_count(c.datasets),
            format_count(out.rows_in),
            c.data_scale,
            format_count(c.data_rows_after_dropna)
        );
        println!("{}", coverage_table(c).to_text());
        for v in &c.verdicts {
            println!("  {v}");
        }
    }
    for w in &out.warnings {
        println!("note: {w}");
    }
}
