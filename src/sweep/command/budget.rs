//! `sweep --budget 2m -- CMD`: the command sweep with its sizes chosen by
//! oomlab within a time budget (see [`crate::sweep::budget`]), fitted and
//! written as any command sweep, plus `budget.json` saying what was spent
//! where and why it stopped.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use super::{
    file_point, generate, kept_in_logs, median_point, needs_data, noise, record_point, run_plan,
    versions, write_command_model, Attempt, CommandRun, CommandSweepSettings, Size,
};
use crate::error::{bad_input, Exit};
use crate::model::{Point, Prediction, VariantModel};
use crate::progress::Progress;
use crate::record::pattern::Pattern;
use crate::report;
use crate::scenario::Scenario;
use crate::sweep::budget::{
    choose, ladder, ladder_rows, ladder_top, next_planned, noise_floor_note, stop_reason, Budget,
    Candidate, Plan, Stop, TimeModel, START_SHIFT, TARGET_HALF_WIDTH,
};
use crate::units::format_count;

/// Share added to a size's predicted upper peak before it is compared with
/// the memory this machine offers: a budget sweep never starts a run the
/// model says may not fit.
const MEMORY_SLACK: f64 = 0.25;

/// The share of what is left of the budget that the probe's repeat may
/// cost, priced as its first run: a quarter leaves the plan its sizes when
/// the cold start is most of the probe's time.
const PROBE_REPEAT_SHARE: f64 = 0.25;

/// One size measured so far and its runs.
struct Group {
    size: Size,
    attempts: Vec<Attempt>,
}

/// One run of a budget sweep, as `budget.json` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetRun {
    pub rows: u64,
    pub attempt: u32,
    /// Wall time of the run (recording included), seconds.
    pub secs: f64,
    /// Wall time of getting its data (generated, or found in the cache;
    /// 0 when the command needs none), seconds: not counted in the budget.
    pub data_secs: f64,
    pub peak_bytes: u64,
}

/// What a budget sweep spent and found, written as `budget.json`.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetOutcome {
    pub budget_secs: f64,
    /// Wall time of the runs, from the first run's start to the last run's
    /// end less the data generation, seconds: what the budget counts.
    pub spent_secs: f64,
    /// Wall time of generating (or finding) data, seconds: outside the budget.
    pub data_secs: f64,
    /// Wall time of the whole sweep, seconds: `spent_secs + data_secs`.
    pub wall_secs: f64,
    pub target_rows: u64,
    pub runs: Vec<BudgetRun>,
    /// The smallest size the model is fitted on: the sizes within 8x of
    /// the largest (at least the largest three); smaller ones priced time.
    pub fitted_from_rows: u64,
    /// The prediction at the target rows (no cap), with its 95% interval.
    pub prediction: Prediction,
    /// The interval's half-width as a share of the prediction.
    pub half_width: f64,
    /// The part of that half-width that is one run's own noise at the
    /// target (the repeats' spread, carried in proportion to the peak), as
    /// a share of the prediction: the floor no budget narrows (`None`
    /// without a spread).
    pub run_noise_half_width: Option<f64>,
    /// Why runs at one size disagree and what to try, when that floor is
    /// wider than the ±5% asked ([`noise::hint`]); else, when the interval
    /// is, a caution where the command's pool races ([`noise::wide_caution`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noise_hint: Option<String>,
    pub reached_target_width: bool,
    pub stopped_because: String,
}

/// How far below the largest size measured a budget sweep still fits: the
/// sizes of at least `1/NEAR_FACTOR` of it (the ladder's rungs are the
/// target halved, so 16x is four rungs below the largest). A budget sweep
/// predicts one size, the target, so its line is the one near the target:
/// the pandas 3 reference's peak is flat where its fixed cost (the load
/// stage, pyarrow's pool) dominates, 2.3 to 2.4 GiB from 133k to 533k rows,
/// then grows 1 GiB a million; the rungs far below the target say nothing of
/// that growth. The per-stage fits and the held-out check's lack of fit
/// carry what bend is left near the target. 16x, not 8x: refitting the 12
/// budget sweeps on record (8 with pyarrow's pool settled, 4 as shipped),
/// 16x gave every one an interval as narrow or narrower that still held the
/// production runs the 8x one held (the settled reference at 2.1M rows
/// largest: ±1.4% where 8x gave ±6.9%, from the probe's repeat and a
/// residual with 3 degrees of freedom rather than 1; as shipped ±60 to 70%
/// where 8x gave ±98 to 127%). The smaller sizes still priced the runs'
/// time and stay in `budget.json`.
const NEAR_FACTOR: u64 = 16;

