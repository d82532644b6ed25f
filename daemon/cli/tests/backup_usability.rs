//! Issue 13 item 7 through the CLI: snapshots keep absolute source paths (two
//! sources with the same last name, `restore --path /abs/sub`), `--host`,
//! `--tag` and `--path` filters and `latest` honouring them, `forget ID`,
//! every `--json` prints JSON (no JSON inside strings), a closed pipe ends
//! quietly, an unknown scheme is an error, a missing repository suggests
//! `backup init`, `schedule check` validates a schedule file.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

struct R {
    _t: tempfile::TempDir,
    dir: PathBuf,
}

impl R {
    fn new() -> R {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().to_path_buf();
        std::fs::write(dir.join("pw"), "usable-pw").unwrap();
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
    /// `--json`: the whole stdout is JSON (one value on its last line).
    fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.cmd().arg("--json").args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let text = String::from_utf8(out.stdout).unwrap();
        let last = text.lines().last().unwrap_or("");
        serde_json::from_str(last).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text}"))
    }
}

/// No string anywhere in `v` is itself a JSON object or array.
fn no_json_in_strings(v: &serde_json::Value) {
    match v {
        serde_json::Value::String(s) => {
            let t = s.trim_start();
            assert!(
                !(t.starts_with('{') || t.starts_with('['))
                    || serde_json::from_str::<serde_json::Value>(s).is_err(),
                "JSON inside a string: {s}"
            );
        }
        serde_json::Value::Array(a) => a.iter().for_each(no_json_in_strings),
        serde_json::Value::Object(o) => o.values().for_each(no_json_in_strings),
        _ => {}
    }
}

fn rel(p: &Path) -> &Path {
    p.strip_prefix("/").unwrap()
}

#[test]
fn absolute_paths_filters_forget_ids_and_json() {
    let r = R::new();
    let (a, b) = (r.dir.join("a/records"), r.dir.join("b/records"));
    std::fs::create_dir_all(a.join("2026")).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(a.join("2026/jan.txt"), "a-jan").unwrap();
    std::fs::write(a.join("old.txt"), "a-old").unwrap();
    std::fs::write(b.join("2026"), "b-file").unwrap();
    r.json(&["init"]);
    // Two sources with the same last name, one snapshot.
    let both = r.json(&[
        "run",
        &a.display().to_string(),
        &b.display().to_string(),
        "--tag",
        "nightly,records",
        "--host",
        "ward-1",
    ]);
    let both = both["snapshot"].as_str().unwrap().to_string();
    let only_a = r.json(&["run", &a.display().to_string(), "--tag", "adhoc"]);
    let only_a = only_a["snapshot"].as_str().unwrap().to_string();
    // The full restore puts each source at its absolute path.
    let full = r.dir.join("full");
    r.json(&["restore", &both, "--target", &full.display().to_string()]);
    assert_eq!(
        std::fs::read_to_string(full.join(rel(&a)).join("2026/jan.txt")).unwrap(),
        "a-jan"
    );
    assert_eq!(
        std::fs::read_to_string(full.join(rel(&b)).join("2026")).unwrap(),
        "b-file"
    );
    // restore --path /abs/sub: only that, with the directories above it.
    let sub = r.dir.join("sub");
    let sub_path = a.join("2026").display().to_string();
    r.json(&[
        "restore",
        "latest",
        "--path",
        &sub_path,
        "--target",
        &sub.display().to_string(),
    ]);
    assert_eq!(
        std::fs::read_to_string(sub.join(rel(&a)).join("2026/jan.txt")).unwrap(),
        "a-jan"
    );
    assert!(!sub.join(rel(&a)).join("old.txt").exists());
    // Filters: --host, --tag (a,b = both), --path; `latest` honours them.
    let ids = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["snapshots"];
        all.extend_from_slice(args);
        r.json(&all)
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&["--host", "ward-1"]), vec![both.clone()]);
    assert_eq!(ids(&["--tag", "nightly,records"]), vec![both.clone()]);
    assert!(ids(&["--tag", "nightly,adhoc"]).is_empty());
    assert_eq!(ids(&["--tag", "adhoc", "--tag", "nightly"]).len(), 2);
    assert_eq!(
        ids(&["--path", &b.display().to_string()]),
        vec![both.clone()]
    );
    let tagged = r.dir.join("tagged");
    let v = r.json(&[
        "restore",
        "latest",
        "--tag",
        "nightly",
        "--target",
        &tagged.display().to_string(),
    ]);
    assert_eq!(v["snapshot"], both, "latest among the filtered: {v}");
    // ls, key list and history print JSON, without JSON inside strings.
    let ls = r.json(&["ls", &only_a]);
    assert!(ls.as_array().unwrap().iter().any(|e| e["path"]
        .as_str()
        .unwrap()
        .ends_with("records/2026/jan.txt")));
    let keys = r.json(&["key", "list"]);
    let k = &keys.as_array().unwrap()[0];
    assert!(
        k["label"].is_string() && k["created"].as_u64().unwrap() > 0,
        "{keys}"
    );
    let h = r.json(&["history"]);
    assert!(!h.as_array().unwrap().is_empty());
    no_json_in_strings(&h);
    no_json_in_strings(&ls);
    // forget ID: exactly that snapshot.
    let f = r.json(&["forget", &only_a[..12]]);
    no_json_in_strings(&f);
    assert_eq!(ids(&[]), vec![both.clone()]);
    // A closed pipe ends quietly (exit 0, nothing on stderr).
    let mut child = r
        .cmd()
        .args(["ls", &both])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).trim().is_empty(), "{}", stderr(&out));
}

