//! The "verify without Lethe" script printed in docs/certificate.md §8, taken
//! from the document itself, must agree with Lethe's own verification on
//! genuine certificates of every kind and on tampered or forged files.

mod common;

use common::{envelope, failed_body, sign_raw, sign_raw_with, vector_body, vector_seed};
use lethe_cert::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn doc_script() -> String {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/certificate.md"),
    )
    .expect("docs/certificate.md");
    let start = doc
        .find("```python\n")
        .expect("docs/certificate.md has a python block")
        + "```python\n".len();
    let len = doc[start..].find("\n```").expect("the python block ends");
    doc[start..start + len + 1].to_owned()
}

fn key() -> ApplianceKey {
    ApplianceKey::from_seed(&vector_seed())
}

fn genuine() -> Vec<(String, Vec<u8>)> {
    let k = key();
    let mut bodies: Vec<(&str, CertificateBody)> = vec![
        ("vector", vector_body()),
        ("failed", failed_body(3)),
        ("failed-many", failed_body(40)),
    ];
    let variant = |name: &'static str, f: &dyn Fn(&mut CertificateBody)| {
        let mut b = vector_body();
        b.id = format!("job-{name}");
        f(&mut b);
        (name, b)
    };
    bodies.push(variant("clear-only", &|b| {
        b.method.requested_level = Some(Category::Purge);
        b.result.status = ResultStatus::ClearOnly;
    }));
    bodies.push(variant("unverified", &|b| {
        b.result.status = ResultStatus::Unverified;
        b.verification.method = VerificationMethod::None;
        b.verification.result = VerificationResult::NotPerformed;
    }));
    bodies.push(variant("incomplete", &|b| {
        b.result.status = ResultStatus::Incomplete;
        b.verification.result = VerificationResult::NotPerformed;
    }));
    bodies.push(variant("not-started", &|b| {
        b.result.status = ResultStatus::NotStarted;
        b.result.bytes_written = 0;
        b.verification.result = VerificationResult::NotPerformed;
    }));
    bodies.push(variant("fail", &|b| {
        b.result.status = ResultStatus::Fail;
        b.verification.result = VerificationResult::Fail;
    }));
    for (name, source) in [
        ("health-ata", HealthSource::AtaSmart),
        ("health-nvme", HealthSource::NvmeSmartLog),
        ("health-scsi", HealthSource::ScsiLogPages),
    ] {
        bodies.push(variant(name, &|b| {
            let mut h = DriveHealth::empty(source);
            h.power_on_hours = Some(u64::MAX);
            h.percentage_used = Some(104);
            h.notes = vec!["Ωmega note".into()];
            b.device.health = Some(h);
        }));
    }
    bodies.push(variant("degauss", &|b| {
        b.method.category = Category::Destroy;
        b.method.technique = "degauss".into();
        b.verification = Verification {
            method: VerificationMethod::ControllerConfirmed,
            result: VerificationResult::Pass,
            attestation: Some(Attestation {
                attested_by: "controller".into(),
                verified: vec!["magnetic".into()],
                attested: vec!["relay 2000 ms".into()],
            }),
            ..Verification::default()
        };
    }));
    bodies.push(variant("purge", &|b| {
        b.method.category = Category::Purge;
        b.method.requested_level = Some(Category::Purge);
        b.method.drive_command = Some(DriveCommand {
            name: "NvmeFormat(UserData)".into(),
            completion_status: "status 0x0000".into(),
            commands: vec!["Format NVM: ok".into()],
            erased_namespaces: Some(vec!["nvme0n2 (NSID 2)".into()]),
        });
        b.verification.method = VerificationMethod::Sample;
        b.verification.sample_seed = Some("00ff00ff00ff00ff".into());
        b.verification.detail = Some("canaries".into());
    }));
    bodies.push(variant("scripts", &|b| {
        b.operator.name = "山田太郎 / Ελένη / Анна / Müller / \u{1F600}".into();
        b.customer = Some("tab\there \"quoted\" back\\slash \u{7f} \u{1}".into());
    }));
    bodies.push(variant("big-integers", &|b| {
        // Beyond 2^53: exact in canonical JSON, unlike RFC 8785 numbers.
        b.device.capacity_bytes = u64::MAX;
        b.result.bytes_written = (1 << 53) + 1;
    }));
    bodies.push(variant("fraction-times", &|b| {
        b.issued_at = "2024-02-29T23:59:60.123456Z".into();
    }));
    bodies.push(variant("empty-strings", &|b| {
        b.device.model.clear();
        b.customer = Some(String::new());
        b.events.clear();
    }));
    bodies.push(variant("many-events", &|b| {
        b.events = (0..50)
            .map(|i| Event {
                at: "2026-11-23T14:00:00Z".into(),
                kind: "resumed".into(),
                detail: format!("{i}"),
            })
            .collect();
    }));
    bodies
        .into_iter()
        .map(|(name, b)| (name.to_owned(), sign(&b, &k).unwrap().to_bytes()))
        .collect()
}

