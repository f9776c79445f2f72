//! The shared look of every oomlab picture: palette, line patterns, units,
//! text and label placement.
//!
//! Charts are read on screens, in greyscale printouts and by colour-blind
//! readers, so a strategy is never told apart by hue alone: each has a colour
//! of its own lightness, a dash pattern and a marker shape. Every chart takes
//! its styles, units and text sizes from here so pictures agree with each other.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Font family every picture uses (the bundled DejaVu Sans is registered under it).
pub const FONT: &str = "sans-serif";

/// Text sizes in pixels (plotters' font size unit), so charts agree.
pub mod text_size {
    /// Picture titles.
    pub const TITLE: f64 = 26.0;
    /// Subtitles and legends.
    pub const LEGEND: f64 = 17.0;
    /// Axis tick labels and stage names.
    pub const LABEL: f64 = 16.0;
    /// Small annotations (values on bars, leader-line labels).
    pub const SMALL: f64 = 15.0;
}

/// Near-black used for text and axes.
pub const INK: RGBColor = RGBColor(30, 30, 30);
/// Mid grey for secondary text and leader lines.
pub const MUTED: RGBColor = RGBColor(105, 105, 105);
/// Light grey for grid lines.
pub const GRID: RGBColor = RGBColor(225, 225, 225);
/// Colour of budget and memory-limit lines.
pub const LIMIT: RGBColor = RGBColor(150, 20, 20);
/// Colour of the text saying a strategy used less memory.
pub const BETTER: RGBColor = RGBColor(20, 110, 40);
/// Colour of the text saying a strategy used more memory.
pub const WORSE: RGBColor = RGBColor(170, 30, 30);

/// How a line is drawn, so strategies differ without colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dash {
    /// Continuous line.
    Solid,
    /// Medium dashes.
    Dashed,
    /// Dots.
    Dotted,
    /// Long dashes.
    Long,
}

/// Marker shape for a strategy's stage peaks and legend entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerShape {
    /// Filled circle.
    Circle,
    /// Filled upward triangle.
    Triangle,
    /// Filled square.
    Square,
    /// Filled diamond.
    Diamond,
}

/// Everything that identifies one strategy in a picture.
#[derive(Debug, Clone, Copy)]
pub struct SeriesStyle {
    /// Line and fill colour; lightness differs between entries.
    pub color: RGBColor,
    /// Line pattern.
    pub dash: Dash,
    /// Marker shape.
    pub marker: MarkerShape,
    /// Line width in pixels.
    pub width: u32,
}

/// Palette ordered by lightness contrast: neighbours differ in greyscale too.
const PALETTE: [SeriesStyle; 6] = [
    SeriesStyle {
        color: RGBColor(178, 24, 43), // dark red, grey ~72
        dash: Dash::Solid,
        marker: MarkerShape::Circle,
        width: 3,
    },
    SeriesStyle {
        color: RGBColor(67, 147, 195), // mid blue, grey ~128
        dash: Dash::Dashed,
        marker: MarkerShape::Triangle,
        width: 3,
    },
    SeriesStyle {
        color: RGBColor(27, 120, 55), // dark green, grey ~84
        dash: Dash::Dotted,
        marker: MarkerShape::Square,
        width: 3,
    },
    SeriesStyle {
        color: RGBColor(230, 159, 0), // orange, grey ~162
        dash: Dash::Long,
        marker: MarkerShape::Diamond,
        width: 3,
    },
    SeriesStyle {
        color: RGBColor(84, 39, 136), // purple, grey ~64
        dash: Dash::Dashed,
        marker: MarkerShape::Square,
        width: 2,
    },
    SeriesStyle {
        color: RGBColor(120, 120, 120), // grey
        dash: Dash::Dotted,
        marker: MarkerShape::Diamond,
        width: 2,
    },
];

