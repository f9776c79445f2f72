//! The chart's frame: the title and legend above the plot, the axes and
//! their round ticks around it.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::{TimelineChart, MARGIN};
use crate::plot::glyphs::draw_text;
use crate::plot::style::{
    self, draw_legend_sample, draw_line, font_at, text_extent, text_size, SeriesStyle, INK, LIMIT,
    MUTED,
};
use crate::report::{RunRecord, RunStatus};
use crate::units::{format_bytes, format_count};

impl TimelineChart<'_> {
    pub(super) fn draw_header<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<()>
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

    pub(super) fn draw_axes<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
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
}

/// The legend text of a run: its peak and where, or how it ended.
pub(super) fn legend_text(run: &RunRecord) -> String {
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
