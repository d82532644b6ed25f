//! The seam between job bodies and the machine's devices.
//!
//! A job body never opens a device itself. It asks a [`DeviceHost`] to
//! assess a path and then to open what was assessed; the host hands back a
//! [`Target`], the only way to a writable device. On Linux that is
//! [`LinuxHost`], whose targets are `lethe_linux::target::ExclusiveTarget`s
//! (assessment, `O_EXCL`, same device number, same identity). Tests use the
//! scripted `FakeHost` (feature `testkit`) with one fake device per edge case.

use crate::identity::DeviceIdentity;
use crate::refusal::Refusal;
use lethe_cmds::io::DriveIo;
use lethe_core::device::BlockDevice;
use lethe_linux::blockdev::OpenError;
use lethe_linux::target::TargetError;
use lethe_purge::Clock as DriveClock;
use std::any::Any;
use std::path::{Path, PathBuf};

/// A device that passed assessment, not opened yet.
pub struct Assessed {
    /// The device node (the path the operator gave, resolved).
    pub node: PathBuf,
    /// What the assessment found.
    pub identity: DeviceIdentity,
    /// The host's own record of the assessment, handed back to [`DeviceHost::open`].
    pub detail: Box<dyn Any + Send>,
}

impl std::fmt::Debug for Assessed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assessed")
            .field("node", &self.node)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// A device held for writing: assessed, opened exclusively, and found to be
/// the device assessed.
pub trait Target: Send + Sync {
    /// The block device to write and read back.
    fn device(&self) -> &dyn BlockDevice;
    /// The identity read after the open.
    fn identity(&self) -> &DeviceIdentity;
    /// The drive's command pass-through, for a drive-native purge.
    fn pass_through(&self) -> PassThrough;
}

/// How commands reach a drive, and how its long commands are timed.
pub struct PassThrough {
    /// `None` when the device has no pass-through (loop, virtio…): why not.
    pub io: Result<Box<dyn DriveIo>, String>,
    /// NVMe namespace id, for NVMe drives.
    pub nsid: Option<u32>,
    /// The clock the purge runner polls and waits with.
    pub clock: Box<dyn DriveClock + Send>,
    /// NVMe: every namespace of the drive's NVM subsystem and whether it is
    /// in use, so that no command reaching other namespaces erases one in
    /// use. `None`: not NVMe, or not listable (then no such command is sent).
    pub nvme_namespaces: Option<Vec<lethe_purge::NamespaceInfo>>,
}

/// The machine's block devices, as the job library uses them.
pub trait DeviceHost: Send + Sync {
    /// Decide whether `path` may be overwritten, before anything opens it
    /// for writing: its identity, or the refusal.
    fn assess(&self, path: &Path) -> Result<Assessed, Refusal>;
    /// Open what was assessed, exclusively, and check it is still that device.
    fn open(&self, assessed: Assessed) -> Result<Box<dyn Target>, Refusal>;
}

/// The Linux host: `lethe-linux` assessment and exclusive targets, the
/// kernel's pass-through for drive commands, and the system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxHost;

struct LinuxTarget {
    t: lethe_linux::target::ExclusiveTarget,
    identity: DeviceIdentity,
}

fn identity_of(
    d: &lethe_core::inventory::Drive,
    live: &lethe_linux::discovery::LiveIdentity,
) -> DeviceIdentity {
    DeviceIdentity::of(d, live.loop_backing.map(|b| b.file))
}

fn refusal(r: lethe_linux::discovery::Refusal) -> Refusal {
    match r {
        lethe_linux::discovery::Refusal::Protected { path, reasons } => Refusal::Protected {
            device: path.display().to_string(),
            reasons,
        },
        other => Refusal::Target(other.to_string()),
    }
}

impl DeviceHost for LinuxHost {
    fn assess(&self, path: &Path) -> Result<Assessed, Refusal> {
        let a = lethe_linux::discovery::assess_target(path).map_err(refusal)?;
        Ok(Assessed {
            node: PathBuf::from(&a.drive.path),
            identity: identity_of(&a.drive, &a.identity),
            detail: Box::new(a),
        })
    }

    fn open(&self, assessed: Assessed) -> Result<Box<dyn Target>, Refusal> {
        let a = assessed
            .detail
            .downcast::<lethe_linux::discovery::TargetAssessment>()
            .map_err(|_| Refusal::Target("assessment from another host".into()))?;
        let t = lethe_linux::target::ExclusiveTarget::open(*a).map_err(|e| match e {
            TargetError::Refused(r) => refusal(r),
            TargetError::Open(OpenError::Busy { path }) => Refusal::Busy {
                device: path.display().to_string(),
            },
            TargetError::Changed { path, why } => Refusal::Changed {
                device: path.display().to_string(),
                why,
            },
            e => Refusal::Target(e.to_string()),
        })?;
        let identity = identity_of(t.drive(), t.identity());
        Ok(Box::new(LinuxTarget { t, identity }))
    }
}

impl Target for LinuxTarget {
    fn device(&self) -> &dyn BlockDevice {
        &self.t
    }

    fn identity(&self) -> &DeviceIdentity {
        &self.identity
    }

    fn pass_through(&self) -> PassThrough {
        use lethe_linux::passthrough::drive::LinuxDrive;
        let node = self.t.path();
        let clock = Box::new(lethe_purge::SystemClock::default());
        let (io, nsid): (Result<Box<dyn DriveIo>, String>, Option<u32>) =
            match self.identity.transport.as_str() {
                "nvme" => match LinuxDrive::open_nvme(node, Path::new("/sys"), Path::new("/dev")) {
                    Ok(d) => {
                        let nsid = d.nsid();
                        (Ok(Box::new(d)), nsid)
                    }
                    Err(e) => (Err(format!("no NVMe controller handle: {e}")), None),
                },
                "sata" | "ata" | "sas" | "scsi" | "usb" => match LinuxDrive::open_block(node) {
                    Ok(d) => (Ok(Box::new(d)), None),
                    Err(e) => (Err(format!("pass-through unavailable: {e}")), None),
                },
                t => (
                    Err(format!(
                        "{t} devices have no drive-native sanitize commands"
                    )),
                    None,
                ),
            };
        let nvme_namespaces = (self.identity.transport == "nvme")
            .then(|| nvme_scope(node))
            .flatten();
        PassThrough {
            io,
            nsid,
            clock,
            nvme_namespaces,
        }
    }
}

/// NVMe: every namespace of the subsystem of `node` with its protection.
fn nvme_scope(node: &Path) -> Option<Vec<lethe_purge::NamespaceInfo>> {
    let real = std::fs::canonicalize(node).unwrap_or_else(|_| node.to_path_buf());
    let name = real.file_name()?.to_string_lossy().into_owned();
    lethe_linux::passthrough::nvme_scope::subsystem_scope(Path::new("/sys"), &name)
        .ok()
        .map(|list| {
            list.into_iter()
                .map(|n| lethe_purge::NamespaceInfo {
                    name: n.name,
                    nsid: n.nsid,
                    protected: n.protected,
                })
                .collect()
        })
}
