//! Gathering block-device records and the system's state from sysfs, the
//! udev database, libblkid and /proc, for the pure classification in
//! `lethe_core::inventory`.
//!
//! Works with or without a running udev: sysfs alone gives identity and
//! geometry, and udev (when `/run/udev/data` exists) adds by-id links and
//! bridge-corrected strings.

use crate::blkid;
use lethe_core::inventory::{
    self, parse_mountinfo, parse_swaps, parse_udev_db, DevNum, DeviceRecord, Drive,
    PartitionRecord, ProtectReason, SystemFacts, SYSTEM_MOUNTS,
};
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub mod uevent;

const SYS_BLOCK: &str = "/sys/class/block";
const UDEV_DATA: &str = "/run/udev/data";

/// sysfs attributes recorded for every device (relative to its directory).
const ATTRS: &[&str] = &[
    "size",
    "ro",
    "removable",
    "queue/logical_block_size",
    "queue/physical_block_size",
    "queue/rotational",
    "device/vendor",
    "device/model",
    "device/serial",
    "device/rev",
    "device/firmware_rev",
    "device/wwid",
    "device/name",
    "device/manfid",
    "device/oemid",
    "device/type",
    "wwid",
    "serial",
    "loop/backing_file",
    "dm/name",
    "md/level",
];

/// Errors of listing devices (individual unreadable devices are skipped).
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("cannot list {SYS_BLOCK}: {0}")]
    Sysfs(std::io::Error),
}

/// Why `lethe wipe` will not touch a target. Every variant means nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("{path}: {source}; nothing was written")]
    Missing {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a block device; nothing was written")]
    NotBlockDevice { path: PathBuf },
    #[error("{path}: no sysfs entry for device {devnum}; nothing was written")]
    NoSysfs { path: PathBuf, devnum: DevNum },
    #[error("refusing to touch {path}: {}; nothing was written", reasons.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("; "))]
    Protected {
        path: PathBuf,
        reasons: Vec<ProtectReason>,
    },
}

/// An allowed target: the classified drive, the record it came from, and
/// the identity an exclusive open must find again.
#[derive(Debug, Clone)]
pub struct TargetAssessment {
    pub drive: Drive,
    pub record: DeviceRecord,
    pub identity: LiveIdentity,
}

fn read_trim(p: impl AsRef<Path>) -> Option<String> {
    fs::read_to_string(p)
        .ok()
        .map(|s| s.trim_end_matches(['\n', '\0']).to_string())
}

fn dir_names(p: impl AsRef<Path>) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn devnum_of(meta: &fs::Metadata) -> DevNum {
    let rdev = meta.rdev();
    DevNum {
        major: nix::sys::stat::major(rdev) as u32,
        minor: nix::sys::stat::minor(rdev) as u32,
    }
}

/// Build the record of whole device `name` (e.g. "sda").
pub fn record(name: &str) -> Option<DeviceRecord> {
    record_with(name, true)
}

