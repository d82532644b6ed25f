//! The published inclusion and consistency probes of transparency-dev/merkle
//! (happy paths and every corruption its `proofgen` makes: flipped bits,
//! wrong leaf, shifted index, doubled or halved size, garbage before or after
//! the proof, swapped roots...), run through our verifiers.
//!
//! `tests/vectors/transparency-dev-merkle.json` holds every
//! `testdata/{inclusion,consistency}/**/*.json` of that repository at the
//! commit recorded in the file, merged into one document. To regenerate it,
//! walk those two directories of a checkout and collect each file's object
//! with its relative path under `"file"`.
//!
//! Some probes carry "hashes" that are not 32 bytes (`"don't care"` roots of
//! 12 bytes, an empty leaf hash). Our verifiers take `[u8; 32]`, so they
//! cannot be handed such a value at all: a probe that expects an error counts
//! as rejected by the type. The one probe of that kind that expects success
//! (equal sizes, equal roots, empty proof) is run with a stand-in 32-byte
//! hash derived from the bytes (equal values get equal stand-ins).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use lethe_audit::merkle::{verify_consistency, verify_inclusion, Hash, Tree};
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/transparency-dev-merkle.json"
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A base64 field as a 32-byte hash; `None` for any other length.
fn hash(v: &Value) -> Option<Hash> {
    B64.decode(v.as_str()?).ok()?.try_into().ok()
}

/// A stand-in 32-byte hash for a value of another length.
fn stand_in(v: &Value) -> Hash {
    hash(v).unwrap_or_else(|| {
        lethe_audit::merkle::leaf_hash(&B64.decode(v.as_str().unwrap_or("")).unwrap_or_default())
    })
}

fn hashes(v: &Value) -> Option<Vec<Hash>> {
    match v {
        Value::Null => Some(vec![]),
        Value::Array(a) => a.iter().map(hash).collect(),
        _ => None,
    }
}

/// safeguard: rule:audit-integrity
#[test]
fn inclusion_probes() {
    let v = vectors();
    let probes = v["inclusion"].as_array().unwrap();
    assert!(probes.len() >= 90, "only {} probes", probes.len());
    let (mut accepted, mut rejected) = (0, 0);
    for p in probes {
        let want_err = p["wantErr"].as_bool().unwrap();
        let file = p["file"].as_str().unwrap();
        let (Some(leaf), Some(root), Some(proof)) =
            (hash(&p["leafHash"]), hash(&p["root"]), hashes(&p["proof"]))
        else {
            assert!(want_err, "{file}: unrepresentable probe expected to verify");
            rejected += 1;
            continue;
        };
        let index = p["leafIdx"].as_u64().unwrap();
        let size = p["treeSize"].as_u64().unwrap();
        let got = verify_inclusion(index, size, &leaf, &proof, &root);
        assert_eq!(got.is_err(), want_err, "{file}: {got:?}");
        if want_err {
            rejected += 1;
        } else {
            accepted += 1;
        }
    }
    assert!(accepted >= 6 && rejected >= 80, "{accepted} / {rejected}");
}

/// safeguard: rule:audit-integrity
#[test]
fn consistency_probes() {
    let v = vectors();
    let probes = v["consistency"].as_array().unwrap();
    assert!(probes.len() >= 90, "only {} probes", probes.len());
    let (mut accepted, mut rejected) = (0, 0);
    for p in probes {
        let want_err = p["wantErr"].as_bool().unwrap();
        let file = p["file"].as_str().unwrap();
        let Some(proof) = hashes(&p["proof"]) else {
            assert!(want_err, "{file}: unrepresentable probe expected to verify");
            rejected += 1;
            continue;
        };
        let (r1, r2) = match (hash(&p["root1"]), hash(&p["root2"])) {
            (Some(r1), Some(r2)) => (r1, r2),
            _ if want_err => {
                rejected += 1;
                continue;
            }
            _ => (stand_in(&p["root1"]), stand_in(&p["root2"])),
        };
        let s1 = p["size1"].as_u64().unwrap();
        let s2 = p["size2"].as_u64().unwrap();
        let got = verify_consistency(s1, s2, &r1, &r2, &proof);
        assert_eq!(got.is_err(), want_err, "{file}: {got:?}");
        if want_err {
            rejected += 1;
        } else {
            accepted += 1;
        }
    }
    assert!(accepted >= 6 && rejected >= 80, "{accepted} / {rejected}");
}

/// Our generator produces exactly the proofs of every happy-path probe,
/// given the RFC 6962 reference leaves those probes are built on.
#[test]
fn generated_proofs_equal_the_happy_paths() {
    let leaves: Vec<Vec<u8>> = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|s| {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    })
    .collect();
    let tree = Tree::from_leaf_hashes(leaves.iter().map(|l| lethe_audit::merkle::leaf_hash(l)));
    let v = vectors();
    let mut checked = 0;
    for p in v["inclusion"].as_array().unwrap() {
        if p["desc"] != "happy path" {
            continue;
        }
        let (i, n) = (
            p["leafIdx"].as_u64().unwrap(),
            p["treeSize"].as_u64().unwrap(),
        );
        assert_eq!(tree.root_at(n), hash(&p["root"]), "{}", p["file"]);
        assert_eq!(tree.leaf(i), hash(&p["leafHash"]), "{}", p["file"]);
        assert_eq!(
            Some(tree.inclusion_proof(i, n).unwrap()),
            hashes(&p["proof"])
        );
        checked += 1;
    }
    for p in v["consistency"].as_array().unwrap() {
        if p["desc"] != "happy path" {
            continue;
        }
        let (m, n) = (p["size1"].as_u64().unwrap(), p["size2"].as_u64().unwrap());
        assert_eq!(tree.root_at(m), hash(&p["root1"]), "{}", p["file"]);
        assert_eq!(tree.root_at(n), hash(&p["root2"]), "{}", p["file"]);
        assert_eq!(
            Some(tree.consistency_proof(m, n).unwrap()),
            hashes(&p["proof"])
        );
        checked += 1;
    }
    assert!(checked >= 10, "{checked}");
}
