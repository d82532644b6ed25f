//! `lethe audit verify|export|checkpoint` on a log written with the library
//! and the state directory's appliance key (no root needed).

mod common;

use common::*;
use lethe_audit::*;
use std::path::Path;
use std::process::Output;

/// Append `n` entries to the state directory's audit log.
fn write_entries(state: &Path, from: u64, n: u64) {
    let key = lethe_cert::ApplianceKey::load_or_create(&state.join("keys")).unwrap();
    let store = SqliteStore::open(&state.join(DB_FILE)).unwrap();
    let mut log = AuditLog::open(store, key).unwrap();
    for i in from..from + n {
        let (action, user) = if i % 2 == 0 {
            (Action::JobStarted, "lethe:daemon")
        } else {
            (Action::Login, "tech.jones")
        };
        log.append(
            &Entry::new(
                AuditTime::from_unix(1_795_000_000 + 3600 * i as i64).unwrap(),
                Source::Console,
                UserId::new(user).unwrap(),
                action,
                Entity::Job,
                RecordId::new(format!("job-{i}")).unwrap(),
                Outcome::Success,
            )
            .with_detail(Detail::new().count("i", i)),
        )
        .unwrap();
    }
}

fn audit(state: &Path, args: &[&str]) -> Output {
    lethe(state).arg("audit").args(args).output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Play the attacker on the database file (triggers dropped first).
fn tamper(state: &Path, sql: &str) {
    let c = rusqlite::Connection::open(state.join(DB_FILE)).unwrap();
    c.execute_batch(
        "DROP TRIGGER entries_no_update; DROP TRIGGER entries_no_delete;
         DROP TRIGGER checkpoints_no_delete;",
    )
    .unwrap();
    c.execute_batch(sql).unwrap();
}

/// safeguard: 164.312(b), rule:audit-integrity
#[test]
fn verify_checkpoint_and_anchored_verify() {
    let state = state_dir();
    write_entries(state.path(), 0, 6);
    let out = audit(state.path(), &["verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("VERIFIED  lethe/audit/"), "{text}");
    assert!(
        text.contains("6 entries, 7 checkpoints") && text.contains("not anchored"),
        "{text}"
    );

    let out = audit(state.path(), &["checkpoint"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let saved = state.path().join("saved-checkpoint");
    std::fs::write(&saved, &out.stdout).unwrap();
    assert!(stdout(&out).contains("\n6\n"), "{}", stdout(&out));
    let j = summary(&audit(state.path(), &["checkpoint", "--json"]));
    assert_eq!(j["status"], "ok");
    assert_eq!(j["size"], 6);
    assert!(j["vkey"].as_str().unwrap().starts_with("lethe/audit/"));

    // The log grows; the saved checkpoint is an older prefix of it.
    write_entries(state.path(), 6, 3);
    let out = audit(
        state.path(),
        &["verify", "--checkpoint", saved.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("anchored: consistent with the external checkpoint of size 6"));
    let j = summary(&audit(
        state.path(),
        &["verify", "--json", "--checkpoint", saved.to_str().unwrap()],
    ));
    assert_eq!(j["status"], "verified");
    assert_eq!(j["entries"], 9);
    assert_eq!(j["anchored"], true);
    assert_eq!(j["first_bad_entry"], serde_json::Value::Null);
    // An explicit key works the same.
    let key = pub_key(state.path());
    let out = audit(state.path(), &["verify", "--key", key.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// safeguard: 164.312(b), rule:audit-integrity
#[test]
fn an_edited_entry_exits_2_and_is_named() {
    let state = state_dir();
    write_entries(state.path(), 0, 6);
    tamper(
        state.path(),
        "UPDATE entries SET leaf = CAST(replace(CAST(leaf AS TEXT), '\"i\":3', '\"i\":4') AS BLOB) WHERE idx = 3;",
    );
    let out = audit(state.path(), &["verify"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("TAMPERED") && stdout(&out).contains("entry 3: edited"),
        "{}",
        stdout(&out)
    );
    let j = summary(&audit(state.path(), &["verify", "--json"]));
    assert_eq!(j["status"], "tampered");
    assert_eq!(j["first_bad_entry"], 3);
}

/// safeguard: 164.312(b), rule:audit-integrity
#[test]
fn a_truncated_tail_is_caught_with_the_saved_checkpoint_only() {
    let state = state_dir();
    write_entries(state.path(), 0, 8);
    let saved = state.path().join("cp");
    std::fs::write(&saved, audit(state.path(), &["checkpoint"]).stdout).unwrap();
    tamper(
        state.path(),
        "DELETE FROM entries WHERE idx >= 5; DELETE FROM checkpoints WHERE size > 5;",
    );
    let out = audit(state.path(), &["verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("not anchored"));
    let j = summary(&audit(
        state.path(),
        &["verify", "--json", "--checkpoint", saved.to_str().unwrap()],
    ));
    assert_eq!(j["status"], "tampered");
    assert_eq!(j["first_bad_entry"], 5);
    assert!(j["reason"].as_str().unwrap().contains("truncated"), "{j}");
}

/// safeguard: 164.312(b)
#[test]
fn export_streams_filtered_csv_and_json() {
    let state = state_dir();
    write_entries(state.path(), 0, 10);
    let out = audit(state.path(), &["export", "--format", "csv"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 11);
    let out = audit(
        state.path(),
        &[
            "export",
            "--format",
            "json",
            "--user",
            "tech.jones",
            "--action",
            "session.login",
            "--since",
            "2026-11-18T14:06:40Z",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let idx: Vec<u64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["index"].as_u64().unwrap())
        .collect();
    assert_eq!(idx, vec![3, 5, 7, 9]);
    let file = state.path().join("out.jsonl");
    let out = audit(
        state.path(),
        &[
            "export",
            "--format",
            "jsonl",
            "--until",
            "2026-11-19",
            "-o",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("exported"));
    let lines = std::fs::read_to_string(&file).unwrap();
    assert_eq!(lines.lines().count(), 10);
    assert!(lines
        .lines()
        .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
}

#[test]
fn errors_exit_1() {
    let state = state_dir();
    let some_key = lethe_cert::ApplianceKey::from_seed(&[1; 32]).public_key_hex();
    let out = audit(state.path(), &["verify", "--key", &some_key]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no audit log"), "{}", stderr(&out));
    let j = summary(&audit(
        state.path(),
        &["verify", "--json", "--key", &some_key],
    ));
    assert_eq!(j["status"], "error");
    // No key in the state directory and none given.
    let out = audit(state.path(), &["verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("pass --key"), "{}", stderr(&out));
    write_entries(state.path(), 0, 2);
    let out = audit(
        state.path(),
        &["export", "--format", "csv", "--since", "yesterday"],
    );
    assert_eq!(out.status.code(), Some(1));
    let junk = state.path().join("junk");
    std::fs::write(&junk, "not a checkpoint\n").unwrap();
    let out = audit(
        state.path(),
        &["verify", "--checkpoint", junk.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("external checkpoint"),
        "{}",
        stderr(&out)
    );
}
