//! `oomlab sweep --items a,b,c [--batch-sizes ..] [--top-k ..] -- CMD`: a
//! team's own similarity command, measured by items and by its two knobs.
//!
//! The write-up's first OOM was item-item similarity in the team's numpy, and
//! the fix is two knobs (`SIMILARITY_MICRO_BATCH_SIZE`, `SIMILARITY_TOP_K`).
//! The replay's sweep ([`crate::sweep::similarity`]) measures oomlab's own
//! code; this one runs the command itself, every point through
//! [`crate::record`] (process tree, stages from its log lines, exact peak),
//! and fits [`SimilarityCommandModel`] in the command's bytes.
//!
//! The design varies one knob at a time around the base (the first value of
//! each grid): at every item count but the largest, the base knobs, every
//! batch size at the base top K and every top K at the base batch size; the
//! largest item count runs once, at the largest batch size and top K (larger
//! in everything), and is held out. A grid whose values do not move the peak
//! is refused: the command ignores that placeholder.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use super::generate_data;
use super::points::stage_peaks_of;
use super::template::regex_lite_version;
use crate::error::{bad_input, exit_with, Exit};
use crate::model::similarity::ThroughputPoint;
use crate::model::similarity_command::*;
use crate::model::ModelSource;
use crate::progress::Progress;
use crate::record::pattern::Pattern;
use crate::record::{record, RecordPlan, StageStream};
use crate::report::{self, RunStatus};
use crate::scenario::Scenario;
use crate::strategy::similarity::{Knobs, MICRO_BATCH_ENV, TOP_K_ENV};
use crate::units::{format_bytes, format_count};

/// The placeholders a similarity command sweep substitutes, with the
/// variable each is also exported as.
pub const SIMILARITY_PLACEHOLDERS: [(&str, &str); 5] = [
    ("{items}", "OOMLAB_ITEMS"),
    ("{batch_size}", MICRO_BATCH_ENV),
    ("{top_k}", TOP_K_ENV),
    ("{data_dir}", "OOMLAB_DATA_DIR"),
    ("{scale}", "OOMLAB_SCALE"),
];

/// Ranking-prep placeholders, refused here: they would be substituted with
/// nothing the similarity command is about.
const RANKING_ONLY: [&str; 3] = ["{rows}", "{max_ranking_samples}", "{columns}"];

/// A knob grid must move the peak by at least this share of the smaller
/// peak at the largest fitted item count, else the command ignores it.
const FLAT_SHARE: f64 = 0.02;

/// What a similarity command sweep is asked for.
#[derive(Debug, Clone)]
pub struct SimilaritySweepSettings {
    /// The command and its arguments, placeholders unsubstituted.
    pub template: Vec<OsString>,
    /// A similarity scenario: the data `{data_dir}` holds and the production items.
    pub scenario: PathBuf,
    /// Item counts (at least 3 distinct; the largest is held out).
    pub items: Vec<u64>,
    /// `SIMILARITY_MICRO_BATCH_SIZE` values, the base first (empty: the scenario's).
    pub batch_sizes: Vec<u64>,
    /// `SIMILARITY_TOP_K` values, the base first (empty: the scenario's).
    pub top_ks: Vec<u64>,
    /// Runs per point; each figure is their median.
    pub repeat: u32,
    pub cache_dir: Option<PathBuf>,
    pub interval: Duration,
    /// The sweep's directory (`None`: `reports/runs/<time>-sweep-similarity-command/`).
    pub out: Option<PathBuf>,
    /// Where the model is also saved.
    pub model: Option<PathBuf>,
    pub stage_pattern: String,
    /// Generate the data even when no argument names `{data_dir}`.
    pub generate_data: bool,
    pub force: bool,
    pub quiet: bool,
}

/// One run of the design.
#[derive(Debug, Clone, PartialEq)]
pub struct KnobRun {
    pub items: u64,
    pub micro_batch_size: u64,
    pub top_k: u64,
    /// The held-out point (largest items, largest knobs).
    pub held_out: bool,
}

/// `--items`, `--batch-sizes`, `--top-k`: positive whole numbers, in the
/// order given (the first knob value is the base), duplicates dropped.
pub fn parse_counts(flag: &str, text: &str) -> Result<Vec<u64>> {
    let mut out: Vec<u64> = Vec::new();
    for t in text.split(',') {
        let t = t.trim();
        let n = t
            .replace('_', "")
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                bad_input(format!(
                    "{flag} {text}: `{t}` is not a positive whole number (expected a comma-separated list such as 20,50,100)"
                ))
            })?;
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

