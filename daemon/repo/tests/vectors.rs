//! Test vectors: fixed keys and inputs -> exact bytes. The same lines appear in
//! `tests/vectors/vectors.txt` and in `docs/backup-format.md`.
//!
//! * Format version 2 (written): this test recomputes every vector, compares with both
//!   files, and re-derives the crypto independently from the documented formulas (raw
//!   HKDF, AES-256-GCM-SIV, AES-256-GCM, X25519 and BLAKE3 calls), so the document is
//!   checked, not just the code.
//! * Format version 1 (read only): the `v1_` lines are the bytes version 1 wrote; the
//!   test opens each with today's readers and checks what comes out.
//!
//! Regenerate after an intentional change with `LETHE_BLESS=1 cargo test --test vectors`.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, AES_256_GCM_SIV};
use aws_lc_rs::agreement::{agree, PrivateKey, UnparsedPublicKey, X25519};
use aws_lc_rs::hkdf::{KeyType, Salt, HKDF_SHA256};
use lethe_repo::chunker::{Chunker, ChunkerParams};
use lethe_repo::crypto::{Keyring, MasterKey};
use lethe_repo::index::{BlobFormat, IndexFile};
use lethe_repo::keys::{KdfParams, KeyFile, KeyFileV2};
use lethe_repo::manifest::Manifest;
use lethe_repo::object::padme;
use lethe_repo::pack::{open_blob, PackBuilder, PackReader};
use lethe_repo::recovery;
use lethe_repo::snapshot::{
    RepairRecord, RepoConfig, Snapshot, SnapshotExtensions, Source, Summary, TreeLayout,
};
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
const FAST: KdfParams = KdfParams {
    m_kib: 64,
    t: 1,
    p: 1,
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

/// AES-256-GCM-SIV decryption exactly as written in the document.
fn siv_open(key: &[u8; 32], nonce: [u8; 12], aad: &[u8], sealed: &[u8]) -> Vec<u8> {
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM_SIV, key).unwrap());
    let mut b = sealed.to_vec();
    let n = k
        .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut b)
        .unwrap()
        .len();
    b.truncate(n);
    b
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

/// A tree with one directory `srv` (the absolute layout of version 2) holding `sub`.
fn dir_tree(name: &[u8], sub: Id) -> Tree {
    Tree {
        nodes: vec![Node {
            name: name.to_vec(),
            kind: NodeKind::Dir { subtree: sub },
            mode: 0o755,
            uid: 0,
            gid: 0,
            user: Some("root".into()),
            group: Some("root".into()),
            size: 0,
            mtime: T,
            atime: T,
            ctime: T,
            dev: 2049,
            inode: 2,
            nlink: 2,
            xattrs: vec![],
        }],
    }
}

