//! Restore never writes outside its target. A property test builds random
//! trees of files, directories and symlinks (absolute, relative, `..`, chains)
//! as the backed-up source and as entries planted in the target beforehand,
//! restores two snapshots into the same target, and checks that a sentinel
//! tree outside the target is unchanged (every entry's type, mode, size,
//! mtime and content hashed before and after) and that every file the
//! restore reports as restored has its backed-up content. Hand-made
//! snapshots with `..` and `/` in stored names are refused.

mod common;

use common::*;
use lethe_backup::archive::backup_paths;
use lethe_backup::confined::Existing;
use lethe_backup::restore::{restore_tree, RestoreOptions};
use lethe_backup::writer::{session, Cancel, WriteStats};
use lethe_backup::Repository;
use lethe_repo::snapshot::{Snapshot, SnapshotExtensions, Source, Summary};
use lethe_repo::tree::{Node, NodeKind, Timestamp, Tree};
use lethe_repo::{BlobKind, FileKind};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
enum Kind {
    File(u8),
    Dir,
    /// Index into the symlink targets (resolved against the test's dirs).
    Link(usize),
}

const NAMES: [&str; 4] = ["a", "b", "sub", "x"];

fn arb_entries() -> impl Strategy<Value = Vec<(Vec<usize>, Kind)>> {
    let kind = prop_oneof![
        any::<u8>().prop_map(Kind::File),
        Just(Kind::Dir),
        (0usize..9).prop_map(Kind::Link),
    ];
    prop::collection::vec((prop::collection::vec(0usize..4, 1..4), kind), 1..14)
}

/// Symlink targets: absolute into the sentinel, relative escapes, chains.
fn link_target(i: usize, outside: &Path) -> PathBuf {
    match i {
        0 => outside.to_path_buf(),
        1 => outside.join("inner"),
        2 => outside.join("file"),
        3 => PathBuf::from("../../../../../../../../.."),
        4 => PathBuf::from("../outside"),
        5 => PathBuf::from("a"), // a chain through a sibling
        6 => PathBuf::from("sub/../../outside/file"),
        7 => PathBuf::from("/"),
        _ => PathBuf::from("x"),
    }
}

/// Create the entries under `root`; entries whose parent is not a directory are skipped.
fn build(root: &Path, entries: &[(Vec<usize>, Kind)], outside: &Path) {
    std::fs::create_dir_all(root).unwrap();
    for (path, kind) in entries {
        let rel: PathBuf = path.iter().map(|&i| NAMES[i]).collect();
        let p = root.join(&rel);
        let parent_is_dir = p
            .parent()
            .and_then(|d| std::fs::symlink_metadata(d).ok())
            .is_some_and(|m| m.is_dir());
        if !parent_is_dir || std::fs::symlink_metadata(&p).is_ok() {
            continue;
        }
        match kind {
            Kind::File(seed) => std::fs::write(&p, noise(u64::from(*seed), 300)).unwrap(),
            Kind::Dir => std::fs::create_dir(&p).unwrap(),
            Kind::Link(i) => std::os::unix::fs::symlink(link_target(*i, outside), &p).unwrap(),
        }
    }
}

/// Everything observable about a tree, without following symlinks.
fn fingerprint(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    fn walk(base: &Path, p: &Path, out: &mut BTreeMap<String, String>) {
        let m = std::fs::symlink_metadata(p).unwrap();
        let rel = p.strip_prefix(base).unwrap().display().to_string();
        let what = if m.file_type().is_symlink() {
            format!("link {}", std::fs::read_link(p).unwrap().display())
        } else if m.is_dir() {
            let mut names: Vec<_> = std::fs::read_dir(p)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            names.sort();
            for n in &names {
                walk(base, n, out);
            }
            "dir".to_string()
        } else {
            format!("file {}", blake3::hash(&std::fs::read(p).unwrap()))
        };
        out.insert(
            rel,
            format!(
                "{what} mode {:o} size {} mtime {}",
                m.mode(),
                m.len(),
                m.mtime()
            ),
        );
    }
    walk(root, root, &mut out);
    out
}

