//! `timeline.png`/`.svg`: RSS over time of every strategy of a report, overlaid.
//!
//! What psrecord and mprof users look at first, with what only oomlab knows
//! added: the stage spans (one lane per strategy under the time axis, shaded
//! and labelled), the exact per-stage peaks from the kernel (a marker and a cap
//! over each stage's span, above the sampled line the sampler could see), the
//! budget or memory limit as a horizontal line, and where a killed run ended.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::glyphs::draw_text;
use super::style::{
    self, downsample_min_max, draw_legend_sample, draw_line, draw_marker, font_at, pack_callouts,
    series_style, simplify_polyline, text_extent, text_size, ByteUnit, PixelBox, SeriesStyle, INK,
    LIMIT, MUTED,
};
use super::{Chart, PlotOptions};
use crate::report::{Report, RunRecord, RunStatus, StageRecord};
use crate::units::{format_bytes, format_count};

/// File stem of the picture.
pub const NAME: &str = "timeline";

const WIDTH: i32 = 1400;
const MARGIN: i32 = 20;
const RIGHT_MARGIN: i32 = 40;
const PLOT_HEIGHT: i32 = 500;
const X_AXIS_HEIGHT: i32 = 34;
const LANE_BOX: i32 = 26;
const LANE_ROW: i32 = 24;
const LANE_GAP: i32 = 14;
/// Air between a lane label's text and the ends of its footprint, where its
/// leader line turns down beside the text (never into a letter).
const HOOK: i32 = 5;
/// Bends in a timeline smaller than this many pixels are not drawn (see
/// [`simplify_polyline`]).
const LINE_TOLERANCE_PX: f64 = 0.7;
/// Horizontal slack a stage label may slide before it opens another row.
const LABEL_SLIDE: i32 = 90;
/// A budget line further up than this many times the highest peak is not
/// drawn to scale (it would flatten every line); it is noted instead.
const OFF_SCALE: f64 = 4.0;

/// One strategy's lane of stage spans under the time axis.
struct Lane {
    top: i32,
    labels: Vec<LaneLabel>,
}

/// Where a stage's name goes: inside its box, or in a row under it.
struct LaneLabel {
    text: String,
    width: i32,
    /// `None` inside the box; `Some(row)` below it with a leader line.
    placed: Option<style::Placed>,
}

/// The RSS-over-time picture of one report, laid out.
pub struct TimelineChart<'a> {
    report: &'a Report,
    runs: Vec<(&'a RunRecord, SeriesStyle)>,
    /// Reference lines drawn to scale and those noted as off scale.
    on_scale: Vec<(String, u64)>,
    off_scale: Vec<(String, u64)>,
    t_max: f64,
    y_max_bytes: f64,
    unit: ByteUnit,
    left: i32,
    legend_rows: Vec<Vec<usize>>,
    legend_texts: Vec<String>,
    header: i32,
    lanes: Vec<Lane>,
    height: i32,
}

/// How much of a run's timeline shows the process alive, and where it ended.
struct SeenAlive {
    /// Leading timeline samples to draw.
    samples: usize,
    /// For a killed or failed run: when (seconds) and at what RSS it ended.
    end: Option<(f64, u64)>,
}

/// Where a killed or failed run's picture ends.
///
/// A killed process's memory is torn down before its parent reaps it (for a
/// 15 GiB process that takes over a second), and the sampler reads RSS 0 all
/// the while: those trailing zero samples are the kernel freeing a dead
/// process, not the pipeline. The picture ends such a run, its cross and its
/// last stage at the first of them, where the process was last seen holding
/// memory; a run without them ends when its exit was seen.
fn seen_alive(run: &RunRecord) -> SeenAlive {
    let tl = &run.timeline;
    let n = tl.t_s.len().min(tl.rss_bytes.len());
    let alive = tl.rss_bytes[..n]
        .iter()
        .rposition(|&b| b > 0)
        .map_or(0, |i| i + 1);
    // Only a run that did not complete is trimmed, and only when something
    // was seen alive (all zeros leaves nothing to end at).
    let completed = run.status == RunStatus::Completed;
    let (samples, died_at) = if !completed && alive > 0 && alive < n {
        (alive, Some(tl.t_s[alive]))
    } else {
        (n, None)
    };
    let end = match &run.status {
        RunStatus::Completed => None,
        RunStatus::Killed { t_s, rss_bytes, .. }
        | RunStatus::Interrupted { t_s, rss_bytes, .. } => {
            Some((died_at.map_or(*t_s, |d| d.min(*t_s)), *rss_bytes))
        }
        RunStatus::Failed { .. } => {
            let t = died_at.unwrap_or(run.wall_s);
            let rss = tl.rss_bytes[..samples].last().copied().unwrap_or(0);
            Some((t, rss))
        }
    }
    // Never before the last sample drawn.
    .map(|(t, rss)| {
        let last = tl.t_s[..samples].last().copied().unwrap_or(0.0);
        (t.max(last), rss)
    });
    SeenAlive { samples, end }
}