fn tampered() -> Vec<(String, Vec<u8>)> {
    let original = sign(&vector_body(), &key()).unwrap().to_bytes();
    let text = String::from_utf8(original.clone()).unwrap();
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    // Single byte flips spread over the whole file.
    for i in 0..30 {
        let pos = i * (original.len() - 1) / 29;
        let mut b = original.clone();
        b[pos] ^= 0x01;
        out.push((format!("flip-{pos}"), b));
    }
    for cut in [1, original.len() / 2, original.len() - 1] {
        out.push((format!("cut-{cut}"), original[..cut].to_vec()));
    }
    let mut extra = original.clone();
    extra.push(b' ');
    out.push(("trailing-space".into(), extra));
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend_from_slice(&original);
    out.push(("byte-order-mark".into(), bom));
    out.push(("crlf".into(), text.replace('\n', "\r\n").into_bytes()));
    let value: serde_json::Value = serde_json::from_slice(&original).unwrap();
    let mut pretty = serde_json::to_vec_pretty(&value).unwrap();
    pretty.push(b'\n');
    out.push(("pretty".into(), pretty));
    out.push((
        "duplicate-key".into(),
        text.replacen(
            r#""asset_tag":"AT-0042","#,
            r#""asset_tag":"X","asset_tag":"AT-0042","#,
            1,
        )
        .into_bytes(),
    ));
    out.push((
        "float".into(),
        text.replacen(r#""passes":1,"#, r#""passes":1.0,"#, 1)
            .into_bytes(),
    ));
    // Valid signature, but by another key than the trusted one.
    let body = serde_json::to_value(vector_body()).unwrap();
    out.push(("other-key".into(), sign_raw_with(&body, &[9u8; 32])));
    // Signed "correctly" but breaking a rule of the format.
    let raw = |name: &str, f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = body.clone();
        f(&mut v);
        (format!("rule-{name}"), sign_raw(&v))
    };
    out.push(raw("feb-30", &|v| {
        v["issued_at"] = "2026-02-30T10:00:00Z".into()
    }));
    out.push(raw("hour-24", &|v| {
        v["timing"]["ended_at"] = "2026-11-23T24:00:00Z".into()
    }));
    out.push(raw("no-z", &|v| {
        v["events"][0]["at"] = "2026-11-23T13:50:00+00:00".into()
    }));
    out.push(raw("seed-upper", &|v| {
        v["verification"]["method"] = "sample".into();
        v["verification"]["sample_seed"] = "ABCD".into();
    }));
    out.push(raw("seed-without-sample", &|v| {
        v["verification"]["sample_seed"] = "00".into()
    }));
    out.push(raw("coverage", &|v| {
        v["verification"]["coverage_ppm"] = 1_000_001.into()
    }));
    out.push(raw("pass-unverified", &|v| {
        v["verification"]["result"] = "not_performed".into()
    }));
    out.push(raw("pass-lower-level", &|v| {
        v["method"]["requested_level"] = "purge".into()
    }));
    out.push(raw("clear-only-nothing-requested", &|v| {
        v["result"]["status"] = "clear_only".into()
    }));
    out.push(raw("unverified-but-verified", &|v| {
        v["result"]["status"] = "unverified".into()
    }));
    out.push(raw("not-started-but-written", &|v| {
        v["result"]["status"] = "not_started".into()
    }));
    out.push(raw("result-without-method", &|v| {
        v["verification"]["method"] = "none".into()
    }));
    out.push(raw("unknown-field", &|v| {
        v["device"]["colour"] = "red".into()
    }));
    out.push(raw("missing-field", &|v| {
        v["device"].as_object_mut().unwrap().remove("wwn");
    }));
    out.push(raw("null-optional-left-out-field", &|v| {
        v["method"]["requested_level"] = serde_json::Value::Null
    }));
    out.push(raw("bad-enum", &|v| v["destination"] = "landfill".into()));
    out.push(raw("negative", &|v| v["method"]["passes"] = (-1).into()));
    out.push(raw("u32-overflow", &|v| {
        v["method"]["passes"] = (1u64 << 32).into()
    }));
    out.push(raw("string-for-int", &|v| {
        v["method"]["passes"] = "1".into()
    }));
    out.push(raw("bad-id", &|v| v["id"] = "../etc/passwd".into()));
    out.push(raw("format", &|v| {
        v["format"] = "lethe-certificate/2".into()
    }));
    // S + L: the same signature with a non-reduced scalar.
    let sig_b64 = value["signature"]["value"].as_str().unwrap();
    use base64::Engine;
    let mut sig = base64::engine::general_purpose::STANDARD
        .decode(sig_b64)
        .unwrap();
    let l: [u8; 32] = {
        let mut l = [0u8; 32];
        hex::decode_to_slice(
            "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010",
            &mut l,
        )
        .unwrap();
        l
    };
    let mut carry = 0u16;
    for i in 0..32 {
        let s = u16::from(sig[32 + i]) + u16::from(l[i]) + carry;
        sig[32 + i] = s as u8;
        carry = s >> 8;
    }
    out.push((
        "s-plus-l".into(),
        envelope(
            &body,
            value["signature"]["public_key"].as_str().unwrap(),
            &sig,
        ),
    ));
    // Non-canonical base64: the unused bits of the last character set.
    let last = sig_b64.len() - 3;
    let mut nb = sig_b64.to_owned();
    let c = nb.as_bytes()[last];
    nb.replace_range(
        last..=last,
        &char::from(if c == b'Q' { b'R' } else { c ^ 1 }).to_string(),
    );
    out.push((
        "base64-bits".into(),
        text.replace(sig_b64, &nb).into_bytes(),
    ));
    out
}