fn v1_vectors() -> Vec<(String, String)> {
    let text = include_str!("vectors/vectors.txt");
    text.lines()
        .filter_map(|l| l.split_once(" = "))
        .filter(|(k, _)| k.starts_with("v1_"))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Version-1 bytes, opened with today's readers.
fn check_v1(v: &[(String, String)]) {
    let get = |k: &str| {
        v.iter()
            .find(|(n, _)| n == k)
            .unwrap_or_else(|| panic!("{k} missing"))
            .1
            .clone()
    };
    let bytes = |k: &str| hex::decode(get(k)).unwrap();
    let keys = MasterKey::from_bytes(MASTER).derive().unwrap();
    let mut o = keys.opener();
    let blob_id = Id::from_hex(&get("v1_blob_id")).unwrap();
    assert_eq!(blob_id, keys.blob_id(BlobKind::Data, b"hello, lethe"));
    // The sealed blob and the zstd one.
    assert_eq!(
        o.open(ObjectType::DataBlob, &blob_id, &bytes("v1_sealed_blob"))
            .unwrap(),
        b"hello, lethe"
    );
    let rep = b"lethe ".repeat(64);
    let zb = bytes("v1_zstd_sealed_blob");
    assert_eq!(
        o.open(
            ObjectType::DataBlob,
            &keys.blob_id(BlobKind::Data, &rep),
            &zb
        )
        .unwrap(),
        rep
    );
    // The pack, read from its own header.
    let pack = bytes("v1_pack");
    let pid = Id::from_hex(&get("v1_pack_id")).unwrap();
    let r = PackReader::open(&keys, &mut o, &pid, &pack, true).unwrap();
    assert_eq!(r.entries().len(), 1);
    assert_eq!(r.entries()[0].format, BlobFormat::V1);
    assert_eq!(
        open_blob(
            &mut o,
            &keys,
            &r.entries()[0],
            r.sealed(&r.entries()[0]).unwrap()
        )
        .unwrap(),
        b"hello, lethe"
    );
    // The index file names that pack.
    let idx = IndexFile::open(&mut o, &bytes("v1_index_file")).unwrap();
    assert_eq!(idx.version, 1);
    assert_eq!(idx.entries().collect::<Vec<_>>(), r.entries());
    // The tree and the snapshot.
    let tree_plain = bytes("v1_tree_plaintext");
    assert_eq!(Tree::decode(&tree_plain).unwrap(), sample_tree(blob_id));
    let snap = Snapshot::open(&mut o, &bytes("v1_snapshot_file")).unwrap();
    assert_eq!(snap.layout, TreeLayout::Named);
    assert_eq!(snap.generation, 0);
    assert_eq!(
        snap.source,
        Source::Tree {
            root: keys.blob_id(BlobKind::Tree, &tree_plain),
            paths: vec![b"/srv/data".to_vec()],
        }
    );
    assert_eq!(
        Id::of_file(&bytes("v1_snapshot_file")).to_hex(),
        get("v1_snapshot_id")
    );
    // The key file and the recovery key give the master key.
    let kf = KeyFile::parse(&bytes("v1_key_file")).unwrap();
    assert_eq!(kf.version(), 1);
    assert_eq!(
        kf.unlock(b"correct horse battery staple")
            .unwrap()
            .first()
            .as_bytes(),
        &MASTER
    );
    assert_eq!(
        recovery::decode(&get("v1_recovery_key"))
            .unwrap()
            .as_bytes(),
        &MASTER
    );
}

fn compute() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, val: String| v.push((k.to_string(), val));
    let ring = Keyring::new(MasterKey::from_bytes(MASTER));
    let keys = ring.derive().unwrap();
    put("master_key", hex(&MASTER));

    // Derived keys, independently from the documented HKDF labels.
    let id_data = hkdf(b"lethe-repo-v1", &MASTER, "lethe/v1/blob-id/data");
    let gear_key = hkdf(b"lethe-repo-v1", &MASTER, "lethe/v1/chunker-gear");
    assert_eq!(&gear_key, keys.gear_key());
    let enc_root = hkdf(b"lethe-repo-v2", &MASTER, "lethe/v2/encryption-root");
    let blob_key = hkdf(b"lethe-repo-v2", &MASTER, "lethe/v2/blob-key");
    let pack_key = hkdf(b"lethe-repo-v2", &MASTER, "lethe/v2/pack-header-key");
    let trailer_key = hkdf(b"lethe-repo-v2", &MASTER, "lethe/v2/pack-trailer");
    put("id_key_data", hex(&id_data));
    put("gear_key", hex(&gear_key));
    put("enc_root", hex(&enc_root));
    put("blob_key", hex(&blob_key));
    put("pack_key", hex(&pack_key));
    put("trailer_key", hex(&trailer_key));
    let session_key = hkdf(&SESSION, &enc_root, "lethe/v2/session-key");
    put("session_id", hex(&SESSION));
    put("session_key", hex(&session_key));

    // Blob id = keyed BLAKE3.
    let plain = b"hello, lethe";
    let id = keys.blob_id(BlobKind::Data, plain);
    assert_eq!(id.0, *blake3::keyed_hash(&id_data, plain).as_bytes());
    put("blob_plaintext", hex(plain));
    put("blob_id", id.to_hex());

    // A pack holding that blob (level 0: stored raw) and "lethe " x 64 (zstd 3).
    let mut raw = keys.sealer(SESSION, 0).unwrap();
    let mut z = keys.sealer(SESSION, 3).unwrap();
    let rep = b"lethe ".repeat(64);
    let rep_id = keys.blob_id(BlobKind::Data, &rep);
    let mut b = PackBuilder::new(1 << 20);
    b.seal_and_add(&mut raw, BlobKind::Data, id, plain).unwrap();
    b.seal_and_add(&mut z, BlobKind::Data, rep_id, &rep)
        .unwrap();
    let pack = b.finish(&mut raw).unwrap();
    let e = &pack.entries;
    assert_eq!(padme(pack.bytes.len() as u64), pack.bytes.len() as u64);
    // Independently: blob = SIV(blob key, nonce = id[..12], aad = "LTHB" 02 kind comp 00
    // epoch raw_len id).
    let aad = |kind: u8, comp: u8, len: u32, bid: &Id| {
        let mut a = b"LTHB\x02".to_vec();
        a.extend_from_slice(&[kind, comp, 0]);
        a.extend_from_slice(&0u32.to_le_bytes());
        a.extend_from_slice(&len.to_le_bytes());
        a.extend_from_slice(&bid.0);
        a
    };
    let sealed_blob = &pack.bytes[..e[0].length as usize];
    assert_eq!(
        siv_open(
            &blob_key,
            id.0[..12].try_into().unwrap(),
            &aad(1, 0, 12, &id),
            sealed_blob
        ),
        plain
    );
    let zsealed = &pack.bytes[e[1].offset as usize..(e[1].offset + e[1].length) as usize];
    let zpayload = siv_open(
        &blob_key,
        rep_id.0[..12].try_into().unwrap(),
        &aad(1, 1, 384, &rep_id),
        zsealed,
    );
    assert_eq!(zstd::bulk::decompress(&zpayload, 384).unwrap(), rep);
    put("sealed_blob", hex(sealed_blob));
    put(
        "zstd_plaintext",
        format!("\"lethe \" x 64 ({} bytes)", rep.len()),
    );
    put("zstd_sealed_blob", hex(zsealed));
    // Independently: the trailer, then the header.
    let n = pack.bytes.len();
    let t = &pack.bytes[n - 24..];
    assert_eq!(&t[20..], b"LPK2");
    let mut mh = blake3::Hasher::new_keyed(&trailer_key);
    mh.update(b"lethe/v2/pack-trailer-mask");
    mh.update(&t[..12]);
    let mask = mh.finalize();
    let lens: Vec<u8> = t[12..20]
        .iter()
        .zip(mask.as_bytes())
        .map(|(a, b)| a ^ b)
        .collect();
    let hl = u32::from_le_bytes(lens[..4].try_into().unwrap()) as usize;
    assert_eq!(
        u32::from_le_bytes(lens[4..].try_into().unwrap()),
        0,
        "epoch"
    );
    let header = siv_open(
        &pack_key,
        t[..12].try_into().unwrap(),
        b"LTHP\x02\x00\x00\x00\x00",
        &pack.bytes[n - 24 - hl..n - 24],
    );
    assert_eq!(u32::from_le_bytes(header[..4].try_into().unwrap()), 2);
    assert_eq!(&header[10..42], &id.0);
    assert!(header[4 + 2 * 46..].iter().all(|b| *b == 0), "zero padding");
    put("pack", hex(&pack.bytes));
    put("pack_id", pack.id.to_hex());
    put("pack_header_plaintext", hex(&header[..4 + 2 * 46]));

    // Index file of that pack (generation 1), sealed by session counter 1 (0 was the
    // pack header).
    let idx_bytes = IndexFile::from_entries(e, 1).seal(&mut raw).unwrap();
    let idx_id = Id::of_file(&idx_bytes);
    // Independently: header 40 bytes, SIV(session key, counter nonce, aad = header ||
    // 32 zero bytes), zero padding to a Padmé length.
    assert_eq!(&idx_bytes[..8], b"LTHO\x02\x11\x00\x00");
    let mut iaad = idx_bytes[..40].to_vec();
    iaad.extend_from_slice(&[0; 32]);
    let mut nonce = [0u8; 12];
    nonce[..8].copy_from_slice(&idx_bytes[28..36]);
    let ip = siv_open(&session_key, nonce, &iaad, &idx_bytes[40..]);
    let plen = u32::from_le_bytes(idx_bytes[36..40].try_into().unwrap()) as usize;
    assert!(ip[plen..].iter().all(|b| *b == 0));
    assert_eq!(padme(idx_bytes.len() as u64), idx_bytes.len() as u64);
    put("index_file", hex(&idx_bytes));
    put("index_plaintext", hex(&ip[..plen]));

    // Trees: the file tree, below /srv/data in the absolute layout.
    let tree = sample_tree(id);
    let tree_plain = tree.encode().unwrap();
    let data_id = keys.blob_id(BlobKind::Tree, &tree_plain);
    put("tree_plaintext", hex(&tree_plain));
    put("tree_id", data_id.to_hex());
    let srv = dir_tree(b"data", data_id).encode().unwrap();
    let srv_id = keys.blob_id(BlobKind::Tree, &srv);
    let root = dir_tree(b"srv", srv_id).encode().unwrap();
    let root_id = keys.blob_id(BlobKind::Tree, &root);
    put("root_tree_plaintext", hex(&root));

    // Snapshot (counter 2) of /srv/data, generation 1, with a changed-file record.
    let snap = Snapshot {
        time: T,
        hostname: "lethe-01".into(),
        username: "root".into(),
        tags: vec!["daily".into()],
        parent: None,
        source: Source::Tree {
            root: root_id,
            paths: vec![b"/srv/data".to_vec()],
        },
        summary: Summary::default(),
        ext: SnapshotExtensions {
            changed_during_backup: vec![b"srv/data/app.log".to_vec()],
            repaired: Some(RepairRecord {
                original: Id([0x11; 32]),
                time: T,
                dropped: vec!["srv/data/x: blob missing".into()],
            }),
            unknown: vec![],
        },
        generation: 1,
        layout: TreeLayout::Absolute,
    };
    let snap_bytes = snap.seal(&mut raw).unwrap();
    assert_eq!(
        Snapshot::open(&mut keys.opener(), &snap_bytes).unwrap(),
        snap
    );
    let snap_id = Id::of_file(&snap_bytes);
    put("snapshot_file", hex(&snap_bytes));
    put("snapshot_id", snap_id.to_hex());
    put("snapshot_plaintext", hex(&snap.encode().unwrap()));

    // Config (counter 3) and the manifest of generation 2 (counter 4).
    let cfg = RepoConfig::new([0x22; 32], T);
    let cfg_bytes = cfg.seal(&mut raw).unwrap();
    assert_eq!(
        RepoConfig::open(&mut keys.opener(), &cfg_bytes).unwrap(),
        cfg
    );
    put("config_file", hex(&cfg_bytes));
    let mut m = Manifest::first(0, T);
    m.generation = 2;
    m.snapshots = vec![snap_id];
    m.index = vec![idx_id];
    m.obsolete_index = vec![Id([0x33; 32])];
    m.normalize();
    let m_bytes = m.seal(&mut raw).unwrap();
    assert_eq!(Manifest::open(&mut keys.opener(), 2, &m_bytes).unwrap(), m);
    // Independently: the binding is the generation (u64 LE) || "manifest" || 16 zeros.
    let mut maad = m_bytes[..40].to_vec();
    maad.extend_from_slice(&2u64.to_le_bytes());
    maad.extend_from_slice(b"manifest");
    maad.extend_from_slice(&[0; 16]);
    let mut mn = [0u8; 12];
    mn[..8].copy_from_slice(&m_bytes[28..36]);
    let mp = siv_open(&session_key, mn, &maad, &m_bytes[40..]);
    let mlen = u32::from_le_bytes(m_bytes[36..40].try_into().unwrap()) as usize;
    put("manifest_file", hex(&m_bytes));
    put("manifest_plaintext", hex(&mp[..mlen]));

    // Chunker: cut points of 8 MiB of BLAKE3-XOF("lethe chunker vector").
    let c = Chunker::new(ChunkerParams::default(), &gear_key).unwrap();
    let mut data = vec![0u8; 8 << 20];
    blake3::Hasher::new()
        .update(b"lethe chunker vector")
        .finalize_xof()
        .fill(&mut data);
    let lens: Vec<String> = c.chunks(&data).map(|c| c.len().to_string()).collect();
    put("chunk_lengths", lens.join(","));

    // Key files: a passphrase slot (Argon2id m=64 KiB t=1 p=1, tiny so the test is fast;
    // real files use 64 MiB, t=3) and the recovery slot.
    let kf = KeyFileV2::passphrase(
        &ring,
        b"correct horse battery staple",
        [0x5A; 32],
        FAST,
        "vector".into(),
        T,
        [0x01; 32],
        [0x02; 32],
    )
    .unwrap()
    .encode()
    .unwrap();
    let parsed = KeyFile::parse(&kf).unwrap();
    assert_eq!(
        parsed
            .unlock(b"correct horse battery staple")
            .unwrap()
            .first()
            .as_bytes(),
        &MASTER
    );
    // Independently: unwrap the private key with Argon2id + AES-GCM, then the keyring
    // with X25519 + HKDF + AES-GCM.
    let KeyFile::V2(k2) = &parsed else {
        panic!("version 2")
    };
    let hdr = postcard::to_allocvec(&k2.header).unwrap();
    let mut aad = b"LTHK\x02".to_vec();
    aad.extend_from_slice(&hdr);
    let mut kek = [0u8; 32];
    argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(64, 1, 1, Some(32)).unwrap(),
    )
    .hash_password_into(b"correct horse battery staple", &[0x5A; 32], &mut kek)
    .unwrap();
    let body = &kf[5 + hdr.len()..];
    // private: varint length 48, then 48 bytes.
    assert_eq!(body[0], 48);
    let gcm_open = |key: &[u8], aad: &[u8], sealed: &[u8]| {
        let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).unwrap());
        let mut b = sealed.to_vec();
        let n = k
            .open_in_place(
                Nonce::assume_unique_for_key([0; 12]),
                Aad::from(aad),
                &mut b,
            )
            .unwrap()
            .len();
        b.truncate(n);
        b
    };
    let private = gcm_open(&kek, &aad, &body[1..49]);
    assert_eq!(private, [0x01; 32]);
    let eph: [u8; 32] = body[49..81].try_into().unwrap();
    let ring_ct = &body[82..]; // varint length of the keyring ciphertext (< 128) first
    assert_eq!(usize::from(body[81]), ring_ct.len());
    let own = PrivateKey::from_private_key(&X25519, &private).unwrap();
    let mut salt = eph.to_vec();
    salt.extend_from_slice(&k2.header.public);
    let wrap = agree(&own, UnparsedPublicKey::new(&X25519, &eph), (), |shared| {
        Ok(hkdf(&salt, shared, "lethe/v2/keyring-wrap"))
    })
    .unwrap();
    let mut raad = aad.clone();
    raad.extend_from_slice(&eph);
    let keyring_plain = gcm_open(&wrap, &raad, ring_ct);
    assert_eq!(&keyring_plain[1..], &MASTER, "postcard Vec of one master");
    put("key_file", hex(&kf));
    put("key_file_id", Id::of_file(&kf).to_hex());
    let secret = MasterKey::from_bytes([0x99; 32]);
    let rf = KeyFileV2::recovery(&ring, &secret, "recovery".into(), T, [0x03; 32])
        .unwrap()
        .encode()
        .unwrap();
    let KeyFile::V2(rk) = KeyFile::parse(&rf).unwrap() else {
        panic!("version 2")
    };
    let text = recovery::encode(&secret);
    assert_eq!(
        rk.unlock_recovery(&recovery::decode(&text).unwrap())
            .unwrap()
            .first()
            .as_bytes(),
        &MASTER
    );
    assert_eq!(
        &rk.header.public,
        PrivateKey::from_private_key(
            &X25519,
            &hkdf(b"lethe-repo-v2", &[0x99; 32], "lethe/v2/recovery-slot")
        )
        .unwrap()
        .compute_public_key()
        .unwrap()
        .as_ref()
    );
    put("recovery_key_file", hex(&rf));
    put("recovery_key", text);
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
fn version_1_vectors_still_read() {
    check_v1(&v1_vectors());
}

#[test]
fn vectors_match_file_and_doc() {
    let v1 = v1_vectors();
    check_v1(&v1);
    let mut all = compute();
    all.extend(v1);
    let text = render(&all);
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
