//! An open repository: storage, unlocked keys, config, and the readers every
//! command shares (index, snapshots, blobs). Write order is packs → index →
//! snapshot, so a reader that finds a snapshot finds everything it names.

use crate::lock::LockTiming;
use crate::store::Store;
use crate::BackupError;
use lethe_backend::WriteOptions;
use lethe_repo::crypto::{MasterKey, Opener, RepoKeys, Sealer};
use lethe_repo::ids::CONFIG_PATH;
use lethe_repo::index::{Index, IndexEntry, IndexFile};
use lethe_repo::keys::{self, KdfParams, KeyFile};
use lethe_repo::pack;
use lethe_repo::snapshot::{RepoConfig, Snapshot};
use lethe_repo::tree::Timestamp;
use lethe_repo::{recovery, BlobKind, FileKind, Id, RepoError};
use std::collections::{BTreeMap, BTreeSet};

/// Random bytes from the OS.
pub fn random<const N: usize>() -> Result<[u8; N], BackupError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| BackupError::Random(e.to_string()))?;
    Ok(b)
}

/// Now, for object timestamps.
pub fn now() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        secs: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: d.subsec_nanos(),
    }
}

/// An unlocked repository.
pub struct Repository {
    /// Storage.
    pub store: Store,
    /// Parameters fixed at `init`.
    pub config: RepoConfig,
    keys: RepoKeys,
    master: MasterKey,
    /// The key file that was unlocked.
    pub key_id: Id,
    /// Options for data writes (Object Lock retention).
    pub write_opts: WriteOptions,
    /// Lock refresh and stale times.
    pub lock_timing: LockTiming,
}

/// A stored object that could not be read or failed authentication: skipped
/// and named, never fatal for the rest of the repository.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Damaged {
    /// What it is: `snapshot <id>`, `index <id>`, `pack <id>`.
    pub object: String,
    /// Why it is unusable.
    pub error: String,
}

/// The snapshots that could be read, and the damaged ones.
#[derive(Debug, Clone, Default)]
pub struct SnapshotList {
    /// Readable snapshots, oldest first.
    pub ok: Vec<(Id, Snapshot)>,
    /// Snapshot files that are damaged.
    pub damaged: Vec<Damaged>,
}

/// The index as loaded for reading or writing.
#[derive(Debug, Default)]
pub struct LoadedIndex {
    /// Blob lookup.
    pub index: Index,
    /// Current (not superseded, readable) index files.
    pub files: Vec<Id>,
    /// Index files that are damaged (skipped).
    pub damaged: Vec<Damaged>,
    /// Packs no readable index names whose own headers were read instead
    /// (only when an index file is damaged).
    pub recovered_packs: Vec<Id>,
    /// Packs whose headers could not be read either.
    pub damaged_packs: Vec<Damaged>,
    /// Index entries whose pack is missing or too short.
    pub unavailable: usize,
    /// Packs on storage, with their sizes.
    pub packs: BTreeMap<Id, u64>,
}

/// The index files as read.
#[derive(Debug, Clone, Default)]
pub struct IndexEntries {
    /// Entries of the current index files (duplicate locations included).
    pub entries: Vec<IndexEntry>,
    /// Current (readable, not superseded) index files.
    pub current: Vec<Id>,
    /// Readable index files a current one supersedes (left by an interrupted prune).
    pub superseded: Vec<Id>,
    /// Damaged index files that no readable file supersedes.
    pub damaged: Vec<Damaged>,
}

impl IndexEntries {
    /// Every readable index file: what a new complete index must supersede.
    /// (Superseding only the current ones would let a later deletion of a
    /// current file bring superseded files back to life.)
    pub fn all_files(&self) -> Vec<Id> {
        let mut v = self.current.clone();
        v.extend(self.superseded.iter().copied());
        v
    }
}

/// Errors that say "this object is damaged" (as opposed to "storage failed").
fn damage(e: &BackupError) -> bool {
    matches!(e, BackupError::Corrupt { .. } | BackupError::Repo(_))
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("store", &self.store.describe())
            .field("key_id", &self.key_id)
            .finish()
    }
}

