//! Safeguard tags on tests: `/// safeguard: ID, ID` in the comments right
//! above a `#[test]` (or `#[tokio::test]`) function, in any crate of either
//! workspace.

use std::collections::BTreeMap;

/// One tagged test function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedTest {
    /// Path from the repository root.
    pub file: String,
    /// Line of the `fn`.
    pub line: usize,
    /// The function's name.
    pub function: String,
    /// Its module path inside its test binary (`a::b::tests`), "" at the root.
    pub module: String,
    /// The safeguard and rule ids it proves.
    pub ids: Vec<String>,
    /// The first sentence of its doc comment (tag line left out), if any.
    pub doc: Option<String>,
}

impl TaggedTest {
    /// `file::function`, the test's key in the plan and the pack.
    pub fn key(&self) -> String {
        format!("{}::{}", self.file, self.function)
    }

    /// The name libtest prints for it (`module::function`).
    pub fn test_path(&self) -> String {
        if self.module.is_empty() {
            self.function.clone()
        } else {
            format!("{}::{}", self.module, self.function)
        }
    }

    /// A readable description: the doc comment's first sentence, or the
    /// function name with spaces.
    pub fn describe(&self) -> String {
        self.doc.clone().unwrap_or_else(|| {
            let s = self.function.replace('_', " ");
            let mut c = s.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
    }
}

fn tag_ids(line: &str) -> Option<&str> {
    let t = line.trim_start();
    let rest = t.strip_prefix("///").or_else(|| t.strip_prefix("//"))?;
    rest.trim_start().strip_prefix("safeguard:").map(str::trim)
}

fn doc_text(line: &str) -> Option<&str> {
    let t = line.trim_start();
    if t.starts_with("////") {
        return None;
    }
    t.strip_prefix("///")
        .map(|r| r.strip_prefix(' ').unwrap_or(r))
}

fn fn_name(line: &str) -> Option<&str> {
    let mut t = line.trim_start();
    for p in ["pub(crate) ", "pub ", "async ", "unsafe "] {
        t = t.strip_prefix(p).unwrap_or(t);
    }
    let t = t.strip_prefix("fn ")?;
    let end = t
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(t.len());
    (end > 0).then(|| &t[..end])
}

fn first_sentence(text: &str) -> Option<String> {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return None;
    }
    let end = text
        .match_indices(". ")
        .map(|(i, _)| i + 1)
        .next()
        .unwrap_or(text.len());
    Some(text[..end].to_owned())
}

/// The module path a file contributes inside its crate or test binary:
/// `src/a/b.rs` → `a::b`, `src/a/mod.rs` → `a`, crate and test roots → "".
pub fn file_module(file: &str) -> String {
    let parts: Vec<&str> = file.split('/').collect();
    // The part after the package's `src/` or `tests/` (the last one).
    let Some(pos) = parts.iter().rposition(|p| *p == "src" || *p == "tests") else {
        return String::new();
    };
    let mut rest: Vec<&str> = parts[pos + 1..].to_vec();
    if parts[pos] == "tests" || rest.first() == Some(&"bin") {
        // tests/NAME.rs or tests/NAME/…, src/bin/NAME.rs or src/bin/NAME/…: a root of its own.
        if parts[pos] == "src" {
            rest.remove(0);
        }
        if rest.len() <= 1 {
            return String::new();
        }
        rest.remove(0);
    }
    let Some(last) = rest.pop() else {
        return String::new();
    };
    let stem = last.strip_suffix(".rs").unwrap_or(last);
    if !matches!(stem, "lib" | "main" | "mod") {
        rest.push(stem);
    }
    rest.join("::")
}

/// What the lexer knows at the start of a line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineState {
    /// The inline modules (`mod name { … }`) open there.
    pub modules: Vec<String>,
    /// The line starts inside a string literal or a block comment: it is
    /// not code (a tag there is text, e.g. in a test's sample source).
    pub in_literal: bool,
}