/// The time a run's picture ends at: its last sample, stage end or exit, or
/// for a killed or failed run where it was last seen alive ([`seen_alive`]).
fn run_end(run: &RunRecord) -> f64 {
    if let Some((t, _)) = seen_alive(run).end {
        return t;
    }
    let last_sample = run.timeline.t_s.last().copied().unwrap_or(0.0);
    let last_stage = run.stages.iter().map(|s| s.end_s).fold(0.0, f64::max);
    last_sample.max(last_stage).max(run.wall_s)
}

/// What one run puts in the plot area, in pixels.
struct RunGeometry {
    /// The RSS line, simplified.
    line: Vec<(i32, i32)>,
    /// A bracket over each stage's span at its exact peak.
    caps: Vec<Vec<(i32, i32)>>,
    /// Exact stage peak markers.
    markers: Vec<(i32, i32)>,
    /// The run's peak: its marker and note.
    peak_note: Option<((i32, i32), String)>,
    /// Where a killed or failed run ended (its cross) and the note saying how.
    end: Option<((i32, i32), String)>,
    /// From the last sample drawn to the cross.
    join: Option<Vec<(i32, i32)>>,
}

/// The highest RSS the picture must show for a run.
fn run_top(run: &RunRecord) -> u64 {
    let stages = run
        .stages
        .iter()
        .map(StageRecord::best_peak)
        .max()
        .unwrap_or(0);
    let kill = match &run.status {
        RunStatus::Killed { rss_bytes, .. } => *rss_bytes,
        _ => 0,
    };
    run.timeline
        .peak()
        .max(stages)
        .max(kill)
        .max(run.peak_bytes.unwrap_or(0))
}

/// The legend text of a run: its peak and where, or how it ended.
fn legend_text(run: &RunRecord) -> String {
    let at = |stage: &Option<String>| stage.clone().unwrap_or_else(|| "start".into());
    match &run.status {
        RunStatus::Completed => match (run.peak_bytes, run.peak_stage()) {
            (Some(p), Some(s)) => {
                format!("{}: peak {} in {}", run.strategy, format_bytes(p), s.name)
            }
            _ => format!(
                "{}: peak {} (sampled)",
                run.strategy,
                format_bytes(run.sampled_peak_bytes)
            ),
        },
        RunStatus::Killed {
            signal,
            stage,
            rss_bytes,
            ..
        } => format!(
            "{}: killed (-{signal}) in {} at {}",
            run.strategy,
            at(stage),
            format_bytes(*rss_bytes)
        ),
        RunStatus::Interrupted { signal, stage, .. } => format!(
            "{}: interrupted ({}) in {}",
            run.strategy,
            crate::interrupt::signal_name(*signal),
            at(stage)
        ),
        RunStatus::Failed { stage, .. } => format!("{}: failed in {}", run.strategy, at(stage)),
    }
}

impl<'a> TimelineChart<'a> {
    /// Whether the report has anything to draw over time.
    pub fn applies(report: &Report) -> bool {
        report
            .runs
            .iter()
            .any(|r| !r.timeline.t_s.is_empty() || !r.stages.is_empty())
    }

