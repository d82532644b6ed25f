//! Sign/verify round trips and the strictness of verification.

mod common;

use common::{failed_body, sign_raw, vector_body, vector_seed};
use lethe_cert::*;
use proptest::prelude::*;

fn key() -> ApplianceKey {
    ApplianceKey::from_seed(&vector_seed())
}

fn signed_file() -> Vec<u8> {
    sign(&vector_body(), &key()).unwrap().to_bytes()
}

#[test]
fn round_trip() {
    let k = key();
    for body in [vector_body(), failed_body(3)] {
        let signed = sign(&body, &k).unwrap();
        let bytes = signed.to_bytes();
        assert_eq!(bytes.last(), Some(&b'\n'));
        assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 1);
        let v = verify(&bytes, Some(&k.verifying_key())).unwrap();
        assert_eq!(v.body(), &body);
        assert_eq!(v.key_id(), k.key_id());
        assert_eq!(v.signed(), &signed);
        let s = v.summary();
        assert!(s.starts_with(&format!("VALID  cert {} \u{b7} {} \u{b7} Clear/overwrite \u{b7} QEMU HARDDISK QM00001 \u{b7} 268439552 bytes", body.id, body.result.status.as_str())), "{s}");
        assert!(s.ends_with(&format!("signed by key {}", k.key_id())), "{s}");
    }
}

#[test]
fn signatures_are_deterministic_and_depend_on_content() {
    let k = key();
    let a = sign(&vector_body(), &k).unwrap();
    assert_eq!(a, sign(&vector_body(), &k).unwrap());
    let mut other = vector_body();
    other.device.serial.push('X');
    assert_ne!(
        a.signature().value,
        sign(&other, &k).unwrap().signature().value
    );
}

/// Every single-byte change anywhere in a real file makes verification fail.
/// safeguard: 164.312(c)(1), 164.310(d)(2)(iii)
#[test]
fn every_single_byte_change_fails() {
    let file = signed_file();
    let mut tried = 0;
    for pos in 0..file.len() {
        let orig = file[pos];
        let mut replacements = vec![
            orig ^ 0x20,
            orig ^ 0x01,
            orig ^ 0x80,
            if orig == b'x' { b'y' } else { b'x' },
        ];
        replacements.push(if orig == b'0' { b'1' } else { b'0' });
        replacements.push(if orig == b' ' { b'!' } else { b' ' });
        for r in replacements {
            let mut m = file.clone();
            m[pos] = r;
            let res = verify(&m, None);
            assert!(
                res.is_err(),
                "changing byte {pos} from {orig:#x} to {r:#x} still verified"
            );
            tried += 1;
        }
    }
    assert!(file.len() > 1500, "file unexpectedly small: {}", file.len());
    assert_eq!(tried, 6 * file.len());
}

/// safeguard: 164.312(c)(1)
#[test]
fn every_deletion_and_insertion_fails() {
    let file = signed_file();
    for pos in 0..file.len() {
        let mut del = file.clone();
        del.remove(pos);
        assert!(
            verify(&del, None).is_err(),
            "deleting byte {pos} still verified"
        );
        for ins in [b' ', b'\n', b'0'] {
            let mut m = file.clone();
            m.insert(pos, ins);
            assert!(
                verify(&m, None).is_err(),
                "inserting {ins:#x} at {pos} still verified"
            );
        }
    }
    let mut extra = file.clone();
    extra.push(b'\n');
    assert!(matches!(
        verify(&extra, None),
        Err(VerifyError::NotCanonical(_))
    ));
}

#[test]
fn truncation_at_every_length_is_reported_as_truncated() {
    let file = signed_file();
    for len in 0..file.len() {
        match verify(&file[..len], None) {
            Err(VerifyError::Truncated(msg)) => {
                assert!(VerifyError::Truncated(msg)
                    .to_string()
                    .contains("truncated"))
            }
            other => panic!("length {len}: expected Truncated, got {other:?}"),
        }
    }
}

