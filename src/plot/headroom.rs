//! `headroom.png`: how far rows and feature columns can grow before the
//! predicted peak crosses the limit, for `check` and `recommend --out`.
//!
//! The write-up's Q3 names two growth risks (ten times the exposure log, a
//! hundred more features); a table answers a few combinations, a picture
//! shows the whole boundary at once: rows loaded on x, numeric profile
//! columns on y, the limit's contour (every combination left of it fits),
//! today's point, the cap's point and the growth table's cells.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::style::{self, font, BETTER, INK, LIMIT, MUTED, WORSE};
use super::Chart;
use crate::model::advice::GrowthTable;
use crate::model::{Model, VariantModel};
use crate::units::{format_bytes, format_count};

/// File stem of the picture.
pub const NAME: &str = "headroom";

const WIDTH: u32 = 1100;
const HEIGHT: u32 = 720;
/// Column counts the contour is computed at.
const CONTOUR_SAMPLES: usize = 80;

/// The laid-out headroom picture.
pub struct HeadroomChart {
    title: String,
    /// (rows loaded, columns) along the limit; rows at the axis end where
    /// every row count up to it fits.
    contour: Vec<(f64, f64)>,
    today: (f64, f64),
    /// `MAX_RANKING_SAMPLES` as a point on the rows axis, when one is set or advised.
    cap: Option<(f64, f64, String)>,
    /// The growth table's cells: (rows, columns, fits).
    cells: Vec<(f64, f64, bool)>,
    x_max: f64,
    y_max: f64,
    /// A line under the title (no column term, calibration).
    note: String,
}

/// The most rows loaded that fit `limit` at `columns`, up to `ceiling`.
fn max_rows(
    model: &Model,
    variant: &VariantModel,
    (cap, columns): (u64, u64),
    limit: f64,
    ceiling: u64,
) -> u64 {
    let fits = |rows: u64| model.predict_at(variant, rows, cap, columns).peak_bytes <= limit;
    crate::model::advice::largest_fitting(1, ceiling, fits).unwrap_or(ceiling)
}

impl HeadroomChart {
    /// The picture of `variant` at `rows_in` rows loaded with
    /// `MAX_RANKING_SAMPLES = cap` held, under `limit` (bytes after
    /// headroom); `advised` is a cap to mark (recommend's answer, or the one
    /// `check` says would fit), and `table` the growth table printed beside it.
    pub fn new(
        model: &Model,
        variant: &VariantModel,
        (rows_in, cap, advised): (u64, u64, Option<u64>),
        limit: f64,
        table: &GrowthTable,
    ) -> Self {
        let columns = model.columns_now();
        let modelled = model.has_column_term();
        let widest = table.cells.iter().flatten().map(|c| c.columns).max();
        let y_max = (widest.unwrap_or(columns).max(columns) as f64 * 1.3).max(10.0);
        let most_rows = table.cells.iter().flatten().map(|c| c.rows_in).max();
        let x_end = most_rows.unwrap_or(rows_in).max(rows_in).max(1);
        let ceiling = x_end.saturating_mul(2).max(1000);
        let at_today = max_rows(model, variant, (cap, columns), limit, ceiling);
        let x_max = (x_end.max(at_today) as f64 * 1.1).max(1.0);
        let contour = (0..CONTOUR_SAMPLES)
            .map(|i| {
                let c = (y_max * i as f64 / (CONTOUR_SAMPLES - 1) as f64).round() as u64;
                let r = max_rows(model, variant, (cap, c.max(1)), limit, ceiling);
                ((r as f64).min(x_max), c as f64)
            })
            .collect();
        let cells = table
            .cells
            .iter()
            .flatten()
            .map(|c| (c.rows_in as f64, c.columns as f64, c.fits))
            .collect();
        let cap_point = [cap, advised.unwrap_or(0)]
            .into_iter()
            .find(|&c| c > 0 && c < rows_in)
            .map(|c| {
                (
                    c as f64,
                    columns as f64,
                    format!("MAX_RANKING_SAMPLES={}", format_count(c)),
                )
            });
        let mut note = format!(
            "{} against a {} limit{}; left of the line fits",
            variant.name,
            format_bytes(limit.max(0.0) as u64),
            if cap > 0 {
                format!(", MAX_RANKING_SAMPLES={} held", format_count(cap))
            } else {
                String::new()
            }
        );
        if !modelled {
            note += &format!(
                " (the model was measured at {columns} columns only: columns do not move the line; sweep with --columns)"
            );
        }
        Self {
            title: format!(
                "Growth headroom: rows loaded and {}",
                crate::model::COLUMNS_WHAT
            ),
            contour,
            today: (rows_in as f64, columns as f64),
            cap: cap_point,
            cells,
            x_max,
            y_max,
            note,
        }
    }
}

