//! Measured points and the lines fitted through them, per series: the picture
//! of a fidelity run (`fidelity.png`: pandas against the replay) and of a
//! similarity sweep (`sweep.png`: the full matrix against micro-batches, out
//! to production size).
//!
//! Either picture answers one question at a glance: do the lines run the way
//! the model says (parallel slopes for a replay that transfers; a quadratic
//! against a linear curve for similarity), and where do they land?

use anyhow::Result;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::style::{self, font, series_style, ByteUnit, Dash, SeriesStyle, INK, LIMIT, MUTED};
use super::Chart;
use crate::fidelity::Fidelity;
use crate::model::similarity::SimilarityModel;
use crate::units::{format_bytes, format_count};

const WIDTH: u32 = 1100;
const HEIGHT: u32 = 700;
/// Points along a fitted curve.
const CURVE_SAMPLES: usize = 60;

/// One series: measured points and its fitted curve (x, bytes).
struct Series {
    label: String,
    style: SeriesStyle,
    points: Vec<(f64, f64)>,
    curve: Vec<(f64, f64)>,
}

/// Points and fitted curves of several series, laid out.
pub struct FitChart {
    name: &'static str,
    title: String,
    x_desc: String,
    series: Vec<Series>,
    x_range: (f64, f64),
    y_max_bytes: f64,
    y_min_bytes: f64,
    /// Logarithmic axes (sizes spanning decades); linear otherwise.
    log: bool,
    /// A vertical line at production size, labelled.
    marker: Option<(f64, String)>,
}

fn grid(lo: f64, hi: f64, log: bool) -> Vec<f64> {
    (0..CURVE_SAMPLES)
        .map(|i| {
            let t = i as f64 / (CURVE_SAMPLES - 1) as f64;
            if log {
                (lo.ln() + (hi.ln() - lo.ln()) * t).exp()
            } else {
                lo + (hi - lo) * t
            }
        })
        .collect()
}

