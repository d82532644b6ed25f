//! Drive inventory: from plain records of what the system says about a block
//! device to a classified [`Drive`] with a protection verdict.
//!
//! The Linux layer (`lethe-linux::discovery`) reads sysfs, the udev database
//! and libblkid into [`DeviceRecord`]s and the mount/swap/holder state into
//! [`SystemFacts`]; everything here is pure so that snapshots from real
//! machines can be used as test fixtures.
//!
//! `lethe drives --json` prints [`Drive`] values; their field names are stable:
//! `path`, `name`, `stable_id`, `transport`, `vendor`, `model`, `serial`,
//! `firmware`, `wwn`, `size_bytes`, `logical_sector`, `physical_sector`,
//! `rotational`, `removable`, `read_only`, `media_type`, `partition_table`,
//! `signatures`, `partitions` (`name`, `number`, `size_bytes`, `fs_type`,
//! `label`, `uuid`), `protected`, `reasons`, `warnings`.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A device number, `major:minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DevNum {
    pub major: u32,
    pub minor: u32,
}

impl DevNum {
    /// Parse `"8:16"`.
    pub fn parse(s: &str) -> Option<Self> {
        let (a, b) = s.trim().split_once(':')?;
        Some(Self {
            major: a.parse().ok()?,
            minor: b.parse().ok()?,
        })
    }
}

impl fmt::Display for DevNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// One partition of a device, as the system reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    pub name: String,
    pub devnum: Option<DevNum>,
    pub number: u32,
    pub size_bytes: u64,
    pub fs_type: Option<String>,
    pub label: Option<String>,
    pub uuid: Option<String>,
    /// Kernel names holding this partition (dm-0, md127…).
    pub holders: Vec<String>,
}

/// A plain snapshot of one whole block device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// Kernel name: sda, nvme0n1, loop3.
    pub name: String,
    pub devnode: String,
    pub devnum: Option<DevNum>,
    /// Resolved sysfs path below /sys, e.g. `/devices/pci0000:00/…/block/sda`.
    pub sys_path: String,
    /// sysfs attributes relative to the device directory (`size`,
    /// `queue/rotational`, `device/model`, `loop/backing_file`…).
    pub attrs: BTreeMap<String, String>,
    /// udev properties (empty when udev does not run).
    pub udev: BTreeMap<String, String>,
    /// udev symlinks (`S:` lines), without the `/dev/` prefix.
    pub devlinks: Vec<String>,
    pub partitions: Vec<PartitionRecord>,
    /// libblkid results for the whole device: partition table type and any
    /// filesystem/RAID/LVM signature on the raw device.
    pub partition_table: Option<String>,
    pub fs_type: Option<String>,
    pub holders: Vec<String>,
    /// Why blkid could not probe the device, if it could not.
    pub probe_error: Option<String>,
}

/// How a device is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Sata,
    Sas,
    Scsi,
    Nvme,
    Usb,
    Mmc,
    Virtio,
    Loop,
    Zram,
    DeviceMapper,
    Md,
    Unknown,
}

impl Transport {
    pub fn as_str(&self) -> &'static str {
        match self {
            Transport::Sata => "sata",
            Transport::Sas => "sas",
            Transport::Scsi => "scsi",
            Transport::Nvme => "nvme",
            Transport::Usb => "usb",
            Transport::Mmc => "mmc",
            Transport::Virtio => "virtio",
            Transport::Loop => "loop",
            Transport::Zram => "zram",
            Transport::DeviceMapper => "dm",
            Transport::Md => "md",
            Transport::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a device must not be touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum ProtectReason {
    /// It holds a filesystem the running system needs (/, /boot, /usr…).
    SystemDisk {
        mountpoint: String,
        via: String,
    },
    Mounted {
        by: String,
        mountpoint: String,
    },
    Swap {
        by: String,
    },
    HeldBy {
        by: String,
        holders: Vec<String>,
    },
    /// Another process has it open exclusively.
    InUse {
        by: String,
    },
    ReadOnly,
    IsPartition {
        parent: String,
    },
    /// A device-mapper or md device: wipe its member disks instead.
    Virtual {
        kind: String,
    },
}

impl fmt::Display for ProtectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtectReason::SystemDisk { mountpoint, via } => {
                write!(f, "holds the system filesystem {mountpoint} (via {via})")
            }
            ProtectReason::Mounted { by, mountpoint } => {
                write!(f, "{by} is mounted at {mountpoint}")
            }
            ProtectReason::Swap { by } => write!(f, "{by} is in use as swap"),
            ProtectReason::HeldBy { by, holders } => {
                write!(
                    f,
                    "{by} is held by {} (md/dm/LVM member)",
                    holders.join(", ")
                )
            }
            ProtectReason::InUse { by } => {
                write!(f, "{by} is in use (opened exclusively by another program)")
            }
            ProtectReason::ReadOnly => f.write_str("the device is read-only"),
            ProtectReason::IsPartition { parent } => {
                write!(
                    f,
                    "it is a partition of {parent}; lethe wipes whole devices only"
                )
            }
            ProtectReason::Virtual { kind } => {
                write!(
                    f,
                    "it is a {kind} device; wipe the physical member disks instead"
                )
            }
        }
    }
}

