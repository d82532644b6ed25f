//! Freshness: which snapshots and index files are live, and what the storage
//! provider did behind our back.
//!
//! A version-2 repository has a sealed manifest (`lethe_repo::manifest`): the
//! live snapshot and index files, a generation counter, a watermark and the key
//! epoch. [`Repository::state`] reads the newest manifest and compares it with the
//! storage listing and with what this client has seen ([`crate::seen`]); what it
//! finds is a list of [`Finding`]s:
//!
//! | finding | meaning | severity |
//! |---|---|---|
//! | `rollback` | an older manifest than this client has seen | tampering |
//! | `manifest_missing` | no manifest where one must be | tampering |
//! | `manifest_damaged` | the newest manifest does not authenticate | tampering |
//! | `key_outdated` | the manifest is sealed under an epoch this key lacks | tampering |
//! | `stale_config` | the config is older than the manifest's key epoch | tampering |
//! | `deleted` | a listed snapshot or index file is missing | tampering |
//! | `replayed` | an unlisted file below the watermark (a removed one put back) | tampering |
//! | `uncommitted` | an unlisted file at or above the watermark: a backup running or interrupted | warning |
//! | `leftover` | a removed file not yet deleted (an interrupted forget, prune or repair) | warning |
//! | `unknown_file` | an unlisted file that cannot be read | warning |
//! | `unprotected` | a version-1 repository: no manifest yet | warning |
//!
//! Writers take [`Repository::begin_write`] (refuses on tampering, upgrades a
//! version-1 repository, and for exclusive operations deletes leftovers and adopts
//! uncommitted files) and end with [`Repository::commit`], which writes the next
//! manifest create-only and retries on a race.

use crate::lock::Lock;
use crate::repo::{damage, now, Repository};
use crate::seen::Seen;
use crate::BackupError;
use lethe_backend::WriteOptions;
use lethe_repo::ids::CONFIG_PATH;
use lethe_repo::manifest::{manifest_path, parse_manifest_path, Manifest, MANIFEST_DIR};
use lethe_repo::{FileKind, Id, RepoError};
use std::collections::BTreeMap;

/// What kind of thing [`Repository::state`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// An older manifest than this client has seen.
    Rollback,
    /// No manifest where one must be.
    ManifestMissing,
    /// The newest manifest does not authenticate.
    ManifestDamaged,
    /// The manifest is sealed under a key epoch this key does not have.
    KeyOutdated,
    /// The config is older than the manifest's key epoch.
    StaleConfig,
    /// A listed file is missing.
    Deleted,
    /// An unlisted file below the watermark: a removed one put back.
    Replayed,
    /// An unlisted file at or above the watermark (a backup running or interrupted).
    Uncommitted,
    /// A removed file not yet deleted.
    Leftover,
    /// An unlisted file that cannot be read.
    UnknownFile,
    /// A version-1 repository: no manifest, no protection against rollback.
    Unprotected,
}

impl FindingKind {
    /// Files were removed, put back or rolled back by someone else.
    pub fn is_tampering(self) -> bool {
        !matches!(
            self,
            FindingKind::Uncommitted
                | FindingKind::Leftover
                | FindingKind::UnknownFile
                | FindingKind::Unprotected
        )
    }
}

/// One finding, named.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// What kind.
    pub kind: FindingKind,
    /// The object: `snapshot <id>`, `index <id>`, `manifest <generation>`.
    pub object: String,
    /// What it means, in words.
    pub detail: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.object, self.detail)
    }
}

/// Which files are live, and what was found about the rest.
#[derive(Debug, Clone, Default)]
pub struct RepoState {
    /// The newest readable manifest (`None` in a version-1 repository).
    pub manifest: Option<Manifest>,
    /// Live snapshot files present on storage.
    pub snapshots: Vec<Id>,
    /// Live index files present on storage.
    pub index: Vec<Id>,
    /// Unlisted snapshot files at or above the watermark.
    pub uncommitted_snapshots: Vec<Id>,
    /// Unlisted index files at or above the watermark.
    pub uncommitted_index: Vec<Id>,
    /// Removed snapshot files still present.
    pub leftover_snapshots: Vec<Id>,
    /// Removed index files still present.
    pub leftover_index: Vec<Id>,
    /// Everything found, tampering first.
    pub findings: Vec<Finding>,
}