/// Build a record; `probe` adds what libblkid finds (partition table,
/// filesystems, labels). Without it only sysfs, udev and the loop backing are
/// read, which is all that protection and identity need.
fn record_with(name: &str, probe: bool) -> Option<DeviceRecord> {
    let dir = fs::canonicalize(Path::new(SYS_BLOCK).join(name)).ok()?;
    if dir.join("partition").exists() {
        return None;
    }
    let mut r = DeviceRecord {
        name: name.to_string(),
        devnode: format!("/dev/{name}"),
        devnum: read_trim(dir.join("dev")).and_then(|s| DevNum::parse(&s)),
        sys_path: dir
            .strip_prefix("/sys")
            .map(|p| format!("/{}", p.display()))
            .unwrap_or_default(),
        ..Default::default()
    };
    for a in ATTRS {
        if let Some(v) = read_trim(dir.join(a)) {
            r.attrs.insert(a.to_string(), v);
        }
    }
    if !r.attrs.contains_key("device/serial") && !r.attrs.contains_key("serial") {
        // Without udev a SCSI disk (SATA behind libata, a USB stick) has no
        // serial attribute of its own: take the USB device's iSerial (what
        // udev's usb_id reports) or the unit serial number VPD page.
        if let Some(s) = usb_serial(&dir).or_else(|| {
            fs::read(dir.join("device/vpd_pg80"))
                .ok()
                .and_then(|b| vpd80_serial(&b))
        }) {
            r.attrs.insert("serial".into(), s);
        }
    }
    if let Some(d) = r.devnum {
        if let Ok(text) = fs::read_to_string(format!("{UDEV_DATA}/b{d}")) {
            (r.udev, r.devlinks) = parse_udev_db(&text);
        }
    }
    if r.attrs.contains_key("loop/backing_file") {
        // The backing file's identity from the kernel, not from its path.
        r.loop_backing = crate::blockdev::loop_backing_of(Path::new(&r.devnode))
            .ok()
            .flatten();
    }
    r.holders = dir_names(dir.join("holders"));
    for child in dir_names(&dir) {
        let cdir = dir.join(&child);
        let Some(number) = read_trim(cdir.join("partition")).and_then(|s| s.parse().ok()) else {
            continue;
        };
        let mut p = PartitionRecord {
            name: child.clone(),
            devnum: read_trim(cdir.join("dev")).and_then(|s| DevNum::parse(&s)),
            number,
            size_bytes: read_trim(cdir.join("size"))
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0)
                * 512,
            holders: dir_names(cdir.join("holders")),
            ..Default::default()
        };
        if probe {
            if let Ok(found) = blkid::probe(Path::new(&format!("/dev/{child}"))) {
                p.fs_type = found.fs_type;
                p.label = found.label;
                p.uuid = found.uuid;
            }
        }
        r.partitions.push(p);
    }
    r.partitions.sort_by_key(|p| p.number);
    if !probe {
        return Some(r);
    }
    match blkid::probe(Path::new(&r.devnode)) {
        Ok(found) => {
            r.partition_table = found.partition_table;
            r.fs_type = found.fs_type;
            for bp in &found.partitions {
                if let Some(p) = r.partitions.iter_mut().find(|p| p.number == bp.number) {
                    p.start_sector = Some(bp.start);
                    p.part_type = bp.type_name.clone();
                }
            }
            // A table entry the kernel has no node for (not re-read since it
            // was written): the operator should know before a wipe.
            let missing: Vec<String> = found
                .partitions
                .iter()
                .filter(|bp| !r.partitions.iter().any(|p| p.number == bp.number))
                .map(|bp| bp.number.to_string())
                .collect();
            if !missing.is_empty() {
                r.probe_error = Some(format!(
                    "the partition table lists partition(s) {} that the kernel has not loaded",
                    missing.join(", ")
                ));
            }
        }
        Err(e) => r.probe_error = Some(e.to_string()),
    }
    Some(r)
}

/// The `serial` attribute of the USB device above sysfs dir `dir`: the
/// nearest ancestor with `idVendor` (a USB device, not an interface).
fn usb_serial(dir: &Path) -> Option<String> {
    dir.ancestors()
        .take_while(|d| *d != Path::new("/sys/devices"))
        .find(|d| d.join("idVendor").exists())
        .and_then(|d| read_trim(d.join("serial")))
        .filter(|s| !s.trim().is_empty())
}

/// The product serial number of a Unit Serial Number VPD page (0x80):
/// 4-byte header, then `PAGE LENGTH` ASCII bytes, space padded.
pub fn vpd80_serial(page: &[u8]) -> Option<String> {
    if page.len() < 4 || page[1] != 0x80 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([page[2], page[3]]));
    let body = page.get(4..4 + len).unwrap_or(&page[4..]);
    let s: String = String::from_utf8_lossy(body)
        .trim_matches(|c: char| c.is_whitespace() || c == '\0')
        .to_string();
    (!s.is_empty()).then_some(s)
}