impl ProtectReason {
    /// A few words for the table.
    pub fn short(&self) -> &'static str {
        match self {
            ProtectReason::SystemDisk { .. } => "system",
            ProtectReason::Mounted { .. } => "mounted",
            ProtectReason::Swap { .. } => "swap",
            ProtectReason::HeldBy { .. } => "held",
            ProtectReason::InUse { .. } => "in-use",
            ProtectReason::ReadOnly => "read-only",
            ProtectReason::IsPartition { .. } => "partition",
            ProtectReason::Virtual { .. } => "virtual",
        }
    }
}

/// One line of /proc/self/mountinfo that matters here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountEntry {
    pub devnum: DevNum,
    pub mountpoint: String,
    pub fs_type: String,
    pub source: String,
}

/// The state of the running system that decides protection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemFacts {
    pub mounts: Vec<MountEntry>,
    /// Device numbers of active swap devices and of the devices under swap files.
    pub swaps: BTreeSet<DevNum>,
    /// Whole-disk kernel name → (system mountpoint, device that carries it),
    /// resolved through partitions and dm/md slaves by the Linux layer.
    pub system_disks: BTreeMap<String, (String, String)>,
    /// Kernel names (disks or partitions) that refused an `O_EXCL` open.
    pub busy: BTreeSet<String>,
}

/// Mountpoints whose loss would break the running system.
pub const SYSTEM_MOUNTS: &[&str] = &["/", "/boot", "/boot/efi", "/efi", "/usr", "/var", "/home"];

/// A partition as shown to the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionInfo {
    pub name: String,
    pub number: u32,
    pub size_bytes: u64,
    pub fs_type: Option<String>,
    pub label: Option<String>,
    pub uuid: Option<String>,
}

/// A classified whole device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drive {
    pub path: String,
    pub name: String,
    pub stable_id: Option<String>,
    pub transport: Transport,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub firmware: Option<String>,
    pub wwn: Option<String>,
    pub size_bytes: u64,
    pub logical_sector: u32,
    pub physical_sector: u32,
    pub rotational: Option<bool>,
    pub removable: Option<bool>,
    pub read_only: bool,
    /// magnetic, flash or unknown.
    pub media_type: String,
    pub partition_table: Option<String>,
    /// Signatures found on the raw device (filesystem, RAID or LVM).
    pub signatures: Vec<String>,
    pub partitions: Vec<PartitionInfo>,
    pub protected: bool,
    pub reasons: Vec<ProtectReason>,
    /// Things the operator should know that do not block a wipe.
    pub warnings: Vec<String>,
}

