//! Test vectors: fixed keys and inputs -> exact bytes. The same lines appear in
//! `tests/vectors/vectors.txt` and in `docs/backup-format.md`; this test recomputes every
//! vector, compares with both, and re-derives the crypto independently from the documented
//! formulas (raw HKDF / AES-GCM / BLAKE3 calls) so the document is checked, not just the code.
//! Regenerate after an intentional format change with `LETHE_BLESS=1 cargo test --test vectors`.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::hkdf::{KeyType, Salt, HKDF_SHA256};
use lethe_repo::chunker::{Chunker, ChunkerParams};
use lethe_repo::crypto::MasterKey;
use lethe_repo::index::IndexFile;
use lethe_repo::keys::{key_add, KdfParams, KeyFile};
use lethe_repo::pack::{seal_blob, PackBuilder, PackReader};
use lethe_repo::recovery;
use lethe_repo::snapshot::{RepairRecord, Snapshot, SnapshotExtensions, Source, Summary};
use lethe_repo::tree::{Extent, Node, NodeKind, Timestamp, Tree};
use lethe_repo::{BlobKind, Id, ObjectType};

const MASTER: [u8; 32] = {
    let mut m = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        m[i] = i as u8;
        i += 1;
    }
    m
};
const SESSION: [u8; 16] = [
    0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xAB, 0xAC, 0xAD, 0xAE, 0xAF,
];
const T: Timestamp = Timestamp {
    secs: 1_767_225_600,
    nanos: 0,
};

struct Len32;
impl KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

/// HKDF-SHA256 exactly as written in the document.
fn hkdf(salt: &[u8], ikm: &[u8], info: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    Salt::new(HKDF_SHA256, salt)
        .extract(ikm)
        .expand(&[info.as_bytes()], Len32)
        .unwrap()
        .fill(&mut out)
        .unwrap();
    out
}

fn hex(b: &[u8]) -> String {
    hex::encode(b)
}

fn sample_tree(file_blob: Id) -> Tree {
    Tree {
        nodes: vec![
            Node {
                name: b"hello.txt".to_vec(),
                kind: NodeKind::File {
                    content: vec![
                        Extent::Data {
                            id: file_blob,
                            len: 12,
                        },
                        Extent::Zero { len: 4096 },
                    ],
                    blake3: *blake3::hash(&[b"hello, lethe".as_slice(), &[0u8; 4096]].concat())
                        .as_bytes(),
                },
                mode: 0o644,
                uid: 1000,
                gid: 1000,
                user: Some("alice".into()),
                group: Some("staff".into()),
                size: 12 + 4096,
                mtime: T,
                atime: T,
                ctime: T,
                dev: 2049,
                inode: 131_073,
                nlink: 1,
                xattrs: vec![],
            },
            Node {
                name: b"link".to_vec(),
                kind: NodeKind::Symlink {
                    target: b"hello.txt".to_vec(),
                },
                mode: 0o777,
                uid: 0,
                gid: 0,
                user: None,
                group: None,
                size: 9,
                mtime: T,
                atime: T,
                ctime: T,
                dev: 2049,
                inode: 131_074,
                nlink: 1,
                xattrs: vec![],
            },
        ],
    }
}

