//! Even letter spacing in bitmap pictures.
//!
//! plotters 0.3.7 rasterizes `ab_glyph` text glyph by glyph but places each
//! glyph's outline at its advance origin, dropping the glyph's left side
//! bearing: narrow glyphs (`i`, `l`, `t`) sit too far left and words read
//! as "op timized". The SVG backend is not affected (the viewer lays text
//! out). For bitmaps, [`draw_text`] draws one glyph at a time at the position
//! the font asks for; the bearings come from the bundled font's own tables
//! (`cmap` and `hmtx`), read here so no font crate is needed beyond plotters.

use std::cell::Cell;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos};

thread_local! {
    static GLYPH_BY_GLYPH: Cell<bool> = const { Cell::new(false) };
}

/// Switches glyph-by-glyph text on for this thread while the guard lives.
///
/// `render` holds one while it draws a bitmap, so charts stay backend-agnostic.
pub struct BitmapText {
    previous: bool,
}

impl BitmapText {
    /// Turns glyph-by-glyph text on until the guard is dropped.
    pub fn on() -> Self {
        let previous = GLYPH_BY_GLYPH.with(|g| g.replace(true));
        Self { previous }
    }
}

impl Drop for BitmapText {
    fn drop(&mut self) {
        GLYPH_BY_GLYPH.with(|g| g.set(self.previous));
    }
}

/// The few tables of a TrueType font needed for left side bearings.
struct Bearings {
    font: &'static [u8],
    /// Offset of the (3,1) format-4 `cmap` subtable.
    cmap4: usize,
    hmtx: usize,
    metrics: usize,
    /// Pixels per font unit at size 1.0, as plotters' ab_glyph scales them.
    px_per_unit_per_size: f64,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn i16_at(b: &[u8], at: usize) -> Option<i16> {
    u16_at(b, at).map(|v| v as i16)
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

impl Bearings {
    fn parse(font: &'static [u8]) -> Option<Self> {
        let tables = u16_at(font, 4)? as usize;
        let table = |tag: &[u8; 4]| {
            (0..tables).find_map(|i| {
                let rec = 12 + 16 * i;
                (font.get(rec..rec + 4)? == tag)
                    .then(|| u32_at(font, rec + 8).map(|o| o as usize))?
            })
        };
        let cmap = table(b"cmap")?;
        let hmtx = table(b"hmtx")?;
        let hhea = table(b"hhea")?;
        let metrics = u16_at(font, hhea + 34)? as usize;
        let subtables = u16_at(font, cmap + 2)? as usize;
        let cmap4 = (0..subtables).find_map(|i| {
            let rec = cmap + 4 + 8 * i;
            let (platform, encoding) = (u16_at(font, rec)?, u16_at(font, rec + 2)?);
            let at = cmap + u32_at(font, rec + 4)? as usize;
            (platform == 3 && encoding == 1 && u16_at(font, at)? == 4).then_some(at)
        })?;
        let mut me = Self {
            font,
            cmap4,
            hmtx,
            metrics,
            px_per_unit_per_size: 0.0,
        };
        // Calibrate the scale against plotters' own advances (it scales by the
        // font's height, not its em size): ten em-wide glyphs at size 1000.
        let m = me.glyph('M')?;
        let advance = u16_at(font, hmtx + 4 * m.min(metrics.saturating_sub(1)))? as f64;
        let (w, _) = FontDesc::new(
            FontFamily::Name(super::style::FONT),
            1000.0,
            FontStyle::Normal,
        )
        .box_size("MMMMMMMMMM")
        .ok()?;
        me.px_per_unit_per_size = w as f64 / (10.0 * advance * 1000.0);
        (advance > 0.0 && w > 0).then_some(me)
    }

    /// The glyph id of `c` (format-4 cmap: the Basic Multilingual Plane).
    fn glyph(&self, c: char) -> Option<usize> {
        let code = u16::try_from(c as u32).ok()?;
        let b = self.font;
        let t = self.cmap4;
        let segs = u16_at(b, t + 6)? as usize / 2;
        let ends = t + 14;
        let starts = ends + 2 * segs + 2;
        let deltas = starts + 2 * segs;
        let ranges = deltas + 2 * segs;
        let seg = (0..segs).find(|&i| u16_at(b, ends + 2 * i).is_some_and(|e| e >= code))?;
        let start = u16_at(b, starts + 2 * seg)?;
        if start > code {
            return None;
        }
        let delta = u16_at(b, deltas + 2 * seg)?;
        let range_at = ranges + 2 * seg;
        let range = u16_at(b, range_at)? as usize;
        let gid = if range == 0 {
            code.wrapping_add(delta)
        } else {
            let g = u16_at(b, range_at + range + 2 * (code - start) as usize)?;
            if g == 0 {
                return None;
            }
            g.wrapping_add(delta)
        };
        (gid != 0).then_some(gid as usize)
    }

    /// Left side bearing of `c` in font units.
    fn lsb(&self, c: char) -> Option<i16> {
        let gid = self.glyph(c)?;
        if gid < self.metrics {
            i16_at(self.font, self.hmtx + 4 * gid + 2)
        } else {
            i16_at(
                self.font,
                self.hmtx + 4 * self.metrics + 2 * (gid - self.metrics),
            )
        }
    }
}

fn bearings() -> Option<&'static Bearings> {
    static B: OnceLock<Option<Bearings>> = OnceLock::new();
    B.get_or_init(|| Bearings::parse(super::FONT_BYTES))
        .as_ref()
}

/// Draws `text` in `style` at `pos`: as one text element normally, glyph by
/// glyph at the font's own positions while a [`BitmapText`] guard is alive.
pub fn draw_text<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    text: &str,
    style: &TextStyle,
    pos: (i32, i32),
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let per_glyph = GLYPH_BY_GLYPH.with(|g| g.get());
    let Some(b) = bearings().filter(|_| per_glyph) else {
        root.draw_text(text, style, pos)?;
        return Ok(());
    };
    let width = |s: &str| style.font.box_size(s).map(|(w, _)| w as i32).unwrap_or(0);
    let total = width(text);
    let x0 = match style.pos.h_pos {
        HPos::Left => pos.0,
        HPos::Center => pos.0 - total / 2,
        HPos::Right => pos.0 - total,
    };
    let glyph_style = TextStyle {
        pos: Pos::new(HPos::Left, style.pos.v_pos),
        ..style.clone()
    };
    let scale = b.px_per_unit_per_size * style.font.get_size();
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            continue;
        }
        let bearing = b.lsb(c).map_or(0, |l| (l as f64 * scale).floor() as i32);
        let x = x0 + width(&text[..i]) + bearing;
        let mut buf = [0u8; 4];
        root.draw_text(c.encode_utf8(&mut buf), &glyph_style, (x, pos.1))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_bundled_fonts_bearings() {
        crate::plot::ensure_font().unwrap();
        let b = bearings().expect("font tables");
        assert!(b.glyph('a').is_some() && b.glyph('_').is_some());
        // `i` has a clear left bearing, `j` a small one; both positive.
        assert!(b.lsb('i').unwrap() > 100);
        assert!(b.px_per_unit_per_size > 0.0 && b.px_per_unit_per_size < 0.01);
    }
}