fn clean(s: Option<&String>) -> Option<String> {
    let t = s?.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// Transport from udev (preferred) or the sysfs path.
pub fn transport(r: &DeviceRecord) -> Transport {
    let p = r.sys_path.as_str();
    if r.name.starts_with("loop") || p.contains("/virtual/block/loop") {
        return Transport::Loop;
    }
    if r.name.starts_with("zram") {
        return Transport::Zram;
    }
    if r.name.starts_with("dm-") {
        return Transport::DeviceMapper;
    }
    if r.name.starts_with("md") && p.contains("/virtual/") {
        return Transport::Md;
    }
    let bus = r.udev.get("ID_BUS").map(String::as_str);
    let id_path = r.udev.get("ID_PATH").map(String::as_str).unwrap_or("");
    if bus == Some("usb") || p.contains("/usb") {
        return Transport::Usb;
    }
    if r.name.starts_with("nvme") || p.contains("/nvme/") || bus == Some("nvme") {
        return Transport::Nvme;
    }
    if r.name.starts_with("mmcblk") || p.contains("/mmc_host/") {
        return Transport::Mmc;
    }
    if r.name.starts_with("vd") || p.contains("/virtio") {
        return Transport::Virtio;
    }
    if id_path.contains("-sas-") || p.contains("/end_device-") || p.contains("/expander-") {
        return Transport::Sas;
    }
    if bus == Some("ata") || p.contains("/ata") {
        return Transport::Sata;
    }
    if bus == Some("scsi") || p.contains("/host") {
        return Transport::Scsi;
    }
    Transport::Unknown
}

/// udev's own escaping for `/dev/disk/by-id` names: spaces become `_`.
fn by_id_part(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| {
            if c.is_whitespace() || c == '/' {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// Vendor from the model string of ATA drives (libata reports vendor "ATA").
fn vendor_from_model(model: &str) -> Option<String> {
    const PREFIXES: &[(&str, &str)] = &[
        ("WDC", "Western Digital"),
        ("ST", "Seagate"),
        ("Samsung", "Samsung"),
        ("SAMSUNG", "Samsung"),
        ("TOSHIBA", "Toshiba"),
        ("HGST", "HGST"),
        ("Hitachi", "Hitachi"),
        ("INTEL", "Intel"),
        ("Crucial", "Crucial"),
        ("CT", "Crucial"),
        ("KINGSTON", "Kingston"),
        ("Micron", "Micron"),
        ("MTFD", "Micron"),
        ("SanDisk", "SanDisk"),
        ("FUJITSU", "Fujitsu"),
        ("Maxtor", "Maxtor"),
        ("QEMU", "QEMU"),
    ];
    let first = model.split_whitespace().next()?;
    PREFIXES
        .iter()
        .find(|(p, _)| first.starts_with(p))
        .map(|(_, v)| v.to_string())
}

/// Classify a record (identity only; protection comes from [`evaluate`]).
pub fn classify(r: &DeviceRecord) -> Drive {
    let t = transport(r);
    let attr = |k: &str| clean(r.attrs.get(k));
    let prop = |k: &str| clean(r.udev.get(k));
    let model = prop("ID_MODEL")
        .map(|m| m.replace('_', " "))
        .or_else(|| attr("device/model"));
    let serial = prop("ID_SERIAL_SHORT")
        .or_else(|| attr("device/serial"))
        .or_else(|| attr("serial"));
    let firmware = prop("ID_REVISION")
        .or_else(|| attr("device/firmware_rev"))
        .or_else(|| attr("device/rev"));
    let wwn = prop("ID_WWN_WITH_EXTENSION")
        .or_else(|| prop("ID_WWN"))
        .or_else(|| attr("wwid").filter(|w| w.starts_with("naa.") || w.starts_with("eui.")))
        .or_else(|| attr("device/wwid").filter(|w| w.starts_with("naa.") || w.starts_with("eui.")));
    let mut vendor = prop("ID_VENDOR").or_else(|| attr("device/vendor"));
    if vendor.as_deref().is_some_and(|v| v == "ATA") || vendor.is_none() {
        vendor = model
            .as_deref()
            .and_then(vendor_from_model)
            .or(vendor.filter(|v| v != "ATA"));
    }
    let size = attr("size")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0)
        * 512;
    let logical = attr("queue/logical_block_size")
        .and_then(|s| s.parse().ok())
        .unwrap_or(512);
    let physical = attr("queue/physical_block_size")
        .and_then(|s| s.parse().ok())
        .unwrap_or(logical);
    let rotational = attr("queue/rotational").map(|s| s == "1");
    let removable = attr("removable").map(|s| s == "1");
    let read_only = attr("ro").is_some_and(|s| s == "1");
    let media_type = match (t, rotational) {
        (Transport::Loop | Transport::Zram | Transport::DeviceMapper | Transport::Md, _) => {
            "unknown"
        }
        (Transport::Virtio, _) => "unknown",
        (_, Some(true)) => "magnetic",
        (_, Some(false)) => "flash",
        (_, None) => "unknown",
    };
    let stable_id = stable_id(r, t, model.as_deref(), serial.as_deref(), wwn.as_deref());
    let mut signatures = Vec::new();
    if let Some(fs) = &r.fs_type {
        signatures.push(fs.clone());
    }
    let mut warnings = Vec::new();
    for sig in signatures
        .iter()
        .chain(r.partitions.iter().filter_map(|p| p.fs_type.as_ref()))
    {
        if matches!(
            sig.as_str(),
            "linux_raid_member"
                | "LVM2_member"
                | "zfs_member"
                | "ddf_raid_member"
                | "isw_raid_member"
        ) && r.holders.is_empty()
        {
            warnings.push(format!(
                "carries a {sig} signature but is not assembled on this machine"
            ));
        }
    }
    if let Some(e) = &r.probe_error {
        warnings.push(format!("partition/filesystem probe failed: {e}"));
    }
    Drive {
        path: if r.devnode.is_empty() {
            format!("/dev/{}", r.name)
        } else {
            r.devnode.clone()
        },
        name: r.name.clone(),
        stable_id,
        transport: t,
        vendor,
        model,
        serial,
        firmware,
        wwn,
        size_bytes: size,
        logical_sector: logical,
        physical_sector: physical,
        rotational,
        removable,
        read_only,
        media_type: media_type.into(),
        partition_table: r.partition_table.clone(),
        signatures,
        partitions: r
            .partitions
            .iter()
            .map(|p| PartitionInfo {
                name: p.name.clone(),
                number: p.number,
                size_bytes: p.size_bytes,
                fs_type: p.fs_type.clone(),
                label: p.label.clone(),
                uuid: p.uuid.clone(),
            })
            .collect(),
        protected: false,
        reasons: Vec::new(),
        warnings,
    }
}

fn stable_id(
    r: &DeviceRecord,
    t: Transport,
    model: Option<&str>,
    serial: Option<&str>,
    wwn: Option<&str>,
) -> Option<String> {
    // udev's own links, most specific first.
    let pick = |prefix: &str| {
        r.devlinks
            .iter()
            .filter_map(|l| l.strip_prefix("disk/by-id/"))
            .find(|l| l.starts_with(prefix) && !l.contains("-part"))
            .map(str::to_string)
    };
    for prefix in [
        "ata-", "nvme-eui", "nvme-", "scsi-", "usb-", "mmc-", "virtio-", "wwn-",
    ] {
        if let Some(l) = pick(prefix) {
            return Some(l);
        }
    }
    let ms = |pre: &str| match (model, serial) {
        (Some(m), Some(s)) => Some(format!("{pre}-{}_{}", by_id_part(m), by_id_part(s))),
        _ => None,
    };
    match t {
        Transport::Sata => ms("ata"),
        Transport::Nvme => ms("nvme"),
        Transport::Usb => ms("usb"),
        Transport::Mmc => ms("mmc"),
        Transport::Virtio => serial.map(|s| format!("virtio-{}", by_id_part(s))),
        Transport::Loop => r
            .attrs
            .get("loop/backing_file")
            .map(|b| format!("loop-backing:{}", b.trim())),
        _ => wwn.map(|w| format!("wwn-{w}")).or_else(|| ms("scsi")),
    }
}

/// Decide protection of a classified drive from the system's state.
pub fn evaluate(r: &DeviceRecord, facts: &SystemFacts) -> Vec<ProtectReason> {
    let mut reasons = Vec::new();
    if let Some((mp, via)) = facts.system_disks.get(&r.name) {
        reasons.push(ProtectReason::SystemDisk {
            mountpoint: mp.clone(),
            via: via.clone(),
        });
    }
    let members = std::iter::once((r.name.as_str(), r.devnum, &r.holders)).chain(
        r.partitions
            .iter()
            .map(|p| (p.name.as_str(), p.devnum, &p.holders)),
    );
    for (name, devnum, holders) in members {
        if let Some(d) = devnum {
            for m in facts.mounts.iter().filter(|m| m.devnum == d) {
                reasons.push(ProtectReason::Mounted {
                    by: name.to_string(),
                    mountpoint: m.mountpoint.clone(),
                });
            }
            if facts.swaps.contains(&d) {
                reasons.push(ProtectReason::Swap {
                    by: name.to_string(),
                });
            }
        }
        if !holders.is_empty() {
            reasons.push(ProtectReason::HeldBy {
                by: name.to_string(),
                holders: holders.clone(),
            });
        }
        if facts.busy.contains(name) && !reasons.iter().any(|x| matches!(x, ProtectReason::Mounted { by, .. } | ProtectReason::Swap { by } | ProtectReason::HeldBy { by, .. } if by == name)) {
            reasons.push(ProtectReason::InUse { by: name.to_string() });
        }
    }
    if r.attrs.get("ro").is_some_and(|v| v.trim() == "1") {
        reasons.push(ProtectReason::ReadOnly);
    }
    match transport(r) {
        Transport::DeviceMapper => reasons.push(ProtectReason::Virtual {
            kind: "device-mapper".into(),
        }),
        Transport::Md => reasons.push(ProtectReason::Virtual {
            kind: "md RAID".into(),
        }),
        _ => {}
    }
    reasons
}

/// Classify and evaluate in one go.
pub fn assess(r: &DeviceRecord, facts: &SystemFacts) -> Drive {
    let mut d = classify(r);
    d.reasons = evaluate(r, facts);
    d.protected = !d.reasons.is_empty();
    d
}

/// Parse a udev database file (`/run/udev/data/bMAJ:MIN`): `E:KEY=VALUE`
/// properties and `S:link` symlinks; other lines are ignored.
pub fn parse_udev_db(text: &str) -> (BTreeMap<String, String>, Vec<String>) {
    let mut props = BTreeMap::new();
    let mut links = Vec::new();
    for line in text.lines() {
        if let Some(kv) = line.strip_prefix("E:") {
            if let Some((k, v)) = kv.split_once('=') {
                props.insert(k.to_string(), v.to_string());
            }
        } else if let Some(l) = line.strip_prefix("S:") {
            if !l.is_empty() {
                links.push(l.to_string());
            }
        }
    }
    (props, links)
}

/// Undo mountinfo's octal escapes (`\040` for space, `\011`, `\012`, `\134`).
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = (oct[0] - b'0') as u32 * 64
                    + (oct[1] - b'0') as u32 * 8
                    + (oct[2] - b'0') as u32;
                if let Ok(byte) = u8::try_from(v) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse /proc/self/mountinfo. Lines that do not parse are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let devnum = DevNum::parse(fields.get(2)?)?;
            let mountpoint = unescape_octal(fields.get(4)?);
            // Optional fields end at "-"; fs type and source follow it.
            let dash = fields.iter().position(|f| *f == "-")?;
            let fs_type = fields.get(dash + 1)?.to_string();
            let source = unescape_octal(fields.get(dash + 2).copied().unwrap_or(""));
            Some(MountEntry {
                devnum,
                mountpoint,
                fs_type,
                source,
            })
        })
        .collect()
}