/// Regular files under `src` (not through symlinks), relative.
fn files(src: &Path) -> Vec<PathBuf> {
    fingerprint(src)
        .into_iter()
        .filter(|(_, v)| v.starts_with("file"))
        .map(|(k, _)| PathBuf::from(k))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// safeguard: rule:restore-confinement
    #[test]
    fn restore_never_writes_outside_its_target(
        snap1 in arb_entries(),
        snap2 in arb_entries(),
        planted in arb_entries(),
        refuse in any::<bool>(),
        src_is_link in any::<bool>(),
    ) {
        let env = Env::new();
        let repo = env.init();
        let t = env.dir.path();
        let outside = t.join("outside");
        std::fs::create_dir_all(outside.join("inner")).unwrap();
        std::fs::write(outside.join("file"), b"sentinel").unwrap();
        std::fs::write(outside.join("inner/deep"), b"deep sentinel").unwrap();
        // Two snapshots of the same source path with different contents.
        let src = t.join("work/src");
        build(&src, &snap1, &outside);
        let r1 = backup_paths(&repo, std::slice::from_ref(&src), &opts(), &()).unwrap();
        let files1 = files(&src);
        let copy1 = t.join("copy1");
        for f in &files1 {
            std::fs::create_dir_all(copy1.join(f).parent().unwrap()).unwrap();
            std::fs::copy(src.join(f), copy1.join(f)).unwrap();
        }
        std::fs::remove_dir_all(&src).unwrap();
        build(&src, &snap2, &outside);
        let r2 = backup_paths(&repo, std::slice::from_ref(&src), &opts(), &()).unwrap();
        // The target already holds planted entries (the restore root is
        // `target/<absolute path of src>`).
        let target = t.join("work/target");
        let root = under(&target, &src);
        if src_is_link {
            // The restore root's first component is a symlink out of the target.
            std::fs::create_dir_all(&target).unwrap();
            let first = src.components().nth(1).unwrap();
            std::os::unix::fs::symlink(&outside, target.join(first)).unwrap();
        } else {
            build(&root, &planted, &outside);
        }
        std::os::unix::fs::symlink(&outside, target.join("escape")).unwrap();
        let before = fingerprint(&outside);
        let ro = RestoreOptions {
            existing: if refuse { Existing::Refuse } else { Existing::Replace },
            ..RestoreOptions::default()
        };
        for id in [&r2.snapshot, &r1.snapshot] {
            let (_, snap) = repo.find_snapshot(id).unwrap();
            restore_tree(&repo, &snap, None, &target, &ro).unwrap();
        }
        prop_assert_eq!(&fingerprint(&outside), &before, "the sentinel changed");
        // The last restore (snapshot 1): every file it did not refuse or fail is exact.
        let (_, snap) = repo.find_snapshot(&r1.snapshot).unwrap();
        let rep = restore_tree(&repo, &snap, None, &target, &ro).unwrap();
        prop_assert_eq!(&fingerprint(&outside), &before, "the sentinel changed");
        for f in &files1 {
            let shown = root.join(f).display().to_string();
            let skipped = rep.refused.iter().chain(&rep.failed).any(|l| {
                // The file or one of its parent directories was not restored.
                let at = l.split(": ").next().unwrap_or_default();
                let at = at.trim_end_matches('/');
                shown == at || shown.starts_with(&format!("{at}/"))
            });
            if !skipped {
                let got = std::fs::read(root.join(f));
                prop_assert!(
                    got.as_ref().ok() == Some(&std::fs::read(copy1.join(f)).unwrap()),
                    "{} not restored: {:?}", shown, rep
                );
            }
        }
        if !refuse {
            prop_assert!(rep.failed.is_empty(), "{:?}", rep);
        }
    }
}

