//! Answers for a memory budget: the model as calibrated by what was
//! observed, the largest `MAX_RANKING_SAMPLES` each budget allows beside the
//! write-up's rule of thumb, and what a cap costs the long tail.
//!
//! Shared by `oomlab recommend` and `oomlab check`; above the model, the
//! sweep (coverage generates data through it) and the tables.

pub mod similarity;
pub mod similarity_command;

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polars::prelude::*;
use serde::Serialize;

use crate::data::columns::{DATASET_ID, LABEL};
use crate::data::DataCache;
use crate::error::bad_input;
use crate::model::advice::{self, rule_of_thumb, Answer, Budget, TABLE_BUDGETS_GIB};
use crate::model::{find_model, Calibration, Model, ObservedPeak, VariantModel};
use crate::progress::Progress;
use crate::sampling::{self, CoverageRow, SamplingMode};
use crate::scenario::LoadedScenario;
use crate::sweep::base_plan;
use crate::table::Table;
use crate::units::{format_bytes, format_count};

/// The write-up's two recommended caps, always shown in the coverage table.
pub use crate::sweep::WRITE_UP_CAPS;

/// Where a model and its calibration come from (`--model`, `--observed`,
/// `--fidelity`).
#[derive(Debug, Clone, Default)]
pub struct ModelSource {
    /// The model file (`None`: the default model path).
    pub model: Option<PathBuf>,
    /// Observed peaks, `ROWS:PEAK[:CAP]`.
    pub observed: Vec<String>,
    /// A `fidelity.json` whose pandas runs calibrate the model.
    pub fidelity: Option<PathBuf>,
    /// Numeric profile columns the planned run merges (`--columns`; `None`:
    /// the model's count): the model is re-centred there before anything
    /// else, so observations are taken as runs at that count too.
    pub columns: Option<u64>,
}

/// A model as read, and as calibrated by `--observed` (when given).
pub struct LoadedModel {
    /// The file read, or `bundled:NAME`.
    pub path: PathBuf,
    /// The sentence saying a bundled model stands in for a missing default
    /// (printed first), if one does.
    pub fallback: Option<String>,
    /// The model as saved.
    pub before: Model,
    /// The model answers come from (calibrated when observations were given).
    pub model: Model,
}

/// Reads the model, picks the variant of `strategy` sampled the `sampling`
/// way, and calibrates it: to a `--fidelity` result's pandas peaks (affine,
/// see [`Model::calibrate_affine`]) together with any `--observed` peaks, or
/// to `--observed` peaks alone (one factor).
pub fn load_model(
    args: &ModelSource,
    strategy: &str,
    sampling: SamplingMode,
) -> Result<(LoadedModel, String)> {
    let found = find_model(args.model.as_deref())?;
    let (path, mut before) = (found.path, found.model);
    if let Some(c) = args.columns {
        if c == 0 || c > 10_000 {
            return Err(bad_input(format!(
                "--columns {c}: expected the number of numeric profile columns merged, in [1, 10000] (the model's is {})",
                before.columns_now()
            )));
        }
        before = before.at_columns(c);
    }
    let variant = before.variant_for(strategy, sampling)?.name.clone();
    let mut model = before.clone();
    let mut observations = args
        .observed
        .iter()
        .map(|o| ObservedPeak::parse(o))
        .collect::<Result<Vec<_>>>()?;
    match args.fidelity.as_deref() {
        Some(file) => {
            observations.extend(crate::fidelity::observations(
                file,
                strategy,
                &before.scenario.name,
            )?);
            let source = format!("the pandas runs in {}", file.display());
            model.calibrate_observed(&variant, &observations, Some(&source))?;
        }
        None => model.calibrate_observed(&variant, &observations, None)?,
    }
    Ok((
        LoadedModel {
            path,
            fallback: found.fallback,
            before,
            model,
        },
        variant,
    ))
}

/// Parses `--rows` (`8532146`, `8_532_146`, `8,532,146`), defaulting to the
/// scenario's production rows.
pub fn parse_rows(text: Option<&str>, model: &Model) -> Result<u64> {
    let Some(text) = text else {
        return Ok(model.scenario.production.sample_rows);
    };
    let rows = text
        .trim()
        .replace(['_', ','], "")
        .parse::<u64>()
        .map_err(|_| {
            bad_input(format!(
                "--rows {text}: expected a whole number of rows, e.g. 8532146"
            ))
        })?;
    if rows == 0 {
        return Err(bad_input("--rows 0: expected at least one row"));
    }
    Ok(rows)
}

