//! The published test vector (docs/certificate.md): a fixed seed and body
//! give exactly these bytes. Ed25519 is deterministic, so this is a true vector.

mod common;

use common::{vector_body, vector_seed};
use lethe_cert::*;
use std::path::Path;
use std::process::Command;

const SEED_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const PUBLIC_KEY_HEX: &str = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
const KEY_ID: &str = "56475aa75463474c";
const SIGNATURE_B64: &str =
    "F4YE8wbdd4sd8H+Y+GepT15gkbjAPl0NBbFyIgl0JSltof9/YKkABrguFCwo1eWl7Z5YD8PtfoZDK0bimn9OCQ==";
const BODY_SHA256: &str = "9a216f6a495ff6df9d019dcb61708a4f484f05ea13d3a59b4c161dcbeb4e0b6c";
const FILE_SHA256: &str = "a855dc2f9d38f256001eab9ed793ca3b616e279c14fd93b2f6f4970f971f121e";
const CANONICAL_BODY: &str = r#"{"appliance":{"hostname":"wipe-bench-1","id":"lethe-appliance-01","location":"Lab B, rack 3"},"asset_tag":"AT-0042","customer":"ACME \"Recycling\" Ltd","destination":"return_to_lessor","device":{"capacity_bytes":268439552,"firmware":"2.5+","hidden_areas":"none detected","logical_sector_size":512,"manufacturer":null,"media_type":"magnetic","model":"QEMU HARDDISK","path":"/dev/sdb","physical_sector_size":512,"serial":"QM00001","stable_id":"ata-QEMU_HARDDISK_QM00001","transport":"sata","wwn":""},"events":[{"at":"2026-11-23T13:50:00Z","detail":"pass 1 of 1","kind":"started"},{"at":"2026-11-23T13:55:10Z","detail":"power loss at byte 104857600","kind":"interrupted"},{"at":"2026-11-23T13:58:00Z","detail":"from checkpoint 104857600","kind":"resumed"},{"at":"2026-11-23T14:04:59Z","detail":"","kind":"completed"}],"format":"lethe-certificate/1","id":"job-20261123-0001","issued_at":"2026-11-23T14:05:00Z","media_source":null,"method":{"category":"clear","final_blank":false,"passes":1,"pattern":"random (AES-128-CTR stream)","reason":"magnetic media: one overwrite pass is a Clear per NIST SP 800-88","standard":"NIST SP 800-88 Rev.1","technique":"overwrite"},"operator":{"id":"op-7","name":"Dana Müller"},"result":{"bytes_written":268439552,"failed_ranges":[],"messages":["verified every sector"],"status":"pass"},"timing":{"duration_seconds":899,"ended_at":"2026-11-23T14:04:59Z","started_at":"2026-11-23T13:50:00Z"},"tool":{"name":"lethe","version":"0.1.0"},"verification":{"bytes_verified":268439552,"coverage_ppm":1000000,"method":"full","result":"pass","sample_seed":null}}"#;

fn vector_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors"))
}

/// safeguard: 164.312(c)(1)
#[test]
fn fixed_seed_and_body_give_the_published_bytes() {
    assert_eq!(hex::encode(vector_seed()), SEED_HEX);
    let key = ApplianceKey::from_seed(&vector_seed());
    assert_eq!(key.public_key_hex(), PUBLIC_KEY_HEX);
    assert_eq!(key.key_id(), KEY_ID);
    let signed = sign(&vector_body(), &key).unwrap();
    assert_eq!(
        std::str::from_utf8(signed.body_canonical()).unwrap(),
        CANONICAL_BODY
    );
    assert_eq!(signed.signature().value, SIGNATURE_B64);
    assert_eq!(signed.body_sha256(), BODY_SHA256);
    assert_eq!(signed.file_sha256(), FILE_SHA256);
    let expected_file = format!(
        "{{\"certificate\":{CANONICAL_BODY},\"signature\":{{\"algorithm\":\"ed25519\",\"key_id\":\"{KEY_ID}\",\"public_key\":\"{PUBLIC_KEY_HEX}\",\"value\":\"{SIGNATURE_B64}\"}}}}\n"
    );
    assert_eq!(String::from_utf8(signed.to_bytes()).unwrap(), expected_file);
}

