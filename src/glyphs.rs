//! Text for the PNG pictures, drawn with the glyphs where the font puts them. plotters 0.3.7's
//! `ab_glyph` text ignores each glyph's left side bearing and truncates every glyph's offset to a
//! whole pixel on its own, so letters sit unevenly ("wei ghts") and, at odd sizes, a decimal
//! point lands a pixel above the digits' baseline ("0·02"). [`Glyphs`] wraps a backend and lays
//! text out itself: one pen in fractional pixels, kerning, each outline rasterised at its exact
//! position by ab_glyph, and one baseline for the whole line.

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use plotters::prelude::DrawingBackend;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};

/// A backend whose text is laid out by [`layout`]; everything else is the inner backend's.
pub struct Glyphs<B> {
    inner: B,
    font: FontRef<'static>,
}

impl<B: DrawingBackend> Glyphs<B> {
    /// `font`: the bytes of the one font every picture uses.
    pub fn new(inner: B, font: &'static [u8]) -> Option<Self> {
        Some(Glyphs {
            inner,
            font: FontRef::try_from_slice(font).ok()?,
        })
    }
}

/// A pixel of laid-out text: x, y and the glyph's coverage there (0 to 1).
pub type Ink = (i32, i32, f32);

/// The pixels of `text` at `size` (plotters' size: the font's height in pixels), with coverage,
/// relative to the top left of its box; and the box's width and height (ascent to descent).
pub fn layout(font: &FontRef<'_>, size: f64, text: &str) -> (Vec<Ink>, (i32, i32)) {
    let scaled = font.as_scaled(PxScale::from(size as f32));
    let baseline = scaled.ascent();
    let height = (scaled.ascent() - scaled.descent()).ceil() as i32;
    let mut pen = 0f32;
    let mut prev = None;
    let mut pixels = Vec::new();
    // A character the font lacks (CJK labels, with DejaVu Sans) is written as its code point
    // rather than as an empty box.
    let shown: String = text
        .chars()
        .map(|c| match font.glyph_id(c).0 {
            0 if !c.is_whitespace() => format!("U+{:04X}", c as u32),
            _ => c.to_string(),
        })
        .collect();
    for c in shown.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = prev {
            pen += scaled.kern(p, id);
        }
        prev = Some(id);
        let glyph =
            id.with_scale_and_position(PxScale::from(size as f32), ab_glyph::point(pen, baseline));
        if let Some(outline) = font.outline_glyph(glyph) {
            let b = outline.px_bounds();
            let (x0, y0) = (b.min.x as i32, b.min.y as i32);
            outline.draw(|x, y, c| pixels.push((x0 + x as i32, y0 + y as i32, c)));
        }
        pen += scaled.h_advance(id);
    }
    (pixels, (pen.ceil() as i32, height))
}

impl<B: DrawingBackend> DrawingBackend for Glyphs<B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<T: BackendTextStyle>(
        &self,
        text: &str,
        style: &T,
    ) -> Result<(u32, u32), DrawingErrorKind<B::ErrorType>> {
        let (_, (w, h)) = layout(&self.font, style.size(), text);
        Ok((w.max(0) as u32, h.max(0) as u32))
    }

    fn draw_text<T: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &T,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<B::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let (pixels, (w, h)) = layout(&self.font, style.size(), text);
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => -w,
            HPos::Center => -w / 2,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -h / 2,
            VPos::Bottom => -h,
        };
        let trans = style.transform();
        let (width, height) = self.get_size();
        for (x, y, c) in pixels {
            let (x, y) = trans.transform(x + dx, y + dy);
            let (x, y) = (pos.0 + x, pos.1 + y);
            if x >= 0 && y >= 0 && x < width as i32 && y < height as i32 && c > 0.0 {
                let alpha = color.alpha * f64::from(c.min(1.0));
                self.inner.draw_pixel(
                    (x, y),
                    BackendColor {
                        alpha,
                        rgb: color.rgb,
                    },
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

    /// The lowest row holding at least a third of the ink of the glyph's fullest row, among
    /// the columns `x` (subpixel positions spread a narrow glyph's ink over two columns).
    fn bottom(pixels: &[(i32, i32, f32)], x: std::ops::Range<i32>) -> i32 {
        let mut rows = std::collections::BTreeMap::<i32, f32>::new();
        for p in pixels.iter().filter(|p| x.contains(&p.0)) {
            *rows.entry(p.1).or_default() += p.2;
        }
        let full = rows.values().copied().fold(0.0, f32::max);
        *rows
            .iter()
            .rev()
            .find(|(_, &ink)| ink >= full / 3.0)
            .unwrap()
            .0
    }

    /// Columns of `pixels` with ink.
    fn inked(pixels: &[(i32, i32, f32)]) -> Vec<i32> {
        let mut c: Vec<i32> = pixels.iter().filter(|p| p.2 > 0.3).map(|p| p.0).collect();
        c.sort_unstable();
        c.dedup();
        c
    }

    #[test]
    fn a_decimal_point_sits_on_the_baseline_at_every_size() {
        // '1' and '.' both stand flat on the baseline in DejaVu Sans.
        let font = FontRef::try_from_slice(FONT).unwrap();
        for size in 11..=24 {
            let (px, _) = layout(&font, size as f64, "1.1");
            let scaled = font.as_scaled(PxScale::from(size as f32));
            let one = scaled.h_advance(scaled.glyph_id('1'));
            let dot = scaled.h_advance(scaled.glyph_id('.'));
            let first = bottom(&px, 0..one.floor() as i32);
            let point = bottom(&px, one.floor() as i32..(one + dot).ceil() as i32);
            assert_eq!(
                first, point,
                "size {size}: the point is not on the baseline"
            );
        }
    }

    #[test]
    fn a_glyph_starts_at_its_side_bearing() {
        // 'i' has a side bearing of about a tenth of an em and 'w' almost none: in "wi" their
        // ink is apart (plotters' own text drew each glyph at the pen: "wi" touched, and
        // "weights" read "wei ghts").
        let font = FontRef::try_from_slice(FONT).unwrap();
        for size in [12.0, 13.0, 14.0, 17.0, 24.0] {
            let (px, _) = layout(&font, size, "wi");
            let cols = inked(&px);
            let gap = cols.windows(2).map(|c| c[1] - c[0] - 1).max().unwrap();
            assert!(gap >= 1, "size {size}: 'w' and 'i' touch");
            let (alone, _) = layout(&font, size, "i");
            assert!(inked(&alone)[0] >= 1, "size {size}: 'i' drawn at the pen");
        }
    }
}