/// Whole-disk kernel names worth listing.
fn disk_names() -> Result<Vec<String>, DiscoveryError> {
    let rd = fs::read_dir(SYS_BLOCK).map_err(DiscoveryError::Sysfs)?;
    let mut names: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("ram"))
        // Per-path disks of NVMe multipath (nvme0c0n1) are hidden: no device
        // node; the namespace is listed through its head (nvme0n1).
        .filter(|n| read_trim(Path::new(SYS_BLOCK).join(n).join("hidden")).as_deref() != Some("1"))
        .filter(|n| !Path::new(SYS_BLOCK).join(n).join("partition").exists())
        .filter(|n| read_trim(Path::new(SYS_BLOCK).join(n).join("size")).is_some_and(|s| s != "0"))
        .collect();
    names.sort();
    Ok(names)
}

/// Whole disks (kernel names) under a device, through dm/md slaves,
/// partitions and loop devices (to the device holding the backing file).
fn disks_under(devnum: DevNum, depth: u32, out: &mut BTreeSet<String>) {
    let Ok(dir) = fs::canonicalize(format!("/sys/dev/block/{devnum}")) else {
        return;
    };
    if dir.join("loop").is_dir() && depth < 16 {
        let node = dir
            .file_name()
            .map(|n| format!("/dev/{}", n.to_string_lossy()));
        if let Some(b) = node.and_then(|n| {
            crate::blockdev::loop_backing_of(Path::new(&n))
                .ok()
                .flatten()
        }) {
            disks_under(b.block.unwrap_or(b.file.dev), depth + 1, out);
        }
    }
    let slaves = dir_names(dir.join("slaves"));
    if !slaves.is_empty() && depth < 16 {
        for s in slaves {
            if let Some(d) =
                read_trim(Path::new(SYS_BLOCK).join(&s).join("dev")).and_then(|x| DevNum::parse(&x))
            {
                disks_under(d, depth + 1, out);
            }
        }
        return;
    }
    let disk = if dir.join("partition").exists() {
        dir.parent().map(Path::to_path_buf)
    } else {
        Some(dir)
    };
    if let Some(name) = disk.and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned())) {
        out.insert(name);
    }
}

/// Whether the kernel refuses an exclusive open of `/dev/<name>` (EBUSY).
///
/// The handle is closed at once. Another discovery (another `lethe drives`,
/// blkid, udev's own probe) holds devices exclusively for a moment too, so
/// EBUSY counts only if it persists over a few short retries.
fn busy(name: &str) -> bool {
    let path = format!("/dev/{name}");
    for attempt in 0..4 {
        let r = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_EXCL | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(&path);
        match r {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                if attempt < 3 {
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
            }
            _ => return false,
        }
    }
    true
}

/// Mounts, swap, the disks under the system filesystems, and busy devices
/// among `records`.
pub fn facts(records: &[DeviceRecord]) -> SystemFacts {
    let mut f = SystemFacts {
        mounts: parse_mountinfo(&fs::read_to_string("/proc/self/mountinfo").unwrap_or_default()),
        ..Default::default()
    };
    for path in parse_swaps(&fs::read_to_string("/proc/swaps").unwrap_or_default()) {
        if let Ok(m) = fs::metadata(&path) {
            if m.file_type().is_block_device() {
                f.swaps.insert(devnum_of(&m));
            } else {
                // A swap file: the device holding it is in use as swap too.
                let dev = m.dev();
                f.swaps.insert(DevNum {
                    major: nix::sys::stat::major(dev) as u32,
                    minor: nix::sys::stat::minor(dev) as u32,
                });
            }
        }
    }
    for m in f.mounts.clone() {
        if !SYSTEM_MOUNTS.contains(&m.mountpoint.as_str()) {
            continue;
        }
        // btrfs and some others report an anonymous 0:N device: use the source.
        let devnum = if m.devnum.major == 0 {
            match fs::metadata(&m.source) {
                Ok(meta) if meta.file_type().is_block_device() => devnum_of(&meta),
                _ => continue,
            }
        } else {
            m.devnum
        };
        let mut disks = BTreeSet::new();
        disks_under(devnum, 0, &mut disks);
        let via = m.source.trim_start_matches("/dev/").to_string();
        for d in disks {
            f.system_disks
                .entry(d)
                .or_insert_with(|| (m.mountpoint.clone(), via.clone()));
        }
    }
    for r in records {
        for name in std::iter::once(&r.name).chain(r.partitions.iter().map(|p| &p.name)) {
            if busy(name) {
                f.busy.insert(name.clone());
            }
        }
    }
    f
}

