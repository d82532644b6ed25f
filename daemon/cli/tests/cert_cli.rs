//! `lethe cert verify|list|show` on the committed test vector (no root needed).

mod common;

use common::*;
use std::path::{Path, PathBuf};

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../cert/tests/vectors")
}

fn verify(state: &Path, file: &Path, key: Option<&Path>) -> std::process::Output {
    let mut c = lethe(state);
    c.args(["cert", "verify"]).arg(file);
    if let Some(k) = key {
        c.arg("--key").arg(k);
    }
    c.output().unwrap()
}

#[test]
fn the_test_vector_verifies_with_its_key() {
    let state = state_dir();
    let out = verify(
        state.path(),
        &vectors().join("job-20261123-0001.json"),
        Some(&vectors().join("appliance.pub")),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(line.starts_with("VALID"), "{line}");
    assert!(line.contains("job-20261123-0001"), "{line}");
}

#[test]
fn tampering_truncation_other_keys_and_non_certificates_are_rejected() {
    let state = state_dir();
    let original = std::fs::read(vectors().join("job-20261123-0001.json")).unwrap();
    let key = vectors().join("appliance.pub");
    let tmp = state.path().join("c.json");
    let check = |bytes: &[u8], key: Option<&Path>, want: &str| {
        std::fs::write(&tmp, bytes).unwrap();
        let out = verify(state.path(), &tmp, key);
        assert_eq!(out.status.code(), Some(1), "accepted: {want}");
        let err = stderr(&out);
        assert!(
            err.contains("INVALID") && err.to_lowercase().contains(want),
            "{want}: {err}"
        );
    };
    // A changed digit in the serial number.
    let text = String::from_utf8(original.clone()).unwrap();
    let pos = text.find("\"serial\":\"").unwrap() + 10;
    let mut tampered = original.clone();
    tampered[pos] ^= 0x01;
    check(&tampered, Some(&key), "signature");
    // A changed signature byte.
    let sig = text.find("\"value\":\"").unwrap() + 9;
    let mut bad_sig = original.clone();
    bad_sig[sig] = if bad_sig[sig] == b'A' { b'B' } else { b'A' };
    check(&bad_sig, Some(&key), "");
    check(&original[..original.len() / 2], Some(&key), "truncated");
    check(br#"{"a":1}"#, None, "not a");
    check(b"hello", None, "");
    // Signed correctly, but not by the key the auditor expects.
    // RFC 8032 test vector 2's public key: valid, but not the signer.
    let other = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
    let other_key = state.path().join("other.pub");
    std::fs::write(&other_key, format!("{other}\n")).unwrap();
    check(&original, Some(&other_key), "another key");
}

#[test]
fn list_and_show_read_the_store() {
    let state = state_dir();
    let certs = state.path().join("certificates");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(
        vectors().join("job-20261123-0001.json"),
        certs.join("job-20261123-0001.json"),
    )
    .unwrap();
    let out = lethe(state.path())
        .args(["cert", "list", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["id"], "job-20261123-0001");
    assert!(list[0]["problem"].is_null());
    let out = lethe(state.path())
        .args(["cert", "show", "job-20261123-0001", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["id"], "job-20261123-0001");
    let out = lethe(state.path())
        .args(["cert", "show", "no-such-cert"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}
