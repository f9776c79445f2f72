//! `recommend --items N` and `check --items N` on a similarity command
//! model: the two knobs for a budget, in the command's own bytes.
//!
//! The replay's similarity model answers in oomlab's bytes; a model from
//! `oomlab sweep --items ... -- CMD` answers in the team's numpy's. Both
//! choose the knobs by the same rule (memory first: the largest top K that
//! fits; then speed: the fastest measured batch size), name them as the
//! write-up's `.env` lines, and say how far the items can grow.

use std::path::Path;

use anyhow::Result;

use crate::error::{bad_input, exit_with, Exit};
use crate::model::advice::{budget, describe_limit, validate_headroom};
use crate::model::similarity::KnobAdvice;
use crate::model::similarity_command::{env_snippet, SimilarityCommandModel};
use crate::scenario::SimilaritySpec;
use crate::strategy::similarity::resolve_knobs;
use crate::table::Table;
use crate::units::{format_bytes, format_count};

/// What `recommend`/`check --items` ask of a similarity command model.
#[derive(Debug, Clone, Default)]
pub struct CommandAsk {
    /// Items to compute (`--items`).
    pub items: String,
    /// The budget (`--memory`; default: the container's limit, else available memory).
    pub memory: Option<String>,
    /// Share of the budget kept free.
    pub headroom: f64,
}

/// `--items 500000` (underscores and commas inside the number allowed).
pub fn parse_items(text: &str) -> Result<u64> {
    text.trim()
        .replace(['_', ','], "")
        .parse::<u64>()
        .ok()
        .filter(|&n| n >= 2)
        .ok_or_else(|| {
            bad_input(format!(
                "--items {text}: expected a whole number of items, at least 2"
            ))
        })
}

/// The model's first lines: what it is, whose bytes, how well it held out.
fn header(path: &Path, m: &SimilarityCommandModel, items: u64) -> String {
    let mut t = format!(
        "Model: {} (similarity command sweep on scenario `{}`, in {}; measured up to {} items, held-out error {:+.1}% at {} items)\n",
        path.display(),
        m.scenario,
        m.describe(),
        format_count(m.measured_items()),
        m.held_out.error_pct,
        format_count(m.held_out.items)
    );
    t += &format!("Costs: {}\n", m.fit.describe());
    if items > m.measured_items().saturating_mul(4) {
        t += &format!(
            "note: {} items is {:.0}x the largest measured run: the figures are extrapolated, and an error in a per-item cost grows with the distance\n",
            format_count(items),
            items as f64 / m.measured_items().max(1) as f64
        );
    }
    t
}

/// The held-out error as the band every prediction is printed with (at least 1%).
fn band(m: &SimilarityCommandModel, predicted: f64) -> String {
    let e = m.held_out.error_pct.abs().max(1.0) / 100.0;
    format!(
        "{} ({} to {} by the held-out error)",
        format_bytes(predicted as u64),
        format_bytes((predicted * (1.0 - e)).max(0.0) as u64),
        format_bytes((predicted * (1.0 + e)) as u64)
    )
}

/// How far the items can grow at (B, K) under `limit`.
pub fn growth_line(m: &SimilarityCommandModel, items: u64, b: u64, k: u64, limit: f64) -> String {
    match m.max_items(b, k, limit) {
        Some(n) => format!(
            "Items can grow to {} at SIMILARITY_MICRO_BATCH_SIZE={b}, SIMILARITY_TOP_K={k} before the predicted peak crosses the limit ({:.2}x the {} asked)",
            format_count(n),
            n as f64 / items.max(1) as f64,
            format_count(items)
        ),
        None => format!(
            "Not even one item fits at SIMILARITY_MICRO_BATCH_SIZE={b}, SIMILARITY_TOP_K={k}: the fixed cost alone is over the limit"
        ),
    }
}

/// `oomlab recommend --model <similarity command model> --items N`.
pub fn recommend(path: &Path, ask: &CommandAsk) -> Result<Exit> {
    let headroom = validate_headroom(ask.headroom)?;
    let m = SimilarityCommandModel::read(path)?;
    let items = parse_items(&ask.items)?;
    let budget = budget(ask.memory.as_deref())?;
    let limit = budget.bytes as f64 * (1.0 - headroom);
    print!("{}", header(path, &m, items));
    println!(
        "Budget: {} ({}); {}",
        format_bytes(budget.bytes),
        budget.source,
        describe_limit(budget.bytes, headroom)
    );
    let mut headers = vec![
        "SIMILARITY_MICRO_BATCH_SIZE".to_string(),
        "Items/s (measured)".into(),
    ];
    for k in m.top_ks.iter().rev() {
        headers.push(format!(
            "Peak at {} items, SIMILARITY_TOP_K={k}",
            format_count(items)
        ));
    }
    let rows = m
        .batch_sizes
        .iter()
        .map(|&b| {
            let mut row = vec![
                b.to_string(),
                m.items_per_s(b)
                    .map(|v| format!("{v:.0}"))
                    .unwrap_or_else(|| "-".into()),
            ];
            for &k in m.top_ks.iter().rev() {
                let p = m.predict(items, b, k);
                row.push(format!(
                    "{}{}",
                    format_bytes(p as u64),
                    if p <= limit { "" } else { " (over)" }
                ));
            }
            row
        })
        .collect();
    println!("{}", Table { headers, rows }.to_text());
    match m.advise(items, limit)? {
        Ok(a) => {
            print_advice(&m, items, limit, &a);
            Ok(Exit::Ok)
        }
        Err(floor) => Err(no_fit(&floor, headroom)),
    }
}

