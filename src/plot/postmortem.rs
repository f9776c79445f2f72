//! The postmortem picture: a container's memory up to the kill.
//!
//! `docker stats` rows give memory use against the container's limit over
//! time; the log gives when each pipeline stage began and when the kill came.
//! Drawn together, they show which stage pushed memory into the limit. Rows
//! that carry no time of their own are spaced by the stats interval, and then
//! log events cannot be placed on the same axis (the picture says so).

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::glyphs::draw_text;
use super::style::{
    self, font_at, text_extent, text_size, ByteUnit, Dash, SeriesStyle, INK, LIMIT, MUTED,
};
use super::timeline::nice_ticks;
use super::Chart;
use crate::postmortem::{format_unix, Postmortem};
use crate::units::format_bytes;

/// Draws the postmortem picture into `dir` when there is a memory curve to
/// draw (two stats rows at least) and returns the file names drawn. A picture
/// that cannot be drawn is a warning: it must not cost the postmortem its
/// report.
pub fn draw(pm: &Postmortem, dir: &std::path::Path) -> Vec<String> {
    if pm.stats.len() < 2 {
        return Vec::new();
    }
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!(
            "warning: picture not drawn: creating {}: {e}",
            dir.display()
        );
        return Vec::new();
    }
    match super::render(&PostmortemChart::new(pm), dir) {
        Ok(files) => files
            .iter()
            .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect(),
        Err(e) => {
            eprintln!("warning: picture not drawn: {e:#}");
            Vec::new()
        }
    }
}

/// File stem of the picture.
pub const NAME: &str = "postmortem";

const WIDTH: u32 = 1200;
const HEIGHT: u32 = 640;
const LEFT: i32 = 110;
const RIGHT: i32 = 1160;
const TOP: i32 = 150;
const BOTTOM: i32 = 560;

/// Memory over time with the limit, stage starts and the kill.
pub struct PostmortemChart {
    title: String,
    subtitle: String,
    axis_note: String,
    /// (seconds on the axis, bytes)
    points: Vec<(f64, u64)>,
    limit: Option<u64>,
    /// (seconds, label)
    stages: Vec<(f64, String)>,
    kill: Option<(f64, String)>,
    t_max: f64,
    y_max: f64,
}

impl PostmortemChart {
    /// Lays the picture out from a postmortem's stats rows and timeline.
    pub fn new(pm: &Postmortem) -> Self {
        let timed = !pm.stats.is_empty() && pm.stats.iter().all(|p| p.t_unix.is_some());
        let t0 = pm
            .stats
            .iter()
            .filter_map(|p| p.t_unix)
            .fold(f64::INFINITY, f64::min);
        let interval = pm.stats_interval_s;
        let points: Vec<(f64, u64)> = pm
            .stats
            .iter()
            .map(|p| {
                let t = if timed {
                    p.t_unix.unwrap_or(t0) - t0
                } else {
                    p.index as f64 * interval
                };
                (t, p.usage_bytes)
            })
            .collect();
        let mut t_max = points.iter().map(|p| p.0).fold(0.0, f64::max);
        let mut stages = Vec::new();
        let mut kill = None;
        if timed {
            for e in &pm.timeline {
                if let (Some(stage), Some(t)) = (&e.stage, e.t_unix) {
                    let x = t - t0;
                    if x >= -1.0 {
                        stages.push((x.max(0.0), stage.clone()));
                    }
                }
            }
            if let Some(k) = &pm.kill {
                if let Some(t) = k.t_unix {
                    let x = (t - t0).max(0.0);
                    kill = Some((x, "killed".to_string()));
                    t_max = t_max.max(x);
                }
            }
            if let Some(last) = stages.iter().map(|s| s.0).reduce(f64::max) {
                t_max = t_max.max(last);
            }
        }
        if t_max <= 0.0 {
            t_max = 1.0;
        }
        let peak = points.iter().map(|p| p.1).max().unwrap_or(0);
        let limit = pm.memory.limit_bytes;
        let y_max = (peak.max(limit.unwrap_or(0)) as f64 * 1.1).max(1.0);
        let container = pm
            .memory
            .container
            .clone()
            .unwrap_or_else(|| "container".into());
        let title = format!(
            "Memory of {container} up to the kill ({})",
            pm.memory.curve.as_deref().unwrap_or("docker stats")
        );
        let mut subtitle = format!("peak {}", format_bytes(peak));
        if let Some(l) = limit {
            subtitle += &format!(" of a {} limit", format_bytes(l));
        }
        if let Some(k) = &pm.kill {
            subtitle += &format!("; killed on log line {}", k.line);
            if let Some(t) = k.t_unix {
                subtitle += &format!(" at {}", format_unix(t));
            }
        }
        if let Some(s) = &pm.last_stage {
            subtitle += &format!("; last stage: {}", s.stage.as_deref().unwrap_or("?"));
        }
        let axis_note = if timed && t0.is_finite() {
            format!("seconds since {}", format_unix(t0))
        } else {
            format!(
                "stats rows carry no time: spaced {} s apart (--stats-interval); log events not placed",
                crate::plot::style::trim_number(interval)
            )
        };
        Self {
            title,
            subtitle,
            axis_note,
            points,
            limit,
            stages,
            kill,
            t_max: t_max * 1.02,
            y_max,
        }
    }

