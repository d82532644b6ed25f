//! `lethe serve` end to end with loop devices (root only, and the front's
//! system user `lethe`, which `hw-tests/setup.sh` creates).
//!
//! - three loop devices in an `auto` bay get three verified certificates,
//!   their jobs overlapping in time; a fourth, mounted, matching the same
//!   bay, is never offered; a fifth pulled mid-job fails alone;
//! - the front runs unprivileged and cannot open the state directory's key
//!   files;
//! - `kill -9` of the whole daemon mid-job leaves the job interrupted; on
//!   restart the `auto` bay finds the same drive and resumes it to a valid
//!   certificate that records the interruption.
//!
//! A loop device cannot be detached under an open file (the kernel defers
//! `LOOP_CLR_FD` until the last close), so "pulling" one is: its backing
//! file truncated to nothing, the loop's capacity re-read (every further
//! read and write fails, as on a drive gone from its bay), then detached.

mod common;
mod common_serve;

use common::*;
use common_serve::*;
use lethe_hw_tests::{mkfs_ext4, skip, LoopDevice, Mount};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
/// The size of each of the three drives.
const SIZE: u64 = 64 * MIB;

/// A test's directory: the bays' backing files, the state, the runtime
/// directory, the configuration.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new(policy_extra: &str) -> Site {
        Site::with_policy("auto", policy_extra)
    }

    fn with_policy(policy: &str, policy_extra: &str) -> Site {
        let base = if Path::new("/dev/shm").is_dir() {
            "/dev/shm"
        } else {
            "/tmp"
        };
        let dir = tempfile::Builder::new()
            .prefix("lethe-serve-")
            .tempdir_in(base)
            .unwrap();
        // The front (user lethe) must reach the runtime directory inside.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(dir.path().join("bays")).unwrap();
        let cfg = format!(
            r#"[site]
operator_id = "tech-7"
operator_name = "Test Technician"

[[bay]]
name = "loops"
match = ["loop:{}/bays/drive-*.img"]
policy = "{policy}"
level = "clear"
verify = "full"
{policy_extra}
"#,
            dir.path().display()
        );
        std::fs::write(dir.path().join("lethe.toml"), cfg).unwrap();
        Site { dir }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn runtime(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// A drive for the bay: a backing file `bays/drive-N.img` attached.
    fn drive(&self, n: u32, size: u64, fill: u8) -> LoopDevice {
        self.attach(&self.backing(n, size, fill))
    }

    /// Drive N's backing file, not attached yet.
    fn backing(&self, n: u32, size: u64, fill: u8) -> PathBuf {
        let backing = self.dir.path().join(format!("bays/drive-{n}.img"));
        lethe_hw_tests::fill_file(&backing, size, fill).unwrap();
        backing
    }

    fn attach(&self, backing: &Path) -> LoopDevice {
        LoopDevice::over(backing, 512).unwrap()
    }

    fn start(&self) -> Serve {
        Serve::start(
            &self.state(),
            &self.dir.path().join("lethe.toml"),
            &self.runtime(),
            &self.dir.path().join("serve.log"),
            &[],
        )
    }
}

fn bay_of<'a>(st: &'a Value, dev: &Path) -> Option<&'a Value> {
    st["bays"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["drive"]["path"].as_str() == Some(dev.to_str().unwrap()))
}

fn running_on<'a>(st: &'a Value, dev: &Path) -> Option<&'a Value> {
    st["running"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["device"].as_str() == Some(dev.to_str().unwrap()))
}

fn certificate(state: &Path, job: &str) -> PathBuf {
    state.join("certificates").join(format!("{job}.json"))
}

fn verify_cert(state: &Path, cert: &Path) {
    let v = lethe(state)
        .args(["cert", "verify"])
        .arg(cert)
        .output()
        .unwrap();
    assert_eq!(v.status.code(), Some(0), "{}", stderr(&v));
}

/// The uid and gid of a process, and its effective capabilities.
fn creds(pid: u32) -> (u32, u32, String) {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        st.lines()
            .find(|l| l.starts_with(name))
            .unwrap()
            .split_whitespace()
            .skip(1)
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let uids = field("Uid:");
    let gids = field("Gid:");
    assert!(uids.iter().all(|u| u == &uids[0]), "{uids:?}");
    (
        uids[0].parse().unwrap(),
        gids[0].parse().unwrap(),
        field("CapEff:")[0].clone(),
    )
}

