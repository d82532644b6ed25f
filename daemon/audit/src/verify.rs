//! Verification of a whole stored log.
//!
//! 1. **Entries**, in index order: each stored leaf must decode as a
//!    canonical entry whose `seq` is its position, its stored leaf hash must
//!    be `SHA-256(0x00 || leaf)`, its index columns must repeat the leaf's
//!    time, user and action, and no index may be skipped. The tree is rebuilt
//!    from the leaves themselves (not from the stored hashes).
//! 2. **Checkpoints**, in the order appended: each must parse, be for this
//!    log's origin, carry a valid signature by the trusted key, claim a size
//!    larger than the one before, cover no more entries than are stored, and
//!    sign exactly the rebuilt tree's root at its size. Every checkpoint
//!    being a root of one rebuilt tree is what makes each one extend the
//!    previous (a consistency proof is the same fact for someone without the
//!    entries). The last checkpoint must cover every entry.
//! 3. **External checkpoint** (optional, saved off the box): same origin and
//!    key; its size must not exceed the log's (else the tail was cut off)
//!    and the rebuilt tree's root at its size must equal its root (else
//!    history below it was rewritten, which only the key holder could also
//!    re-sign). A consistency proof from it to the latest checkpoint is
//!    generated and checked as an outside verifier would. A mismatch is
//!    reported only when the internal checks found nothing (otherwise the
//!    internal finding is the precise one).
//!
//! The result names the **first bad entry**: the lowest index whose
//! integrity cannot be established, with the reason found there. For an
//! entry-level problem that is the entry itself. For a checkpoint whose root
//! does not match, it is the first entry after the last checkpoint that did
//! match (with a checkpoint per append, exactly the entry that changed).
//! For a rewrite caught only by the external checkpoint it is 0: nothing
//! below the external size can be trusted.
//!
//! Without an external checkpoint, removing the newest entries *together
//! with* their checkpoints leaves a log that is internally consistent; the
//! report says the result is not anchored.

use crate::checkpoint::{open_checkpoint, Checkpoint, CheckpointError};
use crate::leaf::{decode_leaf, LeafError};
use crate::merkle::{leaf_hash, verify_consistency, Tree, EMPTY_ROOT};
use crate::store::{AuditStore, EntryFilter, StoreError};
use ed25519_dalek::VerifyingKey;
use std::fmt;
use std::ops::ControlFlow;

/// Why verification could not be carried out (as opposed to finding
/// tampering, which is a [`Finding`] in the report).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store holds no log.
    #[error("the audit database holds no log (it was never written)")]
    NoLog,
    /// The external checkpoint given is unusable (wrong file, key or log).
    #[error("the external checkpoint is not usable: {0}")]
    External(CheckpointError),
}

/// What is wrong at the first bad entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// No entry is stored at this index (deleted).
    Missing,
    /// The stored leaf is not a canonical entry.
    Undecodable(LeafError),
    /// The leaf says it is another entry (moved or reordered).
    WrongPosition {
        /// The `seq` inside the leaf.
        claims: u64,
    },
    /// The stored leaf hash is not the hash of the stored leaf.
    LeafHashMismatch,
    /// The time, user or action index columns disagree with the leaf.
    IndexColumns,
    /// A checkpoint is malformed, for another log, or wrongly signed.
    CheckpointInvalid {
        /// The size the checkpoint row claims.
        size: u64,
        /// What is wrong.
        problem: String,
    },
    /// A checkpoint does not extend the one appended before it.
    CheckpointOutOfOrder {
        /// Its size.
        size: u64,
        /// The previous checkpoint's size.
        previous: u64,
    },
    /// The entries below `size` do not hash to the root signed for `size`.
    RootMismatch {
        /// The checkpoint's size.
        size: u64,
    },
    /// A signed checkpoint covers `checkpoint_size` entries; fewer are stored.
    Truncated {
        /// The checkpoint's size.
        checkpoint_size: u64,
    },
    /// Entries from here on are covered by no checkpoint.
    Unsealed,
    /// The external checkpoint covers `external_size` entries; fewer are stored.
    ExternalAhead {
        /// The external checkpoint's size.
        external_size: u64,
    },
    /// The log's first `external_size` entries are not what the external
    /// checkpoint signed.
    ExternalMismatch {
        /// The external checkpoint's size.
        external_size: u64,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Missing => write!(f, "missing (deleted from the log)"),
            Reason::Undecodable(e) => write!(f, "not a valid entry ({e})"),
            Reason::WrongPosition { claims } => {
                write!(f, "holds entry {claims} (entries were moved or reordered)")
            }
            Reason::LeafHashMismatch => write!(f, "edited (its bytes no longer match its leaf hash)"),
            Reason::IndexColumns => write!(f, "index columns (time, user, action) were edited"),
            Reason::CheckpointInvalid { size, problem } => {
                write!(f, "not sealed: the checkpoint for size {size} is invalid ({problem})")
            }
            Reason::CheckpointOutOfOrder { size, previous } => write!(
                f,
                "not sealed: checkpoint for size {size} was appended after one for size {previous}"
            ),
            Reason::RootMismatch { size } => write!(
                f,
                "changed, removed or reordered: the entries no longer hash to the root signed for size {size}"
            ),
            Reason::Truncated { checkpoint_size } => write!(
                f,
                "missing: the log was truncated here, but a signed checkpoint covers {checkpoint_size} entries"
            ),
            Reason::Unsealed => write!(f, "not covered by any signed checkpoint (added by someone without the key)"),
            Reason::ExternalAhead { external_size } => write!(
                f,
                "missing: the log was truncated here, but the external checkpoint covers {external_size} entries"
            ),
            Reason::ExternalMismatch { external_size } => write!(
                f,
                "history rewritten: the first {external_size} entries differ from those the external checkpoint signed"
            ),
        }
    }
}