/// The before/after view of a calibration: each observation, and the question asked.
pub fn calibration_table(
    before: &Model,
    after: &Model,
    variant: &VariantModel,
    rows_in: u64,
    cap: u64,
) -> Option<Table> {
    let cal: &Calibration = after.calibration.as_ref()?;
    let headers = [
        "",
        "Rows in",
        "MAX_RANKING_SAMPLES",
        "Observed",
        "Model before",
        "Model after",
    ]
    .map(String::from)
    .to_vec();
    let mut rows: Vec<Vec<String>> = cal
        .observations
        .iter()
        .map(|o| {
            // A kill names the stage it died in: compare that stage's figure.
            let at = |m: &Model| {
                let p = m.predict(variant, o.rows_in, o.max_ranking_samples);
                o.stage
                    .as_deref()
                    .and_then(|st| p.stages.iter().find(|s| s.stage == st))
                    .map_or(p.peak_bytes, |s| s.bytes)
            };
            vec![
                if o.at_least { "killed" } else { "observed" }.into(),
                format_count(o.rows_in),
                cap_label(o.max_ranking_samples),
                format!(
                    "{}{}{}",
                    if o.at_least { ">= " } else { "" },
                    format_bytes(o.peak_bytes),
                    o.stage
                        .as_deref()
                        .map(|s| format!(" in {s}"))
                        .unwrap_or_default()
                ),
                format_bytes(at(before) as u64),
                format_bytes(at(after) as u64),
            ]
        })
        .collect();
    rows.push(vec![
        "asked".into(),
        format_count(rows_in),
        cap_label(cap),
        "-".into(),
        format_bytes(before.predict(variant, rows_in, cap).peak_bytes as u64),
        format_bytes(after.predict(variant, rows_in, cap).peak_bytes as u64),
    ]);
    Some(Table { headers, rows })
}

pub fn cap_label(cap: u64) -> String {
    if cap == 0 {
        "0 (no limit)".into()
    } else {
        format_count(cap)
    }
}

/// One row of the budget table.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetRow {
    pub budget_gib: u64,
    pub limit_bytes: f64,
    /// oomlab's answer (`None`: nothing fits).
    pub max_ranking_samples: Option<u64>,
    pub predicted_bytes: f64,
    /// The 95% interval of `predicted_bytes` (`None`: the model has none).
    pub predicted_interval: Option<crate::model::Interval>,
    pub peak_stage: String,
    pub rule_of_thumb: u64,
    pub rule_predicted_bytes: f64,
    pub rule_fits: bool,
    /// Rows `streaming` can load without sampling under this limit (issue 8);
    /// `None` when the model has no streaming variant.
    pub streaming_no_sampling_max_rows: Option<u64>,
}

/// Coverage of one candidate cap.
#[derive(Debug, Clone, Serialize)]
pub struct CoverageCandidate {
    pub max_ranking_samples: u64,
    pub uniform_peak_bytes: Option<f64>,
    pub capped_peak_bytes: Option<f64>,
    /// Expected at the asked row count, from the scenario's Zipf law.
    pub expected: CoverageRow,
    /// Measured on the scenario's generated data at `data_scale`, cap scaled alike.
    pub measured: CoverageRow,
}

/// What sampling costs the long tail, for each candidate cap.
#[derive(Debug, Clone, Serialize)]
pub struct CoverageReport {
    pub data_scale: f64,
    pub data_rows_after_dropna: u64,
    pub datasets: u64,
    pub candidates: Vec<CoverageCandidate>,
    /// One sentence per candidate where capped sampling keeps more of the tail.
    pub verdicts: Vec<String>,
}

