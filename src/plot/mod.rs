//! Pictures of a report, drawn with plotters to PNG and SVG.
//!
//! People read memory behaviour from a picture before a table. Every report
//! directory gets its pictures from [`draw_report`], and `oomlab plot` re-draws
//! them from a saved `report.json` alone, so a report from another machine
//! draws the same.
//!
//! # Adding a chart
//! One file per chart kind under `src/plot/`. A chart is a value implementing
//! [`Chart`]: it borrows what it draws (a [`Report`], or anything else, such as a
//! sweep or a postmortem), lays itself out once, says its size, and draws onto
//! any plotters backend. [`render`] writes it as `<name>.png` and `<name>.svg`
//! atomically. Charts drawn for every report are listed in `REPORT_CHARTS`;
//! commands with their own inputs (a sweep, a postmortem) call [`render`]
//! directly with their own chart value.

pub mod fits;
pub mod glyphs;
pub mod headroom;
pub mod peaks;
pub mod postmortem;
pub mod style;
pub mod sweep;
pub mod timeline;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::report::{self, Report};

/// The bundled font: pictures must not depend on the fonts a machine has.
static FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Registers the bundled font with plotters once per process.
///
/// plotters' `ab_glyph` text backend only knows fonts registered by name; every
/// chart uses [`style::FONT`], so this must run before any text is measured.
pub fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(style::FONT, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(anyhow!(
            "the bundled font assets/DejaVuSans.ttf could not be loaded"
        ))
    }
}

/// What the reader asks a picture to show beyond the report itself.
#[derive(Debug, Clone, Default)]
pub struct PlotOptions {
    /// A memory budget to draw as a horizontal line (`oomlab plot --budget`).
    pub budget_bytes: Option<u64>,
    /// A memory limit the children ran under, drawn as its own line.
    ///
    /// Filled in by whoever knows it (a command with `--memory-limit`, or a
    /// report that records one), so the limit a run was killed at is visible.
    pub limit_bytes: Option<u64>,
}

impl PlotOptions {
    /// What the report itself says should be drawn (the memory limit its
    /// children ran under, the lowest when they differ); flags are layered on
    /// top of it.
    pub fn for_report(report: &Report) -> Self {
        Self {
            budget_bytes: None,
            limit_bytes: report
                .runs
                .iter()
                .filter_map(|r| r.memory_limit.as_ref().map(|l| l.limit_bytes))
                .min(),
        }
    }

    /// The horizontal reference lines to draw, labelled, largest first.
    pub fn reference_lines(&self) -> Vec<(String, u64)> {
        let mut lines = Vec::new();
        if let Some(limit) = self.limit_bytes {
            lines.push(("memory limit".to_string(), limit));
        }
        if let Some(budget) = self.budget_bytes {
            lines.push(("budget".to_string(), budget));
        }
        lines.sort_by_key(|l| std::cmp::Reverse(l.1));
        lines
    }
}

/// Largest picture drawn, in pixels. The PNG is held in memory at 3 bytes a
/// pixel (40 Mpx: 120 MB); a report with tens of thousands of stages (a
/// chatty recorded command) would otherwise ask for gigabytes, and oomlab
/// must never be the cause of an OOM.
pub const MAX_PIXELS: u64 = 40_000_000;

/// A picture that can be drawn on any plotters backend.
///
/// Implementations lay themselves out when built (text is measured from the
/// bundled font, not from a backend), so the PNG and the SVG of a chart are
/// the same picture.
pub trait Chart {
    /// File stem of the picture: `timeline` gives `timeline.png` and `timeline.svg`.
    fn name(&self) -> &'static str;

    /// Picture size in pixels (width, height).
    fn size(&self) -> (u32, u32);

    /// Draws the whole picture onto `root`, which is `size()` large.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static;
}

