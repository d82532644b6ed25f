//! The certificate's sections, laid out in reading order.

use super::layout::*;
use super::text::{width, wrap};
use crate::model::{CertificateBody, DriveHealth, VerificationMethod, VerificationResult};
use crate::sign::SignedCertificate;

fn opt(v: &Option<String>) -> &str {
    v.as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or("not recorded")
}

fn or_none(v: &str) -> &str {
    if v.is_empty() {
        "not reported"
    } else {
        v
    }
}

/// `268439552` -> `268,439,552`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn bytes_human(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{} bytes", grouped(n))
    } else {
        format!("{} bytes ({v:.1} {})", grouped(n), UNITS[u])
    }
}

/// Parts per million as a percentage with up to 4 decimals, exactly.
fn ppm_percent(ppm: u32) -> String {
    let whole = ppm / 10_000;
    let frac = ppm % 10_000;
    if frac == 0 {
        format!("{whole}%")
    } else {
        let f = format!("{frac:04}");
        format!("{whole}.{}%", f.trim_end_matches('0'))
    }
}

fn duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s ({secs} s)")
    } else if m > 0 {
        format!("{m}m {s:02}s ({secs} s)")
    } else {
        format!("{secs} s")
    }
}

/// The banner's big word and the one line under it that says what it means.
fn banner_words(b: &CertificateBody) -> (String, String) {
    use crate::model::ResultStatus as S;
    let requested = b
        .method
        .requested_level
        .map_or("a higher level".to_owned(), |r| r.to_string());
    match b.result.status {
        S::Pass if b.verification.method == VerificationMethod::ControllerConfirmed => (
            "PASS".into(),
            "completed cycle attested by the degausser controller; the medium cannot be read back"
                .into(),
        ),
        S::Pass => (
            "PASS".into(),
            format!("{} reached and verified", b.method.category),
        ),
        S::ClearOnly => (
            "CLEAR ONLY".into(),
            format!("{requested} was requested: only a verified Clear was reached"),
        ),
        S::Unverified => (
            "UNVERIFIED".into(),
            "verification was not performed: this is not a certificate of sanitization".into(),
        ),
        S::Fail => (
            "FAILED".into(),
            "data may still be readable: not sanitized".into(),
        ),
        S::Incomplete => (
            "INCOMPLETE".into(),
            "the job did not finish: not sanitized".into(),
        ),
        S::NotStarted => (
            "NOT STARTED".into(),
            "nothing was written to this device: not sanitized".into(),
        ),
    }
}

fn banner(l: &mut Layout, b: &CertificateBody) {
    let h = 72.0;
    let top = l.y + 4.0;
    let colour = super::status_colour(b.result.status);
    l.ops().push(Op::Rect {
        x: LEFT,
        y: top - h,
        w: RIGHT - LEFT,
        h,
        colour,
    });
    let (word, meaning) = banner_words(b);
    let word_size = if word.len() > 6 { 22.0 } else { 28.0 };
    let word_w = width(Font::Bold, &word, word_size);
    l.text_at(LEFT + 14.0, top - 42.0, Font::Bold, word_size, WHITE, word);
    let x = LEFT + 14.0 + word_w + 18.0;
    let max = RIGHT - x - 10.0;
    let line1 = format!(
        "{} \u{b7} {} \u{b7} {} pass{}",
        b.method.category,
        b.method.technique,
        b.method.passes,
        if b.method.passes == 1 { "" } else { "es" }
    );
    let verified = match b.verification.method {
        // A job that never started did nothing that could have been checked.
        _ if b.result.status == crate::model::ResultStatus::NotStarted => {
            "nothing was done".to_owned()
        }
        _ if b.verification.result == VerificationResult::NotPerformed => "not verified".to_owned(),
        VerificationMethod::None => "not verified".to_owned(),
        VerificationMethod::ControllerConfirmed => {
            format!("attested by the controller ({})", b.verification.result)
        }
        m => format!("verified: {m} ({})", b.verification.result),
    };
    let line2 = format!("{} {} \u{b7} {}", b.device.model, b.device.serial, verified);
    for (i, (text, font)) in [
        (line1, Font::Bold),
        (line2, Font::Regular),
        (meaning, Font::Regular),
    ]
    .into_iter()
    .enumerate()
    {
        // Shrink to fit one line; the full values are in the sections below.
        let size = [10.5, 9.5, 8.5, 7.5]
            .into_iter()
            .find(|&s| width(font, &text, s) <= max)
            .unwrap_or(7.5);
        if let Some(first) = wrap(&text, font, size, max).into_iter().next() {
            l.text_at(x, top - 20.0 - 15.0 * i as f32, font, size, WHITE, first);
        }
    }
    l.y = top - h - 10.0;
}