/// The first bad entry and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The lowest index whose integrity cannot be established.
    pub index: u64,
    /// What was found there.
    pub reason: Reason,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "entry {}: {}", self.index, self.reason)
    }
}

/// The outcome of checking an external checkpoint that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalMatch {
    /// The external checkpoint.
    pub checkpoint: Checkpoint,
    /// Length of the consistency proof from it to the latest checkpoint.
    pub proof_len: usize,
}

/// The result of [`verify_log`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The log's origin.
    pub origin: String,
    /// Entries read.
    pub entries: u64,
    /// Checkpoints read.
    pub checkpoints: u64,
    /// The last checkpoint that verified and matched.
    pub latest: Option<Checkpoint>,
    /// The external checkpoint, when one was given and it matched.
    pub external: Option<ExternalMatch>,
    /// The first bad entry, or `None` if the log verified.
    pub finding: Option<Finding>,
}

impl VerifyReport {
    /// Whether nothing was found.
    pub fn is_intact(&self) -> bool {
        self.finding.is_none()
    }

    /// Whether the result is anchored to a checkpoint kept off the box.
    pub fn is_anchored(&self) -> bool {
        self.external.is_some()
    }
}

struct First(Option<Finding>);

impl First {
    /// Keep the finding with the lowest index (the earlier one on a tie).
    fn offer(&mut self, index: u64, reason: Reason) {
        if self.0.as_ref().is_none_or(|f| index < f.index) {
            self.0 = Some(Finding { index, reason });
        }
    }
}

