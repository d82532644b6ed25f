//! An open repository: storage, unlocked keys, config, and the readers every
//! command shares (index, snapshots, blobs). Write order is packs → index →
//! snapshot → manifest, so a reader that finds a snapshot in the manifest finds
//! everything it names. Which snapshots and index files are live, and what the
//! storage provider may have done behind our back, is [`crate::fresh`]'s job.

use crate::fresh::RepoState;
use crate::lock::LockTiming;
use crate::seen::SeenStore;
use crate::store::Store;
use crate::BackupError;
use lethe_backend::WriteOptions;
use lethe_repo::crypto::{Keyring, MasterKey, Opener, RepoKeys, Sealer};
use lethe_repo::ids::CONFIG_PATH;
use lethe_repo::index::{Index, IndexEntry, IndexFile};
use lethe_repo::keys::{KdfParams, KeyFile, KeyFileV2, Slot};
use lethe_repo::manifest::{manifest_path, Manifest};
use lethe_repo::object::ObjectHeader;
use lethe_repo::pack;
use lethe_repo::snapshot::{RepoConfig, Snapshot, Source};
use lethe_repo::tree::Timestamp;
use lethe_repo::{recovery, BlobKind, FileKind, Id, RepoError};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

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

/// Most key files tried when opening (each costs an Argon2id run).
pub const MAX_KEY_ATTEMPTS: usize = 32;

/// An unlocked repository.
pub struct Repository {
    /// Storage.
    pub store: Store,
    /// Parameters fixed at `init`.
    pub config: RepoConfig,
    /// Key epoch the config is sealed under.
    pub(crate) config_epoch: u32,
    pub(crate) keys: RepoKeys,
    pub(crate) keyring: Keyring,
    /// The key file that was unlocked (`Id::ZERO`: a version-1 recovery key).
    pub key_id: Id,
    /// Format of that key file (2 for the recovery slot).
    pub(crate) key_format: u8,
    /// Options for data writes (Object Lock retention).
    pub write_opts: WriteOptions,
    /// Lock refresh and stale times.
    pub lock_timing: LockTiming,
    /// What this client has seen of repositories (rollback detection).
    pub(crate) seen: Option<Arc<dyn SeenStore>>,
    /// The audit log's signed checkpoint, written into every manifest this
    /// client writes (the daemon sets it; the CLI has none).
    pub audit_checkpoint: Option<String>,
    /// Key files skipped while opening (not matching their name, unparsable).
    pub key_warnings: Vec<String>,
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
    /// Current (live, readable) index files.
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
    /// Packs on storage, with their sizes (the listing every dedup hit is checked
    /// against).
    pub packs: BTreeMap<Id, u64>,
}

/// The index files as read.
#[derive(Debug, Clone, Default)]
pub struct IndexEntries {
    /// Entries of the current index files (duplicate locations included).
    pub entries: Vec<IndexEntry>,
    /// Current (readable, live) index files.
    pub current: Vec<Id>,
    /// Format 1: readable index files a current one supersedes (left by an
    /// interrupted prune).
    pub superseded: Vec<Id>,
    /// Damaged live index files.
    pub damaged: Vec<Damaged>,
}

impl IndexEntries {
    /// Every readable index file: what a new complete index replaces.
    pub fn all_files(&self) -> Vec<Id> {
        let mut v = self.current.clone();
        v.extend(self.superseded.iter().copied());
        v
    }
}

/// One key file, as `key list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyInfo {
    /// File id (its BLAKE3).
    pub id: String,
    /// `passphrase` or `recovery`.
    pub kind: &'static str,
    /// Label given when it was made.
    pub label: String,
    /// Creation time (unix seconds).
    pub created: i64,
    /// Key file format (1 or 2).
    pub format: u8,
    /// The key this command was opened with.
    pub in_use: bool,
    /// Why it cannot be used, if it cannot.
    pub problem: Option<String>,
}