impl Repository {
    /// Create a repository; returns it and the printable recovery key.
    /// Refuses when `config` already exists (nothing is written then).
    pub fn init(
        store: Store,
        passphrase: &[u8],
        kdf: KdfParams,
        label: &str,
    ) -> Result<(Repository, String), BackupError> {
        if store.stat(CONFIG_PATH).is_ok() {
            return Err(BackupError::AlreadyInitialized(store.describe()));
        }
        let master = MasterKey::from_bytes(random()?);
        let keys = master.derive()?;
        let config = RepoConfig::new(random()?, now());
        let mut sealer = keys.sealer(random()?, config.zstd_level)?;
        let sealed = config.seal(&mut sealer)?;
        let (key_id, key_bytes) =
            keys::key_add(&master, passphrase, random()?, kdf, label.into(), now())?;
        // The key first: a config without a key would be an unusable repository.
        store.write(
            &FileKind::Key.path(&key_id),
            key_bytes,
            &WriteOptions::default(),
        )?;
        store.write(CONFIG_PATH, sealed, &WriteOptions::default())?;
        let recovery = recovery::encode(&master);
        Ok((
            Repository {
                store,
                config,
                keys,
                master,
                key_id,
                write_opts: WriteOptions::default(),
                lock_timing: LockTiming::default(),
            },
            recovery,
        ))
    }

