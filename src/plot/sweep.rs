//! `sweep.png`/`.svg`: peak memory against rows loaded, per strategy, from the
//! sweep's measured points out to production size.
//!
//! The picture answers the question a sweep exists for: measured at a few
//! small sizes, where does each strategy land at production, and which budget
//! lines does it cross? Both axes are logarithmic, because the measured points
//! sit two or three decades below production; the measured range is shaded so
//! nobody mistakes the extended lines for measurements.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::style::{
    self, draw_legend_sample, draw_marker, font_at, series_style, text_extent, text_size,
    SeriesStyle, INK, LIMIT, MUTED,
};
use super::Chart;
use crate::model::{Model, VariantModel};
use crate::units::{format_bytes, format_count};

/// File stem of the picture.
pub const NAME: &str = "sweep";

const WIDTH: i32 = 1200;
const HEIGHT: i32 = 780;
const MARGIN: i32 = 20;
const LINE_SAMPLES: usize = 80;

/// The write-up's memory lines: its Q2 thresholds and the limit that was OOM-killed.
const BUDGET_LINES: [(&str, f64); 3] = [
    ("50 GB (Q2: below -> 2,000,000)", 50e9),
    ("100 GB (Q2: above -> no limit)", 100e9),
    ("150 GB: OOM-killed in production", 150e9),
];

/// One strategy-and-sampling curve: measured points and the fitted line.
struct Series {
    label: String,
    style: SeriesStyle,
    points: Vec<(f64, f64)>,
    line: Vec<(f64, f64)>,
    /// The model's value at exactly the production row count (the line's
    /// grid need not hit it), written at the line's end.
    at_production: f64,
}

/// The sweep picture of a model, laid out.
pub struct SweepChart<'a> {
    model: &'a Model,
    series: Vec<Series>,
    x_range: (f64, f64),
    y_range: (f64, f64),
    measured: (f64, f64),
    production_rows: f64,
    legend_rows: Vec<Vec<usize>>,
}

/// Row counts spread evenly on a log axis from `lo` to `hi`.
fn log_grid(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let (a, b) = (lo.ln(), hi.ln());
    (0..n)
        .map(|i| (a + (b - a) * i as f64 / (n - 1) as f64).exp())
        .collect()
}

/// The style of a strategy's `index`-th sampled line: the strategy's colour
/// and marker (which tell strategies apart), a thinner line with a dash
/// pattern other than the unsampled line's (which tells the fractions apart).
fn sampled_style(base: SeriesStyle, index: usize) -> SeriesStyle {
    let dashes: Vec<style::Dash> = [
        style::Dash::Long,
        style::Dash::Solid,
        style::Dash::Dotted,
        style::Dash::Dashed,
    ]
    .into_iter()
    .filter(|d| *d != base.dash)
    .collect();
    SeriesStyle {
        dash: dashes[index % dashes.len()],
        width: 2,
        ..base
    }
}

/// Fractions of rows loaded the sampled runs of a variant used, ascending.
fn fractions(v: &VariantModel) -> Vec<f64> {
    let mut f: Vec<f64> = v
        .points
        .iter()
        .filter(|p| p.max_ranking_samples > 0)
        .map(|p| (p.max_ranking_samples as f64 / p.rows_in as f64 * 1000.0).round() / 1000.0)
        .collect();
    f.sort_by(f64::total_cmp);
    f.dedup();
    f
}

