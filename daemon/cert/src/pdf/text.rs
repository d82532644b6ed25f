//! WinAnsi encoding, base-14 font metrics and line wrapping.

use super::layout::Font;

/// Helvetica advance widths (1/1000 em) for bytes 32..=126 (Adobe AFM).
const HELVETICA: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, // 32-47
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, // 48-63
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, // 64-79
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, // 80-95
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, // 96-111
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, // 112-126
];

/// Helvetica-Bold advance widths for bytes 32..=126.
const HELVETICA_BOLD: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, // 32-47
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, // 48-63
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778, // 64-79
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556, // 80-95
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611, // 96-111
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584, // 112-126
];

/// Encode `s` for a WinAnsi font: Latin-1 and the CP1252 extras map to their
/// byte; control characters and anything else become `?`.
pub fn encode(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match c {
            ' '..='~' => c as u8,
            '\u{a0}'..='\u{ff}' => c as u32 as u8,
            '\u{20ac}' => 0x80,
            '\u{2026}' => 0x85,
            '\u{2018}' => 0x91,
            '\u{2019}' => 0x92,
            '\u{201c}' => 0x93,
            '\u{201d}' => 0x94,
            '\u{2022}' => 0x95,
            '\u{2013}' => 0x96,
            '\u{2014}' => 0x97,
            '\t' => b' ',
            _ => b'?',
        })
        .collect()
}

/// Advance width of one encoded byte in 1/1000 em.
fn glyph_width(font: Font, b: u8) -> u32 {
    let table = match font {
        Font::Regular => &HELVETICA,
        Font::Bold => &HELVETICA_BOLD,
        Font::Mono => return 600,
    };
    match b {
        32..=126 => u32::from(table[usize::from(b - 32)]),
        0xb7 => 278,
        0x95 => 350,
        0x97 => 1000,
        // Accented letters and symbols: a safe upper bound, so wrapping errs short.
        _ => 722,
    }
}

/// Width of encoded text at `size` points.
pub fn width(font: Font, text: &[u8], size: f32) -> f32 {
    text.iter().map(|&b| glyph_width(font, b)).sum::<u32>() as f32 * size / 1000.0
}

/// Wrap `s` into encoded lines no wider than `max` points. Explicit newlines
/// start new lines; words longer than a line are broken between characters.
pub fn wrap(s: &str, font: Font, size: f32, max: f32) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    for para in s.split('\n') {
        let mut line: Vec<u8> = Vec::new();
        for word in encode(para).split(|&b| b == b' ').filter(|w| !w.is_empty()) {
            let mut candidate = line.clone();
            if !candidate.is_empty() {
                candidate.push(b' ');
            }
            candidate.extend_from_slice(word);
            if width(font, &candidate, size) <= max {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            // The word alone: break it if it still does not fit.
            for &b in word {
                line.push(b);
                if width(font, &line, size) > max && line.len() > 1 {
                    line.pop();
                    lines.push(std::mem::replace(&mut line, vec![b]));
                }
            }
        }
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encodes_latin1_and_replaces_the_rest() {
        assert_eq!(encode("Müller – 5€"), b"M\xfcller \x96 5\x80");
        assert_eq!(encode("日本\u{7}"), b"???");
        assert_eq!(encode("a(b)\\c"), b"a(b)\\c");
    }

    #[test]
    fn widths_match_afm() {
        // "Hello" in Helvetica: 722+556+222+222+556 = 2278.
        assert!((width(Font::Regular, b"Hello", 10.0) - 22.78).abs() < 1e-3);
        assert!((width(Font::Mono, b"abcd", 10.0) - 24.0).abs() < 1e-3);
    }

    #[test]
    fn wraps_words_and_breaks_long_tokens() {
        let lines = wrap(
            "the quick brown fox jumps over the lazy dog",
            Font::Regular,
            10.0,
            60.0,
        );
        assert!(lines.len() > 3);
        for l in &lines {
            assert!(width(Font::Regular, l, 10.0) <= 60.0);
        }
        let long = "x".repeat(200);
        let lines = wrap(&long, Font::Mono, 10.0, 60.0);
        assert_eq!(lines.len(), 20);
        assert_eq!(
            wrap("a\nb", Font::Regular, 10.0, 100.0),
            vec![b"a".to_vec(), b"b".to_vec()]
        );
        assert_eq!(wrap("", Font::Regular, 10.0, 100.0), vec![Vec::<u8>::new()]);
    }

    proptest! {
        #[test]
        fn wrapped_lines_fit_and_keep_all_text(s in "\\PC{0,300}", max in 20.0f32..400.0) {
            let lines = wrap(&s, Font::Regular, 9.0, max);
            for l in &lines {
                prop_assert!(l.len() == 1 || width(Font::Regular, l, 9.0) <= max);
            }
            let kept: usize = lines.iter().map(|l| l.iter().filter(|&&b| b != b' ').count()).sum();
            let want = encode(&s).iter().filter(|&&b| b != b' ').count();
            prop_assert_eq!(kept, want);
        }
    }
}