#[test]
fn committed_vector_file_matches_and_verifies() {
    let key = ApplianceKey::from_seed(&vector_seed());
    let committed = std::fs::read(vector_dir().join("job-20261123-0001.json")).unwrap();
    assert_eq!(committed, sign(&vector_body(), &key).unwrap().to_bytes());
    let pubkey = load_public_key(vector_dir().join("appliance.pub").to_str().unwrap()).unwrap();
    let v = verify(&committed, Some(&pubkey)).unwrap();
    assert_eq!(v.key_id(), KEY_ID);
    assert_eq!(v.body(), &vector_body());
}

/// The signing input is the prefix plus the canonical body, checked with
/// ed25519-dalek directly (independently of `verify`).
#[test]
fn signing_input_is_prefix_plus_canonical_body() {
    use base64::Engine;
    use ed25519_dalek::{Signature, VerifyingKey};
    let pk: [u8; 32] = hex::decode(PUBLIC_KEY_HEX).unwrap().try_into().unwrap();
    let sig: [u8; 64] = base64::engine::general_purpose::STANDARD
        .decode(SIGNATURE_B64)
        .unwrap()
        .try_into()
        .unwrap();
    let vk = VerifyingKey::from_bytes(&pk).unwrap();
    let mut msg = b"lethe-certificate-v1\n".to_vec();
    msg.extend_from_slice(CANONICAL_BODY.as_bytes());
    assert_eq!(SIGNING_PREFIX, b"lethe-certificate-v1\n");
    vk.verify_strict(&msg, &Signature::from_bytes(&sig))
        .unwrap();
    // Without the prefix the signature must not verify.
    assert!(vk
        .verify_strict(CANONICAL_BODY.as_bytes(), &Signature::from_bytes(&sig))
        .is_err());
}

/// The Python check printed in docs/certificate.md (standard library only)
/// accepts the vector and rejects a changed serial.
/// safeguard: 164.312(c)(1)
#[test]
fn independent_python_check() {
    let script = vector_dir().join("verify_cert.py");
    let run = |file: &Path| {
        Command::new("python3")
            .arg(&script)
            .arg(vector_dir().join("appliance.pub"))
            .arg(file)
            .output()
            .expect("python3")
    };
    let ok = run(&vector_dir().join("job-20261123-0001.json"));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout).trim(),
        "VALID job-20261123-0001 pass"
    );
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.json");
    let text = std::fs::read_to_string(vector_dir().join("job-20261123-0001.json")).unwrap();
    std::fs::write(&bad, text.replace("QM00001", "QM00002")).unwrap();
    let out = run(&bad);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("INVALID signature"));
}

/// docs/certificate.md publishes the same vector and the same Python script.
/// safeguard: 164.310(d)(2)(iii)
#[test]
fn documentation_matches_the_vector() {
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/certificate.md");
    let Ok(doc) = std::fs::read_to_string(&doc_path) else {
        eprintln!("SKIPPED: {} not present", doc_path.display());
        return;
    };
    for value in [
        SEED_HEX,
        PUBLIC_KEY_HEX,
        KEY_ID,
        SIGNATURE_B64,
        BODY_SHA256,
        FILE_SHA256,
        CANONICAL_BODY,
    ] {
        assert!(doc.contains(value), "docs/certificate.md lacks {value}");
    }
    let script = std::fs::read_to_string(vector_dir().join("verify_cert.py")).unwrap();
    assert!(
        doc.contains(script.trim()),
        "docs/certificate.md has a different verify_cert.py"
    );
}
