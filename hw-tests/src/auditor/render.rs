//! Markdown documents to one HTML folder (a page per document plus
//! `print.html` with all of them), and `print.html` to one PDF through
//! Debian's Chromium (`--headless --print-to-pdf`), checked with pdftotext.

use pulldown_cmark::{CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use std::path::Path;
use std::process::Command;

/// One document of the pack.
pub struct Doc {
    /// Its page name without extension (`hipaa`); also the `NAME.md` it
    /// came from, so links between documents can be rewritten.
    pub slug: String,
    /// Its title (the first heading).
    pub title: String,
    pub markdown: String,
}

/// The pack's identity, shown on every page.
pub struct Banner {
    pub version: String,
    pub commit: String,
    pub built: String,
}

/// GitHub's heading anchors: lower-case, punctuation dropped, spaces to '-'.
pub fn slugify(text: &str) -> String {
    text.chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                Some(c.to_lowercase().next().unwrap_or(c))
            } else if c == ' ' {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Pages of the folder: links to `other.html#frag`.
    Folder,
    /// All documents on one page: links to `#slug--frag`.
    Print,
}

fn rewrite_link(dest: &str, doc: &str, docs: &[&str], mode: Mode) -> Option<String> {
    if dest.starts_with("http://") || dest.starts_with("https://") || dest.starts_with("mailto:") {
        return Some(dest.to_owned());
    }
    let (file, frag) = dest.split_once('#').unwrap_or((dest, ""));
    let target = if file.is_empty() {
        doc
    } else {
        let name = file
            .strip_prefix("./")
            .unwrap_or(file)
            .strip_suffix(".md")?;
        *docs.iter().find(|d| **d == name)?
    };
    Some(match (mode, frag.is_empty()) {
        (Mode::Folder, true) => format!("{target}.html"),
        (Mode::Folder, false) if file.is_empty() => format!("#{frag}"),
        (Mode::Folder, false) => format!("{target}.html#{frag}"),
        (Mode::Print, true) => format!("#{target}"),
        (Mode::Print, false) => format!("#{target}--{frag}"),
    })
}

/// The HTML of one document. Links to documents outside the pack (source
/// files, other docs) keep their text and lose the link.
fn to_html(doc: &Doc, docs: &[&str], mode: Mode) -> String {
    let mut opts = Options::empty();
    opts.insert(Options::ENABLE_TABLES);
    opts.insert(Options::ENABLE_STRIKETHROUGH);
    let events: Vec<Event> = Parser::new_ext(&doc.markdown, opts).collect();
    let mut out: Vec<Event> = Vec::with_capacity(events.len());
    let mut dropped_links: Vec<bool> = Vec::new();
    let mut i = 0;
    while i < events.len() {
        match &events[i] {
            Event::Start(Tag::Heading {
                level,
                classes,
                attrs,
                ..
            }) => {
                // Collect the heading's text to give it GitHub's anchor.
                let mut text = String::new();
                let mut j = i + 1;
                while j < events.len() && !matches!(events[j], Event::End(TagEnd::Heading(_))) {
                    if let Event::Text(t) | Event::Code(t) = &events[j] {
                        text.push_str(t);
                    }
                    j += 1;
                }
                let slug = slugify(&text);
                let id = match mode {
                    Mode::Folder => slug,
                    Mode::Print => format!("{}--{slug}", doc.slug),
                };
                out.push(Event::Start(Tag::Heading {
                    level: *level,
                    id: Some(CowStr::from(id)),
                    classes: classes.clone(),
                    attrs: attrs.clone(),
                }));
            }
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => match rewrite_link(dest_url, &doc.slug, docs, mode) {
                Some(dest) => {
                    dropped_links.push(false);
                    out.push(Event::Start(Tag::Link {
                        link_type: *link_type,
                        dest_url: CowStr::from(dest),
                        title: title.clone(),
                        id: id.clone(),
                    }));
                }
                None => dropped_links.push(true),
            },
            Event::End(TagEnd::Link) => {
                if !dropped_links.pop().unwrap_or(false) {
                    out.push(events[i].clone());
                }
            }
            // Raw HTML from the sources (generated-block markers) stays out.
            Event::Html(_) | Event::InlineHtml(_) => {}
            e => out.push(e.clone()),
        }
        i += 1;
    }
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, out.into_iter());
    html
}

fn escape(s: &str) -> String {
    super::junit::xml_escape(s)
}

fn page(title: &str, banner: &Banner, body: &str, print: bool) -> String {
    let head = if print {
        String::new()
    } else {
        format!(
            "<header class=\"pack\"><a href=\"index.html\">Lethe {} auditor pack</a> · commit <code>{}</code> · built {}</header>\n",
            escape(&banner.version),
            escape(&banner.commit),
            escape(&banner.built)
        )
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{} — Lethe {} auditor pack</title>\n<link rel=\"stylesheet\" href=\"style.css\">\n</head>\n<body{}>\n{head}<main>\n{body}</main>\n</body>\n</html>\n",
        escape(title),
        escape(&banner.version),
        if print { " class=\"print\"" } else { "" }
    )
}