/// safeguard: 164.312(c)(1), 164.310(d)(2)(iii)
#[test]
fn wrong_key_is_reported_with_both_ids() {
    let mine = key();
    let other = ApplianceKey::from_seed(&[0x55; 32]);
    let forged = sign(&vector_body(), &other).unwrap().to_bytes();
    // Self-consistent, so it verifies without an expected key...
    assert!(verify(&forged, None).is_ok());
    // ...and is refused when the appliance key is given.
    let err = verify(&forged, Some(&mine.verifying_key())).unwrap_err();
    assert_eq!(
        err,
        VerifyError::WrongKey {
            expected: mine.key_id().into(),
            found: other.key_id().into()
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "signed by another key: expected key_id {}, found {}",
            mine.key_id(),
            other.key_id()
        )
    );
}

#[test]
fn not_a_certificate() {
    let backup_config =
        br#"{"version":1,"sources":["/home"],"repository":"/mnt/backup","retention":{"daily":7}}"#;
    let cases: [(&[u8], &str); 6] = [
        (br#"{"a":1}"#, "unknown field `a`"),
        (b"[]", "not an object"),
        (b"42", "not an object"),
        (
            backup_config,
            "unknown field `repository`, expected one of `certificate`, `signature`, `audit`",
        ),
        (br#"{"certificate":{}}"#, "missing field `signature`"),
        (
            br#"{"certificate":{"format":"lethe-certificate/1"},"signature":{}}"#,
            "missing field",
        ),
    ];
    for (input, needle) in cases {
        match verify(input, None) {
            Err(e @ VerifyError::NotACertificate(_)) => {
                assert!(e.to_string().contains(needle), "{e} lacks {needle:?}")
            }
            other => panic!("{}: {other:?}", String::from_utf8_lossy(input)),
        }
    }
    // A missing body field is named.
    let file = String::from_utf8(signed_file()).unwrap();
    let no_serial = file.replace(r#""serial":"QM00001","#, "");
    let e = verify(no_serial.as_bytes(), None).unwrap_err();
    assert!(
        matches!(&e, VerifyError::NotACertificate(m) if m.contains("missing field `serial`")),
        "{e}"
    );
    let unknown = file.replace(
        r#""serial":"QM00001","#,
        r#""serial":"QM00001","colour":"red","#,
    );
    let e = verify(unknown.as_bytes(), None).unwrap_err();
    assert!(
        matches!(&e, VerifyError::NotACertificate(m) if m.contains("unknown field `colour`")),
        "{e}"
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(
        verify(deep.as_bytes(), None),
        Err(VerifyError::NotJson(_))
    ));
    let open_only = "{\"a\":".repeat(50_000);
    assert!(verify(open_only.as_bytes(), None).is_err());
}

#[test]
fn not_json() {
    for input in [
        &b"hello"[..],
        b"\x00\x01\x02",
        b"{certificate}",
        b"%PDF-1.7",
    ] {
        assert!(
            matches!(verify(input, None), Err(VerifyError::NotJson(_))),
            "{input:?}"
        );
    }
}

#[test]
fn unsupported_format_and_algorithm() {
    let file = String::from_utf8(signed_file()).unwrap();
    let v2 = file.replace("lethe-certificate/1", "lethe-certificate/2");
    let e = verify(v2.as_bytes(), None).unwrap_err();
    assert!(
        matches!(&e, VerifyError::UnsupportedFormat(m) if m.contains("lethe-certificate/2")),
        "{e}"
    );
    let alg = file.replace(r#""algorithm":"ed25519""#, r#""algorithm":"rsa""#);
    assert!(matches!(
        verify(alg.as_bytes(), None),
        Err(VerifyError::UnsupportedFormat(_))
    ));
}

#[test]
fn reformatted_files_are_not_canonical() {
    let file = signed_file();
    let value: serde_json::Value = serde_json::from_slice(&file).unwrap();
    let mut pretty = serde_json::to_vec_pretty(&value).unwrap();
    pretty.push(b'\n');
    let e = verify(&pretty, None).unwrap_err();
    assert!(matches!(e, VerifyError::NotCanonical(_)));
    assert!(
        e.to_string()
            .contains("the file was modified or re-formatted"),
        "{e}"
    );

    let text = String::from_utf8(file).unwrap();
    // Duplicate key (serde_json alone would keep the last one).
    let dup = text.replace(
        r#""asset_tag":"AT-0042","#,
        r#""asset_tag":"AT-9999","asset_tag":"AT-0042","#,
    );
    assert!(
        matches!(verify(dup.as_bytes(), None), Err(VerifyError::NotCanonical(m)) if m.contains("duplicate key"))
    );
    // Float where an integer belongs.
    let float = text.replace(r#""passes":1,"#, r#""passes":1.0,"#);
    assert!(
        matches!(verify(float.as_bytes(), None), Err(VerifyError::NotCanonical(m)) if m.contains("not an integer"))
    );
    // An omitted null field, escaped character, reordered keys.
    let omitted = text.replace(r#""media_source":null,"#, "");
    assert!(matches!(
        verify(omitted.as_bytes(), None),
        Err(VerifyError::NotCanonical(_))
    ));
    let escaped = text.replace("QM00001", r"QM0000\u0031");
    assert!(matches!(
        verify(escaped.as_bytes(), None),
        Err(VerifyError::NotCanonical(_))
    ));
    let reordered = text.replace(
        r#""name":"lethe","version":"0.1.0""#,
        r#""version":"0.1.0","name":"lethe""#,
    );
    assert_ne!(reordered, text);
    assert!(matches!(
        verify(reordered.as_bytes(), None),
        Err(VerifyError::NotCanonical(_))
    ));
    let crlf = text.replace('\n', "\r\n");
    assert!(matches!(
        verify(crlf.as_bytes(), None),
        Err(VerifyError::NotCanonical(_))
    ));
}

#[test]
fn damaged_signature_block() {
    let signed = sign(&vector_body(), &key()).unwrap();
    let text = String::from_utf8(signed.to_bytes()).unwrap();
    let sig = signed.signature();
    let upper = text.replace(&sig.public_key, &sig.public_key.to_uppercase());
    assert!(
        matches!(verify(upper.as_bytes(), None), Err(VerifyError::BadEncoding(m)) if m.contains("lowercase hex"))
    );
    let bad_id = text.replace(&sig.key_id, "0000000000000000");
    assert!(
        matches!(verify(bad_id.as_bytes(), None), Err(VerifyError::BadEncoding(m)) if m.contains("key_id"))
    );
    // Same 64 bytes but non-canonical trailing bits in the last symbol ("CQ==" -> "CR==").
    assert!(sig.value.ends_with("Q=="));
    let mut tweaked = sig.value.clone();
    tweaked.replace_range(85..86, "R");
    let nc = text.replace(&sig.value, &tweaked);
    assert!(
        matches!(verify(nc.as_bytes(), None), Err(VerifyError::BadEncoding(m)) if m.contains("base64"))
    );
    let short = text.replace(&sig.value, "AAAA");
    assert!(
        matches!(verify(short.as_bytes(), None), Err(VerifyError::BadEncoding(m)) if m.contains("64"))
    );
}

/// safeguard: 164.312(c)(1)
#[test]
fn altered_content_is_a_bad_signature() {
    let text = String::from_utf8(signed_file()).unwrap();
    for (from, to) in [
        ("QM00001", "QM00002"),
        (r#""status":"pass""#, r#""status":"fail""#),
        ("268439552", "268439553"),
    ] {
        let m = text.replacen(from, to, 1);
        assert_eq!(
            verify(m.as_bytes(), None),
            Err(VerifyError::BadSignature),
            "{from} -> {to}"
        );
    }
    assert!(VerifyError::BadSignature
        .to_string()
        .contains("INVALID signature"));
}

#[test]
fn sign_refuses_invalid_bodies() {
    let k = key();
    let mut b = vector_body();
    b.id = "../../etc/passwd".into();
    assert!(matches!(sign(&b, &k), Err(CertError::InvalidBody(_))));
    let mut b = vector_body();
    b.issued_at = "yesterday".into();
    assert!(sign(&b, &k).unwrap_err().to_string().contains("issued_at"));
    let mut b = vector_body();
    b.format = "other".into();
    assert!(sign(&b, &k).is_err());
    let mut b = vector_body();
    b.verification.sample_seed = Some("ABCD".into());
    assert!(sign(&b, &k).is_err());
}

#[test]
fn unicode_and_control_characters_round_trip() {
    let mut b = vector_body();
    b.operator.name = "Zoë Ødegård 日本 \u{1F600}".into();
    b.result.messages = vec!["tab\there\nnew line \u{7f} \u{1} \"q\" \\ /".into()];
    let signed = sign(&b, &key()).unwrap();
    assert_eq!(verify(&signed.to_bytes(), None).unwrap().body(), &b);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_or_verify(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        prop_assert!(verify(&bytes, None).is_err());
    }

    /// safeguard: 164.312(c)(1)
    #[test]
    fn random_multi_byte_damage_never_verifies(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)
    ) {
        let file = signed_file();
        let mut m = file.clone();
        for (i, b) in edits {
            let pos = i.index(m.len());
            m[pos] = b;
        }
        prop_assume!(m != file);
        prop_assert!(verify(&m, None).is_err());
    }

    #[test]
    fn any_valid_body_round_trips(serial in "\\PC{0,40}", model in ".{0,40}", cap in any::<u64>(), n in 0usize..20) {
        let mut b = failed_body(n);
        b.device.serial = serial;
        b.device.model = model;
        b.device.capacity_bytes = cap;
        let signed = sign(&b, &key()).unwrap();
        let v = verify(&signed.to_bytes(), None).unwrap();
        prop_assert_eq!(v.body(), &b);
    }
}

/// safeguard: rule:never-certify-unverified
#[test]
fn validly_signed_bodies_that_break_a_rule_are_refused() {
    let base = serde_json::to_value(vector_body()).unwrap();
    // The helper itself produces the genuine file for a genuine body.
    assert_eq!(sign_raw(&base), signed_file());
    type Change = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Change)> = vec![
        (
            "issued_at",
            Box::new(|v| v["issued_at"] = "2026-02-30T10:00:00Z".into()),
        ),
        (
            "timing.started_at",
            Box::new(|v| v["timing"]["started_at"] = "2026-11-23T24:00:00Z".into()),
        ),
        (
            "events[].at",
            Box::new(|v| v["events"][0]["at"] = "2026-11-23T13:60:00Z".into()),
        ),
        (
            "sample_seed",
            Box::new(|v| {
                v["verification"]["method"] = "sample".into();
                v["verification"]["sample_seed"] = "ABCD".into();
            }),
        ),
        (
            "sample_seed",
            Box::new(|v| v["verification"]["sample_seed"] = "00ff".into()),
        ),
        (
            "coverage_ppm",
            Box::new(|v| v["verification"]["coverage_ppm"] = 1_000_001.into()),
        ),
        (
            "a pass needs a passing verification",
            Box::new(|v| v["verification"]["result"] = "not_performed".into()),
        ),
        (
            "clear_only, not pass",
            Box::new(|v| v["method"]["requested_level"] = "purge".into()),
        ),
        (
            "clear_only means",
            Box::new(|v| v["result"]["status"] = "clear_only".into()),
        ),
        (
            "unverified, but",
            Box::new(|v| v["result"]["status"] = "unverified".into()),
        ),
        (
            "not_started, but",
            Box::new(|v| v["result"]["status"] = "not_started".into()),
        ),
        (
            "method is none",
            Box::new(|v| v["verification"]["method"] = "none".into()),
        ),
    ];
    for (want, change) in cases {
        let mut v = base.clone();
        change(&mut v);
        let e = verify(&sign_raw(&v), None).unwrap_err();
        assert!(
            matches!(&e, VerifyError::BreaksRule(m) if m.contains(want)),
            "{want}: {e}"
        );
    }
}

/// safeguard: rule:never-certify-unverified
#[test]
fn sign_lowers_a_status_the_evidence_does_not_support() {
    let k = key();
    type Change = Box<dyn Fn(&mut CertificateBody)>;
    let cases: Vec<(Change, ResultStatus)> = vec![
        (
            Box::new(|b| b.method.requested_level = Some(Category::Purge)),
            ResultStatus::ClearOnly,
        ),
        (
            Box::new(|b| {
                b.verification.method = VerificationMethod::None;
                b.verification.result = VerificationResult::NotPerformed;
            }),
            ResultStatus::Unverified,
        ),
        (
            Box::new(|b| b.verification.result = VerificationResult::Fail),
            ResultStatus::Fail,
        ),
        (
            Box::new(|b| {
                b.result.status = ResultStatus::NotStarted;
                b.verification.result = VerificationResult::NotPerformed;
            }),
            ResultStatus::Incomplete,
        ),
        (
            Box::new(|b| {
                b.result.status = ResultStatus::ClearOnly;
                b.verification.result = VerificationResult::NotPerformed;
            }),
            ResultStatus::Unverified,
        ),
    ];
    for (change, want) in cases {
        let mut b = vector_body();
        change(&mut b);
        let from = b.result.status;
        let signed = sign(&b, &k).unwrap();
        assert_eq!(signed.body().result.status, want);
        let note = signed.body().result.messages.last().unwrap();
        assert!(
            note.contains(&format!(
                "lowered from {} to {}",
                from.as_str(),
                want.as_str()
            )),
            "{note}"
        );
        let v = verify(signed.as_bytes(), Some(&k.verifying_key())).unwrap();
        assert_eq!(v.body().result.status, want);
    }
    // A contradiction that lowering cannot fix is refused outright.
    let mut b = vector_body();
    b.result.status = ResultStatus::ClearOnly;
    assert!(matches!(sign(&b, &k), Err(CertError::InvalidBody(m)) if m.contains("clear_only")));
}

#[test]
fn new_optional_fields_round_trip_and_are_left_out_when_absent() {
    let k = key();
    let mut b = vector_body();
    b.device.health = Some(DriveHealth::empty(HealthSource::NvmeSmartLog));
    b.verification.attestation = Some(Attestation {
        attested_by: "degausser controller".into(),
        verified: vec!["medium magnetic".into()],
        attested: vec!["relay 2000 ms".into()],
    });
    let signed = sign(&b, &k).unwrap();
    let v = verify(signed.as_bytes(), Some(&k.verifying_key())).unwrap();
    assert_eq!(v.body(), &b);
    let text = String::from_utf8(signed.to_bytes()).unwrap();
    assert!(
        text.contains(r#""health":{"assessment":"unknown","available_spare_percent":null"#),
        "{text}"
    );
    let plain = String::from_utf8(signed_file()).unwrap();
    assert!(!plain.contains("health") && !plain.contains("attestation"));
}

#[test]
fn an_audit_attachment_rides_outside_the_signature() {
    let k = key();
    let plain = sign(&vector_body(), &k).unwrap();
    let attachment = serde_json::json!({"index": 3, "leaf": "x", "proof": [], "checkpoint": "c"});
    let with = plain.clone().with_audit(attachment.clone()).unwrap();
    // The body, its canonical bytes and the signature are untouched.
    assert_eq!(with.body(), plain.body());
    assert_eq!(with.signature(), plain.signature());
    assert_eq!(with.body_sha256(), plain.body_sha256());
    let bytes = with.to_bytes();
    assert!(bytes.starts_with(
        br#"{"audit":{"checkpoint":"c","index":3,"leaf":"x","proof":[]},"certificate":"#
    ));
    let v = verify(&bytes, Some(&k.verifying_key())).unwrap();
    assert_eq!(v.signed().audit(), Some(&attachment));
    assert_eq!(v.signed(), &with);
    // Without one, the file is exactly what earlier versions wrote.
    assert_eq!(plain.audit(), None);
    assert_eq!(plain.to_bytes(), signed_file());
    assert!(!String::from_utf8_lossy(&plain.to_bytes()).contains("\"audit\""));
    // Only an object, in canonical form, is accepted.
    assert!(plain.clone().with_audit(serde_json::json!([1])).is_err());
    let text = String::from_utf8(bytes.clone()).unwrap();
    let spaced = text.replacen("\"index\":3", "\"index\": 3", 1);
    assert!(matches!(
        verify(spaced.as_bytes(), None),
        Err(VerifyError::NotCanonical(_))
    ));
    let null = text.replacen(
        r#"{"checkpoint":"c","index":3,"leaf":"x","proof":[]}"#,
        "null",
        1,
    );
    assert!(verify(null.as_bytes(), None).is_err());
    let list = text.replacen(
        r#"{"checkpoint":"c","index":3,"leaf":"x","proof":[]}"#,
        "[]",
        1,
    );
    assert!(matches!(
        verify(list.as_bytes(), None),
        Err(VerifyError::NotACertificate(_))
    ));
}
