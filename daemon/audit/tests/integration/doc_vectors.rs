//! The test vectors in docs/audit-log.md are what this code produces.
//!
//! Each vector in the document is a fenced block right after a marker line
//! `<!-- vector: NAME -->`. This test rebuilds every vector from the fixed
//! key seed and entries below and compares byte for byte, so the document
//! cannot drift from the code. (Ed25519 signatures are deterministic, so
//! the signed checkpoints are fixed too.)

use lethe_audit::*;
use std::collections::BTreeMap;

/// The vector key's seed: 32 bytes 0x00, 0x01, ... 0x1f.
fn seed() -> [u8; 32] {
    std::array::from_fn(|i| i as u8)
}

fn entries() -> Vec<Entry> {
    vec![
        Entry::new(
            AuditTime::parse("2026-11-23T14:05:01Z").unwrap(),
            Source::Daemon,
            UserId::daemon(),
            Action::JobStarted,
            Entity::Job,
            RecordId::new("wipe-20261123T140501Z-3fa9c2").unwrap(),
            Outcome::Success,
        )
        .with_detail(
            Detail::new()
                .label("level", "clear")
                .label("method", "overwrite")
                .count("passes", 1),
        )
        .with_tag(TagKind::Bay, Token::new("bay-1").unwrap()),
        Entry::new(
            AuditTime::parse("2026-11-23T15:12:44Z").unwrap(),
            Source::Console,
            UserId::new("tech.jones").unwrap(),
            Action::CertificateIssued,
            Entity::Certificate,
            RecordId::new("wipe-20261123T140501Z-3fa9c2").unwrap(),
            Outcome::Success,
        )
        .with_detail(
            Detail::new()
                .digest("body_sha256", &[0xab; 32])
                .flag("verified", true),
        )
        .with_tag(TagKind::Session, Token::new("sess-7f3a").unwrap()),
        Entry::new(
            AuditTime::parse("2026-11-23T15:20:00Z").unwrap(),
            Source::Api,
            UserId::new("auditor1").unwrap(),
            Action::PermissionRefused,
            Entity::Key,
            RecordId::new("1f0e4b5c6d7a8b9c").unwrap(),
            Outcome::Refused,
        )
        .with_detail(Detail::new().label("needed", "key_admin")),
    ]
}

/// Every vector by name.
fn computed() -> BTreeMap<&'static str, String> {
    let key = ed25519_dalek::SigningKey::from_bytes(&seed());
    let public = key.verifying_key();
    let mut log = AuditLog::open(SqliteStore::open_in_memory().unwrap(), key).unwrap();
    let mut v = BTreeMap::new();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    v.insert("public-key", hex(public.as_bytes()));
    v.insert("origin", log.origin().to_owned());
    v.insert(
        "vkey",
        NoteVerifier::new(log.origin(), public).unwrap().to_vkey(),
    );
    v.insert("checkpoint-0", log.latest_checkpoint().note.clone());
    let names = ["leaf-0", "leaf-1", "leaf-2"];
    let hashes = ["leaf-hash-0", "leaf-hash-1", "leaf-hash-2"];
    for (i, e) in entries().iter().enumerate() {
        let r = log.append(e).unwrap();
        let stored = log.store().entry(i as u64).unwrap().unwrap();
        v.insert(names[i], String::from_utf8(stored.leaf).unwrap());
        v.insert(hashes[i], hex(&r.leaf_hash));
    }
    v.insert("checkpoint-3", log.latest_checkpoint().note.clone());
    let bundle = log.inclusion_bundle(1).unwrap();
    v.insert("bundle-1", serde_json::to_string_pretty(&bundle).unwrap());
    v
}

/// Vectors in the document: the fenced block after each marker.
fn documented() -> BTreeMap<String, String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/audit-log.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let mut out = BTreeMap::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .strip_prefix("<!-- vector: ")
            .and_then(|l| l.strip_suffix(" -->"))
        else {
            continue;
        };
        let fence = lines.next().unwrap_or_default();
        assert!(
            fence.starts_with("```"),
            "vector {name}: no fence after marker"
        );
        let mut body = String::new();
        for l in lines.by_ref() {
            if l == "```" {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        out.insert(name.to_owned(), body);
    }
    out
}

/// safeguard: 164.312(b), rule:audit-integrity
#[test]
fn the_documented_vectors_are_what_the_code_produces() {
    let doc = documented();
    let code = computed();
    let mut wrong = Vec::new();
    for (name, value) in &code {
        // Blocks end in a newline; notes already do, the others get one.
        let want = if value.ends_with('\n') {
            value.clone()
        } else {
            format!("{value}\n")
        };
        match doc.get(*name) {
            Some(d) if *d == want => {}
            Some(d) => wrong.push(format!("{name}: documented\n{d}computed\n{want}")),
            None => wrong.push(format!(
                "{name}: missing from the document; computed\n{want}"
            )),
        }
    }
    for name in doc.keys() {
        if !code.contains_key(name.as_str()) {
            wrong.push(format!("{name}: documented but not computed"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_documented_bundle_verifies_with_the_documented_key() {
    let doc = documented();
    let key = lethe_cert::load_public_key(doc["public-key"].trim()).unwrap();
    let bundle: InclusionBundle = serde_json::from_str(&doc["bundle-1"]).unwrap();
    let v = verify_inclusion(&bundle, doc["leaf-1"].trim_end().as_bytes(), &key).unwrap();
    assert_eq!(v.entry.action, Action::CertificateIssued);
    let cp = open_checkpoint(
        doc["checkpoint-3"].as_bytes(),
        &key,
        Some(doc["origin"].trim()),
    )
    .unwrap();
    assert_eq!(cp.checkpoint.size, 3);
    let (seq, e) = decode_leaf(doc["leaf-2"].trim_end().as_bytes()).unwrap();
    assert_eq!((seq, e.outcome), (2, Outcome::Refused));
}
