//! The writer from a daemon's threads and from competing processes, the
//! inclusion bundle, export, and the write rules.

use ed25519_dalek::SigningKey;
use lethe_audit::*;
use std::path::Path;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[0x33; 32])
}

fn entry(i: u64, action: Action, user: &str) -> Entry {
    Entry::new(
        AuditTime::from_unix(1_790_000_000 + i as i64).unwrap(),
        Source::Daemon,
        UserId::new(user).unwrap(),
        action,
        Entity::Job,
        RecordId::new(format!("job-{i}")).unwrap(),
        Outcome::Success,
    )
    .with_detail(Detail::new().count("n", i))
}

fn open(path: &Path) -> AuditLog<SqliteStore> {
    AuditLog::open(SqliteStore::open(path).unwrap(), key()).unwrap()
}

/// safeguard: 164.312(b)
#[test]
fn threads_append_through_one_appender_and_the_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    let appender = Appender::new(open(&path));
    let receipts: Vec<Receipt> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let a = appender.clone();
                s.spawn(move || {
                    (0..10)
                        .map(|i| {
                            a.append(&entry(t * 100 + i, Action::JobStarted, "u1"))
                                .unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut indexes: Vec<u64> = receipts.iter().map(|r| r.index).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, (0..40).collect::<Vec<_>>());
    for r in &receipts {
        // Each receipt's checkpoint covers its entry and is signed.
        assert_eq!(r.checkpoint.checkpoint.size, r.index + 1);
        open_checkpoint(r.checkpoint.note.as_bytes(), &key().verifying_key(), None).unwrap();
    }
    drop(appender);
    let store = SqliteStore::open_read_only(&path).unwrap();
    let report = verify_log(&store, &key().verifying_key(), None).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.entries, 40);
}

#[test]
fn a_thread_that_panics_holding_the_log_does_not_stop_the_others() {
    let appender =
        Appender::new(AuditLog::open(SqliteStore::open_in_memory().unwrap(), key()).unwrap());
    appender.append(&entry(0, Action::JobStarted, "a")).unwrap();
    let a = appender.clone();
    let panicked = std::thread::spawn(move || {
        a.with(|_log| panic!("a job thread dies holding the audit log"))
    })
    .join();
    assert!(panicked.is_err());
    let r = appender.append(&entry(1, Action::JobEnded, "a")).unwrap();
    assert_eq!(r.index, 1);
    let report = appender
        .with(|l| verify_log(l.store(), &key().verifying_key(), None))
        .unwrap();
    assert!(report.is_intact() && report.entries == 2, "{report:?}");
}

#[test]
fn two_writers_on_one_database_take_turns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    let mut a = open(&path);
    let mut b = open(&path);
    for i in 0..6 {
        let ra = a.append(&entry(i, Action::JobStarted, "a")).unwrap();
        let rb = b.append(&entry(i, Action::JobEnded, "b")).unwrap();
        assert_eq!((ra.index, rb.index), (2 * i, 2 * i + 1));
    }
    assert_eq!(a.size(), 11);
    a.reload().unwrap();
    assert_eq!(a.size(), 12);
    let report = verify_log(a.store(), &key().verifying_key(), None).unwrap();
    assert!(report.is_intact(), "{report:?}");
    // Reopened later, the log continues where it was.
    drop((a, b));
    let mut c = open(&path);
    assert_eq!(
        c.append(&entry(99, Action::DaemonStarted, "c"))
            .unwrap()
            .index,
        12
    );
}

/// safeguard: rule:audit-integrity
#[test]
fn a_log_signed_by_one_key_is_not_continued_with_another() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    open(&path)
        .append(&entry(0, Action::JobStarted, "a"))
        .unwrap();
    let other = SigningKey::from_bytes(&[0x44; 32]);
    let err = AuditLog::open(SqliteStore::open(&path).unwrap(), other).unwrap_err();
    assert!(matches!(err, AuditError::Damaged(_)), "{err}");
}

/// safeguard: 164.312(b)
#[test]
fn refused_entries_leave_the_log_unchanged() {
    let mut log = AuditLog::open(SqliteStore::open_in_memory().unwrap(), key()).unwrap();
    log.append(&entry(0, Action::JobStarted, "a")).unwrap();
    let bad = entry(1, Action::KeyCreated, "a")
        .with_detail(Detail::new().flag("backup_passphrase", true));
    assert!(matches!(
        log.append(&bad),
        Err(AuditError::Entry(EntryError::ForbiddenKey(_)))
    ));
    assert_eq!(log.size(), 1);
    assert_eq!(log.latest_checkpoint().checkpoint.size, 1);
    assert_eq!(
        log.append(&entry(2, Action::JobEnded, "a")).unwrap().index,
        1
    );
    assert!(verify_log(log.store(), &key().verifying_key(), None)
        .unwrap()
        .is_intact());
}

#[test]
fn the_appliance_key_signs_the_log_under_its_key_id() {
    let ak = lethe_cert::ApplianceKey::from_seed(&[0x21; 32]);
    let public = ak.verifying_key();
    let origin = format!("lethe/audit/{}", ak.key_id());
    let mut log = AuditLog::open(SqliteStore::open_in_memory().unwrap(), ak).unwrap();
    assert_eq!(log.origin(), origin);
    assert_eq!(default_origin(&public), origin);
    log.append(&entry(0, Action::DaemonStarted, "a")).unwrap();
    let report = verify_log(log.store(), &public, None).unwrap();
    assert!(report.is_intact());
    assert_eq!(report.origin, origin);
}

