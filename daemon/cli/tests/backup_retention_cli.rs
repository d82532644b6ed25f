//! Issue 13 item 7, the rest of it through the CLI: `drill` honours the
//! snapshot filters, `forget --keep-within` keeps by age and says why in
//! words, out-of-range `--keep-within` and `--read-data` values are refused
//! before anything is read, and `run-scheduled` says when each job is next due.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::{Command, Output};

struct R {
    _t: tempfile::TempDir,
    dir: PathBuf,
}

impl R {
    fn new() -> R {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().to_path_buf();
        std::fs::write(dir.join("pw"), "retention-pw").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("pw"), std::fs::Permissions::from_mode(0o600)).unwrap();
        R { _t: t, dir }
    }
    fn s(&self, rel: &str) -> String {
        self.dir.join(rel).display().to_string()
    }
    fn cmd(&self) -> Command {
        let mut c = lethe(&self.dir.join("state"));
        c.args([
            "backup",
            "--repo",
            &self.s("repo"),
            "--password-file",
            &self.s("pw"),
        ])
        .env_remove("LETHE_REPO")
        .env_remove("LETHE_PASSWORD")
        .env_remove("LETHE_PASSWORD_FILE")
        .env_remove("LETHE_PASSWORD_COMMAND");
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }
    fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.cmd().arg("--json").args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let text = String::from_utf8(out.stdout).unwrap();
        let last = text.lines().last().unwrap_or("");
        serde_json::from_str(last).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text}"))
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn drill_filters_keep_within_bounds_and_next_due() {
    let r = R::new();
    let (ward, lab) = (r.dir.join("ward"), r.dir.join("lab"));
    std::fs::create_dir_all(&ward).unwrap();
    std::fs::create_dir_all(&lab).unwrap();
    for i in 0..4 {
        std::fs::write(ward.join(format!("w{i}.txt")), format!("ward record {i}")).unwrap();
        std::fs::write(lab.join(format!("l{i}.txt")), format!("lab result {i}")).unwrap();
    }
    let (ward_s, lab_s) = (ward.display().to_string(), lab.display().to_string());
    r.json(&["init"]);
    let w = r.json(&["run", &ward_s, "--tag", "ward"])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    let l = r.json(&["run", &lab_s, "--tag", "lab"])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(w, l);

    // `drill` drills the newest snapshot that its filters accept, not the
    // newest of the repository.
    let scratch = r.s("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    for (filter, value, want) in [
        ("--tag", "ward", &w),
        ("--path", ward_s.as_str(), &w),
        ("--tag", "lab", &l),
    ] {
        let d = r.json(&[
            "drill",
            filter,
            value,
            "--sample",
            "3",
            "--scratch",
            &scratch,
        ]);
        assert_eq!(
            d["snapshot"].as_str(),
            Some(want.as_str()),
            "{filter} {value}: {d}"
        );
        assert!(d["failures"].as_array().unwrap().is_empty(), "{d}");
        assert!(
            d["items"].as_u64().unwrap() > 0,
            "a drill reads something: {d}"
        );
    }
    let none = r.run(&["drill", "--tag", "radiology", "--scratch", &scratch]);
    assert_ne!(
        none.status.code(),
        Some(0),
        "no snapshot matches: not a pass"
    );

    // --keep-within keeps by age, and says so in words (no debug text).
    let out = r.run(&["forget", "--keep-within", "1d"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(
        text.matches("inside the --keep-within window").count(),
        2,
        "{text}"
    );
    assert!(text.contains("0 snapshot(s) removed"), "{text}");
    assert!(!text.contains("Within") && !text.contains('{'), "{text}");
    // A retention rule that keeps nothing of a group removes it, with the
    // reason in words; the other group is decided on its own.
    let f = r.json(&["forget", "--keep-last", "1", "--tag", "lab", "--dry-run"]);
    let decisions = f["decisions"].as_array().unwrap();
    assert!(decisions.iter().all(|d| d["keep"] == true), "{f}");
    assert_eq!(f["removed"], 0, "{f}");

    // Out-of-range values are refused before anything is read.
    for bad in ["soon", "0h", "-1d", "7x"] {
        let out = r.run(&["forget", &format!("--keep-within={bad}")]);
        assert_ne!(out.status.code(), Some(0), "--keep-within {bad}");
        assert!(
            stderr(&out).contains("--keep-within"),
            "{bad}: {}",
            stderr(&out)
        );
    }
    for bad in ["0", "0%", "101%", "-5", "ten"] {
        let out = r.run(&["check", &format!("--read-data={bad}")]);
        assert_ne!(out.status.code(), Some(0), "--read-data={bad}");
        assert!(
            !stdout(&out).contains("no errors"),
            "--read-data={bad} read nothing and must not say 'no errors': {}",
            stdout(&out)
        );
    }
    let c = r.json(&["check", "--read-data=10%"]);
    assert_eq!(c["errors"].as_array().unwrap().len(), 0, "{c}");

    // run-scheduled says when each job is next due.
    let sched = r.dir.join("schedule.toml");
    std::fs::write(
        &sched,
        format!(
            r#"[[job]]
name = "ward-nightly"
repo = "{repo}"
password_file = "{pw}"
paths = ["{src}"]
every = "1d"
keep_daily = 7
drill_every = "1w"
"#,
            repo = r.s("repo"),
            pw = r.s("pw"),
            src = ward_s,
        ),
    )
    .unwrap();
    let out = lethe(&r.dir.join("state"))
        .args(["backup", "run-scheduled", "--config"])
        .arg(&sched)
        .env_remove("LETHE_REPO")
        .env_remove("LETHE_PASSWORD")
        .env_remove("LETHE_PASSWORD_FILE")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.starts_with("ward-nightly") && l.contains("next backup"))
        .unwrap_or_else(|| panic!("no next-due line for the job: {text}"));
    assert!(text.contains("ward-nightly     backup  PASS"), "{text}");
    assert!(line.contains("next backup 20"), "{line}");
    assert!(line.contains("next drill 20"), "{line}");
}