fn health_section(l: &mut Layout, h: &DriveHealth) {
    l.heading("Drive health (read before sanitization)");
    l.row("Assessment", &h.assessment.to_string());
    l.row("Source", &h.source.to_string());
    let n = |v: Option<u64>| v.map_or("not reported".to_owned(), grouped);
    let p =
        |v: Option<u32>, unit: &str| v.map_or("not reported".to_owned(), |v| format!("{v}{unit}"));
    l.row("Power-on hours", &n(h.power_on_hours));
    l.row("Power cycles", &n(h.power_cycles));
    l.row("Reallocated sectors", &n(h.reallocated_sectors));
    l.row("Pending sectors", &n(h.pending_sectors));
    l.row("Uncorrectable errors", &n(h.uncorrectable_errors));
    l.row("Endurance used", &p(h.percentage_used, "%"));
    l.row("Available spare", &p(h.available_spare_percent, "%"));
    l.row("Temperature", &p(h.temperature_celsius, " \u{b0}C"));
    for (i, note) in h.notes.iter().enumerate() {
        l.row(if i == 0 { "Notes" } else { "" }, note);
    }
}

/// Lay out the whole document.
pub fn build(cert: &SignedCertificate) -> Vec<Vec<Op>> {
    let b = cert.body();
    let title = b.result.status.document_title();
    let short = if b.result.status.is_certificate() {
        "certificate"
    } else {
        "report"
    };
    let mut l = Layout::new(&b.id, &title, short);
    let title_size = if b.result.status.is_certificate() {
        22.0
    } else {
        19.0
    };
    l.text_at(
        LEFT,
        l.y - 14.0,
        Font::Bold,
        title_size,
        BLACK,
        title.clone(),
    );
    l.y -= 32.0;
    let sub = format!(
        "{} {} \u{b7} issued {} \u{b7} NIST SP 800-88 / IEEE 2883 record \u{b7} format {}",
        if b.result.status.is_certificate() {
            "Certificate"
        } else {
            "Report"
        },
        b.id,
        b.issued_at,
        b.format
    );
    l.paragraph(&sub, Font::Regular, 8.5);
    l.y -= 6.0;
    banner(&mut l, b);

    l.heading("Device");
    l.row(
        "Manufacturer",
        b.device
            .manufacturer
            .as_deref()
            .map_or("not reported", or_none),
    );
    l.row("Model", or_none(&b.device.model));
    l.row("Serial number", or_none(&b.device.serial));
    l.row("WWN", or_none(&b.device.wwn));
    l.row("Firmware", or_none(&b.device.firmware));
    l.row("Capacity", &bytes_human(b.device.capacity_bytes));
    l.row(
        "Sector size",
        &format!(
            "{} B logical / {} B physical",
            b.device.logical_sector_size, b.device.physical_sector_size
        ),
    );
    l.row("Media type", &b.device.media_type.to_string());
    l.row("Transport", or_none(&b.device.transport));
    l.row("Device path", or_none(&b.device.path));
    l.row("Stable id", or_none(&b.device.stable_id));
    l.row("Hidden areas (HPA/DCO)", opt(&b.device.hidden_areas));
    if let Some(h) = &b.device.health {
        health_section(&mut l, h);
    }

    l.heading("Method");
    l.row("Category (NIST 800-88)", &b.method.category.to_string());
    l.row("Technique", &b.method.technique);
    l.row("Pattern", &b.method.pattern);
    l.row("Passes", &b.method.passes.to_string());
    l.row(
        "Final blanking pass",
        if b.method.final_blank { "yes" } else { "no" },
    );
    l.row("Standard", &b.method.standard);
    if let Some(r) = b.method.requested_level {
        l.row("Requested level", &r.to_string());
    }
    l.row("Reason", &b.method.reason);
    if let Some(c) = &b.method.drive_command {
        l.row("Drive command", &c.name);
        l.row("Completion status", or_none(&c.completion_status));
        if let Some(ns) = &c.erased_namespaces {
            l.row("Namespaces erased", &ns.join(", "));
        }
        for (i, line) in c.commands.iter().enumerate() {
            l.row(if i == 0 { "Command log" } else { "" }, line);
        }
    }
    l.row("Tool", &format!("{} {}", b.tool.name, b.tool.version));

    l.heading("Verification");
    let v = &b.verification;
    l.row("Method", &v.method.to_string());
    l.row(
        "Coverage",
        &format!(
            "{} of the device ({} ppm)",
            ppm_percent(v.coverage_ppm),
            v.coverage_ppm
        ),
    );
    l.row("Bytes verified", &bytes_human(v.bytes_verified));
    l.row("Sample seed", opt(&v.sample_seed));
    if let Some(d) = &v.detail {
        l.row("Read-back", d);
    }
    l.row("Result", &v.result.to_string());
    if let Some(a) = &v.attestation {
        l.row("Attested by", &a.attested_by);
        for (i, f) in a.verified.iter().enumerate() {
            l.row(if i == 0 { "Checked by Lethe" } else { "" }, f);
        }
        for (i, f) in a.attested.iter().enumerate() {
            l.row(
                if i == 0 {
                    "Only attested (not checkable)"
                } else {
                    ""
                },
                f,
            );
        }
    } else if v.method == VerificationMethod::ControllerConfirmed {
        l.row(
            "Attestation",
            "the completed cycle is reported by the degausser controller; Lethe cannot read the medium back",
        );
    }

    l.heading("Operator & timing");
    l.row(
        "Operator",
        &format!("{} (id {})", b.operator.name, b.operator.id),
    );
    l.row("Started", &b.timing.started_at);
    l.row("Ended", &b.timing.ended_at);
    l.row("Duration", &duration(b.timing.duration_seconds));
    l.row(
        "Appliance",
        &format!("{} (id {})", b.appliance.hostname, b.appliance.id),
    );
    l.row("Location", opt(&b.appliance.location));

    l.heading("Customer & asset");
    l.row("Customer", opt(&b.customer));
    l.row("Asset tag", opt(&b.asset_tag));
    l.row("Media source", opt(&b.media_source));
    let dest = b.destination.map(|d| d.to_string());
    l.row("Destination", opt(&dest));

    l.heading("Result");
    l.row("Status", &b.result.status.to_string());
    l.row("Bytes written", &bytes_human(b.result.bytes_written));
    let failed = &b.result.failed_ranges;
    let total: u64 = failed.iter().fold(0u64, |a, r| a.saturating_add(r.length));
    l.row(
        "Failed ranges",
        &if failed.is_empty() {
            "none".to_owned()
        } else {
            format!("{} range(s), {} in total", failed.len(), bytes_human(total))
        },
    );
    for (i, r) in failed.iter().enumerate() {
        let end = r.offset.saturating_add(r.length);
        l.mono_row(
            &format!("  #{}", i + 1),
            &format!(
                "offset {} (0x{:x}) .. 0x{:x}, length {}",
                r.offset, r.offset, end, r.length
            ),
        );
    }
    for m in &b.result.messages {
        l.row("Message", m);
    }

    l.heading("Events");
    if b.events.is_empty() {
        l.row("", "none recorded");
    }
    for e in &b.events {
        let text = if e.detail.is_empty() {
            e.kind.clone()
        } else {
            format!("{} \u{2014} {}", e.kind, e.detail)
        };
        l.row(&e.at, &text);
    }

    l.heading("Signature");
    let s = cert.signature();
    l.row(
        "Algorithm",
        "Ed25519 (signing input: \"lethe-certificate-v1\\n\" + canonical JSON of the certificate)",
    );
    l.mono_row("Key id", &s.key_id);
    l.mono_row("Public key", &s.public_key);
    l.mono_row("Signature", &s.value);
    l.mono_row(&format!("SHA-256 of {}.json", b.id), &cert.file_sha256());
    l.mono_row("SHA-256 of signed body", &cert.body_sha256());
    l.y -= 6.0;
    l.paragraph(
        &format!(
            "Check offline: lethe cert verify {} --key appliance.pub (an id or the file {}.json)",
            b.id, b.id
        ),
        Font::Bold,
        10.0,
    );
    l.paragraph(
        "This PDF is a rendering. The signed JSON file is the authoritative record: any change to it makes verification fail.",
        Font::Regular,
        8.5,
    );

    // Hand signatures (NIST SP 800-88 Appendix G).
    l.ensure(70.0);
    l.y -= 30.0;
    for (x, label) in [
        (LEFT, "Sanitized by (signature)"),
        (LEFT + 255.0, "Verified by (signature, date)"),
    ] {
        let y = l.y;
        l.ops().push(Op::Line {
            x1: x,
            y1: y,
            x2: x + 235.0,
            y2: y,
            width: 0.6,
            colour: BLACK,
        });
        l.text_at(x, l.y - 11.0, Font::Regular, 8.0, GREY, label.to_owned());
    }
    l.y -= 20.0;
    l.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formatting() {
        assert_eq!(grouped(268_439_552), "268,439,552");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(ppm_percent(1_000_000), "100%");
        assert_eq!(ppm_percent(125_000), "12.5%");
        assert_eq!(ppm_percent(1), "0.0001%");
        assert_eq!(duration(3723), "1h 02m 03s (3723 s)");
        assert_eq!(duration(59), "59 s");
        assert_eq!(bytes_human(512), "512 bytes");
        assert_eq!(bytes_human(268_435_456), "268,435,456 bytes (256.0 MiB)");
    }
}
