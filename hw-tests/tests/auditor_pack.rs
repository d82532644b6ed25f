//! The auditor pack built end to end from a run of this commit's tagged
//! tests (a recorded-style log and test-binary list written here, so the
//! builder's own logic is what is tested; the pack of the real run is built
//! by hw-tests/pack.sh in CI): the PDF is readable (rendered to PNG, its
//! headings found by pdftotext), the pack verifies and any file changed,
//! added or removed is rejected, a safeguard whose tests did not pass stops
//! the build, and the next pack lists what changed.

use lethe_hw_tests::auditor::{self, build, tags::TaggedTest};
use lethe_hw_tests::skip;
use lethe_pack::{verify_pack, Difference, PackError};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// How a synthetic run reports one test.
#[derive(Clone, Copy)]
enum As {
    Passed,
    Failed,
    Skipped,
}

fn package_of(root: &Path, file: &str) -> (String, String) {
    let mut dir = Path::new(file).parent();
    while let Some(d) = dir {
        let manifest = root.join(d).join("Cargo.toml");
        if let Ok(text) = std::fs::read_to_string(&manifest) {
            let v: toml::Value = toml::from_str(&text).unwrap();
            if let Some(name) = v.get("package").and_then(|p| p.get("name")) {
                return (d.display().to_string(), name.as_str().unwrap().to_owned());
            }
        }
        dir = d.parent();
    }
    panic!("no package for {file}")
}

/// A results folder as run-tests.sh leaves it, in which every tagged test
/// ran in a binary of its own file, reported as `how` says.
fn results(root: &Path, tags: &[TaggedTest], how: &dyn Fn(&TaggedTest) -> As) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let mut by_file: BTreeMap<&str, Vec<&TaggedTest>> = BTreeMap::new();
    for tag in tags {
        by_file.entry(&tag.file).or_default().push(tag);
    }
    let (mut log, mut json) = (String::new(), String::new());
    for (i, (file, tests)) in by_file.iter().enumerate() {
        let exe = format!("synthetic_{i}-0123abcd");
        let (pkg_dir, pkg) = package_of(root, file);
        let r = root.display();
        let _ = writeln!(
            json,
            r#"{{"reason":"compiler-artifact","package_id":"path+file://{r}/{pkg_dir}#{pkg}@0.1.0","manifest_path":"{r}/{pkg_dir}/Cargo.toml","target":{{"kind":["test"],"name":"synthetic_{i}","src_path":"{r}/{file}"}},"profile":{{"test":true}},"executable":"{r}/target/debug/deps/{exe}"}}"#
        );
        let _ = writeln!(
            log,
            "     Running {file} (target/debug/deps/{exe})\n\nrunning {} tests",
            tests.len()
        );
        let mut skipped = Vec::new();
        for t in tests {
            let word = match how(t) {
                As::Passed => "ok",
                As::Skipped => {
                    skipped.push(t.test_path());
                    "ok"
                }
                As::Failed => "FAILED",
            };
            let _ = writeln!(log, "test {} ... {word}", t.test_path());
        }
        let _ = writeln!(log, "\nsuccesses:\n");
        for s in skipped {
            let _ = writeln!(log, "---- {s} stdout ----\nSKIPPED: needs root\n");
        }
        let _ = writeln!(log, "test result: ok. {} passed; 0 failed\n", tests.len());
    }
    std::fs::write(t.path().join("test.log"), log).unwrap();
    std::fs::write(t.path().join("binaries.json"), json).unwrap();
    std::fs::write(t.path().join("commit"), build::commit_of(root).unwrap()).unwrap();
    t
}

fn options(
    results: &Path,
    out: &Path,
    previous: &str,
    key: Option<PathBuf>,
) -> build::BuildOptions {
    build::BuildOptions {
        results: results.to_path_buf(),
        out: out.to_path_buf(),
        previous: previous.to_owned(),
        key,
        // cargo cyclonedx writes beside every Cargo.toml of the tree: left to
        // hw-tests/pack.sh, which CI runs on the real results.
        sbom: false,
        chromium: "chromium".into(),
        built: Some("2026-12-04T10:00:00Z".into()),
    }
}

fn pdf_pages_to_images(pdf: &Path, dir: &Path) -> (Vec<u8>, usize) {
    let png = dir.join("page");
    let out = Command::new("pdftoppm")
        .args(["-png", "-r", "40", "-f", "1", "-l", "1"])
        .arg(pdf)
        .arg(&png)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "png"))
        .expect("pdftoppm wrote a PNG");
    let png_bytes = std::fs::read(first).unwrap();
    // The same page as a grey map, to count its dark (text) pixels.
    let pgm = dir.join("grey");
    let out = Command::new("pdftoppm")
        .args(["-gray", "-r", "40", "-f", "1", "-l", "1"])
        .arg(pdf)
        .arg(&pgm)
        .output()
        .unwrap();
    assert!(out.status.success());
    let grey = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "pgm"))
        .expect("pdftoppm wrote a PGM");
    let bytes = std::fs::read(grey).unwrap();
    // "P5\n<w> <h>\n255\n" then one byte per pixel.
    let mut fields = 0;
    let mut start = 0;
    for (i, b) in bytes.iter().enumerate() {
        if b.is_ascii_whitespace() && i > 0 && !bytes[i - 1].is_ascii_whitespace() {
            fields += 1;
            if fields == 4 {
                start = i + 1;
                break;
            }
        }
    }
    let dark = bytes[start..].iter().filter(|&&p| p < 128).count();
    (png_bytes, dark)
}