/// Parse /proc/swaps into the swap areas' paths (header skipped).
pub fn parse_swaps(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(unescape_octal)
        .collect()
}

/// Bytes in binary units for tables: `256.0 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The `lethe drives` table.
pub fn render_table(drives: &[Drive]) -> String {
    let header = [
        "PATH",
        "TRANSPORT",
        "MODEL",
        "SERIAL",
        "SIZE",
        "ROT",
        "RM",
        "PARTS/FS",
        "PROTECTED",
    ];
    let yn = |b: Option<bool>| match b {
        Some(true) => "yes",
        Some(false) => "no",
        None => "-",
    };
    let rows: Vec<[String; 9]> = drives
        .iter()
        .map(|d| {
            let mut fs: Vec<String> = d.signatures.clone();
            for p in &d.partitions {
                fs.push(format!(
                    "{}:{}",
                    p.number,
                    p.fs_type.as_deref().unwrap_or("-")
                ));
            }
            let parts = match (&d.partition_table, fs.is_empty()) {
                (Some(pt), _) => format!("{pt} {}", fs.join(",")),
                (None, true) => "-".into(),
                (None, false) => fs.join(","),
            };
            let mut why: Vec<&str> = d.reasons.iter().map(ProtectReason::short).collect();
            why.dedup();
            [
                d.path.clone(),
                d.transport.to_string(),
                d.model.clone().unwrap_or_else(|| "-".into()),
                d.serial.clone().unwrap_or_else(|| "-".into()),
                human_size(d.size_bytes),
                yn(d.rotational).into(),
                yn(d.removable).into(),
                parts.trim().to_string(),
                if d.protected {
                    format!("YES ({})", why.join(","))
                } else {
                    "no".into()
                },
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(&header.map(String::from));
    for r in &rows {
        line(r);
    }
    out
}

#[cfg(test)]
mod tests;