#[test]
fn unknown_schemes_and_missing_repositories_say_what_to_do() {
    let r = R::new();
    let out = lethe(&r.dir.join("state"))
        .args([
            "backup",
            "--repo",
            "rest:http://127.0.0.1:8000/x",
            "--password-file",
            &r.s("pw"),
            "snapshots",
        ])
        .env_remove("LETHE_REPO")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("unknown scheme"), "{}", stderr(&out));
    assert!(!Path::new("rest:http:").exists());
    let out = r.run(&["snapshots"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("lethe backup init"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn schedule_check_validates_a_schedule_file() {
    let r = R::new();
    std::fs::create_dir_all(r.dir.join("src")).unwrap();
    let good = r.dir.join("good.toml");
    std::fs::write(
        &good,
        format!(
            r#"[[job]]
name = "records"
repo = "{repo}"
password_file = "{pw}"
paths = ["{src}"]
every = "1d"
keep_daily = 7
keep_weekly = 4
drill_every = "1w"
"#,
            repo = r.s("repo"),
            pw = r.s("pw"),
            src = r.s("src")
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(r.dir.join("pw"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = lethe(&r.dir.join("state"))
        .args(["backup", "schedule", "check"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    let bad = r.dir.join("bad.toml");
    std::fs::write(
        &bad,
        format!(
            r#"[[job]]
name = "records"
repo = "{repo}"
password_file = "/nonexistent/pw"
paths = ["/nonexistent/src"]
every = "soon"
"#,
            repo = r.s("repo"),
        ),
    )
    .unwrap();
    let out = lethe(&r.dir.join("state"))
        .args(["backup", "schedule", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
}

/// Run `lethe ARGS` on a pseudo-terminal (util-linux `script`), typing `input`
/// after a pause; what the terminal showed.
fn on_a_terminal(state: &Path, args: &str, input: &str) -> Option<(i32, String)> {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED: no `script` (util-linux) to make a terminal");
        return None;
    }
    let lethe = env!("CARGO_BIN_EXE_lethe");
    let cmd = format!(
        "env -u LETHE_PASSWORD -u LETHE_PASSWORD_FILE -u LETHE_PASSWORD_COMMAND -u LETHE_REPO {lethe} --state-dir {} backup {args}",
        state.display()
    );
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        for line in input.lines() {
            std::thread::sleep(std::time::Duration::from_millis(700));
            let _ = stdin.write_all(format!("{line}\n").as_bytes());
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    Some((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

#[test]
fn passphrases_are_asked_on_a_terminal_without_echo() {
    let r = R::new();
    let state = r.dir.join("state");
    let repo = r.s("repo");
    // init asks twice.
    let Some((code, shown)) = on_a_terminal(
        &state,
        &format!("--repo {repo} init"),
        "typed-secret-1\ntyped-secret-1",
    ) else {
        return;
    };
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("passphrase"), "{shown}");
    assert!(shown.contains("recovery key"), "{shown}");
    assert!(!shown.contains("typed-secret-1"), "echoed: {shown}");
    let recovery_key = shown
        .lines()
        .skip_while(|l| !l.contains("recovery key (print it"))
        .nth(1)
        .map(|l| l.trim().to_string())
        .unwrap_or_else(|| panic!("no recovery key shown: {shown}"));
    assert!(recovery_key.len() >= 32, "{recovery_key:?}");
    // Any command that needs it asks once.
    let (code, shown) = on_a_terminal(
        &state,
        &format!("--repo {repo} snapshots"),
        "typed-secret-1",
    )
    .unwrap();
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("passphrase"), "{shown}");
    assert!(!shown.contains("typed-secret-1"), "echoed: {shown}");
    // The file-based passphrase is the same one.
    std::fs::write(r.dir.join("pw"), "typed-secret-1").unwrap();
    assert!(r.run(&["snapshots"]).status.success());
    // Every passphrase forgotten: `key recover` asks for the printed recovery
    // key and a new passphrase, echoing neither.
    let (code, shown) = on_a_terminal(
        &state,
        &format!("--repo {repo} key recover"),
        &format!("{recovery_key}\ntyped-secret-2\ntyped-secret-2"),
    )
    .unwrap();
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains("the recovery key opened the repository"),
        "{shown}"
    );
    assert!(!shown.contains(&recovery_key), "echoed: {shown}");
    assert!(!shown.contains("typed-secret-2"), "echoed: {shown}");
    std::fs::write(r.dir.join("pw"), "typed-secret-2").unwrap();
    assert!(
        r.run(&["snapshots"]).status.success(),
        "the new passphrase opens it"
    );
}
