//! The certificate directory.

mod common;

use common::{failed_body, vector_body, vector_seed};
use lethe_cert::*;
use std::fs;

fn key() -> ApplianceKey {
    ApplianceKey::from_seed(&vector_seed())
}

/// safeguard: 164.310(d)(2)(iii)
#[test]
fn save_list_load() {
    let tmp = tempfile::tempdir().unwrap();
    let store = CertStore::new(tmp.path().join("certs"));
    assert!(store.list().unwrap().is_empty());

    let mut early = failed_body(2);
    early.issued_at = "2026-11-20T08:00:00Z".into();
    let late = vector_body();
    let (json, pdf) = store.save(&sign(&late, &key()).unwrap()).unwrap();
    assert_eq!(json, tmp.path().join("certs/job-20261123-0001.json"));
    assert!(fs::read(&pdf).unwrap().starts_with(b"%PDF-"));
    store.save(&sign(&early, &key()).unwrap()).unwrap();

    let list = store.list().unwrap();
    let ids: Vec<_> = list.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["job-fail-2", "job-20261123-0001"]);
    assert_eq!(list[0].status, Some(ResultStatus::Fail));
    assert_eq!(list[1].status, Some(ResultStatus::Pass));
    assert_eq!(list[1].serial, "QM00001");
    assert_eq!(list[1].key_id, key().key_id());
    assert!(list.iter().all(|s| s.problem.is_none()));

    assert_eq!(store.load("job-20261123-0001").unwrap().body(), &late);
    assert_eq!(store.load("job-20261123-0001.json").unwrap().body(), &late);
    assert_eq!(store.load(json.to_str().unwrap()).unwrap().body(), &late);
    assert!(store
        .load_with_key("job-fail-2", Some(&key().verifying_key()))
        .is_ok());
    let other = ApplianceKey::from_seed(&[9; 32]);
    assert!(matches!(
        store.load_with_key("job-fail-2", Some(&other.verifying_key())),
        Err(CertError::Verify {
            source: VerifyError::WrongKey { .. },
            ..
        })
    ));
    // No temp files left behind.
    let names: Vec<_> = fs::read_dir(store.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
}

/// safeguard: 164.310(d)(2)(iii)
#[test]
fn refuses_to_overwrite_a_different_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let store = CertStore::new(tmp.path());
    let a = sign(&vector_body(), &key()).unwrap();
    store.save(&a).unwrap();
    store.save(&a).unwrap(); // identical: fine
    let mut b = vector_body();
    b.result.status = ResultStatus::Fail;
    let b = sign(&b, &key()).unwrap();
    assert!(matches!(store.save(&b), Err(CertError::Exists(_))));
    assert_eq!(store.load("job-20261123-0001").unwrap().signed(), &a);
    store.replace(&b).unwrap();
    assert_eq!(store.load("job-20261123-0001").unwrap().signed(), &b);
}

#[test]
fn damaged_files_are_listed_with_their_problem_and_bad_ids_not_found() {
    let tmp = tempfile::tempdir().unwrap();
    let store = CertStore::new(tmp.path());
    let (json, _) = store.save(&sign(&vector_body(), &key()).unwrap()).unwrap();
    let text = fs::read_to_string(&json)
        .unwrap()
        .replace("QM00001", "QM00009");
    fs::write(&json, text).unwrap();
    fs::write(tmp.path().join("notes.json"), "{\"a\":1}").unwrap();
    let list = store.list().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list
        .iter()
        .all(|s| s.problem.is_some() && s.status.is_none()));
    assert!(list
        .iter()
        .any(|s| s.problem.as_deref().unwrap().contains("INVALID signature")));
    let e = store.load("job-20261123-0001").unwrap_err();
    assert!(e.to_string().contains("INVALID signature"), "{e}");
    for bad in ["../../etc/passwd", "nope", ""] {
        assert!(
            matches!(store.load(bad), Err(CertError::NotFound(..))),
            "{bad}"
        );
    }
}
