//! `fidelity.png`/`.svg`: peak against rows of the pandas reference and of the
//! replay, per strategy, measured points and fitted lines.
//!
//! The picture shows at a glance whether the replay's per-row cost (the slope)
//! tracks pandas': parallel lines mean the figures transfer up to a fixed
//! offset; diverging lines mean the replay under- or over-states what more
//! rows cost in production.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::style::{self, font, series_style, ByteUnit, Dash, SeriesStyle, INK, MUTED};
use super::Chart;
use crate::fidelity::Fidelity;
use crate::units::format_count;

/// File stem of the picture.
pub const NAME: &str = "fidelity";

const WIDTH: u32 = 1100;
const HEIGHT: u32 = 700;

/// One side of one strategy.
struct Series {
    label: String,
    style: SeriesStyle,
    points: Vec<(f64, f64)>,
    line: [(f64, f64); 2],
}

/// The fidelity picture, laid out.
pub struct FidelityChart {
    title: String,
    series: Vec<Series>,
    x_max: f64,
    y_max_bytes: f64,
}

impl FidelityChart {
    /// Lays out the picture of a fidelity result.
    pub fn new(f: &Fidelity) -> Self {
        let mut series = Vec::new();
        let x_max = f
            .strategies
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.rows as f64))
            .fold(1.0, f64::max)
            * 1.05;
        for (i, s) in f.strategies.iter().enumerate() {
            for (side, fit, pandas) in [
                ("pandas", &s.overall.pandas, true),
                ("oomlab", &s.overall.oomlab, false),
            ] {
                let mut style = series_style(&s.strategy, i);
                style.dash = if pandas { Dash::Solid } else { Dash::Dashed };
                let points = s
                    .points
                    .iter()
                    .map(|p| {
                        let peak = if pandas {
                            p.pandas_peak_bytes
                        } else {
                            p.oomlab_peak_bytes
                        };
                        (p.rows as f64, peak as f64)
                    })
                    .collect();
                series.push(Series {
                    label: format!("{} ({side}): {:.0} B/row", s.strategy, fit.bytes_per_row_in),
                    style,
                    points,
                    line: [(0.0, fit.eval(0.0, 0.0)), (x_max, fit.eval(x_max, x_max))],
                });
            }
        }
        let y_max_bytes = series
            .iter()
            .flat_map(|s| {
                s.points
                    .iter()
                    .map(|p| p.1)
                    .chain(s.line.iter().map(|p| p.1))
            })
            .fold(1.0, f64::max)
            * 1.1;
        Self {
            title: format!(
                "Peak vs rows: pandas reference (solid) and oomlab replay (dashed), {}",
                f.scenario
            ),
            series,
            x_max,
            y_max_bytes,
        }
    }
}

impl Chart for FidelityChart {
    fn name(&self) -> &'static str {
        NAME
    }

    fn size(&self) -> (u32, u32) {
        (WIDTH, HEIGHT)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let unit = ByteUnit::for_max(self.y_max_bytes);
        let y_max = unit.of(self.y_max_bytes as u64);
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, font(style::text_size::TITLE * 0.8, &INK))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(90)
            .build_cartesian_2d(0.0..self.x_max, 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc("ranking samples loaded")
            .y_desc(format!("exact peak ({})", unit.suffix))
            .x_label_formatter(&|x| format_count(x.max(0.0) as u64))
            .y_label_formatter(&|y| style::trim_number(*y))
            .label_style(font(style::text_size::SMALL, &MUTED))
            .axis_desc_style(font(style::text_size::LABEL, &INK))
            .light_line_style(WHITE)
            .bold_line_style(style::GRID)
            .draw()?;
        for s in &self.series {
            let to_px = |p: &(f64, f64)| (p.0, unit.of(p.1.max(0.0) as u64));
            let line: Vec<(f64, f64)> = s.line.iter().map(to_px).collect();
            let color = s.style.color;
            let width = s.style.width;
            let anno = match s.style.dash {
                Dash::Solid => {
                    chart.draw_series(LineSeries::new(line, color.stroke_width(width)))?
                }
                _ => chart.draw_series(DashedLineSeries::new(
                    line,
                    10,
                    6,
                    color.stroke_width(width),
                ))?,
            };
            let dashed = s.style.dash != Dash::Solid;
            anno.label(s.label.clone()).legend(move |(x, y)| {
                let pts = vec![(x - 4, y), (x + 18, y)];
                if dashed {
                    DashedPathElement::new(pts, 5, 3, color.stroke_width(width)).into_dyn()
                } else {
                    PathElement::new(pts, color.stroke_width(width)).into_dyn()
                }
            });
            let filled = s.style.dash == Dash::Solid;
            chart.draw_series(s.points.iter().map(to_px).map(|p| {
                if filled {
                    Circle::new(p, 6, color.filled())
                } else {
                    Circle::new(p, 6, color.stroke_width(2))
                }
            }))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(font(style::text_size::LEGEND * 0.9, &INK))
            .background_style(WHITE.mix(0.9))
            .border_style(style::GRID)
            .draw()?;
        Ok(())
    }
}
