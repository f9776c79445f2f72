//! The stage lanes under the time axis: one per strategy, each stage a
//! shaded box, its name inside or packed into rows below with a leader line.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::{TimelineChart, MARGIN, WIDTH, X_AXIS_HEIGHT};
use crate::plot::glyphs::draw_text;
use crate::plot::style::{self, font_at, pack_callouts, text_extent, text_size, INK, LIMIT, MUTED};
use crate::report::{RunRecord, RunStatus, StageRecord};

const LANE_BOX: i32 = 26;
const LANE_ROW: i32 = 24;
const LANE_GAP: i32 = 14;
/// Air between a lane label's text and the ends of its footprint, where its
/// leader line turns down beside the text (never into a letter).
const HOOK: i32 = 5;
/// Horizontal slack a stage label may slide before it opens another row.
const LABEL_SLIDE: i32 = 90;

/// One strategy's lane of stage spans under the time axis.
pub(super) struct Lane {
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

impl TimelineChart<'_> {
    /// Decides, per strategy, which stage names fit in their boxes and packs the
    /// rest into rows under the lane so no two labels overlap.
    pub(super) fn layout_lanes(&mut self) {
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

    pub(super) fn draw_lanes<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
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