#[test]
fn the_pack_is_built_signed_readable_and_refuses_what_it_must() {
    for tool in ["chromium", "pdftoppm", "pdftotext", "git"] {
        if !have(tool) {
            skip!("{tool} is not installed (hw-tests/setup.sh installs it)");
        }
    }
    let root = std::fs::canonicalize(auditor::default_root()).unwrap();
    if build::commit_of(&root).is_err() {
        skip!("not a git checkout: the pack names its commit");
    }
    let (_, tags) = auditor::load(&root).unwrap_or_else(|e| panic!("{e}"));
    let out = tempfile::tempdir().unwrap();

    // A release key kept like appliance.key.
    let keys = tempfile::tempdir().unwrap();
    let keyfile = keys.path().join("release.key");
    std::fs::write(&keyfile, format!("{}\n", "5a".repeat(32))).unwrap();
    std::fs::set_permissions(&keyfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    let release = lethe_cert::ApplianceKey::load_file(&keyfile).unwrap();

    let all_passed = results(&root, &tags, &|_| As::Passed);
    let a = build::build(
        &root,
        &options(
            all_passed.path(),
            &out.path().join("a"),
            "none",
            Some(keyfile.clone()),
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let v = verify_pack(&a.dir, Some(&release.verifying_key())).unwrap();
    assert_eq!(v.manifest.key_kind, lethe_pack::KeyKind::Release);
    let names: Vec<&str> = v.manifest.files.iter().map(|f| f.path.as_str()).collect();
    for want in [
        "lethe-auditor-pack.pdf",
        "html/index.html",
        "html/hipaa.html",
        "html/security-test-plan.html",
        "html/threat-model.html",
        "html/test-results.html",
        "html/changes.html",
        "html/benchmarks.html",
        "html/dependencies.html",
        "html/print.html",
        "data/safeguards.json",
        "data/test-results.junit.xml",
        "data/dependencies.json",
        "release.pub",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }

    // The PDF renders, with text on its first page, and holds every heading.
    let pdf = a.dir.join("lethe-auditor-pack.pdf");
    let img = tempfile::tempdir().unwrap();
    let (png, dark) = pdf_pages_to_images(&pdf, img.path());
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        dark > 500,
        "the first page looks blank ({dark} dark pixels)"
    );
    let text = auditor::render::pdf_text(&pdf).unwrap();
    let version =
        auditor::workspace_version(&std::fs::read_to_string(root.join("Cargo.toml")).unwrap())
            .unwrap();
    for heading in [
        format!("Lethe {version} auditor pack"),
        "Test results by safeguard".into(),
        "Changes since the previous version".into(),
        "HIPAA safeguards: how Lethe serves 45 CFR §164.312 and §164.310(d)(2)".into(),
        "§164.312(a)(2)(iii) Automatic logoff".into(),
        "Security test plan".into(),
        "rule:fail-safe-relay The degausser relay fails safe".into(),
        "Threat model".into(),
        "Degausser safety".into(),
        "Benchmarks".into(),
        "Dependencies and licences".into(),
    ] {
        assert!(text.contains(&heading), "the PDF lacks {heading:?}");
    }

    // Any file changed, added or removed is refused.
    let copy = |name: &str| {
        let d = out.path().join(name);
        let st = Command::new("cp")
            .arg("-a")
            .arg(&a.dir)
            .arg(&d)
            .status()
            .unwrap();
        assert!(st.success());
        d
    };
    let changed = copy("changed");
    std::fs::write(
        changed.join("html/test-results.html"),
        "<h1>all passed</h1>",
    )
    .unwrap();
    let added = copy("added");
    std::fs::write(added.join("data/extra.txt"), "x").unwrap();
    let removed = copy("removed");
    std::fs::remove_file(removed.join("data/test-results.junit.xml")).unwrap();
    for (dir, want) in [
        (
            &changed,
            Difference::Changed("html/test-results.html".into()),
        ),
        (&added, Difference::Added("data/extra.txt".into())),
        (
            &removed,
            Difference::Removed("data/test-results.junit.xml".into()),
        ),
    ] {
        match verify_pack(dir, Some(&release.verifying_key())) {
            Err(PackError::Differs(d)) => assert_eq!(d, std::slice::from_ref(&want)),
            other => panic!("{want:?}: {other:?}"),
        }
    }

    // A safeguard whose tagged tests all skipped stops the build.
    let logoff = "164.312(a)(2)(iii)";
    let skipped = results(&root, &tags, &|t| {
        if t.ids.iter().any(|i| i == logoff) {
            As::Skipped
        } else {
            As::Passed
        }
    });
    let e = build::build(
        &root,
        &options(skipped.path(), &out.path().join("c"), "none", None),
    )
    .unwrap_err();
    assert!(e.contains(&format!("{logoff} (Automatic logoff)")), "{e}");
    assert!(e.contains("skipped"), "{e}");

    // The next pack (throw-away key) lists a test that stopped passing.
    let victim = tags
        .iter()
        .find(|t| t.ids.iter().any(|i| i == "164.312(b)"))
        .unwrap();
    let one_failed = results(&root, &tags, &|t| {
        if t.key() == victim.key() {
            As::Failed
        } else {
            As::Passed
        }
    });
    let b = build::build(
        &root,
        &options(
            one_failed.path(),
            &out.path().join("b"),
            a.dir.to_str().unwrap(),
            None,
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let v = verify_pack(&b.dir, None).unwrap();
    assert_eq!(v.manifest.key_kind, lethe_pack::KeyKind::ThrowAway);
    let changes = std::fs::read_to_string(b.dir.join("html/changes.html")).unwrap();
    assert!(
        changes.contains(&format!(
            "<code>{}</code> was passed, now FAILED",
            victim.key()
        )),
        "{changes}"
    );
    let results_page = std::fs::read_to_string(b.dir.join("html/test-results.html")).unwrap();
    assert!(results_page.contains("FAILED"), "{results_page}");
}
