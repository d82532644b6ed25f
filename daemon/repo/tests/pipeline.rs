//! End-to-end use of the public API the way the backup engine will use it: chunk a file and
//! a device image, dedup, seal, pack, index, tree, snapshot; then "restore" from nothing but
//! the stored bytes (a HashMap standing in for the backend) and compare BLAKE3 hashes.

use lethe_repo::chunker::{is_zero, Chunker, DEVICE_CHUNK_SIZE};
use lethe_repo::crypto::{Keyring, MasterKey, RepoKeys, Sealer};
use lethe_repo::index::{Index, IndexEntry, IndexFile};
use lethe_repo::keys::{KdfParams, KeyFile, KeyFileV2};
use lethe_repo::manifest::{manifest_path, parse_manifest_path, Manifest};
use lethe_repo::pack::{open_blob, parse_trailer, read_header, sealed_slice, PackBuilder};
use lethe_repo::recovery;
use lethe_repo::snapshot::{DeviceIdentity, RepoConfig, Snapshot, Source, Summary, TreeLayout};
use lethe_repo::tree::{Extent, ExtentList, Node, NodeKind, Timestamp, Tree};
use lethe_repo::{BlobKind, FileKind, Id};
use std::collections::HashMap;

type Store = HashMap<String, Vec<u8>>;

struct Writer<'a> {
    keys: &'a RepoKeys,
    sealer: Sealer,
    data: PackBuilder,
    meta: PackBuilder,
    index: Index,
    pending: Vec<IndexEntry>,
    store: &'a mut Store,
}

impl Writer<'_> {
    fn put_blob(&mut self, kind: BlobKind, plain: &[u8]) -> Id {
        let id = self.keys.blob_id(kind, plain);
        if self.index.contains(&id) || self.pending.iter().any(|e| e.id == id) {
            return id;
        }
        let b = if kind.is_metadata() {
            &mut self.meta
        } else {
            &mut self.data
        };
        b.seal_and_add(&mut self.sealer, kind, id, plain).unwrap();
        if b.is_full() {
            self.flush(kind.is_metadata());
        }
        id
    }

    fn flush(&mut self, meta: bool) {
        let b = if meta { &mut self.meta } else { &mut self.data };
        if b.is_empty() {
            return;
        }
        let full = std::mem::replace(b, PackBuilder::new(256 << 10));
        let p = full.finish(&mut self.sealer).unwrap();
        self.store.insert(FileKind::Pack.path(&p.id), p.bytes);
        self.pending.extend(p.entries);
    }

    fn finish(mut self) -> Id {
        self.flush(false);
        self.flush(true);
        let f = IndexFile::from_entries(&self.pending, 1)
            .seal(&mut self.sealer)
            .unwrap();
        let id = Id::of_file(&f);
        self.store.insert(FileKind::Index.path(&id), f);
        id
    }

    fn content(&mut self, chunks: Vec<&[u8]>) -> Vec<Extent> {
        chunks
            .into_iter()
            .map(|c| {
                if is_zero(c) {
                    Extent::Zero {
                        len: c.len() as u64,
                    }
                } else {
                    Extent::Data {
                        id: self.put_blob(BlobKind::Data, c),
                        len: c.len() as u32,
                    }
                }
            })
            .collect()
    }
}

fn pseudo(n: usize, seed: &str) -> Vec<u8> {
    let mut v = vec![0u8; n];
    blake3::Hasher::new()
        .update(seed.as_bytes())
        .finalize_xof()
        .fill(&mut v);
    v
}

fn read_blob(keys: &RepoKeys, store: &Store, index: &Index, id: &Id) -> Vec<u8> {
    let e = index.get(id).expect("indexed");
    let pack = &store[&FileKind::Pack.path(&e.pack)];
    open_blob(&mut keys.opener(), keys, e, sealed_slice(pack, e).unwrap()).unwrap()
}

fn read_extents(keys: &RepoKeys, store: &Store, index: &Index, ext: &[Extent]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in ext {
        match e {
            Extent::Data { id, .. } => out.extend(read_blob(keys, store, index, id)),
            Extent::Zero { len } => out.resize(out.len() + *len as usize, 0),
        }
    }
    out
}

