//! `check`: freshness (the manifest against the storage listing and what this
//! client has seen: rollback, deletion and replay are errors), the structure
//! (every snapshot's trees and lists decode and every blob they name is
//! indexed in a pack that exists and is long enough), and with `read_data` the
//! content (packs re-hashed against their names, every blob decrypted,
//! authenticated and re-hashed against its id). Problems are named; nothing
//! panics and nothing is modified. A damaged snapshot, index file or pack is
//! reported and skipped: the check goes on with everything else and reports
//! every problem it finds (the CLI exits 2).

use crate::lock::{Lock, LockKind};
use crate::repo::Repository;
use crate::restore::Reader;
use crate::{BackupError, Outcome};
use lethe_repo::pack::PackReader;
use lethe_repo::snapshot::{Snapshot, Source};
use lethe_repo::tree::{Extent, NodeKind};
use lethe_repo::{BlobKind, FileKind, Id};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// What `check` found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CheckReport {
    /// Snapshots checked.
    pub snapshots: usize,
    /// Distinct blobs referenced.
    pub blobs: usize,
    /// Packs in the index.
    pub packs: usize,
    /// Packs downloaded and verified.
    pub packs_read: usize,
    /// Manifest generation checked (0: a version-1 repository without one).
    pub generation: u64,
    /// What the storage provider did behind our back, and harmless leftovers.
    pub freshness: Vec<crate::fresh::Finding>,
    /// Errors: the repository is damaged.
    pub errors: Vec<String>,
    /// Harmless findings (packs no index names, left by an interrupted backup).
    pub warnings: Vec<String>,
    /// Snapshots that need a blob that is missing or damaged (`repair snapshots` rewrites them).
    pub damaged_snapshots: Vec<String>,
}

impl CheckReport {
    /// No errors.
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// `ok` or `failed` (damage found).
    pub fn outcome(&self) -> Outcome {
        if self.ok() {
            Outcome::Ok
        } else {
            Outcome::Failed
        }
    }
}

/// Blobs referenced by snapshots: id → (kind, short ids of the snapshots needing it).
pub type Referenced = BTreeMap<Id, (BlobKind, BTreeSet<String>)>;