/// The runs, in the order measured: per fitted item count the base knobs,
/// then the other batch sizes, then the other top Ks; last the held-out run.
pub fn design(items: &[u64], batches: &[u64], top_ks: &[u64]) -> Vec<KnobRun> {
    let (Some(&b0), Some(&k0)) = (batches.first(), top_ks.first()) else {
        return Vec::new();
    };
    let mut sorted = items.to_vec();
    sorted.sort_unstable();
    let Some((&last, fitted)) = sorted.split_last() else {
        return Vec::new();
    };
    let run = |items, micro_batch_size, top_k, held_out| KnobRun {
        items,
        micro_batch_size,
        top_k,
        held_out,
    };
    let mut runs = Vec::new();
    for &n in fitted {
        runs.push(run(n, b0, k0, false));
        runs.extend(
            batches
                .iter()
                .filter(|&&b| b != b0)
                .map(|&b| run(n, b, k0, false)),
        );
        runs.extend(
            top_ks
                .iter()
                .filter(|&&k| k != k0)
                .map(|&k| run(n, b0, k, false)),
        );
    }
    let max = |v: &[u64]| v.iter().copied().max().unwrap_or(0);
    runs.push(run(last, max(batches), max(top_ks), true));
    runs
}

/// The argv of one run: every similarity placeholder replaced.
fn substitute(template: &[OsString], values: &[(&str, String)]) -> Vec<OsString> {
    template
        .iter()
        .map(|arg| match arg.to_str() {
            Some(text) => {
                let mut t = text.to_string();
                for (p, v) in values {
                    t = t.replace(p, v);
                }
                OsString::from(t)
            }
            None => arg.clone(),
        })
        .collect()
}

fn names(template: &[OsString], placeholder: &str) -> bool {
    template
        .iter()
        .filter_map(|a| a.to_str())
        .any(|a| a.contains(placeholder))
}

/// Checks the settings (exit 2): a command, a similarity scenario, at least
/// three item counts, no ranking-only placeholder.
fn plan(settings: &SimilaritySweepSettings) -> Result<(Scenario, Knobs)> {
    if settings.template.is_empty() {
        return Err(bad_input(
            "sweep --items: no command given (usage: oomlab sweep --items 4000,6000,8000,12000 -- CMD ARGS...)",
        ));
    }
    if settings.repeat == 0 {
        return Err(bad_input("--repeat 0: run each point at least once"));
    }
    for p in RANKING_ONLY {
        if names(&settings.template, p) {
            return Err(bad_input(format!(
                "sweep --items -- CMD: an argument names {p}, a ranking-prep placeholder; a similarity sweep substitutes {{items}}, {{batch_size}}, {{top_k}}, {{data_dir}} and {{scale}}"
            )));
        }
    }
    let loaded = Scenario::load(&settings.scenario)?;
    let spec = loaded.scenario.similarity.clone().ok_or_else(|| {
        bad_input(format!(
            "{}: not a similarity scenario (no [similarity] section); a sweep by --items needs one, such as scenarios/similarity.toml",
            settings.scenario.display()
        ))
    })?;
    if settings.items.len() < 3 {
        return Err(bad_input(format!(
            "--items: expected at least 3 distinct item counts, got {} (the model is fitted on all but the largest, which is held out)",
            settings.items.len()
        )));
    }
    if let Some(&n) = settings.items.iter().find(|&&n| n < 2) {
        return Err(bad_input(format!(
            "--items: {n} item(s) have no neighbours; expected at least 2"
        )));
    }
    Ok((loaded.scenario, Knobs::from_spec(&spec)))
}