/// safeguard: 164.312(b), rule:audit-integrity
#[test]
fn inclusion_bundles_verify_offline_and_refuse_every_substitution() {
    let mut log = AuditLog::open(SqliteStore::open_in_memory().unwrap(), key()).unwrap();
    for i in 0..13 {
        log.append(&entry(i, Action::CertificateIssued, "a"))
            .unwrap();
    }
    let public = key().verifying_key();
    for i in [0, 6, 12] {
        let b = log.inclusion_bundle(i).unwrap();
        let v = verify_inclusion(&b, b.leaf.as_bytes(), &public).unwrap();
        assert_eq!((v.index, v.checkpoint.size), (i, 13));
        assert_eq!(v.entry.record_id.as_str(), format!("job-{i}"));
        // Through JSON and back.
        let json = serde_json::to_string(&b).unwrap();
        let back: InclusionBundle = serde_json::from_str(&json).unwrap();
        assert_eq!(back, b);
    }
    let b = log.inclusion_bundle(6).unwrap();
    let other_leaf = log.inclusion_bundle(7).unwrap().leaf;
    assert_eq!(
        verify_inclusion(&b, other_leaf.as_bytes(), &public),
        Err(InclusionError::LeafMismatch)
    );
    // The leaf of entry 7 with entry 6's proof.
    let mut swapped = b.clone();
    swapped.leaf = other_leaf.clone();
    assert!(matches!(
        verify_inclusion(&swapped, other_leaf.as_bytes(), &public),
        Err(InclusionError::IndexMismatch { leaf: 7, bundle: 6 })
    ));
    swapped.index = 7;
    assert!(matches!(
        verify_inclusion(&swapped, other_leaf.as_bytes(), &public),
        Err(InclusionError::Proof(_))
    ));
    let mut flipped = b.clone();
    flipped.proof[1] = flipped.proof[0].clone();
    assert!(matches!(
        verify_inclusion(&flipped, b.leaf.as_bytes(), &public),
        Err(InclusionError::Proof(_))
    ));
    let mut short = b.clone();
    short.proof.pop();
    assert!(matches!(
        verify_inclusion(&short, b.leaf.as_bytes(), &public),
        Err(InclusionError::Proof(_))
    ));
    let other_key = SigningKey::from_bytes(&[9; 32]).verifying_key();
    assert!(matches!(
        verify_inclusion(&b, b.leaf.as_bytes(), &other_key),
        Err(InclusionError::Checkpoint(_))
    ));
    let mut garbage = b.clone();
    garbage.proof[0] = "not base64!".into();
    assert_eq!(
        verify_inclusion(&garbage, b.leaf.as_bytes(), &public),
        Err(InclusionError::ProofEncoding(0))
    );
    assert!(serde_json::from_str::<InclusionBundle>(
        r#"{"checkpoint":"","index":0,"proof":[],"leaf":"","extra":1}"#
    )
    .is_err());
    assert!(matches!(
        log.inclusion_bundle(13),
        Err(AuditError::Proof(_))
    ));
}

fn export_text(store: &dyn AuditStore, f: &ExportFilter, format: ExportFormat) -> (u64, String) {
    let mut out = Vec::new();
    let n = export(store, f, format, &mut out).unwrap();
    (n, String::from_utf8(out).unwrap())
}

/// safeguard: 164.312(b)
#[test]
fn export_filters_and_formats() {
    let mut log = AuditLog::open(SqliteStore::open_in_memory().unwrap(), key()).unwrap();
    for i in 0..10 {
        let (action, user) = if i % 2 == 0 {
            (Action::JobStarted, "alice")
        } else {
            (Action::Login, "bob")
        };
        log.append(
            &entry(i, action, user)
                .with_tag(TagKind::Session, Token::new(format!("s{i}")).unwrap()),
        )
        .unwrap();
    }
    let store = log.store();
    let all = ExportFilter::default();
    let (n, csv) = export_text(store, &all, ExportFormat::Csv);
    assert_eq!(n, 10);
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 11);
    assert_eq!(
        lines[0],
        "index,time,user_id,source,action,entity,record_id,outcome,tags,detail,leaf_hash"
    );
    assert!(lines[1].starts_with("0,2026-09-21T"), "{}", lines[1]);
    assert!(lines[1].contains(",alice,daemon,job.started,job,job-0,success,\"{\"\"session\"\":\"\"s0\"\"}\",\"{\"\"n\"\":0}\","));
    // No cell a spreadsheet would take for a formula.
    for line in &lines {
        for cell in line.split(',') {
            assert!(!cell.starts_with(['=', '+', '-', '@']), "{cell}");
        }
    }
    let since = AuditTime::from_unix(1_790_000_002).unwrap();
    let until = AuditTime::from_unix(1_790_000_008).unwrap();
    let f = ExportFilter {
        since: Some(since),
        until: Some(until),
        user_id: Some("alice".into()),
        actions: vec![],
    };
    let (n, json) = export_text(store, &f, ExportFormat::Json);
    assert_eq!(n, 3);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let idx: Vec<u64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["index"].as_u64().unwrap())
        .collect();
    assert_eq!(idx, vec![2, 4, 6]);
    assert_eq!(v[0]["tags"]["session"], "s2");
    assert_eq!(v[0]["detail"]["n"], 2);
    let f = ExportFilter {
        actions: vec!["session.login".into()],
        ..Default::default()
    };
    let (n, jsonl) = export_text(store, &f, ExportFormat::JsonLines);
    assert_eq!(n, 5);
    for line in jsonl.lines() {
        let o: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(o["action"], "session.login");
        assert_eq!(o["user_id"], "bob");
    }
    let none = ExportFilter {
        user_id: Some("nobody".into()),
        ..Default::default()
    };
    assert_eq!(
        export_text(store, &none, ExportFormat::Json),
        (0, "[]\n".into())
    );
}