    /// Lays out the timeline of `report`.
    pub fn new(report: &'a Report, opts: &PlotOptions) -> Self {
        let runs: Vec<(&RunRecord, SeriesStyle)> = report
            .runs
            .iter()
            .enumerate()
            .map(|(i, r)| (r, series_style(&r.strategy, i)))
            .collect();
        let t_max = runs
            .iter()
            .map(|(r, _)| run_end(r))
            .fold(0.0, f64::max)
            .max(1e-3)
            * 1.02;
        let data_top = runs
            .iter()
            .map(|(r, _)| run_top(r))
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        let refs = opts.reference_lines();
        let (off_scale, on_scale): (Vec<_>, Vec<_>) = refs
            .iter()
            .cloned()
            .partition(|(_, b)| *b as f64 > data_top * OFF_SCALE);
        let top = on_scale
            .iter()
            .map(|(_, b)| *b as f64)
            .fold(data_top, f64::max);
        let y_max_bytes = top * 1.2;
        let unit = ByteUnit::for_max(y_max_bytes);

        // Left gutter: widest y tick or lane name.
        let tick_w = text_extent(
            &unit.tick(unit.of(y_max_bytes as u64) * 0.95),
            text_size::LABEL,
        )
        .0;
        let name_w = runs
            .iter()
            .map(|(r, _)| text_extent(&r.strategy, text_size::LABEL).0)
            .max()
            .unwrap_or(0);
        let left = MARGIN + tick_w.max(name_w) + 16;

        // Legend entries, wrapped into rows that fit the width.
        let mut legend_texts: Vec<String> = runs.iter().map(|(r, _)| legend_text(r)).collect();
        legend_texts.extend(
            refs.iter()
                .map(|(label, b)| format!("{label} {}", format_bytes(*b))),
        );
        let mut legend_rows: Vec<Vec<usize>> = vec![Vec::new()];
        let mut x = left;
        for (i, text) in legend_texts.iter().enumerate() {
            let w = 46 + 8 + text_extent(text, text_size::LEGEND).0 + 28;
            let row_full = legend_rows.last().is_some_and(|r| !r.is_empty());
            if row_full && x + w > WIDTH - RIGHT_MARGIN {
                legend_rows.push(Vec::new());
                x = left;
            }
            if let Some(row) = legend_rows.last_mut() {
                row.push(i);
            }
            x += w;
        }
        // Title, subtitle, legend rows.
        let header = MARGIN + 34 + 26 + legend_rows.len() as i32 * 28 + 8;

        let mut chart = Self {
            report,
            runs,
            on_scale,
            off_scale,
            t_max,
            y_max_bytes,
            unit,
            left,
            legend_rows,
            legend_texts,
            header,
            lanes: Vec::new(),
            height: 0,
        };
        chart.layout_lanes();
        chart
    }

    fn right(&self) -> i32 {
        WIDTH - RIGHT_MARGIN
    }

    fn plot_top(&self) -> i32 {
        self.header
    }

    fn plot_bottom(&self) -> i32 {
        self.header + PLOT_HEIGHT
    }

    /// Pixel column of time `t`.
    fn x_px(&self, t: f64) -> i32 {
        let w = (self.right() - self.left) as f64;
        self.left + style::px(t / self.t_max * w)
    }

    /// Pixel row of `bytes`.
    fn y_px(&self, bytes: f64) -> i32 {
        let h = (self.plot_bottom() - self.plot_top()) as f64;
        self.plot_bottom() - style::px(bytes / self.y_max_bytes * h)
    }

    /// A stage's span in pixel columns, ending where its run was last seen
    /// alive (see [`seen_alive`]).
    fn stage_span(&self, run: &RunRecord, s: &StageRecord) -> (i32, i32) {
        let end = seen_alive(run).end.map_or(f64::INFINITY, |(t, _)| t);
        let x0 = self.x_px(s.start_s.min(end));
        (x0, self.x_px(s.end_s.min(end)).max(x0))
    }

    /// Decides, per strategy, which stage names fit in their boxes and packs the
    /// rest into rows under the lane so no two labels overlap.
    fn layout_lanes(&mut self) {
        let mut top = self.plot_bottom() + X_AXIS_HEIGHT + 8;
        let mut lanes = Vec::new();
        for (run, _) in &self.runs {
            let mut labels: Vec<LaneLabel> = run
                .stages
                .iter()
                .map(|s| {
                    let text = stage_label(run, s);
                    let width = text_extent(&text, text_size::SMALL).0;
                    LaneLabel {
                        text,
                        width,
                        placed: None,
                    }
                })
                .collect();
            let mut outside = Vec::new();
            for (i, s) in run.stages.iter().enumerate() {
                let (x0, x1) = self.stage_span(run, s);
                if labels[i].width + 10 > x1 - x0 {
                    outside.push(i);
                }
            }
            let centers: Vec<i32> = outside
                .iter()
                .map(|&i| {
                    let (x0, x1) = self.stage_span(run, &run.stages[i]);
                    (x0 + x1) / 2
                })
                .collect();
            // Footprints: the text with room for the leader's hook at both ends.
            let widths: Vec<i32> = outside
                .iter()
                .map(|&i| labels[i].width + 2 * HOOK)
                .collect();
            let placed = pack_callouts(&centers, &widths, MARGIN, WIDTH - MARGIN, 6, LABEL_SLIDE);
            for (k, &i) in outside.iter().enumerate() {
                labels[i].placed = Some(placed[k]);
            }
            let rows = placed.iter().map(|p| p.row + 1).max().unwrap_or(0);
            lanes.push(Lane { top, labels });
            top += LANE_BOX + rows as i32 * LANE_ROW + LANE_GAP;
        }
        self.lanes = lanes;
        self.height = top + MARGIN;
    }

