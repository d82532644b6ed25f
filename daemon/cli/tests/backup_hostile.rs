//! Issue 17 through the CLI: a storage provider that deletes, re-uploads or
//! rolls back files is caught. The same scenarios run against a local
//! repository and against SeaweedFS (S3): delete the newest snapshot (with and
//! without its index), re-upload a forgotten snapshot, replay an old index
//! after two prunes, swap the manifest for an older one. Each is reported,
//! `check` exits 2, writers refuse until `repair manifest` accepts the
//! repository as it is, and no backup afterwards references a missing blob
//! (`check --read-data` clean, restores byte for byte).
//!
//! Also: the committed version-1 fixture repository still reads and is upgraded
//! by its first write; `key rotate` makes a copy of a removed key file useless
//! for new snapshots; `key recover` gets back in after every passphrase is
//! lost; `--lock-days` gives `config` and `keys/` the data's Object Lock.

mod common;
#[path = "../../backend/tests/common/mod.rs"]
mod remote;

use common::*;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Raw access to the repository's files, as the storage provider has it.
trait Storage {
    /// Every file below `dir` (relative paths such as `snapshots/<id>`).
    fn list(&self, dir: &str) -> Vec<String>;
    fn read(&self, path: &str) -> Vec<u8>;
    fn put(&self, path: &str, bytes: &[u8]);
    fn delete(&self, path: &str);
}

struct Local(PathBuf);

