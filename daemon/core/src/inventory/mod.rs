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
//! `signatures`, `partitions` (`name`, `number`, `size_bytes`,
//! `start_sector`, `part_type`, `fs_type`, `label`, `uuid`), `protected`, `reasons`, `warnings`.
//! `transport` is one of `sata`, `sas`, `scsi`, `nvme`, `usb`, `mmc`,
//! `virtio`, `loop`, `zram`, `device_mapper`, `md`, `unknown`; `media_type` is
//! `magnetic`, `flash` or `unknown`; sizes are bytes. Each entry of `reasons`
//! is an object tagged by `reason`: `system_disk` {`mountpoint`, `via`},
//! `mounted` {`by`, `mountpoint`}, `swap` {`by`}, `held_by` {`by`,
//! `holders`}, `in_use` {`by`}, `read_only`, `is_partition` {`parent`},
//! `virtual` {`kind`}, and the reasons that come from another device built on
//! or under this one, each carrying that device's own `reasons`: `stacked`
//! {`upper`, `on`, `reasons`} (a loop device over this disk or one of its
//! partitions is in use), `backed_by` {`lower`, `reasons`} (this loop device
//! sits on a protected block device) and `other_path` {`path`, `matched`,
//! `reasons`} (another path to the same physical disk, matched by WWN or
//! serial, is protected). `stable_id` is a `/dev/disk/by-id` name (udev's own link
//! when udev runs, otherwise synthesized as udev's rules would) or
//! `loop-backing:<file>`, `null` when nothing stable exists.
//!
//! Submodules: `classify` (transport, identity, by-id names), `protect`
//! (why a device must not be touched), `parse` (udev database, mountinfo,
//! swaps) and `render` (the `lethe drives` table).

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

mod classify;
mod parse;
mod protect;
mod render;

pub use classify::{classify, transport};
#[cfg(test)]
use classify::{mmc_vendor, scsi_instance, wwn_link};
pub use parse::{parse_mountinfo, parse_swaps, parse_udev_db};
pub use protect::{assess, assess_in, evaluate, evaluate_in, same_disk, ProtectReason};
pub use render::{human_size, render_table};

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
    /// From the partition table (libblkid): first 512-byte sector, and the
    /// GPT type GUID or MBR type byte (`0x83`).
    #[serde(default)]
    pub start_sector: Option<u64>,
    #[serde(default)]
    pub part_type: Option<String>,
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
    /// For a bound loop device: the identity of its backing file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loop_backing: Option<LoopBacking>,
}

/// What a loop device is bound to, as the kernel reports it
/// (`LOOP_GET_STATUS64`): the backing file's identity, whatever its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoopBacking {
    /// The file: the device of the filesystem holding it, and its inode.
    pub file: FileId,
    /// When the backing file is a block device node (a loop stacked on a
    /// disk, a partition or another loop device): that device's number.
    pub block: Option<DevNum>,
}

/// A file's identity: `st_dev` and `st_ino`. A path can be renamed or
/// replaced; this cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileId {
    pub dev: DevNum,
    pub ino: u64,
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "inode {} on device {}", self.ino, self.dev)
    }
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
    pub start_sector: Option<u64>,
    pub part_type: Option<String>,
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

#[cfg(test)]
mod tests;