impl<'a> SweepChart<'a> {
    /// Lays out the sweep picture of `model`.
    pub fn new(model: &'a Model) -> Self {
        let production_rows = model.scenario.production.sample_rows as f64;
        let all_rows: Vec<f64> = model
            .variants
            .iter()
            .flat_map(|v| v.points.iter().map(|p| p.rows_in as f64))
            .collect();
        let measured = (
            all_rows.iter().copied().fold(f64::INFINITY, f64::min),
            all_rows.iter().copied().fold(0.0, f64::max),
        );
        let x_lo = (measured.0 / 2.0).max(1.0);
        let x_hi = production_rows.max(measured.1) * 2.0;
        let grid = log_grid(x_lo, x_hi, LINE_SAMPLES);

        let mut series = Vec::new();
        for v in &model.variants {
            // Per-dataset capped sampling's lines lie within a few percent of
            // uniform sampling's (sweep.md and the production table give both);
            // drawing them too would double the legend for no information.
            if v.sampling == Some(crate::sampling::SamplingMode::Capped) {
                continue;
            }
            // Measured points: the sweep's, and production-size runs (`--production`).
            let unsampled: Vec<(f64, f64)> = v
                .points
                .iter()
                .filter(|p| p.max_ranking_samples == 0)
                .map(|p| (p.rows_in as f64, p.peak_bytes as f64))
                .chain(
                    model
                        .production_checks
                        .iter()
                        .filter(|h| h.variant == v.name && h.max_ranking_samples == 0)
                        .map(|h| (h.rows_in as f64, h.measured_bytes as f64)),
                )
                .collect();
            let at_production = |frac: f64| {
                let rows = production_rows.round() as u64;
                let cap = (production_rows * frac).round() as u64;
                model.predict(v, rows, cap).peak_bytes
            };
            let line_at = |frac: f64| -> Vec<(f64, f64)> {
                grid.iter()
                    .map(|&rows| {
                        let cap = (rows * frac).round() as u64;
                        (rows, model.predict(v, rows.round() as u64, cap).peak_bytes)
                    })
                    .collect()
            };
            let base = series_style(&v.strategy, 0);
            series.push(Series {
                label: if v.sampling.is_some() {
                    format!("{} (no sampling)", v.strategy)
                } else {
                    v.name.clone()
                },
                style: base,
                points: unsampled,
                line: line_at(0.0),
                at_production: at_production(0.0),
            });
            if v.sampling.is_none() {
                continue;
            }
            for (i, frac) in fractions(v).into_iter().enumerate() {
                let points = v
                    .points
                    .iter()
                    .filter(|p| {
                        p.max_ranking_samples > 0
                            && ((p.max_ranking_samples as f64 / p.rows_in as f64) - frac).abs()
                                < 5e-3
                    })
                    .map(|p| (p.rows_in as f64, p.peak_bytes as f64))
                    .collect();
                series.push(Series {
                    label: format!("{}, sampling to {:.0}% of rows", v.strategy, frac * 100.0),
                    style: sampled_style(base, i),
                    points,
                    line: line_at(frac),
                    at_production: at_production(frac),
                });
            }
        }
        let ys = series
            .iter()
            .flat_map(|s| s.points.iter().chain(&s.line).map(|p| p.1))
            .filter(|y| *y > 0.0);
        let (y_min, y_max) = ys.fold((f64::INFINITY, 0.0f64), |(lo, hi), y| {
            (lo.min(y), hi.max(y))
        });
        let y_min = if y_min.is_finite() { y_min } else { 1e8 };
        let y_max = y_max.max(BUDGET_LINES[2].1);
        let y_range = (y_min / 1.6, y_max * 1.6);

        // Legend rows: as many entries per row as fit the width.
        let mut legend_rows: Vec<Vec<usize>> = vec![Vec::new()];
        let mut x = MARGIN;
        for (i, s) in series.iter().enumerate() {
            let w = 46 + 8 + text_extent(&s.label, text_size::LEGEND).0 + 28;
            if x + w > WIDTH - MARGIN && !legend_rows.last().is_some_and(Vec::is_empty) {
                legend_rows.push(Vec::new());
                x = MARGIN;
            }
            if let Some(row) = legend_rows.last_mut() {
                row.push(i);
            }
            x += w;
        }
        Self {
            model,
            series,
            x_range: (x_lo, x_hi),
            y_range,
            measured,
            production_rows,
            legend_rows,
        }
    }

    fn plot_top(&self) -> i32 {
        MARGIN + 34 + 28 + self.legend_rows.len() as i32 * 26 + 16
    }

    fn plot_left(&self) -> i32 {
        MARGIN + 90
    }

    fn plot_right(&self) -> i32 {
        WIDTH - MARGIN - 20
    }

