//! `kill -9` at random points of a backup, a prune, a restore and a drill,
//! 20 rounds each. After every kill: `check --read-data` is clean and a
//! restore is byte-exact (for a killed restore, rerunning it into the same
//! target completes it and leaves no temporary file). Kill points are spread
//! over the whole run: each kind is first timed once uncut. The seed is
//! printed; `LETHE_KILL_SEED` replays it. The commands open the repository
//! with its recovery key (no Argon2 per command: the trials stay quick).

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROUNDS: usize = 20;

struct Repo {
    _t: tempfile::TempDir,
    dir: PathBuf,
    state: PathBuf,
    repo: PathBuf,
    key: PathBuf,
}

impl Repo {
    fn new() -> Repo {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().to_path_buf();
        let r = Repo {
            state: dir.join("state"),
            repo: dir.join("repo"),
            key: dir.join("recovery"),
            dir,
            _t: t,
        };
        let pw = r.dir.join("pw");
        std::fs::write(&pw, "pw").unwrap();
        let out = lethe(&r.state)
            .args(["backup", "--json", "init", "--repo"])
            .arg(&r.repo)
            .arg("--password-file")
            .arg(&pw)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let key = summary(&out)["recovery_key"].as_str().unwrap().to_string();
        std::fs::write(&r.key, key).unwrap();
        r
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = lethe(&self.state);
        c.arg("backup")
            .arg("--json")
            .arg("--repo")
            .arg(&self.repo)
            .arg("--recovery-key-file")
            .arg(&self.key)
            .args(args)
            .env_remove("LETHE_REPO")
            .env_remove("LETHE_PASSWORD")
            .env_remove("LETHE_PASSWORD_FILE");
        c
    }