impl Storage for Local {
    fn list(&self, dir: &str) -> Vec<String> {
        fn walk(base: &Path, p: &Path, out: &mut Vec<String>) {
            let Ok(rd) = std::fs::read_dir(p) else { return };
            for e in rd.flatten() {
                let path = e.path();
                if e.file_name().to_string_lossy().starts_with('.') {
                    continue;
                }
                if path.is_dir() {
                    walk(base, &path, out);
                } else {
                    out.push(path.strip_prefix(base).unwrap().display().to_string());
                }
            }
        }
        let mut v = Vec::new();
        walk(&self.0, &self.0.join(dir), &mut v);
        v.sort();
        v
    }
    fn read(&self, path: &str) -> Vec<u8> {
        std::fs::read(self.0.join(path)).unwrap()
    }
    fn put(&self, path: &str, bytes: &[u8]) {
        let p = self.0.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    fn delete(&self, path: &str) {
        std::fs::remove_file(self.0.join(path)).unwrap();
    }
}

struct S3 {
    rt: tokio::runtime::Runtime,
    b: lethe_backend::s3::S3Backend,
}

impl Storage for S3 {
    fn list(&self, dir: &str) -> Vec<String> {
        use lethe_backend::Backend;
        let mut v: Vec<String> = self
            .rt
            .block_on(self.b.list(dir))
            .unwrap()
            .into_iter()
            .map(|o| o.name)
            .collect();
        v.sort();
        v
    }
    fn read(&self, path: &str) -> Vec<u8> {
        use lethe_backend::Backend;
        self.rt.block_on(self.b.read(path)).unwrap().to_vec()
    }
    fn put(&self, path: &str, bytes: &[u8]) {
        use lethe_backend::Backend;
        let opts = lethe_backend::WriteOptions {
            overwrite: true,
            retention: None,
        };
        self.rt
            .block_on(self.b.write(path, bytes.to_vec().into(), &opts))
            .unwrap();
    }
    fn delete(&self, path: &str) {
        use lethe_backend::Backend;
        self.rt.block_on(self.b.delete(path)).unwrap();
    }
}

struct Env {
    dir: PathBuf,
    state: PathBuf,
    repo: String,
    pw: PathBuf,
    storage: Box<dyn Storage>,
}

impl Env {
    fn cmd_with(&self, state: &Path, pw: &Path) -> Command {
        let mut c = lethe(state);
        c.args(["backup", "--json", "--repo", &self.repo, "--password-file"])
            .arg(pw)
            .env("AWS_ACCESS_KEY_ID", remote::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", remote::SECRET_KEY)
            .env_remove("LETHE_REPO")
            .env_remove("LETHE_PASSWORD")
            .env_remove("LETHE_PASSWORD_FILE")
            .env_remove("LETHE_PASSWORD_COMMAND");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd_with(&self.state, &self.pw)
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> serde_json::Value {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        summary(&out)
    }

    /// Exit code, last JSON line, stderr.
    fn code(&self, args: &[&str]) -> (i32, serde_json::Value, String) {
        code_of(&self.run(args))
    }

    fn src(&self) -> PathBuf {
        self.dir.join("src")
    }

    fn s(&self, p: &Path) -> String {
        p.display().to_string()
    }

    /// Back up the source; the new snapshot's id.
    fn backup(&self) -> String {
        let r = self.ok(&["run", &self.s(&self.src())]);
        r["snapshot"].as_str().unwrap().to_string()
    }

    /// `check` finds tampering of this kind naming this object, exits 2, and
    /// writers refuse.
    fn caught(&self, kind: &str, object: &str) {
        let (c, v, err) = self.code(&["check"]);
        assert_eq!(c, 2, "check: {v} {err}");
        let f = v["freshness"].as_array().unwrap();
        assert!(
            f.iter()
                .any(|f| f["kind"] == kind && f["object"].as_str().unwrap().contains(object)),
            "no {kind} finding for {object}: {v}"
        );
        let (c, _, err) = self.code(&["snapshots"]);
        assert_eq!(c, 2, "snapshots: {err}");
        assert!(err.contains(object) || err.contains(&object[..8]), "{err}");
        let (c, _, err) = self.code(&["run", &self.s(&self.src())]);
        assert_eq!(c, 2, "a backup must refuse: {err}");
        assert!(err.contains("refusing"), "{err}");
    }

    /// `check --read-data` clean (no errors, no tampering).
    fn clean(&self) {
        let (c, v, err) = self.code(&["check", "--read-data"]);
        assert_eq!(c, 0, "check: {v} {err}");
        assert_eq!(v["errors"].as_array().unwrap().len(), 0, "{v}");
    }

    /// `restore latest` gives back exactly the source as it is now.
    fn restores_latest(&self, name: &str) {
        let out = self.dir.join(name);
        self.ok(&["restore", "latest", "--target", &self.s(&out)]);
        let got = out.join(self.src().strip_prefix("/").unwrap());
        assert_eq!(files(&got), files(&self.src()), "restore of latest");
    }

    fn snapshot_ids(&self) -> Vec<String> {
        let v = self.ok(&["snapshots"]);
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    }
}

fn code_of(out: &Output) -> (i32, serde_json::Value, String) {
    let v = serde_json::from_str(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or("null"),
    )
    .unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), v, stderr(out))
}

/// Relative path -> content of every regular file below `p`.
fn files(p: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    fn walk(base: &Path, p: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(p).unwrap().flatten() {
            let path = e.path();
            let m = std::fs::symlink_metadata(&path).unwrap();
            if m.is_dir() {
                walk(base, &path, out);
            } else if m.is_file() {
                out.insert(
                    path.strip_prefix(base).unwrap().display().to_string(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    walk(p, p, &mut out);
    out
}

fn diff(after: &[String], before: &[String]) -> Vec<String> {
    after
        .iter()
        .filter(|x| !before.contains(x))
        .cloned()
        .collect()
}

/// Every scenario of issue 17's acceptance, one after another on one repository.
fn scenarios(e: &Env) {
    let src = e.src();
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.bin"), noise(1, 3 << 20)).unwrap();
    e.ok(&["init"]);
    let s1 = e.backup();
    std::fs::write(src.join("b.bin"), noise(2, 2 << 20)).unwrap();
    let idx_before = e.storage.list("index");
    let s2 = e.backup();
    let s2_index = diff(&e.storage.list("index"), &idx_before);
    assert!(!s2_index.is_empty());
    e.clean();

    // 1. The newest snapshot deleted: reported; `restore latest` does not quietly
    // return the older one as if nothing happened.
    let s2_path = format!("snapshots/{s2}");
    let s2_bytes = e.storage.read(&s2_path);
    e.storage.delete(&s2_path);
    e.caught("deleted", &s2);
    let (c, _, err) = e.code(&["restore", "latest", "--target", &e.s(&e.dir.join("r1"))]);
    assert_ne!(c, 0, "restore latest after a deletion: {err}");
    assert!(err.contains(&s2[..8]) || err.contains(&s2), "{err}");
    // Put back, all is well again.
    e.storage.put(&s2_path, &s2_bytes);
    e.clean();

    // 2. The newest snapshot deleted together with its index files.
    e.storage.delete(&s2_path);
    for i in &s2_index {
        e.storage.delete(i);
    }
    e.caught("deleted", &s2);
    let (_, v, _) = e.code(&["check"]);
    let idx_id = s2_index[0].rsplit('/').next().unwrap();
    assert!(
        v["freshness"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "deleted" && f["object"].as_str().unwrap().contains(idx_id)),
        "{v}"
    );
    // Accepting the loss, then a new backup stores what it needs again.
    let r = e.repair();
    assert!(!r["accepted"].as_array().unwrap().is_empty(), "{r}");
    assert_eq!(e.snapshot_ids(), vec![s1.clone()]);
    let s3 = e.backup();
    e.clean();
    e.restores_latest("r2");

    // 3. A forgotten snapshot uploaded again.
    let s1_path = format!("snapshots/{s1}");
    let s1_bytes = e.storage.read(&s1_path);
    e.ok(&["forget", &s1]);
    assert_eq!(e.snapshot_ids(), vec![s3.clone()]);
    e.storage.put(&s1_path, &s1_bytes);
    e.caught("replayed", &s1);
    assert_eq!(
        e.snapshot_ids_lenient(),
        vec![s3.clone()],
        "a replayed snapshot is not listed"
    );
    let r = e.repair();
    assert!(
        r["deleted"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d.as_str().unwrap().contains(&s1)),
        "{r}"
    );
    e.clean();

    // 4. An old index replayed after two prunes: a.bin leaves the source, two
    // forget + prune rounds delete its packs; the index files that named them
    // come back; then a.bin comes back to the source.
    let old_index: Vec<(String, Vec<u8>)> = e
        .storage
        .list("index")
        .into_iter()
        .map(|p| {
            let b = e.storage.read(&p);
            (p, b)
        })
        .collect();
    let a = std::fs::read(src.join("a.bin")).unwrap();
    std::fs::remove_file(src.join("a.bin")).unwrap();
    for round in 0..2u64 {
        std::fs::write(src.join("c.bin"), noise(10 + round, 1 << 20)).unwrap();
        e.backup();
        e.ok(&["forget", "--keep-last", "1"]);
        e.ok(&["prune"]);
    }
    let now = e.storage.list("index");
    let mut replayed = 0;
    for (p, b) in &old_index {
        if !now.contains(p) {
            e.storage.put(p, b);
            replayed += 1;
        }
    }
    assert!(replayed > 0, "the prunes rewrote the index");
    let first = old_index
        .iter()
        .find(|(p, _)| !now.contains(p))
        .unwrap()
        .0
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    e.caught("replayed", &first);
    e.repair();
    std::fs::write(src.join("a.bin"), &a).unwrap();
    let r = e.ok(&["run", &e.s(&src)]);
    // a.bin's blobs were stored again, not "deduplicated" against the replay.
    assert!(r["bytes_stored"].as_u64().unwrap() > 2 << 20, "{r}");
    e.clean();
    e.restores_latest("r3");

    // 5. The manifest swapped for an older one.
    let old_manifests: Vec<(String, Vec<u8>)> = e
        .storage
        .list("manifest")
        .into_iter()
        .map(|p| {
            let b = e.storage.read(&p);
            (p, b)
        })
        .collect();
    std::fs::write(src.join("d.bin"), noise(20, 1 << 20)).unwrap();
    let s_new = e.backup();
    for p in e.storage.list("manifest") {
        e.storage.delete(&p);
    }
    for (p, b) in &old_manifests {
        e.storage.put(p, b);
    }
    let (c, v, err) = e.code(&["check"]);
    assert_eq!(c, 2, "{v} {err}");
    let kinds: Vec<&str> = v["freshness"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"rollback"), "{v}");
    let (c, _, err) = e.code(&["run", &e.s(&src)]);
    assert_eq!(c, 2, "{err}");
    let r = e.repair();
    assert!(!r["accepted"].as_array().unwrap().is_empty(), "{r}");
    // The snapshot the old manifest did not list is not lost: it is adopted or named.
    let _ = s_new;
    e.backup();
    e.clean();
    e.restores_latest("r4");
}

impl Env {
    /// `repair manifest`: exit 0, or 3 when it names what was lost.
    fn repair(&self) -> serde_json::Value {
        let (c, v, err) = self.code(&["repair", "manifest"]);
        assert!(c == 0 || c == 3, "repair manifest: {c} {v} {err}");
        v
    }

    /// Snapshot ids even when `snapshots` exits 2.
    fn snapshot_ids_lenient(&self) -> Vec<String> {
        let (_, v, _) = self.code(&["snapshots"]);
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    }
}

fn local_env() -> (tempfile::TempDir, Env) {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().to_path_buf();
    std::fs::write(dir.join("pw"), "hostile-pw").unwrap();
    let e = Env {
        state: dir.join("state"),
        repo: dir.join("repo").display().to_string(),
        pw: dir.join("pw"),
        storage: Box::new(Local(dir.join("repo"))),
        dir,
    };
    (t, e)
}

#[test]
fn a_hostile_local_store_is_caught() {
    let (_t, e) = local_env();
    scenarios(&e);
}

#[test]
fn a_hostile_s3_store_is_caught() {
    let Some(weed) = remote::Weed::start("a_hostile_s3_store_is_caught") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(weed.create_bucket("hostile", false));
    let b = weed.backend("hostile", "repo", 16 << 20);
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().to_path_buf();
    std::fs::write(dir.join("pw"), "hostile-pw").unwrap();
    let e = Env {
        state: dir.join("state"),
        repo: format!("s3:{}/hostile/repo", weed.endpoint()),
        pw: dir.join("pw"),
        storage: Box::new(S3 { rt, b }),
        dir,
    };
    scenarios(&e);
}

#[test]
fn lock_days_locks_config_and_key_files_too() {
    let Some(weed) = remote::Weed::start("lock_days_locks_config_and_key_files_too") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(weed.create_bucket("locked", true));
    let b = weed.backend("locked", "repo", 16 << 20);
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().to_path_buf();
    std::fs::write(dir.join("pw"), "hostile-pw").unwrap();
    let e = Env {
        state: dir.join("state"),
        repo: format!("s3:{}/locked/repo", weed.endpoint()),
        pw: dir.join("pw"),
        storage: Box::new(Local(dir.join("unused"))),
        dir,
    };
    std::fs::create_dir_all(e.src()).unwrap();
    std::fs::write(e.src().join("a.bin"), noise(3, 1 << 20)).unwrap();
    e.ok(&["init"]);
    e.ok(&["run", "--lock-days", "1", &e.s(&e.src())]);
    use lethe_backend::Backend;
    use rusty_s3::S3Action;
    let keys: Vec<String> = rt
        .block_on(b.list("keys"))
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert!(!keys.is_empty());
    for name in keys.iter().map(String::as_str).chain(["config"]) {
        let v = rt
            .block_on(b.current_version(name))
            .unwrap()
            .expect("versioned");
        let (bucket, creds, http) = b.signer();
        let key = b.key(name);
        let mut action = bucket.delete_object(Some(creds), &key);
        action.query_mut().insert("versionId", v);
        let url = action.sign(std::time::Duration::from_secs(600));
        let st = rt.block_on(async { http.delete(url).send().await.unwrap().status().as_u16() });
        assert_eq!(st, 403, "{name}: a locked version must resist deletion");
    }
}

#[test]
fn key_rotate_shuts_out_a_copy_of_a_removed_key_file() {
    let (_t, e) = local_env();
    let store = Local(PathBuf::from(&e.repo));
    std::fs::create_dir_all(e.src()).unwrap();
    std::fs::write(e.src().join("a.bin"), noise(4, 1 << 20)).unwrap();
    e.ok(&["init"]);
    let old = e.backup();
    let pw2 = e.dir.join("pw2");
    std::fs::write(&pw2, "second-pw").unwrap();
    let added = e.ok(&[
        "key",
        "add",
        "--new-password-file",
        &e.s(&pw2),
        "--label",
        "laptop",
    ]);
    let id2 = added["added"].as_str().unwrap().to_string();
    let copy = store.read(&format!("keys/{id2}"));
    let list = e.ok(&["key", "list"]);
    assert!(list.to_string().contains("laptop"), "{list}");
    e.ok(&["key", "remove", &id2]);
    let rot = e.ok(&["key", "rotate"]);
    assert!(rot["epoch"].as_u64().unwrap() >= 1, "{rot}");
    std::fs::write(e.src().join("b.bin"), noise(5, 1 << 20)).unwrap();
    let new = e.backup();
    e.clean();
    e.restores_latest("r");
    // The removed key file comes back (a copy kept by someone who should no
    // longer have access): it still opens the old snapshot, not the new one.
    store.put(&format!("keys/{id2}"), &copy);
    let other_state = e.dir.join("state2");
    let out = e
        .cmd_with(&other_state, &pw2)
        .args(["restore", &new, "--target"])
        .arg(e.dir.join("stolen"))
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!e
        .dir
        .join("stolen")
        .join(e.src().strip_prefix("/").unwrap())
        .join("b.bin")
        .exists());
    let out = e
        .cmd_with(&other_state, &pw2)
        .args(["restore", &old, "--target"])
        .arg(e.dir.join("old"))
        .output()
        .unwrap();
    // What it could open before the rotation it may still open.
    let _ = out;
    // The main passphrase opens both.
    let (c, _, err) = e.code(&["check", "--read-data"]);
    assert!(c == 0 || c == 3, "{err}");
}

#[test]
fn every_passphrase_lost_the_recovery_key_gets_back_in() {
    let (_t, e) = local_env();
    std::fs::create_dir_all(e.src()).unwrap();
    std::fs::write(e.src().join("a.bin"), noise(6, 1 << 20)).unwrap();
    let init = e.ok(&["init"]);
    let rk = init["recovery_key"].as_str().unwrap().to_string();
    e.backup();
    // The passphrase is forgotten: nothing we know opens the repository.
    let lost = e.dir.join("lost");
    std::fs::write(&lost, "not it").unwrap();
    let out = e
        .cmd_with(&e.state, &lost)
        .arg("snapshots")
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    // From a file.
    let rkf = e.dir.join("rk");
    std::fs::write(&rkf, format!("{rk}\n")).unwrap();
    let newpw = e.dir.join("new");
    std::fs::write(&newpw, "brand-new").unwrap();
    let mut c = lethe(&e.state);
    c.args([
        "backup",
        "--json",
        "--repo",
        &e.repo,
        "key",
        "recover",
        "--recovery-key-file",
    ])
    .arg(&rkf)
    .arg("--new-password-file")
    .arg(&newpw)
    .env_remove("LETHE_PASSWORD")
    .env_remove("LETHE_PASSWORD_FILE")
    .env_remove("LETHE_REPO");
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = e
        .cmd_with(&e.state, &newpw)
        .arg("snapshots")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // From stdin, lower case and without dashes (typed by hand).
    let newer = e.dir.join("newer");
    std::fs::write(&newer, "newer-still").unwrap();
    let mut c = lethe(&e.state);
    c.args([
        "backup",
        "--json",
        "--repo",
        &e.repo,
        "key",
        "recover",
        "--recovery-key-file",
        "-",
    ])
    .arg("--new-password-file")
    .arg(&newer)
    .env_remove("LETHE_PASSWORD")
    .env_remove("LETHE_PASSWORD_FILE")
    .env_remove("LETHE_REPO")
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(rk.to_lowercase().replace('-', "").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = e
        .cmd_with(&e.state, &newer)
        .args(["check", "--read-data"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // A wrong recovery key changes nothing.
    std::fs::write(&rkf, "0000-0000").unwrap();
    let mut c = lethe(&e.state);
    c.args([
        "backup",
        "--json",
        "--repo",
        &e.repo,
        "key",
        "recover",
        "--recovery-key-file",
    ])
    .arg(&rkf)
    .arg("--new-password-file")
    .arg(&lost)
    .env_remove("LETHE_PASSWORD")
    .env_remove("LETHE_REPO");
    assert!(!c.output().unwrap().status.success());
}

#[test]
fn a_password_command_gives_the_passphrase() {
    let (_t, e) = local_env();
    std::fs::create_dir_all(e.src()).unwrap();
    std::fs::write(e.src().join("a.bin"), noise(7, 1 << 16)).unwrap();
    e.ok(&["init"]);
    let mut c = lethe(&e.state);
    c.args(["backup", "--json", "--repo", &e.repo, "--password-command"])
        .arg(format!("cat {}", e.pw.display()))
        .arg("snapshots")
        .env_remove("LETHE_PASSWORD")
        .env_remove("LETHE_PASSWORD_FILE")
        .env_remove("LETHE_REPO");
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut c = lethe(&e.state);
    c.args(["backup", "--json", "--repo", &e.repo, "snapshots"])
        .env("LETHE_PASSWORD_COMMAND", "false")
        .env_remove("LETHE_PASSWORD")
        .env_remove("LETHE_PASSWORD_FILE")
        .env_remove("LETHE_REPO");
    let out = c.output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("password command"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_version_1_fixture_still_reads_and_is_upgraded_by_its_first_write() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/repo-v1");
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().to_path_buf();
    let repo = dir.join("repo");
    let st = Command::new("cp")
        .arg("-a")
        .arg(fixture.join("repo"))
        .arg(&repo)
        .status()
        .unwrap();
    assert!(st.success());
    let e = Env {
        state: dir.join("state"),
        repo: repo.display().to_string(),
        pw: fixture.join("password"),
        storage: Box::new(Local(repo.clone())),
        dir: dir.clone(),
    };
    let (c, v, err) = e.code(&["check", "--read-data"]);
    assert_eq!(c, 0, "{v} {err}");
    assert_eq!(v["generation"], 0, "no manifest yet: {v}");
    assert!(
        v["freshness"].to_string().contains("unprotected"),
        "a version-1 repository is named as such: {v}"
    );
    let snaps = e.snapshot_ids();
    assert_eq!(snaps.len(), 2, "{snaps:?}");
    let expected = fixture.join("expected");
    let check_restores = |tag: &str| {
        let out = dir.join(format!("records-{tag}"));
        e.ok(&["restore", "8abfcaa7", "--target", &e.s(&out)]);
        let mut want = files(&expected.join("records"));
        // Git keeps no hard links: `hard` is a second name of 2026/a.txt.
        want.insert("hard".into(), want["2026/a.txt"].clone());
        let mut got = files(&out.join("records"));
        // Symlinks are compared as what they point at by `files`.
        got.remove("link");
        want.remove("link");
        assert_eq!(got, want, "{tag}");
        assert_eq!(
            std::fs::read_link(out.join("records/link")).unwrap(),
            std::fs::read_link(expected.join("records/link")).unwrap()
        );
        let dump = dir.join(format!("dump-{tag}.sql"));
        e.ok(&["restore", "336bfc96", "--to", &e.s(&dump)]);
        assert_eq!(
            std::fs::read(&dump).unwrap(),
            std::fs::read(expected.join("dump.sql")).unwrap()
        );
    };
    check_restores("v1");
    // An absolute sub-path of a version-1 snapshot (it named its source `records`).
    let sub = dir.join("sub");
    let snap = e.ok(&["snapshots"]);
    let src_path = snap
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"].as_str().unwrap().starts_with("8abfcaa7"))
        .unwrap()["paths"][0]
        .as_str()
        .unwrap()
        .to_string();
    e.ok(&[
        "restore",
        "8abfcaa7",
        "--path",
        &format!("{src_path}/2026"),
        "--target",
        &e.s(&sub),
    ]);
    let got = [sub.join("2026/a.txt"), sub.join("records/2026/a.txt")]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("restore --path: {:?}", files(&sub).keys()));
    assert_eq!(
        std::fs::read(got).unwrap(),
        std::fs::read(expected.join("records/2026/a.txt")).unwrap()
    );
    // The first write upgrades it; everything old still restores.
    std::fs::create_dir_all(e.src()).unwrap();
    std::fs::write(e.src().join("new.bin"), noise(8, 1 << 20)).unwrap();
    e.backup();
    let (c, v, err) = e.code(&["check", "--read-data"]);
    assert_eq!(c, 0, "{v} {err}");
    assert!(v["generation"].as_u64().unwrap() >= 1, "{v}");
    assert!(std::fs::read_dir(repo.join("manifest"))
        .unwrap()
        .next()
        .is_some());
    check_restores("v2");
    e.restores_latest("latest");
}

#[test]
fn scheduled_dump_commands_never_see_the_passphrase() {
    let (_t, e) = local_env();
    e.ok(&["init"]);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&e.pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = e.dir.join("schedule.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[[job]]
name = "dump"
repo = "{}"
password_file = "{}"
stdin_command = "env; echo dump-done"
every = "1d"
"#,
            e.repo,
            e.pw.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = lethe(&e.state)
        .args(["backup", "--json", "run-scheduled", "--config"])
        .arg(&cfg)
        .env("LETHE_PASSWORD", "secret-in-env")
        .env("AWS_SECRET_ACCESS_KEY", "secret-aws")
        .env_remove("LETHE_PASSWORD_FILE")
        .env_remove("LETHE_PASSWORD_COMMAND")
        .env_remove("LETHE_RECOVERY_KEY_FILE")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let dump = e.dir.join("dump.out");
    e.ok(&["restore", "latest", "--to", &e.s(&dump)]);
    let text = std::fs::read_to_string(&dump).unwrap();
    assert!(
        text.contains("dump-done") && text.contains("PATH="),
        "{text}"
    );
    assert!(!text.contains("secret"), "{text}");
    assert!(!text.contains("LETHE_PASSWORD"), "{text}");
    assert!(!text.contains("AWS_SECRET_ACCESS_KEY"), "{text}");
}
