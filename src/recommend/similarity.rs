//! `oomlab recommend --items N`: the similarity knobs
//! (`SIMILARITY_MICRO_BATCH_SIZE`, `SIMILARITY_TOP_K`) for a budget, from the
//! similarity model a similarity sweep saved.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::{exit_with, Exit};
use crate::model::advice::{budget, describe_limit, validate_headroom, TABLE_BUDGETS_GIB};
use crate::model::similarity::*;
use crate::table::Table;
use crate::units::{format_bytes, format_count};

/// What `recommend --items` is asked: the budget and where the model is.
#[derive(Debug, Clone, Default)]
pub struct SimilarityAsk {
    /// Share of the budget kept free.
    pub headroom: f64,
    /// The ranking model (`--model`), for the `MAX_RANKING_SAMPLES` line beside the knobs.
    pub model: Option<PathBuf>,
    /// The budget (`--memory`).
    pub memory: Option<String>,
    /// Rows loaded (`--rows`), for the ranking line.
    pub rows: Option<String>,
}

/// `oomlab recommend --items N`: the similarity knobs for a budget, and
/// `MAX_RANKING_SAMPLES` beside them when a ranking model is saved.
pub fn recommend(args: &SimilarityAsk, items_text: &str) -> Result<Exit> {
    let path = similarity_model_path(args.model.as_deref());
    if crate::model::similarity_command::is_similarity_command_model(&path) {
        // A command's own model (`sweep --items ... -- CMD`): its bytes.
        let ask = super::similarity_command::CommandAsk {
            items: items_text.to_string(),
            memory: args.memory.clone(),
            headroom: args.headroom,
        };
        return super::similarity_command::recommend(&path, &ask);
    }
    let headroom = validate_headroom(args.headroom)?;
    let model = SimilarityModel::read(&path)?;
    let items = items_text
        .trim()
        .replace(['_', ','], "")
        .parse::<u64>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            crate::error::bad_input(format!(
                "--items {items_text}: expected a positive whole number of items"
            ))
        })?;
    let budget = budget(args.memory.as_deref())?;
    let limit = budget.bytes as f64 * (1.0 - headroom);
    println!(
        "Budget: {} ({}); {}",
        format_bytes(budget.bytes),
        budget.source,
        describe_limit(budget.bytes, headroom)
    );
    println!(
        "Similarity model: {} ({} items x {} dims, measured up to {} items)",
        path.display(),
        format_count(model.production_items),
        model.dimension,
        format_count(
            model
                .strategies
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.items))
                .max()
                .unwrap_or(0)
        )
    );
    let legacy = model.strategy("legacy")?.predict(items);
    println!(
        "legacy (full N x N matrix) at {} items: predicted {}{}",
        format_count(items),
        format_bytes(legacy as u64),
        if legacy <= limit {
            " (fits)"
        } else {
            " (does not fit)"
        }
    );
    let mut table = Table {
        headers: vec![
            "SIMILARITY_MICRO_BATCH_SIZE".into(),
            "Items/s (measured)".into(),
            format!(
                "Predicted peak at {} items, top {}",
                format_count(items),
                model.top_k
            ),
            "Fits".into(),
        ],
        rows: Vec::new(),
    };
    for t in &model.throughput {
        let p = model.predict_optimized(items, t.micro_batch_size, model.top_k)?;
        table.rows.push(vec![
            t.micro_batch_size.to_string(),
            format!("{:.0}", t.items_per_s),
            format_bytes(p as u64),
            if p <= limit { "yes" } else { "no" }.into(),
        ]);
    }
    println!("{}", table.to_text());
    let budgets = Table {
        headers: vec![
            "Budget".into(),
            "SIMILARITY_MICRO_BATCH_SIZE".into(),
            "SIMILARITY_TOP_K".into(),
            "Predicted peak".into(),
        ],
        rows: TABLE_BUDGETS_GIB
            .iter()
            .map(|&gib| {
                let l = (gib << 30) as f64 * (1.0 - headroom);
                Ok(match advise(&model, items, l)? {
                    Ok(a) => vec![
                        format!("{gib} GiB"),
                        a.micro_batch_size.to_string(),
                        a.top_k.to_string(),
                        format_bytes(a.predicted_bytes as u64),
                    ],
                    Err(_) => vec![
                        format!("{gib} GiB"),
                        "no setting fits".into(),
                        "-".into(),
                        "-".into(),
                    ],
                })
            })
            .collect::<Result<Vec<_>>>()?,
    };
    println!("{}", budgets.to_text());
    match advise(&model, items, limit)? {
        Ok(advice) => {
            println!(
                "Recommendation: SIMILARITY_MICRO_BATCH_SIZE={} SIMILARITY_TOP_K={}: predicted peak {} ({} under the limit){}",
                advice.micro_batch_size,
                advice.top_k,
                format_bytes(advice.predicted_bytes as u64),
                format_bytes((limit - advice.predicted_bytes).max(0.0) as u64),
                advice
                    .items_per_s
                    .map(|v| format!(", {v:.0} items/s measured"))
                    .unwrap_or_default()
            );
            let mut snippet = format!("cat >> .env << EOF\n{}", env_lines(&advice));
            if let Some(line) = ranking_line(limit, args.rows.as_deref()) {
                snippet += &line;
            }
            snippet += "EOF\n";
            println!("\n{snippet}");
            Ok(Exit::Ok)
        }
        Err(floor) => Err(exit_with(
            Exit::NoFit,
            format!(
                "no setting fits: SIMILARITY_MICRO_BATCH_SIZE={} SIMILARITY_TOP_K={} still needs {}; needs at least {} of memory",
                floor.micro_batch_size,
                floor.top_k,
                format_bytes(floor.predicted_bytes as u64),
                format_bytes((floor.predicted_bytes / (1.0 - headroom)) as u64)
            ),
        )),
    }
}

/// The `MAX_RANKING_SAMPLES` line for the same budget, when a ranking model
/// is saved (the pipeline's two steps run one after the other in the same
/// container, so each has the whole budget).
fn ranking_line(limit: f64, rows: Option<&str>) -> Option<String> {
    let path = crate::model::model_path(None);
    if !Path::new(&path).is_file() {
        return None;
    }
    let model = crate::model::Model::read(&path).ok()?;
    let variant = model
        .variant_for("optimized", crate::sampling::SamplingMode::Uniform)
        .ok()?;
    let rows_in = match rows {
        Some(text) => text.trim().replace(['_', ','], "").parse().ok()?,
        None => model.scenario.production.sample_rows,
    };
    let answer = crate::model::advice::recommend(&model, variant, rows_in, limit).ok()?;
    answer.setting().map(|s| {
        format!(
            "# 排序数据准备优化（{} rows, model {}）\nMAX_RANKING_SAMPLES={s}\n",
            format_count(rows_in),
            path.display()
        )
    })
}
