//! The auditor-facing PDF rendering of a signed certificate or report.
//!
//! A4. Text is drawn with embedded, subsetted TrueType fonts (DejaVu Sans,
//! Sans Bold and Sans Mono for Latin, Greek and Cyrillic; Droid Sans Fallback
//! for CJK) as Type0 / CIDFontType2 fonts with Identity-H encoding and a
//! ToUnicode map, so names in any of these scripts render and can be
//! searched and copied. Long values wrap, and long lists (failed ranges,
//! events, messages) flow onto further pages. Content streams are
//! uncompressed. The layout is computed first (pages of drawing operations),
//! so each footer can say "page N of M".
//!
//! The title follows the result: only `pass` and `clear_only` are a
//! "Certificate of Sanitization"; everything else is a "Sanitization report —
//! FAILED / INCOMPLETE / UNVERIFIED / NOT STARTED".
//!
//! The PDF is a rendering; the signed JSON is the record. The PDF carries the
//! key id, public key, signature and hashes needed to match it to the JSON.

mod fonts;
mod layout;
mod sections;
mod text;

use crate::model::{CertificateBody, ResultStatus};
use crate::sign::SignedCertificate;
use layout::{Op, PAGE_H, PAGE_W};
use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::{Content, Name, Pdf, Rect, Ref, Str, TextStr};
use std::collections::BTreeMap;
use subsetter::GlyphRemapper;

/// Render `cert` as a PDF document.
pub fn render_pdf(cert: &SignedCertificate) -> Vec<u8> {
    let pages = sections::build(cert);
    emit(cert.body(), &pages)
}

/// Colour of the status banner: green for a pass, amber for a lesser
/// result (Clear only, unverified, incomplete), red for a failure, grey for
/// a job that never started.
pub(crate) fn status_colour(s: ResultStatus) -> (f32, f32, f32) {
    match s {
        ResultStatus::Pass => (0.10, 0.50, 0.20),
        ResultStatus::ClearOnly | ResultStatus::Unverified | ResultStatus::Incomplete => {
            (0.80, 0.50, 0.00)
        }
        ResultStatus::Fail => (0.75, 0.10, 0.10),
        ResultStatus::NotStarted => (0.40, 0.40, 0.40),
    }
}

/// Glyphs used per face, remapped to the subset's glyph ids, with the
/// character each one draws (for ToUnicode).
#[derive(Default)]
struct Used {
    remap: GlyphRemapper,
    chars: BTreeMap<u16, char>,
}

fn font_res(face: fonts::FaceId) -> String {
    format!("F{face}")
}

fn emit(body: &CertificateBody, pages: &[Vec<Op>]) -> Vec<u8> {
    let mut used: BTreeMap<fonts::FaceId, Used> = BTreeMap::new();
    let contents: Vec<Vec<u8>> = pages.iter().map(|p| draw(p, &mut used)).collect();

    let mut pdf = Pdf::new();
    let mut next = 1;
    let mut alloc = || {
        let r = Ref::new(next);
        next += 1;
        r
    };
    let catalog_id = alloc();
    let tree_id = alloc();
    let info_id = alloc();
    let page_ids: Vec<(Ref, Ref)> = pages.iter().map(|_| (alloc(), alloc())).collect();
    // Per face: Type0, CIDFont, descriptor, font file, ToUnicode.
    let font_ids: BTreeMap<fonts::FaceId, [Ref; 5]> = used
        .keys()
        .map(|&f| (f, [alloc(), alloc(), alloc(), alloc(), alloc()]))
        .collect();

    pdf.catalog(catalog_id).pages(tree_id);
    pdf.pages(tree_id)
        .kids(page_ids.iter().map(|(p, _)| *p))
        .count(page_ids.len() as i32);
    let title = format!("{} {}", body.result.status.document_title(), body.id);
    let subject = format!("{} {}", body.device.model, body.device.serial);
    let producer = format!("{} {}", body.tool.name, body.tool.version);
    pdf.document_info(info_id)
        .title(TextStr(&title))
        .subject(TextStr(&subject))
        .producer(TextStr(&producer));

    for ((page_id, content_id), content) in page_ids.iter().zip(&contents) {
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H));
        page.parent(tree_id);
        page.contents(*content_id);
        {
            let mut resources = page.resources();
            let mut fonts = resources.fonts();
            for (face, ids) in &font_ids {
                fonts.pair(Name(font_res(*face).as_bytes()), ids[0]);
            }
        }
        drop(page);
        pdf.stream(*content_id, content);
    }

    for (face_id, u) in &used {
        let ids = font_ids[face_id];
        write_font(&mut pdf, *face_id, u, ids);
    }
    pdf.finish()
}