/// Everything `recommend --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct RecommendOutput {
    pub model: String,
    pub budget: Budget,
    pub headroom: f64,
    pub limit_bytes: f64,
    pub rows_in: u64,
    pub rows_after_dropna: u64,
    pub sampling: SamplingMode,
    pub answer: Answer,
    /// The setting (`None` when nothing fits).
    pub max_ranking_samples: Option<u64>,
    /// Limit minus predicted peak.
    pub margin_bytes: f64,
    /// Rows `streaming` can load under the same limit without any sampling
    /// (issue 8); `None` when the model has no streaming variant.
    pub streaming_no_sampling_max_rows: Option<u64>,
    /// The smallest budget that would fit (when nothing does).
    pub needs_at_least_bytes: Option<u64>,
    pub table: Vec<BudgetRow>,
    pub coverage: Option<CoverageReport>,
    pub calibration: Option<Calibration>,
    /// How far the rows loaded can grow at the recommended cap before the
    /// peak crosses the limit (`None` when nothing fits).
    pub rows_headroom: Option<crate::model::advice::RowsHeadroom>,
    /// Rows, columns and both together at the recommended cap (`None` when
    /// nothing fits).
    pub growth: Option<crate::model::advice::Growth>,
    pub warnings: Vec<String>,
}

/// The growth table as people read it: one line per rows factor, one column
/// per columns added, each cell the predicted peak and whether it fits.
pub fn growth_table_text(t: &advice::GrowthTable) -> Table {
    let mut headers = vec!["Rows loaded".to_string()];
    if let Some(first) = t.cells.first() {
        for (i, c) in first.iter().enumerate() {
            headers.push(if i == 0 {
                format!("{} columns (+{})", c.columns, c.columns_added)
            } else {
                format!("{} (+{})", c.columns, c.columns_added)
            });
        }
    }
    let rows = t
        .cells
        .iter()
        .map(|row| {
            let mut line = vec![row.first().map_or(String::new(), |c| {
                format!("x{} {}", c.rows_factor, format_count(c.rows_in))
            })];
            line.extend(row.iter().map(|c| {
                format!(
                    "{} {}",
                    format_bytes(c.peak_bytes as u64),
                    if c.fits { "fits" } else { "OVER" }
                )
            }));
            line
        })
        .collect();
    Table { headers, rows }
}

/// True unless the model is a command's that never reported a column count
/// (no `--columns`, no `{columns}`): its figures then say nothing of
/// columns, and an answer must not name the scenario's count as if the
/// command had measured it.
pub fn knows_columns(model: &crate::model::Model) -> bool {
    !matches!(model.source, crate::model::ModelSource::Command { .. })
        || model.columns.at > 0
        || !model.columns.measured.is_empty()
}

/// The growth lines `check` and `recommend` print under their verdict:
/// rows alone, columns alone, then both together. `columns`: false for a
/// model that knows nothing of columns ([`knows_columns`]); only the rows
/// line is printed.
pub fn growth_text(g: &advice::Growth, cap: u64, columns: bool) -> String {
    if !columns {
        return format!(
            "  growth: {}\n",
            advice::rows_headroom_sentence(&g.rows, cap)
        );
    }
    let mut s = format!(
        "  growth: {}
          {}
",
        advice::rows_headroom_sentence(&g.rows, cap),
        advice::columns_headroom_sentence(&g.columns)
    );
    s += &format!(
        "  rows and {} grown together (predicted peak against the {} limit{}):\n",
        g.columns.what,
        format_bytes(g.table.limit_bytes as u64),
        if cap > 0 {
            format!(", MAX_RANKING_SAMPLES={cap} held")
        } else {
            String::new()
        }
    );
    for line in growth_table_text(&g.table).to_text().lines() {
        s += &format!("    {line}\n");
    }
    s
}

/// The smallest budget whose limit after headroom holds `floor`, rounded up
/// by a byte so that float rounding in `limit = budget x (1 - headroom)` can
/// never make the budget named here fall short of it.
pub fn needs_at_least(floor: f64, headroom: f64) -> u64 {
    (floor / (1.0 - headroom)).ceil() as u64 + 1
}

