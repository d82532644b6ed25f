//! The engine end to end on the local backend: init, backup of a tree with
//! every node type, dedup on a second run, restore byte-exact with metadata,
//! a stream and a sparse device image, check, forget/prune, drills, keys, and
//! damage (a corrupted pack, a truncated pack, a missing index, a missing pack)
//! named by `check` while unaffected files still restore.

mod common;

use common::{noise, under, Env, FAST};
use lethe_backup::archive::{backup_device, backup_paths, backup_stream, BackupOptions};
use lethe_backup::check::check;
use lethe_backup::drill::{drill, DrillRequest, Verdict};
use lethe_backup::prune::{forget, prune};
use lethe_backup::repo::Selector;
use lethe_backup::restore::{restore_image, restore_tree, FileSink, RestoreOptions};
use lethe_backup::walk::Filter;
use lethe_backup::{BackupError, Repository};
use lethe_repo::retention::{KeepN, Policy};
use lethe_repo::snapshot::DeviceIdentity;
use lethe_repo::FileKind;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn opts() -> BackupOptions {
    BackupOptions {
        filter: Filter::new(&[], &["*.skip".into()]).unwrap(),
        ..common::opts()
    }
}

fn drill_req(sample: usize, seed: u64, scratch: &Path) -> DrillRequest {
    DrillRequest {
        snapshot: Selector::Latest,
        sample,
        seed,
        scratch: scratch.to_path_buf(),
    }
}

fn ropts() -> RestoreOptions {
    RestoreOptions::default()
}