/// The state at the start of every line. A small lexer: comments, strings,
/// raw strings and char literals are skipped so their braces do not count.
pub fn line_states(src: &str) -> Vec<LineState> {
    let b = src.as_bytes();
    let mut out = vec![LineState::default()];
    let mut stack: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut words: Vec<String> = Vec::new();
    let mut i = 0;
    let newline = |out: &mut Vec<LineState>, stack: &Vec<(String, usize)>, in_literal: bool| {
        out.push(LineState {
            modules: stack.iter().map(|(n, _)| n.clone()).collect(),
            in_literal,
        });
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' => {
                newline(&mut out, &stack, false);
                i += 1;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    if b[i] == b'\n' {
                        newline(&mut out, &stack, true);
                    }
                    i += 1;
                }
                i += 2;
            }
            b'r' if matches!(b.get(i + 1), Some(b'"') | Some(b'#'))
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                let mut j = i + 1;
                let mut hashes = 0;
                while b.get(j) == Some(&b'#') {
                    hashes += 1;
                    j += 1;
                }
                if b.get(j) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                j += 1;
                loop {
                    if j >= b.len() {
                        break;
                    }
                    if b[j] == b'\n' {
                        newline(&mut out, &stack, true);
                    }
                    if b[j] == b'"' && (0..hashes).all(|h| b.get(j + 1 + h) == Some(&b'#')) {
                        j += 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                i = j;
                words.clear();
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    if i < b.len() && b[i] == b'\n' {
                        newline(&mut out, &stack, true);
                    }
                    i += 1;
                }
                i += 1;
                words.clear();
            }
            b'\'' => {
                // A char literal ('x', '\n', '\u{…}') or a lifetime ('a).
                let close = if b.get(i + 1) == Some(&b'\\') {
                    (i + 3..(i + 12).min(b.len())).find(|&k| b[k] == b'\'')
                } else {
                    let ch_len = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                    (b.get(i + 1 + ch_len) == Some(&b'\'')).then_some(i + 1 + ch_len)
                };
                i = close.map_or(i + 1, |k| k + 1);
            }
            b'{' => {
                if words.len() >= 2 && words[words.len() - 2] == "mod" {
                    stack.push((words[words.len() - 1].clone(), depth));
                }
                depth += 1;
                words.clear();
                i += 1;
            }
            b'}' => {
                depth = depth.saturating_sub(1);
                if stack.last().is_some_and(|(_, d)| *d == depth) {
                    stack.pop();
                }
                words.clear();
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                words.push(src[start..i].to_owned());
                if words.len() > 4 {
                    words.remove(0);
                }
            }
            c if c.is_ascii_whitespace() => i += 1,
            _ => {
                words.clear();
                i += 1;
            }
        }
    }
    out
}

/// Find the tagged tests of one file. A tag that is not on a test
/// function is an error naming the file and line.
pub fn scan_file(file: &str, src: &str) -> Result<Vec<TaggedTest>, String> {
    let lines: Vec<&str> = src.lines().collect();
    if !lines.iter().any(|l| tag_ids(l).is_some()) {
        return Ok(Vec::new());
    }
    let states = line_states(src);
    let base = file_module(file);
    let mut found: BTreeMap<usize, TaggedTest> = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(ids) = tag_ids(line) else { continue };
        if states.get(i).is_some_and(|s| s.in_literal) {
            continue;
        }
        let ids: Vec<String> = ids
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        let at = format!("{file}:{}", i + 1);
        if ids.is_empty() {
            return Err(format!("{at}: a safeguard tag names no id"));
        }
        // Walk down over comments and attributes to the function.
        let mut j = i + 1;
        let mut is_test = false;
        let mut doc = Vec::new();
        let name = loop {
            let Some(l) = lines.get(j) else {
                return Err(format!(
                    "{at}: a safeguard tag is not followed by a test function"
                ));
            };
            let t = l.trim_start();
            if let Some(d) = doc_text(t) {
                if tag_ids(t).is_none() {
                    doc.push(d.to_owned());
                }
            } else if t.starts_with("//") {
            } else if t.starts_with("#[") {
                is_test |= t.starts_with("#[test]")
                    || t.starts_with("#[tokio::test")
                    || t.starts_with("#[test_case");
                // An attribute may span lines: skip to its closing bracket.
                let mut open = t.matches('[').count() as isize - t.matches(']').count() as isize;
                while open > 0 {
                    j += 1;
                    let more = lines.get(j).copied().unwrap_or("]");
                    open += more.matches('[').count() as isize - more.matches(']').count() as isize;
                }
            } else if let Some(name) = fn_name(t) {
                break name;
            } else {
                return Err(format!(
                    "{at}: a safeguard tag must be in the comments right above a test function"
                ));
            }
            j += 1;
        };
        if !is_test {
            return Err(format!(
                "{at}: `fn {name}` carries a safeguard tag but is not a #[test]"
            ));
        }
        // Doc lines above the tag belong to the same comment.
        let mut above = Vec::new();
        let mut k = i;
        while k > 0 {
            k -= 1;
            match doc_text(lines[k]) {
                Some(d) if tag_ids(lines[k]).is_none() => above.push(d.to_owned()),
                Some(_) => {}
                None => break,
            }
        }
        above.reverse();
        above.extend(doc);
        let inline = states.get(j).map(|s| s.modules.clone()).unwrap_or_default();
        let module = std::iter::once(base.clone())
            .filter(|b| !b.is_empty())
            .chain(inline)
            .collect::<Vec<_>>()
            .join("::");
        let entry = found.entry(j).or_insert_with(|| TaggedTest {
            file: file.to_owned(),
            line: j + 1,
            function: name.to_owned(),
            module,
            ids: Vec::new(),
            doc: first_sentence(&above.join(" ")),
        });
        for id in ids {
            if !entry.ids.contains(&id) {
                entry.ids.push(id);
            }
        }
    }
    Ok(found.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_modules_follow_the_crate_layout() {
        for (file, want) in [
            ("daemon/core/src/lib.rs", ""),
            ("daemon/cli/src/main.rs", ""),
            ("daemon/core/src/ranges.rs", "ranges"),
            ("daemon/core/src/inventory/tests.rs", "inventory::tests"),
            ("daemon/audit/src/verify/mod.rs", "verify"),
            ("daemon/cli/tests/wipe_loop.rs", ""),
            ("daemon/audit/tests/integration/main.rs", ""),
            ("daemon/audit/tests/integration/writer.rs", "writer"),
            ("hw-tests/src/bin/auditor-pack/main.rs", ""),
            ("hw-tests/src/bin/auditor-pack/tags.rs", "tags"),
            ("hw-tests/src/bin/tool.rs", ""),
            ("firmware/logic/src/machine/tests.rs", "machine::tests"),
        ] {
            assert_eq!(file_module(file), want, "{file}");
        }
    }

    const SAMPLE: &str = r####"
//! A module.
const S: &str = "a { brace in a string";
const R: &str = r#"and { in a "raw" string"#;
const C: char = '{';
fn helper<'a>(x: &'a str) -> &'a str { x }