    fn draw_header<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let r = self.report;
        let s = &r.scenario;
        let title = format!("RSS over time: {} scenario, oomlab {}", s.name, r.command);
        draw_text(
            root,
            &title,
            &font_at(text_size::TITLE, &INK, HPos::Left, VPos::Top),
            (self.left, MARGIN),
        )?;
        let mut sub = format!("{} ranking samples", format_count(s.scaled.sample_rows));
        if (s.scale - 1.0).abs() > f64::EPSILON {
            sub += &format!(
                " (scale {} of {})",
                s.scale,
                format_count(s.production.sample_rows)
            );
        }
        if r.settings.max_ranking_samples > 0 {
            sub += &format!(
                ", MAX_RANKING_SAMPLES={}",
                format_count(r.settings.max_ranking_samples)
            );
        }
        sub += &format!(
            "; RSS sampled every {} ms; markers: exact peak of each stage (kernel high-water mark)",
            style::trim_number(r.settings.interval_ms)
        );
        draw_text(
            root,
            &sub,
            &font_at(text_size::SMALL, &MUTED, HPos::Left, VPos::Top),
            (self.left, MARGIN + 36),
        )?;
        let mut y = MARGIN + 34 + 26 + 14;
        for row in &self.legend_rows {
            let mut x = self.left;
            for &i in row {
                if let Some((_, st)) = self.runs.get(i) {
                    draw_legend_sample(root, (x, y), st)?;
                } else {
                    let dash = SeriesStyle {
                        color: LIMIT,
                        dash: style::Dash::Dashed,
                        marker: style::MarkerShape::Square,
                        width: 2,
                    };
                    draw_line(root, &[(x, y), (x + 46, y)], &dash, 2)?;
                }
                let text = &self.legend_texts[i];
                draw_text(
                    root,
                    text,
                    &font_at(text_size::LEGEND, &INK, HPos::Left, VPos::Center),
                    (x + 54, y),
                )?;
                x += 46 + 8 + text_extent(text, text_size::LEGEND).0 + 28;
            }
            y += 28;
        }
        Ok(())
    }

    fn draw_axes<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let (top, bottom) = (self.plot_top(), self.plot_bottom());
        let y_top = self.unit.of(self.y_max_bytes as u64);
        for v in nice_ticks(y_top, 8) {
            let y = self.y_px(v * self.unit.bytes);
            if y < top {
                continue;
            }
            root.draw(&PathElement::new(
                vec![(self.left, y), (self.right(), y)],
                style::GRID.stroke_width(1),
            ))?;
            draw_text(
                root,
                &self.unit.tick(v),
                &font_at(text_size::LABEL, &INK, HPos::Right, VPos::Center),
                (self.left - 8, y),
            )?;
        }
        for t in nice_ticks(self.t_max, 10) {
            let x = self.x_px(t);
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
                &style::seconds_tick(t),
                &font_at(text_size::LABEL, &INK, HPos::Center, VPos::Top),
                (x, bottom + 8),
            )?;
        }
        root.draw(&Rectangle::new(
            [(self.left, top), (self.right(), bottom)],
            INK.stroke_width(1),
        ))?;
        draw_text(
            root,
            "time since the strategy's process started",
            &font_at(text_size::SMALL, &MUTED, HPos::Right, VPos::Top),
            (self.right(), bottom + 8 + 20),
        )
        .ok();
        Ok(())
    }

    /// Where everything a run puts in the plot area goes, before anything is
    /// drawn, so annotations can keep clear of every line and marker.
    fn geometry(&self, run: &RunRecord) -> RunGeometry {
        let buckets = (self.right() - self.left).max(1) as usize;
        let tl = &run.timeline;
        let seen = seen_alive(run);
        let n = seen.samples.min(tl.t_s.len()).min(tl.rss_bytes.len());
        let pts = downsample_min_max(&tl.t_s[..n], &tl.rss_bytes[..n], 0.0, self.t_max, buckets);
        let px: Vec<(i32, i32)> = pts
            .iter()
            .map(|&(t, b)| (self.x_px(t), self.y_px(b as f64)))
            .collect();
        let line = simplify_polyline(&px, LINE_TOLERANCE_PX);

        // Exact stage peaks: a cap over the stage's span and a marker where
        // the sampler saw the stage's highest RSS.
        let mut caps = Vec::new();
        let mut markers = Vec::new();
        for s in &run.stages {
            let Some(peak) = s.exact_peak_bytes else {
                continue;
            };
            let y = self.y_px(peak as f64);
            let (x0, x1) = (self.x_px(s.start_s), self.x_px(s.end_s));
            if x1 - x0 >= 4 {
                caps.push(vec![(x0, y + 5), (x0, y), (x1, y), (x1, y + 5)]);
            }
            let t_mark = sample_time_of_peak(run, s).unwrap_or((s.start_s + s.end_s) / 2.0);
            markers.push((self.x_px(t_mark).clamp(x0, x1.max(x0)), y));
        }

        // The run's own peak, written next to its marker.
        let peak_note = match (&run.status, run.peak_stage()) {
            (RunStatus::Completed, Some(stage)) => stage.exact_peak_bytes.map(|peak| {
                let t =
                    sample_time_of_peak(run, stage).unwrap_or((stage.start_s + stage.end_s) / 2.0);
                (
                    (self.x_px(t), self.y_px(peak as f64)),
                    format!("{} peak {}", run.strategy, format_bytes(peak)),
                )
            }),
            _ => None,
        };

        // Where a killed or failed run ended: a cross, joined to the last sample.
        let end = seen.end.map(|(t, rss)| {
            let text = match &run.status {
                RunStatus::Killed {
                    signal, stage, by, ..
                } => format!(
                    "{} killed (-{signal}) by {by} in {} at {}",
                    run.strategy,
                    stage.as_deref().unwrap_or("start"),
                    format_bytes(rss)
                ),
                RunStatus::Interrupted { signal, stage, .. } => format!(
                    "{} stopped by oomlab ({}) in {} at {}",
                    run.strategy,
                    crate::interrupt::signal_name(*signal),
                    stage.as_deref().unwrap_or("start"),
                    format_bytes(rss)
                ),
                RunStatus::Failed { stage, .. } => format!(
                    "{} failed in {}",
                    run.strategy,
                    stage.as_deref().unwrap_or("start")
                ),
                RunStatus::Completed => String::new(),
            };
            ((self.x_px(t), self.y_px(rss as f64)), text)
        });
        let join = match (&end, line.last()) {
            (Some((at, _)), Some(&last)) if last.0 < at.0 || last.1 != at.1 => {
                Some(vec![last, *at])
            }
            _ => None,
        };
        RunGeometry {
            line,
            caps,
            markers,
            peak_note,
            end,
            join,
        }
    }

    fn draw_runs<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let geo: Vec<RunGeometry> = self.runs.iter().map(|(r, _)| self.geometry(r)).collect();
        let limit_line = SeriesStyle {
            color: LIMIT,
            dash: style::Dash::Dashed,
            marker: style::MarkerShape::Square,
            width: 2,
        };
        for (_, bytes) in &self.on_scale {
            let y = self.y_px(*bytes as f64);
            draw_line(root, &[(self.left, y), (self.right(), y)], &limit_line, 2)?;
        }
        // Lines first, all of them, so markers sit on top of every line.
        for ((_, st), g) in self.runs.iter().zip(&geo) {
            match g.line.as_slice() {
                [] => {}
                [p] => draw_marker(root, *p, 3, st)?,
                line => draw_line(root, line, st, st.width)?,
            }
        }
        const CROSS: i32 = 9;
        for ((_, st), g) in self.runs.iter().zip(&geo) {
            if let Some(join) = &g.join {
                draw_line(root, join, st, 1)?;
            }
            for cap in &g.caps {
                root.draw(&PathElement::new(
                    cap.clone(),
                    st.color.mix(0.8).stroke_width(1),
                ))?;
            }
            for &at in &g.markers {
                draw_marker(root, at, 5, st)?;
            }
            if let Some((at, _)) = &g.end {
                let r = CROSS;
                for (a, b) in [((-r, -r), (r, r)), ((-r, r), (r, -r))] {
                    let path = vec![(at.0 + a.0, at.1 + a.1), (at.0 + b.0, at.1 + b.1)];
                    root.draw(&PathElement::new(path.clone(), INK.stroke_width(4)))?;
                    root.draw(&PathElement::new(path, st.color.stroke_width(2)))?;
                }
            }
        }

        // Everything drawn so far is in the way of text placed from here on.
        let mut lines: Vec<&[(i32, i32)]> = Vec::new();
        let mut taken: Vec<PixelBox> = Vec::new();
        let around = |(x, y): (i32, i32), r: i32| PixelBox {
            x0: x - r,
            y0: y - r,
            x1: x + r,
            y1: y + r,
        };
        for g in &geo {
            lines.push(&g.line);
            lines.extend(g.join.iter().map(Vec::as_slice));
            lines.extend(g.caps.iter().map(Vec::as_slice));
            taken.extend(g.markers.iter().map(|&m| around(m, 6)));
            taken.extend(g.end.iter().map(|(at, _)| around(*at, CROSS)));
        }
        let plot = PixelBox {
            x0: self.left + 2,
            y0: self.plot_top() + 2,
            x1: self.right() - 2,
            y1: self.plot_bottom() - 2,
        };

        // Reference lines' labels: at the right end above the line unless a
        // line or marker is there; the off-scale ones stacked at the top right.
        let mut y = self.plot_top() + 8;
        for (label, bytes) in &self.off_scale {
            let text = format!("↑ {label} {} (off scale)", format_bytes(*bytes));
            let (w, h) = text_extent(&text, text_size::SMALL);
            let b = PixelBox {
                x0: self.right() - 6 - w,
                y0: y,
                x1: self.right() - 6,
                y1: y + h,
            };
            draw_text(
                root,
                &text,
                &font_at(text_size::SMALL, &LIMIT, HPos::Left, VPos::Top),
                (b.x0, b.y0),
            )?;
            taken.push(b);
            y += 20;
        }
        for (label, bytes) in &self.on_scale {
            let text = format!("{label} {}", format_bytes(*bytes));
            let (w, h) = text_extent(&text, text_size::SMALL);
            let y = self.y_px(*bytes as f64);
            let (right, left) = (self.right() - 6 - w, self.left + 6);
            let candidates = [
                (right, y - 4 - h),
                (right, y + 5),
                (left, y - 4 - h),
                (left, y + 5),
            ];
            let boxed = |(x, y): (i32, i32)| PixelBox {
                x0: x - 2,
                y0: y - 1,
                x1: x + w + 2,
                y1: y + h + 1,
            };
            let clear = |b: &PixelBox| {
                b.inside(&plot)
                    && !taken.iter().any(|t| t.overlaps(b, 2))
                    && !lines.iter().any(|l| b.hits_polyline(l))
            };
            let at = candidates
                .iter()
                .copied()
                .find(|&c| clear(&boxed(c)))
                .unwrap_or(candidates[0]);
            draw_text(
                root,
                &text,
                &font_at(text_size::SMALL, &LIMIT, HPos::Left, VPos::Top),
                at,
            )?;
            taken.push(boxed(at));
        }

        // Notes: every run's peak first (they are what a reader looks for),
        // then where runs ended.
        for ((_, st), g) in self.runs.iter().zip(&geo) {
            if let Some((anchor, text)) = &g.peak_note {
                place_note(root, text, *anchor, &st.color, &plot, &mut taken, &lines)?;
            }
        }
        for g in &geo {
            if let Some((anchor, text)) = &g.end {
                place_note(root, text, *anchor, &INK, &plot, &mut taken, &lines)?;
            }
        }
        Ok(())
    }

    fn draw_lanes<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        for ((run, st), lane) in self.runs.iter().zip(&self.lanes) {
            let (y0, y1) = (lane.top, lane.top + LANE_BOX);
            draw_text(
                root,
                &run.strategy,
                &font_at(text_size::LABEL, &st.color, HPos::Right, VPos::Center),
                (self.left - 8, (y0 + y1) / 2),
            )?;
            root.draw(&Rectangle::new(
                [(self.left, y0), (self.right(), y1)],
                RGBColor(248, 248, 248).filled(),
            ))?;
            for (i, (s, label)) in run.stages.iter().zip(&lane.labels).enumerate() {
                let (x0, x1) = self.stage_span(run, s);
                let x1 = x1.max(x0 + 2);
                let shade = if i % 2 == 0 { 0.22 } else { 0.45 };
                root.draw(&Rectangle::new(
                    [(x0, y0), (x1, y1)],
                    st.color.mix(shade).filled(),
                ))?;
                let edge = if s.exact_peak_bytes.is_none() {
                    LIMIT.stroke_width(2)
                } else {
                    st.color.stroke_width(1)
                };
                root.draw(&Rectangle::new([(x0, y0), (x1, y1)], edge))?;
                let center = (x0 + x1) / 2;
                match label.placed {
                    None => draw_text(
                        root,
                        &label.text,
                        &font_at(text_size::SMALL, &INK, HPos::Center, VPos::Center),
                        (center, (y0 + y1) / 2),
                    )?,
                    Some(p) => {
                        let row_y = y1 + p.row as i32 * LANE_ROW;
                        let (text_x, text_top) = (p.x + HOOK, row_y + 6);
                        let text_h = text_extent(&label.text, text_size::SMALL).1;
                        // Down to the gap above the label's row, along it to the
                        // end of the label's footprint, and down beside the text
                        // to its middle; straight down onto the text when the
                        // label had to go right under the stage.
                        let hook_x = style::callout_attach(center, p.x, label.width + 2 * HOOK);
                        let beside = hook_x < text_x - 1 || hook_x > text_x + label.width + 1;
                        let mut path = vec![(center, y1), (center, row_y + 3)];
                        if beside {
                            path.push((hook_x, row_y + 3));
                            path.push((hook_x, text_top + text_h / 2));
                        }
                        root.draw(&PathElement::new(path, MUTED.stroke_width(1)))?;
                        draw_text(
                            root,
                            &label.text,
                            &font_at(text_size::SMALL, &INK, HPos::Left, VPos::Top),
                            (text_x, text_top),
                        )?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A stage's lane label: its name, marked when the process died in it.
fn stage_label(run: &RunRecord, s: &StageRecord) -> String {
    match run.status {
        _ if s.exact_peak_bytes.is_some() => s.name.clone(),
        RunStatus::Completed => s.name.clone(),
        RunStatus::Killed { .. } => format!("{} (killed)", s.name),
        RunStatus::Failed { .. } => format!("{} (failed)", s.name),
        RunStatus::Interrupted { .. } => format!("{} (interrupted)", s.name),
    }
}

/// When, within a stage, the sampler saw its highest RSS.
fn sample_time_of_peak(run: &RunRecord, s: &StageRecord) -> Option<f64> {
    let tl = &run.timeline;
    tl.t_s
        .iter()
        .zip(&tl.rss_bytes)
        .filter(|(t, _)| **t >= s.start_s && **t <= s.end_s)
        .max_by_key(|(_, r)| **r)
        .map(|(t, _)| *t)
}

/// Writes `text` near `anchor`, at the first candidate position that stays in
/// `plot`, clear of everything already `taken` and crossed by none of `lines`,
/// with a leader line if the note had to move away from the anchor.
///
/// Notes have a white backing so they read over the grid; a note on a line
/// would cut it, so lines are avoided first and only given up on when no
/// candidate misses them all (then overlapping other text is still avoided).
fn place_note<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    text: &str,
    anchor: (i32, i32),
    color: &RGBColor,
    plot: &PixelBox,
    taken: &mut Vec<PixelBox>,
    lines: &[&[(i32, i32)]],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let (w, h) = text_extent(text, text_size::SMALL);
    let (ax, ay) = anchor;
    let mut candidates = Vec::new();
    for lift in [12, 34, 58, 84, 112] {
        candidates.push((ax - w / 2, ay - lift - h));
        candidates.push((ax + 10, ay - lift - h));
        candidates.push((ax - w - 10, ay - lift - h));
        if lift == 12 {
            // Level with the anchor, beside it.
            candidates.push((ax + 14, ay - h / 2));
            candidates.push((ax - w - 14, ay - h / 2));
        }
    }
    for drop in [12, 36, 62] {
        candidates.push((ax + 12, ay + drop));
        candidates.push((ax - w - 12, ay + drop));
        candidates.push((ax - w / 2, ay + drop));
    }
    let boxed = |x: i32, y: i32| PixelBox {
        x0: x - 3,
        y0: y - 2,
        x1: x + w + 3,
        y1: y + h + 2,
    };
    let fits = |x: i32, y: i32, mind_lines: bool| {
        let b = boxed(x, y);
        (b.inside(plot)
            && !taken.iter().any(|t| t.overlaps(&b, 2))
            && !(mind_lines && lines.iter().any(|l| b.hits_polyline(l))))
        .then_some((x, y, b))
    };
    let chosen = candidates
        .iter()
        .find_map(|&(x, y)| fits(x, y, true))
        .or_else(|| candidates.iter().find_map(|&(x, y)| fits(x, y, false)))
        .unwrap_or_else(|| {
            // Crowded: clamp the first candidate into the plot and accept overlap.
            let x = (ax - w / 2).clamp(plot.x0, (plot.x1 - w).max(plot.x0));
            let y = (ay - 12 - h).clamp(plot.y0, (plot.y1 - h).max(plot.y0));
            (x, y, boxed(x, y))
        });
    let (x, y, b) = chosen;
    // White backing so the note reads over the grid.
    root.draw(&Rectangle::new(
        [(b.x0, b.y0), (b.x1, b.y1)],
        WHITE.mix(0.85).filled(),
    ))?;
    let near_y = ay.clamp(b.y0, b.y1);
    let near_x = ax.clamp(b.x0, b.x1);
    if (near_y - ay).abs() > 14 || (near_x - ax).abs() > 16 {
        root.draw(&PathElement::new(
            vec![(ax, ay), (near_x, near_y)],
            MUTED.stroke_width(1),
        ))?;
    }
    draw_text(
        root,
        text,
        &font_at(text_size::SMALL, color, HPos::Left, VPos::Top),
        (x, y),
    )?;
    taken.push(b);
    Ok(())
}

/// Round tick values from 0 to `max` (1, 2, 2.5 or 5 times a power of ten apart).
pub fn nice_ticks(max: f64, target: usize) -> Vec<f64> {
    if max.is_nan() || max <= 0.0 || !max.is_finite() {
        return vec![0.0];
    }
    let raw = max / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    (0..)
        .map(|i| i as f64 * step)
        .take_while(|v| *v <= max * (1.0 + 1e-9))
        .collect()
}

impl Chart for TimelineChart<'_> {
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
        self.draw_header(root)?;
        self.draw_axes(root)?;
        self.draw_runs(root)?;
        self.draw_lanes(root)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run with a timeline and a status, built from JSON so new report
    /// fields (all defaulted) never break the test.
    fn run(status: serde_json::Value, t_s: &[f64], rss: &[u64]) -> RunRecord {
        serde_json::from_value(serde_json::json!({
            "strategy": "legacy", "status": status, "wall_s": 2.0,
            "peak_bytes": null, "sampled_peak_bytes": 0, "stages": [], "logs": [],
            "timeline": {"interval_ms": 10.0, "t_s": t_s, "rss_bytes": rss}
        }))
        .expect("a valid run record")
    }

    #[test]
    fn a_killed_run_ends_where_its_memory_went() {
        let killed = serde_json::json!({"kind": "killed", "signal": 9,
            "stage": "merge", "t_s": 2.0, "rss_bytes": 900, "by": "cgroup"});
        // Torn down at 1.2 s, reaped at 2.0 s: the zeros are not drawn.
        let r = run(
            killed.clone(),
            &[0.5, 1.0, 1.2, 1.5, 1.9],
            &[100, 800, 0, 0, 0],
        );
        let seen = seen_alive(&r);
        assert_eq!(seen.samples, 2);
        assert_eq!(seen.end, Some((1.2, 900)));
        assert_eq!(run_end(&r), 1.2);
        // Reaped before the sampler saw it go: it ends at the kill.
        let r = run(killed, &[0.5, 1.0], &[100, 800]);
        let seen = seen_alive(&r);
        assert_eq!((seen.samples, seen.end), (2, Some((2.0, 900))));
        // A completed run is drawn whole, its last samples included.
        let r = run(
            serde_json::json!({"kind": "completed"}),
            &[0.5, 1.0, 1.5],
            &[100, 800, 0],
        );
        let seen = seen_alive(&r);
        assert_eq!((seen.samples, seen.end), (3, None));
        assert_eq!(run_end(&r), 2.0);
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(
            nice_ticks(1.0, 5),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        assert_eq!(
            nice_ticks(1800.0, 8),
            vec![0.0, 250.0, 500.0, 750.0, 1000.0, 1250.0, 1500.0, 1750.0]
        );
        assert_eq!(nice_ticks(0.0, 5), vec![0.0]);
    }
}