fn make_tree(root: &Path) {
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    std::fs::write(root.join("big.bin"), noise(1, 5 << 20)).unwrap();
    std::fs::write(root.join("text.txt"), "hello ".repeat(100_000)).unwrap();
    std::fs::write(root.join("sub/deeper/small"), b"x").unwrap();
    std::fs::write(root.join("empty"), b"").unwrap();
    std::fs::write(root.join("ignored.skip"), b"never stored").unwrap();
    let sparse = std::fs::File::create(root.join("sparse")).unwrap();
    sparse.set_len(3 << 20).unwrap();
    std::os::unix::fs::symlink("text.txt", root.join("link")).unwrap();
    std::fs::hard_link(root.join("text.txt"), root.join("sub/hard")).unwrap();
    nix::unistd::mkfifo(
        &root.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        root.join("sub/deeper/small"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
}

fn assert_same(a: &Path, b: &Path) {
    for e in std::fs::read_dir(a).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        let (pa, pb) = (a.join(&name), b.join(&name));
        let (ma, mb) = (
            std::fs::symlink_metadata(&pa).unwrap(),
            std::fs::symlink_metadata(&pb),
        );
        if name.to_string_lossy().ends_with(".skip") {
            assert!(mb.is_err(), "{} was excluded", pb.display());
            continue;
        }
        let mb = mb.unwrap_or_else(|e| panic!("{}: {e}", pb.display()));
        assert_eq!(ma.mode(), mb.mode(), "{}", pb.display());
        assert_eq!(ma.file_type(), mb.file_type(), "{}", pb.display());
        if ma.is_file() {
            assert_eq!(
                std::fs::read(&pa).unwrap(),
                std::fs::read(&pb).unwrap(),
                "{}",
                pb.display()
            );
            assert_eq!(ma.mtime(), mb.mtime(), "{}", pb.display());
        } else if ma.is_dir() {
            assert_same(&pa, &pb);
        } else if ma.file_type().is_symlink() {
            assert_eq!(
                std::fs::read_link(&pa).unwrap(),
                std::fs::read_link(&pb).unwrap()
            );
        }
    }
}

/// safeguard: 164.312(c)(2), 164.310(d)(2)(iv)
#[test]
fn tree_backup_dedup_restore_check_and_damage() {
    let env = Env::new();
    let src = env.dir.path().join("src");
    make_tree(&src);
    let (repo, recovery) = Repository::init(env.store(), b"secret", FAST, "test").unwrap();
    assert!(recovery.len() > 40);
    assert!(matches!(
        Repository::init(env.store(), b"x", FAST, "t"),
        Err(BackupError::AlreadyInitialized(_))
    ));
    let first = backup_paths(&repo, std::slice::from_ref(&src), &opts(), &()).unwrap();
    assert!(first.warnings.is_empty(), "{:?}", first.warnings);
    assert!(first.bytes_new >= 5 << 20);
    // Unchanged files are not read again; all content dedups (only directory
    // metadata, e.g. access times, makes new small tree blobs).
    let second = backup_paths(&repo, std::slice::from_ref(&src), &opts(), &()).unwrap();
    assert!(second.bytes_new < 16 << 10, "{second:?}");
    assert_eq!(
        second.bytes_read, 0,
        "unchanged files are skipped: {second:?}"
    );
    // A changed file is read again; only its new chunks are stored.
    std::fs::write(src.join("sub/deeper/small"), b"changed").unwrap();
    let third = backup_paths(&repo, std::slice::from_ref(&src), &opts(), &()).unwrap();
    assert!(
        third.bytes_new > 0 && third.bytes_new < 1 << 20,
        "{third:?}"
    );

    // Wrong passphrase: clear error, nothing written.
    let before: Vec<_> = env.store().list("").unwrap();
    assert!(matches!(
        Repository::open(env.store(), b"nope"),
        Err(BackupError::WrongPassphrase)
    ));
    assert_eq!(env.store().list("").unwrap(), before);
    let repo = Repository::open(env.store(), b"secret").unwrap();
    let recovered = Repository::open_with_recovery(env.store(), &recovery).unwrap();
    assert_eq!(recovered.config, repo.config);

    let (_, snap) = repo.find_snapshot("latest").unwrap();
    let out = env.dir.path().join("out");
    let rep = restore_tree(&repo, &snap, None, &out, &ropts()).unwrap();
    assert_eq!(rep.files, 5, "{rep:?}");
    assert_same(&src, &under(&out, &src));
    let a = std::fs::metadata(under(&out, &src).join("text.txt")).unwrap();
    let b = std::fs::metadata(under(&out, &src).join("sub/hard")).unwrap();
    assert_eq!(a.ino(), b.ino(), "hard link restored as a link");
    // A sub-path.
    let out2 = env.dir.path().join("out2");
    restore_tree(
        &repo,
        &snap,
        Some(&format!("{}/sub/deeper", src.display())),
        &out2,
        &ropts(),
    )
    .unwrap();
    assert_eq!(
        std::fs::read(under(&out2, &src).join("sub/deeper/small")).unwrap(),
        b"changed"
    );

    let c = check(&repo, 1_000_000, 1).unwrap();
    assert!(c.ok(), "{c:?}");
    let d = drill(&repo, &drill_req(4, 7, env.dir.path())).unwrap();
    assert_eq!(d.result, Verdict::Pass, "{d:?}");
    assert!(d.items > 0 && d.bytes > 0);

    // Damage: flip a byte in the biggest pack.
    let packs = repo.list_files(FileKind::Pack).unwrap();
    let (big, _) = *packs.iter().max_by_key(|(_, s)| *s).unwrap();
    let p = env.repo_path().join(FileKind::Pack.path(&big));
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[1000] ^= 0x40;
    std::fs::write(&p, &bytes).unwrap();
    let c = check(&repo, 1_000_000, 1).unwrap();
    assert!(
        !c.ok() && c.errors.iter().any(|e| e.contains(&big.to_hex())),
        "{c:?}"
    );
    // Files whose blobs live elsewhere still restore.
    let out3 = env.dir.path().join("out3");
    let text = format!("{}/text.txt", src.display());
    restore_tree(&repo, &snap, Some(&text), &out3, &ropts()).unwrap();
    assert_eq!(
        std::fs::read(under(&out3, &src).join("text.txt")).unwrap(),
        std::fs::read(src.join("text.txt")).unwrap()
    );
    let big = format!("{}/big.bin", src.display());
    let bad = restore_tree(&repo, &snap, Some(&big), &out3, &ropts()).unwrap();
    assert!(
        bad.failed.iter().any(|f| f.contains("big.bin"))
            && !under(&out3, &src).join("big.bin").exists(),
        "damaged content is not restored silently, and no partial file is left: {bad:?}"
    );
    assert_eq!(bad.outcome, lethe_backup::Outcome::Failed);
    // A drill on damaged data fails loudly.
    let d = drill(&repo, &drill_req(100, 7, env.dir.path())).unwrap();
    assert_eq!(d.result, Verdict::Fail, "{d:?}");
    // Truncated pack: named by the structure check alone.
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let c = check(&repo, 0, 1).unwrap();
    assert!(c.errors.iter().any(|e| e.contains("truncated")), "{c:?}");
    // Missing pack.
    std::fs::remove_file(&p).unwrap();
    let c = check(&repo, 0, 1).unwrap();
    assert!(c.errors.iter().any(|e| e.contains("missing")), "{c:?}");
    // Missing index.
    for (id, _) in repo.list_files(FileKind::Index).unwrap() {
        std::fs::remove_file(env.repo_path().join(FileKind::Index.path(&id))).unwrap();
    }
    let c = check(&repo, 0, 1).unwrap();
    assert!(
        c.errors.iter().any(|e| e.contains("not in any index")),
        "{c:?}"
    );
}

/// safeguard: 164.310(d)(2)(iv)
#[test]
fn stream_and_sparse_device_image_round_trip() {
    let env = Env::new();
    let (repo, _) = Repository::init(env.store(), b"pw", FAST, "t").unwrap();
    let data = noise(9, 3 << 20);
    let r = backup_stream(&repo, &mut &data[..], "dump.sql", &opts(), &()).unwrap();
    assert_eq!(r.bytes_total, data.len() as u64);
    let (_, snap) = repo.find_snapshot(&r.snapshot[..10]).unwrap();
    let out = env.dir.path().join("dump.out");
    restore_image(&repo, &snap, &mut FileSink::create(&out).unwrap(), "out").unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), data);

    // A "device": 8 MiB with data only in two places.
    let img = env.dir.path().join("disk.img");
    let mut d = vec![0u8; 8 << 20];
    d[100..5000].copy_from_slice(&noise(3, 4900));
    d[(7 << 20)..(7 << 20) + 4096].copy_from_slice(&noise(4, 4096));
    std::fs::write(&img, &d).unwrap();
    let id = DeviceIdentity {
        path: img.display().to_string(),
        model: "TEST".into(),
        serial: "S1".into(),
        wwn: None,
        size_bytes: d.len() as u64,
        logical_block_size: 512,
    };
    let r = backup_device(&repo, &img, id, &opts(), &()).unwrap();
    assert!(r.bytes_stored < 1 << 20, "zero runs are sparse: {r:?}");
    let (_, snap) = repo.find_snapshot(&r.snapshot).unwrap();
    let out = env.dir.path().join("disk.out");
    restore_image(&repo, &snap, &mut FileSink::create(&out).unwrap(), "out").unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), d);
    let dr = drill(&repo, &drill_req(10, 1, env.dir.path())).unwrap();
    assert_eq!(dr.result, Verdict::Pass, "{dr:?}");
    assert!(check(&repo, 1_000_000, 2).unwrap().ok());
}