impl RepoState {
    /// The tampering findings.
    pub fn tampering(&self) -> Vec<&Finding> {
        self.findings
            .iter()
            .filter(|f| f.kind.is_tampering())
            .collect()
    }

    /// The harmless findings.
    pub fn warnings(&self) -> Vec<&Finding> {
        self.findings
            .iter()
            .filter(|f| !f.kind.is_tampering())
            .collect()
    }

    /// An error naming every tampering finding, if there is one.
    pub fn refuse_if_tampered(&self, what: &str) -> Result<(), BackupError> {
        let t = self.tampering();
        if t.is_empty() {
            return Ok(());
        }
        Err(BackupError::Tampered {
            what: what.to_string(),
            findings: t.iter().map(|f| f.to_string()).collect(),
        })
    }

    /// The manifest generation (0 without one).
    pub fn generation(&self) -> u64 {
        self.manifest.as_ref().map_or(0, |m| m.generation)
    }
}

/// A change to the manifest.
#[derive(Debug, Clone, Default)]
pub struct Change {
    /// New live snapshot files.
    pub add_snapshots: Vec<Id>,
    /// New live index files.
    pub add_index: Vec<Id>,
    /// Snapshot files no longer live.
    pub remove_snapshots: Vec<Id>,
    /// Index files no longer live.
    pub remove_index: Vec<Id>,
    /// For an exclusive operation: raise the watermark to the new generation and
    /// replace the obsolete lists with these (what it is about to delete, and what
    /// it could not delete).
    pub exclusive: Option<Obsolete>,
    /// A new key epoch (`key rotate`).
    pub epoch: Option<u32>,
}

/// Files removed but perhaps not yet deleted.
#[derive(Debug, Clone, Default)]
pub struct Obsolete {
    /// Snapshot files.
    pub snapshots: Vec<Id>,
    /// Index files.
    pub index: Vec<Id>,
}

/// What a writer starts from.
#[derive(Debug, Clone)]
pub struct WriteStart {
    /// The state after the upgrade and clean-up.
    pub state: RepoState,
    /// The generation the writer starts from (recorded in what it writes).
    pub base: u64,
    /// Uncommitted files an exclusive operation takes into the manifest.
    pub adopt: Change,
    /// Removed files that could not be deleted (Object Lock): still obsolete.
    pub undeletable: Obsolete,
    /// What the clean-up did or could not do, in words.
    pub notes: Vec<String>,
}

/// How many times a writer retries when another writer took its generation.
const COMMIT_ATTEMPTS: usize = 64;

impl Repository {
    /// Must this repository have a manifest? Yes when it is in format 2 (config or
    /// key file) or this client has seen one before.
    fn manifest_required(&self, seen: Option<Seen>) -> bool {
        self.config.format >= 2 || self.key_format >= 2 || seen.is_some_and(|s| s.generation > 0)
    }

    fn manifest_generations(&self) -> Result<Vec<u64>, BackupError> {
        let mut gens: Vec<u64> = self
            .store
            .list(MANIFEST_DIR)?
            .iter()
            .filter_map(|o| parse_manifest_path(&o.name))
            .collect();
        gens.sort_unstable_by(|a, b| b.cmp(a));
        Ok(gens)
    }

    /// The newest manifest that opens; damaged or undecryptable newer ones are
    /// findings. `None` when there is none at all.
    fn newest_manifest(
        &self,
        findings: &mut Vec<Finding>,
    ) -> Result<Option<Manifest>, BackupError> {
        for _ in 0..5 {
            let gens = self.manifest_generations()?;
            let mut vanished = false;
            for g in gens {
                let bytes = match self.store.read(&manifest_path(g)) {
                    Ok(b) => b,
                    // Deleted by a writer that just committed a newer one: list again.
                    Err(BackupError::Backend(e)) if e.is_not_found() => {
                        vanished = true;
                        break;
                    }
                    Err(e) => return Err(e),
                };
                match Manifest::open(&mut self.opener(), g, &bytes) {
                    Ok(m) => return Ok(Some(m)),
                    Err(RepoError::UnknownEpoch { epoch, known }) => findings.push(Finding {
                        kind: FindingKind::KeyOutdated,
                        object: format!("manifest {g}"),
                        detail: format!(
                            "sealed under key epoch {epoch}, but this key opens only {known}: the key file or recovery key predates a `key rotate`, or was removed from the repository"
                        ),
                    }),
                    Err(e) => findings.push(Finding {
                        kind: FindingKind::ManifestDamaged,
                        object: format!("manifest {g}"),
                        detail: format!("does not open ({e}): damaged or forged"),
                    }),
                }
            }
            if !vanished {
                return Ok(None);
            }
            findings.clear();
        }
        Err(BackupError::Internal(
            "manifests kept vanishing while they were read".into(),
        ))
    }