/// The style of the strategy at `index` in a report's runs.
///
/// Well-known strategies keep their style in every report (legacy is always
/// the solid dark line), so pictures of different reports read alike.
pub fn series_style(strategy: &str, index: usize) -> SeriesStyle {
    let slot = match strategy {
        "legacy" => 0,
        "optimized" => 1,
        "streaming" => 2,
        _ => 3 + index,
    };
    PALETTE[slot % PALETTE.len()]
}

/// A text style in the bundled font.
pub fn font(size: f64, color: &RGBColor) -> TextStyle<'static> {
    TextStyle {
        font: FontDesc::new(FontFamily::Name(FONT), size, FontStyle::Normal),
        color: color.to_backend_color(),
        pos: Pos::default(),
    }
}

/// Same as [`font`], anchored at `h`/`v` of the text box.
pub fn font_at(size: f64, color: &RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    font(size, color).pos(Pos::new(h, v))
}

/// How far outside the picture a computed coordinate may land, in pixels.
pub const PX_LIMIT: f64 = 1_000_000.0;

/// A pixel offset from a computed position: rounded, NaN as 0, and clamped to
/// ±[`PX_LIMIT`], so that adding a few offsets never overflows an `i32`
/// whatever a hand-edited or hostile report holds (such points are off the
/// picture anyway).
pub fn px(v: f64) -> i32 {
    if v.is_nan() {
        0
    } else {
        v.clamp(-PX_LIMIT, PX_LIMIT).round() as i32
    }
}

/// Width and height in pixels of `text` in the bundled font.
///
/// Measured from the font itself, not a backend, so a chart can lay itself out
/// (and pick its picture size) once and draw the same layout to PNG and SVG.
pub fn text_extent(text: &str, size: f64) -> (i32, i32) {
    FontDesc::new(FontFamily::Name(FONT), size, FontStyle::Normal)
        .box_size(text)
        .map(|(w, h)| (w as i32, h as i32))
        // Rough fallback; only reached when the font is missing, which the seam prevents.
        .unwrap_or((
            (text.chars().count() as f64 * size * 0.6) as i32,
            size as i32,
        ))
}

/// A unit to print bytes in along an axis: picked once per axis so every tick agrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ByteUnit {
    /// Bytes per unit.
    pub bytes: f64,
    /// Suffix (`MiB`).
    pub suffix: &'static str,
}

impl ByteUnit {
    /// The unit that shows `max_bytes` with a small number of digits.
    pub fn for_max(max_bytes: f64) -> Self {
        const K: f64 = 1024.0;
        let (bytes, suffix) = if max_bytes >= 1.5 * K * K * K * K {
            (K * K * K * K, "TiB")
        } else if max_bytes >= 1.5 * K * K * K {
            (K * K * K, "GiB")
        } else if max_bytes >= 1.5 * K * K {
            (K * K, "MiB")
        } else {
            (K, "KiB")
        };
        Self { bytes, suffix }
    }

    /// Bytes to a value in this unit.
    pub fn of(&self, bytes: u64) -> f64 {
        bytes as f64 / self.bytes
    }

    /// A tick label: `1.5 GiB`, `400 MiB`.
    pub fn tick(&self, value: f64) -> String {
        format!("{} {}", trim_number(value), self.suffix)
    }
}

/// Seconds for a time-axis tick: `0.25 s`, `12 s`.
pub fn seconds_tick(value: f64) -> String {
    format!("{} s", trim_number(value))
}

/// A number with at most three decimals and no trailing zeros (`1.5`, `400`).
pub fn trim_number(value: f64) -> String {
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.into()
    }
}

/// Draws `points` (backend pixels) as a line in `style`'s dash pattern.
pub fn draw_line<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    points: &[(i32, i32)],
    style: &SeriesStyle,
    width: u32,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let stroke = style.color.stroke_width(width);
    let pts = points.iter().copied();
    match style.dash {
        Dash::Solid => area.draw(&PathElement::new(pts.collect::<Vec<_>>(), stroke))?,
        Dash::Dashed => area.draw(&DashedPathElement::new(pts, 10, 6, stroke))?,
        Dash::Dotted => area.draw(&DashedPathElement::new(pts, 3, 5, stroke))?,
        Dash::Long => area.draw(&DashedPathElement::new(pts, 20, 6, stroke))?,
    }
    Ok(())
}