/// The measured point of one run (the median of its repeats).
fn measure(
    settings: &SimilaritySweepSettings,
    pattern: &Pattern,
    run: &KnobRun,
    (data_dir, scale): (Option<&Path>, f64),
    out: &Path,
    progress: &mut Progress,
) -> Result<KnobPoint> {
    let mut attempts = Vec::new();
    for attempt in 1..=settings.repeat {
        let dir = out.join(format!(
            "items-{}-batch-{}-topk-{}{}",
            run.items,
            run.micro_batch_size,
            run.top_k,
            if settings.repeat > 1 {
                format!("-run-{attempt}")
            } else {
                String::new()
            }
        ));
        let dir_text = data_dir
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        let values = [
            ("{items}", run.items.to_string()),
            ("{batch_size}", run.micro_batch_size.to_string()),
            ("{top_k}", run.top_k.to_string()),
            ("{data_dir}", dir_text.clone()),
            ("{scale}", scale.to_string()),
        ];
        let mut env: Vec<(String, String)> = SIMILARITY_PLACEHOLDERS
            .iter()
            .zip(&values)
            .map(|((_, var), (_, v))| (var.to_string(), v.clone()))
            .collect();
        if data_dir.is_none() {
            env.retain(|(k, _)| k != "OOMLAB_DATA_DIR");
        }
        let plan = RecordPlan {
            command: substitute(&settings.template, &values),
            interval: settings.interval,
            memory_limit: None,
            pattern: pattern.clone(),
            stream: StageStream::Both,
            label: format!("items-{}", run.items),
            out: dir.clone(),
            passthrough: !settings.quiet,
            env,
            point: None,
        };
        let report = record(&plan, progress)?;
        crate::summary::write_report_dir(&report, &dir)?;
        let path = dir.join("report.json");
        let r = report.runs.first().context("the record has no run")?;
        if r.status != RunStatus::Completed {
            let exit = match report::exit_for(&report) {
                Exit::Ok => Exit::ChildFailed,
                e => e,
            };
            return Err(exit_with(
                exit,
                format!(
                    "sweep stopped: the command did not complete at {} items, SIMILARITY_MICRO_BATCH_SIZE={}, SIMILARITY_TOP_K={} ({}); no model written; report: {}{}",
                    format_count(run.items),
                    run.micro_batch_size,
                    run.top_k,
                    crate::runner::classify::status_sentence("the command", &r.status),
                    path.display(),
                    if r.stderr_tail.is_empty() {
                        String::new()
                    } else {
                        format!("\nits stderr ended with:\n{}", r.stderr_tail.join("\n"))
                    }
                ),
            ));
        }
        let stages = stage_peaks_of(r);
        attempts.push(KnobPoint {
            items: run.items,
            micro_batch_size: run.micro_batch_size,
            top_k: run.top_k,
            peak_bytes: r.peak_bytes.unwrap_or(r.sampled_peak_bytes),
            peak_stage: stages
                .iter()
                .max_by_key(|(_, p)| *p)
                .map(|(n, _)| n.clone())
                .unwrap_or_default(),
            // The first stage the command logged (record's own `start` has none).
            base_bytes: r
                .stages
                .iter()
                .map(|s| s.rss_start_bytes)
                .find(|b| *b > 0)
                .unwrap_or(0),
            wall_s: r.wall_s,
            report: path.display().to_string(),
        });
    }
    attempts.sort_by_key(|p| p.peak_bytes);
    Ok(attempts.swap_remove((attempts.len() - 1) / 2))
}

/// Refuses (exit 2) a grid whose values do not move the peak at the largest
/// fitted item count: the command does not use that placeholder.
fn refuse_unused(
    points: &[KnobPoint],
    template: &[OsString],
    (flag, placeholder, var): (&str, &str, &str),
    value: impl Fn(&KnobPoint) -> u64,
    base_other: impl Fn(&KnobPoint) -> bool,
) -> Result<()> {
    let Some(n) = points.iter().map(|p| p.items).max() else {
        return Ok(());
    };
    let at: Vec<&KnobPoint> = points
        .iter()
        .filter(|p| p.items == n && base_other(p))
        .collect();
    let (Some(lo), Some(hi)) = (
        at.iter().min_by_key(|p| value(p)),
        at.iter().max_by_key(|p| value(p)),
    ) else {
        return Ok(());
    };
    if value(lo) == value(hi) {
        return Ok(());
    }
    let moved = (hi.peak_bytes as f64 - lo.peak_bytes as f64).abs();
    if moved >= FLAT_SHARE * lo.peak_bytes.min(hi.peak_bytes) as f64 {
        return Ok(());
    }
    let why = if names(template, placeholder) {
        format!("an argument names {placeholder}, but the command ignores it")
    } else {
        format!("{placeholder} is unused: no argument names it, and the command ignores ${var}")
    };
    Err(bad_input(format!(
        "{flag}: the peak did not change with it ({} at {}, {} at {}, at {} items): {why}; drop {flag}, or pass the value to the command",
        format_bytes(lo.peak_bytes),
        value(lo),
        format_bytes(hi.peak_bytes),
        value(hi),
        format_count(n)
    )))
}