/// Writes `chart` as `<dir>/<name>.png` and `<dir>/<name>.svg`, each atomically
/// (a temporary name, then a rename), and returns both paths.
pub fn render(chart: &impl Chart, dir: &Path) -> Result<Vec<PathBuf>> {
    ensure_font()?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = chart.name();
    let size = chart.size();
    let pixels = size.0 as u64 * size.1 as u64;
    if pixels > MAX_PIXELS {
        return Err(crate::error::bad_input(format!(
            "{name}: a {} x {} pixel picture is too large to draw (more than {MAX_PIXELS} pixels): the report holds too many runs or stages for one picture",
            size.0, size.1
        )));
    }

    let png = dir.join(format!("{name}.png"));
    // The image encoder picks the format from the extension: keep `.png` last.
    let tmp_png = dir.join(format!(".{name}.tmp-{}.png", std::process::id()));
    let drawn = (|| -> Result<()> {
        let _even_spacing = glyphs::BitmapText::on();
        let root = BitMapBackend::new(&tmp_png, size).into_drawing_area();
        chart
            .draw(&root)
            .with_context(|| format!("drawing {}", png.display()))?;
        root.present()
            .with_context(|| format!("writing {}", tmp_png.display()))?;
        Ok(())
    })()
    .and_then(|_| {
        std::fs::rename(&tmp_png, &png)
            .with_context(|| format!("renaming {} to {}", tmp_png.display(), png.display()))
    });
    if drawn.is_err() {
        // Never leave a half-drawn temporary behind.
        let _ = std::fs::remove_file(&tmp_png);
    }
    drawn?;

    let svg = dir.join(format!("{name}.svg"));
    let text = render_svg(chart).with_context(|| format!("drawing {}", svg.display()))?;
    report::write_atomically(&svg, text.as_bytes())?;
    Ok(vec![png, svg])
}

/// Draws `chart` as SVG text, in memory (what [`render`] writes as `<name>.svg`).
pub fn render_svg(chart: &impl Chart) -> Result<String> {
    ensure_font()?;
    let (w, h) = chart.size();
    if w as u64 * h as u64 > MAX_PIXELS {
        return Err(crate::error::bad_input(format!(
            "{}: a {w} x {h} pixel picture is too large to draw (more than {MAX_PIXELS} pixels)",
            chart.name()
        )));
    }
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, chart.size()).into_drawing_area();
        chart.draw(&root)?;
        root.present()?;
    }
    Ok(text)
}

/// A picture drawn for every report: how to tell it applies and how to draw it.
struct ReportChart {
    name: &'static str,
    applies: fn(&Report) -> bool,
    draw: fn(&Report, &PlotOptions, &Path) -> Result<Vec<PathBuf>>,
}

fn draw_timeline(report: &Report, opts: &PlotOptions, dir: &Path) -> Result<Vec<PathBuf>> {
    render(&timeline::TimelineChart::new(report, opts), dir)
}

fn draw_peaks(report: &Report, opts: &PlotOptions, dir: &Path) -> Result<Vec<PathBuf>> {
    render(&peaks::PeaksChart::new(report, opts), dir)
}

/// Every picture drawn for a report, in the order `summary.md` shows them.
/// A new per-report chart is one more entry here.
const REPORT_CHARTS: &[ReportChart] = &[
    ReportChart {
        name: timeline::NAME,
        applies: timeline::TimelineChart::applies,
        draw: draw_timeline,
    },
    ReportChart {
        name: peaks::NAME,
        applies: peaks::PeaksChart::applies,
        draw: draw_peaks,
    },
];

/// Most stages (all runs together) a report's pictures show. Placing the
/// stage labels grows faster than the square of their number (2,000 stages
/// take about 50 s, 500 about 2 s) and the peaks picture grows a row per
/// stage: a recorded command that logs thousands of INFO lines must not keep
/// oomlab busy for hours after its run.
pub const MAX_STAGES_DRAWN: usize = 500;

/// Refuses (bad input) a report with more stages than [`MAX_STAGES_DRAWN`].
fn check_drawable(report: &Report) -> Result<()> {
    let stages: usize = report.runs.iter().map(|r| r.stages.len()).sum();
    if stages > MAX_STAGES_DRAWN {
        return Err(crate::error::bad_input(format!(
            "{stages} stages are too many to draw (at most {MAX_STAGES_DRAWN}): the figures are in report.json and summary.md"
        )));
    }
    Ok(())
}

/// The pictures [`draw_report`] draws for `report`, by name.
///
/// A chart with nothing to show (no runs, no stages) is left out, and so is
/// every chart of a report too large to draw, so a summary never links a
/// picture that was not drawn.
pub fn report_charts(report: &Report) -> Vec<&'static str> {
    if check_drawable(report).is_err() {
        return Vec::new();
    }
    REPORT_CHARTS
        .iter()
        .filter(|c| (c.applies)(report))
        .map(|c| c.name)
        .collect()
}

/// Draws every picture of `report` into `dir`; returns the files written.
pub fn draw_report(report: &Report, dir: &Path, opts: &PlotOptions) -> Result<Vec<PathBuf>> {
    ensure_font()?;
    check_drawable(report)?;
    let mut files = Vec::new();
    for chart in REPORT_CHARTS.iter().filter(|c| (c.applies)(report)) {
        files.extend((chart.draw)(report, opts, dir)?);
    }
    Ok(files)
}