/// Draws a marker of `style`'s shape centred on `at` (backend pixels).
pub fn draw_marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    at: (i32, i32),
    radius: i32,
    style: &SeriesStyle,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let (x, y) = at;
    let r = radius;
    let fill = style.color.filled();
    let edge = WHITE.stroke_width(1);
    match style.marker {
        MarkerShape::Circle => {
            area.draw(&Circle::new(at, r, fill))?;
            area.draw(&Circle::new(at, r, edge))?;
        }
        MarkerShape::Square => {
            area.draw(&Rectangle::new([(x - r, y - r), (x + r, y + r)], fill))?;
            area.draw(&Rectangle::new([(x - r, y - r), (x + r, y + r)], edge))?;
        }
        MarkerShape::Triangle => {
            let pts = vec![(x, y - r - 1), (x - r - 1, y + r), (x + r + 1, y + r)];
            area.draw(&Polygon::new(pts.clone(), fill))?;
            let mut closed = pts;
            closed.push((x, y - r - 1));
            area.draw(&PathElement::new(closed, edge))?;
        }
        MarkerShape::Diamond => {
            let r = r + 1;
            let pts = vec![(x, y - r), (x + r, y), (x, y + r), (x - r, y)];
            area.draw(&Polygon::new(pts.clone(), fill))?;
            let mut closed = pts;
            closed.push((x, y - r));
            area.draw(&PathElement::new(closed, edge))?;
        }
    }
    Ok(())
}

/// Draws a legend sample (a short line in the pattern, with the marker) at `at`,
/// the left middle of the sample; returns its width.
pub fn draw_legend_sample<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    at: (i32, i32),
    style: &SeriesStyle,
) -> anyhow::Result<i32>
where
    DB::ErrorType: 'static,
{
    const W: i32 = 46;
    let (x, y) = at;
    draw_line(area, &[(x, y), (x + W, y)], style, style.width)?;
    draw_marker(area, (x + W / 2, y), 5, style)?;
    Ok(W)
}

/// Reduces a timeline to at most two points per bucket (its minimum and maximum,
/// in time order) over `buckets` equal slices of `[t0, t1]`.
///
/// Drawing 100,000 samples into 1,200 pixel columns draws the same picture as
/// drawing ~2,400 of them, provided every column keeps its extremes: peaks and
/// dips survive, the file stays small and drawing stays fast.
pub fn downsample_min_max(
    t_s: &[f64],
    values: &[u64],
    t0: f64,
    t1: f64,
    buckets: usize,
) -> Vec<(f64, u64)> {
    let n = t_s.len().min(values.len());
    if n <= buckets.saturating_mul(2) || buckets == 0 || t1 <= t0 {
        return t_s.iter().copied().zip(values.iter().copied()).collect();
    }
    let width = (t1 - t0) / buckets as f64;
    let bucket_of = |t: f64| (((t - t0) / width).floor().max(0.0) as usize).min(buckets - 1);
    let mut out = Vec::with_capacity(buckets * 2 + 2);
    let mut i = 0;
    while i < n {
        let b = bucket_of(t_s[i]);
        let (mut lo, mut hi) = (i, i);
        let mut j = i + 1;
        while j < n && bucket_of(t_s[j]) == b {
            if values[j] < values[lo] {
                lo = j;
            }
            if values[j] > values[hi] {
                hi = j;
            }
            j += 1;
        }
        // First and last samples of the bucket keep the line's ends where they were.
        let mut keep = [i, lo, hi, j - 1];
        keep.sort_unstable();
        let mut last = usize::MAX;
        for k in keep {
            if k != last {
                out.push((t_s[k], values[k]));
                last = k;
            }
        }
        i = j;
    }
    out
}

