//! Each run in the plot area: its sampled line (cut where the process was
//! last seen alive), the kernel's exact stage peaks over it, where a killed
//! run ended, and notes placed clear of every line.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::TimelineChart;
use crate::plot::glyphs::draw_text;
use crate::plot::style::{
    self, downsample_min_max, draw_line, draw_marker, font_at, simplify_polyline, text_extent,
    text_size, PixelBox, SeriesStyle, INK, LIMIT, MUTED,
};
use crate::report::{RunRecord, RunStatus, StageRecord};
use crate::units::format_bytes;

/// Bends in a timeline smaller than this many pixels are not drawn (see
/// [`simplify_polyline`]).
const LINE_TOLERANCE_PX: f64 = 0.7;

/// How much of a run's timeline shows the process alive, and where it ended.
pub(super) struct SeenAlive {
    /// Leading timeline samples to draw.
    pub(super) samples: usize,
    /// For a killed or failed run: when (seconds) and at what RSS it ended.
    pub(super) end: Option<(f64, u64)>,
}

/// Where a killed or failed run's picture ends.
///
/// A killed process's memory is torn down before its parent reaps it (for a
/// 15 GiB process that takes over a second), and the sampler reads RSS 0 all
/// the while: those trailing zero samples are the kernel freeing a dead
/// process, not the pipeline. The picture ends such a run, its cross and its
/// last stage at the first of them, where the process was last seen holding
/// memory; a run without them ends when its exit was seen.
pub(super) fn seen_alive(run: &RunRecord) -> SeenAlive {
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
pub(super) fn run_end(run: &RunRecord) -> f64 {
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
pub(super) fn run_top(run: &RunRecord) -> u64 {
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

impl TimelineChart<'_> {
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

    pub(super) fn draw_runs<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
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
}
