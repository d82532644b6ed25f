//! PDF rendering: structure, page flow, and the text a reader extracts.

mod common;

use common::{failed_body, vector_body, vector_seed};
use lethe_cert::*;
use std::process::Command;

fn key() -> ApplianceKey {
    ApplianceKey::from_seed(&vector_seed())
}

fn page_count(pdf: &[u8]) -> usize {
    let text = String::from_utf8_lossy(pdf);
    text.matches("/Type /Page\n").count()
        + text.matches("/Type /Page ").count()
        + text.matches("/Type /Page/").count()
        + text.matches("/Type /Page>").count()
}

/// Text of the PDF via poppler's pdftotext, or None when it is not installed.
fn pdftotext(pdf: &[u8]) -> Option<String> {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("c.pdf");
    std::fs::write(&p, pdf).unwrap();
    let out = Command::new("pdftotext")
        .arg("-layout")
        .arg(&p)
        .arg("-")
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "pdftotext failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn contains_text(pdf: &[u8], needle: &str) -> bool {
    // Content streams are uncompressed: text appears as PDF string literals.
    String::from_utf8_lossy(pdf).contains(&format!("({needle})"))
}

#[test]
fn pass_certificate_renders() {
    let signed = sign(&vector_body(), &key()).unwrap();
    let pdf = render_pdf(&signed);
    assert!(pdf.starts_with(b"%PDF-"));
    assert!(pdf.trim_ascii_end().ends_with(b"%%EOF"));
    assert!(contains_text(&pdf, "PASS"));
    assert!(contains_text(&pdf, "QM00001"));
    assert!(contains_text(&pdf, "Certificate of Sanitization"));
    assert!(contains_text(&pdf, &signed.file_sha256()));
    assert!(contains_text(
        &pdf,
        "Check offline: lethe cert verify job-20261123-0001.json"
    ));
    // Deterministic: same certificate, same bytes.
    assert_eq!(pdf, render_pdf(&signed));
    let pages = page_count(&pdf);
    assert!((1..=2).contains(&pages), "{pages} pages");
    if let Some(text) = pdftotext(&pdf) {
        for needle in [
            "Certificate of Sanitization",
            "PASS",
            "QEMU HARDDISK",
            "QM00001",
            "Clear",
            "Full read-back",
            "Dana Müller",
            "Return to lessor",
            "interrupted",
            "resumed",
            "56475aa75463474c",
            &signed.signature().public_key,
            &signed.body_sha256(),
            "Check offline: lethe cert verify job-20261123-0001.json",
        ] {
            assert!(
                text.contains(needle),
                "pdftotext output lacks {needle:?}:\n{text}"
            );
        }
        // The 88-character signature is split across lines, but all of it is there.
        let squashed: String = text.split_whitespace().collect();
        assert!(squashed.contains(&signed.signature().value));
    } else {
        eprintln!("pdftotext not installed (apt package poppler-utils): text checks skipped");
    }
}

#[test]
fn failed_certificate_with_many_ranges_flows_onto_more_pages() {
    let body = failed_body(400);
    let signed = sign(&body, &key()).unwrap();
    let pdf = render_pdf(&signed);
    assert!(pdf.starts_with(b"%PDF-"));
    assert!(contains_text(&pdf, "FAIL"));
    let pages = page_count(&pdf);
    assert!(
        pages >= 8,
        "400 ranges and 400 events need many pages, got {pages}"
    );
    assert!(contains_text(&pdf, &format!("page {pages} of {pages}")));
    let last = body.result.failed_ranges.last().unwrap();
    if let Some(text) = pdftotext(&pdf) {
        assert!(text.contains("FAIL"));
        assert!(text.contains("QM00001"));
        assert!(text.contains("#400"));
        assert!(
            text.contains(&format!("offset {}", last.offset)),
            "last range missing"
        );
        assert!(text.contains("event number 399"));
        assert!(text.contains(&format!("page {pages} of {pages}")));
        // Non-Latin-1 text is replaced, WinAnsi extras survive.
        assert!(text.contains("€"));
        // No line runs past the right margin: every text x + width <= 545 is
        // enforced by wrap(); spot-check that the long unbroken path was split.
        assert!(!text.contains("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789"));
    }
}

#[test]
fn incomplete_and_empty_fields_render() {
    let mut body = vector_body();
    body.result.status = ResultStatus::Incomplete;
    body.events.clear();
    body.device.model.clear();
    body.customer = None;
    body.destination = None;
    let pdf = render_pdf(&sign(&body, &key()).unwrap());
    assert!(contains_text(&pdf, "INCOMPLETE"));
    assert!(contains_text(&pdf, "not recorded"));
}

#[test]
fn hostile_text_cannot_break_the_pdf() {
    let mut body = vector_body();
    body.customer = Some(") Tj ET 0 0 m 500 500 l S BT (".into());
    body.operator.name = "back\\slash (paren".into();
    let pdf = render_pdf(&sign(&body, &key()).unwrap());
    assert!(pdf.starts_with(b"%PDF-"));
    if let Some(text) = pdftotext(&pdf) {
        assert!(text.contains(") Tj ET 0 0 m 500 500 l S BT ("), "{text}");
        assert!(text.contains("back\\slash (paren"));
    }
}
