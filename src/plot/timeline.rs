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
    series_style, text_extent, text_size, ByteUnit, PixelBox, SeriesStyle, INK, LIMIT, MUTED,
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

/// The time a run's picture ends at: its last sample, stage end or exit.
fn run_end(run: &RunRecord) -> f64 {
    let last_sample = run.timeline.t_s.last().copied().unwrap_or(0.0);
    let last_stage = run.stages.iter().map(|s| s.end_s).fold(0.0, f64::max);
    let kill = match &run.status {
        RunStatus::Killed { t_s, .. } | RunStatus::Interrupted { t_s, .. } => *t_s,
        _ => 0.0,
    };
    last_sample.max(last_stage).max(kill).max(run.wall_s)
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
                let box_w = self.x_px(s.end_s) - self.x_px(s.start_s);
                if labels[i].width + 10 > box_w {
                    outside.push(i);
                }
            }
            let centers: Vec<i32> = outside
                .iter()
                .map(|&i| {
                    let s = &run.stages[i];
                    (self.x_px(s.start_s) + self.x_px(s.end_s)) / 2
                })
                .collect();
            let widths: Vec<i32> = outside.iter().map(|&i| labels[i].width).collect();
            let placed = pack_callouts(&centers, &widths, MARGIN, WIDTH - MARGIN, 12, LABEL_SLIDE);
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

    fn draw_reference_lines<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let dash = SeriesStyle {
            color: LIMIT,
            dash: style::Dash::Dashed,
            marker: style::MarkerShape::Square,
            width: 2,
        };
        for (label, bytes) in &self.on_scale {
            let y = self.y_px(*bytes as f64);
            draw_line(root, &[(self.left, y), (self.right(), y)], &dash, 2)?;
            draw_text(
                root,
                &format!("{label} {}", format_bytes(*bytes)),
                &font_at(text_size::SMALL, &LIMIT, HPos::Right, VPos::Bottom),
                (self.right() - 6, y - 4),
            )?;
        }
        let mut y = self.plot_top() + 8;
        for (label, bytes) in &self.off_scale {
            draw_text(
                root,
                &format!("↑ {label} {} (off scale)", format_bytes(*bytes)),
                &font_at(text_size::SMALL, &LIMIT, HPos::Right, VPos::Top),
                (self.right() - 6, y),
            )?;
            y += 20;
        }
        Ok(())
    }

    fn draw_runs<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let buckets = (self.right() - self.left).max(1) as usize;
        // Lines first, all of them, so markers sit on top of every line.
        for (run, st) in &self.runs {
            let tl = &run.timeline;
            let pts = downsample_min_max(&tl.t_s, &tl.rss_bytes, 0.0, self.t_max, buckets);
            let px: Vec<(i32, i32)> = pts
                .iter()
                .map(|&(t, b)| (self.x_px(t), self.y_px(b as f64)))
                .collect();
            if px.len() == 1 {
                draw_marker(root, px[0], 3, st)?;
            } else {
                draw_line(root, &px, st, st.width)?;
            }
        }
        let plot = PixelBox {
            x0: self.left + 2,
            y0: self.plot_top() + 2,
            x1: self.right() - 2,
            y1: self.plot_bottom() - 2,
        };
        let mut taken: Vec<PixelBox> = self
            .off_scale
            .iter()
            .enumerate()
            .map(|(i, _)| PixelBox {
                x0: self.right() - 420,
                y0: self.plot_top() + 8 + 20 * i as i32,
                x1: self.right(),
                y1: self.plot_top() + 28 + 20 * i as i32,
            })
            .collect();
        for (label, bytes) in &self.on_scale {
            let y = self.y_px(*bytes as f64);
            let w = text_extent(
                &format!("{label} {}", format_bytes(*bytes)),
                text_size::SMALL,
            )
            .0;
            taken.push(PixelBox {
                x0: self.right() - 10 - w,
                y0: y - 24,
                x1: self.right(),
                y1: y,
            });
        }
        for (run, st) in &self.runs {
            // Exact stage peaks: a cap over the stage's span and a marker where
            // the sampler saw the stage's highest RSS.
            let mut markers = Vec::new();
            for s in &run.stages {
                let Some(peak) = s.exact_peak_bytes else {
                    continue;
                };
                let y = self.y_px(peak as f64);
                let (x0, x1) = (self.x_px(s.start_s), self.x_px(s.end_s));
                if x1 - x0 >= 4 {
                    // A thin bracket over the stage's span: the peak held somewhere in it.
                    root.draw(&PathElement::new(
                        vec![(x0, y + 5), (x0, y), (x1, y), (x1, y + 5)],
                        st.color.mix(0.8).stroke_width(1),
                    ))?;
                }
                let t_mark = sample_time_of_peak(run, s).unwrap_or((s.start_s + s.end_s) / 2.0);
                let at = (self.x_px(t_mark).clamp(x0, x1.max(x0)), y);
                draw_marker(root, at, 5, st)?;
                markers.push(at);
            }
            for at in &markers {
                taken.push(PixelBox {
                    x0: at.0 - 6,
                    y0: at.1 - 6,
                    x1: at.0 + 6,
                    y1: at.1 + 6,
                });
            }
            // The run's own peak, written next to its marker.
            if let (RunStatus::Completed, Some(stage)) = (&run.status, run.peak_stage()) {
                if let Some(peak) = stage.exact_peak_bytes {
                    let t = sample_time_of_peak(run, stage)
                        .unwrap_or((stage.start_s + stage.end_s) / 2.0);
                    let anchor = (self.x_px(t), self.y_px(peak as f64));
                    let text = format!("{} peak {}", run.strategy, format_bytes(peak));
                    place_note(root, &text, anchor, &st.color, &plot, &mut taken)?;
                }
            }
            // Where a killed or failed run ended.
            let end = match &run.status {
                RunStatus::Completed => None,
                RunStatus::Killed {
                    signal,
                    stage,
                    t_s,
                    rss_bytes,
                    by,
                } => Some((
                    *t_s,
                    *rss_bytes,
                    format!(
                        "{} killed (-{signal}) by {by} in {} at {:.2} s, {}",
                        run.strategy,
                        stage.as_deref().unwrap_or("start"),
                        t_s,
                        format_bytes(*rss_bytes)
                    ),
                )),
                RunStatus::Interrupted {
                    signal,
                    stage,
                    t_s,
                    rss_bytes,
                } => Some((
                    *t_s,
                    *rss_bytes,
                    format!(
                        "{} stopped by oomlab ({}) in {} at {:.2} s",
                        run.strategy,
                        crate::interrupt::signal_name(*signal),
                        stage.as_deref().unwrap_or("start"),
                        t_s
                    ),
                )),
                RunStatus::Failed { stage, .. } => {
                    let t = run.timeline.t_s.last().copied().unwrap_or(run.wall_s);
                    let rss = run.timeline.rss_bytes.last().copied().unwrap_or(0);
                    Some((
                        t,
                        rss,
                        format!(
                            "{} failed in {}",
                            run.strategy,
                            stage.as_deref().unwrap_or("start")
                        ),
                    ))
                }
            };
            if let Some((t, rss, text)) = end {
                let at = (self.x_px(t), self.y_px(rss as f64));
                // Join the last sample to the point of death.
                if let (Some(&lt), Some(&lr)) =
                    (run.timeline.t_s.last(), run.timeline.rss_bytes.last())
                {
                    if lt < t {
                        draw_line(root, &[(self.x_px(lt), self.y_px(lr as f64)), at], st, 1)?;
                    }
                }
                let r = 9;
                for (a, b) in [((-r, -r), (r, r)), ((-r, r), (r, -r))] {
                    root.draw(&PathElement::new(
                        vec![(at.0 + a.0, at.1 + a.1), (at.0 + b.0, at.1 + b.1)],
                        INK.stroke_width(4),
                    ))?;
                    root.draw(&PathElement::new(
                        vec![(at.0 + a.0, at.1 + a.1), (at.0 + b.0, at.1 + b.1)],
                        st.color.stroke_width(2),
                    ))?;
                }
                taken.push(PixelBox {
                    x0: at.0 - r,
                    y0: at.1 - r,
                    x1: at.0 + r,
                    y1: at.1 + r,
                });
                place_note(root, &text, at, &INK, &plot, &mut taken)?;
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
                let x0 = self.x_px(s.start_s);
                let x1 = self.x_px(s.end_s).max(x0 + 2);
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
                        // Down to the gap above the label's row, then along it
                        // to the label's first letter.
                        let target_x = style::callout_attach(center, p.x, label.width);
                        let mut path = vec![(center, y1), (center, row_y + 4)];
                        if (target_x - center).abs() > 1 {
                            path.push((target_x, row_y + 4));
                            path.push((target_x, row_y + 7));
                        }
                        root.draw(&PathElement::new(path, MUTED.stroke_width(1)))?;
                        draw_text(
                            root,
                            &label.text,
                            &font_at(text_size::SMALL, &INK, HPos::Left, VPos::Top),
                            (p.x, row_y + 6),
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
/// `plot` and clear of everything already `taken`, with a leader line if the
/// note had to move away from the anchor.
fn place_note<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    text: &str,
    anchor: (i32, i32),
    color: &RGBColor,
    plot: &PixelBox,
    taken: &mut Vec<PixelBox>,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let (w, h) = text_extent(text, text_size::SMALL);
    let (ax, ay) = anchor;
    let mut candidates = Vec::new();
    for lift in [14, 40, 66, 92] {
        candidates.push((ax - w / 2, ay - lift - h));
        candidates.push((ax + 10, ay - lift - h));
        candidates.push((ax - w - 10, ay - lift - h));
    }
    for drop in [14, 40] {
        candidates.push((ax + 12, ay + drop));
        candidates.push((ax - w - 12, ay + drop));
    }
    let fits = |x: i32, y: i32| {
        let b = PixelBox {
            x0: x - 3,
            y0: y - 2,
            x1: x + w + 3,
            y1: y + h + 2,
        };
        (b.inside(plot) && !taken.iter().any(|t| t.overlaps(&b, 2))).then_some(b)
    };
    let chosen = candidates
        .iter()
        .find_map(|&(x, y)| fits(x, y).map(|b| (x, y, b)))
        .or_else(|| {
            // Crowded: clamp the first candidate into the plot and accept overlap.
            let x = (ax - w / 2).clamp(plot.x0, (plot.x1 - w).max(plot.x0));
            let y = (ay - 14 - h).clamp(plot.y0, (plot.y1 - h).max(plot.y0));
            Some((
                x,
                y,
                PixelBox {
                    x0: x,
                    y0: y,
                    x1: x + w,
                    y1: y + h,
                },
            ))
        });
    if let Some((x, y, b)) = chosen {
        // White backing so the note reads over grid and lines.
        root.draw(&Rectangle::new(
            [(b.x0, b.y0), (b.x1, b.y1)],
            WHITE.mix(0.85).filled(),
        ))?;
        let near_y = if y > ay { b.y0 } else { b.y1 };
        let near_x = ax.clamp(b.x0, b.x1);
        if (near_y - ay).abs() > 12 || (near_x - ax).abs() > 12 {
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
    }
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
        self.draw_reference_lines(root)?;
        self.draw_runs(root)?;
        self.draw_lanes(root)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