/// Verify the log in `store` against the trusted public key and, if given,
/// an external checkpoint (signed-note text).
pub fn verify_log(
    store: &dyn AuditStore,
    trusted: &VerifyingKey,
    external: Option<&[u8]>,
) -> Result<VerifyReport, VerifyError> {
    let origin = store.origin()?.ok_or(VerifyError::NoLog)?;
    let external = external
        .map(|note| open_checkpoint(note, trusted, Some(&origin)).map_err(VerifyError::External))
        .transpose()?;
    let mut first = First(None);

    // 1. Entries.
    let mut tree = Tree::new();
    let mut entry_problem: Option<(u64, Reason)> = None;
    store.scan_entries(&EntryFilter::default(), &mut |e| {
        let pos = tree.size();
        let hash = leaf_hash(&e.leaf);
        if entry_problem.is_none() {
            entry_problem = check_entry(pos, &e, &hash).map(|r| (pos, r));
        }
        tree.push(hash);
        ControlFlow::Continue(())
    })?;
    if let Some((index, reason)) = entry_problem {
        first.offer(index, reason);
    }

    // 2. Checkpoints.
    let mut checkpoints = 0u64;
    let mut sealed = 0u64;
    let mut previous: Option<u64> = None;
    let mut latest = None;
    store.scan_checkpoints(&mut |c| {
        checkpoints += 1;
        let cp = match open_checkpoint(c.note.as_bytes(), trusted, Some(&origin)) {
            Ok(s) => s.checkpoint,
            Err(e) => {
                first.offer(
                    sealed,
                    Reason::CheckpointInvalid {
                        size: c.size,
                        problem: e.to_string(),
                    },
                );
                return ControlFlow::Break(());
            }
        };
        if cp.size != c.size {
            first.offer(
                sealed,
                Reason::CheckpointInvalid {
                    size: c.size,
                    problem: format!("its note is for size {}", cp.size),
                },
            );
            return ControlFlow::Break(());
        }
        if let Some(p) = previous.filter(|&p| cp.size <= p) {
            first.offer(
                sealed,
                Reason::CheckpointOutOfOrder {
                    size: cp.size,
                    previous: p,
                },
            );
            return ControlFlow::Break(());
        }
        previous = Some(cp.size);
        match tree.root_at(cp.size) {
            None => {
                first.offer(
                    tree.size(),
                    Reason::Truncated {
                        checkpoint_size: cp.size,
                    },
                );
                return ControlFlow::Break(());
            }
            Some(root) if root != cp.root => {
                first.offer(sealed, Reason::RootMismatch { size: cp.size });
                return ControlFlow::Break(());
            }
            Some(_) => {}
        }
        sealed = cp.size;
        latest = Some(cp);
        ControlFlow::Continue(())
    })?;
    if sealed < tree.size() {
        first.offer(sealed, Reason::Unsealed);
    }

    // 3. The external checkpoint.
    let mut external_match = None;
    if let Some(ext) = external {
        let ext = ext.checkpoint;
        match tree.root_at(ext.size) {
            None => first.offer(
                tree.size(),
                Reason::ExternalAhead {
                    external_size: ext.size,
                },
            ),
            // A mismatch already explained by an internal finding adds nothing;
            // on an internally clean log it means the key holder rewrote history.
            Some(root) if root != ext.root => {
                if first.0.is_none() {
                    first.offer(
                        0,
                        Reason::ExternalMismatch {
                            external_size: ext.size,
                        },
                    )
                }
            }
            Some(_) => {
                // What a party holding only the two checkpoints would check.
                let proof_len = match &latest {
                    Some(l) if ext.size > 0 && ext.size <= l.size => {
                        let proof = tree.consistency_proof(ext.size, l.size).unwrap_or_default();
                        match verify_consistency(ext.size, l.size, &ext.root, &l.root, &proof) {
                            Ok(()) => Some(proof.len()),
                            Err(_) => None,
                        }
                    }
                    _ => Some(0).filter(|_| ext.size > 0 || ext.root == EMPTY_ROOT),
                };
                match proof_len {
                    Some(proof_len) => {
                        external_match = Some(ExternalMatch {
                            checkpoint: ext,
                            proof_len,
                        })
                    }
                    None if first.0.is_none() => first.offer(
                        0,
                        Reason::ExternalMismatch {
                            external_size: ext.size,
                        },
                    ),
                    None => {}
                }
            }
        }
    }

    Ok(VerifyReport {
        origin,
        entries: tree.size(),
        checkpoints,
        latest,
        external: external_match,
        finding: first.0,
    })
}

/// Entry-level checks for the row read at position `pos`.
fn check_entry(pos: u64, e: &crate::store::StoredEntry, hash: &[u8; 32]) -> Option<Reason> {
    if e.index != pos {
        // Rows come in index order, so a larger index means `pos` is gone.
        return Some(Reason::Missing);
    }
    if e.leaf_hash.as_slice() != hash {
        return Some(Reason::LeafHashMismatch);
    }
    let (seq, entry) = match decode_leaf(&e.leaf) {
        Ok(x) => x,
        Err(err) => return Some(Reason::Undecodable(err)),
    };
    if seq != pos {
        return Some(Reason::WrongPosition { claims: seq });
    }
    if entry.time.unix() != e.time
        || entry.user_id.as_str() != e.user_id
        || entry.action.as_str() != e.action
    {
        return Some(Reason::IndexColumns);
    }
    None
}

#[cfg(all(test, feature = "sqlite"))]
mod tests;
