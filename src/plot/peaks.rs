//! `peaks.png`/`.svg`: the exact peak of every stage, strategy beside strategy.
//!
//! The before/after table says *how much* a fix saved; this picture says
//! *where*: one row per stage (in pipeline order, stages only one strategy has
//! included), one bar per strategy, the kernel's exact peak written on each bar
//! and the reduction against the first strategy written beside each row.
//! Horizontal bars keep long stage names readable however many stages there are.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::glyphs::draw_text;
use super::style::{
    self, font_at, series_style, text_extent, text_size, ByteUnit, SeriesStyle, BETTER, INK, LIMIT,
    MUTED, WORSE,
};
use super::timeline::nice_ticks;
use super::{Chart, PlotOptions};
use crate::report::{Report, RunRecord, RunStatus, StageRecord};
use crate::table;
use crate::units::format_bytes;

/// File stem of the picture.
pub const NAME: &str = "peaks";

const WIDTH: i32 = 1200;
const MARGIN: i32 = 20;
const BAR_H: i32 = 22;
const BAR_GAP: i32 = 3;
const ROW_GAP: i32 = 18;
const AXIS_H: i32 = 40;
const REDUCTION_W: i32 = 150;
/// A stage's change against the first strategy smaller than this (percent)
/// is drawn grey, not green or red: identical stages (both strategies' `load`)
/// differ by a fraction of a percent from run to run.
const NOISE_PCT: f64 = 1.0;

/// The per-stage peaks picture of one report, laid out.
pub struct PeaksChart<'a> {
    report: &'a Report,
    runs: Vec<(&'a RunRecord, SeriesStyle)>,
    /// Stage names in pipeline order, the union over all runs.
    stages: Vec<String>,
    /// Top pixel row of each stage's group of bars.
    row_tops: Vec<i32>,
    budget: Vec<(String, u64)>,
    unit: ByteUnit,
    x_max_bytes: f64,
    left: i32,
    header: i32,
    height: i32,
}

/// Merges the stage lists of all runs into one order that respects each run's
/// own order: a stage only one strategy has goes right after its predecessor,
/// or (when it is the run's first) right before the run's next shared stage;
/// a run that shares no stage at all follows the runs before it, so the
/// picture reads in the report's strategy order.
pub fn stage_order(runs: &[&RunRecord]) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    for run in runs {
        let mut after: Option<usize> = None;
        for (j, s) in run.stages.iter().enumerate() {
            match order.iter().position(|n| *n == s.name) {
                Some(i) => after = Some(i),
                None => {
                    let at = match after {
                        Some(i) => i + 1,
                        None => run.stages[j + 1..]
                            .iter()
                            .find_map(|later| order.iter().position(|n| *n == later.name))
                            .unwrap_or(order.len()),
                    };
                    order.insert(at, s.name.clone());
                    after = Some(at);
                }
            }
        }
    }
    order
}

fn stage_of<'r>(run: &'r RunRecord, name: &str) -> Option<&'r StageRecord> {
    run.stages.iter().find(|s| s.name == name)
}

/// Bar slots of a stage's group: one per strategy that has the stage, one
/// for the line naming those that do not.
fn slots(runs: &[(&RunRecord, SeriesStyle)], name: &str) -> i32 {
    let present = runs
        .iter()
        .filter(|(r, _)| stage_of(r, name).is_some())
        .count();
    (present + usize::from(present < runs.len())) as i32
}

/// Pixel height of a stage's group of bars, with the gap after it.
fn group_height(runs: &[(&RunRecord, SeriesStyle)], name: &str) -> i32 {
    slots(runs, name) * (BAR_H + BAR_GAP) - BAR_GAP + ROW_GAP
}