    fn x_px(&self, t: f64) -> i32 {
        LEFT + style::px((t / self.t_max) * (RIGHT - LEFT) as f64)
    }

    fn y_px(&self, bytes: f64) -> i32 {
        BOTTOM - style::px((bytes / self.y_max) * (BOTTOM - TOP) as f64)
    }
}

impl Chart for PostmortemChart {
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
        draw_text(
            root,
            &self.title,
            &font_at(text_size::TITLE, &INK, HPos::Left, VPos::Top),
            (LEFT, 20),
        )?;
        draw_text(
            root,
            &self.subtitle,
            &font_at(text_size::SMALL, &MUTED, HPos::Left, VPos::Top),
            (LEFT, 58),
        )?;
        // Axes and grid.
        let unit = ByteUnit::for_max(self.y_max);
        for v in nice_ticks(self.y_max / unit.bytes, 6) {
            let y = self.y_px(v * unit.bytes);
            root.draw(&PathElement::new(
                vec![(LEFT, y), (RIGHT, y)],
                style::GRID.stroke_width(1),
            ))?;
            draw_text(
                root,
                &unit.tick(v),
                &font_at(text_size::LABEL, &INK, HPos::Right, VPos::Center),
                (LEFT - 8, y),
            )?;
        }
        for t in nice_ticks(self.t_max, 10) {
            let x = self.x_px(t);
            root.draw(&PathElement::new(
                vec![(x, TOP), (x, BOTTOM)],
                style::GRID.stroke_width(1),
            ))?;
            draw_text(
                root,
                &style::seconds_tick(t),
                &font_at(text_size::LABEL, &INK, HPos::Center, VPos::Top),
                (x, BOTTOM + 8),
            )?;
        }
        root.draw(&Rectangle::new(
            [(LEFT, TOP), (RIGHT, BOTTOM)],
            INK.stroke_width(1),
        ))?;
        draw_text(
            root,
            &self.axis_note,
            &font_at(text_size::SMALL, &MUTED, HPos::Right, VPos::Top),
            (RIGHT, BOTTOM + 32),
        )?;

        // Stage starts: dotted lines, labels staggered on three rows above the plot.
        let dotted = SeriesStyle {
            color: MUTED,
            dash: Dash::Dotted,
            marker: style::MarkerShape::Circle,
            width: 1,
        };
        let mut row_ends = [i32::MIN; 3];
        for (t, label) in &self.stages {
            let x = self.x_px(*t);
            style::draw_line(root, &[(x, TOP), (x, BOTTOM)], &dotted, 1)?;
            let w = text_extent(label, text_size::SMALL).0;
            let Some(row) = row_ends.iter().position(|end| x > *end + 6) else {
                continue;
            };
            row_ends[row] = x + w;
            let y = TOP - 10 - row as i32 * 18;
            draw_text(
                root,
                label,
                &font_at(text_size::SMALL, &INK, HPos::Left, VPos::Bottom),
                (x, y),
            )?;
        }

        // The limit.
        if let Some(l) = self.limit {
            let y = self.y_px(l as f64);
            let dash = SeriesStyle {
                color: LIMIT,
                dash: Dash::Dashed,
                marker: style::MarkerShape::Square,
                width: 2,
            };
            style::draw_line(root, &[(LEFT, y), (RIGHT, y)], &dash, 2)?;
            draw_text(
                root,
                &format!("limit {}", format_bytes(l)),
                &font_at(text_size::SMALL, &LIMIT, HPos::Right, VPos::Bottom),
                (RIGHT - 6, y - 4),
            )?;
        }

        // Memory use.
        let line: Vec<(i32, i32)> = self
            .points
            .iter()
            .map(|(t, b)| (self.x_px(*t), self.y_px(*b as f64)))
            .collect();
        let usage = SeriesStyle {
            color: RGBColor(31, 73, 125),
            dash: Dash::Solid,
            marker: style::MarkerShape::Circle,
            width: 2,
        };
        style::draw_line(root, &line, &usage, 2)?;
        if line.len() <= 200 {
            for p in &line {
                style::draw_marker(root, *p, 3, &usage)?;
            }
        }

        // The kill.
        if let Some((t, label)) = &self.kill {
            let x = self.x_px(*t);
            root.draw(&PathElement::new(
                vec![(x, TOP), (x, BOTTOM)],
                LIMIT.stroke_width(2),
            ))?;
            draw_text(
                root,
                label,
                &font_at(text_size::LABEL, &LIMIT, HPos::Right, VPos::Top),
                (x - 4, TOP + 6),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(nice_ticks(10.0, 5), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(nice_ticks(0.0, 5), vec![0.0]);
        assert!(nice_ticks(f64::NAN, 5) == vec![0.0]);
    }
}
