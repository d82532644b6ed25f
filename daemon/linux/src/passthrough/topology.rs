//! NVMe topology from sysfs: the controller character device behind a
//! namespace block device, and the namespace id.
//!
//! `/dev/nvme1n1` need not belong to `/dev/nvme1` (nvme-cli warns that the
//! suffixes are unrelated once multipath or several subsystems exist), so
//! the controller is found by following links, never by editing names:
//!
//! - plain: `class/block/nvme0n1/device` → the controller directory
//!   (`.../nvme/nvme0`, subsystem `nvme`);
//! - multipath (`CONFIG_NVME_MULTIPATH`): `device` → the subsystem directory
//!   (`.../nvme-subsystem/nvme-subsys0`, subsystem `nvme-subsystem`), whose
//!   controller entries are links to directories of subsystem `nvme`.
//!
//! The controller's `dev` (MAJ:MIN) and `uevent` DEVNAME give the node, which
//! [`open_controller`] checks is a character device with exactly those numbers.
//! The sysfs and /dev roots are parameters so the walk is tested on a fake tree.
//!
//! [`subsystem_namespaces`] lists every namespace of the NVM subsystem a
//! namespace belongs to, because NVMe Sanitize (and Format, when FNA says so)
//! erases all of them: the namespace heads in the subsystem directory
//! (multipath), and the namespaces under each of its controllers (found
//! through `class/nvme-subsystem/*`, whose entries link to the controllers).

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Why the topology walk failed.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// A name that is not a plain sysfs entry name.
    #[error("invalid block device name {0:?}")]
    BadName(String),
    /// Reading sysfs or /dev failed.
    #[error("{path}: {source}")]
    Io {
        /// Path being read.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The block device is not an NVMe namespace.
    #[error("{0} is not an NVMe namespace")]
    NotNvme(String),
    /// No controller is attached to the namespace's subsystem.
    #[error("no NVMe controller found for {0}")]
    NoController(String),
    /// A sysfs attribute had unexpected content.
    #[error("{path}: unexpected content {content:?}")]
    Parse {
        /// Attribute path.
        path: PathBuf,
        /// What it held.
        content: String,
    },
    /// The /dev node is not the character device sysfs names.
    #[error("{path} is not character device {major}:{minor}")]
    NodeMismatch {
        /// Node path.
        path: PathBuf,
        /// Expected major.
        major: u32,
        /// Expected minor.
        minor: u32,
    },
}

/// An NVMe controller as sysfs describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Controller {
    /// Kernel name, also the /dev node name (`nvme0`).
    pub name: String,
    /// Character device numbers.
    pub major: u32,
    /// Character device numbers.
    pub minor: u32,
    /// `state` attribute (`live`, `resetting`, `dead`...), if present.
    pub state: Option<String>,
    /// Canonical sysfs directory.
    pub sysfs: PathBuf,
}

impl Controller {
    /// True when the controller accepts commands.
    pub fn is_live(&self) -> bool {
        self.state.as_deref().is_none_or(|s| s == "live")
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TopologyError + '_ {
    move |source| TopologyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read_attr(path: &Path) -> Result<String, TopologyError> {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(io_err(path))
}

fn check_name(name: &str) -> Result<(), TopologyError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        Err(TopologyError::BadName(name.to_string()))
    } else {
        Ok(())
    }
}

