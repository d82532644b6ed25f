//! The attacker's side: someone who can write the database file but does
//! not hold the signing key edits, deletes, reorders, truncates and forges,
//! and verification must name the first bad entry every time.

use super::*;
use crate::entry::{Entry, RecordId};
use crate::leaf::{encode_leaf, tests::arb_entry};
use crate::log::AuditLog;
use crate::names::Outcome;
use crate::sqlite::SqliteStore;
use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use rusqlite::{params, Connection};

fn key() -> SigningKey {
    SigningKey::from_bytes(&[0x5a; 32])
}

/// A log of the given entries; record ids carry the index so no two
/// entries are equal.
fn build(entries: &[Entry]) -> AuditLog<SqliteStore> {
    let mut log = AuditLog::open(SqliteStore::open_in_memory().unwrap(), key()).unwrap();
    for (i, e) in entries.iter().enumerate() {
        let mut e = e.clone();
        if let Ok(id) = RecordId::new(format!("{}-{i}", e.record_id)) {
            e.record_id = id;
        }
        log.append(&e).unwrap();
    }
    log
}

fn sample(n: usize) -> Vec<Entry> {
    let base = crate::leaf::tests::vector_entry();
    (0..n).map(|_| base.clone()).collect()
}

fn verify(log: &AuditLog<SqliteStore>, external: Option<&str>) -> VerifyReport {
    verify_log(
        log.store(),
        &key().verifying_key(),
        external.map(str::as_bytes),
    )
    .unwrap()
}

/// Database-level tampering, as `sqlite3 audit.db` would allow.
struct Attacker<'a>(&'a Connection);

impl<'a> Attacker<'a> {
    fn new(log: &'a AuditLog<SqliteStore>) -> Self {
        let c = log.store().raw();
        for t in [
            "entries_no_update",
            "entries_no_delete",
            "checkpoints_no_update",
            "checkpoints_no_delete",
        ] {
            c.execute_batch(&format!("DROP TRIGGER IF EXISTS {t};"))
                .unwrap();
        }
        Attacker(c)
    }

    fn leaf(&self, idx: u64) -> (u64, Entry) {
        let leaf: Vec<u8> = self
            .0
            .query_row(
                "SELECT leaf FROM entries WHERE idx = ?1",
                [idx as i64],
                |r| r.get(0),
            )
            .unwrap();
        decode_leaf(&leaf).unwrap()
    }

    /// Replace row `idx` with `entry` encoded as `seq`; optionally also fix
    /// the leaf hash and index columns so that they agree with the new leaf.
    fn write(&self, idx: u64, seq: u64, entry: &Entry, fix_hash: bool) {
        let leaf = encode_leaf(seq, entry).unwrap();
        self.0
            .execute(
                "UPDATE entries SET leaf = ?1 WHERE idx = ?2",
                params![leaf, idx as i64],
            )
            .unwrap();
        if fix_hash {
            self.0
                .execute(
                    "UPDATE entries SET leaf_hash = ?1, time = ?2, user_id = ?3, action = ?4 WHERE idx = ?5",
                    params![
                        crate::merkle::leaf_hash(&leaf).to_vec(),
                        entry.time.unix(),
                        entry.user_id.as_str(),
                        entry.action.as_str(),
                        idx as i64
                    ],
                )
                .unwrap();
        }
    }

    fn swap_rows(&self, i: u64, j: u64) {
        // `idx >= 0` is enforced, so park one row on a spare high index.
        self.0
            .execute_batch(&format!(
                "UPDATE entries SET idx = 1000000 WHERE idx = {i};
                 UPDATE entries SET idx = {i} WHERE idx = {j};
                 UPDATE entries SET idx = {j} WHERE idx = 1000000;"
            ))
            .unwrap();
    }

    fn delete(&self, idx: u64) {
        self.0
            .execute("DELETE FROM entries WHERE idx = ?1", [idx as i64])
            .unwrap();
    }