impl FitChart {
    /// `fidelity.png`: per strategy, pandas (solid, filled) and the replay
    /// (dashed, hollow), peak against rows loaded. Each line is the largest of
    /// that side's stage fits (a fixed-cost stage can set the peak at small
    /// sizes, a merge at large ones); the legend gives the per-row cost of the
    /// fastest-growing stage.
    pub fn fidelity(f: &Fidelity) -> Self {
        let x_max = f
            .strategies
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.rows as f64))
            .fold(1.0, f64::max)
            * 1.05;
        let mut series = Vec::new();
        for (i, s) in f.strategies.iter().enumerate() {
            for (side, pandas) in [("pandas", true), ("oomlab", false)] {
                let side_fit = |c: &crate::fidelity::Comparison| {
                    if pandas {
                        c.pandas.clone()
                    } else {
                        c.oomlab.clone()
                    }
                };
                let mut fits: Vec<crate::model::fit::Fit> =
                    s.stages.iter().map(|st| side_fit(&st.comparison)).collect();
                if fits.is_empty() {
                    fits.push(side_fit(&s.overall));
                }
                let per_row = match &s.per_row {
                    Some(p) if pandas => {
                        format!("{:.0} B/row ({})", p.pandas_bytes_per_row, p.pandas_stage)
                    }
                    Some(p) => format!("{:.0} B/row ({})", p.oomlab_bytes_per_row, p.oomlab_stage),
                    None => format!("{:.0} B/row", side_fit(&s.overall).bytes_per_row_in),
                };
                let mut style = series_style(&s.strategy, i);
                style.dash = if pandas { Dash::Solid } else { Dash::Dashed };
                series.push(Series {
                    label: format!("{} ({side}): {per_row}", s.strategy),
                    style,
                    points: s
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
                        .collect(),
                    curve: grid(0.0, x_max, false)
                        .into_iter()
                        .map(|x| {
                            let peak = fits.iter().map(|f| f.eval(x, x)).fold(f64::MIN, f64::max);
                            (x, peak)
                        })
                        .collect(),
                });
            }
        }
        Self::laid_out(
            crate::fidelity::FIDELITY_PICTURE,
            format!(
                "Peak vs rows: pandas reference (solid) and oomlab replay (dashed), {}",
                f.scenario
            ),
            "ranking samples loaded".into(),
            series,
            (0.0, x_max),
            false,
            None,
        )
    }

    /// `sweep.png` of a similarity sweep: peak against items, measured points
    /// and the fits extended to production size, on log axes.
    pub fn similarity(m: &SimilarityModel) -> Self {
        let lo = m
            .strategies
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.items as f64))
            .fold(f64::INFINITY, f64::min)
            .max(1.0)
            * 0.8;
        let hi = (m.production_items as f64).max(lo * 2.0) * 1.25;
        let series = m
            .strategies
            .iter()
            .enumerate()
            .map(|(i, s)| Series {
                label: format!("{}: exponent {:.2}", s.strategy, s.exponent),
                style: series_style(&s.strategy, i),
                points: s
                    .points
                    .iter()
                    .map(|p| (p.items as f64, p.peak_bytes as f64))
                    .collect(),
                curve: grid(lo, hi, true)
                    .into_iter()
                    .map(|x| (x, s.predict(x as u64)))
                    .collect(),
            })
            .collect();
        Self::laid_out(
            crate::model::similarity::SWEEP_PICTURE,
            format!(
                "Similarity peak vs items: measured (markers) and fitted out to {} items",
                format_count(m.production_items)
            ),
            "items (log scale)".into(),
            series,
            (lo, hi),
            true,
            Some((
                m.production_items as f64,
                format!("production: {} items", format_count(m.production_items)),
            )),
        )
    }

    fn laid_out(
        name: &'static str,
        title: String,
        x_desc: String,
        series: Vec<Series>,
        x_range: (f64, f64),
        log: bool,
        marker: Option<(f64, String)>,
    ) -> Self {
        let y_max_bytes = series
            .iter()
            .flat_map(|s| s.points.iter().chain(s.curve.iter()).map(|p| p.1))
            .fold(1.0, f64::max)
            * 1.1;
        let y_min_bytes = series
            .iter()
            .flat_map(|s| s.points.iter().chain(s.curve.iter()).map(|p| p.1))
            .filter(|y| *y > 0.0)
            .fold(f64::INFINITY, f64::min)
            .min(y_max_bytes / 10.0)
            * 0.7;
        Self {
            name,
            y_min_bytes,
            title,
            x_desc,
            series,
            x_range,
            y_max_bytes,
            log,
            marker,
        }
    }

    fn draw_on<'a, DB: DrawingBackend + 'a, X, Y>(
        &self,
        chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
        unit: ByteUnit,
    ) -> Result<()>
    where
        DB::ErrorType: 'static,
        X: Ranged<ValueType = f64>,
        Y: Ranged<ValueType = f64>,
    {
        // Log axes are in bytes (ticks print their own unit); linear ones in `unit`.
        let log = self.log;
        let y_floor = if log { self.y_min_bytes } else { 0.0 };
        let to_unit = move |p: &(f64, f64)| {
            let y = if log {
                p.1
            } else {
                unit.of(p.1.max(0.0) as u64)
            };
            (p.0, y.max(y_floor))
        };
        for s in &self.series {
            let curve: Vec<(f64, f64)> = s.curve.iter().map(to_unit).collect();
            let (color, width) = (s.style.color, s.style.width);
            let anno = match s.style.dash {
                Dash::Solid => {
                    chart.draw_series(LineSeries::new(curve, color.stroke_width(width)))?
                }
                _ => chart.draw_series(DashedLineSeries::new(
                    curve,
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
            chart.draw_series(s.points.iter().map(to_unit).map(|p| {
                if dashed {
                    Circle::new(p, 6, color.stroke_width(2))
                } else {
                    Circle::new(p, 6, color.filled())
                }
            }))?;
        }
        if let Some((x, label)) = &self.marker {
            let top = if log {
                self.y_max_bytes
            } else {
                unit.of(self.y_max_bytes as u64)
            };
            chart.draw_series(DashedLineSeries::new(
                vec![(*x, y_floor), (*x, top)],
                6,
                4,
                LIMIT.stroke_width(2),
            ))?;
            chart.draw_series(std::iter::once(Text::new(
                label.clone(),
                (*x, top),
                font(style::text_size::SMALL, &LIMIT).pos(plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Right,
                    plotters::style::text_anchor::VPos::Top,
                )),
            )))?;
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

impl Chart for FitChart {
    fn name(&self) -> &'static str {
        self.name
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
        let (x0, x1) = self.x_range;
        let mut builder = ChartBuilder::on(root);
        builder
            .caption(&self.title, font(style::text_size::TITLE * 0.8, &INK))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(90);
        let y_desc = if self.log {
            "exact peak (log scale)".to_string()
        } else {
            format!("exact peak ({})", unit.suffix)
        };
        let x_fmt = |x: &f64| format_count(x.max(0.0).round() as u64);
        let y_fmt = |y: &f64| style::trim_number(*y);
        if self.log {
            let mut chart = builder.build_cartesian_2d(
                (x0..x1).log_scale(),
                (self.y_min_bytes..self.y_max_bytes).log_scale(),
            )?;
            chart
                .configure_mesh()
                .x_desc(&self.x_desc)
                .y_desc(&y_desc)
                .x_label_formatter(&x_fmt)
                .y_label_formatter(&|y: &f64| format_bytes(y.max(0.0) as u64))
                .label_style(font(style::text_size::SMALL, &MUTED))
                .axis_desc_style(font(style::text_size::LABEL, &INK))
                .light_line_style(WHITE)
                .bold_line_style(style::GRID)
                .draw()?;
            self.draw_on(&mut chart, unit)
        } else {
            let mut chart = builder.build_cartesian_2d(x0..x1, 0.0..y_max)?;
            chart
                .configure_mesh()
                .x_desc(&self.x_desc)
                .y_desc(&y_desc)
                .x_label_formatter(&x_fmt)
                .y_label_formatter(&y_fmt)
                .label_style(font(style::text_size::SMALL, &MUTED))
                .axis_desc_style(font(style::text_size::LABEL, &INK))
                .light_line_style(WHITE)
                .bold_line_style(style::GRID)
                .draw()?;
            self.draw_on(&mut chart, unit)
        }
    }
}