    /// Which snapshots and index files are live, and what the storage provider did.
    /// Raises what this client has seen to the manifest found.
    pub fn state(&self) -> Result<RepoState, BackupError> {
        let seen = match &self.seen {
            Some(s) => s.get(&self.config.repo_id)?,
            None => None,
        };
        let mut findings = Vec::new();
        let manifest = self.newest_manifest(&mut findings)?;
        let snap_files: BTreeMap<Id, u64> =
            self.list_files(FileKind::Snapshot)?.into_iter().collect();
        let index_files: BTreeMap<Id, u64> =
            self.list_files(FileKind::Index)?.into_iter().collect();
        let mut st = RepoState::default();
        let Some(m) = manifest else {
            if self.manifest_required(seen) {
                findings.push(Finding {
                    kind: FindingKind::ManifestMissing,
                    object: "manifest".into(),
                    detail: match seen {
                        Some(s) if s.generation > 0 => format!(
                            "there is no readable manifest, but this client has seen generation {}: manifests were deleted",
                            s.generation
                        ),
                        _ => "a version-2 repository without a readable manifest: it was deleted".into(),
                    },
                });
            } else {
                findings.push(Finding {
                    kind: FindingKind::Unprotected,
                    object: "repository".into(),
                    detail: "format version 1: no manifest yet, so deleted or replayed files cannot be told apart; the next backup, forget or prune upgrades it".into(),
                });
            }
            st.snapshots = snap_files.keys().copied().collect();
            st.index = index_files.keys().copied().collect();
            st.findings = sort_findings(findings);
            return Ok(st);
        };
        if let Some(s) = seen {
            if m.generation < s.generation || m.epoch < s.epoch {
                findings.push(Finding {
                    kind: FindingKind::Rollback,
                    object: format!("manifest {}", m.generation),
                    detail: format!(
                        "the newest manifest is generation {} (key epoch {}), but this client has seen generation {} (epoch {}): an older manifest was put back or newer ones were deleted",
                        m.generation, m.epoch, s.generation, s.epoch
                    ),
                });
            }
        }
        if m.epoch > self.config_epoch {
            findings.push(Finding {
                kind: FindingKind::StaleConfig,
                object: "config".into(),
                detail: format!(
                    "sealed under key epoch {}, older than the manifest's {}: an old config was put back",
                    self.config_epoch, m.epoch
                ),
            });
        }
        for id in &m.snapshots {
            if snap_files.contains_key(id) {
                st.snapshots.push(*id);
            } else {
                findings.push(Finding {
                    kind: FindingKind::Deleted,
                    object: format!("snapshot {id}"),
                    detail: format!(
                        "listed in manifest {} but missing from storage: deleted",
                        m.generation
                    ),
                });
            }
        }
        for id in &m.index {
            if index_files.contains_key(id) {
                st.index.push(*id);
            } else {
                findings.push(Finding {
                    kind: FindingKind::Deleted,
                    object: format!("index {id}"),
                    detail: format!(
                        "listed in manifest {} but missing from storage: deleted",
                        m.generation
                    ),
                });
            }
        }
        let mut opener = self.opener();
        for id in snap_files.keys().filter(|id| !m.lists_snapshot(id)) {
            if m.obsolete_snapshots.binary_search(id).is_ok() {
                st.leftover_snapshots.push(*id);
                findings.push(leftover("snapshot", id));
                continue;
            }
            match self.snapshot(id, &mut opener) {
                Ok(s) => classify(
                    &m,
                    "snapshot",
                    id,
                    s.generation,
                    &mut st.uncommitted_snapshots,
                    &mut findings,
                ),
                Err(BackupError::Backend(e)) if e.is_not_found() => {}
                Err(e) if damage(&e) => findings.push(unknown("snapshot", id, &e)),
                Err(e) => return Err(e),
            }
        }
        for id in index_files.keys().filter(|id| !m.lists_index(id)) {
            if m.obsolete_index.binary_search(id).is_ok() {
                st.leftover_index.push(*id);
                findings.push(leftover("index", id));
                continue;
            }
            match self.index_file(id, &mut opener) {
                Ok(f) => classify(
                    &m,
                    "index",
                    id,
                    f.generation,
                    &mut st.uncommitted_index,
                    &mut findings,
                ),
                Err(BackupError::Backend(e)) if e.is_not_found() => {}
                Err(e) if damage(&e) => findings.push(unknown("index", id, &e)),
                Err(e) => return Err(e),
            }
        }
        if let Some(s) = &self.seen {
            s.raise(
                &self.config.repo_id,
                Seen {
                    generation: m.generation,
                    epoch: m.epoch,
                },
            )?;
        }
        st.manifest = Some(m);
        st.findings = sort_findings(findings);
        Ok(st)
    }