    fn renumber_after(&self, idx: u64) {
        let rows: Vec<i64> = {
            let mut s = self
                .0
                .prepare("SELECT idx FROM entries WHERE idx > ?1 ORDER BY idx")
                .unwrap();
            s.query_map([idx as i64], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        for r in rows {
            self.0
                .execute("UPDATE entries SET idx = ?1 WHERE idx = ?2", [r - 1, r])
                .unwrap();
        }
    }

    fn truncate_entries(&self, from: u64) {
        self.0
            .execute("DELETE FROM entries WHERE idx >= ?1", [from as i64])
            .unwrap();
    }

    fn truncate_checkpoints(&self, above: u64) {
        self.0
            .execute("DELETE FROM checkpoints WHERE size > ?1", [above as i64])
            .unwrap();
    }

    /// Append a well-formed entry without a checkpoint (no key to sign one).
    fn forge(&self, idx: u64, entry: &Entry) {
        let leaf = encode_leaf(idx, entry).unwrap();
        self.0
            .execute(
                "INSERT INTO entries (idx, leaf, leaf_hash, time, user_id, action)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    idx as i64,
                    leaf,
                    crate::merkle::leaf_hash(&leaf).to_vec(),
                    entry.time.unix(),
                    entry.user_id.as_str(),
                    entry.action.as_str()
                ],
            )
            .unwrap();
    }
}

fn finding(r: &VerifyReport) -> (u64, Reason) {
    let f = r
        .finding
        .clone()
        .unwrap_or_else(|| panic!("tampering not detected: {r:?}"));
    (f.index, f.reason)
}

/// safeguard: 164.312(b), rule:audit-integrity
#[test]
fn an_untouched_log_verifies_with_and_without_an_external_checkpoint() {
    let log = build(&sample(9));
    let external = log.latest_checkpoint().note.clone();
    let r = verify(&log, None);
    assert!(r.is_intact() && !r.is_anchored(), "{r:?}");
    assert_eq!((r.entries, r.checkpoints), (9, 10));
    assert_eq!(r.latest.as_ref().unwrap().size, 9);
    let r = verify(&log, Some(&external));
    assert!(r.is_intact() && r.is_anchored(), "{r:?}");
    // An older external checkpoint is consistent with the newer log.
    let old = build(&sample(4)).latest_checkpoint().note.clone();
    let r = verify(&log, Some(&old));
    assert!(r.is_intact(), "{r:?}");
    assert!(r.external.unwrap().proof_len > 0);
    // An empty log verifies too.
    assert!(verify(&build(&[]), None).is_intact());
}

/// safeguard: 164.312(b), rule:audit-integrity
#[test]
fn editing_one_entry_is_named() {
    let log = build(&sample(8));
    let a = Attacker::new(&log);
    let (seq, mut e) = a.leaf(5);
    e.outcome = Outcome::Failure;
    a.write(5, seq, &e, false);
    assert_eq!(finding(&verify(&log, None)), (5, Reason::LeafHashMismatch));
    // Fixing the hash and columns moves the evidence to the signed root.
    a.write(5, seq, &e, true);
    assert_eq!(
        finding(&verify(&log, None)),
        (5, Reason::RootMismatch { size: 6 })
    );
    // Raw bytes that are not a canonical entry.
    let leaf: Vec<u8> =
        a.0.query_row("SELECT leaf FROM entries WHERE idx = 2", [], |r| r.get(0))
            .unwrap();
    let mut bad = leaf.clone();
    bad.push(b' ');
    a.0.execute(
        "UPDATE entries SET leaf = ?1, leaf_hash = ?2 WHERE idx = 2",
        params![bad, crate::merkle::leaf_hash(&bad).to_vec()],
    )
    .unwrap();
    assert!(matches!(
        finding(&verify(&log, None)),
        (2, Reason::Undecodable(_))
    ));
}

/// safeguard: rule:audit-integrity
#[test]
fn index_column_edits_are_named() {
    let log = build(&sample(4));
    let a = Attacker::new(&log);
    a.0.execute("UPDATE entries SET user_id = 'mallory' WHERE idx = 1", [])
        .unwrap();
    assert_eq!(finding(&verify(&log, None)), (1, Reason::IndexColumns));
}

/// safeguard: 164.312(b), rule:audit-integrity
#[test]
fn deleting_one_entry_is_named() {
    let log = build(&sample(7));
    Attacker::new(&log).delete(3);
    assert_eq!(finding(&verify(&log, None)), (3, Reason::Missing));
    let log = build(&sample(7));
    let a = Attacker::new(&log);
    a.delete(3);
    a.renumber_after(3);
    assert_eq!(
        finding(&verify(&log, None)),
        (3, Reason::WrongPosition { claims: 4 })
    );
}

/// safeguard: 164.312(b), rule:audit-integrity
#[test]
fn reordering_two_entries_is_named() {
    let log = build(&sample(7));
    Attacker::new(&log).swap_rows(2, 5);
    assert_eq!(
        finding(&verify(&log, None)),
        (2, Reason::WrongPosition { claims: 5 })
    );
    // Re-encoding both at their new positions (and fixing hashes) still fails
    // at the signed root over the first of them.
    let log = build(&sample(7));
    let a = Attacker::new(&log);
    let (_, e2) = a.leaf(2);
    let (_, e5) = a.leaf(5);
    a.write(2, 2, &e5, true);
    a.write(5, 5, &e2, true);
    assert_eq!(
        finding(&verify(&log, None)),
        (2, Reason::RootMismatch { size: 3 })
    );
}

/// safeguard: 164.312(b), rule:audit-integrity
#[test]
fn truncating_the_tail_is_named_with_an_external_checkpoint() {
    let log = build(&sample(10));
    let external = log.latest_checkpoint().note.clone();
    let a = Attacker::new(&log);
    // Entries only: the stored checkpoints still cover them.
    a.truncate_entries(6);
    assert_eq!(
        finding(&verify(&log, None)),
        (6, Reason::Truncated { checkpoint_size: 7 })
    );
    // Entries and their checkpoints: internally consistent, and only an
    // external checkpoint can tell.
    a.truncate_checkpoints(6);
    let r = verify(&log, None);
    assert!(r.is_intact() && !r.is_anchored() && r.entries == 6, "{r:?}");
    assert_eq!(
        finding(&verify(&log, Some(&external))),
        (6, Reason::ExternalAhead { external_size: 10 })
    );
    // Cut and continued with forged entries: unsealed from the cut.
    let tail = sample(1).remove(0);
    for i in 6..10 {
        a.forge(i, &tail);
    }
    assert_eq!(finding(&verify(&log, None)), (6, Reason::Unsealed));
    assert_eq!(
        finding(&verify(&log, Some(&external))),
        (6, Reason::Unsealed)
    );
}

/// safeguard: rule:audit-integrity
#[test]
fn a_rewrite_by_the_key_holder_is_caught_only_by_an_external_checkpoint() {
    let original = build(&sample(6));
    let external = original.latest_checkpoint().note.clone();
    // Same key, same origin, different history.
    let mut other = sample(6);
    other[1].outcome = Outcome::Refused;
    let rewritten = build(&other);
    assert!(verify(&rewritten, None).is_intact());
    assert_eq!(
        finding(&verify(&rewritten, Some(&external))),
        (0, Reason::ExternalMismatch { external_size: 6 })
    );
}

/// safeguard: rule:audit-integrity
#[test]
fn bad_and_reordered_checkpoints_are_named() {
    let log = build(&sample(5));
    let a = Attacker::new(&log);
    a.0.execute(
        "UPDATE checkpoints SET note = replace(note, '=', 'A') WHERE size = 3",
        [],
    )
    .unwrap();
    assert!(matches!(
        finding(&verify(&log, None)),
        (2, Reason::CheckpointInvalid { size: 3, .. })
    ));
    let log = build(&sample(5));
    let a = Attacker::new(&log);
    let old: String =
        a.0.query_row("SELECT note FROM checkpoints WHERE size = 2", [], |r| {
            r.get(0)
        })
        .unwrap();
    a.0.execute("INSERT INTO checkpoints (size, note) VALUES (2, ?1)", [old])
        .unwrap();
    assert_eq!(
        finding(&verify(&log, None)),
        (
            5,
            Reason::CheckpointOutOfOrder {
                size: 2,
                previous: 5
            }
        )
    );
    // Verified with another key, nothing is sealed.
    let other = SigningKey::from_bytes(&[1; 32]).verifying_key();
    let r = verify_log(build(&sample(2)).store(), &other, None).unwrap();
    assert!(matches!(
        finding(&r),
        (0, Reason::CheckpointInvalid { size: 0, .. })
    ));
}

#[test]
fn unusable_external_checkpoints_are_errors_not_findings() {
    let log = build(&sample(3));
    let foreign = AuditLog::open_with_origin(
        SqliteStore::open_in_memory().unwrap(),
        key(),
        "lethe/audit/elsewhere",
    )
    .unwrap()
    .latest_checkpoint()
    .note
    .clone();
    for bad in [foreign.as_str(), "garbage"] {
        assert!(matches!(
            verify_log(log.store(), &key().verifying_key(), Some(bad.as_bytes())),
            Err(VerifyError::External(_))
        ));
    }
}

/// safeguard: rule:audit-integrity
#[test]
fn the_writer_refuses_to_seal_over_a_damaged_log() {
    let log = build(&sample(4));
    let a = Attacker::new(&log);
    let (seq, mut e) = a.leaf(1);
    e.outcome = Outcome::Refused;
    a.write(1, seq, &e, true);
    let err = AuditLog::open(log.into_store(), key()).unwrap_err();
    assert!(matches!(err, crate::log::AuditError::Damaged(_)), "{err}");
}

/// What the finding's reason must satisfy.
type Expect = Box<dyn Fn(&Reason) -> bool>;

/// One random act of tampering and what verification must say about it.
#[derive(Debug, Clone)]
enum Tamper {
    EditLeaf(u64),
    EditLeafAndHash(u64),
    Delete(u64),
    DeleteAndRenumber(u64),
    Swap(u64, u64),
    SwapAndReencode(u64, u64),
    TruncateEntries(u64),
    TruncateAll(u64),
    TruncateAndForge(u64),
}

fn arb_case() -> impl Strategy<Value = (Vec<Entry>, Tamper)> {
    prop::collection::vec(arb_entry(), 3..20).prop_flat_map(|entries| {
        let n = entries.len() as u64;
        let tamper = prop_oneof![
            (0..n).prop_map(Tamper::EditLeaf),
            (0..n).prop_map(Tamper::EditLeafAndHash),
            (0..n).prop_map(Tamper::Delete),
            (0..n).prop_map(Tamper::DeleteAndRenumber),
            (0..n - 1)
                .prop_flat_map(move |i| (Just(i), i + 1..n))
                .prop_map(|(i, j)| Tamper::Swap(i, j)),
            (0..n - 1)
                .prop_flat_map(move |i| (Just(i), i + 1..n))
                .prop_map(|(i, j)| Tamper::SwapAndReencode(i, j)),
            (0..n).prop_map(Tamper::TruncateEntries),
            (0..n).prop_map(Tamper::TruncateAll),
            (0..n).prop_map(Tamper::TruncateAndForge),
        ];
        (Just(entries), tamper)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Every prefix-preserving act is caught and the first bad entry named;
    /// a clean truncation (entries and checkpoints) is caught exactly when
    /// an external checkpoint is given.
    /// safeguard: 164.312(b), 164.312(c)(1), rule:audit-integrity
    #[test]
    fn random_tampering_is_detected_and_named((entries, tamper) in arb_case()) {
        let log = build(&entries);
        let n = entries.len() as u64;
        let external = log.latest_checkpoint().note.clone();
        let a = Attacker::new(&log);
        let flip = |o: &Outcome| if *o == Outcome::Success { Outcome::Failure } else { Outcome::Success };
        let (want_index, check): (u64, Expect) = match tamper {
            Tamper::EditLeaf(k) => {
                let (seq, mut e) = a.leaf(k);
                e.outcome = flip(&e.outcome);
                a.write(k, seq, &e, false);
                (k, Box::new(|r| *r == Reason::LeafHashMismatch))
            }
            Tamper::EditLeafAndHash(k) => {
                let (seq, mut e) = a.leaf(k);
                e.outcome = flip(&e.outcome);
                a.write(k, seq, &e, true);
                (k, Box::new(move |r| *r == Reason::RootMismatch { size: k + 1 }))
            }
            Tamper::Delete(k) | Tamper::DeleteAndRenumber(k) if k == n - 1 => {
                a.delete(k);
                (k, Box::new(move |r| *r == Reason::Truncated { checkpoint_size: n }))
            }
            Tamper::Delete(k) => {
                a.delete(k);
                (k, Box::new(|r| *r == Reason::Missing))
            }
            Tamper::DeleteAndRenumber(k) => {
                a.delete(k);
                a.renumber_after(k);
                (k, Box::new(move |r| *r == Reason::WrongPosition { claims: k + 1 }))
            }
            Tamper::Swap(i, j) => {
                a.swap_rows(i, j);
                (i, Box::new(move |r| *r == Reason::WrongPosition { claims: j }))
            }
            Tamper::SwapAndReencode(i, j) => {
                let (_, ei) = a.leaf(i);
                let (_, ej) = a.leaf(j);
                a.write(i, i, &ej, true);
                a.write(j, j, &ei, true);
                (i, Box::new(move |r| *r == Reason::RootMismatch { size: i + 1 }))
            }
            Tamper::TruncateEntries(t) => {
                a.truncate_entries(t);
                (t, Box::new(move |r| *r == Reason::Truncated { checkpoint_size: t + 1 }))
            }
            Tamper::TruncateAll(t) => {
                a.truncate_entries(t);
                a.truncate_checkpoints(t);
                // Undetectable from inside: the report must say it is unanchored.
                let r = verify(&log, None);
                prop_assert!(r.is_intact() && !r.is_anchored() && r.entries == t);
                (t, Box::new(move |r| *r == Reason::ExternalAhead { external_size: n }))
            }
            Tamper::TruncateAndForge(t) => {
                a.truncate_entries(t);
                a.truncate_checkpoints(t);
                for i in t..n {
                    a.forge(i, &entries[i as usize]);
                }
                (t, Box::new(|r| *r == Reason::Unsealed))
            }
        };
        let r = verify(&log, Some(&external));
        let f = r.finding.clone();
        prop_assert!(f.is_some(), "{:?} not detected", tamper);
        let f = f.unwrap();
        prop_assert_eq!(f.index, want_index, "{:?}: {}", tamper, f);
        prop_assert!(check(&f.reason), "{:?}: {}", tamper, f);
        // Without the external checkpoint the same finding stands, except a
        // clean truncation, which only the external checkpoint reveals.
        if !matches!(tamper, Tamper::TruncateAll(_)) {
            let r = verify(&log, None);
            prop_assert_eq!(r.finding.map(|f| f.index), Some(want_index));
        }
    }
}
