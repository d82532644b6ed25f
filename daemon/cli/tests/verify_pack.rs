//! `lethe verify-pack DIR` against packs signed here with `lethe-pack`
//! (no root needed). The full pack, built by `hw-tests/pack.sh`, is checked
//! the same way in CI and by `hw-tests/tests/auditor_pack.rs`.

mod common;

use common::stderr;
use lethe_cert::ApplianceKey;
use lethe_pack::{sign_pack, Header, KeyKind};
use std::path::Path;
use std::process::{Command, Output};

fn key() -> ApplianceKey {
    ApplianceKey::from_seed(&[42u8; 32])
}

fn pack(kind: KeyKind) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("html")).unwrap();
    std::fs::create_dir_all(t.path().join("data")).unwrap();
    std::fs::write(t.path().join("lethe-auditor-pack.pdf"), b"%PDF-1.7\n").unwrap();
    std::fs::write(t.path().join("html/index.html"), b"<h1>Lethe</h1>\n").unwrap();
    std::fs::write(t.path().join("data/safeguards.json"), b"{}\n").unwrap();
    let header = Header {
        version: "0.1.0".into(),
        commit: "0123456789abcdef0123456789abcdef01234567".into(),
        built: "2026-12-04T10:00:00Z".into(),
        key_kind: kind,
    };
    sign_pack(t.path(), &header, &key()).unwrap();
    t
}

fn verify(dir: &Path, key: Option<&str>, json: bool) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lethe"));
    c.arg("verify-pack")
        .arg(dir)
        .env_remove("LETHE_RELEASE_PUB");
    if let Some(k) = key {
        c.arg("--key").arg(k);
    }
    if json {
        c.arg("--json");
    }
    c.output().unwrap()
}

#[test]
fn an_intact_pack_is_valid_with_its_key_and_signer_unknown_without() {
    let p = pack(KeyKind::Release);
    let hexkey = key().public_key_hex();
    let out = verify(p.path(), Some(&hexkey), false);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(
        line.starts_with("VALID  Lethe 0.1.0 auditor pack"),
        "{line}"
    );
    assert!(line.contains(key().key_id()), "{line}");

    // The key as a .pub file, and without any key.
    let pubfile = p.path().join("release.pub");
    let out = verify(p.path(), Some(pubfile.to_str().unwrap()), true);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["result"], "valid");
    assert_eq!(v["files"], 4);
    assert_eq!(v["key_kind"], "release");
    let out = verify(p.path(), None, false);
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("SIGNATURE VALID, SIGNER UNKNOWN"));

    // A throw-away key says so.
    let p = pack(KeyKind::ThrowAway);
    let out = verify(p.path(), Some(&hexkey), false);
    assert_eq!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("throw-away key"), "{}", stderr(&out));
}

#[test]
fn a_changed_added_or_removed_file_is_invalid_and_named() {
    let hexkey = key().public_key_hex();
    type Damage = fn(&Path);
    let cases: [(&str, Damage, &str); 4] = [
        (
            "changed",
            |d| std::fs::write(d.join("html/index.html"), b"<h1>Lethe!</h1>\n").unwrap(),
            "changed: html/index.html",
        ),
        (
            "added",
            |d| std::fs::write(d.join("data/extra.json"), b"{}").unwrap(),
            "added (not in the manifest): data/extra.json",
        ),
        (
            "removed",
            |d| std::fs::remove_file(d.join("lethe-auditor-pack.pdf")).unwrap(),
            "removed (listed in the manifest): lethe-auditor-pack.pdf",
        ),
        (
            "manifest edited",
            |d| {
                let m = std::fs::read_to_string(d.join("MANIFEST")).unwrap();
                std::fs::write(
                    d.join("MANIFEST"),
                    m.replace("version 0.1.0", "version 0.2.0"),
                )
                .unwrap()
            },
            "signature does not verify",
        ),
    ];
    for (what, damage, expected) in cases {
        let p = pack(KeyKind::Release);
        damage(p.path());
        let out = verify(p.path(), Some(&hexkey), false);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.starts_with("INVALID"), "{what}: {err}");
        assert!(err.contains(expected), "{what}: {err}");
        let out = verify(p.path(), None, true);
        assert_eq!(out.status.code(), Some(1), "{what}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["result"], "invalid", "{what}");
    }

    // Another key, and a private key where the public one belongs.
    let p = pack(KeyKind::Release);
    let other = ApplianceKey::from_seed(&[1u8; 32]).public_key_hex();
    let out = verify(p.path(), Some(&other), false);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("signed by key"), "{}", stderr(&out));
    let kdir = tempfile::tempdir().unwrap();
    let keyfile = kdir.path().join("release.key");
    std::fs::write(&keyfile, "00".repeat(32)).unwrap();
    let out = verify(p.path(), Some(keyfile.to_str().unwrap()), false);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("PRIVATE key"), "{}", stderr(&out));
}
