//! `oomlab check`: the pre-deploy capacity check.
//!
//! A deploy pipeline runs it with the budget of the target machine and the
//! settings it is about to ship; exit 0 means the model predicts the peak fits
//! with headroom, exit 1 means it does not, and the output names the setting
//! that would fit, so the pipeline stops before the OOM instead of after it.

use anyhow::Result;
use serde::Serialize;

use crate::cli::CheckArgs;
use oomlab::error::{bad_input, Exit};
use oomlab::model::advice::{self, budget, describe_limit, validate_headroom, Answer, Budget};
use oomlab::model::Prediction;
use oomlab::recommend::{calibration_table, growth_text, load_model, needs_at_least, parse_rows};
use oomlab::sampling::SamplingMode;
use oomlab::settings::{resolve_max_ranking_samples, SettingSource};
use oomlab::strategy;
use oomlab::units::{format_bytes, format_count};

/// Everything `check --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct CheckOutput {
    pub model: String,
    pub fits: bool,
    pub budget: Budget,
    pub headroom: f64,
    pub limit_bytes: f64,
    pub rows_in: u64,
    pub strategy: String,
    pub sampling: SamplingMode,
    pub max_ranking_samples: u64,
    /// Where the planned value came from: `flag`, `env` or `default`.
    pub max_ranking_samples_source: SettingSource,
    pub prediction: Prediction,
    /// Limit minus predicted peak (negative when over).
    pub margin_bytes: f64,
    /// What would fit on `optimized` with the same sampling, when the plan does not.
    pub would_fit: Option<Answer>,
    /// The smallest budget that would fit anything, when nothing does.
    pub needs_at_least_bytes: Option<u64>,
    /// Whether `--observed` rescaled the model to production (the replay's
    /// figures are polars', below what pandas pays).
    pub calibrated: bool,
    /// How far the rows loaded can grow before the peak crosses the limit.
    pub rows_headroom: advice::RowsHeadroom,
    /// Numeric profile columns the prediction is at (the model's, or `--columns`).
    pub columns: u64,
    /// Rows, columns and both together: the write-up's Q3 in figures.
    pub growth: advice::Growth,
}

/// `, 94 numeric profile columns (--columns; ...)`: at which column count
/// the answer is, when it was asked for or the model can vary it.
pub fn columns_clause(model: &oomlab::model::Model, asked: Option<u64>) -> String {
    let now = model.columns_now();
    match asked {
        Some(c) if !model.has_column_term() => format!(
            ", {c} {} asked (--columns) but the model was measured at {} only and has no column term: the figures are at {}",
            oomlab::model::COLUMNS_WHAT,
            now,
            now
        ),
        Some(c) => format!(
            ", {c} {} (--columns{})",
            oomlab::model::COLUMNS_WHAT,
            model
                .columns_outside(c)
                .map(|o| format!("; {o}"))
                .unwrap_or_default()
        ),
        None if model.has_column_term() => format!(", {now} {}", oomlab::model::COLUMNS_WHAT),
        None => String::new(),
    }
}

