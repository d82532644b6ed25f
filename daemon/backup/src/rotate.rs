//! `key rotate`: a new master key (a new epoch of the keyring) for everything
//! written from now on, given to every remaining key file without their
//! passphrases (each version-2 key file has its own public key, see
//! `lethe_repo::keys`). A copy of a key file removed before the rotation still
//! opens what was written before it, and nothing written after.
//!
//! Order, under the exclusive lock: the new versions of the key files are
//! written; the config is sealed again under the new epoch; the manifest of the
//! new epoch is committed; then the old versions of the key files are deleted. A
//! kill in between leaves both versions of a key file: opening prefers the one
//! that knows more epochs.

use crate::fresh::Change;
use crate::lock::{Lock, LockKind};
use crate::repo::{now, random, read_key_files, Repository};
use crate::BackupError;
use lethe_repo::crypto::MasterKey;
use lethe_repo::ids::CONFIG_PATH;
use lethe_repo::keys::{KdfParams, KeyFile, KeyFileV2, Slot};
use lethe_repo::{recovery, FileKind, Id};

/// What `key rotate` did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RotateReport {
    /// The new epoch (new data is sealed under it).
    pub epoch: u32,
    /// Key files that now open it (their new ids).
    pub key_files: Vec<String>,
    /// A new recovery key, when the repository had none that could be re-wrapped
    /// (print it and keep it offline; the old one opens only older data).
    pub new_recovery_key: Option<String>,
    /// The manifest generation written.
    pub generation: u64,
    /// Old versions of key files that could not be deleted yet.
    pub notes: Vec<String>,
}

/// Rotate the master key. `passphrase` is the one the repository was opened with
/// (needed to convert the key file in use if it is still in format 1).
pub fn key_rotate(
    repo: &mut Repository,
    passphrase: Option<&[u8]>,
) -> Result<RotateReport, BackupError> {
    let lock = Lock::acquire(repo, LockKind::Exclusive)?;
    let ws = repo.begin_write(&lock, true)?;
    let kf = read_key_files(&repo.store)?;
    let old_v1: Vec<String> = kf
        .files
        .iter()
        .filter(|(id, _, k)| k.version() == 1 && (*id != repo.key_id || passphrase.is_none()))
        .map(|(id, _, k)| format!("{} ({})", &id.to_hex()[..16], k.label()))
        .collect();
    if !old_v1.is_empty() {
        return Err(BackupError::Invalid(format!(
            "key files in format 1 cannot be given the new key without their passphrase: {}; open the repository with each and run `lethe backup key passwd`, or `key remove` them, then rotate",
            old_v1.join(", ")
        )));
    }
    let ring = repo.keyring.rotated(MasterKey::from_bytes(random()?))?;
    let mut report = RotateReport {
        epoch: ring.current_epoch(),
        notes: ws.notes.clone(),
        ..RotateReport::default()
    };
    let mut written = Vec::new();
    let mut old = Vec::new();
    let mut in_use = repo.key_id;
    let mut have_recovery = false;
    for (id, _, k) in &kf.files {
        let new = match k {
            KeyFile::V2(slot) => {
                have_recovery |= slot.header.slot == Slot::Recovery;
                slot.rewrap(&ring, random()?)?
            }
            KeyFile::V1(v1) => KeyFileV2::passphrase(
                &ring,
                passphrase.unwrap_or_default(),
                random()?,
                KdfParams::DEFAULT,
                v1.header.label.clone(),
                now(),
                random()?,
                random()?,
            )?,
        };
        let bytes = new.encode()?;
        let nid = Id::of_file(&bytes);
        lock.ensure()?;
        repo.store
            .write(&FileKind::Key.path(&nid), bytes, &repo.key_write_opts())?;
        if *id == repo.key_id {
            in_use = nid;
        }
        written.push(nid);
        old.push(*id);
    }
    if !have_recovery {
        let secret = MasterKey::from_bytes(random()?);
        let bytes = KeyFileV2::recovery(&ring, &secret, "recovery key".into(), now(), random()?)?
            .encode()?;
        let nid = Id::of_file(&bytes);
        lock.ensure()?;
        repo.store
            .write(&FileKind::Key.path(&nid), bytes, &repo.key_write_opts())?;
        written.push(nid);
        report.new_recovery_key = Some(recovery::encode(&secret));
    }
    // From here on this repository object seals under the new epoch.
    repo.keys = ring.derive()?;
    repo.keyring = ring;
    repo.key_id = in_use;
    repo.key_format = 2;
    let sealed = repo.config.seal(&mut repo.sealer()?)?;
    lock.ensure()?;
    repo.store
        .put_with(CONFIG_PATH, sealed, repo.write_opts.retention)?;
    repo.config_epoch = report.epoch;
    let m = repo.commit(
        &lock,
        &Change {
            add_snapshots: ws.adopt.add_snapshots.clone(),
            add_index: ws.adopt.add_index.clone(),
            exclusive: Some(ws.undeletable.clone()),
            epoch: Some(report.epoch),
            ..Change::default()
        },
    )?;
    report.generation = m.generation;
    for id in old.iter().filter(|id| !written.contains(id)) {
        lock.ensure()?;
        if let Err(e) = repo.store.delete(&FileKind::Key.path(id)) {
            report.notes.push(format!(
                "the old version {id} of a key file could not be deleted yet: {e}"
            ));
        }
    }
    report.key_files = written.iter().map(Id::to_hex).collect();
    Ok(report)
}