    /// Unlock with a passphrase: tries every key file. Writes nothing.
    pub fn open(store: Store, passphrase: &[u8]) -> Result<Repository, BackupError> {
        let key_files = store.list(FileKind::Key.dir())?;
        if key_files.is_empty() {
            return Err(BackupError::NotARepository(store.describe()));
        }
        for k in &key_files {
            let bytes = store.read(&k.name)?;
            let Ok(kf) = KeyFile::parse(&bytes) else {
                continue;
            };
            match kf.unlock(passphrase) {
                Ok(master) => return Self::with_master(store, master, Id::of_file(&bytes)),
                Err(RepoError::WrongPassphrase) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(BackupError::WrongPassphrase)
    }

    /// Unlock with the printable recovery key.
    pub fn open_with_recovery(store: Store, text: &str) -> Result<Repository, BackupError> {
        let master = recovery::decode(text)?;
        Self::with_master(store, master, Id::ZERO)
    }

    fn with_master(store: Store, master: MasterKey, key_id: Id) -> Result<Repository, BackupError> {
        let keys = master.derive()?;
        let bytes = store.read(CONFIG_PATH)?;
        let config = RepoConfig::open(&mut keys.opener(), &bytes)
            .map_err(|e| BackupError::corrupt("config", e))?;
        Ok(Repository {
            store,
            config,
            keys,
            master,
            key_id,
            write_opts: WriteOptions::default(),
            lock_timing: LockTiming::default(),
        })
    }

    /// Derived keys.
    pub fn keys(&self) -> &RepoKeys {
        &self.keys
    }

    /// A fresh encryption session (random session id: unique nonces per session).
    pub fn sealer(&self) -> Result<Sealer, BackupError> {
        Ok(self.keys.sealer(random()?, self.config.zstd_level)?)
    }

    /// A decryption context.
    pub fn opener(&self) -> Opener {
        self.keys.opener()
    }

    /// Store a sealed file under its content address.
    pub fn write_file(&self, kind: FileKind, bytes: Vec<u8>) -> Result<Id, BackupError> {
        let id = Id::of_file(&bytes);
        self.store.write(&kind.path(&id), bytes, &self.write_opts)?;
        Ok(id)
    }

    /// Ids of every file of `kind`, with their sizes.
    pub fn list_files(&self, kind: FileKind) -> Result<Vec<(Id, u64)>, BackupError> {
        let mut out = Vec::new();
        for o in self.store.list(kind.dir())? {
            // Temp files and strays are not part of the repository.
            if let Ok((k, id)) = FileKind::parse_path(&o.name) {
                if k == kind {
                    out.push((id, o.size));
                }
            }
        }
        Ok(out)
    }

    /// Read and open one index file.
    fn index_file(&self, id: &Id, opener: &mut Opener) -> Result<IndexFile, BackupError> {
        let bytes = self.store.read(&FileKind::Index.path(id))?;
        id.verify_file("index", &bytes)
            .map_err(|e| BackupError::corrupt(format!("index {id}"), e))?;
        IndexFile::open(opener, &bytes).map_err(|e| BackupError::corrupt(format!("index {id}"), e))
    }

    /// Every entry of every current (not superseded) index file, including
    /// duplicate locations of a blob, the ids of the current and of the
    /// superseded files, and the index files that are damaged (skipped; a file
    /// vanished meanwhile is ignored).
    pub fn index_entries(&self) -> Result<IndexEntries, BackupError> {
        let mut files = Vec::new();
        let mut damaged = Vec::new();
        let mut superseded = BTreeSet::new();
        let mut opener = self.opener();
        for (id, _) in self.list_files(FileKind::Index)? {
            match self.index_file(&id, &mut opener) {
                Ok(f) => {
                    superseded.extend(f.supersedes.iter().copied());
                    files.push((id, f));
                }
                Err(BackupError::Backend(e)) if e.is_not_found() => {}
                Err(e) if damage(&e) => damaged.push(Damaged {
                    object: format!("index {id}"),
                    error: e.to_string(),
                }),
                Err(e) => return Err(e),
            }
        }
        // A damaged file that a readable one supersedes no longer matters.
        damaged.retain(|d| !superseded.iter().any(|s| d.object == format!("index {s}")));
        let mut out = IndexEntries {
            damaged,
            ..IndexEntries::default()
        };
        for (id, f) in files {
            if superseded.contains(&id) {
                out.superseded.push(id);
                continue;
            }
            out.entries.extend(f.entries());
            out.current.push(id);
        }
        Ok(out)
    }

    /// The index for reading. When an index file is damaged, the packs no
    /// readable index names are read from their own headers (section 7 of the
    /// format: packs are self-describing), so intact packs stay reachable.
    /// Where a blob has several locations, one in a stored pack wins.
    pub fn load_index(&self) -> Result<LoadedIndex, BackupError> {
        self.load(false)
    }

    /// The index a backup may deduplicate against: [`Repository::load_index`]
    /// without the entries whose pack is missing from storage or shorter than
    /// the entry. A blob whose pack was lost is then stored again instead of
    /// being referenced by a snapshot that could never be restored.
    pub fn dedup_index(&self) -> Result<LoadedIndex, BackupError> {
        self.load(true)
    }

    fn load(&self, only_available: bool) -> Result<LoadedIndex, BackupError> {
        let ie = self.index_entries()?;
        let (mut entries, files, damaged) = (ie.entries, ie.current, ie.damaged);
        let packs: BTreeMap<Id, u64> = self.list_files(FileKind::Pack)?.into_iter().collect();
        let mut out = LoadedIndex {
            files,
            damaged,
            ..LoadedIndex::default()
        };
        if !out.damaged.is_empty() {
            let known: BTreeSet<Id> = entries.iter().map(|e| e.pack).collect();
            for (pack, size) in &packs {
                if known.contains(pack) {
                    continue;
                }
                match self.pack_header(pack, *size) {
                    Ok(es) => {
                        entries.extend(es);
                        out.recovered_packs.push(*pack);
                    }
                    Err(e) if damage(&e) => out.damaged_packs.push(Damaged {
                        object: format!("pack {pack}"),
                        error: e.to_string(),
                    }),
                    Err(e) => return Err(e),
                }
            }
        }
        let (stored, lost): (Vec<IndexEntry>, Vec<IndexEntry>) =
            entries.into_iter().partition(|e| {
                packs
                    .get(&e.pack)
                    .is_some_and(|&size| u64::from(e.offset) + u64::from(e.length) <= size)
            });
        out.unavailable = lost.len();
        out.index.extend(stored);
        if !only_available {
            out.index.extend(lost);
        }
        out.packs = packs;
        Ok(out)
    }

    /// Read a pack's header (its last bytes) and return its entries.
    pub fn pack_header(&self, pack: &Id, size: u64) -> Result<Vec<IndexEntry>, BackupError> {
        let name = FileKind::Pack.path(pack);
        let corrupt = |e| BackupError::corrupt(format!("pack {pack}"), e);
        let tl = pack::TRAILER_LEN as u64;
        if size < tl {
            return Err(corrupt(RepoError::Truncated {
                what: "pack",
                need: pack::TRAILER_LEN,
                have: size as usize,
            }));
        }
        let tail = self.store.read_range(&name, size - tl, tl)?;
        let hl = u64::from(pack::parse_trailer(&tail).map_err(corrupt)?);
        let start = size.checked_sub(tl + hl).ok_or_else(|| {
            corrupt(RepoError::Truncated {
                what: "pack header",
                need: (tl + hl) as usize,
                have: size as usize,
            })
        })?;
        let sealed = self.store.read_range(&name, start, hl)?;
        pack::read_header(&mut self.opener(), pack, size, &sealed).map_err(corrupt)
    }

    /// Every snapshot that can be read, oldest first, and the damaged ones
    /// (named, skipped). Storage failures are still errors.
    pub fn snapshots(&self) -> Result<SnapshotList, BackupError> {
        let mut out = SnapshotList::default();
        let mut opener = self.opener();
        for (id, _) in self.list_files(FileKind::Snapshot)? {
            match self.snapshot(&id, &mut opener) {
                Ok(s) => out.ok.push((id, s)),
                Err(BackupError::Backend(e)) if e.is_not_found() => {}
                Err(e) if damage(&e) => out.damaged.push(Damaged {
                    object: format!("snapshot {id}"),
                    error: e.to_string(),
                }),
                Err(e) => return Err(e),
            }
        }
        out.ok.sort_by_key(|(id, s)| (s.time, *id));
        Ok(out)
    }

    /// Read, verify and open one snapshot file.
    pub fn snapshot(&self, id: &Id, opener: &mut Opener) -> Result<Snapshot, BackupError> {
        let bytes = self.store.read(&FileKind::Snapshot.path(id))?;
        id.verify_file("snapshot", &bytes)
            .map_err(|e| BackupError::corrupt(format!("snapshot {id}"), e))?;
        Snapshot::open(opener, &bytes)
            .map_err(|e| BackupError::corrupt(format!("snapshot {id}"), e))
    }

    /// Find a snapshot by id prefix, or `latest`. Damaged snapshots are
    /// skipped; naming one explicitly says it is damaged.
    pub fn find_snapshot(&self, which: &str) -> Result<(Id, Snapshot), BackupError> {
        self.select(&Selector::parse(which))
    }

    /// The snapshot `sel` names.
    pub fn select(&self, sel: &Selector) -> Result<(Id, Snapshot), BackupError> {
        let all = self.snapshots()?;
        let found = match sel {
            Selector::Latest => all.ok.into_iter().last(),
            Selector::LatestOf(m) => all.ok.into_iter().rev().find(|(_, s)| m.matches(s)),
            Selector::Prefix(p) => {
                let m: Vec<_> = all
                    .ok
                    .into_iter()
                    .filter(|(id, _)| id.to_hex().starts_with(p.as_str()))
                    .collect();
                let bad: Vec<_> = all
                    .damaged
                    .iter()
                    .filter(|d| {
                        d.object
                            .strip_prefix("snapshot ")
                            .is_some_and(|h| h.starts_with(p.as_str()))
                    })
                    .collect();
                match (m.len(), bad.len()) {
                    (1, 0) => m.into_iter().next(),
                    (0, 0) => return Err(BackupError::NotFound(format!("no snapshot {p}"))),
                    (0, 1) => {
                        return Err(BackupError::NotFound(format!(
                            "{} is damaged: {}",
                            bad[0].object, bad[0].error
                        )))
                    }
                    (a, b) => {
                        return Err(BackupError::NotFound(format!(
                            "{p} is ambiguous ({} snapshots)",
                            a + b
                        )))
                    }
                }
            }
        };
        found.ok_or_else(|| match sel {
            Selector::LatestOf(m) => {
                BackupError::NotFound(format!("no readable snapshot of {}", m.describe()))
            }
            _ => BackupError::NotFound("the repository has no readable snapshots".into()),
        })
    }

    /// Read, decrypt and authenticate one blob.
    pub fn read_blob(&self, e: &IndexEntry, opener: &mut Opener) -> Result<Vec<u8>, BackupError> {
        let name = FileKind::Pack.path(&e.pack);
        let sealed = self
            .store
            .read_range(&name, u64::from(e.offset), u64::from(e.length))?;
        pack::open_blob(opener, &self.keys, e, &sealed)
            .map_err(|err| BackupError::corrupt(format!("blob {} in pack {}", e.id, e.pack), err))
    }

    /// A blob by id through `index`.
    pub fn blob(
        &self,
        index: &Index,
        kind: BlobKind,
        id: &Id,
        opener: &mut Opener,
    ) -> Result<Vec<u8>, BackupError> {
        let e = index
            .get(id)
            .filter(|e| e.kind == kind)
            .ok_or_else(|| BackupError::MissingBlob(*id))?;
        self.read_blob(e, opener)
    }

    /// `key add`: another passphrase for the same master key.
    pub fn key_add(&self, passphrase: &[u8], label: &str) -> Result<Id, BackupError> {
        let (id, bytes) = keys::key_add(
            &self.master,
            passphrase,
            random()?,
            KdfParams::DEFAULT,
            label.into(),
            now(),
        )?;
        self.store
            .write(&FileKind::Key.path(&id), bytes, &WriteOptions::default())?;
        Ok(id)
    }

    /// `key remove`: never the key in use, never the last one.
    pub fn key_remove(&self, id: &Id) -> Result<(), BackupError> {
        let all: Vec<Id> = self
            .list_files(FileKind::Key)?
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        keys::key_remove_check(&all, id, &self.key_id)?;
        self.store.delete(&FileKind::Key.path(id))
    }

    /// `key passwd`: the new key file is stored before the old one is removed.
    pub fn key_passwd(
        &mut self,
        old: &[u8],
        new: &[u8],
        kdf: KdfParams,
    ) -> Result<Id, BackupError> {
        let old_bytes = self.store.read(&FileKind::Key.path(&self.key_id))?;
        let p = keys::key_passwd(&old_bytes, old, new, random()?, kdf, now())?;
        self.store.write(
            &FileKind::Key.path(&p.new_id),
            p.new_bytes,
            &WriteOptions::default(),
        )?;
        self.store.delete(&FileKind::Key.path(&p.remove))?;
        self.key_id = p.new_id;
        Ok(p.new_id)
    }
}

/// Which snapshot a command works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// The newest readable snapshot.
    Latest,
    /// The newest readable snapshot of one source (a scheduled job's own).
    LatestOf(SourceMatch),
    /// The one snapshot whose id starts with this hex.
    Prefix(String),
}

impl Selector {
    /// `latest` or an id prefix.
    pub fn parse(s: &str) -> Selector {
        if s == "latest" {
            Selector::Latest
        } else {
            Selector::Prefix(s.to_ascii_lowercase())
        }
    }
}

/// A backup source as a job describes it, to find that job's snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMatch {
    /// Host that made the snapshot.
    pub hostname: String,
    /// The source.
    pub source: SourceKey,
}

