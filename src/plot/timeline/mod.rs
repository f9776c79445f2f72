//! `timeline.png`/`.svg`: RSS over time of every strategy of a report, overlaid.
//!
//! What psrecord and mprof users look at first, with what only oomlab knows
//! added: the stage spans (one lane per strategy under the time axis, shaded
//! and labelled), the exact per-stage peaks from the kernel (a marker and a cap
//! over each stage's span, above the sampled line the sampler could see), the
//! budget or memory limit as a horizontal line, and where a killed run ended.
//!
//! This file lays the chart out (sizes, scales, pixel mapping); the header,
//! legend and axes are drawn in `frame.rs`, each run's line, peaks and notes in
//! `runs.rs`, the stage lanes under the time axis in `lanes.rs`.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::style::{self, series_style, text_extent, text_size, ByteUnit, SeriesStyle};
use super::{Chart, PlotOptions};
use crate::report::{Report, RunRecord, StageRecord};
use crate::units::format_bytes;

mod frame;
mod lanes;
mod runs;

use frame::legend_text;
pub use frame::nice_ticks;
use lanes::Lane;
use runs::{run_end, run_top, seen_alive};

/// File stem of the picture.
pub const NAME: &str = "timeline";

const WIDTH: i32 = 1400;
const MARGIN: i32 = 20;
const RIGHT_MARGIN: i32 = 40;
const PLOT_HEIGHT: i32 = 500;
const X_AXIS_HEIGHT: i32 = 34;
/// A budget line further up than this many times the highest peak is not
/// drawn to scale (it would flatten every line); it is noted instead.
const OFF_SCALE: f64 = 4.0;

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