pub const STYLE: &str = r#"body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 10.5pt; line-height: 1.45; color: #111; max-width: 60em; margin: 0 auto; padding: 1em 2em; }
header.pack { font-size: 9pt; color: #555; border-bottom: 1px solid #ccc; padding-bottom: .4em; margin-bottom: 1.2em; }
h1 { font-size: 20pt; border-bottom: 2px solid #333; padding-bottom: .2em; }
h2 { font-size: 15pt; margin-top: 1.6em; border-bottom: 1px solid #bbb; }
h3 { font-size: 12pt; margin-top: 1.3em; }
code, pre { font-family: "DejaVu Sans Mono", monospace; font-size: 9pt; }
pre { background: #f4f4f4; padding: .6em; overflow-x: auto; white-space: pre-wrap; }
table { border-collapse: collapse; margin: .6em 0; font-size: 9pt; }
th, td { border: 1px solid #bbb; padding: .25em .45em; vertical-align: top; text-align: left; }
th { background: #eee; }
td code { word-break: break-all; }
a { color: #0645ad; text-decoration: none; }
.print section.doc { break-before: page; }
.print section.doc:first-of-type { break-before: auto; }
@media print { body { max-width: none; padding: 0; } a { color: #111; } }
@page { size: A4; margin: 16mm 14mm; }
"#;

/// Write `dir/NAME.html` per document, `dir/print.html` (every document in
/// order) and `dir/style.css`.
pub fn write_folder(dir: &Path, docs: &[Doc], banner: &Banner) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let slugs: Vec<&str> = docs.iter().map(|d| d.slug.as_str()).collect();
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text).map_err(|e| format!("{name}: {e}"))
    };
    write("style.css", STYLE)?;
    let mut all = String::new();
    for d in docs {
        write(
            &format!("{}.html", d.slug),
            &page(&d.title, banner, &to_html(d, &slugs, Mode::Folder), false),
        )?;
        all.push_str(&format!(
            "<section class=\"doc\" id=\"{}\">\n{}</section>\n",
            d.slug,
            to_html(d, &slugs, Mode::Print)
        ));
    }
    write("print.html", &page("All documents", banner, &all, true))
}

/// Print `html` to `pdf` with headless Chromium.
pub fn print_pdf(chromium: &str, html: &Path, pdf: &Path) -> Result<(), String> {
    let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
    let html = std::fs::canonicalize(html).map_err(|e| format!("{}: {e}", html.display()))?;
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-pdf-header-footer",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", html.display()))
        .env("HOME", profile.path())
        .output()
        .map_err(|e| format!("{chromium}: {e} (install Debian's chromium: hw-tests/setup.sh)"))?;
    let ok = out.status.success()
        && std::fs::metadata(pdf)
            .map(|m| m.len() > 1000)
            .unwrap_or(false);
    if !ok {
        return Err(format!(
            "{chromium} did not print {}: {}",
            pdf.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// The PDF's text (pdftotext), with runs of white space made single spaces.
pub fn pdf_text(pdf: &Path) -> Result<String, String> {
    let out = Command::new("pdftotext")
        .arg(pdf)
        .arg("-")
        .output()
        .map_err(|e| format!("pdftotext: {e} (poppler-utils)"))?;
    if !out.status.success() {
        return Err(format!(
            "pdftotext {}: {}",
            pdf.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" "))
}

/// The first-level heading of a Markdown text.
pub fn title_of(markdown: &str) -> Option<String> {
    let mut in_heading = false;
    let mut text = String::new();
    for e in Parser::new(markdown) {
        match e {
            Event::Start(Tag::Heading {
                level: HeadingLevel::H1,
                ..
            }) => in_heading = true,
            Event::End(TagEnd::Heading(HeadingLevel::H1)) => return Some(text),
            Event::Text(t) | Event::Code(t) if in_heading => text.push_str(&t),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(slug: &str, md: &str) -> Doc {
        Doc {
            slug: slug.into(),
            title: title_of(md).unwrap_or_default(),
            markdown: md.into(),
        }
    }

    #[test]
    fn anchors_links_and_raw_html() {
        let d = doc(
            "hipaa",
            "# HIPAA map\n\n### §164.312(a)(1) Access control\n\nSee [the plan](security-test-plan.md#tiers), \
             [above](#164312a1-access-control), [code](../daemon/auth/src/authz.rs#L3), \
             [testing](testing.md) and [site](https://example.org).\n\n<!-- BEGIN GENERATED -->\n",
        );
        let docs = ["hipaa", "security-test-plan"];
        let folder = to_html(&d, &docs, Mode::Folder);
        assert!(
            folder.contains(r#"<h3 id="164312a1-access-control">"#),
            "{folder}"
        );
        assert!(
            folder.contains(r#"<a href="security-test-plan.html#tiers">the plan</a>"#),
            "{folder}"
        );
        assert!(
            folder.contains(r##"<a href="#164312a1-access-control">above</a>"##),
            "{folder}"
        );
        assert!(folder.contains(", code, testing and "), "{folder}");
        assert!(
            folder.contains(r#"<a href="https://example.org">site</a>"#),
            "{folder}"
        );
        assert!(!folder.contains("GENERATED"), "{folder}");
        let print = to_html(&d, &docs, Mode::Print);
        assert!(print.contains(r#"<h1 id="hipaa--hipaa-map">"#), "{print}");
        assert!(
            print.contains(r##"<a href="#security-test-plan--tiers">the plan</a>"##),
            "{print}"
        );
        assert!(
            print.contains(r##"<a href="#hipaa--164312a1-access-control">above</a>"##),
            "{print}"
        );
        assert_eq!(
            title_of("intro\n\n# The `lethe` pack\n").as_deref(),
            Some("The lethe pack")
        );
    }
}
