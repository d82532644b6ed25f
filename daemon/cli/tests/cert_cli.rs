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

/// safeguard: 164.312(c)(1), 164.310(d)(2)(iii)
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

/// safeguard: 164.310(d)(2)(iii)
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

fn run(state: &Path, args: &[&str]) -> std::process::Output {
    lethe(state).args(args).output().unwrap()
}

/// safeguard: 164.312(c)(1)
#[test]
fn without_a_key_the_signer_is_unknown_never_a_bare_valid() {
    let state = state_dir();
    let file = vectors().join("job-20261123-0001.json");
    let out = verify(state.path(), &file, None);
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(
        line.starts_with("SIGNATURE VALID, SIGNER UNKNOWN"),
        "{line}"
    );
    assert!(!line.starts_with("VALID"), "{line}");
    assert!(stderr(&out).contains("--key"), "{}", stderr(&out));
    // With --json: one JSON object saying so.
    let out = run(
        state.path(),
        &["cert", "verify", file.to_str().unwrap(), "--json"],
    );
    assert_eq!(out.status.code(), Some(10));
    let v = summary(&out);
    assert_eq!(v["result"], "signer_unknown");
    assert_eq!(v["key_id"], "56475aa75463474c");
    assert_eq!(v["certificate"]["id"], "job-20261123-0001");
}

#[test]
fn an_id_is_looked_up_in_the_store_and_the_appliance_key_is_trusted() {
    let state = state_dir();
    let certs = state.path().join("certificates");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(
        vectors().join("job-20261123-0001.json"),
        certs.join("job-20261123-0001.json"),
    )
    .unwrap();
    let key = vectors().join("appliance.pub");
    let out = run(
        state.path(),
        &[
            "cert",
            "verify",
            "job-20261123-0001",
            "--key",
            key.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("VALID  cert job-20261123-0001"));
    // The appliance's own key in the state directory is trusted without --key.
    let keys = state.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::copy(&key, keys.join("appliance.pub")).unwrap();
    let out = run(state.path(), &["cert", "verify", "job-20261123-0001"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(state.path(), &["cert", "verify", "no-such-job", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(summary(&out)["result"], "invalid");
}

#[test]
fn fifos_devices_and_huge_files_are_refused_without_reading() {
    let state = state_dir();
    let fifo = state.path().join("cert.json");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    // Opening a FIFO must not wait for a writer: the command returns at once.
    for (target, want) in [(fifo.as_path(), "FIFO"), (Path::new("/dev/zero"), "device")] {
        let out = verify(state.path(), target, None);
        assert_eq!(out.status.code(), Some(1), "{target:?}");
        let err = stderr(&out);
        assert!(err.contains("INVALID") && err.contains(want), "{err}");
    }
    let big = state.path().join("big.json");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let out = verify(state.path(), &big, None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("larger than any certificate"),
        "{}",
        stderr(&out)
    );
}

use std::process::Command;

/// safeguard: rule:secrets-in-worker
#[test]
fn a_private_key_given_as_key_is_recognised() {
    let state = state_dir();
    let file = vectors().join("job-20261123-0001.json");
    let seed: String = (0u8..32).map(|b| format!("{b:02x}")).collect();
    // The private key file, as the appliance keeps it (named .key, mode 0600).
    let keyfile = state.path().join("appliance.key");
    std::fs::write(&keyfile, format!("{seed}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&keyfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = verify(state.path(), &file, Some(&keyfile));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("PRIVATE key"), "{}", stderr(&out));
    // The seed typed as hex looks like a public key; the mix-up is still named.
    let out = run(
        state.path(),
        &["cert", "verify", file.to_str().unwrap(), "--key", &seed],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("PRIVATE key") && !err.contains(&seed), "{err}");
}