/// Every whole block device, classified, with its protection verdict
/// (including what is stacked on it and other paths to the same disk).
pub fn discover() -> Result<Vec<Drive>, DiscoveryError> {
    let records: Vec<DeviceRecord> = disk_names()?.iter().filter_map(|n| record(n)).collect();
    let f = facts(&records);
    Ok(records
        .iter()
        .map(|r| inventory::assess_in(&records, &f, r))
        .collect())
}

/// Most devices gathered for one assessment: stacks deeper or wider than
/// this are refused ([`inventory::evaluate_in`] treats what is missing as in use).
const MAX_RELATED: usize = 64;

/// Whether one of `a`, `b` is a loop device bound to the other (or to one of
/// its partitions), or both are paths to one disk.
fn related(a: &DeviceRecord, b: &DeviceRecord) -> bool {
    let on = |upper: &DeviceRecord, lower: &DeviceRecord| {
        upper.loop_backing.and_then(|l| l.block).is_some_and(|d| {
            lower.devnum == Some(d) || lower.partitions.iter().any(|p| p.devnum == Some(d))
        })
    };
    on(a, b) || on(b, a) || inventory::same_disk(a, b).is_some()
}

/// `target` and every device whose use bears on it: loop devices stacked on
/// it (and on them), the device under it, other paths to the same disk, and
/// theirs in turn. Related devices get light records (no libblkid probe).
fn with_related(target: DeviceRecord) -> Vec<DeviceRecord> {
    let others: Vec<DeviceRecord> = disk_names()
        .unwrap_or_default()
        .iter()
        .filter(|n| **n != target.name)
        .filter_map(|n| record_with(n, false))
        .collect();
    let mut set = vec![target];
    loop {
        let before = set.len();
        for o in &others {
            if set.len() >= MAX_RELATED {
                break;
            }
            if !set.iter().any(|r| r.name == o.name) && set.iter().any(|r| related(r, o)) {
                set.push(o.clone());
            }
        }
        if set.len() == before {
            return set;
        }
    }
}

/// What a bay's `match` rule can see of whole disk `name`: its udev links
/// as full paths (`/dev/disk/by-path/…`, `/dev/disk/by-id/…`; none without
/// udev) and, for a loop device, its backing file's path as the kernel
/// reports it. Read-only, without a libblkid probe.
pub fn match_facts(name: &str) -> (Vec<String>, Option<String>) {
    match record_with(name, false) {
        Some(r) => (
            r.devlinks.iter().map(|l| format!("/dev/{l}")).collect(),
            r.attrs.get("loop/backing_file").cloned(),
        ),
        None => (Vec::new(), None),
    }
}

/// The classified record of whole disk `name` (e.g. after its hot-plug event).
pub fn drive(name: &str) -> Option<Drive> {
    let r = record(name)?;
    let f = facts(std::slice::from_ref(&r));
    Some(inventory::assess(&r, &f))
}

/// The device number of a device node.
fn devnum_of_node(path: &str) -> Option<DevNum> {
    fs::metadata(path).ok().map(|m| devnum_of(&m))
}