/// The largest size measured and the one below it, largest first: the
/// sizes near the target, where a run's own spread is read from and where
/// a budget sweep repeats.
fn nearest(groups: &[Group]) -> impl Iterator<Item = &Group> {
    groups.iter().rev().take(2)
}

/// Whether the largest size, or the one below it, ran twice.
fn repeated_near_target(groups: &[Group]) -> bool {
    nearest(groups).any(|g| g.attempts.len() >= 2)
}

/// The groups a budget sweep fits: those within [`NEAR_FACTOR`] of the
/// largest, and at least the largest three (what the held-out check needs).
fn near(groups: &[Group]) -> &[Group] {
    let largest = groups.last().map_or(0, |g| g.size.rows);
    let from = groups
        .iter()
        .position(|g| g.size.rows >= largest / NEAR_FACTOR)
        .unwrap_or(0);
    &groups[from.min(groups.len().saturating_sub(3))..]
}

/// The median points of the groups and the fit of the `command` variant
/// on them, as the sweep's model will be fitted (from three sizes on, the
/// largest held out and its lack of fit carried past it); `None` until
/// there are two sizes.
fn fit_groups(groups: &[Group], columns_ref: u64) -> Option<(VariantModel, f64)> {
    let points: Vec<Point> = near(groups)
        .iter()
        .map(|g| median_point(g.size, 0, &g.attempts))
        .collect();
    if points.len() < 2 {
        return None;
    }
    let names: Vec<String> = points[0]
        .stage_peaks
        .keys()
        .filter(|n| points.iter().all(|p| p.stage_peaks.contains_key(*n)))
        .cloned()
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let keep = points
        .iter()
        .map(|p| p.rows_kept as f64 / p.rows_in.max(1) as f64)
        .sum::<f64>()
        / points.len() as f64;
    let largest = points.iter().map(|p| p.rows_in).max().unwrap_or(0);
    let fitted = if points.len() >= 3 {
        VariantModel::fit_checked(
            ("command", "command", None),
            &names,
            points,
            columns_ref,
            |p| p.rows_in >= largest,
        )
        .map(|(v, _)| v)
    } else {
        VariantModel::fit("command", "command", None, &names, points, columns_ref)
    };
    fitted.ok().map(|v| (v, keep))
}

/// The prediction at `rows` and its relative half-width (infinite without
/// an interval).
fn at(v: &VariantModel, keep: f64, rows: u64) -> (Prediction, f64) {
    let p = v.predict(
        rows,
        (rows as f64 * keep).round() as u64,
        crate::model::Scaling::IDENTITY,
    );
    let h = p
        .interval
        .map_or(f64::INFINITY, |i| i.relative_half_width(p.peak_bytes));
    (p, h)
}

/// A run as the current fit expects it at `size`: for a new size the
/// prediction itself; for a repeat the median moved by one run's standard
/// deviation there, so the expected spread is neither hidden nor invented.
fn expected_attempt(v: &VariantModel, keep: f64, size: Size, repeat: bool) -> Attempt {
    let (p, _) = at(v, keep, size.rows);
    let shift = |stage: &str, bytes: f64| -> f64 {
        if !repeat {
            return 0.0;
        }
        v.stages
            .iter()
            .find(|s| s.name == stage)
            .and_then(|s| s.fit.spread.as_ref())
            .map_or(0.0, |s| s.run_sd(bytes))
    };
    Attempt {
        peak_bytes: p.peak_bytes as u64,
        stage_peaks: p
            .stages
            .iter()
            .map(|s| {
                (
                    s.stage.clone(),
                    (s.bytes + shift(&s.stage, s.bytes)).max(0.0) as u64,
                )
            })
            .collect(),
        kept: Some((size.rows as f64 * keep).round() as u64),
        report: String::new(),
    }
}

