//! The writer: append an entry, extend the tree, sign a checkpoint, store
//! both in one transaction.
//!
//! Every append signs a new checkpoint, so no entry ever sits unsealed (the
//! journald lesson: entries after the last seal are unprotected). The cost
//! per append is one signature and one durable transaction (not measured
//! yet; see the follow-ups in the package report).
//!
//! Before signing anything the writer checks that the stored log is the one
//! its latest checkpoint describes (leaf hashes contiguous, root equal,
//! signature valid under the writer's own key). A log someone has edited is
//! refused with [`AuditError::Damaged`] rather than sealed over, because a
//! log must never sign a checkpoint inconsistent with one it signed before
//! (c2sp.org/tlog-checkpoint). `lethe audit verify` then says what is wrong.
//!
//! [`AuditLog`] is for one owner (a one-shot CLI). [`Appender`] wraps it in
//! an `Arc<Mutex<_>>` for a daemon's threads; it is `Clone` and each
//! `append` is one short critical section. If another process appends to
//! the same database, the store reports a conflict and the writer reloads
//! its tree and tries again.

use crate::bundle::InclusionBundle;
use crate::checkpoint::{open_checkpoint, Checkpoint, CheckpointError, SignedCheckpoint};
use crate::entry::{Entry, EntryError};
use crate::leaf::encode_leaf;
use crate::merkle::{leaf_hash, Hash, ProofError, Tree};
use crate::note::{NoteSigner, SignError};
use crate::store::{AuditStore, StoreError, StoredCheckpoint, StoredEntry};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::VerifyingKey;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, MutexGuard};

/// Errors of the writer.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The store failed; nothing was appended.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The entry breaks a write rule; nothing was appended.
    #[error("audit entry refused: {0}")]
    Entry(#[from] EntryError),
    /// The signer failed; nothing was appended.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// The stored log does not match its latest signed checkpoint; nothing
    /// will be signed over it. Run `lethe audit verify`.
    #[error("the audit log is damaged or was tampered with ({0}); run `lethe audit verify`")]
    Damaged(String),
    /// A proof was asked for entries or sizes the log does not have.
    #[error(transparent)]
    Proof(#[from] ProofError),
}

/// What an append returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The entry's index.
    pub index: u64,
    /// Its leaf hash.
    pub leaf_hash: Hash,
    /// The checkpoint signed over the log including it.
    pub checkpoint: SignedCheckpoint,
}

/// The default origin of a log signed by `key`: `lethe/audit/<key id>`, where
/// the key id is the appliance key id of `lethe-cert` (16 hex digits).
pub fn default_origin(key: &VerifyingKey) -> String {
    format!("lethe/audit/{}", lethe_cert::key_id_of(key))
}

/// An open audit log with its writer state.
pub struct AuditLog<S: AuditStore> {
    store: S,
    signer: Box<dyn NoteSigner>,
    origin: String,
    tree: Tree,
    latest: SignedCheckpoint,
}

impl<S: AuditStore> std::fmt::Debug for AuditLog<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("origin", &self.origin)
            .field("size", &self.tree.size())
            .finish_non_exhaustive()
    }
}

/// How many times an append retries after another writer got in first.
const MAX_CONFLICT_RETRIES: usize = 8;

impl<S: AuditStore> AuditLog<S> {
    /// Open the log in `store`, creating it (origin [`default_origin`], and
    /// a signed checkpoint of the empty tree) if the store is empty.
    pub fn open(store: S, signer: impl NoteSigner + 'static) -> Result<Self, AuditError> {
        let origin = default_origin(&signer.public_key());
        Self::open_with_origin(store, signer, &origin)
    }

    /// As [`AuditLog::open`], with an explicit origin for a new log (an
    /// existing log keeps the origin it was created with).
    pub fn open_with_origin(
        mut store: S,
        signer: impl NoteSigner + 'static,
        origin: &str,
    ) -> Result<Self, AuditError> {
        let signer: Box<dyn NoteSigner> = Box::new(signer);
        let origin = match store.origin()? {
            Some(o) => o,
            None => {
                let empty = Checkpoint {
                    origin: origin.to_owned(),
                    size: 0,
                    root: crate::merkle::EMPTY_ROOT,
                    extensions: vec![],
                }
                .sign(signer.as_ref())?;
                match store.create(
                    origin,
                    &StoredCheckpoint {
                        size: 0,
                        note: empty.note,
                    },
                ) {
                    // Another process created it meanwhile: use theirs.
                    Ok(()) | Err(StoreError::AlreadyCreated(_)) => {}
                    Err(e) => return Err(e.into()),
                }
                store.origin()?.unwrap_or_else(|| origin.to_owned())
            }
        };
        let (tree, latest) = load(&store, signer.public_key(), &origin)?;
        Ok(AuditLog {
            store,
            signer,
            origin,
            tree,
            latest,
        })
    }

    /// Re-read the tree from the store (after another writer appended).
    pub fn reload(&mut self) -> Result<(), AuditError> {
        let (tree, latest) = load(&self.store, self.signer.public_key(), &self.origin)?;
        self.tree = tree;
        self.latest = latest;
        Ok(())
    }