/// Three drives wipe at once, a mounted one is never offered, a pulled one
/// fails alone; the front runs as its own user without capabilities and
/// cannot open the appliance key or the databases (they stay the worker's).
///
/// safeguard: rule:secrets-in-worker
#[test]
fn three_drives_wipe_at_once_a_mounted_one_is_never_offered_a_pulled_one_fails_alone() {
    if let Some(why) = unavailable() {
        skip!("{why}");
    }
    let site = Site::new("");
    let state = site.state();
    // The mounted drive matches the bay and is there when the daemon starts.
    let mounted = site.drive(4, 32 * MIB, 0);
    mkfs_ext4(mounted.path()).unwrap();
    let mount = Mount::new(mounted.path(), "rw").unwrap();
    std::fs::write(mount.path().join("patient-notes.txt"), b"keep me").unwrap();

    let serve = site.start();
    let st = wait_for(&serve, 30, "the mounted drive to be seen", |st| {
        bay_of(st, mounted.path()).is_some()
    });
    let b = bay_of(&st, mounted.path()).unwrap();
    assert_eq!(b["state"], "refused", "{b:#}");
    assert!(b["job"].is_null(), "{b:#}");

    // Three drives, and a bigger one that will be pulled mid-job.
    // Their files are made first, then all attached at once.
    let files: Vec<PathBuf> = (1..=3).map(|n| site.backing(n, SIZE, 0x11)).collect();
    let pulled_file = site.backing(5, 4 * SIZE, 0x22);
    let drives: Vec<LoopDevice> = files.iter().map(|f| site.attach(f)).collect();
    let pulled = site.attach(&pulled_file);

    // Pull drive 5 once its job has written something; meanwhile note how
    // many jobs ran at once.
    let mut most_at_once = 0;
    let st = wait_for(&serve, 120, "drive 5's job to make progress", |st| {
        most_at_once = most_at_once.max(st["running"].as_array().unwrap().len());
        running_on(st, pulled.path())
            .is_some_and(|j| j["progress"]["done"].as_u64().unwrap_or(0) > 0)
    });
    let pulled_job = running_on(&st, pulled.path()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::OpenOptions::new()
        .write(true)
        .open(pulled.backing())
        .unwrap()
        .set_len(0)
        .unwrap();
    let ok = |c: &mut Command| assert!(c.status().unwrap().success());
    ok(Command::new("losetup").arg("-c").arg(pulled.path()));
    // Detached: the kernel finishes it when the job lets go of the drive.
    ok(Command::new("losetup").arg("-d").arg(pulled.path()));

    let st = wait_for(&serve, 600, "every job to end", |st| {
        most_at_once = most_at_once.max(st["running"].as_array().unwrap().len());
        st["running"].as_array().unwrap().is_empty()
            && drives
                .iter()
                .all(|d| bay_of(st, d.path()).is_some_and(|b| b["state"] != "running"))
    });
    assert!(
        most_at_once >= 3,
        "the jobs did not overlap: at most {most_at_once} at once"
    );

    // Three passes with verified certificates, overlapping in time.
    let mut spans = Vec::new();
    for d in &drives {
        let b = bay_of(&st, d.path()).unwrap();
        assert_eq!(b["state"], "passed", "{b:#}\n{}", serve.log());
        let job = b["job"].as_str().unwrap();
        let cert = certificate(&state, job);
        verify_cert(&state, &cert);
        let body = cert_body(cert.to_str().unwrap());
        assert_eq!(body["result"]["status"], "pass", "{body:#}");
        assert_eq!(body["verification"]["result"], "pass", "{body:#}");
        assert_eq!(body["verification"]["bytes_verified"], SIZE);
        assert_eq!(body["device"]["path"], d.path().to_str().unwrap());
        assert_eq!(body["operator"]["id"], "tech-7");
        spans.push((
            body["timing"]["started_at"].as_str().unwrap().to_string(),
            body["timing"]["ended_at"].as_str().unwrap().to_string(),
        ));
        // Every byte is the job's pattern, none the old fill.
        let bytes = std::fs::read(d.backing()).unwrap();
        assert!(!bytes.chunks(4096).any(|c| c.iter().all(|&x| x == 0x11)));
    }
    let latest_start = spans.iter().map(|s| &s.0).max().unwrap();
    let earliest_end = spans.iter().map(|s| &s.1).min().unwrap();
    assert!(latest_start <= earliest_end, "{spans:?}");

    // The pulled drive's job failed, with a failure report, and only it.
    // (Its bay shows it failed until the removal reaches the bay thread;
    // then the slot is empty again.)
    if let Some(b) = bay_of(&st, pulled.path()) {
        assert_eq!(b["state"], "failed", "{b:#}");
        assert_eq!(b["job"], pulled_job.as_str());
    }
    let report = cert_body(certificate(&state, &pulled_job).to_str().unwrap());
    assert_ne!(report["result"]["status"], "pass", "{report:#}");
    assert_ne!(report["verification"]["result"], "pass", "{report:#}");

    // The mounted drive was never offered: no job ever ran on it, and its
    // file system is untouched.
    let jobs = lethe(&state).args(["jobs", "--json"]).output().unwrap();
    let jobs: Value = serde_json::from_slice(&jobs.stdout).unwrap();
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), 4, "{jobs:#?}");
    for j in jobs {
        let want = if j["job"] == pulled_job.as_str() {
            "fail"
        } else {
            "pass"
        };
        assert_eq!(j["status"], want, "{j:#}");
    }
    let on_mounted = mounted.path().to_str().unwrap();
    assert!(
        !jobs
            .iter()
            .any(|j| j.to_string().contains(&format!("\"{on_mounted}\""))),
        "{jobs:#?}"
    );
    assert_eq!(
        std::fs::read(mount.path().join("patient-notes.txt")).unwrap(),
        b"keep me"
    );

    // The front runs as the unprivileged user, without capabilities, and
    // cannot open the key files (nor list the state directory).
    let front = serve.front_pid();
    let (uid, gid, caps) = creds(front);
    assert_ne!(uid, 0);
    assert_ne!(gid, 0);
    assert_eq!(caps, "0000000000000000");
    let as_front = |p: &Path| {
        Command::new("cat")
            .arg(p)
            .uid(uid)
            .gid(gid)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
    };
    let key = state.join("keys/appliance.key");
    assert!(key.exists());
    assert!(
        !as_front(&key).success(),
        "the front's user read {}",
        key.display()
    );
    for f in ["jobs.db", "audit.db", "alerts.db"] {
        let p = state.join(f);
        if p.exists() {
            assert!(!as_front(&p).success(), "the front's user read {f}");
        }
    }
    let ls = Command::new("ls")
        .arg(&state)
        .uid(uid)
        .gid(gid)
        .output()
        .unwrap();
    assert!(!ls.status.success());

    // Killing the front stops no job, and the worker starts it again.
    unsafe_free_kill(front, "KILL");
    let deadline = Instant::now() + Duration::from_secs(30);
    while serve
        .try_status()
        .is_none_or(|st| st["daemon"]["front_restarts"].as_u64() < Some(1))
    {
        assert!(
            Instant::now() < deadline,
            "the front was not restarted:\n{}",
            serve.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_ne!(serve.front_pid(), front);

    let mut serve = serve;
    assert!(serve.terminate().success(), "{}", serve.log());
    let v = lethe(&state).args(["audit", "verify"]).output().unwrap();
    assert_eq!(v.status.code(), Some(0), "{}", stderr(&v));
    drop(mount);
    // Detached above (done once the job let go); its Drop would detach the
    // node again, which another test may have reused by now.
    std::mem::forget(pulled);
}

#[test]
fn kill_9_of_the_daemon_mid_job_then_the_same_drive_resumes_to_a_certificate() {
    if let Some(why) = unavailable() {
        skip!("{why}");
    }
    let site = Site::new("passes = 3");
    let state = site.state();
    let serve = site.start();
    let drive = site.drive(1, 128 * MIB, 0x33);
    let st = wait_for(&serve, 60, "the job to write a while", |st| {
        running_on(st, drive.path()).is_some_and(|j| {
            let p = &j["progress"];
            p["done"].as_u64().unwrap_or(0) * 5 >= p["total"].as_u64().unwrap_or(u64::MAX)
        })
    });
    let job = running_on(&st, drive.path()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // A durable checkpoint past the start exists before the kill.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let store = lethe_store::JobStore::open(&state).unwrap();
        let rec = store.get(&job).unwrap();
        if match rec.checkpoint {
            lethe_core::plan::Checkpoint::Writing { pass, offset } => pass > 0 || offset > 0,
            _ => true,
        } {
            break;
        }
        assert!(Instant::now() < deadline, "no checkpoint was stored");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The whole daemon: the front and the worker.
    let front = serve.front_pid();
    unsafe_free_kill(front, "KILL");
    unsafe_free_kill(serve.child.id(), "KILL");
    let mut serve = serve;
    serve.child.wait().unwrap();

    let jobs = lethe(&state).args(["jobs", "--json"]).output().unwrap();
    let jobs: Value = serde_json::from_slice(&jobs.stdout).unwrap();
    assert_eq!(jobs[0]["job"], job.as_str());
    assert_eq!(jobs[0]["status"], "interrupted", "{jobs:#}");
    assert_eq!(jobs[0]["resumable"], true);

    // Restarted, the auto bay finds the same drive and resumes its job.
    let serve = site.start();
    let st = wait_for(&serve, 600, "the resumed job to end", |st| {
        bay_of(st, drive.path()).is_some_and(|b| {
            b["job"] == job.as_str() && !matches!(b["state"].as_str(), Some("running" | "waiting"))
        }) && st["running"].as_array().unwrap().is_empty()
    });
    let b = bay_of(&st, drive.path()).unwrap();
    assert_eq!(b["state"], "passed", "{b:#}\n{}", serve.log());
    let cert = certificate(&state, &job);
    verify_cert(&state, &cert);
    let body = cert_body(cert.to_str().unwrap());
    assert_eq!(body["result"]["status"], "pass");
    assert_eq!(body["verification"]["result"], "pass");
    let kinds: Vec<&str> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"interrupted"), "{kinds:?}");
    assert!(kinds.contains(&"resumed"), "{kinds:?}");

    let mut serve = serve;
    assert!(serve.terminate().success(), "{}", serve.log());
    // The audit log has both daemon runs, the interruption and the resume.
    let v = lethe(&state).args(["audit", "verify"]).output().unwrap();
    assert_eq!(v.status.code(), Some(0), "{}", stderr(&v));
    let e = lethe(&state)
        .args(["audit", "export", "--format", "json"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&e.stdout);
    for action in ["daemon.started", "job.interrupted", "daemon.stopped"] {
        assert!(text.contains(action), "no {action} in the audit log");
    }
}

#[test]
fn an_ask_bay_waits_for_the_operator_and_refuses_a_wrong_answer() {
    if let Some(why) = unavailable() {
        skip!("{why}");
    }
    let site = Site::with_policy("ask", "");
    let state = site.state();
    let serve = site.start();
    let drive = site.drive(1, 16 * MIB, 0x44);
    let st = wait_for(&serve, 30, "the drive to wait in its bay", |st| {
        bay_of(st, drive.path()).is_some()
    });
    let b = bay_of(&st, drive.path()).unwrap();
    assert_eq!(b["state"], "waiting", "{b:#}");
    assert!(b["job"].is_null());
    let api = site.runtime().join(lethe_wire::paths::API_SOCKET);
    let start = |answer: &str| {
        lethe_front::local::post_blocking(
            &api,
            "/v0/bays/loops/start",
            serde_json::json!({ "answer": answer }),
        )
        .unwrap()
    };
    // A wrong answer starts nothing and writes nothing.
    let a = start("12345");
    assert!(!a.status.is_success(), "{:?}", a.json());
    std::thread::sleep(Duration::from_millis(500));
    let st = serve.status();
    assert!(st["running"].as_array().unwrap().is_empty());
    assert_eq!(bay_of(&st, drive.path()).unwrap()["state"], "waiting");
    assert!(std::fs::read(drive.backing())
        .unwrap()
        .iter()
        .all(|&x| x == 0x44));
    // The drive's size in bytes (a loop device has no serial) starts it.
    let a = start(&(16 * MIB).to_string());
    assert!(a.status.is_success(), "{:?}", a.json());
    let job = a.json().unwrap()["job"].as_str().unwrap().to_string();
    let st = wait_for(&serve, 120, "the job to end", |st| {
        bay_of(st, drive.path()).is_some_and(|b| b["state"] == "passed")
    });
    assert_eq!(bay_of(&st, drive.path()).unwrap()["job"], job.as_str());
    verify_cert(&state, &certificate(&state, &job));
}