/// Basename of the `subsystem` link of a sysfs device directory.
fn subsystem_of(dir: &Path) -> Option<String> {
    let target = fs::read_link(dir.join("subsystem")).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

/// Parse a `dev` attribute ("MAJ:MIN").
fn parse_dev(path: &Path) -> Result<(u32, u32), TopologyError> {
    let s = read_attr(path)?;
    let bad = || TopologyError::Parse {
        path: path.to_path_buf(),
        content: s.clone(),
    };
    let (ma, mi) = s.split_once(':').ok_or_else(bad)?;
    Ok((
        ma.parse().map_err(|_| bad())?,
        mi.parse().map_err(|_| bad())?,
    ))
}

/// DEVNAME from a `uevent` file, falling back to the directory name.
fn devname(dir: &Path) -> Result<String, TopologyError> {
    let fallback = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = fs::read_to_string(dir.join("uevent"))
        .ok()
        .and_then(|u| {
            u.lines()
                .find_map(|l| l.strip_prefix("DEVNAME=").map(str::to_string))
        })
        .unwrap_or(fallback);
    check_name(&name)?;
    Ok(name)
}

fn controller_at(dir: &Path) -> Result<Controller, TopologyError> {
    let (major, minor) = parse_dev(&dir.join("dev"))?;
    Ok(Controller {
        name: devname(dir)?,
        major,
        minor,
        state: fs::read_to_string(dir.join("state"))
            .ok()
            .map(|s| s.trim().to_string()),
        sysfs: dir.to_path_buf(),
    })
}

/// Canonical sysfs directory of the whole-disk namespace for `block`
/// (a partition resolves to its parent disk).
fn namespace_dir(sysfs: &Path, block: &str) -> Result<PathBuf, TopologyError> {
    check_name(block)?;
    let link = sysfs.join("class/block").join(block);
    let dir = fs::canonicalize(&link).map_err(io_err(&link))?;
    if dir.join("partition").exists() {
        return dir
            .parent()
            .map(Path::to_path_buf)
            .ok_or_else(|| TopologyError::NotNvme(block.to_string()));
    }
    Ok(dir)
}

/// Every controller that serves namespace `block` (`nvme0n1`, or a partition
/// of it), live ones first. On a multipath subsystem there may be several.
pub fn controllers_for_namespace(
    sysfs: &Path,
    block: &str,
) -> Result<Vec<Controller>, TopologyError> {
    let ns = namespace_dir(sysfs, block)?;
    let dev_link = ns.join("device");
    let parent =
        fs::canonicalize(&dev_link).map_err(|_| TopologyError::NotNvme(block.to_string()))?;
    let mut found = match subsystem_of(&parent).as_deref() {
        Some("nvme") => vec![controller_at(&parent)?],
        Some("nvme-subsystem") => {
            let mut v = Vec::new();
            let entries = fs::read_dir(&parent).map_err(io_err(&parent))?;
            for e in entries {
                let e = e.map_err(io_err(&parent))?;
                // Controllers are links into the PCI/fabrics tree; skip the
                // namespace heads and attributes that live in the directory.
                if !e.file_type().map_err(io_err(&e.path()))?.is_symlink() {
                    continue;
                }
                let Ok(dir) = fs::canonicalize(e.path()) else {
                    continue;
                };
                if subsystem_of(&dir).as_deref() == Some("nvme") && dir.join("dev").exists() {
                    v.push(controller_at(&dir)?);
                }
            }
            v
        }
        _ => return Err(TopologyError::NotNvme(block.to_string())),
    };
    if found.is_empty() {
        return Err(TopologyError::NoController(block.to_string()));
    }
    found.sort_by(|a, b| b.is_live().cmp(&a.is_live()).then(a.name.cmp(&b.name)));
    Ok(found)
}

/// The controller to send admin commands for `block`: the first live one.
pub fn controller_for_namespace(sysfs: &Path, block: &str) -> Result<Controller, TopologyError> {
    controllers_for_namespace(sysfs, block)?
        .into_iter()
        .find(Controller::is_live)
        .ok_or_else(|| TopologyError::NoController(block.to_string()))
}

/// A namespace block device of an NVM subsystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceNode {
    /// Block device name (`nvme0n2`).
    pub name: String,
    /// Namespace id.
    pub nsid: u32,
}