/// A deterministic six-letter subset tag (PDF 32000-1 9.6.4) from the glyphs used.
fn subset_tag(u: &Used) -> String {
    let mut h: u32 = 2166136261;
    for (g, c) in &u.chars {
        for v in [u32::from(*g), *c as u32] {
            h = (h ^ v).wrapping_mul(16777619);
        }
    }
    (0..6)
        .map(|i| char::from(b'A' + ((h >> (i * 5)) % 26) as u8))
        .collect()
}

fn write_font(pdf: &mut Pdf, face_id: fonts::FaceId, u: &Used, ids: [Ref; 5]) {
    let [type0, cid, descriptor, file, cmap] = ids;
    let Some(face) = fonts::faces().get(face_id) else {
        return;
    };
    let base = format!("{}+{}", subset_tag(u), face.ps_name);
    let data = subsetter::subset(face.data, 0, &u.remap).unwrap_or_else(|_| face.data.to_vec());
    let info = SystemInfo {
        registry: Str(b"Adobe"),
        ordering: Str(b"Identity"),
        supplement: 0,
    };
    pdf.type0_font(type0)
        .base_font(Name(base.as_bytes()))
        .encoding_predefined(Name(b"Identity-H"))
        .descendant_font(cid)
        .to_unicode(cmap);
    {
        let mut c = pdf.cid_font(cid);
        c.subtype(CidFontType::Type2)
            .base_font(Name(base.as_bytes()))
            .system_info(info)
            .font_descriptor(descriptor)
            .default_width(0.0)
            .cid_to_gid_map_predefined(Name(b"Identity"));
        // CIDs are the subset's glyph ids: 0..num_gids, old ids in remap order.
        let widths: Vec<f32> = u
            .remap
            .remapped_gids()
            .map(|old| fonts::advance(face_id, old))
            .collect();
        c.widths().consecutive(0, widths);
    }
    let t = &face.ttf;
    let scale = 1000.0 / f32::from(t.units_per_em());
    let bb = t.global_bounding_box();
    pdf.font_descriptor(descriptor)
        .name(Name(base.as_bytes()))
        .flags(FontFlags::SYMBOLIC)
        .bbox(Rect::new(
            f32::from(bb.x_min) * scale,
            f32::from(bb.y_min) * scale,
            f32::from(bb.x_max) * scale,
            f32::from(bb.y_max) * scale,
        ))
        .italic_angle(0.0)
        .ascent(f32::from(t.ascender()) * scale)
        .descent(f32::from(t.descender()) * scale)
        .cap_height(f32::from(t.capital_height().unwrap_or(t.ascender())) * scale)
        .stem_v(80.0)
        .font_file2(file);
    pdf.stream(file, &data)
        .pair(Name(b"Length1"), data.len() as i32);
    let mut map = UnicodeCmap::new(Name(b"Lethe-UCS"), info);
    for (new_gid, c) in &u.chars {
        map.pair(*new_gid, *c);
    }
    pdf.cmap(cmap, &map.finish());
}

fn draw(ops: &[Op], used: &mut BTreeMap<fonts::FaceId, Used>) -> Vec<u8> {
    let mut c = Content::new();
    for op in ops {
        match op {
            Op::Text {
                x,
                y,
                font,
                size,
                colour: (r, g, b),
                text,
            } => {
                c.begin_text();
                c.set_fill_rgb(*r, *g, *b);
                c.next_line(*x, *y);
                for (face, glyphs) in fonts::runs(*font, text) {
                    let u = used.entry(face).or_default();
                    let mut bytes = Vec::with_capacity(glyphs.len() * 2);
                    for (gid, ch) in glyphs {
                        let new = u.remap.remap(gid);
                        u.chars.entry(new).or_insert(ch);
                        bytes.extend_from_slice(&new.to_be_bytes());
                    }
                    c.set_font(Name(font_res(face).as_bytes()), *size);
                    c.show(Str(&bytes));
                }
                c.end_text();
            }
            Op::Rect {
                x,
                y,
                w,
                h,
                colour: (r, g, b),
            } => {
                c.set_fill_rgb(*r, *g, *b);
                c.rect(*x, *y, *w, *h);
                c.fill_nonzero();
            }
            Op::Line {
                x1,
                y1,
                x2,
                y2,
                width,
                colour: (r, g, b),
            } => {
                c.set_stroke_rgb(*r, *g, *b);
                c.set_line_width(*width);
                c.move_to(*x1, *y1);
                c.line_to(*x2, *y2);
                c.stroke();
            }
        }
    }
    c.finish().to_vec()
}