fn compute() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, val: String| v.push((k.to_string(), val));
    let master = MasterKey::from_bytes(MASTER);
    let keys = master.derive().unwrap();
    put("master_key", hex(&MASTER));

    // Derived keys, independently from the documented HKDF labels.
    let enc_root = hkdf(b"lethe-repo-v1", &MASTER, "lethe/v1/encryption-root");
    let id_data = hkdf(b"lethe-repo-v1", &MASTER, "lethe/v1/blob-id/data");
    let gear_key = hkdf(b"lethe-repo-v1", &MASTER, "lethe/v1/chunker-gear");
    assert_eq!(&gear_key, keys.gear_key());
    put("enc_root", hex(&enc_root));
    put("id_key_data", hex(&id_data));
    put("gear_key", hex(&gear_key));
    let session_key = hkdf(&SESSION, &enc_root, "lethe/v1/session-key");
    put("session_id", hex(&SESSION));
    put("session_key", hex(&session_key));

    // Blob id = keyed BLAKE3.
    let plain = b"hello, lethe";
    let id = keys.blob_id(BlobKind::Data, plain);
    assert_eq!(id.0, *blake3::keyed_hash(&id_data, plain).as_bytes());
    put("blob_plaintext", hex(plain));
    put("blob_id", id.to_hex());

    // Sealed blob (level 0: stored raw), counter 0.
    let mut sealer = keys.sealer(SESSION, 0).unwrap();
    let sealed = seal_blob(&mut sealer, BlobKind::Data, &id, plain).unwrap();
    // Independent decryption: nonce = counter LE || 0000, AAD = header || blob id.
    let mut aad = sealed[..36].to_vec();
    aad.extend_from_slice(&id.0);
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &session_key).unwrap());
    let mut body = sealed[36..].to_vec();
    let opened = key
        .open_in_place(
            Nonce::assume_unique_for_key([0; 12]),
            Aad::from(&aad[..]),
            &mut body,
        )
        .unwrap();
    assert_eq!(opened, plain);
    put("sealed_blob", hex(&sealed));

    // Compressed sealed blob (zstd level 3), counter 1.
    let mut zsealer = keys.sealer(SESSION, 3).unwrap();
    let _ = zsealer
        .seal(ObjectType::DataBlob, &Id::ZERO, b"skip counter 0")
        .unwrap();
    let rep = b"lethe ".repeat(64);
    let rep_id = keys.blob_id(BlobKind::Data, &rep);
    let zsealed = seal_blob(&mut zsealer, BlobKind::Data, &rep_id, &rep).unwrap();
    assert_eq!(zsealed[6], 1, "compressed");
    put(
        "zstd_plaintext",
        format!("\"lethe \" x 64 ({} bytes)", rep.len()),
    );
    put("zstd_sealed_blob", hex(&zsealed));

    // Pack holding the raw sealed blob; header sealed by the same session (counter 1).
    let mut b = PackBuilder::new(1 << 20);
    b.add(BlobKind::Data, id, &sealed).unwrap();
    let pack = b.finish(&mut sealer).unwrap();
    assert_eq!(Id::of_file(&pack.bytes), pack.id);
    let r = PackReader::open(&mut keys.opener(), &pack.id, &pack.bytes, true).unwrap();
    assert_eq!(r.entries(), &pack.entries[..]);
    put("pack", hex(&pack.bytes));
    put("pack_id", pack.id.to_hex());

    // Index file for that pack (counter 2).
    let idx = IndexFile::from_entries(&pack.entries, vec![])
        .seal(&mut sealer)
        .unwrap();
    put("index_file", hex(&idx));

    // Tree plaintext (postcard) and its id.
    let tree = sample_tree(id);
    let tree_plain = tree.encode().unwrap();
    put("tree_plaintext", hex(&tree_plain));
    put(
        "tree_id",
        keys.blob_id(BlobKind::Tree, &tree_plain).to_hex(),
    );

    // Snapshot (counter 3).
    let snap = Snapshot {
        time: T,
        hostname: "lethe-01".into(),
        username: "root".into(),
        tags: vec!["daily".into()],
        parent: None,
        source: Source::Tree {
            root: keys.blob_id(BlobKind::Tree, &tree_plain),
            paths: vec![b"/srv/data".to_vec()],
        },
        summary: Summary::default(),
        ext: SnapshotExtensions::default(),
    };
    let snap_bytes = snap.seal(&mut sealer).unwrap();
    assert_eq!(
        Snapshot::open(&mut keys.opener(), &snap_bytes).unwrap(),
        snap
    );
    put("snapshot_file", hex(&snap_bytes));
    put("snapshot_id", Id::of_file(&snap_bytes).to_hex());

    // The same snapshot with extension records (plaintext only): one file changed
    // while it was read, and a repair record.
    let mut ext_snap = snap.clone();
    ext_snap.ext = SnapshotExtensions {
        changed_during_backup: vec![b"data/app.log".to_vec()],
        repaired: Some(RepairRecord {
            original: Id([0x11; 32]),
            time: T,
            dropped: vec!["data/x: blob missing".into()],
        }),
        unknown: vec![],
    };
    let mut s2 = keys.sealer(SESSION, 0).unwrap();
    let ext_bytes = ext_snap.seal(&mut s2).unwrap();
    let ext_plain = keys
        .opener()
        .open(ObjectType::Snapshot, &Id::ZERO, &ext_bytes)
        .unwrap();
    let v1_plain = keys
        .opener()
        .open(ObjectType::Snapshot, &Id::ZERO, &snap_bytes)
        .unwrap();
    assert!(ext_plain.starts_with(&v1_plain), "version-1 fields first");
    assert_eq!(Snapshot::decode(&ext_plain).unwrap(), ext_snap);
    put("snapshot_extensions", hex(&ext_plain[v1_plain.len()..]));

    // Chunker: gear table head and cut points of 8 MiB of BLAKE3-XOF("lethe chunker vector").
    let c = Chunker::new(ChunkerParams::default(), &gear_key).unwrap();
    let mut data = vec![0u8; 8 << 20];
    blake3::Hasher::new()
        .update(b"lethe chunker vector")
        .finalize_xof()
        .fill(&mut data);
    let lens: Vec<String> = c.chunks(&data).map(|c| c.len().to_string()).collect();
    put("chunk_lengths", lens.join(","));

    // Key file: Argon2id m=64 KiB t=1 p=1 (tiny so the test is fast; real files use 64 MiB, t=3).
    let (kid, kbytes) = key_add(
        &master,
        b"correct horse battery staple",
        [0x5A; 32],
        KdfParams {
            m_kib: 64,
            t: 1,
            p: 1,
        },
        "vector".into(),
        T,
    )
    .unwrap();
    assert_eq!(
        KeyFile::parse(&kbytes)
            .unwrap()
            .unlock(b"correct horse battery staple")
            .unwrap()
            .as_bytes(),
        &MASTER
    );
    put("key_file", hex(&kbytes));
    put("key_file_id", kid.to_hex());
    put("recovery_key", recovery::encode(&master));
    v
}

