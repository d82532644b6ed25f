//! The auditor-facing PDF rendering of a signed certificate.
//!
//! A4, the PDF base-14 fonts (Helvetica, Helvetica-Bold, Courier) with
//! WinAnsi encoding, so nothing is embedded and every viewer renders the same.
//! Text outside WinAnsi is replaced by `?`; long values wrap, and long lists
//! (failed ranges, events, messages) flow onto further pages. Content streams
//! are uncompressed. The layout is computed first (pages of drawing
//! operations), so each footer can say "page N of M".
//!
//! The PDF is a rendering; the signed JSON is the record. The PDF carries the
//! key id, public key, signature and hashes needed to match it to the JSON.

mod layout;
mod sections;
mod text;

use crate::model::{CertificateBody, ResultStatus};
use crate::sign::SignedCertificate;
use layout::{Font, Op, PAGE_H, PAGE_W};
use pdf_writer::{Content, Name, Pdf, Rect, Ref, Str, TextStr};

const FONT_NAMES: [(&[u8], &[u8]); 3] = [
    (b"F1", b"Helvetica"),
    (b"F2", b"Helvetica-Bold"),
    (b"F3", b"Courier"),
];

fn font_name(f: Font) -> Name<'static> {
    Name(FONT_NAMES[f as usize].0)
}

/// Render `cert` as a PDF document.
pub fn render_pdf(cert: &SignedCertificate) -> Vec<u8> {
    let pages = sections::build(cert);
    emit(cert.body(), &pages)
}

/// Human label and colour of the status banner.
pub(crate) fn status_colour(s: ResultStatus) -> (f32, f32, f32) {
    match s {
        ResultStatus::Pass => (0.10, 0.50, 0.20),
        ResultStatus::Fail => (0.75, 0.10, 0.10),
        ResultStatus::Incomplete => (0.80, 0.50, 0.00),
    }
}

fn emit(body: &CertificateBody, pages: &[Vec<Op>]) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let catalog_id = Ref::new(1);
    let tree_id = Ref::new(2);
    let info_id = Ref::new(3);
    let font_base = 4;
    let first_page = font_base + FONT_NAMES.len() as i32;
    let page_ids: Vec<Ref> = (0..pages.len())
        .map(|i| Ref::new(first_page + 2 * i as i32))
        .collect();

    pdf.catalog(catalog_id).pages(tree_id);
    pdf.pages(tree_id)
        .kids(page_ids.iter().copied())
        .count(page_ids.len() as i32);
    let title = format!("Certificate of Sanitization {}", body.id);
    let subject = format!("{} {}", body.device.model, body.device.serial);
    let producer = format!("{} {}", body.tool.name, body.tool.version);
    pdf.document_info(info_id)
        .title(TextStr(&title))
        .subject(TextStr(&subject))
        .producer(TextStr(&producer));

    for (i, (_, base)) in FONT_NAMES.iter().enumerate() {
        pdf.type1_font(Ref::new(font_base + i as i32))
            .base_font(Name(base))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }

    for (page_ops, &page_id) in pages.iter().zip(&page_ids) {
        let content_id = Ref::new(page_id.get() + 1);
        let mut page = pdf.page(page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H));
        page.parent(tree_id);
        page.contents(content_id);
        {
            let mut resources = page.resources();
            let mut fonts = resources.fonts();
            for (i, (name, _)) in FONT_NAMES.iter().enumerate() {
                fonts.pair(Name(name), Ref::new(font_base + i as i32));
            }
        }
        drop(page);
        let content = draw(page_ops);
        pdf.stream(content_id, &content);
    }
    pdf.finish()
}

fn draw(ops: &[Op]) -> Vec<u8> {
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
                c.set_font(font_name(*font), *size);
                c.set_fill_rgb(*r, *g, *b);
                c.next_line(*x, *y);
                c.show(Str(text));
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
