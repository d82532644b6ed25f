//! Probe a drive through [`DriveIo`]: identity, capabilities for the policy,
//! and hidden areas (HPA, Accessible Max Address, DCO). Only read-only
//! commands are sent here.

use crate::PurgeError;
use lethe_cmds::ata::{self, HiddenAreaFeature, IdentifyDevice};
use lethe_cmds::io::{DriveIo, DriveIoError};
use lethe_cmds::nvme::{self, IdentifyController, IdentifyNamespace};
use lethe_cmds::policy::{AtaCaps, Capabilities, NvmeCaps, ScsiCaps, Transport};
use lethe_cmds::scsi;
use serde::{Deserialize, Serialize};

/// Which command set reaches the drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandPath {
    /// ATA commands (native SATA, or SAT through a SAS HBA or USB bridge).
    Ata,
    /// NVMe admin commands to the controller, for this namespace.
    Nvme {
        /// Namespace id of the block device.
        nsid: u32,
    },
    /// SCSI commands (SAS, USB bridges without SAT).
    Scsi,
    /// No pass-through path (loop, virtio, MMC): only overwrite is possible.
    None,
}

/// What the caller knows about the device from discovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hints {
    /// Attachment.
    pub transport: Transport,
    /// Rotational flag from sysfs, used when the drive does not report it.
    pub rotational: Option<bool>,
    /// USB stick or memory card.
    pub removable_flash: bool,
}

/// Sectors hidden from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HiddenArea {
    /// How the drive hides them: HPA (27h/37h) or Accessible Max Address (78h).
    #[serde(default = "hpa_feature")]
    pub feature: HiddenAreaFeature,
    /// Sectors the host can address now.
    pub visible_sectors: u64,
    /// READ NATIVE MAX ADDRESS + 1: the capacity without the HPA.
    pub native_sectors: u64,
    /// DCO IDENTIFY max LBA + 1: the factory capacity, when DCO is supported.
    pub dco_sectors: Option<u64>,
}

fn hpa_feature() -> HiddenAreaFeature {
    HiddenAreaFeature::Hpa
}

impl HiddenArea {
    /// Sectors hidden from the host by the HPA or the Accessible Max Address.
    pub fn hidden_sectors(&self) -> u64 {
        self.native_sectors.saturating_sub(self.visible_sectors)
    }

    /// True when an HPA (or a reduced Accessible Max Address) hides sectors.
    pub fn hpa(&self) -> bool {
        self.native_sectors > self.visible_sectors
    }
    /// True when a DCO reduced the capacity below the factory one.
    pub fn dco(&self) -> bool {
        self.dco_sectors.is_some_and(|d| d > self.native_sectors)
    }
}

/// Everything probed from the drive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriveProfile {
    /// Command path used.
    pub path: CommandPath,
    /// Model as the drive reports it.
    pub model: String,
    /// Serial as the drive reports it.
    pub serial: String,
    /// Firmware revision.
    pub firmware: String,
    /// User capacity in bytes.
    pub capacity_bytes: u64,
    /// Policy input.
    pub caps: Capabilities,
    /// ATA IDENTIFY, for timeouts and raw words.
    pub ata: Option<IdentifyDevice>,
    /// NVMe Identify Controller.
    pub nvme_ctrl: Option<IdentifyController>,
    /// NVMe Identify Namespace, with DPS (PI settings) kept for Format.
    pub nvme_ns: Option<(IdentifyNamespace, u8)>,
    /// HPA/DCO state (ATA only).
    pub hidden: Option<HiddenArea>,
}

fn gone_or(e: DriveIoError, what: &str) -> PurgeError {
    PurgeError::Probe(format!("{what}: {e}"))
}