/// Decide whether `path` may be wiped, before anything opens it for writing.
pub fn assess_target(path: &Path) -> Result<TargetAssessment, Refusal> {
    let real = fs::canonicalize(path).map_err(|source| Refusal::Missing {
        path: path.into(),
        source,
    })?;
    let meta = fs::metadata(&real).map_err(|source| Refusal::Missing {
        path: path.into(),
        source,
    })?;
    if !meta.file_type().is_block_device() {
        return Err(Refusal::NotBlockDevice { path: path.into() });
    }
    let devnum = devnum_of(&meta);
    let sys =
        fs::canonicalize(format!("/sys/dev/block/{devnum}")).map_err(|_| Refusal::NoSysfs {
            path: path.into(),
            devnum,
        })?;
    let name = sys
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if sys.join("partition").exists() {
        let parent = sys
            .parent()
            .and_then(Path::file_name)
            .map(|n| format!("/dev/{}", n.to_string_lossy()))
            .unwrap_or_default();
        return Err(Refusal::Protected {
            path: path.into(),
            reasons: vec![ProtectReason::IsPartition { parent }],
        });
    }
    let rec = record(&name).ok_or(Refusal::NoSysfs {
        path: path.into(),
        devnum,
    })?;
    let records = with_related(rec.clone());
    let f = facts(&records);
    let mut drive = inventory::assess_in(&records, &f, &rec);
    if drive.protected {
        return Err(Refusal::Protected {
            path: path.into(),
            reasons: drive.reasons,
        });
    }
    // Report the path the operator used (e.g. a by-id link) as well as the node.
    drive.path = real.display().to_string();
    let identity = LiveIdentity::of(devnum, &drive, rec.loop_backing);
    Ok(TargetAssessment {
        drive,
        record: rec,
        identity,
    })
}

/// What identifies the device behind a device number: read at assessment,
/// and read again through the open file descriptor before anything is
/// written ([`crate::target::ExclusiveTarget`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LiveIdentity {
    pub devnum: DevNum,
    pub size_bytes: u64,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub wwn: Option<String>,
    /// For a loop device: its backing file (device and inode).
    pub loop_backing: Option<inventory::LoopBacking>,
}

impl LiveIdentity {
    fn of(devnum: DevNum, d: &Drive, loop_backing: Option<inventory::LoopBacking>) -> Self {
        Self {
            devnum,
            size_bytes: d.size_bytes,
            model: d.model.clone(),
            serial: d.serial.clone(),
            wwn: d.wwn.clone(),
            loop_backing,
        }
    }

    /// Read the identity of device `devnum` now, from sysfs and the udev
    /// database; `loop_backing` comes from the caller's open descriptor.
    pub fn read(
        devnum: DevNum,
        size_bytes: u64,
        loop_backing: Option<inventory::LoopBacking>,
    ) -> Option<Self> {
        let sys = fs::canonicalize(format!("/sys/dev/block/{devnum}")).ok()?;
        let name = sys.file_name()?.to_string_lossy().into_owned();
        let rec = record_with(&name, false)?;
        let d = inventory::classify(&rec);
        Some(Self {
            devnum,
            size_bytes,
            model: d.model,
            serial: d.serial,
            wwn: d.wwn,
            loop_backing,
        })
    }

    /// Why `now` is not the device `self` describes, if it is not.
    pub fn mismatch(&self, now: &LiveIdentity) -> Option<String> {
        let f = |what: &str, a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| {
            Some(format!("{what} was {a:?} when checked, {b:?} when opened"))
        };
        if self.devnum != now.devnum {
            return f(
                "device number",
                &self.devnum.to_string(),
                &now.devnum.to_string(),
            );
        }
        if self.size_bytes != now.size_bytes {
            return f("size", &self.size_bytes, &now.size_bytes);
        }
        if self.serial != now.serial {
            return f("serial", &self.serial, &now.serial);
        }
        if self.wwn != now.wwn {
            return f("WWN", &self.wwn, &now.wwn);
        }
        if self.model != now.model {
            return f("model", &self.model, &now.model);
        }
        if self.loop_backing != now.loop_backing {
            let show = |b: &Option<inventory::LoopBacking>| {
                b.map_or("nothing".to_string(), |b| b.file.to_string())
            };
            return f(
                "backing file",
                &show(&self.loop_backing),
                &show(&now.loop_backing),
            );
        }
        None
    }
}

#[cfg(test)]
mod tests;