/// `rows` as a size of a scenario with `production` rows.
fn size_of(rows: u64, production: u64) -> Size {
    Size {
        rows,
        scale: rows as f64 / production as f64,
    }
}

/// What every run of one budget sweep shares.
struct Context<'a> {
    settings: &'a CommandSweepSettings,
    pattern: &'a Pattern,
    needs_data: bool,
    out: &'a std::path::Path,
    columns_ref: u64,
    production: u64,
}

/// What a budget sweep has measured so far, besides the groups.
#[derive(Default)]
struct State {
    times: TimeModel,
    runs: Vec<BudgetRun>,
    reports: Vec<String>,
    machine: Option<crate::machine::MachineFacts>,
    version: (Option<String>, Option<String>),
    /// What the first run printed about pyarrow and ran with.
    evidence: noise::Evidence,
}

impl State {
    /// Records one run at `rows` (generating its data first when the
    /// command needs it) and files it in its group.
    fn run(
        &mut self,
        ctx: &Context<'_>,
        rows: u64,
        (groups, clock): (&mut Vec<Group>, &mut Budget),
        progress: &mut Progress,
    ) -> Result<()> {
        let size = size_of(rows, ctx.production);
        let index = groups.iter().position(|g| g.size.rows == rows);
        let attempt = index.map_or(1, |i| groups[i].attempts.len() as u32 + 1);
        let t0 = Instant::now();
        let data = if ctx.needs_data {
            Some(generate(ctx.settings, (size.scale, None), progress)?)
        } else {
            None
        };
        let data_time = t0.elapsed();
        clock.exclude(data_time);
        let data_secs = data_time.as_secs_f64();
        let dir_name = format!("rows-{rows}-run-{attempt}");
        let dir = ctx.out.join(&dir_name);
        let t1 = Instant::now();
        let plan_run = CommandRun {
            size,
            columns: None,
            cap: 0,
            attempt,
            dir: dir_name,
        };
        let point = record_point(
            &run_plan(
                ctx.settings,
                ctx.pattern,
                &plan_run,
                (data.as_deref(), ctx.columns_ref),
                &dir,
            ),
            progress,
        )?;
        let secs = t1.elapsed().as_secs_f64();
        if self.version == (None, None) {
            self.version = versions(&dir);
            self.evidence = noise::Evidence::gather(&ctx.settings.template, &dir);
        }
        self.machine.get_or_insert(point.record.machine.clone());
        let path = point.report.display().to_string();
        self.reports.push(path.clone());
        self.runs.push(BudgetRun {
            rows,
            attempt,
            secs,
            data_secs,
            peak_bytes: point.peak_bytes,
        });
        self.times.add(rows, secs);
        let a = Attempt {
            peak_bytes: point.peak_bytes,
            stage_peaks: point.stage_peaks,
            kept: kept_in_logs(&dir),
            report: path,
        };
        match index {
            Some(i) => groups[i].attempts.push(a),
            None => {
                groups.push(Group {
                    size,
                    attempts: vec![a],
                });
                groups.sort_by_key(|g| g.size.rows);
            }
        }
        Ok(())
    }
}

