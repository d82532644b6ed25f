//! A scripted [`DeviceHost`] for tests (feature `testkit`): in-memory disks
//! and software-model drives, each with the edge case it plays.
//!
//! Every fake device counts the writes it receives, so a test of a refusal
//! can prove that nothing was written, and can be told to misbehave at the
//! exact step the Linux host guards: refused at assessment (protected,
//! mounted, stacked…), busy at the exclusive open (mounted since the check),
//! or a different device after the open (swapped while a prompt waited).

use crate::host::{Assessed, DeviceHost, PassThrough, Target};
use crate::identity::DeviceIdentity;
use crate::refusal::Refusal;
use lethe_cmds::ata::{AtaCommand, AtaRegisters};
use lethe_cmds::io::{DriveIo, DriveIoError, ScsiReply};
use lethe_cmds::nvme::{NvmeAdminCmd, NvmeCompletion};
use lethe_cmds::scsi::ScsiCdb;
use lethe_core::device::{BlockDevice, Geometry, IoFault};
use lethe_sim::{SimClock, SimDrive};
use lethe_wipe::testdev::MemDevice;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What a fake device stores.
#[derive(Clone)]
pub enum Medium {
    /// Plain memory: no drive commands.
    Memory(Arc<MemDevice>),
    /// Any block device (a fault-injecting one, say): no drive commands.
    Block(Arc<dyn BlockDevice>),
    /// A software SATA/SAS/NVMe drive with its command set.
    Drive(Arc<SimDrive>),
}

impl Medium {
    fn block(&self) -> &dyn BlockDevice {
        match self {
            Medium::Memory(m) => m.as_ref(),
            Medium::Block(b) => b.as_ref(),
            Medium::Drive(d) => d.as_ref(),
        }
    }
}

/// One fake device and the edge case it plays.
#[derive(Clone)]
pub struct FakeDisk {
    /// What assessment reports (and, unless `after_open` says otherwise, the open).
    pub identity: DeviceIdentity,
    pub medium: Medium,
    /// Assessment refuses the device as protected, in use for this reason.
    pub refused: Option<String>,
    /// The exclusive open fails: something claimed the device since the check.
    pub busy_at_open: bool,
    /// The device found after the open, when it is not the assessed one.
    pub after_open: Option<DeviceIdentity>,
    /// Delay every write by this much (so a test can stop a job midway).
    pub slow_writes: std::time::Duration,
    writes: Arc<AtomicU64>,
}

impl FakeDisk {
    /// An in-memory disk of `size` bytes filled with 0xEE.
    pub fn memory(identity: DeviceIdentity, size: u64) -> Self {
        Self::with(
            identity,
            Medium::Memory(Arc::new(MemDevice::new(size, 512))),
        )
    }

    /// Any block device, e.g. one that injects faults.
    pub fn block(identity: DeviceIdentity, dev: Arc<dyn BlockDevice>) -> Self {
        Self::with(identity, Medium::Block(dev))
    }

    /// A software drive; its identity follows its configuration.
    pub fn drive(d: SimDrive, path: &str) -> Self {
        let g = d.geometry();
        let c = d.config();
        let identity = DeviceIdentity {
            path: path.into(),
            stable_id: None,
            transport: match c.kind {
                lethe_sim::SimKind::Sata => "sata",
                lethe_sim::SimKind::Sas => "sas",
                lethe_sim::SimKind::Nvme => "nvme",
            }
            .into(),
            manufacturer: None,
            model: Some(c.model.clone()),
            serial: Some(c.serial.clone()),
            wwn: None,
            firmware: None,
            size_bytes: g.size_bytes,
            logical_sector: g.logical_sector,
            physical_sector: g.physical_sector,
            rotational: Some(c.rotational),
            removable: Some(false),
            media_type: if c.rotational { "magnetic" } else { "flash" }.into(),
            backing: None,
        };
        Self::with(identity, Medium::Drive(Arc::new(d)))
    }