/// safeguard: rule:restore-confinement
#[test]
fn stored_names_with_dot_dot_or_slash_are_refused() {
    let env = Env::new();
    let repo: Repository = env.init();
    let t = env.dir.path();
    let outside = t.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let node = |name: &[u8], kind: NodeKind, size: u64| Node {
        name: name.to_vec(),
        kind,
        mode: 0o644,
        uid: 0,
        gid: 0,
        user: None,
        group: None,
        size,
        mtime: Timestamp::default(),
        atime: Timestamp::default(),
        ctime: Timestamp::default(),
        dev: 0,
        inode: 0,
        nlink: 1,
        xattrs: vec![],
    };
    // Hand-encoded trees (Tree::encode would refuse them): `..`, a name with
    // a slash, and an absolute name, each holding a file or symlink.
    let evil = [&b".."[..], b"../outside", b"/tmp", b"."];
    let lock =
        lethe_backup::lock::Lock::acquire(&repo, lethe_backup::lock::LockKind::Shared).unwrap();
    let li = repo.load_index().unwrap();
    let stats = std::sync::Arc::new(WriteStats::default());
    let generation = repo.state().unwrap().generation();
    let out = session(
        &repo,
        &lock,
        &li.index,
        generation,
        1,
        stats,
        &Cancel::default(),
        |sink| {
            let data = sink.add(BlobKind::Data, b"pwned".to_vec())?;
            let file = NodeKind::File {
                content: vec![lethe_repo::tree::Extent::Data { id: data, len: 5 }],
                blake3: *blake3::hash(b"pwned").as_bytes(),
            };
            let mut roots = Vec::new();
            for name in evil {
                let inner = Tree {
                    nodes: vec![node(b"file", file.clone(), 5)],
                };
                let inner_id = sink.add(
                    BlobKind::Tree,
                    lethe_repo::codec::encode("tree", &inner).unwrap(),
                )?;
                let top = Tree {
                    nodes: vec![
                        node(name, NodeKind::Dir { subtree: inner_id }, 0),
                        node(b"ok", file.clone(), 5),
                    ],
                };
                roots.push(sink.add(
                    BlobKind::Tree,
                    lethe_repo::codec::encode("tree", &top).unwrap(),
                )?);
            }
            Ok(roots)
        },
    )
    .unwrap();
    repo.commit(
        &lock,
        &lethe_backup::fresh::Change {
            add_index: out.index_files.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    drop(lock);
    let target = t.join("target");
    let mut last = None;
    for root in out.value {
        let snap = Snapshot {
            time: Timestamp::default(),
            hostname: "evil".into(),
            username: "evil".into(),
            tags: vec![],
            parent: None,
            source: Source::Tree {
                root,
                paths: vec![b"/x".to_vec()],
            },
            summary: Summary::default(),
            ext: SnapshotExtensions::default(),
            generation,
            layout: lethe_repo::snapshot::TreeLayout::Absolute,
        };
        let bytes = snap.seal(&mut repo.sealer().unwrap()).unwrap();
        repo.write_file(FileKind::Snapshot, bytes).unwrap();
        let rep = restore_tree(&repo, &snap, None, &target, &RestoreOptions::default());
        // Either the tree is refused as damaged (names are validated on decode)
        // or the entry is refused by the confined writer; never written outside.
        match rep {
            Ok(r) => assert_eq!(r.outcome, lethe_backup::Outcome::Failed, "{r:?}"),
            Err(e) => assert!(e.to_string().contains("tree"), "{e}"),
        }
        assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
        assert!(!t.join("tmp/file").exists() && !t.join("file").exists());
        last = Some(snap);
    }
    // A sub-path with `..` finds nothing.
    let snap = last.unwrap();
    assert!(restore_tree(
        &repo,
        &snap,
        Some("../outside"),
        &target,
        &RestoreOptions::default()
    )
    .is_err());
}