/// The chunker exactly as section 6 of the document describes it (independent of the crate).
fn doc_chunker(gear_key: &[u8; 32], data: &[u8], min: usize, avg: usize, max: usize) -> Vec<usize> {
    let mut raw = [0u8; 2048];
    blake3::Hasher::new_keyed(gear_key)
        .update(b"lethe/v1/gear-table")
        .finalize_xof()
        .fill(&mut raw);
    let g: Vec<u64> = raw
        .chunks(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let mask = |n: u32| (0..n).fold(0u64, |m, i| m | 1u64 << (63 - i * 48 / n));
    let bits = avg.trailing_zeros();
    let (ms, ml) = (mask(bits + 1), mask(bits - 1));
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let mut len = rest.len().min(max);
        if rest.len() > min {
            let remaining = len;
            let center = avg.min(remaining);
            let mut hash = 0u64;
            let mut a = min & !1;
            while a + 1 < remaining & !1 {
                let (m, m_ls) = if a + 1 < center & !1 {
                    (ms, ms << 1)
                } else {
                    (ml, ml << 1)
                };
                hash = (hash << 2).wrapping_add(g[rest[a] as usize] << 1);
                if hash & m_ls == 0 {
                    len = a + 1;
                    break;
                }
                hash = hash.wrapping_add(g[rest[a + 1] as usize]);
                if hash & m == 0 {
                    len = a + 2;
                    break;
                }
                a += 2;
            }
        }
        out.push(len);
        rest = &rest[len..];
    }
    out
}

#[test]
fn chunker_matches_document() {
    let gear_key = hkdf(b"lethe-repo-v1", &MASTER, "lethe/v1/chunker-gear");
    let mut data = vec![0u8; 3 << 20];
    blake3::Hasher::new()
        .update(b"doc chunker")
        .finalize_xof()
        .fill(&mut data);
    for (min, avg, max) in [
        (512usize << 10, 1usize << 20, 8usize << 20),
        (2048, 8192, 65536),
        (64, 256, 1024),
    ] {
        let p = ChunkerParams {
            min_size: min as u32,
            avg_size: avg as u32,
            max_size: max as u32,
        };
        let c = Chunker::new(p, &gear_key).unwrap();
        let got: Vec<usize> = c.chunks(&data).map(<[u8]>::len).collect();
        assert_eq!(
            got,
            doc_chunker(&gear_key, &data, min, avg, max),
            "params {min}/{avg}/{max}"
        );
    }
}

fn render(v: &[(String, String)]) -> String {
    v.iter().map(|(k, val)| format!("{k} = {val}\n")).collect()
}

/// safeguard: 164.312(a)(2)(iv)
#[test]
fn vectors_match_file_and_doc() {
    let text = render(&compute());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = dir.join("tests/vectors/vectors.txt");
    if std::env::var_os("LETHE_BLESS").is_some() {
        std::fs::write(&file, &text).unwrap();
    }
    let stored = std::fs::read_to_string(&file).unwrap();
    for (want, got) in stored.lines().zip(text.lines()) {
        assert_eq!(want, got);
    }
    assert_eq!(stored, text);
    let doc = std::fs::read_to_string(dir.join("../../docs/backup-format.md")).unwrap();
    for line in text.lines() {
        assert!(
            doc.contains(line),
            "docs/backup-format.md lacks vector line: {line}"
        );
    }
}
