//! The embedded fonts and the character → glyph choice.
//!
//! Four TrueType faces are compiled into the binary (`fonts/` at the
//! repository root, with their licences): DejaVu Sans, DejaVu Sans Bold and
//! DejaVu Sans Mono cover Latin (with accents), Greek and Cyrillic; Droid Sans
//! Fallback covers CJK. Each character is drawn with its style's face when
//! that face has a glyph for it, otherwise with the fallback face; a
//! character neither has becomes U+FFFD (�), so an unrenderable name is
//! visibly marked rather than silently dropped. The PDF embeds only the
//! glyphs used (subsetting happens in `pdf.rs`).

use super::layout::Font;
use std::sync::OnceLock;
use ttf_parser::{Face as TtfFace, GlyphId};

/// Index of a face in [`faces`].
pub type FaceId = usize;

/// A parsed face and its raw bytes.
pub struct Face {
    /// The TrueType file.
    pub data: &'static [u8],
    /// PostScript name used as the PDF BaseFont (after the subset tag).
    pub ps_name: &'static str,
    /// Parsed tables.
    pub ttf: TtfFace<'static>,
}

const SOURCES: [(&[u8], &str); 4] = [
    (
        include_bytes!("../../../../fonts/DejaVuSans.ttf"),
        "DejaVuSans",
    ),
    (
        include_bytes!("../../../../fonts/DejaVuSans-Bold.ttf"),
        "DejaVuSans-Bold",
    ),
    (
        include_bytes!("../../../../fonts/DejaVuSansMono.ttf"),
        "DejaVuSansMono",
    ),
    (
        include_bytes!("../../../../fonts/DroidSansFallback.ttf"),
        "DroidSansFallback",
    ),
];

/// The face that covers what the DejaVu faces lack (CJK).
pub const FALLBACK: FaceId = 3;

/// All faces, parsed once.
pub fn faces() -> &'static [Face] {
    static FACES: OnceLock<Vec<Face>> = OnceLock::new();
    FACES.get_or_init(|| {
        SOURCES
            .iter()
            .filter_map(|&(data, ps_name)| {
                // The files are part of the build: a parse failure is caught
                // by the tests, and the face is then simply not used.
                TtfFace::parse(data, 0)
                    .ok()
                    .map(|ttf| Face { data, ps_name, ttf })
            })
            .collect()
    })
}

fn primary(style: Font) -> FaceId {
    style as usize
}

/// The face and glyph that draw `c` in `style`.
pub fn glyph(style: Font, c: char) -> (FaceId, u16) {
    let c = if c.is_control() { ' ' } else { c };
    let all = faces();
    for id in [primary(style), FALLBACK] {
        if let Some(g) = all.get(id).and_then(|f| f.ttf.glyph_index(c)) {
            return (id, g.0);
        }
    }
    let p = primary(style);
    let g = all
        .get(p)
        .and_then(|f| f.ttf.glyph_index('\u{FFFD}'))
        .map_or(0, |g| g.0);
    (p, g)
}

/// Advance width of glyph `g` of `face` in 1/1000 em (PDF glyph space).
pub fn advance(face: FaceId, g: u16) -> f32 {
    faces().get(face).map_or(0.0, |f| {
        let adv = f.ttf.glyph_hor_advance(GlyphId(g)).unwrap_or(0);
        f32::from(adv) * 1000.0 / f32::from(f.ttf.units_per_em())
    })
}

/// Width of `text` in `style` at `size` points.
pub fn width(style: Font, text: &str, size: f32) -> f32 {
    text.chars()
        .map(|c| {
            let (f, g) = glyph(style, c);
            advance(f, g)
        })
        .sum::<f32>()
        * size
        / 1000.0
}

/// `text` split into runs drawn with one face each: `(face, [(glyph, char)])`.
pub fn runs(style: Font, text: &str) -> Vec<(FaceId, Vec<(u16, char)>)> {
    let mut out: Vec<(FaceId, Vec<(u16, char)>)> = Vec::new();
    for c in text.chars() {
        let (f, g) = glyph(style, c);
        match out.last_mut() {
            Some((last, glyphs)) if *last == f => glyphs.push((g, c)),
            _ => out.push((f, vec![(g, c)])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_faces_parse_and_cover_their_scripts() {
        assert_eq!(faces().len(), 4);
        for (c, want) in [
            ('A', 0),
            ('é', 0),
            ('Ω', 0),
            ('Ж', 0),
            ('日', FALLBACK),
            ('한', FALLBACK),
        ] {
            let (f, g) = glyph(Font::Regular, c);
            assert_eq!(f, want, "{c}");
            assert_ne!(g, 0, "{c} has a glyph");
        }
        assert_eq!(glyph(Font::Bold, 'B').0, 1);
        assert_eq!(glyph(Font::Mono, '0').0, 2);
        // Not in any face: the replacement character of the style's face.
        let (f, g) = glyph(Font::Regular, '\u{10FFFD}');
        assert_eq!((f, g), glyph(Font::Regular, '\u{FFFD}'));
    }

    #[test]
    fn widths_come_from_the_fonts() {
        // DejaVu Sans Mono: every glyph is 1233/2048 em = 602.05 / 1000.
        assert!((width(Font::Mono, "abcd", 10.0) - 24.08).abs() < 0.01);
        assert!(width(Font::Bold, "Hello", 10.0) > width(Font::Regular, "Hello", 10.0));
        assert_eq!(runs(Font::Regular, "Ab日本c").len(), 3);
    }
}