/// The namespace block devices directly in `dir` (a subsystem or controller
/// directory): subdirectories with an `nsid` attribute, not hidden per-path
/// disks (`nvme0c0n1`, `hidden` = 1).
fn namespaces_in(dir: &Path, out: &mut Vec<NamespaceNode>) -> Result<(), TopologyError> {
    let entries = fs::read_dir(dir).map_err(io_err(dir))?;
    for e in entries {
        let e = e.map_err(io_err(dir))?;
        let ft = e.file_type().map_err(io_err(&e.path()))?;
        if ft.is_symlink() || !ft.is_dir() {
            continue;
        }
        let p = e.path();
        let nsid_path = p.join("nsid");
        if !nsid_path.exists() {
            continue;
        }
        if fs::read_to_string(p.join("hidden")).is_ok_and(|h| h.trim() == "1") {
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        check_name(&name)?;
        let s = read_attr(&nsid_path)?;
        let nsid = s.parse().map_err(|_| TopologyError::Parse {
            path: nsid_path.clone(),
            content: s.clone(),
        })?;
        out.push(NamespaceNode { name, nsid });
    }
    Ok(())
}

/// Controller directories linked from subsystem directory `subsys`.
fn controllers_in(subsys: &Path) -> Result<Vec<PathBuf>, TopologyError> {
    let mut v = Vec::new();
    for e in fs::read_dir(subsys).map_err(io_err(subsys))? {
        let e = e.map_err(io_err(subsys))?;
        if !e.file_type().map_err(io_err(&e.path()))?.is_symlink() {
            continue;
        }
        if let Ok(dir) = fs::canonicalize(e.path()) {
            if subsystem_of(&dir).as_deref() == Some("nvme") {
                v.push(dir);
            }
        }
    }
    v.sort();
    Ok(v)
}

/// The subsystem directory that links to controller directory `ctrl`.
fn subsystem_of_controller(sysfs: &Path, ctrl: &Path) -> Result<Option<PathBuf>, TopologyError> {
    let class = sysfs.join("class/nvme-subsystem");
    let Ok(entries) = fs::read_dir(&class) else {
        return Ok(None);
    };
    for e in entries {
        let e = e.map_err(io_err(&class))?;
        let Ok(dir) = fs::canonicalize(e.path()) else {
            continue;
        };
        if controllers_in(&dir)?.iter().any(|c| c == ctrl) {
            return Ok(Some(dir));
        }
    }
    Ok(None)
}

/// Every namespace of the NVM subsystem that namespace `block` belongs to,
/// `block` included, sorted by NSID. Without a subsystem entry in sysfs
/// (older kernels), the namespaces of the namespace's own controller.
pub fn subsystem_namespaces(
    sysfs: &Path,
    block: &str,
) -> Result<Vec<NamespaceNode>, TopologyError> {
    let ns = namespace_dir(sysfs, block)?;
    let dev_link = ns.join("device");
    let parent =
        fs::canonicalize(&dev_link).map_err(|_| TopologyError::NotNvme(block.to_string()))?;
    let subsys = match subsystem_of(&parent).as_deref() {
        Some("nvme-subsystem") => Some(parent.clone()),
        Some("nvme") => subsystem_of_controller(sysfs, &parent)?,
        _ => return Err(TopologyError::NotNvme(block.to_string())),
    };
    let mut dirs = Vec::new();
    match &subsys {
        Some(s) => {
            dirs.push(s.clone());
            dirs.extend(controllers_in(s)?);
        }
        None => dirs.push(parent),
    }
    let mut out = Vec::new();
    for d in &dirs {
        namespaces_in(d, &mut out)?;
    }
    out.sort_by(|a, b| a.nsid.cmp(&b.nsid).then(a.name.cmp(&b.name)));
    out.dedup();
    if out.is_empty() {
        return Err(TopologyError::NotNvme(block.to_string()));
    }
    Ok(out)
}

/// Namespace id from `class/block/<block>/nsid` (the disk's, for a partition).
pub fn namespace_id(sysfs: &Path, block: &str) -> Result<u32, TopologyError> {
    let p = namespace_dir(sysfs, block)?.join("nsid");
    let s = read_attr(&p)?;
    s.parse().map_err(|_| TopologyError::Parse {
        path: p,
        content: s,
    })
}

/// Open the controller's node under `dev_root` (normally `/dev`) read-write,
/// after checking it is the character device sysfs names.
pub fn open_controller(c: &Controller, dev_root: &Path) -> Result<File, TopologyError> {
    let path = dev_root.join(&c.name);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    // Checked on the open file, so a node swapped after the check cannot slip in.
    let meta = file.metadata().map_err(io_err(&path))?;
    let rdev = meta.rdev();
    if !meta.file_type().is_char_device()
        || nix::sys::stat::major(rdev) != u64::from(c.major)
        || nix::sys::stat::minor(rdev) != u64::from(c.minor)
    {
        return Err(TopologyError::NodeMismatch {
            path,
            major: c.major,
            minor: c.minor,
        });
    }
    Ok(file)
}

#[cfg(test)]
#[path = "topology_tests.rs"]
mod tests;
