//! `SG_IO`: SCSI CDBs, and ATA commands wrapped in ATA PASS-THROUGH(16).
//!
//! The ioctl succeeding only means the kernel delivered the command. The
//! outcome is then sorted in three layers: host/driver status (transport:
//! the HBA, bridge or driver failed, the drive's state is unknown), the SCSI
//! status byte (GOOD or CHECK CONDITION), and the sense data (what the device
//! said). Only the last two come back as `Ok`.

use super::sys::{self, driver, host, SgIoHdr};
use super::{check_len, PassthroughError};
use lethe_cmds::ata::{AtaCommand, AtaRegisters};
use lethe_cmds::scsi::{ata_pass_through_16, ScsiCdb, Sense, SenseFormat, SenseKey};
use lethe_cmds::{DataDir, DecodeError};
use std::fs::File;
use std::os::fd::AsRawFd;

/// Sense buffer capacity: SPC allows up to 252 bytes; descriptor sense with an
/// ATA Status Return and a progress descriptor needs 30.
pub const SENSE_LEN: usize = 96;

/// SCSI status GOOD.
pub const STATUS_GOOD: u8 = 0x00;
/// SCSI status CHECK CONDITION: sense data describes the failure.
pub const STATUS_CHECK_CONDITION: u8 = 0x02;

/// What came back from a command the kernel delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScsiOutcome {
    /// SCSI status byte.
    pub status: u8,
    /// `DID_*` (zero when `Ok`).
    pub host_status: u16,
    /// `DRIVER_*` (only the informational DRIVER_SENSE bit when `Ok`).
    pub driver_status: u16,
    /// Bytes of the data phase not transferred.
    pub resid: i32,
    /// Duration the kernel measured, in milliseconds.
    pub duration_ms: u32,
    /// Raw sense bytes (`sb_len_wr` of them).
    pub sense: Vec<u8>,
}

impl ScsiOutcome {
    /// Status GOOD.
    pub fn is_good(&self) -> bool {
        self.status == STATUS_GOOD
    }

    /// Status CHECK CONDITION.
    pub fn is_check_condition(&self) -> bool {
        self.status == STATUS_CHECK_CONDITION
    }

    /// Decoded sense data; `None` when the device returned none.
    pub fn decode_sense(&self) -> Option<Result<Sense, DecodeError>> {
        (!self.sense.is_empty()).then(|| Sense::decode(&self.sense))
    }

    /// Bytes actually transferred out of a data phase of `requested` bytes.
    pub fn transferred(&self, requested: u32) -> u32 {
        let resid = u32::try_from(self.resid.max(0)).unwrap_or(0);
        requested.saturating_sub(resid)
    }
}

/// Send a SCSI command. `data` must hold at least the command's data-phase
/// length; for `DataDir::Out` it is only read, for `DataDir::In` it is filled.
/// The kernel only lets read-only openers (or callers without CAP_SYS_RAWIO)
/// send commands on its safe list; others fail with `Io(EPERM)`.
pub fn scsi(file: &File, cdb: &ScsiCdb, data: &mut [u8]) -> Result<ScsiOutcome, PassthroughError> {
    let len = check_len(cdb.data.len(), data)?;
    let dir = match cdb.data {
        DataDir::None => sys::SG_DXFER_NONE,
        DataDir::In(0) | DataDir::Out(0) => sys::SG_DXFER_NONE,
        DataDir::In(_) => sys::SG_DXFER_FROM_DEV,
        DataDir::Out(_) => sys::SG_DXFER_TO_DEV,
    };
    let bytes = cdb.bytes();
    if bytes.len() < 6 {
        // The kernel would answer EINVAL, which would read as "unsupported".
        return Err(PassthroughError::BadCommand(format!(
            "CDB length {} (need 6..=16)",
            cdb.len
        )));
    }
    let mut sense = [0u8; SENSE_LEN];
    let mut hdr = SgIoHdr {
        interface_id: libc::c_int::from(b'S'),
        dxfer_direction: dir,
        cmd_len: bytes.len() as u8,
        mx_sb_len: SENSE_LEN as u8,
        iovec_count: 0,
        dxfer_len: len as u32,
        dxferp: if len == 0 {
            std::ptr::null_mut()
        } else {
            data.as_mut_ptr().cast()
        },
        cmdp: bytes.as_ptr(),
        sbp: sense.as_mut_ptr(),
        // 0 = the queue's sg_timeout (60 s default); the command model always sets one.
        timeout: cdb.timeout_ms,
        flags: 0,
        pack_id: 0,
        usr_ptr: std::ptr::null_mut(),
        status: 0,
        masked_status: 0,
        msg_status: 0,
        sb_len_wr: 0,
        host_status: 0,
        driver_status: 0,
        resid: 0,
        duration: 0,
        info: 0,
    };
    // `cmdp`, `sbp` and `dxferp` point at `cdb`, `sense` and `data` (lengths
    // checked above), all borrowed for the whole synchronous SG_IO call.
    // SAFETY: `hdr` is a valid sg_io_hdr whose buffers outlive the call.
    unsafe { sys::sg_io(file.as_raw_fd(), &mut hdr) }.map_err(PassthroughError::from_errno)?;
    let sb_len = usize::from(hdr.sb_len_wr).min(SENSE_LEN);
    classify(ScsiOutcome {
        status: hdr.status,
        host_status: hdr.host_status,
        driver_status: hdr.driver_status,
        resid: hdr.resid,
        duration_ms: hdr.duration,
        sense: sense[..sb_len].to_vec(),
    })
}