/// Runs a command sweep within `budget`, predicting at `target_rows` (the
/// scenario's production rows when `None`).
pub fn sweep_within(
    settings: CommandSweepSettings,
    budget: Duration,
    target_rows: Option<u64>,
) -> Result<Exit> {
    if settings.template.is_empty() {
        return Err(bad_input(
            "sweep --budget: no command given (usage: oomlab sweep --budget 2m -- CMD ARGS...)",
        ));
    }
    if !settings.fractions.is_empty() || !settings.columns.is_empty() || settings.point.is_some() {
        return Err(bad_input(
            "sweep --budget picks unsampled sizes of rows only: drop --max-ranking-samples-fraction, --columns and --point (or give the sizes with --rows/--scales instead of a budget)",
        ));
    }
    let scenario = Scenario::load(&settings.scenario)?;
    let production = scenario.scenario.production_sizes().sample_rows.max(1);
    let target = target_rows.unwrap_or(production);
    if target < 1 << START_SHIFT {
        return Err(bad_input(format!(
            "--production-rows {target}: a budget sweep starts at 1/{} of the target, so it needs at least {} rows",
            1u64 << START_SHIFT,
            1u64 << START_SHIFT
        )));
    }
    let size_of = |rows: u64| size_of(rows, production);
    let pattern = Pattern::from_flag(&settings.stage_pattern)?;
    let needs_data = needs_data(&settings.template, settings.generate_data);
    let out = settings
        .out
        .clone()
        .unwrap_or_else(|| report::default_out_dir("sweep-command"));
    let mut progress = Progress::new(settings.quiet);
    let columns_ref = scenario.scenario.production_sizes().profile_numeric_columns;
    let usable = crate::preflight::usable_memory()?.0 as f64;

    let mut clock = Budget::start(budget);
    let mut groups: Vec<Group> = Vec::new();
    let mut state = State::default();
    let ctx = Context {
        settings: &settings,
        pattern: &pattern,
        needs_data,
        out: &out,
        columns_ref,
        production,
    };

    // The probe: the ladder's smallest size, which says what a run costs.
    let probe = ladder_rows(target, START_SHIFT);
    state.run(&ctx, probe, (&mut groups, &mut clock), &mut progress)?;
    // Run it again when that is cheap: a first run carries the cold start
    // (imports, the page cache, and on a VM whose host takes freed memory
    // back, every page it touches: the reference's probe took 17 to 19 s,
    // its next runs 3 to 8 s), and the repeat says what a warm run costs,
    // which prices the repeats near the target that an interval needs.
    if state.times.predict_repeat(probe) <= clock.left_secs() * PROBE_REPEAT_SHARE {
        state.run(&ctx, probe, (&mut groups, &mut clock), &mut progress)?;
    }
    let (stop, half_width) = loop {
        let fitted = fit_groups(&groups, columns_ref);
        let h = match &fitted {
            Some((v, keep)) => {
                let (prediction, h) = at(v, *keep, target);
                if !settings.quiet {
                    eprintln!(
                        "budget: {} runs at {} sizes, {:.0}s of {:.0}s; at {} rows: {}",
                        groups.iter().map(|g| g.attempts.len()).sum::<usize>(),
                        groups.len(),
                        clock.spent_secs(),
                        budget.as_secs_f64(),
                        format_count(target),
                        prediction.describe()
                    );
                }
                h
            }
            None => f64::INFINITY,
        };
        // A size fits when its predicted upper peak, with slack, fits this
        // machine: from the fit, or in proportion to the one size measured.
        let fits = |rows: u64| -> bool {
            let upper = match &fitted {
                Some((v, keep)) => at(v, *keep, rows).0.upper_bytes(),
                None => groups.last().map_or(0.0, |g| {
                    let peak = g.attempts.iter().map(|a| a.peak_bytes).max().unwrap_or(0);
                    peak as f64 * rows as f64 / g.size.rows.max(1) as f64
                }),
            };
            upper * (1.0 + MEMORY_SLACK) <= usable
        };
        let measured: Vec<u64> = groups.iter().map(|g| g.size.rows).collect();
        match next_planned(
            target,
            &measured,
            |rows| state.times.predict(rows),
            fits,
            clock.left_secs(),
        ) {
            Plan::Run(rows) => {
                state.run(&ctx, rows, (&mut groups, &mut clock), &mut progress)?;
                continue;
            }
            Plan::Measured => {}
            Plan::Nothing => break (Stop::Spent, h),
        }
        // One run a size cannot show a spread that comes and goes (pandas
        // 3's pyarrow pool keeps or returns a gigabyte of a 10 GiB peak from
        // one run to the next, at random): the largest size runs twice
        // before any interval counts as narrow, or, when its run no longer
        // fits, the size below it.
        let repeated = repeated_near_target(&groups);
        if !repeated {
            let next = nearest(&groups)
                .map(|g| g.size.rows)
                .find(|&rows| state.times.predict_repeat(rows) <= clock.left_secs());
            if let Some(rows) = next {
                state.run(&ctx, rows, (&mut groups, &mut clock), &mut progress)?;
                continue;
            }
        }
        // The largest sizes that fit are measured: stop when narrow enough,
        // else spend what is left where it narrows the interval most.
        if groups.len() >= 3 && h <= TARGET_HALF_WIDTH {
            break (
                if repeated {
                    Stop::Narrow
                } else {
                    Stop::Unrepeated
                },
                h,
            );
        }
        let Some((v, keep)) = fitted.as_ref() else {
            break (Stop::Spent, h);
        };
        let largest = groups.last().map_or(0, |g| g.size.rows);
        // Repeats only at the two largest sizes, the nearest the target: a
        // repeat's spread is carried to the target's peak, and the pandas 3
        // reference's pool moved its peak at 1,066,518 rows by 12% of it (at
        // 4,266,073 rows by 4%), so cheap repeats far below promised a wider
        // noise than the target has (an interval of ±74.9%). Two sizes, not
        // one: a pair at each gives the spread two degrees of freedom (t of
        // 4.3, not 12.7) for the price of one more warm run.
        let mut sizes: Vec<(u64, bool)> = nearest(&groups).map(|g| (g.size.rows, true)).collect();
        // The next two rungs of the ladder above the largest size measured.
        for next in ladder(target).into_iter().filter(|&r| r > largest).take(2) {
            if fits(next) {
                sizes.push((next, false));
            }
        }
        let candidates: Vec<Candidate> = sizes
            .into_iter()
            .map(|(rows, repeat)| {
                let mut hypothetical: Vec<Group> = groups
                    .iter()
                    .map(|g| Group {
                        size: g.size,
                        attempts: g.attempts.clone(),
                    })
                    .collect();
                let a = expected_attempt(v, *keep, size_of(rows), repeat);
                match hypothetical.iter_mut().find(|g| g.size.rows == rows) {
                    Some(g) => g.attempts.push(a),
                    None => {
                        hypothetical.push(Group {
                            size: size_of(rows),
                            attempts: vec![a],
                        });
                        hypothetical.sort_by_key(|g| g.size.rows);
                    }
                }
                let after = fit_groups(&hypothetical, columns_ref)
                    .map_or(f64::INFINITY, |(v, keep)| at(&v, keep, target).1);
                Candidate {
                    rows,
                    repeat,
                    secs: if repeat {
                        state.times.predict_repeat(rows)
                    } else {
                        state.times.predict(rows)
                    },
                    half_width_after: after,
                }
            })
            .collect();
        let left = clock.left_secs();
        match choose(&candidates, h, left) {
            Some(c) => {
                let rows = c.rows;
                state.run(&ctx, rows, (&mut groups, &mut clock), &mut progress)?
            }
            None if candidates.iter().any(|c| c.secs <= left) => break (Stop::NothingNarrows, h),
            None => break (Stop::Spent, h),
        }
    };
    // Past the ladder's top, only repeats were left: say so.
    let top = ladder_top(target);
    let stop = match stop {
        Stop::Spent | Stop::NothingNarrows if groups.iter().any(|g| g.size.rows == top) => {
            Stop::Top
        }
        other => other,
    };
    let spent_secs = clock.spent_secs();
    let data_secs = clock.excluded_secs();
    let wall_secs = clock.wall_secs();

    let fitted = near(&groups);
    let fitted_from_rows = fitted.first().map_or(0, |g| g.size.rows);
    let sizes: Vec<Size> = fitted.iter().map(|g| g.size).collect();
    let mut points: BTreeMap<&'static str, Vec<Point>> = BTreeMap::new();
    let State {
        runs,
        reports,
        machine,
        version,
        evidence: state_evidence,
        ..
    } = state;
    for g in fitted {
        file_point(&mut points, median_point(g.size, 0, &g.attempts), false);
    }
    // A budget sweep never varies columns (refused above): the model's are empty.
    let model = settings.fit_model(&scenario, points, &sizes, machine, version)?;
    write_command_model(&model, &sizes, &out, settings.model.as_deref(), &reports)?;
    let v = model.variant("command")?;
    let prediction = model.predict(v, target, 0);
    // The floor is the peak stage's: the prediction's interval is its.
    let run_noise_half_width = noise::run_noise_share(v, &prediction);
    let noise_hint = noise::hint(run_noise_half_width, target, &state_evidence).or_else(|| {
        (stop != Stop::Narrow)
            .then(|| noise::wide_caution(&state_evidence))
            .flatten()
    });
    let outcome = BudgetOutcome {
        budget_secs: budget.as_secs_f64(),
        spent_secs,
        data_secs,
        wall_secs,
        target_rows: target,
        runs,
        fitted_from_rows,
        half_width: prediction.interval.map_or(f64::INFINITY, |i| {
            i.relative_half_width(prediction.peak_bytes)
        }),
        prediction,
        reached_target_width: stop == Stop::Narrow,
        stopped_because: stop_reason(half_width, stop) + &noise_floor_note(run_noise_half_width),
        run_noise_half_width,
        noise_hint,
    };
    let path: PathBuf = out.join("budget.json");
    report::write_atomically(&path, &serde_json::to_vec_pretty(&outcome)?)?;
    println!(
        "\nBudget {:.0}s: spent {:.1}s measuring ({}) on {} runs at {} sizes ({} rows; the model is fitted on those from {} rows up, within {NEAR_FACTOR}x of the largest); stopped: {}",
        outcome.budget_secs,
        outcome.spent_secs,
        if needs_data {
            format!(
                "{:.1}s more getting data, outside the budget: generated once per ladder size and cached; {:.1}s in all",
                outcome.data_secs, outcome.wall_secs
            )
        } else {
            format!("the command reads no generated data; {:.1}s in all", outcome.wall_secs)
        },
        outcome.runs.len(),
        groups.len(),
        groups
            .iter()
            .map(|g| format_count(g.size.rows))
            .collect::<Vec<_>>()
            .join(", "),
        format_count(outcome.fitted_from_rows),
        outcome.stopped_because
    );
    println!(
        "At {} rows (the target): {}{}",
        format_count(target),
        outcome.prediction.describe(),
        outcome
            .run_noise_half_width
            .map(|h| format!("; one run's own spread there ±{:.1}%", h * 100.0))
            .unwrap_or_default()
    );
    if let Some(h) = &outcome.noise_hint {
        println!("{h}");
    }
    println!("budget: {}", path.display());
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(rows: u64, runs: usize) -> Group {
        Group {
            size: size_of(rows, 8_532_146),
            attempts: vec![
                Attempt {
                    peak_bytes: rows,
                    stage_peaks: Vec::new(),
                    kept: None,
                    report: String::new(),
                };
                runs
            ],
        }
    }

    #[test]
    fn the_fit_reaches_four_rungs_below_the_largest_whatever_the_rounding() {
        // The reference's ladder: 8,532,146 halved. 133,314 x 16 is 4 rows
        // short of 2,133,036, and still four rungs below it.
        let rungs = [133_314, 266_629, 533_259, 1_066_518, 2_133_036];
        let groups: Vec<Group> = rungs.iter().map(|&r| group(r, 1)).collect();
        assert_eq!(near(&groups).len(), 5);
        let mut up = groups;
        up.push(group(4_266_073, 2));
        assert_eq!(near(&up)[0].size.rows, 266_629);
        assert!(repeated_near_target(&up));
        // At least the largest three, however far apart.
        let sparse = [group(1_000, 1), group(100_000, 1), group(10_000_000, 1)];
        assert_eq!(near(&sparse).len(), 3);
        assert!(!repeated_near_target(&sparse));
    }
}