/// Errors that say "this object is damaged" (as opposed to "storage failed").
pub(crate) fn damage(e: &BackupError) -> bool {
    matches!(e, BackupError::Corrupt { .. } | BackupError::Repo(_))
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("store", &self.store.describe())
            .field("key_id", &self.key_id)
            .field("epochs", &self.keyring.len())
            .finish()
    }
}

/// Key files under `keys/`, each checked against its name.
pub(crate) struct KeyFiles {
    pub(crate) files: Vec<(Id, Vec<u8>, KeyFile)>,
    pub(crate) warnings: Vec<String>,
}

pub(crate) fn read_key_files(store: &Store) -> Result<KeyFiles, BackupError> {
    let mut out = KeyFiles {
        files: Vec::new(),
        warnings: Vec::new(),
    };
    for o in store.list(FileKind::Key.dir())? {
        let Ok((FileKind::Key, id)) = FileKind::parse_path(&o.name) else {
            continue;
        };
        if o.size > lethe_repo::keys::MAX_KEYFILE as u64 {
            out.warnings.push(format!(
                "key file {id}: {} bytes, too large: ignored",
                o.size
            ));
            continue;
        }
        let bytes = match store.read(&o.name) {
            Ok(b) => b.to_vec(),
            Err(BackupError::Backend(e)) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        if let Err(e) = id.verify_file("key file", &bytes) {
            out.warnings.push(format!(
                "key file {id} does not match its name ({e}): ignored"
            ));
            continue;
        }
        match KeyFile::parse(&bytes) {
            Ok(kf) => out.files.push((id, bytes, kf)),
            Err(e) => out.warnings.push(format!("key file {id}: {e}: ignored")),
        }
    }
    Ok(out)
}

/// Argon2 cost of a key file, to try cheap ones first (a planted expensive one last).
fn kdf_cost(kf: &KeyFile) -> u64 {
    use lethe_repo::keys::Kdf;
    let params = match kf {
        KeyFile::V1(k) => {
            let Kdf::Argon2id { params, .. } = &k.header.kdf;
            *params
        }
        KeyFile::V2(k) => match &k.header.slot {
            Slot::Passphrase {
                kdf: Kdf::Argon2id { params, .. },
            } => *params,
            Slot::Recovery => return u64::MAX,
        },
    };
    u64::from(params.m_kib) * u64::from(params.t)
}

impl Repository {
    /// Create a repository (format version 2); returns it and the printable recovery
    /// key. Refuses when `config` already exists (nothing is written then).
    pub fn init(
        store: Store,
        passphrase: &[u8],
        kdf: KdfParams,
        label: &str,
    ) -> Result<(Repository, String), BackupError> {
        if store.stat(CONFIG_PATH).is_ok() {
            return Err(BackupError::AlreadyInitialized(store.describe()));
        }
        let ring = Keyring::new(MasterKey::from_bytes(random()?));
        let keys = ring.derive()?;
        let config = RepoConfig::new(random()?, now());
        let mut sealer = keys.sealer(random()?, config.zstd_level)?;
        let sealed_config = config.seal(&mut sealer)?;
        let slot = KeyFileV2::passphrase(
            &ring,
            passphrase,
            random()?,
            kdf,
            label.into(),
            now(),
            random()?,
            random()?,
        )?
        .encode()?;
        let secret = MasterKey::from_bytes(random()?);
        let rec = KeyFileV2::recovery(&ring, &secret, "recovery key".into(), now(), random()?)?
            .encode()?;
        let key_id = Id::of_file(&slot);
        let manifest = Manifest::first(0, now()).seal(&mut sealer)?;
        // Keys, then the first manifest, then the config: a repository exists once
        // its config does, and then it is complete.
        store.write(&FileKind::Key.path(&key_id), slot, &WriteOptions::default())?;
        store.write(
            &FileKind::Key.path(&Id::of_file(&rec)),
            rec,
            &WriteOptions::default(),
        )?;
        store.put(&manifest_path(1), manifest)?;
        store.write(CONFIG_PATH, sealed_config, &WriteOptions::default())?;
        let recovery_text = recovery::encode(&secret);
        Ok((
            Repository {
                store,
                config,
                config_epoch: 0,
                keys,
                keyring: ring,
                key_id,
                key_format: 2,
                write_opts: WriteOptions::default(),
                lock_timing: LockTiming::default(),
                seen: None,
                audit_checkpoint: None,
                key_warnings: Vec::new(),
            },
            recovery_text,
        ))
    }

    /// Unlock with a passphrase: tries the key files, cheapest Argon2 cost first, at
    /// most [`MAX_KEY_ATTEMPTS`]. Writes nothing.
    pub fn open(store: Store, passphrase: &[u8]) -> Result<Repository, BackupError> {
        let kf = read_key_files(&store)?;
        if kf.files.is_empty() {
            if store.stat(CONFIG_PATH).is_ok() && !kf.warnings.is_empty() {
                return Err(BackupError::Invalid(format!(
                    "no usable key file: {}",
                    kf.warnings.join("; ")
                )));
            }
            return Err(BackupError::NotARepository(store.describe()));
        }
        let mut candidates: Vec<&(Id, Vec<u8>, KeyFile)> = kf
            .files
            .iter()
            .filter(|(_, _, k)| !k.is_recovery())
            .collect();
        candidates.sort_by_key(|(id, _, k)| (kdf_cost(k), *id));
        for (id, _, k) in candidates.into_iter().take(MAX_KEY_ATTEMPTS) {
            match k.unlock(passphrase) {
                Ok(ring) => {
                    // Another version of the same slot (left by an interrupted `key
                    // rotate`) may know more epochs: use the largest keyring.
                    let (mut best, mut best_id) = (ring, *id);
                    if let KeyFile::V2(me) = k {
                        for (oid, _, other) in &kf.files {
                            let KeyFile::V2(o) = other else { continue };
                            if *oid != *id && o.header == me.header {
                                if let Ok(r2) = o.unlock(passphrase) {
                                    if r2.len() > best.len() {
                                        (best, best_id) = (r2, *oid);
                                    }
                                }
                            }
                        }
                    }
                    let mut r = Self::with_keyring(store, best, best_id, k.version())?;
                    r.key_warnings = kf.warnings;
                    return Ok(r);
                }
                Err(RepoError::WrongPassphrase) | Err(RepoError::Authentication { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(BackupError::WrongPassphrase)
    }

    /// Unlock with the printable recovery key: the recovery slot's keyring, or, in a
    /// repository written by format version 1, the master key the text encodes.
    pub fn open_with_recovery(store: Store, text: &str) -> Result<Repository, BackupError> {
        let secret = recovery::decode(text)?;
        let kf = read_key_files(&store)?;
        let mut best: Option<(Keyring, Id)> = None;
        for (id, _, k) in &kf.files {
            if let KeyFile::V2(slot) = k {
                if slot.header.slot == Slot::Recovery {
                    if let Ok(ring) = slot.unlock_recovery(&secret) {
                        if best.as_ref().is_none_or(|(b, _)| ring.len() > b.len()) {
                            best = Some((ring, *id));
                        }
                    }
                }
            }
        }
        if let Some((ring, id)) = best {
            let mut r = Self::with_keyring(store, ring, id, 2)?;
            r.key_warnings = kf.warnings;
            return Ok(r);
        }
        // A version-1 recovery key is the epoch-0 master itself.
        let mut r = Self::with_keyring(store, Keyring::new(secret), Id::ZERO, 1).map_err(|e| {
            match e {
                BackupError::Corrupt { .. } => BackupError::Invalid(
                    "this recovery key does not open the repository (a recovery key of another repository, or one replaced by `key rotate`)".into(),
                ),
                e => e,
            }
        })?;
        r.key_warnings = kf.warnings;
        Ok(r)
    }

    fn with_keyring(
        store: Store,
        keyring: Keyring,
        key_id: Id,
        key_format: u8,
    ) -> Result<Repository, BackupError> {
        let keys = keyring.derive()?;
        let bytes = match store.read(CONFIG_PATH) {
            Ok(b) => b,
            Err(BackupError::Backend(e)) if e.is_not_found() => {
                return Err(BackupError::NotARepository(store.describe()))
            }
            Err(e) => return Err(e),
        };
        let config_epoch = ObjectHeader::parse(&bytes)
            .map_err(|e| BackupError::corrupt("config", e))?
            .epoch;
        let config = RepoConfig::open(&mut keys.opener(), &bytes)
            .map_err(|e| BackupError::corrupt("config", e))?;
        Ok(Repository {
            store,
            config,
            config_epoch,
            keys,
            keyring,
            key_id,
            key_format,
            write_opts: WriteOptions::default(),
            lock_timing: LockTiming::default(),
            seen: None,
            audit_checkpoint: None,
            key_warnings: Vec::new(),
        })
    }

    /// Put the service's signed audit-log checkpoint into every manifest this
    /// handle writes (at most 64 KiB).
    pub fn with_audit_checkpoint(mut self, checkpoint: Option<String>) -> Repository {
        self.audit_checkpoint = checkpoint;
        self
    }

    /// Remember the highest manifest generation seen per repository in `seen` (the
    /// caller's state): a lower one is then reported as a rollback.
    pub fn with_seen(mut self, seen: Arc<dyn SeenStore>) -> Repository {
        self.seen = Some(seen);
        self
    }

    /// Derived keys.
    pub fn keys(&self) -> &RepoKeys {
        &self.keys
    }

    /// Number of key epochs this key opens.
    pub fn epochs(&self) -> usize {
        self.keyring.len()
    }

    /// A fresh encryption session (random session id) under the newest epoch.
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
    pub(crate) fn index_file(
        &self,
        id: &Id,
        opener: &mut Opener,
    ) -> Result<IndexFile, BackupError> {
        let bytes = self.store.read(&FileKind::Index.path(id))?;
        id.verify_file("index", &bytes)
            .map_err(|e| BackupError::corrupt(format!("index {id}"), e))?;
        IndexFile::open(opener, &bytes).map_err(|e| BackupError::corrupt(format!("index {id}"), e))
    }

    /// Every entry of every live index file (duplicate locations included), the
    /// ids of the current and (format 1) superseded files, and the live index
    /// files that are damaged (skipped; a file vanished meanwhile is ignored).
    pub fn index_entries(&self) -> Result<IndexEntries, BackupError> {
        self.index_entries_in(&self.state()?)
    }

    /// [`Repository::index_entries`] for an already loaded state.
    pub fn index_entries_in(&self, st: &RepoState) -> Result<IndexEntries, BackupError> {
        let mut files = Vec::new();
        let mut damaged = Vec::new();
        let mut superseded = BTreeSet::new();
        let mut opener = self.opener();
        for id in &st.index {
            match self.index_file(id, &mut opener) {
                Ok(f) => {
                    superseded.extend(f.supersedes.iter().copied());
                    files.push((*id, f));
                }
                Err(BackupError::Backend(e)) if e.is_not_found() => {}
                Err(e) if damage(&e) => damaged.push(Damaged {
                    object: format!("index {id}"),
                    error: e.to_string(),
                }),
                Err(e) => return Err(e),
            }
        }
        // Format 1: a damaged file that a readable one supersedes no longer matters.
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
    /// readable index names are read from their own headers (packs are
    /// self-describing), so intact packs stay reachable. Where a blob has several
    /// locations, one in a stored pack wins.
    pub fn load_index(&self) -> Result<LoadedIndex, BackupError> {
        self.load(&self.state()?, false)
    }

    /// The index a backup may deduplicate against: only entries whose pack is in
    /// this run's listing of storage with enough bytes. A blob whose pack is
    /// missing (lost, or named by a replayed index) is stored again instead of
    /// being referenced by a snapshot that could never be restored.
    pub fn dedup_index(&self) -> Result<LoadedIndex, BackupError> {
        self.load(&self.state()?, true)
    }

    /// [`Repository::load_index`] / [`Repository::dedup_index`] for a loaded state.
    pub fn load_in(
        &self,
        st: &RepoState,
        only_available: bool,
    ) -> Result<LoadedIndex, BackupError> {
        self.load(st, only_available)
    }

    fn load(&self, st: &RepoState, only_available: bool) -> Result<LoadedIndex, BackupError> {
        let ie = self.index_entries_in(st)?;
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
        let tl = (pack::TRAILER_LEN as u64).min(size);
        if tl < pack::TRAILER_LEN_V1 as u64 {
            return Err(corrupt(RepoError::Truncated {
                what: "pack",
                need: pack::TRAILER_LEN_V1,
                have: size as usize,
            }));
        }
        let tail = self.store.read_range(&name, size - tl, tl)?;
        let trailer = pack::parse_trailer(&self.keys, &tail).map_err(corrupt)?;
        let hl = u64::from(trailer.header_len());
        let start = size.checked_sub(trailer.len() as u64 + hl).ok_or_else(|| {
            corrupt(RepoError::Truncated {
                what: "pack header",
                need: (trailer.len() as u64 + hl) as usize,
                have: size as usize,
            })
        })?;
        let sealed = self.store.read_range(&name, start, hl)?;
        pack::read_header(
            &self.keys,
            &mut self.opener(),
            pack,
            size,
            &trailer,
            &sealed,
        )
        .map_err(corrupt)
    }

    /// Every live snapshot that can be read, oldest first, and the damaged ones
    /// (named, skipped). Storage failures are still errors.
    pub fn snapshots(&self) -> Result<SnapshotList, BackupError> {
        self.snapshots_in(&self.state()?)
    }

    /// [`Repository::snapshots`] for a loaded state.
    pub fn snapshots_in(&self, st: &RepoState) -> Result<SnapshotList, BackupError> {
        let mut out = SnapshotList::default();
        let mut opener = self.opener();
        for id in &st.snapshots {
            match self.snapshot(id, &mut opener) {
                Ok(s) => out.ok.push((*id, s)),
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

    /// The snapshot `sel` names. `latest` (with or without a filter) is refused
    /// when the storage provider removed, replayed or rolled back files: the newest
    /// snapshot cannot be trusted to be the newest then.
    pub fn select(&self, sel: &Selector) -> Result<(Id, Snapshot), BackupError> {
        let st = self.state()?;
        if !matches!(sel, Selector::Prefix(_)) {
            st.refuse_if_tampered("`latest` cannot be trusted")?;
        }
        let all = self.snapshots_in(&st)?;
        let found = match sel {
            Selector::Latest => all.ok.into_iter().last(),
            Selector::LatestOf(m) => all.ok.into_iter().rev().find(|(_, s)| m.matches(s)),
            Selector::LatestMatching(f) => all.ok.into_iter().rev().find(|(_, s)| f.matches(s)),
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
                    (0, 0) => {
                        let replayed = st
                            .findings
                            .iter()
                            .any(|f| f.kind.is_tampering() && f.object.contains(p.as_str()));
                        return Err(BackupError::NotFound(if replayed {
                            format!("no live snapshot {p}: the file there is not in the manifest (see `lethe backup check`)")
                        } else {
                            format!("no snapshot {p}")
                        }));
                    }
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
            Selector::LatestMatching(f) => {
                BackupError::NotFound(format!("no readable snapshot matches {}", f.describe()))
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

    /// Every key file with its label, kind and creation time.
    pub fn key_list(&self) -> Result<Vec<KeyInfo>, BackupError> {
        let kf = read_key_files(&self.store)?;
        let mut out: Vec<KeyInfo> = kf
            .files
            .iter()
            .map(|(id, _, k)| KeyInfo {
                id: id.to_hex(),
                kind: if k.is_recovery() {
                    "recovery"
                } else {
                    "passphrase"
                },
                label: k.label().to_string(),
                created: k.created().secs,
                format: k.version(),
                in_use: *id == self.key_id,
                problem: None,
            })
            .collect();
        for w in kf.warnings {
            let id = w
                .strip_prefix("key file ")
                .and_then(|r| r.split([' ', ':']).next())
                .unwrap_or_default()
                .to_string();
            out.push(KeyInfo {
                id,
                kind: "unusable",
                label: String::new(),
                created: 0,
                format: 0,
                in_use: false,
                problem: Some(w),
            });
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// `key add`: another passphrase slot for this keyring.
    pub fn key_add(&self, passphrase: &[u8], label: &str) -> Result<Id, BackupError> {
        self.key_add_with(passphrase, label, KdfParams::DEFAULT)
    }

    /// `key add` with explicit Argon2id parameters.
    pub fn key_add_with(
        &self,
        passphrase: &[u8],
        label: &str,
        kdf: KdfParams,
    ) -> Result<Id, BackupError> {
        let bytes = KeyFileV2::passphrase(
            &self.keyring,
            passphrase,
            random()?,
            kdf,
            label.into(),
            now(),
            random()?,
            random()?,
        )?
        .encode()?;
        let id = Id::of_file(&bytes);
        self.store
            .write(&FileKind::Key.path(&id), bytes, &self.key_write_opts())?;
        Ok(id)
    }

    /// Write options for key files and the config: the data's Object Lock
    /// retention, if any.
    pub(crate) fn key_write_opts(&self) -> WriteOptions {
        WriteOptions {
            overwrite: false,
            retention: self.write_opts.retention,
        }
    }

    /// Give the config and every key file the same Object Lock retention as the
    /// data (`run --lock-days`): until then no credential can delete them.
    pub fn retain_keys_and_config(&self, r: &lethe_backend::Retention) -> Result<(), BackupError> {
        self.store.retain(CONFIG_PATH, r)?;
        for (id, _) in self.list_files(FileKind::Key)? {
            self.store.retain(&FileKind::Key.path(&id), r)?;
        }
        Ok(())
    }

    /// `key remove`: never the key in use, never the last passphrase.
    pub fn key_remove(&self, id: &Id) -> Result<(), BackupError> {
        let kf = read_key_files(&self.store)?;
        let all: Vec<(Id, bool)> = kf
            .files
            .iter()
            .map(|(i, _, k)| (*i, k.is_recovery()))
            .collect();
        lethe_repo::keys::key_remove_check(&all, id, &self.key_id)?;
        self.store.delete(&FileKind::Key.path(id))
    }

    /// `key passwd`: a new passphrase slot for the key in use (same label) is
    /// stored before the old file is removed.
    pub fn key_passwd(
        &mut self,
        old: &[u8],
        new: &[u8],
        kdf: KdfParams,
    ) -> Result<Id, BackupError> {
        let old_bytes = self.store.read(&FileKind::Key.path(&self.key_id))?;
        let old_file = KeyFile::parse(&old_bytes)?;
        // The old passphrase must still open it.
        old_file.unlock(old)?;
        let id = self.key_add_with(new, old_file.label(), kdf)?;
        self.store.delete(&FileKind::Key.path(&self.key_id))?;
        self.key_id = id;
        self.key_format = 2;
        Ok(id)
    }
}

/// Which snapshot a command works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// The newest readable snapshot.
    Latest,
    /// The newest readable snapshot of one source (a scheduled job's own).
    LatestOf(SourceMatch),
    /// The newest readable snapshot a filter accepts (`latest --host/--tag/--path`).
    LatestMatching(SnapshotFilter),
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

    /// `latest` (under `filter` when it has a condition) or an id prefix.
    pub fn parse_with(s: &str, filter: &SnapshotFilter) -> Selector {
        match Selector::parse(s) {
            Selector::Latest if !filter.is_empty() => Selector::LatestMatching(filter.clone()),
            other => other,
        }
    }
}

/// restic's `--host`, `--tag` and `--path` filters. A snapshot matches when its
/// host is one of `hosts` (if any), when for one of `tags` (if any) it carries every
/// tag of that group (`--tag a,b` = a and b; two `--tag` options = either), and when
/// its source paths include every one of `paths` (if any).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotFilter {
    /// Accepted host names.
    pub hosts: Vec<String>,
    /// Tag groups: a snapshot must carry all tags of at least one group.
    pub tags: Vec<Vec<String>>,
    /// Paths every accepted snapshot has among its source paths.
    pub paths: Vec<Vec<u8>>,
    /// A path an accepted snapshot holds: one of its source paths is this path or
    /// a directory above it (`restore --path`).
    pub holding: Option<Vec<u8>>,
}

impl SnapshotFilter {
    /// No condition at all.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
            && self.tags.is_empty()
            && self.paths.is_empty()
            && self.holding.is_none()
    }

    /// Does `s` pass?
    pub fn matches(&self, s: &Snapshot) -> bool {
        let host = self.hosts.is_empty() || self.hosts.contains(&s.hostname);
        let tags = self.tags.is_empty()
            || self
                .tags
                .iter()
                .any(|group| group.iter().all(|t| s.tags.contains(t)));
        let paths = self.paths.is_empty()
            || match &s.source {
                Source::Tree { paths, .. } => self.paths.iter().all(|p| paths.contains(p)),
                Source::Device { identity, .. } => self
                    .paths
                    .iter()
                    .all(|p| p.as_slice() == identity.path.as_bytes()),
                Source::Stream { name, .. } => {
                    self.paths.iter().all(|p| p.as_slice() == name.as_bytes())
                }
            };
        let holding = match (&self.holding, &s.source) {
            (None, _) => true,
            (Some(h), Source::Tree { paths, .. }) => {
                let h = if h.starts_with(b"/") {
                    h.clone()
                } else {
                    [b"/".as_slice(), h].concat()
                };
                paths.iter().any(|p| {
                    let p = p.strip_suffix(b"/").unwrap_or(p);
                    h == p || (h.starts_with(p) && h.get(p.len()) == Some(&b'/'))
                })
            }
            (Some(_), _) => false,
        };
        host && tags && paths && holding
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.hosts.is_empty() {
            parts.push(format!("--host {}", self.hosts.join(",")));
        }
        for g in &self.tags {
            parts.push(format!("--tag {}", g.join(",")));
        }
        for p in &self.paths {
            parts.push(format!("--path {}", String::from_utf8_lossy(p)));
        }
        if let Some(h) = &self.holding {
            parts.push(format!("holding {}", String::from_utf8_lossy(h)));
        }
        parts.join(" ")
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
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SourceKey {
    /// Tree backups of exactly these paths (as recorded).
    Paths(Vec<Vec<u8>>),
    /// An image of the device at this path (as recorded).
    Device(String),
    /// A stream of this name.
    Stream(String),
}

impl SourceKey {
    /// The key of a snapshot's source.
    pub fn of(s: &Snapshot) -> SourceKey {
        match &s.source {
            Source::Tree { paths, .. } => SourceKey::Paths(paths.clone()),
            Source::Device { identity, .. } => SourceKey::Device(identity.path.clone()),
            Source::Stream { name, .. } => SourceKey::Stream(name.clone()),
        }
    }

    /// How it is shown.
    pub fn describe(&self) -> String {
        match self {
            SourceKey::Paths(p) => p
                .iter()
                .map(|x| String::from_utf8_lossy(x).into_owned())
                .collect::<Vec<_>>()
                .join(" "),
            SourceKey::Device(d) => format!("device {d}"),
            SourceKey::Stream(n) => format!("stream {n}"),
        }
    }
}

impl SourceMatch {
    /// True when `s` was made by this host from this source.
    pub fn matches(&self, s: &Snapshot) -> bool {
        s.hostname == self.hostname && SourceKey::of(s) == self.source
    }

    fn describe(&self) -> String {
        format!("{} on {}", self.source.describe(), self.hostname)
    }
}
