//! Even letter spacing in bitmap pictures.
//!
//! plotters 0.3.7 rasterizes `ab_glyph` text glyph by glyph but places each
//! glyph's outline at its advance origin, dropping the glyph's left side
//! bearing: narrow glyphs (`i`, `l`, `t`) sit too far left and words read
//! as "op timized". The SVG backend is not affected (the viewer lays text
//! out). For bitmaps, [`draw_text`] draws one glyph at a time at the position
//! the font asks for; the bearings come from the bundled font through
//! `ab_glyph`, the font crate plotters itself draws with.

use std::cell::Cell;
use std::sync::OnceLock;

use ab_glyph::{Font, FontRef};

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

/// The bundled font, as `ab_glyph` reads it, and its scale in plotters' text.
struct Bearings {
    font: FontRef<'static>,
    /// Pixels per font unit at size 1.0, as plotters' ab_glyph text scales
    /// them (by the font's height, not its em size).
    px_per_unit_per_size: f64,
}

impl Bearings {
    fn new() -> Option<Self> {
        let font = FontRef::try_from_slice(super::FONT_BYTES).ok()?;
        // Calibrate the scale against plotters' own advances (it scales by the
        // font's height, and measures in whole pixels): ten em-wide glyphs at
        // size 1000.
        let advance = f64::from(font.h_advance_unscaled(font.glyph_id('M')));
        let (w, _) = FontDesc::new(
            FontFamily::Name(super::style::FONT),
            1000.0,
            FontStyle::Normal,
        )
        .box_size("MMMMMMMMMM")
        .ok()?;
        let px_per_unit_per_size = w as f64 / (10.0 * advance * 1000.0);
        (advance > 0.0 && w > 0).then_some(Self {
            font,
            px_per_unit_per_size,
        })
    }

    /// Left side bearing of `c` in whole pixels (floored) at font size
    /// `size`; 0 for a character the font lacks.
    fn bearing_px(&self, c: char, size: f64) -> i32 {
        let id = self.font.glyph_id(c);
        if id.0 == 0 {
            return 0;
        }
        let lsb = f64::from(self.font.h_side_bearing_unscaled(id));
        (lsb * self.px_per_unit_per_size * size).floor() as i32
    }
}

fn bearings() -> Option<&'static Bearings> {
    static B: OnceLock<Option<Bearings>> = OnceLock::new();
    B.get_or_init(Bearings::new).as_ref()
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
    let size = style.font.get_size();
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            continue;
        }
        let bearing = b.bearing_px(c, size);
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
        assert!(b.font.glyph_id('a').0 != 0 && b.font.glyph_id('_').0 != 0);
        // `i` has a clear left bearing, `j` a small one; both positive.
        assert!(b.font.h_side_bearing_unscaled(b.font.glyph_id('i')) > 100.0);
        assert!(b.px_per_unit_per_size > 0.0 && b.px_per_unit_per_size < 0.01);
        assert_eq!(b.bearing_px('i', 26.0), 2);
        assert_eq!(b.bearing_px('\u{10FFFF}', 16.0), 0);
    }
}