    /// Start a write: refuse when files were tampered with, upgrade a version-1
    /// repository to version 2, and for an exclusive operation delete what earlier
    /// ones left behind and adopt what interrupted backups wrote.
    pub fn begin_write(&self, lock: &Lock, exclusive: bool) -> Result<WriteStart, BackupError> {
        let mut st = self.state()?;
        st.refuse_if_tampered("refusing to write")?;
        if st.manifest.is_none() {
            self.upgrade(lock)?;
            st = self.state()?;
            st.refuse_if_tampered("refusing to write")?;
        }
        let mut out = WriteStart {
            base: st.generation(),
            adopt: Change::default(),
            undeletable: Obsolete::default(),
            notes: Vec::new(),
            state: st,
        };
        if !exclusive {
            return Ok(out);
        }
        for (kind, ids) in [
            (FileKind::Snapshot, out.state.leftover_snapshots.clone()),
            (FileKind::Index, out.state.leftover_index.clone()),
        ] {
            for id in ids {
                lock.ensure()?;
                match self.store.delete(&kind.path(&id)) {
                    Ok(()) => {}
                    Err(BackupError::Backend(e)) if e.is_not_found() => {}
                    Err(e) => {
                        out.notes
                            .push(format!("{} {id} could not be deleted yet: {e}", kind.dir()));
                        match kind {
                            FileKind::Snapshot => out.undeletable.snapshots.push(id),
                            _ => out.undeletable.index.push(id),
                        }
                    }
                }
            }
        }
        out.adopt.add_snapshots = out.state.uncommitted_snapshots.clone();
        out.adopt.add_index = out.state.uncommitted_index.clone();
        if !out.adopt.add_snapshots.is_empty() {
            out.notes.push(format!(
                "{} snapshot(s) written by interrupted backups are now listed",
                out.adopt.add_snapshots.len()
            ));
        }
        Ok(out)
    }

    /// Version 1 → 2: the first manifest lists every snapshot file and the current
    /// index files (superseded ones are obsolete), then the config is sealed again
    /// in version 2. Racing upgraders: one manifest wins, the config is the same.
    fn upgrade(&self, lock: &Lock) -> Result<(), BackupError> {
        let legacy = self.state()?;
        let ie = self.index_entries_in(&legacy)?;
        let mut m = Manifest::first(self.keys().current_epoch(), now());
        m.watermark = 1;
        m.snapshots = legacy.snapshots.clone();
        m.index = ie.current.clone();
        m.index.extend(ie.damaged.iter().filter_map(|d| {
            d.object
                .strip_prefix("index ")
                .and_then(|h| Id::from_hex(h).ok())
        }));
        m.obsolete_index = ie.superseded.clone();
        m.audit_checkpoint = self.audit_checkpoint.clone();
        m.normalize();
        let bytes = m.seal(&mut self.sealer()?)?;
        lock.ensure()?;
        self.store
            .create(&manifest_path(1), bytes, &WriteOptions::default())?;
        let mut config = self.config.clone();
        config.format = lethe_repo::object::FORMAT_V2;
        let sealed = config.seal(&mut self.sealer()?)?;
        lock.ensure()?;
        self.store
            .put_with(CONFIG_PATH, sealed, self.write_opts.retention)?;
        Ok(())
    }