    fn plot_bottom(&self) -> i32 {
        HEIGHT - MARGIN - 56
    }

    fn x_px(&self, rows: f64) -> i32 {
        let (a, b) = (self.x_range.0.ln(), self.x_range.1.ln());
        let t = (rows.max(self.x_range.0).ln() - a) / (b - a);
        self.plot_left() + style::px(t * (self.plot_right() - self.plot_left()) as f64)
    }

    fn y_px(&self, bytes: f64) -> i32 {
        let (a, b) = (self.y_range.0.ln(), self.y_range.1.ln());
        let t = (bytes.max(self.y_range.0).ln() - a) / (b - a);
        self.plot_bottom() - style::px(t * (self.plot_bottom() - self.plot_top()) as f64)
    }

    fn draw_axes<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let (l, r, t, b) = (
            self.plot_left(),
            self.plot_right(),
            self.plot_top(),
            self.plot_bottom(),
        );
        // Measured range, shaded.
        let (m0, m1) = (self.x_px(self.measured.0), self.x_px(self.measured.1));
        root.draw(&Rectangle::new(
            [(m0 - 4, t), (m1 + 4, b)],
            RGBColor(236, 240, 246).filled(),
        ))?;
        root.draw_text(
            "measured",
            &font_at(text_size::SMALL, &MUTED, HPos::Center, VPos::Top),
            ((m0 + m1) / 2, t + 4),
        )?;
        // Rows: decades.
        let mut decade = 10f64.powf(self.x_range.0.log10().ceil());
        while decade <= self.x_range.1 {
            let x = self.x_px(decade);
            root.draw(&PathElement::new(
                vec![(x, t), (x, b)],
                style::GRID.stroke_width(1),
            ))?;
            root.draw_text(
                &compact_count(decade),
                &font_at(text_size::LABEL, &INK, HPos::Center, VPos::Top),
                (x, b + 8),
            )?;
            decade *= 10.0;
        }
        root.draw_text(
            "ranking samples loaded (rows, log scale)",
            &font_at(text_size::LABEL, &INK, HPos::Center, VPos::Top),
            ((l + r) / 2, b + 32),
        )?;
        // Bytes: powers of 4 of a GiB.
        let mut tick = (1u64 << 30) as f64;
        while tick / 4.0 >= self.y_range.0 {
            tick /= 4.0;
        }
        while tick <= self.y_range.1 {
            if tick >= self.y_range.0 {
                let y = self.y_px(tick);
                root.draw(&PathElement::new(
                    vec![(l, y), (r, y)],
                    style::GRID.stroke_width(1),
                ))?;
                root.draw_text(
                    &format_bytes(tick as u64).replace(".00", ""),
                    &font_at(text_size::LABEL, &INK, HPos::Right, VPos::Center),
                    (l - 8, y),
                )?;
            }
            tick *= 4.0;
        }
        root.draw(&PathElement::new(
            vec![(l, t), (l, b), (r, b)],
            INK.stroke_width(1),
        ))?;
        // Production size.
        let x = self.x_px(self.production_rows);
        let dotted = SeriesStyle {
            color: MUTED,
            dash: style::Dash::Dotted,
            marker: style::MarkerShape::Square,
            width: 2,
        };
        style::draw_line(root, &[(x, t), (x, b)], &dotted, 2)?;
        root.draw_text(
            &format!(
                "production: {} rows",
                format_count(self.production_rows as u64)
            ),
            &font_at(text_size::SMALL, &INK, HPos::Right, VPos::Top),
            (x - 6, t + 4),
        )?;
        // Budget lines.
        let dashed = SeriesStyle {
            color: LIMIT,
            dash: style::Dash::Dashed,
            marker: style::MarkerShape::Square,
            width: 1,
        };
        for (label, bytes) in BUDGET_LINES {
            if bytes > self.y_range.1 || bytes < self.y_range.0 {
                continue;
            }
            let y = self.y_px(bytes);
            style::draw_line(root, &[(l, y), (r, y)], &dashed, 1)?;
            root.draw_text(
                label,
                &font_at(text_size::SMALL, &LIMIT, HPos::Left, VPos::Bottom),
                (l + 8, y - 3),
            )?;
        }
        Ok(())
    }

    fn draw_series<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        for s in &self.series {
            let px: Vec<(i32, i32)> = s
                .line
                .iter()
                .filter(|(_, y)| *y > 0.0)
                .map(|&(x, y)| (self.x_px(x), self.y_px(y)))
                .collect();
            style::draw_line(root, &px, &s.style, s.style.width)?;
            for &(x, y) in &s.points {
                draw_marker(root, (self.x_px(x), self.y_px(y)), 5, &s.style)?;
            }
        }
        // Each line's value at production, written at its end.
        let x = self.x_px(self.production_rows);
        let mut taken: Vec<i32> = Vec::new();
        let mut ends: Vec<(f64, &Series)> =
            self.series.iter().map(|s| (s.at_production, s)).collect();
        ends.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (bytes, s) in ends {
            let mut y = self.y_px(bytes);
            while taken.iter().any(|t| (t - y).abs() < 18) {
                y += 18;
            }
            taken.push(y);
            root.draw_text(
                &format_bytes(bytes as u64),
                &font_at(text_size::SMALL, &s.style.color, HPos::Left, VPos::Center),
                (x + 8, y),
            )?;
        }
        Ok(())
    }
}