/// Every blob `snaps` reference, by id, with the snapshots that need it.
/// Unreadable trees and extent lists are reported as errors.
pub fn referenced(
    r: &mut Reader<'_>,
    snaps: &[(Id, Snapshot)],
    report: &mut CheckReport,
) -> Result<Referenced, BackupError> {
    let mut used: Referenced = BTreeMap::new();
    let mut seen_trees = HashSet::new();
    report.snapshots = snaps.len();
    for (sid, s) in snaps {
        let sname = sid.to_hex()[..8].to_string();
        let mut mark = |id: Id, k: BlobKind| {
            used.entry(id)
                .or_insert_with(|| (k, BTreeSet::new()))
                .1
                .insert(sname.clone());
        };
        match &s.source {
            Source::Tree { root, .. } => {
                let mut stack = vec![(*root, String::from("/"))];
                while let Some((tid, path)) = stack.pop() {
                    mark(tid, BlobKind::Tree);
                    if !seen_trees.insert((tid, sname.clone())) {
                        continue;
                    }
                    let t = match r.tree(&tid) {
                        Ok(t) => t,
                        Err(e) => {
                            report
                                .errors
                                .push(format!("snapshot {sname}: tree {path}: {e}"));
                            report.damaged_snapshots.push(sid.to_hex());
                            continue;
                        }
                    };
                    for n in &t.nodes {
                        match &n.kind {
                            NodeKind::Dir { subtree } => stack.push((
                                *subtree,
                                format!("{path}{}/", String::from_utf8_lossy(&n.name)),
                            )),
                            NodeKind::File { content, .. } => {
                                for e in content {
                                    if let Extent::Data { id, .. } = e {
                                        mark(*id, BlobKind::Data);
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
            Source::Device { extent_lists, .. } | Source::Stream { extent_lists, .. } => {
                for l in extent_lists {
                    mark(*l, BlobKind::ExtentList);
                }
                match r.extents(extent_lists) {
                    Ok(ext) => {
                        for e in ext {
                            if let Extent::Data { id, .. } = e {
                                mark(id, BlobKind::Data);
                            }
                        }
                    }
                    Err(e) => {
                        report
                            .errors
                            .push(format!("snapshot {sname}: extent lists: {e}"));
                        report.damaged_snapshots.push(sid.to_hex());
                    }
                }
            }
        }
    }
    Ok(used)
}

/// Check the repository; `read_data_ppm` of the packs (1_000_000 = all) are
/// downloaded and every blob in them verified.
pub fn check(repo: &Repository, read_data_ppm: u32, seed: u64) -> Result<CheckReport, BackupError> {
    if read_data_ppm > 1_000_000 {
        return Err(BackupError::Invalid(format!(
            "read-data share {read_data_ppm} ppm is above 100 %"
        )));
    }
    let _lock = Lock::acquire(repo, LockKind::Shared)?;
    let mut report = CheckReport::default();
    let st = repo.state()?;
    report.generation = st.generation();
    for f in &st.findings {
        let line = format!("{f}");
        if f.kind.is_tampering() {
            report.errors.push(format!(
                "{line} (then `lethe backup repair manifest` accepts the repository as it is now)"
            ));
        } else {
            report.warnings.push(line);
        }
    }
    report.freshness = st.findings.clone();
    let li = repo.load_in(&st, false)?;
    for d in li.damaged.iter().chain(&li.damaged_packs) {
        report.errors.push(format!(
            "{} is damaged: {} (run `lethe backup repair index`)",
            d.object, d.error
        ));
    }
    if !li.recovered_packs.is_empty() {
        report.warnings.push(format!(
            "{} pack(s) that no readable index names were read from their own headers",
            li.recovered_packs.len()
        ));
    }
    let packs = li.packs.clone();
    let mut r = Reader::with_index(repo, li.index);
    let snaps = repo.snapshots_in(&st)?;
    for d in &snaps.damaged {
        report.errors.push(format!(
            "{} is damaged: {} (run `lethe backup repair snapshots --forget`)",
            d.object, d.error
        ));
    }
    let used = referenced(&mut r, &snaps.ok, &mut report)?;
    report.blobs = used.len();
    let mut indexed_packs: BTreeMap<Id, u64> = BTreeMap::new();
    let mut needy: BTreeSet<String> = BTreeSet::new();
    for (id, (kind, snaps)) in &used {
        match r.index.get(id) {
            None => {
                needy.extend(snaps.iter().cloned());
                report.errors.push(format!(
                    "{kind:?} blob {id} (needed by snapshot(s) {}) is not in any index",
                    snaps.iter().cloned().collect::<Vec<_>>().join(", ")
                ))
            }
            Some(e) => {
                let end = u64::from(e.offset) + u64::from(e.length);
                let m = indexed_packs.entry(e.pack).or_insert(0);
                *m = (*m).max(end);
            }
        }
    }
    let mut bad_packs: BTreeSet<Id> = BTreeSet::new();
    for (pack, need) in &indexed_packs {
        match packs.get(pack) {
            None => {
                bad_packs.insert(*pack);
                report.errors.push(format!(
                    "pack {pack} is missing (blobs in the index point into it)"
                ))
            }
            Some(&size) if size < *need => {
                bad_packs.insert(*pack);
                report.errors.push(format!(
                    "pack {pack} is truncated: {size} bytes, blobs extend to {need}"
                ))
            }
            _ => {}
        }
    }
    let all_indexed: HashSet<Id> = {
        // Every pack any index entry names, used or not.
        let mut s = HashSet::new();
        for id in used.keys() {
            if let Some(e) = r.index.get(id) {
                s.insert(e.pack);
            }
        }
        s
    };
    report.packs = indexed_packs.len();
    for p in packs.keys() {
        if !all_indexed.contains(p) {
            report.warnings.push(format!(
                "pack {p} is not referenced by any snapshot (prune removes it)"
            ));
        }
    }
    if read_data_ppm > 0 {
        let mut rng = lethe_rng(seed);
        let mut opener = repo.opener();
        // A seeded sample of ceil(share x packs), at least one: never "no errors"
        // after reading nothing when there is something to read.
        let mut todo: Vec<Id> = indexed_packs
            .keys()
            .filter(|p| packs.contains_key(p))
            .copied()
            .collect();
        let want = ((todo.len() as u64 * u64::from(read_data_ppm)).div_ceil(1_000_000) as usize)
            .clamp(todo.len().min(1), todo.len());
        for i in 0..want {
            let j = i + (rng() % (todo.len() - i) as u64) as usize;
            todo.swap(i, j);
        }
        todo.truncate(want);
        todo.sort();
        for pack in &todo {
            report.packs_read += 1;
            let bytes = match repo.store.read(&FileKind::Pack.path(pack)) {
                Ok(b) => b,
                Err(e) => {
                    report.errors.push(format!("pack {pack}: {e}"));
                    continue;
                }
            };
            let reader = match PackReader::open(repo.keys(), &mut opener, pack, &bytes, true) {
                Ok(p) => p,
                Err(e) => {
                    bad_packs.insert(*pack);
                    report.errors.push(format!("pack {pack}: {e}"));
                    // The header may be intact: name the blobs that are bad.
                    match PackReader::open(repo.keys(), &mut opener, pack, &bytes, false) {
                        Ok(rd) => bad_blobs(repo, &rd, pack, &mut opener, &mut report),
                        Err(_) => continue,
                    }
                    continue;
                }
            };
            bad_blobs(repo, &reader, pack, &mut opener, &mut report);
        }
    }
    // Which snapshots the damage reaches.
    for (id, (_, snaps)) in &used {
        if r.index.get(id).is_some_and(|e| bad_packs.contains(&e.pack)) {
            needy.extend(snaps.iter().cloned());
        }
    }
    for (sid, _) in &snaps.ok {
        if needy.contains(&sid.to_hex()[..8]) {
            report.damaged_snapshots.push(sid.to_hex());
        }
    }
    report.damaged_snapshots.sort();
    report.damaged_snapshots.dedup();
    Ok(report)
}

fn bad_blobs(
    repo: &Repository,
    reader: &PackReader<'_>,
    pack: &Id,
    opener: &mut lethe_repo::crypto::Opener,
    report: &mut CheckReport,
) {
    for e in reader.entries() {
        let res = reader
            .sealed(e)
            .and_then(|s| lethe_repo::pack::open_blob(opener, repo.keys(), e, s));
        if let Err(err) = res {
            report
                .errors
                .push(format!("pack {pack}: blob {}: {err}", e.id));
        }
    }
}

/// A small seeded generator (SplitMix64) for sampling.
pub fn lethe_rng(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed;
    move || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