/// safeguard: 164.310(d)(2)(iv)
#[test]
fn forget_and_prune_keep_what_retention_keeps() {
    let env = Env::new();
    let (repo, _) = Repository::init(env.store(), b"pw", FAST, "t").unwrap();
    let mut ids = Vec::new();
    for i in 0..4u64 {
        let data = noise(100 + i, 2 << 20);
        ids.push(
            backup_stream(&repo, &mut &data[..], "s", &opts(), &())
                .unwrap()
                .snapshot,
        );
    }
    let policy = Policy {
        last: Some(KeepN::Count(2)),
        ..Policy::default()
    };
    let dec = forget(&repo, &policy, false).unwrap().decisions;
    assert_eq!(dec.iter().filter(|d| d.keep).count(), 2);
    let before: u64 = repo
        .list_files(FileKind::Pack)
        .unwrap()
        .iter()
        .map(|(_, s)| s)
        .sum();
    let rep = prune(&repo, 50_000).unwrap();
    assert!(rep.packs_deleted > 0, "{rep:?}");
    let after: u64 = repo
        .list_files(FileKind::Pack)
        .unwrap()
        .iter()
        .map(|(_, s)| s)
        .sum();
    assert!(after < before);
    let c = check(&repo, 1_000_000, 3).unwrap();
    assert!(c.ok() && c.warnings.is_empty(), "{c:?}");
    for d in &dec {
        let sid = d.id.clone();
        assert!(ids.contains(&sid));
        if d.keep {
            let (_, snap) = repo.find_snapshot(&sid).unwrap();
            let out = env.dir.path().join(format!("o{sid}"));
            restore_image(&repo, &snap, &mut FileSink::create(&out).unwrap(), "out").unwrap();
        } else {
            assert!(repo.find_snapshot(&sid).is_err());
        }
    }
    // An empty policy is refused, not "forget everything".
    assert!(forget(&repo, &Policy::default(), false).is_err());
}

/// safeguard: 164.312(a)(2)(iv)
#[test]
fn keys_add_remove_passwd() {
    let env = Env::new();
    let (mut repo, _) = Repository::init(env.store(), b"one", FAST, "t").unwrap();
    let second = repo.key_add(b"two", "second").unwrap();
    assert!(Repository::open(env.store(), b"two").is_ok());
    assert!(
        repo.key_remove(&repo.key_id.clone()).is_err(),
        "not the key in use"
    );
    repo.key_remove(&second).unwrap();
    assert!(matches!(
        Repository::open(env.store(), b"two"),
        Err(BackupError::WrongPassphrase)
    ));
    repo.key_passwd(b"one", b"three", FAST).unwrap();
    assert!(Repository::open(env.store(), b"one").is_err());
    assert!(Repository::open(env.store(), b"three").is_ok());
}

#[test]
fn the_audit_checkpoint_goes_into_the_manifest() {
    let env = Env::new();
    let (repo, _) = Repository::init(env.store(), b"pw", FAST, "t").unwrap();
    let repo = repo.with_audit_checkpoint(Some("audit-log checkpoint 42 abcdef".into()));
    let data = noise(11, 1 << 16);
    backup_stream(&repo, &mut &data[..], "dump.sql", &opts(), &()).unwrap();
    let st = Repository::open(env.store(), b"pw")
        .unwrap()
        .state()
        .unwrap();
    let m = st.manifest.expect("a version-2 repository has a manifest");
    assert_eq!(
        m.audit_checkpoint.as_deref(),
        Some("audit-log checkpoint 42 abcdef")
    );
    assert_eq!(m.snapshots.len(), 1);
}