/// Reads the ranking samples of the scenario at `scale` (generating them first,
/// through the measuring path, when the cache lacks them) and keeps what dropna keeps.
fn working_frame(model: &Model, scale: f64, cache_root: &Path) -> Result<DataFrame> {
    let scenario = &model.scenario.scenario;
    let sizes = scenario.sizes(scale);
    let cache = DataCache::locate(cache_root, scenario, &sizes);
    if cache.meta().is_none() {
        // Generate it through the measuring path, as `oomlab data` does.
        let mut plan = base_plan(
            "recommend",
            Path::new(&model.scenario.path),
            cache_root,
            std::time::Duration::from_millis(50),
            Vec::new(),
        )
        .map_err(|e| {
            bad_input(format!(
                "the coverage figures need the scenario's data at scale {scale}, which is not in {} and cannot be generated: {e} (pass --cache-dir, or --no-coverage)",
                cache_root.display()
            ))
        })?;
        plan.scenario = LoadedScenario {
            path: PathBuf::from(&model.scenario.path),
            scenario: scenario.clone(),
        };
        plan.scale = scale;
        plan.run(&mut Progress::new(true))?;
    }
    let path = cache.samples_path();
    let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let samples = ParquetReader::new(file)
        .with_columns(Some(vec![DATASET_ID.to_string(), LABEL.to_string()]))
        .finish()
        .map_err(anyhow::Error::from)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(samples.drop_nulls(Some(&[LABEL]))?)
}