/// "legacy", "legacy or optimized", "legacy, optimized or streaming".
fn either(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

impl<'a> PeaksChart<'a> {
    /// Whether any run has a stage to show.
    pub fn applies(report: &Report) -> bool {
        report.runs.iter().any(|r| !r.stages.is_empty())
    }

    /// Lays out the peaks picture of `report`.
    pub fn new(report: &'a Report, opts: &PlotOptions) -> Self {
        let runs: Vec<(&RunRecord, SeriesStyle)> = report
            .runs
            .iter()
            .enumerate()
            .map(|(i, r)| (r, series_style(&r.strategy, i)))
            .collect();
        let stages = stage_order(&runs.iter().map(|(r, _)| *r).collect::<Vec<_>>());
        let data_max = runs
            .iter()
            .flat_map(|(r, _)| r.stages.iter().map(StageRecord::best_peak))
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        // A budget is drawn when it is on the scale of the bars.
        let budget: Vec<(String, u64)> = opts
            .reference_lines()
            .into_iter()
            .filter(|(_, b)| (*b as f64) <= data_max * 2.0)
            .collect();
        let top = budget
            .iter()
            .map(|(_, b)| *b as f64)
            .fold(data_max, f64::max);
        let x_max_bytes = top * 1.28;
        let unit = ByteUnit::for_max(x_max_bytes);
        let name_w = stages
            .iter()
            .map(|s| text_extent(s, text_size::LABEL).0)
            .max()
            .unwrap_or(0);
        let left = MARGIN + name_w + 16;
        // A budget's label sits over the plot, below the legend.
        let header = MARGIN + 34 + 26 + 30 + 14 + if budget.is_empty() { 0 } else { 22 };
        // A group has a bar per strategy that has the stage, and one line
        // naming those that do not.
        let mut row_tops = Vec::with_capacity(stages.len());
        let mut y = header + ROW_GAP / 2;
        for name in &stages {
            row_tops.push(y);
            y += group_height(&runs, name);
        }
        let height = y - ROW_GAP / 2 + AXIS_H + MARGIN + 10;
        Self {
            report,
            runs,
            stages,
            row_tops,
            budget,
            unit,
            x_max_bytes,
            left,
            header,
            height,
        }
    }

    fn right(&self) -> i32 {
        WIDTH - MARGIN - REDUCTION_W
    }

    fn plot_bottom(&self) -> i32 {
        self.height - MARGIN - AXIS_H
    }

    fn x_px(&self, bytes: f64) -> i32 {
        let w = (self.right() - self.left) as f64;
        self.left + style::px(bytes / self.x_max_bytes * w)
    }

    /// The headline: each strategy's overall peak against the first one's.
    fn headline(&self) -> String {
        let Some((first, _)) = self.runs.first() else {
            return String::new();
        };
        let mut parts = vec![format!("{} {}", first.strategy, table::peak_cell(first))];
        for (r, _) in self.runs.iter().skip(1) {
            let mut p = format!("{} {}", r.strategy, table::peak_cell(r));
            if let Some(pct) = table::reduction(first, r) {
                if pct >= 0.0 {
                    p += &format!(" ({pct:.1}% lower)");
                } else {
                    p += &format!(" ({:.1}% higher)", -pct);
                }
            }
            parts.push(p);
        }
        format!("Overall peak: {}", parts.join(" vs "))
    }

    fn draw_frame<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let title = format!(
            "Exact peak RSS per stage: {} scenario",
            self.report.scenario.name
        );
        draw_text(
            root,
            &title,
            &font_at(text_size::TITLE, &INK, HPos::Left, VPos::Top),
            (MARGIN, MARGIN),
        )?;
        draw_text(
            root,
            &self.headline(),
            &font_at(text_size::LEGEND, &INK, HPos::Left, VPos::Top),
            (MARGIN, MARGIN + 38),
        )?;
        // Legend: swatch and name per strategy.
        let mut x = self.left;
        let y = MARGIN + 34 + 26 + 20;
        for (r, st) in &self.runs {
            draw_swatch(root, (x, y - 8), (x + 28, y + 8), st)?;
            draw_text(
                root,
                &r.strategy,
                &font_at(text_size::LEGEND, &INK, HPos::Left, VPos::Center),
                (x + 36, y),
            )?;
            x += 36 + text_extent(&r.strategy, text_size::LEGEND).0 + 30;
        }
        draw_text(
            root,
            "kernel high-water mark (VmHWM) of each stage",
            &font_at(text_size::SMALL, &MUTED, HPos::Left, VPos::Center),
            (x + 10, y),
        )?;
        if self.runs.len() > 1 {
            if let Some((first, _)) = self.runs.first() {
                draw_text(
                    root,
                    &format!("vs {}", first.strategy),
                    &font_at(text_size::LABEL, &MUTED, HPos::Left, VPos::Bottom),
                    (self.right() + 24, self.header - 4),
                )?;
            }
        }

        // Axis and grid.
        let (top, bottom) = (self.header, self.plot_bottom());
        let x_top = self.unit.of(self.x_max_bytes as u64);
        for v in nice_ticks(x_top, 6) {
            let x = self.x_px(v * self.unit.bytes);
            if x > self.right() {
                continue;
            }
            root.draw(&PathElement::new(
                vec![(x, top), (x, bottom)],
                style::GRID.stroke_width(1),
            ))?;
            root.draw(&PathElement::new(
                vec![(x, bottom), (x, bottom + 5)],
                INK.stroke_width(1),
            ))?;
            draw_text(
                root,
                &self.unit.tick(v),
                &font_at(text_size::LABEL, &INK, HPos::Center, VPos::Top),
                (x, bottom + 8),
            )?;
        }
        root.draw(&PathElement::new(
            vec![
                (self.left, top),
                (self.left, bottom),
                (self.right(), bottom),
            ],
            INK.stroke_width(1),
        ))?;
        Ok(())
    }

    fn draw_bars<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        // Budget or limit, when on the scale of the bars: under the bars and
        // their labels, its own label over the plot.
        for (label, bytes) in &self.budget {
            let x = self.x_px(*bytes as f64);
            let dash = SeriesStyle {
                color: LIMIT,
                dash: style::Dash::Dashed,
                marker: style::MarkerShape::Square,
                width: 2,
            };
            style::draw_line(root, &[(x, self.header), (x, self.plot_bottom())], &dash, 2)?;
            let text = format!("{label} {}", format_bytes(*bytes));
            let (h, at) = if x - 4 - text_extent(&text, text_size::SMALL).0 >= MARGIN {
                (HPos::Right, x - 4)
            } else {
                (HPos::Left, x + 4)
            };
            draw_text(
                root,
                &text,
                &font_at(text_size::SMALL, &LIMIT, h, VPos::Bottom),
                (at, self.header - 2),
            )?;
        }
        let first = self.runs.first().map(|(r, _)| *r);
        for (name, &y0) in self.stages.iter().zip(&self.row_tops) {
            let group_mid = y0 + (group_height(&self.runs, name) - ROW_GAP) / 2;
            draw_text(
                root,
                name,
                &font_at(text_size::LABEL, &INK, HPos::Right, VPos::Center),
                (self.left - 10, group_mid),
            )?;
            let missing: Vec<&str> = self
                .runs
                .iter()
                .filter(|(r, _)| stage_of(r, name).is_none())
                .map(|(r, _)| r.strategy.as_str())
                .collect();
            if !missing.is_empty() {
                let by = y0 + (slots(&self.runs, name) - 1) * (BAR_H + BAR_GAP);
                draw_text(
                    root,
                    &format!("no {name} stage in {}", either(&missing)),
                    &font_at(text_size::SMALL, &MUTED, HPos::Left, VPos::Center),
                    (self.left + 8, by + BAR_H / 2),
                )?;
            }
            let present = self
                .runs
                .iter()
                .enumerate()
                .filter_map(|(k, (r, st))| stage_of(r, name).map(|s| (k, r, st, s)));
            for (slot, (k, run, st, stage)) in present.enumerate() {
                let by = y0 + slot as i32 * (BAR_H + BAR_GAP);
                let mid = by + BAR_H / 2;
                let bytes = stage.best_peak();
                let x1 = self.x_px(bytes as f64).max(self.left + 2);
                let label = match stage.exact_peak_bytes {
                    Some(p) => {
                        draw_swatch(root, (self.left, by), (x1, by + BAR_H), st)?;
                        let is_run_peak = run.peak_stage().is_some_and(|s| s.name == stage.name)
                            && run.status == RunStatus::Completed;
                        if is_run_peak && self.runs.len() > 1 {
                            format!("{}  ({} peak)", format_bytes(p), run.strategy)
                        } else {
                            format_bytes(p)
                        }
                    }
                    None => {
                        // The process died in this stage: only the sampled RSS is known.
                        root.draw(&Rectangle::new(
                            [(self.left, by), (x1, by + BAR_H)],
                            st.color.mix(0.25).filled(),
                        ))?;
                        root.draw(&Rectangle::new(
                            [(self.left, by), (x1, by + BAR_H)],
                            LIMIT.stroke_width(2),
                        ))?;
                        let verb = match run.status {
                            RunStatus::Failed { .. } => "failed",
                            RunStatus::Interrupted { .. } => "interrupted",
                            _ => "killed",
                        };
                        format!("≥ {} sampled ({verb} here)", format_bytes(bytes))
                    }
                };
                // White behind the value, so a budget line under it does not cut it.
                let (w, h) = text_extent(&label, text_size::SMALL);
                root.draw(&Rectangle::new(
                    [(x1 + 3, mid - h / 2 - 1), (x1 + 9 + w, mid + h / 2 + 1)],
                    WHITE.filled(),
                ))?;
                draw_text(
                    root,
                    &label,
                    &font_at(text_size::SMALL, &INK, HPos::Left, VPos::Center),
                    (x1 + 6, mid),
                )?;
                // Reduction against the first strategy, on the same line as the bar.
                let (Some(first), true) = (first, k > 0) else {
                    continue;
                };
                let before = stage_of(first, name).and_then(|s| s.exact_peak_bytes);
                if let (Some(b), Some(a)) = (before, stage.exact_peak_bytes) {
                    if b > 0 {
                        let pct = (b as f64 - a as f64) / b as f64 * 100.0;
                        // Within NOISE_PCT the figure is shown but not judged:
                        // the same stage run twice differs by that much.
                        let judged = |c| if pct.abs() < NOISE_PCT { MUTED } else { c };
                        let (text, color) = if pct >= 0.05 {
                            (format!("−{pct:.1}%"), judged(BETTER))
                        } else if pct <= -0.05 {
                            (format!("+{:.1}%", -pct), judged(WORSE))
                        } else {
                            ("±0%".to_string(), MUTED)
                        };
                        draw_text(
                            root,
                            &text,
                            &font_at(text_size::LABEL, &color, HPos::Left, VPos::Center),
                            (self.right() + 24, mid),
                        )?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A filled bar in a strategy's colour, hatched by its line pattern (none for
/// solid, `/` for dashed, `\` for dotted, both for long dashes), so bars
/// differ in greyscale beyond their lightness, as the timeline's lines do.
fn draw_swatch<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    (x0, y0): (i32, i32),
    (x1, y1): (i32, i32),
    st: &SeriesStyle,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.draw(&Rectangle::new([(x0, y0), (x1, y1)], st.color.filled()))?;
    let (rising, falling) = match st.dash {
        style::Dash::Solid => (false, false),
        style::Dash::Dashed => (true, false),
        style::Dash::Dotted => (false, true),
        style::Dash::Long => (true, true),
    };
    let h = y1 - y0;
    let mut c = x0 - h;
    while c < x1 {
        // Points (c + t, y) for t in 0..=h, clipped to the bar's columns.
        let (lo, hi) = ((x0 - c).max(0), (x1 - c).min(h));
        if lo < hi {
            let hatch = WHITE.mix(0.55).stroke_width(2);
            if rising {
                root.draw(&PathElement::new(
                    vec![(c + lo, y1 - lo), (c + hi, y1 - hi)],
                    hatch,
                ))?;
            }
            if falling {
                root.draw(&PathElement::new(
                    vec![(c + lo, y0 + lo), (c + hi, y0 + hi)],
                    hatch,
                ))?;
            }
        }
        c += 8;
    }
    root.draw(&Rectangle::new(
        [(x0, y0), (x1, y1)],
        st.color.stroke_width(1),
    ))?;
    Ok(())
}

impl Chart for PeaksChart<'_> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn size(&self) -> (u32, u32) {
        (WIDTH as u32, self.height as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        self.draw_frame(root)?;
        self.draw_bars(root)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run with the named stages, built from JSON so new report fields
    /// (all defaulted) never break the test.
    fn run(stages: &[&str]) -> RunRecord {
        let stages: Vec<serde_json::Value> = stages
            .iter()
            .map(|n| {
                serde_json::json!({"name": n, "start_s": 0.0, "end_s": 0.0,
                    "exact_peak_bytes": null, "rss_start_bytes": 0, "rss_end_bytes": 0,
                    "sampled_peak_bytes": null})
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "strategy": "x", "status": {"kind": "completed"}, "wall_s": 1.0,
            "peak_bytes": null, "sampled_peak_bytes": 0, "stages": stages, "logs": [],
            "timeline": {"interval_ms": 10.0, "t_s": [], "rss_bytes": []}
        }))
        .expect("a valid run record")
    }

    #[test]
    fn stage_order_interleaves_in_pipeline_order() {
        let legacy = run(&[
            "load",
            "copy",
            "dropna",
            "merge_dataset_profile",
            "merge_user_features",
        ]);
        let optimized = run(&[
            "load",
            "dropna",
            "sample",
            "slim_profile",
            "merge_dataset_profile",
            "free_intermediates",
            "merge_user_features",
            "downcast",
        ]);
        assert_eq!(
            stage_order(&[&legacy, &optimized]),
            [
                "load",
                "copy",
                "dropna",
                "sample",
                "slim_profile",
                "merge_dataset_profile",
                "free_intermediates",
                "merge_user_features",
                "downcast"
            ]
        );
        assert_eq!(stage_order(&[&run(&["b"]), &run(&["a", "b"])]), ["a", "b"]);
        // A strategy with stages of its own comes after the ones before it.
        let streaming = run(&["load_lookups", "plan_rows", "stream_merge"]);
        let order = stage_order(&[&legacy, &optimized, &streaming]);
        assert_eq!(order.first().map(String::as_str), Some("load"));
        assert_eq!(
            order[order.len() - 3..],
            ["load_lookups", "plan_rows", "stream_merge"]
        );
    }
}