#[cfg(test)]
mod tests {
    use super::*;

    /// Refuses what it must refuse. More text
    /// on two lines.
    /// safeguard: 164.312(b), rule:audit-integrity
    #[test]
    fn refuses() {}

    mod inner {
        // safeguard: rule:protected-devices
        #[tokio::test(
            flavor = "multi_thread"
        )]
        async fn deep() { let _ = '}'; }
    }

    proptest::proptest! {
        /// safeguard: 164.312(c)(1)
        #[test]
        fn prop(x in 0u8..3) { let _ = x; }
    }
}
"####;

    #[test]
    fn tags_inside_string_literals_are_text() {
        let src = "const A: &str = r#\"\n/// safeguard: 164.312(b)\n#[test]\nfn a() {}\n\"#;\n\
                   const B: &str = \"\n// safeguard: 164.312(b)\n#[test]\nfn b() {}\n\";\n\
                   /* block\n/// safeguard: 164.312(b)\n#[test]\nfn c() {}\n*/\n";
        assert_eq!(scan_file("daemon/x/src/lib.rs", src).unwrap(), []);
    }

    #[test]
    fn tags_are_found_with_their_module_and_doc() {
        let found = scan_file("daemon/x/src/a/b.rs", SAMPLE).unwrap();
        let got: Vec<(String, String, Vec<String>, Option<String>)> = found
            .into_iter()
            .map(|t| (t.test_path(), t.file, t.ids, t.doc))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "a::b::tests::refuses".into(),
                    "daemon/x/src/a/b.rs".into(),
                    vec!["164.312(b)".into(), "rule:audit-integrity".into()],
                    Some("Refuses what it must refuse.".into())
                ),
                (
                    "a::b::tests::inner::deep".into(),
                    "daemon/x/src/a/b.rs".into(),
                    vec!["rule:protected-devices".into()],
                    None
                ),
                (
                    "a::b::tests::prop".into(),
                    "daemon/x/src/a/b.rs".into(),
                    vec!["164.312(c)(1)".into()],
                    None
                ),
            ]
        );
    }

    #[test]
    fn misplaced_tags_are_errors() {
        for (src, why) in [
            (
                "/// safeguard: 164.312(b)\nfn not_a_test() {}\n",
                "not a #[test]",
            ),
            (
                "/// safeguard: 164.312(b)\n\n#[test]\nfn t() {}\n",
                "must be in the comments",
            ),
            ("/// safeguard:\n#[test]\nfn t() {}\n", "names no id"),
            ("/// safeguard: 164.312(b)\n", "not followed"),
        ] {
            let e = scan_file("daemon/x/tests/t.rs", src).unwrap_err();
            assert!(e.contains(why), "{e}");
            assert!(e.starts_with("daemon/x/tests/t.rs:1:"), "{e}");
        }
    }

    #[test]
    fn descriptions_fall_back_to_the_name() {
        let t = TaggedTest {
            file: "f.rs".into(),
            line: 1,
            function: "root_disk_is_refused".into(),
            module: String::new(),
            ids: vec![],
            doc: None,
        };
        assert_eq!(t.describe(), "Root disk is refused");
        assert_eq!(t.test_path(), "root_disk_is_refused");
    }
}