/// Drops the points of a pixel polyline that lie within `tolerance` pixels of
/// the straight line between the points kept around them (Ramer-Douglas-Peucker).
///
/// A timeline that creeps up a pixel every few samples is thousands of tiny
/// segments; plotters turns a wide line into a polygon with a rounded vertex
/// at every joint, so such a line comes out serrated. Dropping points nobody
/// can see keeps the line smooth (and the SVG small) while every bend bigger
/// than `tolerance`, peaks and dips included, stays where it was.
pub fn simplify_polyline(points: &[(i32, i32)], tolerance: f64) -> Vec<(i32, i32)> {
    let mut pts: Vec<(i32, i32)> = Vec::with_capacity(points.len());
    for &p in points {
        if pts.last() != Some(&p) {
            pts.push(p);
        }
    }
    if pts.len() <= 2 {
        return pts;
    }
    let mut keep = vec![false; pts.len()];
    keep[0] = true;
    keep[pts.len() - 1] = true;
    // An explicit stack: a 100,000-point line would overflow a recursive one.
    let mut stack = vec![(0, pts.len() - 1)];
    while let Some((a, b)) = stack.pop() {
        if b <= a + 1 {
            continue;
        }
        let (ax, ay) = (pts[a].0 as f64, pts[a].1 as f64);
        let (dx, dy) = (pts[b].0 as f64 - ax, pts[b].1 as f64 - ay);
        let len = (dx * dx + dy * dy).sqrt();
        let mut far = (0.0, a);
        for (i, p) in pts.iter().enumerate().take(b).skip(a + 1) {
            let (px, py) = (p.0 as f64 - ax, p.1 as f64 - ay);
            let d = if len == 0.0 {
                (px * px + py * py).sqrt()
            } else {
                (px * dy - py * dx).abs() / len
            };
            if d > far.0 {
                far = (d, i);
            }
        }
        if far.0 > tolerance {
            keep[far.1] = true;
            stack.push((a, far.1));
            stack.push((far.1, b));
        }
    }
    pts.into_iter()
        .zip(keep)
        .filter_map(|(p, k)| k.then_some(p))
        .collect()
}

/// Where a callout label went: its left edge and its row under the anchors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placed {
    /// Left edge, pixels.
    pub x: i32,
    /// Row index (0 = nearest the anchors).
    pub row: usize,
}

/// Places callout labels of widths `widths` for anchors at `centers` (pixels)
/// in rows under the anchors, so that no two labels in a row overlap (at
/// least `gap` apart) and no leader line crosses a label or another leader.
///
/// A leader runs straight down from its anchor through the rows above its
/// label, then along the gap above the label's row to the label's near end.
/// Labels end at their anchor (or slide left of it by up to `max_shift`), or
/// start there when no other anchor lies under them, so a label never covers
/// the anchor of a later stage: placed from the leftmost
/// anchor on, each goes into the highest row where it collides with nothing
/// placed before (checked both ways), and close stages read top to bottom in
/// time order. Returns one placement per label, in input order.
pub fn pack_callouts(
    centers: &[i32],
    widths: &[i32],
    left: i32,
    right: i32,
    gap: i32,
    max_shift: i32,
) -> Vec<Placed> {
    let mut order: Vec<usize> = (0..centers.len()).collect();
    order.sort_by_key(|&i| centers[i]);
    let mut layout = Callouts::default();
    let mut placed = vec![Placed { x: left, row: 0 }; centers.len()];
    for i in order {
        let (c, w) = (centers[i], widths[i]);
        // Ends a little left of the anchor, so stages at (nearly) the same time
        // stack under one another instead of touching each other's leaders.
        let anchored = (c - w - LEADER_PAD - 2).min(right - w).max(left);
        let mut chosen = None;
        for row in 0..=layout.rows {
            let mut xs = vec![anchored];
            for l in layout.labels.iter().filter(|l| l.row == row) {
                xs.push(l.x0 - gap - w);
            }
            for &(lc, _) in &layout.leaders {
                xs.push(lc - LEADER_PAD - 1 - w);
            }
            xs.retain(|&x| x <= anchored && x >= left && anchored - x <= max_shift);
            xs.sort_by_key(|&x| anchored - x);
            // Right of the anchor too, where no other anchor lies under the
            // label (so it cannot stand in a later leader's way).
            let after = c + LEADER_PAD + 2;
            let clear = centers
                .iter()
                .all(|&o| o == c || o < after - LEADER_PAD || o > after + w + LEADER_PAD);
            if clear && after + w <= right {
                xs.push(after);
            }
            if let Some(x) = xs.into_iter().find(|&x| layout.fits(c, x, w, row, gap)) {
                chosen = Some(Placed { x, row });
                break;
            }
        }
        // Below everything placed: only a label covering this anchor (one
        // squeezed against the left edge) can be in the way.
        let p = chosen.unwrap_or(Placed {
            x: anchored,
            row: layout.rows,
        });
        layout.add(c, p.x, w, p.row);
        placed[i] = p;
    }
    placed
}

