//! Static drive descriptions (presets) and the fault-script vocabulary.

use lethe_cmds::scsi::FixedAtaLayout;

/// Which kind of drive to model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimKind {
    /// SATA drive (ATA commands; also SCSI via SAT, like libata).
    Sata,
    /// SAS drive (SCSI only).
    Sas,
    /// NVMe drive with one namespace.
    Nvme,
}

/// Static description of the modelled drive.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Drive kind.
    pub kind: SimKind,
    /// Model string.
    pub model: String,
    /// Serial string.
    pub serial: String,
    /// Factory native capacity in 512-byte sectors.
    pub sectors: u64,
    /// Spinning media (IDENTIFY word 217 / VPD B1h).
    pub rotational: bool,
    /// ATA Security feature set supported.
    pub ata_security: bool,
    /// ATA enhanced erase supported.
    pub ata_enhanced_erase: bool,
    /// ATA SANITIZE support: (crypto, block, overwrite).
    pub ata_sanitize: (bool, bool, bool),
    /// NVMe SANICAP dword.
    pub nvme_sanicap: u32,
    /// NVMe OACS Format NVM supported.
    pub nvme_format: bool,
    /// NVMe FNA byte.
    pub nvme_fna: u8,
    /// Accept Format SES=2 although FNA bit 2 is clear (QEMU does).
    pub nvme_lax_ses: bool,
    /// SCSI SANITIZE support: (crypto, block, overwrite).
    pub scsi_sanitize: (bool, bool, bool),
    /// How long a sanitize takes in simulated time.
    pub sanitize_ms: u64,
    /// SECURITY ERASE UNIT time in minutes (words 89/90).
    pub erase_minutes: u16,
    /// ATA hidden-area control through Accessible Max Address Configuration
    /// (78h, IDENTIFY word 119 bit 8) instead of the HPA feature set: the
    /// drive then aborts READ NATIVE MAX / SET MAX and DCO.
    pub ata_ama: bool,
    /// The SCSI-to-ATA translator (libata, a SAS HBA, a bridge) accepts
    /// D_SENSE in the Control mode page; without it ATA registers come back
    /// in fixed-format sense.
    pub sat_dsense: bool,
    /// Where a fixed-format answer puts the ATA registers.
    pub sat_fixed_layout: FixedAtaLayout,
    /// The SCSI device honours REQUEST SENSE with DESC=1; without it that is
    /// ILLEGAL REQUEST, INVALID FIELD IN CDB (sg_sanitize falls back to fixed).
    pub scsi_dsense: bool,
    /// How descriptor-format REQUEST SENSE reports a running sanitize.
    pub scsi_progress: ScsiProgress,
    /// REQUEST SENSE always answers NO SENSE (a translator that emulates it,
    /// as libata does); only TEST UNIT READY and media access show NOT READY
    /// 04h/1Bh while a sanitize runs.
    pub scsi_request_sense_blind: bool,
    /// NVMe namespaces on the controller (NSID 1..=n, same size); the block
    /// device is namespace 1.
    pub nvme_namespaces: u32,
}

/// How a SCSI device reports sanitize progress in descriptor-format sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScsiProgress {
    /// NOT READY 04h/1Bh with the sense-key-specific progress descriptor (02h).
    SenseKeySpecific,
    /// NO SENSE with an another-progress-indication descriptor (0Ah) naming
    /// NOT READY 04h/1Bh (SPC-5 4.4.2.11).
    Another,
}

impl SimConfig {
    /// A SATA SSD with Security (enhanced) and every SANITIZE operation.
    pub fn sata_ssd(sectors: u64) -> Self {
        SimConfig {
            kind: SimKind::Sata,
            model: "LETHE SIM SATA SSD".into(),
            serial: "SIMSATA0001".into(),
            sectors,
            rotational: false,
            ata_security: true,
            ata_enhanced_erase: true,
            ata_sanitize: (true, true, true),
            nvme_sanicap: 0,
            nvme_format: false,
            nvme_fna: 0,
            nvme_lax_ses: false,
            scsi_sanitize: (false, false, false),
            sanitize_ms: 10_000,
            erase_minutes: 2,
            ata_ama: false,
            sat_dsense: true,
            sat_fixed_layout: FixedAtaLayout::LibataLegacy,
            scsi_dsense: true,
            scsi_progress: ScsiProgress::SenseKeySpecific,
            scsi_request_sense_blind: false,
            nvme_namespaces: 1,
        }
    }

    /// An NVMe SSD with Sanitize (crypto + block) and Format with crypto erase.
    pub fn nvme(sectors: u64) -> Self {
        SimConfig {
            kind: SimKind::Nvme,
            model: "LETHE SIM NVME".into(),
            serial: "SIMNVME0001".into(),
            nvme_sanicap: 0b011,
            nvme_format: true,
            nvme_fna: 0x04,
            ata_security: false,
            ata_enhanced_erase: false,
            ata_sanitize: (false, false, false),
            ..Self::sata_ssd(sectors)
        }
    }

    /// A SAS HDD with SCSI SANITIZE overwrite and crypto erase.
    pub fn sas_hdd(sectors: u64) -> Self {
        SimConfig {
            kind: SimKind::Sas,
            model: "LETHE SIM SAS".into(),
            serial: "SIMSAS0001".into(),
            rotational: true,
            scsi_sanitize: (true, false, true),
            ..Self::nvme(sectors)
        }
    }
}

/// What a command matcher in a fault script looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmdMatch {
    /// Any command.
    Any,
    /// An ATA command opcode (also when it arrives through ATA PASS-THROUGH).
    Ata(u8),
    /// An NVMe admin opcode.
    Nvme(u8),
    /// A SCSI opcode.
    Scsi(u8),
}

/// A scripted fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The next matching command is aborted by the device.
    Abort(CmdMatch),
    /// The next matching command never completes: the transport times out.
    Timeout(CmdMatch),
    /// The device disappears after this many more commands (0 = now).
    GoneAfter(u32),
    /// Power is lost when the clock reaches this time; power returns at once.
    PowerLossAt(u64),
    /// Reads and writes of this LBA fail with a medium error.
    MediumError(u64),
    /// The next sanitize (ATA, NVMe or SCSI) ends in failure.
    SanitizeFails,
    /// The next erase (sanitize, ERASE UNIT, Format) reports success but
    /// changes nothing, like USB bridges that fake FORMAT UNIT.
    LieAboutErase,
    /// Just before the next matching command, a sanitize starts that Lethe
    /// did not send (another host, or one resuming after a power loss), so
    /// the command meets a drive that is already sanitizing.
    ForeignSanitize(CmdMatch),
}