/// safeguard: 164.312(c)(2), 164.310(d)(2)(iv)
#[test]
fn backup_and_restore_file_and_device() {
    let t = Timestamp {
        secs: 1_767_225_600,
        nanos: 0,
    };
    let ring = Keyring::new(MasterKey::from_bytes([0x33; 32]));
    let keys = ring.derive().unwrap();
    let mut store = Store::new();
    let kf = KeyFileV2::passphrase(
        &ring,
        b"pw",
        [1; 32],
        KdfParams {
            m_kib: 64,
            t: 1,
            p: 1,
        },
        "test".into(),
        t,
        [2; 32],
        [3; 32],
    )
    .unwrap()
    .encode()
    .unwrap();
    store.insert(FileKind::Key.path(&Id::of_file(&kf)), kf);
    let secret = MasterKey::from_bytes([0x44; 32]);
    let rf = KeyFileV2::recovery(&ring, &secret, "recovery".into(), t, [4; 32])
        .unwrap()
        .encode()
        .unwrap();
    store.insert(FileKind::Key.path(&Id::of_file(&rf)), rf);
    let cfg = RepoConfig::new([9; 32], t);
    let chunker = Chunker::new(
        lethe_repo::chunker::ChunkerParams {
            min_size: 16 << 10,
            avg_size: 64 << 10,
            max_size: 256 << 10,
        },
        keys.gear_key(),
    )
    .unwrap();

    // A 3 MiB file whose second half repeats its first half (dedup), plus a sparse device.
    let half = pseudo(1536 << 10, "file");
    let file = [half.clone(), half].concat();
    let mut device = pseudo(8 * DEVICE_CHUNK_SIZE as usize, "dev");
    device[2 << 20..5 << 20].fill(0);

    let mut w = Writer {
        keys: &keys,
        sealer: keys.sealer([2; 16], cfg.zstd_level).unwrap(),
        data: PackBuilder::new(256 << 10),
        meta: PackBuilder::new(256 << 10),
        index: Index::new(),
        pending: Vec::new(),
        store: &mut store,
    };
    let content = w.content(chunker.chunks(&file).collect());
    let stored_before = w.pending.len() + w.data.blob_count();
    let node = Node {
        name: b"big.bin".to_vec(),
        kind: NodeKind::File {
            content,
            blake3: *blake3::hash(&file).as_bytes(),
        },
        mode: 0o600,
        uid: 0,
        gid: 0,
        user: None,
        group: None,
        size: file.len() as u64,
        mtime: t,
        atime: t,
        ctime: t,
        dev: 1,
        inode: 2,
        nlink: 1,
        xattrs: vec![],
    };
    let root = w.put_blob(
        BlobKind::Tree,
        &Tree { nodes: vec![node] }.encode().unwrap(),
    );
    let dev_ext = w.content(device.chunks(DEVICE_CHUNK_SIZE as usize).collect());
    assert_eq!(
        dev_ext
            .iter()
            .filter(|e| matches!(e, Extent::Zero { .. }))
            .count(),
        3
    );
    let lists: Vec<Id> = ExtentList::split(&dev_ext)
        .iter()
        .map(|l| w.put_blob(BlobKind::ExtentList, &l.encode().unwrap()))
        .collect();
    let mut sealer = keys.sealer([3; 16], 3).unwrap();
    let index_file = w.finish();
    assert!(
        stored_before < 40,
        "second half deduplicated: {stored_before} blobs"
    );

    let mut snaps = Vec::new();
    for snap in [
        Snapshot {
            time: t,
            hostname: "h".into(),
            username: "u".into(),
            tags: vec![],
            parent: None,
            source: Source::Tree {
                root,
                paths: vec![b"/data".to_vec()],
            },
            summary: Summary::default(),
            ext: Default::default(),
            generation: 1,
            layout: TreeLayout::Absolute,
        },
        Snapshot {
            time: t,
            hostname: "h".into(),
            username: "u".into(),
            tags: vec!["pre-wipe".into()],
            parent: None,
            source: Source::Device {
                identity: DeviceIdentity {
                    path: "/dev/loop0".into(),
                    model: "Loop".into(),
                    serial: "0".into(),
                    wwn: None,
                    size_bytes: device.len() as u64,
                    logical_block_size: 512,
                },
                chunk_size: DEVICE_CHUNK_SIZE,
                extent_lists: lists.clone(),
                blake3: *blake3::hash(&device).as_bytes(),
                unreadable: vec![],
            },
            summary: Summary::default(),
            ext: Default::default(),
            generation: 1,
            layout: TreeLayout::Absolute,
        },
    ] {
        let b = snap.seal(&mut sealer).unwrap();
        snaps.push(Id::of_file(&b));
        store.insert(FileKind::Snapshot.path(&Id::of_file(&b)), b);
    }
    store.insert("config".into(), cfg.seal(&mut sealer).unwrap());
    // The manifest is written last and lists what is live.
    let mut m = Manifest::first(0, t);
    m.generation = 2;
    m.snapshots = snaps;
    m.index = vec![index_file];
    m.normalize();
    store.insert(manifest_path(2), m.seal(&mut sealer).unwrap());

    // ---- restore from the store alone, starting from the passphrase ----
    let kbytes = store
        .iter()
        .filter(|(k, _)| k.starts_with("keys/"))
        .map(|(_, v)| v.clone())
        .find(|v| !KeyFile::parse(v).unwrap().is_recovery())
        .unwrap();
    let ring2 = KeyFile::parse(&kbytes).unwrap().unlock(b"pw").unwrap();
    assert_eq!(ring2.first().as_bytes(), ring.first().as_bytes());
    // The recovery key opens the recovery slot, which gives the same keyring.
    let text = recovery::encode(&secret);
    let rbytes = store
        .iter()
        .filter(|(k, _)| k.starts_with("keys/"))
        .map(|(_, v)| KeyFile::parse(v).unwrap())
        .find(KeyFile::is_recovery)
        .unwrap();
    let KeyFile::V2(rslot) = rbytes else {
        panic!("version 2")
    };
    let ring3 = rslot
        .unlock_recovery(&recovery::decode(&text).unwrap())
        .unwrap();
    let keys = ring3.derive().unwrap();
    let mut opener = keys.opener();
    let (gen, mbytes) = store
        .iter()
        .find_map(|(k, v)| parse_manifest_path(k).map(|g| (g, v)))
        .unwrap();
    let m = Manifest::open(&mut opener, gen, mbytes).unwrap();
    assert_eq!(m.snapshots.len(), 2);
    assert_eq!(
        RepoConfig::open(&mut opener, &store["config"]).unwrap(),
        cfg
    );
    let mut index = Index::new();
    let mut rebuilt = Index::new();
    for (path, bytes) in &store {
        let (kind, id) = match FileKind::parse_path(path) {
            Ok(x) => x,
            Err(_) => continue,
        };
        id.verify_file("stored file", bytes).unwrap();
        match kind {
            FileKind::Index => index.extend(
                IndexFile::open(&mut opener, bytes)
                    .unwrap()
                    .entries()
                    .collect::<Vec<_>>(),
            ),
            FileKind::Pack => {
                // Rebuild the index from the pack trailer + header alone.
                let tr = parse_trailer(&keys, bytes).unwrap();
                let start = bytes.len() - tr.len() - tr.header_len() as usize;
                rebuilt.extend(
                    read_header(
                        &keys,
                        &mut opener,
                        &id,
                        bytes.len() as u64,
                        &tr,
                        &bytes[start..bytes.len() - tr.len()],
                    )
                    .unwrap(),
                );
            }
            _ => {}
        }
    }
    assert_eq!(index.len(), rebuilt.len());
    let mut restored_file = false;
    let mut restored_dev = false;
    for id in &m.snapshots {
        let bytes = &store[&FileKind::Snapshot.path(id)];
        match Snapshot::open(&mut opener, bytes).unwrap().source {
            Source::Tree { root, .. } => {
                let tree = Tree::decode(&read_blob(&keys, &store, &index, &root)).unwrap();
                let NodeKind::File { content, blake3: h } = &tree.nodes[0].kind else {
                    panic!("file")
                };
                let got = read_extents(&keys, &store, &index, content);
                assert_eq!(blake3::hash(&got).as_bytes(), h);
                assert_eq!(got, file);
                restored_file = true;
            }
            Source::Device {
                extent_lists,
                blake3: h,
                identity,
                ..
            } => {
                let mut ext = Vec::new();
                for l in &extent_lists {
                    ext.extend(
                        ExtentList::decode(&read_blob(&keys, &store, &index, l))
                            .unwrap()
                            .extents,
                    );
                }
                let got = read_extents(&keys, &store, &index, &ext);
                assert_eq!(got.len() as u64, identity.size_bytes);
                assert_eq!(blake3::hash(&got).as_bytes(), &h);
                restored_dev = true;
            }
            Source::Stream { .. } => unreachable!(),
        }
    }
    assert!(restored_file && restored_dev);
}