/// The callouts placed so far, for collision checks.
#[derive(Default)]
struct Callouts {
    rows: usize,
    labels: Vec<CalloutLabel>,
    /// Leader verticals: anchor column and the row of its label.
    leaders: Vec<(i32, usize)>,
    /// Leader runs along the gap above a row: (row, from, to, anchor column).
    runs: Vec<(usize, i32, i32, i32)>,
}

struct CalloutLabel {
    row: usize,
    x0: i32,
    x1: i32,
}

/// Air kept around leader lines, pixels.
const LEADER_PAD: i32 = 4;

/// Where a leader meets its label: the label's nearer end (or the anchor,
/// when the label spans it). A label narrower than 4 pixels (an empty stage
/// name in a hand-edited report) is met at its left end.
pub fn callout_attach(anchor: i32, x: i32, width: i32) -> i32 {
    anchor.clamp(x + 2, (x + width - 2).max(x + 2))
}

impl Callouts {
    fn fits(&self, c: i32, x: i32, w: i32, row: usize, gap: i32) -> bool {
        let (x0, x1) = (x, x + w);
        let attach = callout_attach(c, x, w);
        let (ra, rb) = (c.min(attach), c.max(attach));
        let near = |col: i32, a: i32, b: i32| col >= a - LEADER_PAD && col <= b + LEADER_PAD;
        // Labels in the same row keep apart; labels above must miss our vertical.
        let labels_ok = self.labels.iter().all(|l| {
            if l.row == row {
                x1 + gap <= l.x0 || l.x1 + gap <= x0
            } else {
                !(l.row < row && near(c, l.x0, l.x1))
            }
        });
        // Older verticals must miss our label (if they pass our row) and our run
        // (if they reach our gap); our vertical must miss older runs above us.
        let leaders_ok = self.leaders.iter().all(|&(lc, lr)| {
            !(lr > row && near(lc, x0, x1)) && (lc == c || !(lr >= row && near(lc, ra, rb)))
        });
        // Leaders from the same anchor share their vertical.
        let runs_ok = self.runs.iter().all(|&(rr, a, b, rc)| {
            if rr == row {
                rb + LEADER_PAD < a || b + LEADER_PAD < ra
            } else {
                rc == c || !(rr < row && near(c, a, b))
            }
        });
        labels_ok && leaders_ok && runs_ok
    }

    fn add(&mut self, c: i32, x: i32, w: i32, row: usize) {
        let attach = callout_attach(c, x, w);
        self.labels.push(CalloutLabel {
            row,
            x0: x,
            x1: x + w,
        });
        self.leaders.push((c, row));
        self.runs.push((row, c.min(attach), c.max(attach), c));
        self.rows = self.rows.max(row + 1);
    }
}