/// Turn host/driver failures into errors; pass device answers through.
fn classify(o: ScsiOutcome) -> Result<ScsiOutcome, PassthroughError> {
    let drv = o.driver_status & driver::DRIVER_MASK;
    match o.host_status {
        host::DID_OK if drv == 0 => Ok(o),
        host::DID_NO_CONNECT | host::DID_BAD_TARGET => Err(PassthroughError::DeviceGone),
        host::DID_TIME_OUT => Err(PassthroughError::Timeout),
        host::DID_OK if drv == driver::DRIVER_TIMEOUT => Err(PassthroughError::Timeout),
        _ => Err(PassthroughError::Transport {
            host_status: o.host_status,
            driver_status: o.driver_status,
        }),
    }
}

/// Result of an ATA command sent through ATA PASS-THROUGH(16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtaOutcome {
    /// The SCSI-level outcome, raw sense included.
    pub scsi: ScsiOutcome,
    /// Decoded sense data, if any was returned and it parsed.
    pub sense: Option<Sense>,
    /// Result registers from the ATA Status Return descriptor (or the fixed
    /// format information fields). `None`: the translator returned none,
    /// the typical sign of a bridge that ignores CK_COND or lacks SAT.
    pub registers: Option<AtaRegisters>,
    /// False when fixed-format sense said bits above LBA 23:0 / COUNT 7:0 were
    /// non-zero but could not carry them (libata without D_SENSE).
    pub registers_complete: bool,
}

impl AtaOutcome {
    /// The drive reported ERR or DF, or the translator rejected the command.
    pub fn failed(&self) -> bool {
        match (&self.registers, &self.sense) {
            (Some(r), _) => r.failed(),
            (None, Some(s)) => !matches!(s.key, SenseKey::NoSense | SenseKey::RecoveredError),
            (None, None) => !self.scsi.is_good(),
        }
    }
}

/// Send an ATA command wrapped in ATA PASS-THROUGH(16) (CK_COND set, so the
/// result registers come back in the sense data).
pub fn ata(file: &File, cmd: &AtaCommand, data: &mut [u8]) -> Result<AtaOutcome, PassthroughError> {
    let cdb = ata_pass_through_16(cmd);
    let scsi = scsi(file, &cdb, data)?;
    Ok(ata_outcome(scsi))
}

/// Decode the ATA part of an outcome (pure; tested below).
fn ata_outcome(scsi: ScsiOutcome) -> AtaOutcome {
    let sense = scsi.decode_sense().and_then(Result::ok);
    let (registers, registers_complete) = match &sense {
        Some(s) if s.ata.is_some() => (s.ata, true),
        Some(s) if s.format == SenseFormat::Fixed => match decode_fixed_ata(&scsi.sense, s) {
            Some((r, complete)) => (Some(r), complete),
            None => (None, true),
        },
        _ => (None, true),
    };
    AtaOutcome {
        scsi,
        sense,
        registers,
        registers_complete,
    }
}