    /// Append `entry` and seal it with a new signed checkpoint.
    pub fn append(&mut self, entry: &Entry) -> Result<Receipt, AuditError> {
        let mut attempt = 0;
        loop {
            let index = self.tree.size();
            let leaf = encode_leaf(index, entry)?;
            let hash = leaf_hash(&leaf);
            self.tree.push(hash);
            let signed = Checkpoint {
                origin: self.origin.clone(),
                size: index + 1,
                root: self.tree.root(),
                extensions: vec![],
            }
            .sign(self.signer.as_ref());
            let signed = match signed {
                Ok(s) => s,
                Err(e) => {
                    self.tree.truncate(index);
                    return Err(e.into());
                }
            };
            let row = StoredEntry {
                index,
                leaf,
                leaf_hash: hash.to_vec(),
                time: entry.time.unix(),
                user_id: entry.user_id.as_str().to_owned(),
                action: entry.action.as_str().to_owned(),
            };
            let cp = StoredCheckpoint {
                size: index + 1,
                note: signed.note.clone(),
            };
            match self.store.append(&row, &cp) {
                Ok(()) => {
                    self.latest = signed;
                    return Ok(Receipt {
                        index,
                        leaf_hash: hash,
                        checkpoint: self.latest.clone(),
                    });
                }
                Err(StoreError::Conflict { .. }) if attempt < MAX_CONFLICT_RETRIES => {
                    self.tree.truncate(index);
                    self.reload()?;
                    attempt += 1;
                }
                Err(e) => {
                    self.tree.truncate(index);
                    return Err(e.into());
                }
            }
        }
    }

    /// The log's origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Number of entries.
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    /// The latest signed checkpoint.
    pub fn latest_checkpoint(&self) -> &SignedCheckpoint {
        &self.latest
    }

    /// The public key checkpoints are signed with.
    pub fn public_key(&self) -> VerifyingKey {
        self.signer.public_key()
    }

    /// Proof that entry `index` is in the latest checkpoint, with the leaf,
    /// for attaching to a certificate.
    pub fn inclusion_bundle(&self, index: u64) -> Result<InclusionBundle, AuditError> {
        let size = self.latest.checkpoint.size;
        let proof = self.tree.inclusion_proof(index, size)?;
        let stored = self
            .store
            .entry(index)?
            .ok_or_else(|| AuditError::Damaged(format!("entry {index} is missing")))?;
        if leaf_hash(&stored.leaf) != self.tree.leaf(index).unwrap_or_default() {
            return Err(AuditError::Damaged(format!(
                "entry {index} does not match its leaf hash"
            )));
        }
        let leaf = String::from_utf8(stored.leaf)
            .map_err(|_| AuditError::Damaged(format!("entry {index} is not UTF-8")))?;
        Ok(InclusionBundle {
            checkpoint: self.latest.note.clone(),
            index,
            proof: proof.iter().map(|h| B64.encode(h)).collect(),
            leaf,
        })
    }

    /// Proof that the tree of `first` entries is a prefix of the tree of
    /// `second` entries (for an outside party holding an old checkpoint).
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, AuditError> {
        Ok(self.tree.consistency_proof(first, second)?)
    }

    /// The store, for reads (verify, export) in the same process.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Close the writer and give the store back.
    pub fn into_store(self) -> S {
        self.store
    }
}

/// Rebuild the tree from stored leaf hashes and check the latest checkpoint
/// describes it.
fn load(
    store: &dyn AuditStore,
    key: VerifyingKey,
    origin: &str,
) -> Result<(Tree, SignedCheckpoint), AuditError> {
    let mut tree = Tree::new();
    let mut problem = None;
    store.scan_leaf_hashes(&mut |idx, hash| {
        let Ok(hash) = <Hash>::try_from(hash.as_slice()) else {
            problem = Some(format!("entry {idx} has a malformed leaf hash"));
            return ControlFlow::Break(());
        };
        if idx != tree.size() {
            problem = Some(format!("entry {} is missing", tree.size()));
            return ControlFlow::Break(());
        }
        tree.push(hash);
        ControlFlow::Continue(())
    })?;
    if let Some(p) = problem {
        return Err(AuditError::Damaged(p));
    }
    let stored = store
        .latest_checkpoint()?
        .ok_or_else(|| AuditError::Damaged("there is no checkpoint".into()))?;
    let latest = open_checkpoint(stored.note.as_bytes(), &key, Some(origin)).map_err(|e| {
        AuditError::Damaged(match e {
            CheckpointError::Note(_) => {
                format!("the latest checkpoint is not signed by this appliance's key ({e})")
            }
            _ => format!("the latest checkpoint is unreadable ({e})"),
        })
    })?;
    let cp = &latest.checkpoint;
    if cp.size != tree.size() {
        return Err(AuditError::Damaged(format!(
            "the latest checkpoint covers {} entries but {} are stored",
            cp.size,
            tree.size()
        )));
    }
    if tree.root() != cp.root {
        return Err(AuditError::Damaged(
            "the stored entries do not hash to the latest checkpoint's root".into(),
        ));
    }
    Ok((tree, latest))
}

/// A cloneable, thread-safe handle on one [`AuditLog`] for a daemon.
pub struct Appender<S: AuditStore> {
    inner: Arc<Mutex<AuditLog<S>>>,
}

impl<S: AuditStore> Clone for Appender<S> {
    fn clone(&self) -> Self {
        Appender {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: AuditStore> Appender<S> {
    /// Share `log` between threads.
    pub fn new(log: AuditLog<S>) -> Self {
        Appender {
            inner: Arc::new(Mutex::new(log)),
        }
    }

    /// Append one entry (see [`AuditLog::append`]).
    pub fn append(&self, entry: &Entry) -> Result<Receipt, AuditError> {
        self.lock().append(entry)
    }

    /// Run `f` with the log locked (proofs, reads).
    pub fn with<R>(&self, f: impl FnOnce(&mut AuditLog<S>) -> R) -> R {
        f(&mut self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, AuditLog<S>> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => {
                // A thread panicked holding the lock. The store's transaction
                // was rolled back, but the in-memory tree may be ahead of it:
                // rebuild it from the store before anyone appends again.
                let mut g = poisoned.into_inner();
                self.inner.clear_poison();
                let _ = g.reload();
                g
            }
        }
    }
}
