//! Observers of the job library: the audit log records every job the same
//! way whoever submitted it, certificates carry the proof of their
//! `certificate.issued` entry, and backup jobs (a scheduled run with its
//! backup, retention and drill) are jobs like any other.

use lethe_audit::{
    verify_certificate_attachment, verify_log, Appender, AttachmentError, AuditLog, SqliteStore,
};
use lethe_cert::ApplianceKey;
use lethe_core::pattern::Pattern;
use lethe_jobs::audit::AuditObserver;
use lethe_jobs::backup::{BackupStep, ScheduledRunRequest};
use lethe_jobs::fake::{FakeDisk, FakeHost};
use lethe_jobs::{
    Confirmation, DeviceIdentity, Event, JobInfo, JobKind, JobObserver, JobRequest, Jobs,
    JobsConfig, Origin, OriginSource, Outcome, Parties, StateDir, SystemClock, WipeRequest,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SIZE: u64 = 1 << 20;

fn identity(path: &str, serial: &str) -> DeviceIdentity {
    DeviceIdentity {
        path: path.into(),
        stable_id: Some(format!("ata-T_{serial}")),
        transport: "sata".into(),
        manufacturer: None,
        model: Some("T".into()),
        serial: Some(serial.into()),
        wwn: None,
        firmware: None,
        size_bytes: SIZE,
        logical_sector: 512,
        physical_sector: 4096,
        rotational: Some(true),
        removable: Some(false),
        media_type: "magnetic".into(),
        backing: None,
    }
}

/// Records what it sees, for checking the order of observer calls.
#[derive(Default)]
struct Seen(Mutex<Vec<String>>);

impl JobObserver for Seen {
    fn event(&self, job: &JobInfo<'_>, event: &Event) {
        let what = match event {
            Event::Started { .. } => "started".to_string(),
            Event::Finished(r) => format!("finished:{}", r.outcome.word()),
            Event::Backup(BackupStep::Recorded(r)) => {
                format!("{}:{}", r.kind.as_str(), r.result.as_str())
            }
            _ => return,
        };
        let who = format!("{:?}/{}", job.origin.source, job.origin.user);
        self.0.lock().unwrap().push(format!("{who} {what}"));
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    state: PathBuf,
    host: FakeHost,
    jobs: Jobs,
    audit: Arc<AuditObserver<SqliteStore>>,
    seen: Arc<Seen>,
    key: ApplianceKey,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let sd = StateDir::new(&state);
    let key = ApplianceKey::load_or_create(&sd.keys()).unwrap();
    let log = AuditLog::open(
        SqliteStore::open(&state.join(lethe_audit::DB_FILE)).unwrap(),
        ApplianceKey::load(&sd.keys()).unwrap(),
    )
    .unwrap();
    let audit = Arc::new(AuditObserver::new(
        Appender::new(log),
        Arc::new(SystemClock),
    ));
    let seen = Arc::new(Seen::default());
    let host = FakeHost::new();
    let mut cfg = JobsConfig::new(sd);
    cfg.host = Arc::new(host.clone());
    cfg.lease.renew_every = Duration::from_millis(50);
    cfg.tool_version = "test".into();
    cfg.observers = vec![audit.clone(), seen.clone()];
    cfg.origin = Origin::cli(0);
    let jobs = Jobs::open(cfg).unwrap();
    Fixture {
        _dir: dir,
        state,
        host,
        jobs,
        audit,
        seen,
        key,
    }
}

fn clear(path: &str) -> WipeRequest {
    let mut r = WipeRequest::clear(
        path,
        Confirmation::Waived { by: "test".into() },
        Parties {
            operator_id: "op-1".into(),
            operator_name: "Op".into(),
            ..Default::default()
        },
    );
    r.overwrite.pattern = Pattern::ZERO;
    r.overwrite.chunk_size = 64 << 10;
    r.overwrite.depth = 2;
    r
}

fn leaves(state: &Path) -> Vec<String> {
    let store = SqliteStore::open_read_only(&state.join(lethe_audit::DB_FILE)).unwrap();
    use lethe_audit::AuditStore;
    (0..store.len().unwrap())
        .map(|i| String::from_utf8(store.entry(i).unwrap().unwrap().leaf).unwrap())
        .collect()
}

#[test]
fn a_wipe_is_audited_and_its_certificate_carries_the_proof() {
    let f = fixture();
    f.host.add(
        "/dev/fake0",
        FakeDisk::memory(identity("/dev/fake0", "S0"), SIZE),
    );
    // A daemon's bay job: its origin goes into every entry.
    let r = f
        .jobs
        .submit_as(
            JobRequest::Wipe(clear("/dev/fake0")),
            Origin::daemon(Some("bay-1".into())),
        )
        .wait();
    assert_eq!(r.outcome, Outcome::Passed, "{:?}", r.problems);
    assert_eq!(f.audit.failures(), 0, "{:?}", f.audit.last_error());
    let l = leaves(&f.state);
    let actions: Vec<&str> = l
        .iter()
        .map(|x| {
            let v: serde_json::Value = serde_json::from_str(x.split_once('\n').unwrap().1).unwrap();
            assert_eq!(v["user_id"], "lethe:daemon");
            assert_eq!(v["source"], "daemon");
            assert_eq!(v["tags"]["bay"], "bay-1");
            match v["action"].as_str().unwrap() {
                "job.started" => "job.started",
                "certificate.issued" => "certificate.issued",
                "job.ended" => "job.ended",
                other => panic!("unexpected {other}"),
            }
        })
        .collect();
    assert_eq!(actions, ["job.started", "certificate.issued", "job.ended"]);

    // The certificate verifies as before, and its attachment proves the entry.
    let doc = r.document.unwrap();
    let bytes = std::fs::read(&doc.json).unwrap();
    let cert = lethe_cert::verify(&bytes, Some(&f.key.verifying_key())).unwrap();
    let inc = verify_certificate_attachment(cert.signed(), &f.key.verifying_key())
        .unwrap()
        .expect("an attachment");
    assert_eq!(inc.index, 1);
    assert_eq!(inc.entry.record_id.as_str(), cert.body().id);
    // The bundle's checkpoint is an external checkpoint for `verify`.
    let store = SqliteStore::open_read_only(&f.state.join(lethe_audit::DB_FILE)).unwrap();
    let bundle: lethe_audit::InclusionBundle =
        serde_json::from_value(cert.signed().audit().unwrap().clone()).unwrap();
    let rep = verify_log(
        &store,
        &f.key.verifying_key(),
        Some(bundle.checkpoint.as_bytes()),
    )
    .unwrap();
    assert!(rep.is_intact(), "{rep:?}");

    // Another certificate's proof does not fit this certificate.
    let mut other_body = cert.body().clone();
    other_body.id = "another".into();
    let other = lethe_cert::sign(&other_body, &f.key)
        .unwrap()
        .with_audit(cert.signed().audit().unwrap().clone())
        .unwrap();
    assert!(matches!(
        verify_certificate_attachment(&other, &f.key.verifying_key()),
        Err(AttachmentError::NotThisCertificate(_))
    ));
    // A proof under another key is refused.
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[3; 32]).verifying_key();
    assert!(matches!(
        verify_certificate_attachment(cert.signed(), &stranger),
        Err(AttachmentError::Inclusion(_))
    ));
    // A forged bundle (its leaf edited) is refused.
    let mut forged = bundle.clone();
    forged.leaf = forged
        .leaf
        .replace("\"certifies\":true", "\"certifies\":false");
    let forged = lethe_cert::sign(cert.body(), &f.key)
        .unwrap()
        .with_audit(serde_json::to_value(&forged).unwrap())
        .unwrap();
    assert!(verify_certificate_attachment(&forged, &f.key.verifying_key()).is_err());
}

#[test]
fn a_refused_device_is_audited_as_a_refusal() {
    let f = fixture();
    let r = f
        .jobs
        .submit(JobRequest::Wipe(clear("/dev/missing")))
        .wait();
    assert!(matches!(r.outcome, Outcome::Refused(_)), "{:?}", r.outcome);
    let l = leaves(&f.state);
    assert_eq!(l.len(), 1, "{l:?}");
    assert!(l[0].contains(r#""action":"device.refused""#), "{}", l[0]);
    assert!(
        l[0].contains(r#""user_id":"uid:0""#) && l[0].contains(r#""source":"cli""#),
        "{}",
        l[0]
    );
    assert_eq!(
        *f.seen.0.lock().unwrap(),
        ["Cli/uid:0 finished:refused"],
        "observers see the refusal too"
    );
}

#[test]
fn a_scheduled_run_is_a_job_with_each_step_observed_and_audited() {
    let f = fixture();
    let dir = f._dir.path();
    let repo = dir.join("repo");
    let pass = dir.join("pass");
    std::fs::write(&pass, "pw\n").unwrap();
    let conn = lethe_backup::connect::connect(
        repo.to_str().unwrap(),
        &lethe_backup::connect::ConnectOptions::default(),
    )
    .unwrap();
    lethe_backup::Repository::init(
        conn.store.clone(),
        b"pw",
        lethe_repo::keys::KdfParams {
            m_kib: 64,
            t: 1,
            p: 1,
        },
        "t",
    )
    .unwrap();
    drop(conn);
    let src = dir.join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a.txt"), b"some records").unwrap();
    let text = format!(
        "[[job]]\nname = \"records\"\nrepo = {:?}\npassword_file = {:?}\npaths = [{:?}]\nevery = \"1h\"\nkeep_last = 3\ndrill_every = \"1d\"\n",
        repo, pass, src
    );
    let schedule = lethe_backup::scheduled::LoadedSchedule {
        file: lethe_backup::schedule::ScheduleFile::parse(&text).unwrap(),
        path: dir.join("lethe.toml"),
        owner: 0,
        mode: 0o600,
    };
    let mut base = lethe_backup::archive::BackupOptions::for_this_host();
    base.threads = 1;
    let h = f.jobs.submit_as(
        JobRequest::ScheduledRun(ScheduledRunRequest {
            schedule,
            scratch: dir.to_path_buf(),
            base,
            audit_checkpoint: Some("lethe-audit test checkpoint 7".into()),
        }),
        Origin::daemon(None),
    );
    let r = h.wait();
    assert_eq!(r.kind, JobKind::ScheduledRun);
    assert_eq!(r.outcome, Outcome::Passed, "{:?}", r.problems);
    assert!(r.backup.is_some());
    assert_eq!(
        *f.seen.0.lock().unwrap(),
        [
            "Daemon/lethe:daemon started",
            "Daemon/lethe:daemon backup:pass",
            "Daemon/lethe:daemon forget:pass",
            "Daemon/lethe:daemon drill:pass",
            "Daemon/lethe:daemon finished:pass",
        ]
    );
    // The service's audit checkpoint went into the manifest the run wrote.
    let conn = lethe_backup::connect::connect(
        repo.to_str().unwrap(),
        &lethe_backup::connect::ConnectOptions::default(),
    )
    .unwrap();
    let st = lethe_backup::Repository::open(conn.store.clone(), b"pw")
        .unwrap()
        .state()
        .unwrap();
    let m = st.manifest.expect("a version-2 repository has a manifest");
    assert_eq!(
        m.audit_checkpoint.as_deref(),
        Some("lethe-audit test checkpoint 7")
    );
    let l = leaves(&f.state);
    let find = |a: &str| {
        l.iter()
            .filter(|x| x.contains(&format!("\"action\":\"{a}\"")))
            .count()
    };
    assert_eq!(find("backup.run"), 1, "{l:?}");
    assert_eq!(find("backup.prune"), 1, "{l:?}");
    assert_eq!(find("backup.drill"), 1, "{l:?}");
    assert!(
        l.iter().all(|x| !x.contains("a.txt")),
        "no file names in the log"
    );
    let st = lethe_jobs::backup::backup_status(&StateDir::new(&f.state), "records").unwrap();
    assert!(st.last_success.is_some() && st.drills_passed == 1, "{st:?}");
    // Nothing is due an instant later: the run records nothing.
    let _ = OriginSource::Cli;
}

/// The "verify without Lethe" script of docs/certificate.md checks the
/// audit proof of a certificate too, and refuses a tampered one.
#[test]
fn the_documented_python_verifier_checks_the_audit_proof() {
    if std::process::Command::new("python3")
        .arg("-V")
        .output()
        .is_err()
    {
        lethe_hw_tests::skip!("python3 is not installed");
    }
    let f = fixture();
    f.host.add(
        "/dev/fake0",
        FakeDisk::memory(identity("/dev/fake0", "S0"), SIZE),
    );
    let r = f.jobs.submit(JobRequest::Wipe(clear("/dev/fake0"))).wait();
    assert_eq!(r.outcome, Outcome::Passed, "{:?}", r.problems);
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/certificate.md"
    ))
    .unwrap();
    let start = doc.find("```python\n").unwrap() + "```python\n".len();
    let len = doc[start..].find("\n```").unwrap();
    let dir = f._dir.path();
    let script = dir.join("verify_cert.py");
    std::fs::write(&script, &doc[start..start + len + 1]).unwrap();
    let public = dir.join("appliance.pub");
    std::fs::write(&public, format!("{}\n", f.key.public_key_hex())).unwrap();
    let run = |file: &Path| {
        let out = std::process::Command::new("python3")
            .arg(&script)
            .arg(&public)
            .arg(file)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let cert = PathBuf::from(&r.document.unwrap().json);
    let (ok, out) = run(&cert);
    assert!(
        ok && out.starts_with("VALID ") && out.contains("audit-entry 1 of 2"),
        "{out}"
    );
    let text = std::fs::read_to_string(&cert).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let bundle = v["audit"].clone();
    let tampered = |name: &str, f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = v.clone();
        f(&mut v["audit"]);
        let p = dir.join(name);
        let canon = lethe_cert::canonical::to_canonical(&v).unwrap();
        std::fs::write(&p, [canon, b"\n".to_vec()].concat()).unwrap();
        run(&p)
    };
    let (ok, out) = tampered("index.json", &|a| a["index"] = 0.into());
    assert!(!ok && out.starts_with("INVALID"), "{out}");
    let (ok, out) = tampered("proof.json", &|a| {
        a["proof"][0] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into()
    });
    assert!(!ok && out.contains("root"), "{out}");
    let (ok, out) = tampered("leaf.json", &|a| {
        a["leaf"] = a["leaf"]
            .as_str()
            .unwrap()
            .replace("\"certifies\":true", "\"certifies\":false")
            .into()
    });
    assert!(!ok && out.starts_with("INVALID"), "{out}");
    let (ok, out) = tampered("note.json", &|a| {
        a["checkpoint"] = a["checkpoint"]
            .as_str()
            .unwrap()
            .replacen("\n2\n", "\n3\n", 1)
            .into()
    });
    assert!(!ok && out.starts_with("INVALID"), "{out}");
    assert_eq!(bundle["index"], 1);
}
