//! PDF rendering: structure, page flow, titles per result, embedded fonts,
//! and the text a reader extracts (poppler's pdftotext, installed by
//! hw-tests/setup.sh).

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

/// Text of the PDF via poppler's pdftotext (`-layout` keeps each row on one line).
fn pdftotext(pdf: &[u8]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("c.pdf");
    std::fs::write(&p, pdf).unwrap();
    let out = Command::new("pdftotext")
        .arg("-layout")
        .arg(&p)
        .arg("-")
        .output()
        .expect("pdftotext (apt package poppler-utils, installed by hw-tests/setup.sh)");
    assert!(
        out.status.success(),
        "pdftotext failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_has(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            text.contains(needle),
            "pdftotext output lacks {needle:?}:\n{text}"
        );
    }
}

/// safeguard: 164.310(d)(2)(iii)
#[test]
fn pass_certificate_renders() {
    let signed = sign(&vector_body(), &key()).unwrap();
    let pdf = render_pdf(&signed);
    assert!(pdf.starts_with(b"%PDF-"));
    assert!(pdf.trim_ascii_end().ends_with(b"%%EOF"));
    // Deterministic: same certificate, same bytes.
    assert_eq!(pdf, render_pdf(&signed));
    let pages = page_count(&pdf);
    assert!((1..=2).contains(&pages), "{pages} pages");
    // Embedded TrueType subsets, no reliance on the viewer's base-14 fonts.
    let raw = String::from_utf8_lossy(&pdf);
    assert!(raw.contains("/FontFile2") && raw.contains("/Identity-H"));
    assert!(raw.contains("+DejaVuSans"));
    assert!(!raw.contains("Helvetica"));
    let text = pdftotext(&pdf);
    assert_has(
        &text,
        &[
            "Certificate of Sanitization",
            "PASS",
            "Clear reached and verified",
            "QEMU HARDDISK",
            "QM00001",
            "Full read-back",
            "Dana Müller",
            "Return to lessor",
            "interrupted",
            "resumed",
            "56475aa75463474c",
            &signed.signature().public_key,
            &signed.body_sha256(),
            &signed.file_sha256(),
            "lethe cert verify job-20261123-0001",
        ],
    );
    // The 88-character signature is split across lines, but all of it is there.
    let squashed: String = text.split_whitespace().collect();
    assert!(squashed.contains(&signed.signature().value));
}

#[test]
fn failed_report_with_many_ranges_flows_onto_more_pages() {
    let body = failed_body(400);
    let signed = sign(&body, &key()).unwrap();
    let pdf = render_pdf(&signed);
    let pages = page_count(&pdf);
    assert!(
        pages >= 8,
        "400 ranges and 400 events need many pages, got {pages}"
    );
    let last = body.result.failed_ranges.last().unwrap();
    let text = pdftotext(&pdf);
    assert_has(
        &text,
        &[
            "Sanitization report — FAILED",
            "QM00001",
            "#400",
            &format!("offset {}", last.offset),
            "event number 399",
            &format!("page {pages} of {pages}"),
            "Sanitization report — FAILED — job-fail-400 (continued)",
            "Lethe report job-fail-400",
            "日本語 € – “quotes” ✓",
        ],
    );
    assert!(!text.contains("Certificate of Sanitization"), "{text}");
    // Spot-check that the long unbroken path was split to fit the margin.
    assert!(!text.contains("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789"));
}

/// Every result that is not a pass says so in the title and the banner.
/// safeguard: rule:never-certify-unverified
#[test]
fn each_result_has_its_own_title_and_banner() {
    let cases: Vec<(CertificateBody, &str, &[&str])> = vec![
        (
            {
                let mut b = vector_body();
                b.method.requested_level = Some(Category::Purge);
                b.result.status = ResultStatus::ClearOnly;
                b
            },
            "Certificate of Sanitization",
            &[
                "CLEAR ONLY",
                "Purge was requested: only a verified Clear was reached",
            ],
        ),
        (
            {
                let mut b = vector_body();
                b.result.status = ResultStatus::Unverified;
                b.verification.method = VerificationMethod::None;
                b.verification.result = VerificationResult::NotPerformed;
                b.verification.bytes_verified = 0;
                b.verification.coverage_ppm = 0;
                b
            },
            "Sanitization report — UNVERIFIED",
            &[
                "UNVERIFIED",
                "not a certificate of sanitization",
                "not verified",
            ],
        ),
        (
            {
                let mut b = vector_body();
                b.result.status = ResultStatus::Incomplete;
                b.verification.result = VerificationResult::NotPerformed;
                b.events.clear();
                b.device.model.clear();
                b.customer = None;
                b.destination = None;
                b
            },
            "Sanitization report — INCOMPLETE",
            &[
                "INCOMPLETE",
                "the job did not finish",
                "not recorded",
                "none recorded",
            ],
        ),
        (
            {
                let mut b = vector_body();
                b.result.status = ResultStatus::NotStarted;
                b.result.bytes_written = 0;
                b.verification.result = VerificationResult::NotPerformed;
                b.verification.bytes_verified = 0;
                b
            },
            "Sanitization report — NOT STARTED",
            &[
                "NOT STARTED",
                "nothing was written to this device",
                "nothing was done",
            ],
        ),
    ];
    for (body, title, needles) in cases {
        let signed = sign(&body, &key()).unwrap();
        assert_eq!(signed.body().result.status, body.result.status);
        let pdf = render_pdf(&signed);
        if let Ok(dir) = std::env::var("LETHE_PDF_SAMPLE_DIR") {
            let name = format!("{}.pdf", body.result.status.as_str());
            std::fs::write(std::path::Path::new(&dir).join(name), &pdf).unwrap();
        }
        let text = pdftotext(&pdf);
        assert_has(&text, &[title]);
        assert_has(&text, needles);
        if !body.result.status.is_certificate() {
            assert!(
                !text.contains("Certificate of Sanitization"),
                "{title}:\n{text}"
            );
            assert!(!text.contains("PASS"), "{title}:\n{text}");
            assert!(!text.contains("verified: Full"), "{title}:\n{text}");
        }
        if body.result.status == ResultStatus::NotStarted {
            // Its banner never reads "verified" in any form.
            let banner = text.split("Device").next().unwrap_or_default();
            assert!(!banner.contains("verified"), "{title}:\n{banner}");
        }
    }
}