/// The identity point as public key and R, S = 0: the cofactorless equation
/// holds for any message, so only the small-order rule stops it.
fn small_order_forgery() -> (Vec<u8>, String) {
    let identity = format!("01{}", "00".repeat(31));
    let mut sig = vec![0u8; 64];
    sig[0] = 1;
    let body = serde_json::to_value(vector_body()).unwrap();
    (envelope(&body, &identity, &sig), identity)
}

fn run_script(script: &Path, trusted: &Path, files: &[PathBuf]) -> Vec<bool> {
    let out = Command::new("python3")
        .arg(script)
        .arg(trusted)
        .args(files)
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        files.len(),
        "one line per file:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.status.success(),
        lines.iter().all(|l| l.starts_with("VALID "))
    );
    lines.iter().map(|l| l.starts_with("VALID ")).collect()
}

/// safeguard: 164.312(c)(1), 164.310(d)(2)(iii)
#[test]
fn the_documented_script_agrees_with_lethe() {
    let script_text = doc_script();
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/verify_cert.py"),
    )
    .unwrap();
    assert_eq!(
        script_text, shipped,
        "tests/vectors/verify_cert.py differs from the document"
    );
    assert!(
        !script_text.contains("assert"),
        "the script must not rely on assert (python -O drops it)"
    );

    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("verify_cert.py");
    std::fs::write(&script, &script_text).unwrap();
    let trusted = tmp.path().join("appliance.pub");
    std::fs::write(&trusted, format!("{}\n", key().public_key_hex())).unwrap();

    let genuine = genuine();
    let tampered = tampered();
    assert!(
        genuine.len() >= 18 && tampered.len() >= 62,
        "{} / {}",
        genuine.len(),
        tampered.len()
    );
    let mut files = Vec::new();
    let mut lethe = Vec::new();
    for (i, (name, bytes)) in genuine.iter().chain(&tampered).enumerate() {
        let p = tmp.path().join(format!("{i:03}-{name}.json"));
        std::fs::write(&p, bytes).unwrap();
        files.push(p);
        lethe.push(verify(bytes, Some(&key().verifying_key())).is_ok());
    }
    let python = run_script(&script, &trusted, &files);
    for (i, name) in genuine.iter().chain(&tampered).map(|(n, _)| n).enumerate() {
        let want = i < genuine.len();
        assert_eq!(lethe[i], want, "lethe on {name}");
        assert_eq!(python[i], want, "the documented script on {name}");
    }

    // The small-order forgery, with its own key trusted by both.
    let (forged, identity) = small_order_forgery();
    let p = tmp.path().join("forged.json");
    std::fs::write(&p, &forged).unwrap();
    let pinned = tmp.path().join("identity.pub");
    std::fs::write(&pinned, &identity).unwrap();
    assert_eq!(run_script(&script, &pinned, &[p]), vec![false]);
    let id_key = load_public_key(&identity).unwrap();
    assert!(verify(&forged, Some(&id_key)).is_err());
}
