//! An open repository: storage, unlocked keys, config, and the readers every
//! command shares (index, snapshots, blobs). Write order is packs → index →
//! snapshot, so a reader that finds a snapshot finds everything it names.

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
use std::collections::BTreeSet;

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

    /// Read and open every index file; superseded ones are skipped. Returns the
    /// index and the ids of the files it came from.
    pub fn load_index(&self) -> Result<(Index, Vec<Id>), BackupError> {
        let (entries, files) = self.index_entries()?;
        let mut index = Index::new();
        index.extend(entries);
        Ok((index, files))
    }

    /// Every entry of every current (not superseded) index file, including
    /// duplicate locations of a blob, and the ids of those files.
    pub fn index_entries(&self) -> Result<(Vec<IndexEntry>, Vec<Id>), BackupError> {
        let mut files = Vec::new();
        let mut superseded = BTreeSet::new();
        let mut opener = self.opener();
        for (id, _) in self.list_files(FileKind::Index)? {
            let bytes = self.store.read(&FileKind::Index.path(&id))?;
            id.verify_file("index", &bytes)
                .map_err(|e| BackupError::corrupt(format!("index {id}"), e))?;
            let f = IndexFile::open(&mut opener, &bytes)
                .map_err(|e| BackupError::corrupt(format!("index {id}"), e))?;
            superseded.extend(f.supersedes.iter().copied());
            files.push((id, f));
        }
        let mut entries = Vec::new();
        let mut used = Vec::new();
        for (id, f) in files {
            if superseded.contains(&id) {
                continue;
            }
            entries.extend(f.entries());
            used.push(id);
        }
        Ok((entries, used))
    }

    /// Every snapshot, oldest first.
    pub fn snapshots(&self) -> Result<Vec<(Id, Snapshot)>, BackupError> {
        let mut out = Vec::new();
        let mut opener = self.opener();
        for (id, _) in self.list_files(FileKind::Snapshot)? {
            let bytes = self.store.read(&FileKind::Snapshot.path(&id))?;
            id.verify_file("snapshot", &bytes)
                .map_err(|e| BackupError::corrupt(format!("snapshot {id}"), e))?;
            let s = Snapshot::open(&mut opener, &bytes)
                .map_err(|e| BackupError::corrupt(format!("snapshot {id}"), e))?;
            out.push((id, s));
        }
        out.sort_by_key(|(id, s)| (s.time, *id));
        Ok(out)
    }

    /// Find a snapshot by id prefix, or `latest`.
    pub fn find_snapshot(&self, which: &str) -> Result<(Id, Snapshot), BackupError> {
        let all = self.snapshots()?;
        if which == "latest" {
            return all
                .into_iter()
                .last()
                .ok_or_else(|| BackupError::NotFound("the repository has no snapshots".into()));
        }
        let m: Vec<_> = all
            .into_iter()
            .filter(|(id, _)| id.to_hex().starts_with(which))
            .collect();
        match m.len() {
            1 => Ok(m
                .into_iter()
                .next()
                .ok_or_else(|| BackupError::NotFound(which.into()))?),
            0 => Err(BackupError::NotFound(format!("no snapshot {which}"))),
            n => Err(BackupError::NotFound(format!(
                "{which} is ambiguous ({n} snapshots)"
            ))),
        }
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