/// Runs a similarity command sweep, fits and writes its model, and prints
/// the held-out check, the per-item costs and the throughput.
pub fn sweep(settings: SimilaritySweepSettings) -> Result<Exit> {
    let (scenario, scenario_knobs) = plan(&settings)?;
    let spec = scenario
        .similarity
        .clone()
        .context("not a similarity scenario")?;
    let production_items = spec.items.max(1) as u64;
    let batches = if settings.batch_sizes.is_empty() {
        vec![scenario_knobs.micro_batch_size]
    } else {
        settings.batch_sizes.clone()
    };
    let top_ks = if settings.top_ks.is_empty() {
        vec![scenario_knobs.top_k]
    } else {
        settings.top_ks.clone()
    };
    let base = Knobs {
        micro_batch_size: batches[0],
        top_k: top_ks[0],
    };
    let pattern = Pattern::from_flag(&settings.stage_pattern)?;
    let needs_data = settings.generate_data || names(&settings.template, "{data_dir}");
    let out = settings
        .out
        .clone()
        .unwrap_or_else(|| report::default_out_dir("sweep-similarity-command"));
    let mut progress = Progress::new(settings.quiet);
    let runs = design(&settings.items, &batches, &top_ks);
    let largest_fitted = runs.iter().filter(|r| !r.held_out).map(|r| r.items).max();
    let mut points: Vec<KnobPoint> = Vec::new();
    let mut data: Option<(u64, PathBuf)> = None;
    let mut machine = None;
    let mut python = None;
    let mut numpy = None;
    for (i, run) in runs.iter().enumerate() {
        let scale = run.items as f64 / production_items as f64;
        if needs_data && data.as_ref().is_none_or(|(n, _)| *n != run.items) {
            let dir = generate_data(
                &settings.scenario,
                settings.cache_dir.as_deref(),
                (scale, None),
                settings.force,
                &mut progress,
            )?;
            data = Some((run.items, dir));
        }
        let p = measure(
            &settings,
            &pattern,
            run,
            (data.as_ref().map(|(_, d)| d.as_path()), scale),
            &out,
            &mut progress,
        )?;
        if machine.is_none() {
            let dir = Path::new(&p.report).parent().unwrap_or(Path::new("."));
            machine = report::Report::read_json(Path::new(&p.report))
                .ok()
                .map(|r| r.machine);
            let text = [dir.join("stdout.log"), dir.join("stderr.log")]
                .iter()
                .filter_map(|f| std::fs::read(f).ok())
                .map(|b| String::from_utf8_lossy(&b[..b.len().min(64 << 10)]).into_owned())
                .collect::<Vec<_>>()
                .join("\n");
            python = text.lines().find_map(regex_lite_version("python"));
            numpy = text.lines().find_map(regex_lite_version("numpy"));
        }
        points.push(p);
        let next_is_held_out = runs.get(i + 1).is_some_and(|r| r.held_out);
        if next_is_held_out {
            refuse_flat_items(&points, &settings.template, base)?;
            refuse_unused(
                &points,
                &settings.template,
                ("--batch-sizes", "{batch_size}", MICRO_BATCH_ENV),
                |p| p.micro_batch_size,
                |p| p.top_k == base.top_k,
            )?;
            refuse_unused(
                &points,
                &settings.template,
                ("--top-k", "{top_k}", TOP_K_ENV),
                |p| p.top_k,
                |p| p.micro_batch_size == base.micro_batch_size,
            )?;
        }
    }
    let (train, held): (Vec<KnobPoint>, Vec<KnobPoint>) = points
        .iter()
        .cloned()
        .partition(|p| Some(p.items) <= largest_fitted);
    let held = held.first().context("no held-out point")?;
    let base_points: Vec<(u64, u64, u64)> = train
        .iter()
        .filter(|p| p.micro_batch_size == base.micro_batch_size && p.top_k == base.top_k)
        .map(|p| (p.items, p.peak_bytes, p.base_bytes))
        .collect();
    let exponent = marginal_exponent(&base_points);
    let mut quadratic = exponent > QUADRATIC_EXPONENT;
    let mut checked = KnobFit::fit(&train, quadratic)?;
    if quadratic && !quadratic_is_material(&checked, &base_points) {
        quadratic = false;
        checked = KnobFit::fit(&train, quadratic)?;
    }
    let predicted = checked.eval(held.items, held.micro_batch_size, held.top_k);
    let held_out = HeldOutCheck {
        fitted_items: {
            let mut v: Vec<u64> = train.iter().map(|p| p.items).collect();
            v.dedup();
            v
        },
        items: held.items,
        micro_batch_size: held.micro_batch_size,
        top_k: held.top_k,
        measured_bytes: held.peak_bytes,
        predicted_bytes: predicted,
        error_pct: (predicted - held.peak_bytes as f64) / held.peak_bytes.max(1) as f64 * 100.0,
    };
    let throughput: Vec<ThroughputPoint> = train
        .iter()
        .filter(|p| Some(p.items) == largest_fitted && p.top_k == base.top_k)
        .map(|p| ThroughputPoint {
            micro_batch_size: p.micro_batch_size,
            items: p.items,
            items_per_s: p.items as f64 / p.wall_s.max(1e-9),
            peak_bytes: p.peak_bytes,
        })
        .collect();
    let mut sorted_b = batches.clone();
    sorted_b.sort_unstable();
    let mut sorted_k = top_ks.clone();
    sorted_k.sort_unstable();
    let model = SimilarityCommandModel {
        kind: SIMILARITY_COMMAND_KIND.into(),
        schema_version: SIMILARITY_COMMAND_SCHEMA_VERSION,
        oomlab_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: report::utc_now_rfc3339(),
        source: ModelSource::Command {
            argv: settings
                .template
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            stage_pattern: settings.stage_pattern.clone(),
            python,
            pandas: None,
            allocator_env: crate::model::allocator_env(),
            named: Default::default(),
        },
        numpy,
        scenario: scenario.name.clone(),
        scenario_path: settings.scenario.display().to_string(),
        production_items,
        dimension: spec.dimension.max(0) as u64,
        base,
        batch_sizes: sorted_b,
        top_ks: sorted_k,
        machine: machine.unwrap_or_default(),
        fit: KnobFit::fit(&points, quadratic)?,
        points,
        exponent,
        held_out,
        throughput,
    };
    let text = model.summary();
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    model.write(&out.join("model.json"))?;
    if let Some(path) = &settings.model {
        model.write(path)?;
    }
    report::write_atomically(
        &out.join("sweep.md"),
        format!("# Similarity command sweep\n\n```\n{text}```\n").as_bytes(),
    )?;
    println!("\n{text}");
    println!("model: {}", out.join("model.json").display());
    if let Some(path) = &settings.model {
        println!("  (also saved as {})", path.display());
    }
    println!("summary: {}", out.join("sweep.md").display());
    Ok(Exit::Ok)
}

