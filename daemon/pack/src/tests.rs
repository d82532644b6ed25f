use super::*;
use std::fs;

fn header() -> Header {
    Header {
        version: "0.1.0".into(),
        commit: "9c858f4e0d3c5b1a2f6e7d8c9b0a1f2e3d4c5b6a".into(),
        built: "2026-12-04T10:00:00Z".into(),
        key_kind: KeyKind::Release,
    }
}

fn key() -> ApplianceKey {
    ApplianceKey::from_seed(&[9u8; 32])
}

fn pack() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    fs::create_dir_all(t.path().join("html/img")).unwrap();
    fs::write(
        t.path().join("lethe-auditor-pack.pdf"),
        b"%PDF-1.7 not really",
    )
    .unwrap();
    fs::write(t.path().join("html/index.html"), b"<h1>Lethe</h1>").unwrap();
    fs::write(t.path().join("html/img/a.png"), [0u8; 300]).unwrap();
    fs::write(t.path().join("empty.txt"), b"").unwrap();
    sign_pack(t.path(), &header(), &key()).unwrap();
    t
}

fn differences(dir: &Path) -> Vec<Difference> {
    match verify_pack(dir, Some(&key().verifying_key())) {
        Err(PackError::Differs(d)) => d,
        other => panic!("expected differences, got {other:?}"),
    }
}

#[test]
fn a_signed_pack_verifies_with_its_key_and_lists_every_file() {
    let t = pack();
    let v = verify_pack(t.path(), Some(&key().verifying_key())).unwrap();
    assert_eq!(v.signer, Signer::Trusted);
    let paths: Vec<&str> = v.manifest.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "empty.txt",
            "html/img/a.png",
            "html/index.html",
            "lethe-auditor-pack.pdf",
            "release.pub"
        ]
    );
    assert_eq!(v.manifest.key_id, key().key_id());
    let text = fs::read_to_string(t.path().join(MANIFEST_FILE)).unwrap();
    assert!(
        text.starts_with("lethe-auditor-pack/1\nversion 0.1.0\n"),
        "{text}"
    );
    assert!(text.contains("\n\n\u{2014} lethe-release "), "{text}");
}

#[test]
fn a_changed_added_or_removed_file_is_named() {
    let t = pack();
    fs::write(t.path().join("html/index.html"), b"<h1>Lethe!</h1>").unwrap();
    assert_eq!(
        differences(t.path()),
        [Difference::Changed("html/index.html".into())]
    );

    let t = pack();
    // Same size, one bit different.
    fs::write(t.path().join("html/img/a.png"), {
        let mut b = [0u8; 300];
        b[150] = 1;
        b
    })
    .unwrap();
    assert_eq!(
        differences(t.path()),
        [Difference::Changed("html/img/a.png".into())]
    );

    let t = pack();
    fs::write(t.path().join("html/extra.html"), b"x").unwrap();
    fs::create_dir(t.path().join("data")).unwrap();
    assert_eq!(
        differences(t.path()),
        [
            Difference::Added("data".into()),
            Difference::Added("html/extra.html".into())
        ]
    );

    let t = pack();
    fs::remove_file(t.path().join("empty.txt")).unwrap();
    assert_eq!(
        differences(t.path()),
        [Difference::Removed("empty.txt".into())]
    );

    let t = pack();
    fs::remove_file(t.path().join("html/index.html")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", t.path().join("html/index.html")).unwrap();
    let d = differences(t.path());
    assert!(
        d.contains(&Difference::NotAllowed("html/index.html".into())),
        "{d:?}"
    );
    assert!(d.contains(&Difference::Removed("html/index.html".into())));
}

#[test]
fn a_changed_manifest_or_another_key_is_refused() {
    let t = pack();
    let path = t.path().join(MANIFEST_FILE);
    let text = fs::read_to_string(&path).unwrap();

    // Re-listing a changed file without the key breaks the signature.
    fs::write(t.path().join("empty.txt"), b"now with content").unwrap();
    let (sha, size) = dir::hash_file(&t.path().join("empty.txt")).unwrap();
    let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let forged = text.replace(
        &format!("file {empty} 0 empty.txt"),
        &format!("file {} {size} empty.txt", hex::encode(sha)),
    );
    assert_ne!(forged, text);
    fs::write(&path, &forged).unwrap();
    let e = verify_pack(t.path(), Some(&key().verifying_key())).unwrap_err();
    assert!(matches!(e, PackError::BadSignature(_)), "{e}");

    // Another key is named as such.
    let t = pack();
    let other = ApplianceKey::from_seed(&[1u8; 32]);
    let e = verify_pack(t.path(), Some(&other.verifying_key())).unwrap_err();
    assert!(
        matches!(&e, PackError::WrongKey { expected, .. } if expected == other.key_id()),
        "{e}"
    );

    // Re-signed by an intruder with its own key: fine structurally, but
    // never trusted, and refused against the real key.
    let t = pack();
    fs::write(t.path().join("html/index.html"), b"<h1>forged</h1>").unwrap();
    sign_pack(t.path(), &header(), &other).unwrap();
    assert_eq!(verify_pack(t.path(), None).unwrap().signer, Signer::Unknown);
    assert!(matches!(
        verify_pack(t.path(), Some(&key().verifying_key())),
        Err(PackError::WrongKey { .. })
    ));

    // A missing or garbage manifest.
    let t = pack();
    let path = t.path().join(MANIFEST_FILE);
    fs::write(&path, b"hello\n").unwrap();
    assert!(matches!(
        verify_pack(t.path(), None),
        Err(PackError::Note(_))
    ));
    fs::remove_file(&path).unwrap();
    assert!(matches!(
        verify_pack(t.path(), None),
        Err(PackError::Io { .. })
    ));
}

#[test]
fn without_a_key_the_signer_is_unknown_and_needs_release_pub() {
    let t = pack();
    let v = verify_pack(t.path(), None).unwrap();
    assert_eq!(v.signer, Signer::Unknown);
    fs::remove_file(t.path().join(PUBLIC_KEY_FILE)).unwrap();
    let e = verify_pack(t.path(), None).unwrap_err();
    assert!(matches!(e, PackError::NoKey(_)), "{e}");
}

#[test]
fn names_a_manifest_cannot_list_are_refused_when_signing() {
    let t = tempfile::tempdir().unwrap();
    fs::write(t.path().join("a file.txt"), b"x").unwrap();
    assert!(matches!(
        sign_pack(t.path(), &header(), &key()),
        Err(PackError::Io { .. })
    ));
}