/// An axis-aligned box in pixels, for keeping annotations apart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PixelBox {
    /// Left, top.
    pub x0: i32,
    /// Top.
    pub y0: i32,
    /// Right.
    pub x1: i32,
    /// Bottom.
    pub y1: i32,
}

impl PixelBox {
    /// Whether two boxes share any pixel (with `pad` pixels of air around).
    pub fn overlaps(&self, other: &PixelBox, pad: i32) -> bool {
        self.x0 - pad < other.x1
            && other.x0 - pad < self.x1
            && self.y0 - pad < other.y1
            && other.y0 - pad < self.y1
    }

    /// Whether any segment of the pixel polyline `points` passes through the box.
    ///
    /// Annotations test themselves against the drawn lines with this, so a
    /// note never sits on (and, with its white backing, never cuts) a line.
    pub fn hits_polyline(&self, points: &[(i32, i32)]) -> bool {
        match points {
            [] => false,
            [p] => self.contains(*p),
            _ => points.windows(2).any(|w| self.hits_segment(w[0], w[1])),
        }
    }

    fn contains(&self, (x, y): (i32, i32)) -> bool {
        x >= self.x0 && x <= self.x1 && y >= self.y0 && y <= self.y1
    }

    /// Liang-Barsky clipping of the segment `a`-`b` against the box.
    fn hits_segment(&self, a: (i32, i32), b: (i32, i32)) -> bool {
        if a.0.max(b.0) < self.x0
            || a.0.min(b.0) > self.x1
            || a.1.max(b.1) < self.y0
            || a.1.min(b.1) > self.y1
        {
            return false;
        }
        let (x0, y0) = (a.0 as f64, a.1 as f64);
        let (dx, dy) = ((b.0 - a.0) as f64, (b.1 - a.1) as f64);
        let (mut lo, mut hi) = (0.0f64, 1.0f64);
        for (p, q) in [
            (-dx, x0 - self.x0 as f64),
            (dx, self.x1 as f64 - x0),
            (-dy, y0 - self.y0 as f64),
            (dy, self.y1 as f64 - y0),
        ] {
            if p == 0.0 {
                if q < 0.0 {
                    return false;
                }
            } else {
                let r = q / p;
                if p < 0.0 {
                    lo = lo.max(r);
                } else {
                    hi = hi.min(r);
                }
            }
        }
        lo <= hi
    }

