//! Static drive descriptions (presets) and the fault-script vocabulary.

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
}