/// `oomlab check`.
pub fn check(args: CheckArgs) -> Result<Exit> {
    let headroom = validate_headroom(args.headroom)?;
    let sampling = args.sampling;
    if strategy::by_name(&args.strategy).is_none() {
        return Err(bad_input(format!(
            "--strategy {}: unknown strategy (expected one of: {})",
            args.strategy,
            strategy::names().join(", ")
        )));
    }
    let (loaded, variant_name) = load_model(&args.model.source(), &args.strategy, sampling)?;
    if let Some(note) = &loaded.fallback {
        // First: the verdict below is this model's. On stderr under
        // --json, so stdout stays one JSON document.
        if args.json {
            eprintln!("{note}");
        } else {
            println!("{note}");
        }
    }
    let model = &loaded.model;
    let variant = model.variant(&variant_name)?;
    let (cap, source) = resolve_max_ranking_samples(args.max_ranking_samples)?;
    let rows_in = parse_rows(args.rows.as_deref(), model)?;
    let budget = budget(args.memory.as_deref())?;
    let limit = budget.bytes as f64 * (1.0 - headroom);
    let prediction = model.predict(variant, rows_in, cap);
    let fits = prediction.peak_bytes <= limit;
    let (would_fit, needs) = if fits {
        (None, None)
    } else {
        let target = model.variant_for("optimized", sampling)?;
        if target.sampling_identified() {
            let answer = advice::recommend(model, target, rows_in, limit)?;
            let needs = match &answer {
                Answer::NoFit { floor } => Some(needs_at_least(floor.peak_bytes, headroom)),
                _ => None,
            };
            (Some(answer), needs)
        } else {
            (None, None)
        }
    };
    let output = CheckOutput {
        model: loaded.path.display().to_string(),
        fits,
        budget: budget.clone(),
        headroom,
        limit_bytes: limit,
        rows_in,
        strategy: args.strategy.clone(),
        sampling,
        max_ranking_samples: cap,
        max_ranking_samples_source: source,
        prediction: prediction.clone(),
        margin_bytes: limit - prediction.peak_bytes,
        would_fit: would_fit.clone(),
        needs_at_least_bytes: needs,
        calibrated: model.calibration.is_some(),
        rows_headroom: advice::rows_headroom(model, variant, rows_in, cap, limit),
        columns: model.columns_now(),
        growth: advice::growth(model, variant, rows_in, cap, limit),
    };
    let pictures = match &args.out {
        Some(dir) => {
            let advised = match &would_fit {
                Some(Answer::Cap { cap, .. }) => Some(*cap),
                _ => None,
            };
            oomlab::plot::render(
                &oomlab::plot::headroom::HeadroomChart::new(
                    model,
                    variant,
                    (rows_in, cap, advised),
                    limit,
                    &output.growth.table,
                ),
                dir,
            )?
        }
        None => Vec::new(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&output)?);
    } else {
        let applies = if variant.sampling.is_some() {
            format!("MAX_RANKING_SAMPLES={cap} ({source})")
        } else {
            // A command model's unsampled variant was swept without a cap;
            // a replay strategy (legacy) ignores it.
            let why = if variant.name == args.strategy {
                format!("{} ignores it", args.strategy)
            } else {
                format!("{} was measured without one", variant.name)
            };
            format!("MAX_RANKING_SAMPLES={cap} ({source}; {why})")
        };
        println!(
            "{}: {} with {} rows loaded, {applies}{}",
            if fits { "FITS" } else { "DOES NOT FIT" },
            variant.name,
            format_count(rows_in),
            columns_clause(model, args.model.columns)
        );
        println!(
            "  predicted peak {} (stage {}) against {} ({})",
            format_bytes(prediction.peak_bytes as u64),
            prediction.peak_stage,
            describe_limit(budget.bytes, headroom),
            budget.source
        );
        let margin = limit - prediction.peak_bytes;
        println!(
            "  margin: {}{}",
            if margin >= 0.0 { "" } else { "-" },
            format_bytes(margin.abs() as u64)
        );
        print!(
            "{}",
            growth_text(&output.growth, cap, oomlab::recommend::knows_columns(model))
        );
        if let Some(t) = calibration_table(&loaded.before, model, variant, rows_in, cap) {
            if let Some(line) = oomlab::model::calibration_line(model) {
                println!("{line}");
            }
            println!("{}", t.to_text());
        }
        match &would_fit {
            Some(Answer::NoSampling { prediction }) => println!(
                "  would fit: strategy optimized, MAX_RANKING_SAMPLES=0 (peak {})",
                format_bytes(prediction.peak_bytes as u64)
            ),
            Some(Answer::Cap { cap, prediction }) => println!(
                "  would fit: strategy optimized, MAX_RANKING_SAMPLES={cap} (peak {}, stage {})",
                format_bytes(prediction.peak_bytes as u64),
                prediction.peak_stage
            ),
            Some(Answer::NoFit { floor }) => println!(
                "  no setting fits: needs at least {} (even sampling to one row peaks at {})",
                format_bytes(needs.unwrap_or(0)),
                format_bytes(floor.peak_bytes as u64)
            ),
            None if !fits => println!(
                "  (the model has no sampled runs, so it cannot say which MAX_RANKING_SAMPLES would fit)"
            ),
            None => {}
        }
        if model.calibration.is_none() {
            println!("note: {}", oomlab::model::uncalibrated_note(model));
        }
        for p in &pictures {
            println!("picture: {}", p.display());
        }
    }
    Ok(if fits { Exit::Ok } else { Exit::Failed })
}