/// The identifying part of a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKey {
    /// Tree backups of exactly these paths (as recorded).
    Paths(Vec<Vec<u8>>),
    /// An image of the device at this path (as recorded).
    Device(String),
    /// A stream of this name.
    Stream(String),
}

impl SourceMatch {
    /// True when `s` was made by this host from this source.
    pub fn matches(&self, s: &Snapshot) -> bool {
        use lethe_repo::snapshot::Source;
        s.hostname == self.hostname
            && match (&self.source, &s.source) {
                (SourceKey::Paths(p), Source::Tree { paths, .. }) => p == paths,
                (SourceKey::Device(d), Source::Device { identity, .. }) => *d == identity.path,
                (SourceKey::Stream(n), Source::Stream { name, .. }) => n == name,
                _ => false,
            }
    }

    fn describe(&self) -> String {
        match &self.source {
            SourceKey::Paths(p) => format!(
                "paths {} on {}",
                p.iter()
                    .map(|x| String::from_utf8_lossy(x).into_owned())
                    .collect::<Vec<_>>()
                    .join(" "),
                self.hostname
            ),
            SourceKey::Device(d) => format!("device {d} on {}", self.hostname),
            SourceKey::Stream(n) => format!("stream {n} on {}", self.hostname),
        }
    }
}