    /// Whether `self` lies inside `outer`.
    pub fn inside(&self, outer: &PixelBox) -> bool {
        self.x0 >= outer.x0 && self.x1 <= outer.x1 && self.y0 >= outer.y0 && self.y1 <= outer.y1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsampling_keeps_extremes_and_ends() {
        let t: Vec<f64> = (0..100_000).map(|i| i as f64 * 1e-3).collect();
        let mut v: Vec<u64> = (0..100_000).map(|i| 1000 + (i % 7) as u64).collect();
        v[54_321] = 9_999_999;
        v[77_777] = 1;
        let d = downsample_min_max(&t, &v, 0.0, 100.0, 1000);
        assert!(d.len() <= 4000, "{}", d.len());
        assert!(d.iter().any(|p| p.1 == 9_999_999));
        assert!(d.iter().any(|p| p.1 == 1));
        assert_eq!(d.first().map(|p| p.0), Some(0.0));
        assert_eq!(d.last().map(|p| p.0), t.last().copied());
        assert!(d.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn simplifying_keeps_bends_and_drops_creep() {
        // A staircase creeping up one pixel every 3 columns, then a spike.
        let mut pts: Vec<(i32, i32)> = (0..300).map(|x| (x, 500 - x / 3)).collect();
        pts.push((300, 100));
        pts.push((301, 400));
        let s = simplify_polyline(&pts, 1.0);
        assert!(s.len() < 20, "{}", s.len());
        assert_eq!(s.first(), Some(&(0, 500)));
        assert_eq!(s.last(), Some(&(301, 400)));
        assert!(s.contains(&(300, 100)), "the spike survives: {s:?}");
        // Every point, kept or not, is within the tolerance of the kept line.
        let dist = |p: (i32, i32), a: (i32, i32), b: (i32, i32)| {
            let (dx, dy) = ((b.0 - a.0) as f64, (b.1 - a.1) as f64);
            let (px, py) = ((p.0 - a.0) as f64, (p.1 - a.1) as f64);
            let len2 = dx * dx + dy * dy;
            let u = if len2 == 0.0 {
                0.0
            } else {
                ((px * dx + py * dy) / len2).clamp(0.0, 1.0)
            };
            ((px - u * dx).powi(2) + (py - u * dy).powi(2)).sqrt()
        };
        for &p in &pts {
            let d = s
                .windows(2)
                .map(|w| dist(p, w[0], w[1]))
                .fold(f64::MAX, f64::min);
            assert!(d <= 1.0 + 1e-9, "{p:?} is {d} px off the simplified line");
        }
        assert_eq!(simplify_polyline(&[(1, 1), (1, 1)], 1.0), vec![(1, 1)]);
    }

    #[test]
    fn boxes_know_which_lines_cross_them() {
        let b = PixelBox {
            x0: 10,
            y0: 10,
            x1: 20,
            y1: 20,
        };
        assert!(b.hits_polyline(&[(0, 0), (30, 30)]), "diagonal through");
        assert!(b.hits_polyline(&[(15, 0), (15, 30)]), "vertical through");
        assert!(b.hits_polyline(&[(12, 12), (13, 13)]), "inside");
        assert!(!b.hits_polyline(&[(0, 25), (30, 25)]), "passes below");
        assert!(
            !b.hits_polyline(&[(0, 9), (9, 0)]),
            "cuts the corner's outside"
        );
        assert!(!b.hits_polyline(&[]));
    }

    #[test]
    fn short_timelines_are_kept_whole() {
        let d = downsample_min_max(&[0.0, 1.0], &[5, 6], 0.0, 1.0, 100);
        assert_eq!(d, vec![(0.0, 5), (1.0, 6)]);
    }

    #[test]
    fn packed_labels_never_overlap_nor_cover_leaders() {
        // Anchors with room to their left, as stage anchors under a plot have.
        let centers = [100, 102, 104, 300, 305, 600, 310, 312, 640];
        let widths = [80, 80, 80, 120, 40, 50, 150, 90, 60];
        let p = pack_callouts(&centers, &widths, 0, 700, 8, 60);
        for a in 0..centers.len() {
            for b in a + 1..centers.len() {
                if p[a].row == p[b].row {
                    let (l, r) = if p[a].x < p[b].x { (a, b) } else { (b, a) };
                    assert!(p[l].x + widths[l] + 8 <= p[r].x, "{a} {b} {p:?}");
                }
            }
            assert!(p[a].x >= 0 && p[a].x + widths[a] <= 700);
            // No label sits on a leader: not in the rows above a's label
            // (where a's leader runs down), nor in a's own row.
            for b in 0..centers.len() {
                if b != a && p[b].row <= p[a].row {
                    let c = centers[a];
                    assert!(c < p[b].x || c > p[b].x + widths[b], "{a} {b} {p:?}");
                }
            }
        }
    }

    #[test]
    fn ticks_read_as_people_write() {
        let mib = ByteUnit::for_max(900.0 * 1024.0 * 1024.0);
        assert_eq!(mib.suffix, "MiB");
        assert_eq!(mib.tick(400.0), "400 MiB");
        assert_eq!(
            ByteUnit::for_max(3.0 * (1u64 << 30) as f64).tick(1.5),
            "1.5 GiB"
        );
        assert_eq!(seconds_tick(0.25), "0.25 s");
        assert_eq!(trim_number(-0.0001), "0");
    }
}