/// Coverage of each candidate cap: expected at `rows_in`, measured at `scale`.
pub fn coverage(
    model: &Model,
    rows_in: u64,
    caps: &[u64],
    scale: f64,
    cache_root: &Path,
) -> Result<CoverageReport> {
    let working = working_frame(model, scale, cache_root)?;
    let here = working.height() as u64;
    let kept_full = model.rows_after_dropna(rows_in).max(1);
    let datasets = model.scenario.production.datasets;
    let uniform = model.variant_for("optimized", SamplingMode::Uniform).ok();
    let capped = model.variant_for("optimized", SamplingMode::Capped).ok();
    let mut candidates = Vec::new();
    let mut verdicts = Vec::new();
    for &cap in caps {
        let cap_here = ((cap as f64 * here as f64 / kept_full as f64).round() as u64).max(1);
        let measured = sampling::measure(&working, DATASET_ID, cap_here, datasets)?;
        let expected = sampling::expected(&model.scenario.scenario, datasets, kept_full, cap);
        let peak = |v: Option<&VariantModel>| {
            v.filter(|v| v.sampling.is_some())
                .map(|v| model.predict(v, rows_in, cap).peak_bytes)
        };
        let (u, c) = (peak(uniform), peak(capped));
        let gain = expected.capped.share_at_least_10 - expected.uniform.share_at_least_10;
        let gain1 = expected.capped.share_at_least_1 - expected.uniform.share_at_least_1;
        if gain > 0.001 || gain1 > 0.001 {
            let memory = match (u, c) {
                (Some(u), Some(c)) if (c - u).abs() <= 0.02 * u => {
                    format!(
                        "at the same memory ({} vs {})",
                        format_bytes(c as u64),
                        format_bytes(u as u64)
                    )
                }
                (Some(u), Some(c)) => format!(
                    "for {} {} memory ({} vs {})",
                    format_bytes((c - u).abs() as u64),
                    if c > u { "more" } else { "less" },
                    format_bytes(c as u64),
                    format_bytes(u as u64)
                ),
                _ => "(no capped model to compare memory; rerun sweep)".into(),
            };
            verdicts.push(format!(
                "MAX_RANKING_SAMPLES={}: capped sampling keeps {:.1} more points of datasets with >=10 samples and {:.1} more with >=1 than uniform sampling, {memory}",
                format_count(cap),
                gain * 100.0,
                gain1 * 100.0
            ));
        }
        candidates.push(CoverageCandidate {
            max_ranking_samples: cap,
            uniform_peak_bytes: u,
            capped_peak_bytes: c,
            expected,
            measured,
        });
    }
    Ok(CoverageReport {
        data_scale: scale,
        data_rows_after_dropna: here,
        datasets,
        candidates,
        verdicts,
    })
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// The coverage table: per candidate, shares of datasets keeping >= 1 / >= 10.
pub fn coverage_table(report: &CoverageReport) -> Table {
    let headers = [
        "MAX_RANKING_SAMPLES",
        "none: >=1 / >=10",
        "uniform: >=1 / >=10",
        "capped: >=1 / >=10 (per-dataset cap)",
        "measured at scale: uniform / capped (>=1, >=10)",
        "peak uniform",
        "peak capped",
    ]
    .map(String::from)
    .to_vec();
    let rows = report
        .candidates
        .iter()
        .map(|c| {
            let e = &c.expected;
            let m = &c.measured;
            vec![
                format_count(c.max_ranking_samples),
                format!(
                    "{} / {}",
                    pct(e.none.share_at_least_1),
                    pct(e.none.share_at_least_10)
                ),
                format!(
                    "{} / {}",
                    pct(e.uniform.share_at_least_1),
                    pct(e.uniform.share_at_least_10)
                ),
                format!(
                    "{} / {} (m={})",
                    pct(e.capped.share_at_least_1),
                    pct(e.capped.share_at_least_10),
                    format_count(e.per_dataset)
                ),
                format!(
                    "{}, {} / {}, {}",
                    pct(m.uniform.share_at_least_1),
                    pct(m.uniform.share_at_least_10),
                    pct(m.capped.share_at_least_1),
                    pct(m.capped.share_at_least_10)
                ),
                c.uniform_peak_bytes
                    .map_or("-".into(), |b| format_bytes(b as u64)),
                c.capped_peak_bytes
                    .map_or("-".into(), |b| format_bytes(b as u64)),
            ]
        })
        .collect();
    Table { headers, rows }
}

/// Rows the `streaming` strategy can load without sampling under `limit`
/// (`None` when the model has no streaming variant, or no per-row cost).
pub fn streaming_rows(model: &Model, limit: f64) -> Option<u64> {
    if matches!(model.source, crate::model::ModelSource::Command { .. }) {
        return None; // a command model is of the command, not of `streaming`
    }
    let streaming = model.variant_for("streaming", SamplingMode::Uniform).ok()?;
    advice::max_rows_without_sampling(model, streaming, limit)
}

/// The answer for each of [`TABLE_BUDGETS_GIB`], beside the rule of thumb.
pub fn budget_rows(
    model: &Model,
    variant: &VariantModel,
    rows_in: u64,
    headroom: f64,
) -> Result<Vec<BudgetRow>> {
    TABLE_BUDGETS_GIB
        .iter()
        .map(|&gib| {
            let bytes = gib << 30;
            let limit = bytes as f64 * (1.0 - headroom);
            let answer = advice::recommend(model, variant, rows_in, limit)?;
            let rule = rule_of_thumb(bytes);
            let rule_prediction = model.predict(variant, rows_in, rule);
            let rule_pred = rule_prediction.peak_bytes;
            let streaming = streaming_rows(model, limit);
            Ok(BudgetRow {
                budget_gib: gib,
                limit_bytes: limit,
                max_ranking_samples: answer.setting(),
                predicted_bytes: answer.prediction().peak_bytes,
                predicted_interval: answer.prediction().interval,
                peak_stage: answer.prediction().peak_stage.clone(),
                rule_of_thumb: rule,
                rule_predicted_bytes: rule_pred,
                rule_fits: rule_prediction.upper_bytes() <= limit,
                streaming_no_sampling_max_rows: streaming,
            })
        })
        .collect()
}

pub fn budget_table(rows: &[BudgetRow], headroom: f64) -> Table {
    let headers = vec![
        "Budget".to_string(),
        format!("Limit ({:.0}% headroom)", headroom * 100.0),
        "oomlab: MAX_RANKING_SAMPLES".into(),
        "Predicted peak".into(),
        "Sets the peak".into(),
        "Rule of thumb (Q2)".into(),
        "Rule's predicted peak".into(),
        "streaming: no sampling up to".into(),
    ];
    let rows = rows
        .iter()
        .map(|r| {
            vec![
                format!("{} GiB", r.budget_gib),
                format_bytes(r.limit_bytes as u64),
                r.max_ranking_samples
                    .map_or("no setting fits".into(), |c| c.to_string()),
                crate::model::interval::describe(r.predicted_bytes, r.predicted_interval),
                r.peak_stage.clone(),
                r.rule_of_thumb.to_string(),
                format!(
                    "{} ({})",
                    format_bytes(r.rule_predicted_bytes as u64),
                    if r.rule_fits {
                        "fits"
                    } else {
                        "over the limit"
                    }
                ),
                r.streaming_no_sampling_max_rows
                    .map_or("-".into(), |n| format!("{} rows", format_count(n))),
            ]
        })
        .collect();
    Table { headers, rows }
}
