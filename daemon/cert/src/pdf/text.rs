//! Text measurement and line wrapping with the embedded fonts' metrics.

use super::fonts;
use super::layout::Font;

/// Text as it will be drawn: control characters become spaces.
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Width of `text` at `size` points.
pub fn width(font: Font, text: &str, size: f32) -> f32 {
    fonts::width(font, text, size)
}

/// Wrap `s` into lines no wider than `max` points. Explicit newlines start
/// new lines; words longer than a line (and CJK text, which has no spaces)
/// are broken between characters.
pub fn wrap(s: &str, font: Font, size: f32, max: f32) -> Vec<String> {
    let mut lines = Vec::new();
    for para in s.split('\n') {
        let mut line = String::new();
        let para = clean(para);
        for word in para.split(' ').filter(|w| !w.is_empty()) {
            let candidate = if line.is_empty() {
                word.to_owned()
            } else {
                format!("{line} {word}")
            };
            if width(font, &candidate, size) <= max {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            // The word alone: break it if it still does not fit.
            for c in word.chars() {
                line.push(c);
                if width(font, &line, size) > max && line.chars().count() > 1 {
                    line.pop();
                    lines.push(std::mem::replace(&mut line, c.to_string()));
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
        // Mono glyphs are 6.02 pt at 10 pt: 9 to a 60 pt line.
        assert_eq!(lines.len(), 23);
        assert_eq!(wrap("a\nb", Font::Regular, 10.0, 100.0), vec!["a", "b"]);
        assert_eq!(wrap("", Font::Regular, 10.0, 100.0), vec![String::new()]);
        // CJK has no spaces: it breaks between characters.
        let cjk = wrap(&"漢字".repeat(30), Font::Regular, 10.0, 100.0);
        assert!(cjk.len() > 5, "{cjk:?}");
        assert_eq!(cjk.concat(), "漢字".repeat(30));
    }

    proptest! {
        #[test]
        fn wrapped_lines_fit_and_keep_all_text(s in "\\PC{0,300}", max in 20.0f32..400.0) {
            let lines = wrap(&s, Font::Regular, 9.0, max);
            for l in &lines {
                prop_assert!(l.chars().count() == 1 || width(Font::Regular, l, 9.0) <= max);
            }
            let kept: usize = lines.iter().map(|l| l.chars().filter(|&c| c != ' ').count()).sum();
            let want = clean(&s).chars().filter(|&c| c != ' ').count();
            prop_assert_eq!(kept, want);
        }
    }
}