/// Refuses (exit 2) item counts that did not move the peak at the base knobs.
fn refuse_flat_items(points: &[KnobPoint], template: &[OsString], base: Knobs) -> Result<()> {
    let at: Vec<&KnobPoint> = points
        .iter()
        .filter(|p| p.micro_batch_size == base.micro_batch_size && p.top_k == base.top_k)
        .collect();
    let (Some(lo), Some(hi)) = (
        at.iter().min_by_key(|p| p.items),
        at.iter().max_by_key(|p| p.items),
    ) else {
        return Ok(());
    };
    if hi.items > lo.items
        && (hi.peak_bytes as f64 - lo.peak_bytes as f64) < FLAT_SHARE * lo.peak_bytes as f64
    {
        let why = if names(template, "{items}") || names(template, "{data_dir}") {
            "the command ignored the items it was given"
        } else {
            "no argument names {items} or {data_dir}, and the command ignored $OOMLAB_ITEMS and $OOMLAB_DATA_DIR"
        };
        return Err(bad_input(format!(
            "--items: the peak did not grow with the items ({} at {}, {} at {} items): {why}; a model of it would extrapolate noise",
            format_bytes(lo.peak_bytes),
            format_count(lo.items),
            format_bytes(hi.peak_bytes),
            format_count(hi.items)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_design_varies_one_knob_at_a_time_and_holds_out_the_largest() {
        let runs = design(&[8000, 4000, 6000], &[50, 20, 200], &[100, 200]);
        // 2 fitted sizes x (base + 2 batch + 1 top K) + 1 held out.
        assert_eq!(runs.len(), 2 * 4 + 1);
        assert_eq!(
            runs[0],
            KnobRun {
                items: 4000,
                micro_batch_size: 50,
                top_k: 100,
                held_out: false
            }
        );
        let last = runs.last().unwrap();
        assert_eq!(
            (last.items, last.micro_batch_size, last.top_k, last.held_out),
            (8000, 200, 200, true)
        );
        assert!(runs[..runs.len() - 1]
            .iter()
            .all(|r| !r.held_out && r.items < 8000));
        // No grids: the base alone at every size.
        assert_eq!(design(&[1, 2, 3], &[50], &[200]).len(), 3);
    }

    #[test]
    fn counts_parse_in_order_and_refuse_zero() {
        assert_eq!(
            parse_counts("--top-k", "200,50,200").unwrap(),
            vec![200, 50]
        );
        assert!(parse_counts("--top-k", "0").is_err());
        assert!(parse_counts("--items", "1e4").is_err());
    }
}