/// Probe the drive. Nothing is written.
pub fn probe(
    io: &dyn DriveIo,
    path: CommandPath,
    hints: Hints,
) -> Result<DriveProfile, PurgeError> {
    let mut caps = Capabilities {
        transport: hints.transport,
        rotational: hints.rotational,
        removable_flash: hints.removable_flash,
        ata: None,
        nvme: None,
        scsi: None,
    };
    let mut p = DriveProfile {
        path,
        model: String::new(),
        serial: String::new(),
        firmware: String::new(),
        capacity_bytes: 0,
        caps,
        ata: None,
        nvme_ctrl: None,
        nvme_ns: None,
        hidden: None,
    };
    match path {
        CommandPath::None => {}
        CommandPath::Ata => {
            let id = ata_identify(io)?;
            caps.rotational = match id.rotation_rate {
                Some(1) => Some(false),
                Some(r) if r > 1 => Some(true),
                _ => hints.rotational,
            };
            let sanitize_frozen = id.sanitize.supported
                && io
                    .ata(&ata::sanitize_status(false), &mut [])
                    .map(|r| ata::decode_sanitize_status(&r).frozen)
                    .unwrap_or(false);
            caps.ata = Some(AtaCaps {
                security: id.security,
                sanitize: id.sanitize,
                sanitize_frozen,
            });
            p.hidden = hidden_area(io, &id)?;
            p.model = id.model.clone();
            p.serial = id.serial.clone();
            p.firmware = id.firmware.clone();
            p.capacity_bytes = id.capacity_bytes();
            p.ata = Some(id);
        }
        CommandPath::Nvme { nsid } => {
            let mut buf = vec![0u8; 4096];
            let c = io
                .nvme_admin(&nvme::identify_controller(), &mut buf)
                .map_err(|e| gone_or(e, "Identify Controller"))?;
            if !c.is_success() {
                return Err(PurgeError::Probe(format!(
                    "Identify Controller failed with status {:#06x}",
                    c.status
                )));
            }
            let ctrl =
                IdentifyController::decode(&buf).map_err(|e| PurgeError::Probe(e.to_string()))?;
            let mut nb = vec![0u8; 4096];
            let c = io
                .nvme_admin(&nvme::identify_namespace(nsid), &mut nb)
                .map_err(|e| gone_or(e, "Identify Namespace"))?;
            if !c.is_success() {
                return Err(PurgeError::Probe(format!(
                    "Identify Namespace {nsid} failed with status {:#06x}",
                    c.status
                )));
            }
            let ns =
                IdentifyNamespace::decode(&nb).map_err(|e| PurgeError::Probe(e.to_string()))?;
            caps.nvme = Some(NvmeCaps {
                sanicap: ctrl.sanicap,
                format_supported: ctrl.format_supported(),
                format_crypto: ctrl.format_crypto_erase(),
                format_all_namespaces: ctrl.format_all_namespaces(),
                secure_erase_all_namespaces: ctrl.secure_erase_all_namespaces(),
            });
            p.model = ctrl.model.clone();
            p.serial = ctrl.serial.clone();
            p.firmware = ctrl.firmware.clone();
            p.capacity_bytes = ns.size_bytes().unwrap_or(0);
            p.nvme_ctrl = Some(ctrl);
            // DPS (byte 29) keeps the protection settings across Format.
            p.nvme_ns = Some((ns, nb[29]));
        }
        CommandPath::Scsi => {
            let mut b = vec![0u8; 96];
            let r = io
                .scsi(&scsi::inquiry(None, 96), &mut b)
                .map_err(|e| gone_or(e, "INQUIRY"))?;
            if !r.is_good() {
                return Err(PurgeError::Probe(format!("INQUIRY failed: {:?}", r.sense)));
            }
            let inq = scsi::decode_inquiry(&b).map_err(|e| PurgeError::Probe(e.to_string()))?;
            let mut sn = vec![0u8; 252];
            let serial = match io.scsi(&scsi::inquiry(Some(0x80), 252), &mut sn) {
                Ok(r) if r.is_good() => scsi::decode_vpd_80(&sn).unwrap_or_default(),
                _ => String::new(),
            };
            let mut cap = vec![0u8; 32];
            let r = io
                .scsi(&scsi::read_capacity_16(), &mut cap)
                .map_err(|e| gone_or(e, "READ CAPACITY(16)"))?;
            if r.is_good() {
                p.capacity_bytes = scsi::decode_read_capacity_16(&cap)
                    .map(|c| c.bytes())
                    .unwrap_or(0);
            }
            let sup = |sa: u16| -> Result<bool, PurgeError> {
                let mut b = vec![0u8; 20];
                match io.scsi(
                    &scsi::report_supported_opcode(scsi::opcode::SANITIZE, sa),
                    &mut b,
                ) {
                    Ok(r) => Ok(r.is_good()
                        && scsi::decode_supported_opcode(&b).is_ok_and(|s| s.is_supported())),
                    // A vanished device is not a device without SANITIZE.
                    Err(e @ DriveIoError::Gone(_)) => {
                        Err(gone_or(e, "REPORT SUPPORTED OPERATION CODES"))
                    }
                    Err(_) => Ok(false),
                }
            };
            caps.scsi = Some(ScsiCaps {
                overwrite: sup(0x01)?,
                block_erase: sup(0x02)?,
                crypto_erase: sup(0x03)?,
            });
            p.model = format!("{} {}", inq.vendor, inq.product).trim().to_string();
            p.serial = serial;
            p.firmware = inq.revision.clone();
        }
    }
    p.caps = caps;
    Ok(p)
}

