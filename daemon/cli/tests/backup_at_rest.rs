//! What a backup puts on its storage is ciphertext: no file content, file
//! name, path or passphrase of the source appears in any byte of the
//! repository (what an S3 or SFTP server, or whoever copies its disks,
//! receives). A local repository holds exactly the objects a remote one does.

mod common;

use common::*;
use std::path::Path;

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// safeguard: 164.312(a)(2)(iv), 164.312(e)(2)(ii)
#[test]
fn no_content_name_or_passphrase_reaches_the_repository_in_the_clear() {
    let t = tempfile::tempdir().unwrap();
    let (state, repo, pw) = (
        t.path().join("state"),
        t.path().join("repo"),
        t.path().join("pw"),
    );
    let passphrase = "orchid-teapot-quarry-47";
    std::fs::write(&pw, format!("{passphrase}\n")).unwrap();
    let src = t.path().join("ward7-radiology");
    std::fs::create_dir_all(src.join("doe-jane")).unwrap();
    // Compressible and incompressible content, each with a marker.
    let record = "PATIENT Jane Doe MRN 00451207 diagnosis: fracture\n".repeat(2_000);
    std::fs::write(src.join("doe-jane/chart-00451207.txt"), &record).unwrap();
    let mut image = noise(3, 1 << 20);
    image[4096..4096 + 24].copy_from_slice(b"DICOM-MARKER-7c1f9e2a5b3");
    std::fs::write(src.join("doe-jane/scan.dcm"), &image).unwrap();

    let backup = |args: &[&str]| {
        let out = lethe(&state)
            .arg("backup")
            .arg("--repo")
            .arg(&repo)
            .arg("--password-file")
            .arg(&pw)
            .env_remove("LETHE_REPO")
            .env_remove("LETHE_PASSWORD")
            .env_remove("LETHE_PASSWORD_FILE")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    };
    backup(&["init", "--json"]);
    backup(&["run", src.to_str().unwrap(), "--json"]);

    let mut files = Vec::new();
    files_under(&repo, &mut files);
    assert!(
        files.len() >= 4,
        "config, key, pack, index, snapshot: {files:?}"
    );
    let needles: [&[u8]; 7] = [
        b"Jane Doe",
        b"00451207",
        b"DICOM-MARKER-7c1f9e2a5b3",
        b"chart-00451207",
        b"ward7-radiology",
        b"doe-jane",
        passphrase.as_bytes(),
    ];
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let name = f
            .strip_prefix(&repo)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for n in needles {
            assert!(
                !bytes.windows(n.len()).any(|w| w == n),
                "{name} holds {:?} in the clear",
                String::from_utf8_lossy(n)
            );
            assert!(!name.as_bytes().windows(n.len()).any(|w| w == n), "{name}");
        }
    }

    // And the same bytes come back with the passphrase.
    let out = t.path().join("out");
    backup(&[
        "restore",
        "latest",
        "--target",
        out.to_str().unwrap(),
        "--json",
    ]);
    let mut back = Vec::new();
    files_under(&out, &mut back);
    let find = |suffix: &str| {
        back.iter()
            .find(|p| p.ends_with(suffix))
            .unwrap_or_else(|| panic!("{suffix} not restored: {back:?}"))
    };
    assert_eq!(
        std::fs::read_to_string(find("ward7-radiology/doe-jane/chart-00451207.txt")).unwrap(),
        record
    );
    assert_eq!(
        std::fs::read(find("ward7-radiology/doe-jane/scan.dcm")).unwrap(),
        image
    );
}
