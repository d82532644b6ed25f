//! Restore drills: restore a seeded random sample of the newest snapshot —
//! files of a tree, or ranges of a device image or stream — into a scratch
//! area and compare with what was recorded at backup time (a file's BLAKE3; a
//! range's blob ids, which are keyed BLAKE3s of the plaintext). A drill that
//! finds any difference fails loudly; every drill reports bytes and time.

use crate::check::lethe_rng;
use crate::repo::Repository;
use crate::restore::Reader;
use crate::BackupError;
use lethe_repo::snapshot::Source;
use lethe_repo::tree::{Extent, NodeKind};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// The result of one drill.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DrillReport {
    /// Snapshot drilled.
    pub snapshot: String,
    /// Files or ranges restored.
    pub items: usize,
    /// Bytes restored and compared.
    pub bytes: u64,
    /// Seconds.
    pub seconds: f64,
    /// Seed of the sample (to repeat the drill).
    pub seed: u64,
    /// Items that did not match or could not be restored.
    pub failures: Vec<String>,
    /// `pass` or `fail`.
    pub result: String,
}

/// Drill the newest snapshot: about `sample` items, restored under `scratch`
/// (which is emptied afterwards).
pub fn drill(
    repo: &Repository,
    sample: usize,
    seed: u64,
    scratch: &Path,
) -> Result<DrillReport, BackupError> {
    let started = Instant::now();
    let (sid, snap) = repo.find_snapshot("latest")?;
    let mut r = Reader::new(repo)?;
    let mut rng = lethe_rng(seed);
    let dir = scratch.join(format!("drill-{}", &sid.to_hex()[..12]));
    std::fs::create_dir_all(&dir).map_err(|e| BackupError::io(&dir, e))?;
    let mut failures = Vec::new();
    let mut items = 0;
    let mut bytes = 0u64;
    match &snap.source {
        Source::Tree { root, .. } => {
            // Reservoir-sample files while walking the whole tree.
            let mut pick: Vec<(String, Vec<Extent>, [u8; 32])> = Vec::new();
            let mut seen = 0u64;
            let mut stack = vec![(*root, String::new())];
            while let Some((tid, path)) = stack.pop() {
                let t = match r.tree(&tid) {
                    Ok(t) => t,
                    Err(e) => {
                        failures.push(format!("tree {path}/: {e}"));
                        continue;
                    }
                };
                for n in t.nodes {
                    let p = format!("{path}/{}", String::from_utf8_lossy(&n.name));
                    match n.kind {
                        NodeKind::Dir { subtree } => stack.push((subtree, p)),
                        NodeKind::File { content, blake3 } => {
                            seen += 1;
                            if pick.len() < sample {
                                pick.push((p, content, blake3));
                            } else {
                                let j = (rng() % seen) as usize;
                                if j < sample {
                                    pick[j] = (p, content, blake3);
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            for (i, (p, content, want)) in pick.iter().enumerate() {
                let out = dir.join(format!("{i:06}"));
                let res = std::fs::File::create(&out)
                    .map_err(|e| BackupError::io(&out, e))
                    .and_then(|mut f| r.write_extents(content, &mut f, false, p));
                match res {
                    Ok((h, n)) if &h == want => {
                        // Read back what landed on disk, not just what was written.
                        match std::fs::read(&out) {
                            Ok(b) if blake3::hash(&b).as_bytes() == want => bytes += n,
                            Ok(_) => failures.push(format!("{p}: scratch copy differs on disk")),
                            Err(e) => failures.push(format!("{p}: {e}")),
                        }
                    }
                    Ok(_) => {
                        failures.push(format!("{p}: BLAKE3 differs from the backup-time hash"))
                    }
                    Err(e) => failures.push(format!("{p}: {e}")),
                }
                items += 1;
            }
        }
        Source::Device { extent_lists, .. } | Source::Stream { extent_lists, .. } => {
            let ext = r.extents(extent_lists)?;
            let data: Vec<(u64, Extent)> = {
                let mut off = 0;
                ext.iter()
                    .map(|e| {
                        let o = off;
                        off += e.len();
                        (o, *e)
                    })
                    .filter(|(_, e)| matches!(e, Extent::Data { .. }))
                    .collect()
            };
            let mut chosen: Vec<usize> = (0..data.len()).collect();
            // Partial Fisher-Yates: the first `sample` are a seeded sample.
            for i in 0..chosen.len().min(sample) {
                let j = i + (rng() % (chosen.len() - i) as u64) as usize;
                chosen.swap(i, j);
            }
            chosen.truncate(sample);
            let out = dir.join("ranges");
            let mut f = std::fs::File::create(&out).map_err(|e| BackupError::io(&out, e))?;
            for i in chosen {
                let (off, e) = data[i];
                let Extent::Data { id, len } = e else {
                    continue;
                };
                items += 1;
                // Reading the blob verifies it against its id (keyed BLAKE3 of
                // the plaintext computed at backup time).
                match r.data(&id) {
                    Ok(b) if b.len() == len as usize => {
                        if let Err(e) = f.write_all(&b) {
                            failures.push(format!(
                                "bytes {off}..{}: scratch: {e}",
                                off + u64::from(len)
                            ));
                        } else {
                            bytes += u64::from(len);
                        }
                    }
                    Ok(_) => failures.push(format!("bytes {off}..: wrong length")),
                    Err(e) => failures.push(format!("bytes {off}..{}: {e}", off + u64::from(len))),
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(DrillReport {
        snapshot: sid.to_hex(),
        items,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
        seed,
        result: if failures.is_empty() && items > 0 {
            "pass".into()
        } else {
            "fail".into()
        },
        failures,
    })
}