#[test]
fn names_in_any_script_round_trip_through_the_pdf() {
    let names = [
        "Dana Müller-Lüdenscheidt",
        "François Ø. Ågren",
        "Ελένη Παπαδοπούλου",
        "Анна Иванова",
        "山田太郎",
        "王小明",
        "김민준",
    ];
    let mut body = vector_body();
    body.operator.name = names.join(" / ");
    body.customer = Some("Klinikum Süd · Αθήνα · Москва · 東京病院".into());
    body.media_source = Some("Δ-ward PC 7 (放射線科)".into());
    let pdf = render_pdf(&sign(&body, &key()).unwrap());
    let text = pdftotext(&pdf);
    let mut all: Vec<&str> = names.to_vec();
    all.extend([
        "Klinikum Süd · Αθήνα · Москва · 東京病院",
        "Δ-ward PC 7 (放射線科)",
    ]);
    assert_has(&text, &all);
    // Subsetting keeps the file small although a CJK face is embedded.
    assert!(pdf.len() < 300_000, "{} bytes", pdf.len());
    let raw = String::from_utf8_lossy(&pdf);
    assert!(raw.contains("+DroidSansFallback"));
    if let Ok(dir) = std::env::var("LETHE_PDF_SAMPLE_DIR") {
        // For looking at the page: LETHE_PDF_SAMPLE_DIR=/tmp/x cargo test ... then pdftoppm.
        std::fs::write(std::path::Path::new(&dir).join("scripts.pdf"), &pdf).unwrap();
    }
}

#[test]
fn drive_health_and_degauss_attestation_are_shown() {
    let mut body = vector_body();
    body.device.health = Some(DriveHealth {
        source: HealthSource::AtaSmart,
        assessment: HealthAssessment::Warning,
        power_on_hours: Some(12_345),
        power_cycles: Some(321),
        reallocated_sectors: Some(8),
        pending_sectors: Some(0),
        uncorrectable_errors: Some(0),
        percentage_used: None,
        available_spare_percent: None,
        temperature_celsius: Some(38),
        notes: vec!["8 reallocated sectors".into()],
    });
    body.method.category = Category::Destroy;
    body.method.technique = "degauss".into();
    body.verification = Verification {
        method: VerificationMethod::ControllerConfirmed,
        coverage_ppm: 0,
        bytes_verified: 0,
        sample_seed: None,
        result: VerificationResult::Pass,
        detail: None,
        attestation: Some(Attestation {
            attested_by: "degausser controller, firmware 1.2.0".into(),
            verified: vec!["medium is magnetic (checked before arming)".into()],
            attested: vec!["relay energized 2000 ms with the interlock closed".into()],
        }),
    };
    let pdf = render_pdf(&sign(&body, &key()).unwrap());
    let text = pdftotext(&pdf);
    assert_has(
        &text,
        &[
            "Drive health (read before sanitization)",
            "warning",
            "12,345",
            "8 reallocated sectors",
            "38 °C",
            "attested by the degausser controller",
            "Checked by Lethe",
            "medium is magnetic",
            "Only attested",
            "relay energized 2000 ms",
        ],
    );
}

#[test]
fn hostile_text_cannot_break_the_pdf() {
    let mut body = vector_body();
    body.customer = Some(") Tj ET 0 0 m 500 500 l S BT (".into());
    body.operator.name = "back\\slash (paren\u{7}\u{202e}".into();
    let pdf = render_pdf(&sign(&body, &key()).unwrap());
    assert!(pdf.starts_with(b"%PDF-"));
    let text = pdftotext(&pdf);
    assert_has(
        &text,
        &[") Tj ET 0 0 m 500 500 l S BT (", "back\\slash (paren"],
    );
}
