//! `sweep` and `recommend --items` on item-item similarity scenarios.
//!
//! The same measuring path as every replay ([`ReplayPlan`] through
//! [`super::sweep::base_plan`] and [`super::sweep::run_plan`]): each point is
//! what `oomlab run` reports at that scale. What differs from ranking prep is
//! the size that drives memory (items N, quadratically for the full matrix)
//! and the knobs (`SIMILARITY_MICRO_BATCH_SIZE`, `SIMILARITY_TOP_K`).

use anyhow::{Context, Result};

use super::{parse_scales, run_plan, sweep_plan, SweepSettings};
use crate::data::cache::default_cache_root;
use crate::error::Exit;
use crate::model::similarity::{
    batch_item_cost, similarity_model_path, SimilarityModel, SimilarityPoint, StrategyModel,
    ThroughputPoint, BATCH_SIZES, SIMILARITY_MODEL_SCHEMA_VERSION,
};
use crate::progress::Progress;
use crate::report::{self, utc_now_rfc3339, Report, RunRecord};
use crate::sampling::SamplingMode;
use crate::scenario::{LoadedScenario, Workload};
use crate::settings::SettingSource;
use crate::strategy::similarity::{Knobs, ResolvedKnobs};
use crate::strategy::{self, Strategy};
use crate::table::Table;
use crate::units::{format_bytes, format_count};

/// The write-up's memory table row for similarity: 500,000 items, 200 GB -> 8 GB.
const WRITE_UP_ROW: &str = "200 GB -> 8 GB (96% ↓)";

/// Stage whose wall time is the scoring work (items/s).
const SCORING_STAGE: &str = "micro_batches";

fn similarity_strategy(name: &str) -> Result<&'static dyn Strategy> {
    strategy::by_name_for(Workload::Similarity, name)
        .with_context(|| format!("similarity strategy `{name}` is not built in"))
}

fn point(report: &Report, run: &RunRecord) -> Result<SimilarityPoint> {
    let peak_bytes = run.peak_bytes.with_context(|| {
        format!(
            "{} at scale {}: no exact peak in the report",
            run.strategy, report.scenario.scale
        )
    })?;
    let stage = run
        .stages
        .iter()
        .max_by_key(|s| s.exact_peak_bytes.unwrap_or(0))
        .map(|s| s.name.clone())
        .unwrap_or_default();
    Ok(SimilarityPoint {
        scale: report.scenario.scale,
        items: report.scenario.scaled.items,
        peak_bytes,
        base_bytes: run.stages.first().map_or(0, |s| s.rss_start_bytes),
        stage,
    })
}

/// `oomlab sweep` on a similarity scenario.
pub fn sweep(args: &SweepSettings, scenario: &LoadedScenario) -> Result<Exit> {
    let scales = parse_scales(&args.scales)?;
    let cache_root = args.cache_dir.clone().unwrap_or_else(default_cache_root);
    let name = scenario.scenario.name.clone();
    let out = args.out_dir(&name);
    let mut progress = Progress::new(args.quiet);
    let legacy = similarity_strategy("legacy")?;
    let optimized = similarity_strategy("optimized")?;
    // The same plan as a ranking sweep's, without sampling.
    let plan_at = |scale: f64, strategies: Vec<&'static dyn Strategy>| {
        sweep_plan(
            args,
            &cache_root,
            (scale, 0, SamplingMode::Uniform),
            strategies,
            Default::default(),
        )
    };

    let mut legacy_points = Vec::new();
    let mut optimized_points = Vec::new();
    let mut machine = None;
    let mut knobs = None;
    for &scale in &scales {
        let plan = plan_at(scale, vec![legacy, optimized])?;
        knobs = plan.similarity.as_ref().map(|r| r.knobs);
        let report = run_plan(plan, &out.join(format!("scale-{scale}")), &mut progress)?;
        machine.get_or_insert(report.machine.clone());
        for run in &report.runs {
            let p = point(&report, run)?;
            match run.strategy.as_str() {
                "legacy" => legacy_points.push(p),
                _ => optimized_points.push(p),
            }
        }
    }
    let knobs = knobs.context("the similarity scenario resolved no knobs")?;

    // Throughput and peak of each batch size, at the largest scale.
    let largest = *scales.last().context("no scales")?;
    let mut throughput = Vec::new();
    for &b in &BATCH_SIZES {
        let mut plan = plan_at(largest, vec![optimized])?;
        plan.similarity = Some(ResolvedKnobs {
            knobs: Knobs {
                micro_batch_size: b,
                top_k: knobs.top_k,
            },
            micro_batch_size_source: SettingSource::Harness,
            top_k_source: plan
                .similarity
                .as_ref()
                .map_or(SettingSource::Scenario, |r| r.top_k_source),
        });
        let dir = out
            .join(format!("scale-{largest}"))
            .join(format!("batch-{b}"));
        let report = run_plan(plan, &dir, &mut progress)?;
        for run in &report.runs {
            let scoring = run
                .stages
                .iter()
                .find(|s| s.name == SCORING_STAGE)
                .map(|s| s.end_s - s.start_s)
                .unwrap_or(run.wall_s)
                .max(1e-9);
            throughput.push(ThroughputPoint {
                micro_batch_size: b,
                items: report.scenario.scaled.items,
                items_per_s: report.scenario.scaled.items as f64 / scoring,
                peak_bytes: run.peak_bytes.unwrap_or(run.sampled_peak_bytes),
            });
        }
    }

    let spec = scenario
        .scenario
        .similarity
        .as_ref()
        .context("not a similarity scenario")?;
    let model = SimilarityModel {
        schema_version: SIMILARITY_MODEL_SCHEMA_VERSION,
        oomlab_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: utc_now_rfc3339(),
        scenario: name.clone(),
        scenario_path: scenario.path.display().to_string(),
        production_items: spec.items.max(0) as u64,
        dimension: spec.dimension.max(0) as u64,
        micro_batch_size: knobs.micro_batch_size,
        top_k: knobs.top_k,
        machine: machine.unwrap_or_default(),
        strategies: vec![
            StrategyModel::fit("legacy", legacy_points)?,
            StrategyModel::fit("optimized", optimized_points)?,
        ],
        bytes_per_batch_item_per_item: batch_item_cost(&throughput),
        throughput,
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    model.write(&out.join("similarity-model.json"))?;
    let saved = similarity_model_path(args.model.as_deref());
    model.write(&saved)?;

    let pictures = crate::plot::render(&crate::plot::fits::FitChart::similarity(&model), &out)?;
    let mut summary = render(&model)?;
    for p in pictures
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
    {
        if let Some(name) = p.file_name() {
            summary += &format!("\n![sweep]({})\n", name.to_string_lossy());
        }
    }
    report::write_atomically(&out.join("sweep.md"), summary.as_bytes())?;
    println!("\n{summary}");
    println!(
        "model: {} (also saved as {})",
        out.join("similarity-model.json").display(),
        saved.display()
    );
    Ok(Exit::Ok)
}

