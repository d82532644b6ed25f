//! Restore drills: restore a seeded random sample of the newest snapshot —
//! files of a tree, or ranges of a device image or stream — into a scratch
//! area and compare with what was recorded at backup time (a file's BLAKE3; a
//! range's blob ids, which are keyed BLAKE3s of the plaintext). A drill that
//! finds any difference fails loudly; every drill reports bytes and time.
//!
//! The drill holds the repository's shared lock and writes only inside a
//! private directory it creates in the scratch area (`lethe-drill-PID-RANDOM`,
//! mode 0700, through [`crate::confined`]); it removes it afterwards, and also
//! removes the leftovers of drills whose process died (`kill -9`).

use crate::check::lethe_rng;
use crate::confined::Dir;
use crate::lock::{process_start, Lock, LockKind};
use crate::repo::{Repository, Selector};
use crate::restore::Reader;
use crate::{BackupError, Outcome};
use lethe_repo::snapshot::Source;
use lethe_repo::tree::{Extent, NodeKind};
use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use std::time::Instant;

/// What to drill.
#[derive(Debug, Clone)]
pub struct DrillRequest {
    /// The snapshot: the newest, a scheduled job's newest, or an id.
    pub snapshot: Selector,
    /// Files (or device ranges) to restore.
    pub sample: usize,
    /// Seed of the sample.
    pub seed: u64,
    /// Where the private scratch directory is made.
    pub scratch: PathBuf,
}

/// Pass or fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every sampled item matched.
    Pass,
    /// Something differed, could not be restored, or nothing was sampled.
    Fail,
}

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
    pub result: Verdict,
}

impl DrillReport {
    /// `ok` for a pass, `failed` otherwise.
    pub fn outcome(&self) -> Outcome {
        match self.result {
            Verdict::Pass => Outcome::Ok,
            Verdict::Fail => Outcome::Failed,
        }
    }
}

const PREFIX: &str = "lethe-drill-";

/// Remove scratch directories of drills whose process is gone (ours only:
/// same owner). Returns how many were removed.
fn reap_dead_drills(top: &Dir) -> usize {
    let me = nix::unistd::geteuid().as_raw();
    let mut n = 0;
    for name in top.names().unwrap_or_default() {
        let Some(rest) = name.strip_prefix(PREFIX.as_bytes()) else {
            continue;
        };
        let pid = std::str::from_utf8(rest)
            .ok()
            .and_then(|s| s.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        let Some(pid) = pid else { continue };
        if process_start(pid).is_some() {
            continue; // alive (or the pid was reused: left for a later drill)
        }
        let ours = top
            .lstat(&name)
            .ok()
            .flatten()
            .is_some_and(|st| st.st_uid == me);
        if ours && top.remove_tree(&name).is_ok() {
            n += 1;
        }
    }
    n
}

/// Create this drill's private directory under `top`.
fn private_dir(top: &Dir) -> Result<(Dir, Vec<u8>), BackupError> {
    for _ in 0..8 {
        let rnd = u64::from_le_bytes(crate::repo::random()?);
        let name = format!("{PREFIX}{}-{rnd:016x}", std::process::id()).into_bytes();
        match nix::sys::stat::mkdirat(
            top.fd(),
            name.as_slice(),
            nix::sys::stat::Mode::from_bits_truncate(0o700),
        ) {
            Ok(()) => {
                let d = top
                    .subdir(&name, crate::confined::Existing::Refuse, false)
                    .map_err(|e| BackupError::Invalid(format!("drill scratch: {e}")))?;
                return Ok((d, name));
            }
            Err(nix::errno::Errno::EEXIST) => continue,
            Err(e) => {
                return Err(BackupError::Io {
                    path: "drill scratch".into(),
                    source: e.into(),
                })
            }
        }
    }
    Err(BackupError::Internal("no free drill scratch name".into()))
}

/// Drill a snapshot: about `sample` items, restored into a private directory
/// under the scratch area (removed afterwards).
pub fn drill(repo: &Repository, req: &DrillRequest) -> Result<DrillReport, BackupError> {
    if req.sample == 0 {
        return Err(BackupError::Invalid(
            "a drill needs a sample of at least 1".into(),
        ));
    }
    let started = Instant::now();
    let (sample, seed) = (req.sample, req.seed);
    let _lock = Lock::acquire(repo, LockKind::Shared)?;
    let (sid, snap) = repo.select(&req.snapshot)?;
    let mut r = Reader::new(repo)?;
    let mut rng = lethe_rng(seed);
    let top = Dir::open_root(&req.scratch).map_err(|e| BackupError::io(&req.scratch, e))?;
    reap_dead_drills(&top);
    let (dir, dir_name) = private_dir(&top)?;
    let res = drill_into(&mut r, &snap, &dir, sample, &mut rng);
    drop(dir);
    let _ = top.remove_tree(&dir_name);
    let (items, bytes, failures) = res?;
    Ok(DrillReport {
        snapshot: sid.to_hex(),
        items,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
        seed,
        result: if failures.is_empty() && items > 0 {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        failures,
    })
}

/// Items, bytes and failures of one drill.
type DrillOut = (usize, u64, Vec<String>);

fn drill_into(
    r: &mut Reader<'_>,
    snap: &lethe_repo::snapshot::Snapshot,
    dir: &Dir,
    sample: usize,
    rng: &mut impl FnMut() -> u64,
) -> Result<DrillOut, BackupError> {
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
                let name = format!("{i:06}");
                let mut out = match dir.create_new(name.as_bytes()) {
                    Ok(f) => f,
                    Err(e) => {
                        failures.push(format!("{p}: scratch: {e}"));
                        items += 1;
                        continue;
                    }
                };
                let res = r.write_extents(content, &mut out, false, p);
                match res {
                    Ok((h, n)) if &h == want => {
                        // Read back what landed on disk, not just what was written.
                        let mut b = Vec::new();
                        let back = out
                            .rewind()
                            .and_then(|()| out.read_to_end(&mut b))
                            .map(|_| blake3::hash(&b));
                        match back {
                            Ok(h) if h.as_bytes() == want => bytes += n,
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
            let mut f = dir.create_new(b"ranges").map_err(|e| {
                BackupError::io(std::path::Path::new("drill scratch/ranges"), e.into_io())
            })?;
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
    Ok((items, bytes, failures))
}