/// `8.5M`, `100k`, `10` for axis ticks.
fn compact_count(n: f64) -> String {
    if n >= 1e6 {
        format!("{}M", style::trim_number(n / 1e6))
    } else if n >= 1e3 {
        format!("{}k", style::trim_number(n / 1e3))
    } else {
        style::trim_number(n)
    }
}

impl Chart for SweepChart<'_> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn size(&self) -> (u32, u32) {
        (WIDTH as u32, HEIGHT as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        root.draw_text(
            &format!(
                "Exact peak RSS vs rows loaded: {} scenario",
                self.model.scenario.name
            ),
            &font_at(text_size::TITLE, &INK, HPos::Left, VPos::Top),
            (MARGIN, MARGIN),
        )?;
        let fitted = self
            .model
            .scales
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        root.draw_text(
            &format!(
                "points: measured at scales {fitted}{}{}; lines: model (largest stage){}{}; uniform sampling (capped: sweep.md)",
                if self.model.has_column_term() {
                    let m = self.model.columns_measured();
                    format!(
                        " x {}-{} columns",
                        m.first().copied().unwrap_or(0),
                        m.last().copied().unwrap_or(0)
                    )
                } else {
                    String::new()
                },
                if self.model.production_checks.is_empty() { "" } else { " and production" },
                if self.model.has_column_term() {
                    format!(" at {} columns", self.model.columns_now())
                } else {
                    String::new()
                },
                if self.model.calibration.is_some() { " (calibrated)" } else { "" }
            ),
            &font_at(text_size::LEGEND, &MUTED, HPos::Left, VPos::Top),
            (MARGIN, MARGIN + 36),
        )?;
        for (r, row) in self.legend_rows.iter().enumerate() {
            let y = MARGIN + 34 + 28 + 14 + r as i32 * 26;
            let mut x = MARGIN;
            for &i in row {
                let s = &self.series[i];
                let w = draw_legend_sample(root, (x, y), &s.style)?;
                root.draw_text(
                    &s.label,
                    &font_at(text_size::LEGEND, &INK, HPos::Left, VPos::Center),
                    (x + w + 8, y),
                )?;
                x += w + 8 + text_extent(&s.label, text_size::LEGEND).0 + 28;
            }
        }
        self.draw_axes(root)?;
        self.draw_series(root)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_and_ticks() {
        let g = log_grid(10.0, 1000.0, 3);
        assert!((g[1] - 100.0).abs() < 1e-9 && (g[2] - 1000.0).abs() < 1e-6);
        assert_eq!(compact_count(8_500_000.0), "8.5M");
        assert_eq!(compact_count(10_000.0), "10k");
    }
}