/// ATA registers from fixed-format sense, in either of the two layouts found
/// in the field. Returns the registers and whether they are complete.
///
/// - SAT-4 12.2.2.6 (VALID set, or INFORMATION non-zero): bytes 3-6 hold
///   ERROR, STATUS, DEVICE, COUNT(7:0); byte 8 holds EXTEND (7), COUNT UPPER
///   NONZERO (6), LBA UPPER NONZERO (5); bytes 9-11 LBA(23:0).
/// - Linux libata before 6.10 (VALID clear, INFORMATION zero; fixed by "ata:
///   libata-scsi: Fix offsets for the fixed format sense data", not in every
///   stable branch: Debian's 6.1.192 still has it): the same fields at bytes
///   8-11 and 16-19. The kernel reports 18 sense bytes, so LBA(23:8) is cut
///   off and the registers are incomplete.
///
/// Only trusted when the translator ran the command: ILLEGAL REQUEST, NOT
/// READY and UNIT ATTENTION come from the translator itself. libata uses fixed
/// format unless D_SENSE is set in the Control mode page, so commands whose
/// result lives in the LBA (READ NATIVE MAX, SANITIZE STATUS progress) must
/// check `registers_complete` and otherwise ask for descriptor sense.
pub fn decode_fixed_ata(b: &[u8], s: &Sense) -> Option<(AtaRegisters, bool)> {
    if s.format != SenseFormat::Fixed || b.len() < 12 {
        return None;
    }
    let from_device = (s.asc, s.ascq) == (0x00, 0x1D)
        || matches!(
            s.key,
            SenseKey::AbortedCommand | SenseKey::MediumError | SenseKey::HardwareError
        );
    if !from_device {
        return None;
    }
    let sat = b[0] & 0x80 != 0 || b[3..7].iter().any(|&x| x != 0);
    let (regs, flags, lba) = if sat {
        (&b[3..7], b.get(8), b.get(9..12))
    } else {
        (&b[8..12], b.get(16), b.get(17..20))
    };
    let lba_bytes = lba.map_or([0u8; 3], |l| [l[0], l[1], l[2]]);
    let complete = flags.is_some_and(|f| f & 0x60 == 0) && lba.is_some();
    Some((
        AtaRegisters {
            error: regs[0],
            status: regs[1],
            device: regs[2],
            count: u16::from(regs[3]),
            lba: u64::from_be_bytes([0, 0, 0, 0, 0, lba_bytes[2], lba_bytes[1], lba_bytes[0]]),
        },
        complete,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lethe_cmds::ata::status;

    fn outcome(status: u8, host_status: u16, driver_status: u16, sense: Vec<u8>) -> ScsiOutcome {
        ScsiOutcome {
            status,
            host_status,
            driver_status,
            resid: 0,
            duration_ms: 1,
            sense,
        }
    }

    #[test]
    fn transport_failures_are_errors_device_answers_are_not() {
        assert!(classify(outcome(0, 0, 0, vec![])).is_ok());
        // CHECK CONDITION with DRIVER_SENSE is a device answer.
        assert!(classify(outcome(2, 0, driver::DRIVER_SENSE, vec![0x70; 18])).is_ok());
        assert_eq!(
            classify(outcome(0, host::DID_TIME_OUT, 0, vec![])),
            Err(PassthroughError::Timeout)
        );
        assert_eq!(
            classify(outcome(0, 0, driver::DRIVER_TIMEOUT, vec![])),
            Err(PassthroughError::Timeout)
        );
        assert_eq!(
            classify(outcome(0, host::DID_NO_CONNECT, 0, vec![])),
            Err(PassthroughError::DeviceGone)
        );
        assert_eq!(
            classify(outcome(0, 0x07, 0, vec![])),
            Err(PassthroughError::Transport {
                host_status: 0x07,
                driver_status: 0
            })
        );
    }

    #[test]
    fn descriptor_sense_gives_full_registers() {
        let regs = AtaRegisters {
            error: 0,
            count: 0x1234,
            lba: 0x0000_ABCD_EF01_2345,
            device: 0x40,
            status: status::DRDY,
        };
        let mut s = Sense::new(SenseFormat::Descriptor, SenseKey::RecoveredError, 0, 0x1D);
        s.ata = Some(regs);
        let o = ata_outcome(outcome(2, 0, driver::DRIVER_SENSE, s.encode()));
        assert_eq!(o.registers, Some(regs));
        assert!(o.registers_complete);
        assert!(!o.failed());
    }

    #[test]
    fn fixed_sense_gives_low_registers_and_flags_lost_bits() {
        // libata without D_SENSE: RECOVERED ERROR, 00/1D, registers in INFORMATION.
        let mut b = vec![0u8; 18];
        b[0] = 0xF0;
        b[2] = 0x01;
        b[3..7].copy_from_slice(&[0x04, 0x51, 0x40, 0x07]);
        b[7] = 10;
        b[8] = 0x80 | 0x20;
        b[9..12].copy_from_slice(&[0x45, 0x23, 0x01]);
        b[12] = 0x00;
        b[13] = 0x1D;
        let o = ata_outcome(outcome(2, 0, driver::DRIVER_SENSE, b.clone()));
        let r = o.registers.unwrap_or_default();
        assert_eq!(
            (r.error, r.status, r.device, r.count),
            (0x04, 0x51, 0x40, 7)
        );
        assert_eq!(r.lba, 0x01_2345);
        assert!(!o.registers_complete);
        assert!(o.failed(), "ERR is set in STATUS 0x51");
        b[8] = 0x80;
        assert!(ata_outcome(outcome(2, 0, 8, b)).registers_complete);
    }

    /// Sense bytes captured from Debian's 6.1.192 kernel (libata, QEMU AHCI
    /// disk) in the QEMU tier test.
    #[test]
    fn legacy_libata_fixed_layout_from_a_real_kernel() {
        // IDENTIFY DEVICE (PIO-in): DRQ still set, so libata says ABORTED
        // COMMAND 00/00, but the registers show no ERR.
        let identify = vec![
            0x70, 0x00, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x58, 0x40, 0x01, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00,
        ];
        let o = ata_outcome(outcome(2, 0, driver::DRIVER_SENSE, identify));
        let r = o.registers.unwrap_or_else(|| panic!("{o:?}"));
        assert_eq!(
            (r.error, r.status, r.device, r.count),
            (0x00, 0x58, 0x40, 1)
        );
        assert!(!o.failed());
        assert!(!o.registers_complete, "LBA(23:8) is past the 18 bytes");
        // SANITIZE STATUS EXT on a drive without the feature set: ERR + ABRT.
        let sanitize = vec![
            0x70, 0x00, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x04, 0x41, 0x40, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x80, 0x00,
        ];
        let o = ata_outcome(outcome(2, 0, driver::DRIVER_SENSE, sanitize));
        let r = o.registers.unwrap_or_else(|| panic!("{o:?}"));
        assert!(r.is_abort());
        assert!(o.failed());
        // The same registers in a 20-byte legacy sense are complete.
        let mut long = vec![0u8; 20];
        long[0] = 0x70;
        long[2] = 0x01;
        long[7] = 12;
        long[8..12].copy_from_slice(&[0, 0x50, 0x40, 2]);
        long[13] = 0x1D;
        long[16] = 0x80;
        long[17..20].copy_from_slice(&[0x33, 0x22, 0x11]);
        let o = ata_outcome(outcome(2, 0, 8, long));
        assert_eq!(o.registers.map(|r| r.lba), Some(0x11_2233));
        assert!(o.registers_complete);
    }

    #[test]
    fn translator_rejection_has_no_registers_and_fails() {
        // USB bridge without SAT: ILLEGAL REQUEST, invalid opcode 20/00.
        let s = Sense::new(SenseFormat::Fixed, SenseKey::IllegalRequest, 0x20, 0x00);
        let o = ata_outcome(outcome(2, 0, driver::DRIVER_SENSE, s.encode()));
        assert_eq!(o.registers, None);
        assert!(o.failed());
        // GOOD without sense: CK_COND ignored, nothing to read back.
        let o = ata_outcome(outcome(0, 0, 0, vec![]));
        assert_eq!(o.registers, None);
        assert!(!o.failed());
    }

    #[test]
    fn sense_decoding_never_panics_on_arbitrary_bytes() {
        // Deterministic sweep: every length up to SENSE_LEN, several fill patterns,
        // and every response code in byte 0.
        let mut seed = 0x1234_5678u32;
        for len in 0..=SENSE_LEN {
            for rc in [0x70u8, 0x71, 0x72, 0x73, 0xF0, 0x00, 0x7F] {
                let b: Vec<u8> = (0..len)
                    .map(|i| {
                        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        if i == 0 {
                            rc
                        } else {
                            (seed >> 24) as u8
                        }
                    })
                    .collect();
                let o = ata_outcome(outcome(2, 0, 8, b));
                let _ = o.failed();
            }
        }
    }

    #[test]
    fn short_cdb_is_rejected_before_the_ioctl() {
        let f = File::open("/dev/null").unwrap_or_else(|e| panic!("{e}"));
        let mut c = lethe_cmds::scsi::test_unit_ready();
        c.len = 3;
        assert!(matches!(
            scsi(&f, &c, &mut []),
            Err(PassthroughError::BadCommand(_))
        ));
        let c = lethe_cmds::scsi::inquiry(None, 96);
        assert_eq!(
            scsi(&f, &c, &mut [0u8; 10]),
            Err(PassthroughError::BufferTooSmall { need: 96, got: 10 })
        );
    }

    #[test]
    fn transferred_uses_resid() {
        let mut o = outcome(0, 0, 0, vec![]);
        o.resid = 12;
        assert_eq!(o.transferred(512), 500);
        o.resid = -3;
        assert_eq!(o.transferred(512), 512);
    }
}