fn print_advice(m: &SimilarityCommandModel, items: u64, limit: f64, a: &KnobAdvice) {
    println!(
        "Recommendation: SIMILARITY_MICRO_BATCH_SIZE={} SIMILARITY_TOP_K={}: predicted peak {}, {} under the limit{}",
        a.micro_batch_size,
        a.top_k,
        band(m, a.predicted_bytes),
        format_bytes((limit - a.predicted_bytes).max(0.0) as u64),
        a.items_per_s
            .map(|v| format!(", {v:.0} items/s measured"))
            .unwrap_or_default()
    );
    println!(
        "{}",
        growth_line(m, items, a.micro_batch_size, a.top_k, limit)
    );
    println!("\n{}", env_snippet(a, items));
}

fn no_fit(floor: &KnobAdvice, headroom: f64) -> anyhow::Error {
    exit_with(
        Exit::NoFit,
        format!(
            "no measured setting fits: SIMILARITY_MICRO_BATCH_SIZE={} SIMILARITY_TOP_K={} still needs {}; needs at least {} of memory",
            floor.micro_batch_size,
            floor.top_k,
            format_bytes(floor.predicted_bytes as u64),
            format_bytes((floor.predicted_bytes / (1.0 - headroom)) as u64)
        ),
    )
}

/// `oomlab check --model <similarity command model> --items N`: do the
/// planned knobs (flags, else `$SIMILARITY_MICRO_BATCH_SIZE` and
/// `$SIMILARITY_TOP_K`, else the sweep's base) fit? Exit 0 when they do, 1
/// when not (with the knobs that would), 2 on bad input.
pub fn check(path: &Path, ask: &CommandAsk, knobs: (Option<u64>, Option<u64>)) -> Result<Exit> {
    let headroom = validate_headroom(ask.headroom)?;
    let m = SimilarityCommandModel::read(path)?;
    let items = parse_items(&ask.items)?;
    let spec = SimilaritySpec {
        items: items as i64,
        dimension: m.dimension as i64,
        micro_batch_size: m.base.micro_batch_size as i64,
        top_k: m.base.top_k as i64,
    };
    let resolved = resolve_knobs(Some(&spec), knobs.0, knobs.1)?
        .ok_or_else(|| bad_input("internal: no knobs resolved"))?;
    let (b, k) = (resolved.knobs.micro_batch_size, resolved.knobs.top_k);
    let budget = budget(ask.memory.as_deref())?;
    let limit = budget.bytes as f64 * (1.0 - headroom);
    let predicted = m.predict(items, b, k);
    let fits = predicted <= limit;
    let source = |s: &crate::settings::SettingSource| {
        if *s == crate::settings::SettingSource::Scenario {
            "the sweep's base".to_string()
        } else {
            s.to_string()
        }
    };
    println!(
        "{}: {} items at SIMILARITY_MICRO_BATCH_SIZE={b} ({}), SIMILARITY_TOP_K={k} ({})",
        if fits { "FITS" } else { "DOES NOT FIT" },
        format_count(items),
        source(&resolved.micro_batch_size_source),
        source(&resolved.top_k_source)
    );
    print!("{}", header(path, &m, items));
    let outside: Vec<String> = [
        (!m.batch_sizes.contains(&b)).then(|| format!("SIMILARITY_MICRO_BATCH_SIZE={b}")),
        (!m.top_ks.contains(&k)).then(|| format!("SIMILARITY_TOP_K={k}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !outside.is_empty() {
        println!(
            "note: {} was not measured (batch sizes {:?}, top K {:?}): the prediction extends the fitted per-item costs to it",
            outside.join(" and "),
            m.batch_sizes,
            m.top_ks
        );
    }
    println!(
        "  predicted peak {} against {} ({})",
        band(&m, predicted),
        describe_limit(budget.bytes, headroom),
        budget.source
    );
    let margin = limit - predicted;
    println!(
        "  margin: {}{}",
        if margin >= 0.0 { "" } else { "-" },
        format_bytes(margin.abs() as u64)
    );
    println!("  {}", growth_line(&m, items, b, k, limit));
    if !fits {
        match m.advise(items, limit)? {
            Ok(a) => {
                println!(
                    "  would fit: SIMILARITY_MICRO_BATCH_SIZE={} SIMILARITY_TOP_K={} (peak {})",
                    a.micro_batch_size,
                    a.top_k,
                    format_bytes(a.predicted_bytes as u64)
                );
                println!("\n{}", env_snippet(&a, items));
            }
            Err(floor) => println!(
                "  no measured setting fits: the least is SIMILARITY_MICRO_BATCH_SIZE={} SIMILARITY_TOP_K={} at {}",
                floor.micro_batch_size,
                floor.top_k,
                format_bytes(floor.predicted_bytes as u64)
            ),
        }
    }
    Ok(if fits { Exit::Ok } else { Exit::Failed })
}