    fn with(identity: DeviceIdentity, medium: Medium) -> Self {
        Self {
            identity,
            medium,
            refused: None,
            busy_at_open: false,
            after_open: None,
            slow_writes: std::time::Duration::ZERO,
            writes: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Writes the device received.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// The stored bytes (in-memory disks only).
    pub fn contents(&self) -> Option<Vec<u8>> {
        match &self.medium {
            Medium::Memory(m) => Some(m.contents()),
            Medium::Block(_) | Medium::Drive(_) => None,
        }
    }
}

/// A device host made of [`FakeDisk`]s, keyed by path.
#[derive(Default, Clone)]
pub struct FakeHost {
    disks: Arc<Mutex<BTreeMap<PathBuf, FakeDisk>>>,
}

impl FakeHost {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add (or replace) the device at `path`; returns a handle on it.
    pub fn add(&self, path: impl Into<PathBuf>, disk: FakeDisk) -> FakeDisk {
        let path = path.into();
        self.lock().insert(path, disk.clone());
        disk
    }

    /// Change the device at `path` (e.g. swap it) between two steps.
    pub fn update(&self, path: &Path, f: impl FnOnce(&mut FakeDisk)) {
        if let Some(d) = self.lock().get_mut(path) {
            f(d);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<PathBuf, FakeDisk>> {
        self.disks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl DeviceHost for FakeHost {
    fn assess(&self, path: &Path) -> Result<Assessed, Refusal> {
        let disks = self.lock();
        let d = disks.get(path).ok_or_else(|| {
            Refusal::Target(format!(
                "{}: No such file or directory; nothing was written",
                path.display()
            ))
        })?;
        if let Some(why) = &d.refused {
            return Err(Refusal::Protected {
                device: path.display().to_string(),
                reasons: vec![lethe_core::inventory::ProtectReason::InUse { by: why.clone() }],
            });
        }
        Ok(Assessed {
            node: path.to_path_buf(),
            identity: d.identity.clone(),
            detail: Box::new(path.to_path_buf()),
        })
    }

    fn open(&self, assessed: Assessed) -> Result<Box<dyn Target>, Refusal> {
        // Read the device *now*: a test may have changed it since the assessment.
        let d = self
            .lock()
            .get(&assessed.node)
            .cloned()
            .ok_or_else(|| Refusal::Target("device vanished".into()))?;
        if d.busy_at_open {
            return Err(Refusal::Busy {
                device: assessed.node.display().to_string(),
            });
        }
        let now = d.after_open.clone().unwrap_or_else(|| d.identity.clone());
        let mut seen = assessed.identity.clone();
        seen.path = now.path.clone();
        if let Some(why) = seen.mismatch(&now) {
            return Err(Refusal::Changed {
                device: assessed.node.display().to_string(),
                why,
            });
        }
        Ok(Box::new(FakeTarget {
            counting: Counting {
                inner: d.medium.clone(),
                writes: Arc::clone(&d.writes),
                slow: d.slow_writes,
            },
            identity: now,
        }))
    }
}

struct Counting {
    inner: Medium,
    writes: Arc<AtomicU64>,
    slow: std::time::Duration,
}

impl BlockDevice for Counting {
    fn geometry(&self) -> Geometry {
        self.inner.block().geometry()
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> Result<(), IoFault> {
        if !self.slow.is_zero() {
            std::thread::sleep(self.slow);
        }
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.block().write_at(buf, offset)
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), IoFault> {
        self.inner.block().read_at(buf, offset)
    }
    fn flush(&self) -> Result<(), IoFault> {
        self.inner.block().flush()
    }
}

struct FakeTarget {
    counting: Counting,
    identity: DeviceIdentity,
}

/// The software drive's commands, shared with the target's block device.
struct SharedDrive(Arc<SimDrive>);

impl DriveIo for SharedDrive {
    fn ata(&self, cmd: &AtaCommand, data: &mut [u8]) -> Result<AtaRegisters, DriveIoError> {
        DriveIo::ata(self.0.as_ref(), cmd, data)
    }
    fn nvme_admin(
        &self,
        cmd: &NvmeAdminCmd,
        data: &mut [u8],
    ) -> Result<NvmeCompletion, DriveIoError> {
        DriveIo::nvme_admin(self.0.as_ref(), cmd, data)
    }
    fn scsi(&self, cdb: &ScsiCdb, data: &mut [u8]) -> Result<ScsiReply, DriveIoError> {
        DriveIo::scsi(self.0.as_ref(), cdb, data)
    }
}

/// The model's clock, advanced instead of slept on: a sanitize that takes
/// the model an hour takes the test no time.
struct Sleepless(SimClock);

impl lethe_purge::Clock for Sleepless {
    fn now_ms(&self) -> u64 {
        self.0.now_ms()
    }
    fn sleep_ms(&self, ms: u64) {
        self.0.advance_ms(ms);
    }
}

impl Target for FakeTarget {
    fn device(&self) -> &dyn BlockDevice {
        &self.counting
    }
    fn identity(&self) -> &DeviceIdentity {
        &self.identity
    }
    fn pass_through(&self) -> PassThrough {
        match &self.counting.inner {
            Medium::Drive(d) => PassThrough {
                io: Ok(Box::new(SharedDrive(Arc::clone(d)))),
                nsid: matches!(d.config().kind, lethe_sim::SimKind::Nvme).then_some(1),
                clock: Box::new(Sleepless(d.clock().clone())),
                nvme_namespaces: matches!(d.config().kind, lethe_sim::SimKind::Nvme).then(|| {
                    vec![lethe_purge::NamespaceInfo {
                        name: "nvme0n1".into(),
                        nsid: 1,
                        protected: None,
                    }]
                }),
            },
            Medium::Memory(_) | Medium::Block(_) => PassThrough {
                io: Err(format!(
                    "{} devices have no drive-native sanitize commands",
                    self.identity.transport
                )),
                nsid: None,
                clock: Box::new(lethe_purge::SystemClock::default()),
                nvme_namespaces: None,
            },
        }
    }
}