impl Chart for HeadroomChart {
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
        let (top, body) = root.split_vertically(70);
        top.draw(&Text::new(
            self.title.clone(),
            (20, 12),
            font(style::text_size::TITLE * 0.8, &INK),
        ))?;
        top.draw(&Text::new(
            self.note.clone(),
            (20, 44),
            font(style::text_size::SMALL, &MUTED),
        ))?;
        let mut chart = ChartBuilder::on(&body)
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..self.x_max, 0.0..self.y_max)?;
        chart
            .configure_mesh()
            .x_desc("ranking samples loaded")
            .y_desc(crate::model::COLUMNS_WHAT)
            .x_label_formatter(&|x: &f64| format_count(x.max(0.0).round() as u64))
            .y_label_formatter(&|y: &f64| format!("{}", y.round() as i64))
            .label_style(font(style::text_size::SMALL, &MUTED))
            .axis_desc_style(font(style::text_size::LABEL, &INK))
            .light_line_style(WHITE)
            .bold_line_style(style::GRID)
            .draw()?;
        // What fits: the area left of the contour, lightly shaded.
        let mut area: Vec<(f64, f64)> = vec![(0.0, 0.0)];
        area.extend(self.contour.iter().copied());
        area.push((0.0, self.y_max));
        chart.draw_series(std::iter::once(Polygon::new(area, BETTER.mix(0.10))))?;
        chart
            .draw_series(LineSeries::new(
                // Where everything up to the axis end fits there is no line.
                self.contour.iter().copied().filter(|p| p.0 < self.x_max),
                LIMIT.stroke_width(3),
            ))?
            .label("the limit: predicted peak = limit")
            .legend(|(x, y)| {
                PathElement::new(vec![(x - 4, y), (x + 18, y)], LIMIT.stroke_width(3))
            });
        chart
            .draw_series(
                self.cells
                    .iter()
                    .filter(|c| c.2)
                    .map(|&(x, y, _)| Circle::new((x, y), 5, BETTER.filled())),
            )?
            .label("growth table: fits")
            .legend(|(x, y)| Circle::new((x + 7, y), 5, BETTER.filled()));
        chart
            .draw_series(
                self.cells
                    .iter()
                    .filter(|c| !c.2)
                    .map(|&(x, y, _)| Circle::new((x, y), 5, WORSE.stroke_width(2))),
            )?
            .label("growth table: over the limit")
            .legend(|(x, y)| Circle::new((x + 7, y), 5, WORSE.stroke_width(2)));
        // Today's label above its point, the cap's below: the two are often
        // close on the rows axis (a cap just under the rows loaded).
        let label_at = |text: String, at: (f64, f64), v: VPos| {
            Text::new(
                text,
                at,
                font(style::text_size::SMALL, &INK).pos(Pos::new(HPos::Left, v)),
            )
        };
        chart.draw_series([
            Cross::new(self.today, 9, INK.stroke_width(3)).into_dyn(),
            label_at(
                format!(
                    "  today: {} rows, {} columns",
                    format_count(self.today.0 as u64),
                    self.today.1
                ),
                self.today,
                VPos::Bottom,
            )
            .into_dyn(),
        ])?;
        if let Some((x, y, label)) = &self.cap {
            chart.draw_series([
                TriangleMarker::new((*x, *y), 9, INK.filled()).into_dyn(),
                label_at(format!("  {label}"), (*x, *y), VPos::Top).into_dyn(),
            ])?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(font(style::text_size::LEGEND * 0.9, &INK))
            .background_style(WHITE.mix(0.9))
            .border_style(style::GRID)
            .draw()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contour_is_the_boundary_and_the_picture_draws() {
        let m = crate::model::synthetic::model_with_columns();
        let v = m.variant("optimized").unwrap();
        let limit = 40.0 * (1u64 << 30) as f64;
        let rows = 8_532_146;
        let table = crate::model::advice::growth_table(&m, v, rows, 0, limit);
        let chart = HeadroomChart::new(&m, v, (rows, 0, Some(5_000_000)), limit, &table);
        // More columns, fewer rows fit: the line leans left as it rises.
        let first = chart.contour.first().unwrap().0;
        let last = chart.contour.last().unwrap().0;
        assert!(first > last, "{first} {last}");
        for &(r, c) in &chart.contour {
            if r > 0.0 && r < chart.x_max {
                let at = |r: f64| m.predict_at(v, r as u64, 0, c.max(1.0) as u64).peak_bytes;
                assert!(at(r) <= limit && at(r + 1.0) > limit, "{r} {c}");
            }
        }
        assert!(chart.cap.is_some());
        let svg = crate::plot::render_svg(&chart).unwrap();
        assert!(svg.contains("today: 8,532,146 rows, 87 columns"), "svg");
    }
}