    /// After an exclusive operation deleted the files it removed: the next manifest
    /// lists as obsolete only `still` (what could not be deleted), so a copy of a
    /// deleted file put back later is a replay, not a leftover of this operation.
    pub fn settle(&self, lock: &Lock, still: Obsolete) -> Result<Manifest, BackupError> {
        self.commit(
            lock,
            &Change {
                exclusive: Some(still),
                ..Change::default()
            },
        )
    }

    /// Write the next manifest with `change` applied to the newest one, create-only;
    /// when another writer took that generation, merge again on top of theirs.
    pub fn commit(&self, lock: &Lock, change: &Change) -> Result<Manifest, BackupError> {
        for _ in 0..COMMIT_ATTEMPTS {
            let mut findings = Vec::new();
            let Some(cur) = self.newest_manifest(&mut findings)? else {
                return Err(BackupError::Tampered {
                    what: "refusing to write".into(),
                    findings: vec!["manifest: none to build on (deleted meanwhile?)".into()],
                });
            };
            if let Some(f) = findings.first() {
                return Err(BackupError::Tampered {
                    what: "refusing to write".into(),
                    findings: vec![f.to_string()],
                });
            }
            let mut m = cur.clone();
            m.generation = cur.generation + 1;
            m.time = now();
            m.epoch = change
                .epoch
                .unwrap_or(self.keys().current_epoch())
                .max(cur.epoch);
            m.audit_checkpoint = self.audit_checkpoint.clone();
            m.snapshots
                .retain(|id| !change.remove_snapshots.contains(id));
            m.snapshots.extend(&change.add_snapshots);
            m.index.retain(|id| !change.remove_index.contains(id));
            m.index.extend(&change.add_index);
            if let Some(ob) = &change.exclusive {
                m.watermark = m.generation;
                m.obsolete_snapshots = ob.snapshots.clone();
                m.obsolete_index = ob.index.clone();
            }
            m.normalize();
            let bytes = m.seal(&mut self.sealer()?)?;
            let path = manifest_path(m.generation);
            lock.ensure()?;
            let mine = self
                .store
                .create(&path, bytes.clone(), &WriteOptions::default())?
                || self.store.read(&path)?.as_ref() == bytes.as_slice();
            if !mine {
                continue;
            }
            if let Some(s) = &self.seen {
                s.raise(
                    &self.config.repo_id,
                    Seen {
                        generation: m.generation,
                        epoch: m.epoch,
                    },
                )?;
            }
            // Older manifests are history; a reader that was reading one lists again.
            for g in self
                .manifest_generations()?
                .into_iter()
                .filter(|g| *g < m.generation)
            {
                let _ = self.store.delete(&manifest_path(g));
            }
            return Ok(m);
        }
        Err(BackupError::Internal(format!(
            "{COMMIT_ATTEMPTS} other writers took the next manifest generation first"
        )))
    }
}

fn sort_findings(mut f: Vec<Finding>) -> Vec<Finding> {
    f.sort_by_key(|x| !x.kind.is_tampering());
    f
}

fn leftover(what: &str, id: &Id) -> Finding {
    Finding {
        kind: FindingKind::Leftover,
        object: format!("{what} {id}"),
        detail: "removed by an interrupted forget, prune or repair; the next one deletes it".into(),
    }
}

fn unknown(what: &str, id: &Id, e: &BackupError) -> Finding {
    Finding {
        kind: FindingKind::UnknownFile,
        object: format!("{what} {id}"),
        detail: format!("not in the manifest and cannot be read ({e}): ignored"),
    }
}

fn classify(
    m: &Manifest,
    what: &str,
    id: &Id,
    generation: u64,
    uncommitted: &mut Vec<Id>,
    findings: &mut Vec<Finding>,
) {
    if generation < m.watermark {
        findings.push(Finding {
            kind: FindingKind::Replayed,
            object: format!("{what} {id}"),
            detail: format!(
                "not in manifest {} and written before its watermark (generation {generation} < {}): a removed file was put back; it is ignored",
                m.generation, m.watermark
            ),
        });
    } else {
        uncommitted.push(*id);
        findings.push(Finding {
            kind: FindingKind::Uncommitted,
            object: format!("{what} {id}"),
            detail: "not in the manifest yet: a backup is running or was interrupted (the next forget or prune takes it in)".into(),
        });
    }
}