/// IDENTIFY DEVICE through the ATA path.
pub(crate) fn ata_identify(io: &dyn DriveIo) -> Result<IdentifyDevice, PurgeError> {
    let mut buf = vec![0u8; 512];
    let r = io
        .ata(&ata::identify_device(), &mut buf)
        .map_err(|e| gone_or(e, "IDENTIFY DEVICE"))?;
    if r.failed() {
        return Err(PurgeError::Probe(format!(
            "IDENTIFY DEVICE failed: status {:#04x} error {:#04x}",
            r.status, r.error
        )));
    }
    IdentifyDevice::decode(&buf).map_err(|e| PurgeError::Probe(e.to_string()))
}

/// The native max LBA: GET NATIVE MAX ADDRESS EXT on an Accessible Max
/// Address drive, READ NATIVE MAX ADDRESS EXT on an HPA drive.
pub(crate) fn read_native_max(
    io: &dyn DriveIo,
    feature: HiddenAreaFeature,
) -> Result<ata::AtaRegisters, DriveIoError> {
    io.ata(
        &match feature {
            HiddenAreaFeature::Ama => ata::get_native_max_address_ext(),
            HiddenAreaFeature::Hpa => ata::read_native_max_ext(),
        },
        &mut [],
    )
}

/// The hidden-area feature a drive reports, if any (AMA first: an ACS-3
/// drive with it aborts the HPA commands).
pub(crate) fn hidden_feature(id: &IdentifyDevice) -> Option<HiddenAreaFeature> {
    if id.ama_supported {
        Some(HiddenAreaFeature::Ama)
    } else if id.hpa_supported {
        Some(HiddenAreaFeature::Hpa)
    } else {
        None
    }
}

/// HPA/AMA and DCO state from the native max address and DCO IDENTIFY.
fn hidden_area(io: &dyn DriveIo, id: &IdentifyDevice) -> Result<Option<HiddenArea>, PurgeError> {
    let Some(feature) = hidden_feature(id) else {
        return Ok(None);
    };
    let r = match read_native_max(io, feature) {
        Ok(r) if !r.failed() => r,
        Ok(_) => return Ok(None),
        Err(e @ DriveIoError::Gone(_)) => return Err(gone_or(e, "native max address")),
        // Unreadable (e.g. truncated registers): the HPA state stays unknown,
        // which the certificate says, rather than failing the whole probe.
        Err(_) => return Ok(None),
    };
    let dco_sectors = if id.dco_supported && feature == HiddenAreaFeature::Hpa {
        let mut b = vec![0u8; 512];
        match io.ata(&ata::dco_identify(), &mut b) {
            Ok(r) if !r.failed() => ata::decode_dco_identify(&b).ok().map(|d| d.max_lba + 1),
            _ => None,
        }
    } else {
        None
    };
    Ok(Some(HiddenArea {
        feature,
        visible_sectors: id.user_sectors(),
        native_sectors: ata::native_max_lba(&r) + 1,
        dco_sectors,
    }))
}