/// The sweep's findings as markdown: fits, held-out errors, exponents,
/// throughput, and the production row beside the write-up's.
fn render(model: &SimilarityModel) -> Result<String> {
    let fits = Table {
        headers: vec![
            "Strategy".into(),
            "Points (items)".into(),
            "Fit".into(),
            "R²".into(),
            "Held-out N".into(),
            "Held-out error".into(),
            "Exponent of peak in N".into(),
        ],
        rows: model
            .strategies
            .iter()
            .map(|s| {
                let items: Vec<String> = s.points.iter().map(|p| format_count(p.items)).collect();
                let quadratic = if s.strategy == "legacy" {
                    format!(" + {:.2} B x N²", s.fit.bytes_per_row_kept)
                } else {
                    String::new()
                };
                vec![
                    s.strategy.clone(),
                    items.join(", "),
                    format!(
                        "{} + {:.0} B x N{quadratic}",
                        format_bytes(s.fit.fixed_bytes.max(0.0) as u64),
                        s.fit.bytes_per_row_in
                    ),
                    format!("{:.4}", s.fit.r2),
                    format_count(s.holdout_items),
                    format!("{:+.1}%", s.holdout_error * 100.0),
                    format!("{:.2}", s.exponent),
                ]
            })
            .collect(),
    };
    let legacy = model.strategy("legacy")?;
    let optimized = model.strategy("optimized")?;
    let n = model.production_items;
    let (l, o) = (legacy.predict(n), optimized.predict(n));
    let production = Table {
        headers: vec![
            "Scenario".into(),
            "Data size".into(),
            "legacy peak".into(),
            "optimized peak".into(),
            "Reduction".into(),
            "Write-up".into(),
        ],
        rows: vec![vec![
            format!("{}: item similarity", model.scenario),
            format!("{} items", format_count(n)),
            format!(
                "{} (extrapolated, held-out error {:+.1}%)",
                format_bytes(l as u64),
                legacy.holdout_error * 100.0
            ),
            format!(
                "{} (extrapolated, held-out error {:+.1}%)",
                format_bytes(o as u64),
                optimized.holdout_error * 100.0
            ),
            format!("{:.1}% ↓", (1.0 - o / l.max(1.0)) * 100.0),
            WRITE_UP_ROW.into(),
        ]],
    };
    let throughput = Table {
        headers: vec![
            "SIMILARITY_MICRO_BATCH_SIZE".into(),
            "Items".into(),
            "Items/s".into(),
            "Peak".into(),
        ],
        rows: model
            .throughput
            .iter()
            .map(|t| {
                vec![
                    t.micro_batch_size.to_string(),
                    format_count(t.items),
                    format!("{:.0}", t.items_per_s),
                    format_bytes(t.peak_bytes),
                ]
            })
            .collect(),
    };
    Ok(format!(
        "# Similarity sweep: {}\n\nKnobs of the scale points: SIMILARITY_MICRO_BATCH_SIZE={}, SIMILARITY_TOP_K={}, dimension {}.\n\n## Fits (exact peaks; the largest N held out)\n\n{}\n## At production size\n\n{}\nThe write-up's 200 GB -> 8 GB are production's figures for its own implementation, not a dense f32 N x N matrix (at 500,000 items that alone is 931 GiB): compare the shape (quadratic vs linear) and the reduction, not the bytes.\n\n## Throughput at {} items\n\n{}",
        model.scenario,
        model.micro_batch_size,
        model.top_k,
        model.dimension,
        fits.to_markdown(),
        production.to_markdown(),
        format_count(model.throughput.first().map_or(0, |t| t.items)),
        throughput.to_markdown()
    ))
}