    fn ok(&self, args: &[&str]) -> serde_json::Value {
        let out = self.cmd(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        summary(&out)
    }

    fn p(&self, rel: &str) -> String {
        self.dir.join(rel).display().to_string()
    }

    /// Time one uncut run of `args`.
    fn time(&self, args: &[&str]) -> Duration {
        let t = Instant::now();
        self.ok(args);
        t.elapsed()
    }

    /// Start `args`, kill it with SIGKILL after `delay` (if still running).
    fn kill_after(&self, args: &[&str], delay: Duration) {
        let mut child = self
            .cmd(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
    }

    fn check_clean(&self, what: &str) {
        let c = self.ok(&["check", "--read-data"]);
        assert_eq!(c["errors"].as_array().unwrap().len(), 0, "{what}: {c}");
    }
}

/// Relative path → content fingerprint, not following symlinks.
fn tree(p: &Path) -> BTreeMap<String, u64> {
    use std::hash::{Hash, Hasher};
    let mut out = BTreeMap::new();
    fn walk(base: &Path, p: &Path, out: &mut BTreeMap<String, u64>) {
        for e in std::fs::read_dir(p).unwrap().flatten() {
            let path = e.path();
            let rel = path.strip_prefix(base).unwrap().display().to_string();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                std::fs::read(&path).unwrap().hash(&mut h);
                out.insert(rel, h.finish());
            }
        }
    }
    walk(p, p, &mut out);
    out
}

fn make_src(src: &Path, seed: u64) {
    for d in 0..4u64 {
        let dir = src.join(format!("d{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("big"), noise(seed * 100 + d, 1 << 20)).unwrap();
        for f in 0..10u64 {
            std::fs::write(
                dir.join(format!("s{f}")),
                noise(seed * 1000 + d * 10 + f, 4096),
            )
            .unwrap();
        }
    }
}

/// A seeded generator of kill delays within `[0, span]`.
struct Delays(u64, Duration);

impl Delays {
    fn new(name: &str, span: Duration) -> Delays {
        let seed = std::env::var("LETHE_KILL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .subsec_nanos() as u64
            });
        println!("{name}: kill seed {seed} (LETHE_KILL_SEED), span {span:?}");
        Delays(seed, span)
    }

    fn next(&mut self) -> Duration {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let frac = ((self.0 >> 33) % 1000) as u32;
        // A little past the end too: a kill after completion must be harmless.
        self.1 * frac / 900
    }
}

/// safeguard: 164.310(d)(2)(iv)
#[test]
fn kill_9_during_backup() {
    let r = Repo::new();
    let src = r.dir.join("src");
    make_src(&src, 1);
    let first = r.ok(&["run", &r.p("src")])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    let want = tree(&src);
    let src2 = r.dir.join("work/src");
    make_src(&src2, 2);
    let span = r.time(&["run", &r.p("work/src")]);
    let mut d = Delays::new("backup", span);
    for round in 0..ROUNDS {
        make_src(&src2, 10 + round as u64); // new data for every killed run
        let delay = d.next();
        r.kill_after(&["run", &r.p("work/src")], delay);
        let what = format!("backup round {round}, kill after {delay:?}");
        r.check_clean(&what);
        let out = r.p(&format!("r{round}"));
        r.ok(&["restore", &first, "--target", &out]);
        assert_eq!(
            tree(&Path::new(&out).join(src.strip_prefix("/").unwrap())),
            want,
            "{what}"
        );
        std::fs::remove_dir_all(&out).unwrap();
    }
    // Locks of the killed runs do not block a prune; afterwards only data
    // the snapshots need is left.
    r.ok(&["prune"]);
    let c = r.ok(&["check", "--read-data"]);
    assert_eq!(c["errors"].as_array().unwrap().len(), 0, "{c}");
}

#[test]
fn kill_9_during_prune() {
    let r = Repo::new();
    let src = r.dir.join("src");
    make_src(&src, 1);
    r.ok(&["run", &r.p("src")]);
    make_src(&src, 2);
    r.ok(&["run", &r.p("src")]);
    r.ok(&["forget", "--keep-last", "1"]);
    let span = r.time(&["prune", "--max-unused", "0"]);
    let mut d = Delays::new("prune", span);
    for round in 0..ROUNDS {
        // Garbage for this round: a new state, the previous snapshot forgotten.
        make_src(&src, 10 + round as u64);
        let latest = r.ok(&["run", &r.p("src")])["snapshot"]
            .as_str()
            .unwrap()
            .to_string();
        r.ok(&["forget", "--keep-last", "1"]);
        let delay = d.next();
        r.kill_after(&["prune", "--max-unused", "0"], delay);
        let what = format!("prune round {round}, kill after {delay:?}");
        r.check_clean(&what);
        let out = r.p(&format!("p{round}"));
        r.ok(&["restore", &latest, "--target", &out]);
        assert_eq!(
            tree(&Path::new(&out).join(src.strip_prefix("/").unwrap())),
            tree(&src),
            "{what}"
        );
        std::fs::remove_dir_all(&out).unwrap();
    }
    r.ok(&["prune"]);
    let c = r.ok(&["check", "--read-data"]);
    assert_eq!(c["errors"].as_array().unwrap().len(), 0, "{c}");
    assert_eq!(
        c["warnings"].as_array().unwrap().len(),
        0,
        "prune removed every leftover: {c}"
    );
}

/// safeguard: 164.310(d)(2)(iv)
#[test]
fn kill_9_during_restore() {
    let r = Repo::new();
    let src = r.dir.join("src");
    make_src(&src, 1);
    let id = r.ok(&["run", &r.p("src")])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    let want = tree(&src);
    let span = r.time(&["restore", &id, "--target", &r.p("timed")]);
    let mut d = Delays::new("restore", span);
    let target = r.p("target");
    for round in 0..ROUNDS {
        let delay = d.next();
        r.kill_after(&["restore", &id, "--target", &target], delay);
        let what = format!("restore round {round}, kill after {delay:?}");
        r.check_clean(&what);
        // Rerunning the restore into the same target completes it.
        let v = r.ok(&["restore", &id, "--target", &target]);
        assert_eq!(
            v["restored"]["failed"].as_array().unwrap().len(),
            0,
            "{what}: {v}"
        );
        let got = tree(Path::new(&target));
        assert!(
            got.keys().all(|k| !k.contains(".lethe-tmp")),
            "{what}: temporary files left: {got:?}"
        );
        assert_eq!(
            tree(&Path::new(&target).join(src.strip_prefix("/").unwrap())),
            want,
            "{what}"
        );
        // Start the next round from a partly restored target, not a full one.
        if round % 2 == 0 {
            std::fs::remove_dir_all(&target).unwrap();
        }
    }
}

#[test]
fn kill_9_during_drill() {
    let r = Repo::new();
    let src = r.dir.join("src");
    make_src(&src, 1);
    let id = r.ok(&["run", &r.p("src")])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    let want = tree(&src);
    let scratch = r.p("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let drill = ["drill", "--sample", "50", "--scratch", scratch.as_str()];
    let span = r.time(&drill);
    let mut d = Delays::new("drill", span);
    for round in 0..ROUNDS {
        let delay = d.next();
        r.kill_after(&drill, delay);
        let what = format!("drill round {round}, kill after {delay:?}");
        r.check_clean(&what);
        let out = r.p(&format!("d{round}"));
        r.ok(&["restore", &id, "--target", &out]);
        assert_eq!(
            tree(&Path::new(&out).join(src.strip_prefix("/").unwrap())),
            want,
            "{what}"
        );
        std::fs::remove_dir_all(&out).unwrap();
    }
    // The next drill passes and removes what the killed ones left behind.
    assert_eq!(r.ok(&drill)["result"], "pass");
    let left: Vec<_> = std::fs::read_dir(&scratch)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "scratch leftovers: {left:?}");
}
