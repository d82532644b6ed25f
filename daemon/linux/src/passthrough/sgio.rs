//! `SG_IO`: SCSI CDBs, and ATA commands wrapped in ATA PASS-THROUGH(16).
//!
//! The ioctl succeeding only means the kernel delivered the command. The
//! outcome is then sorted in three layers: host/driver status (transport:
//! the HBA, bridge or driver failed, the drive's state is unknown), the SCSI
//! status byte (GOOD or CHECK CONDITION), and the sense data (what the device
//! said). Only the last two come back as `Ok`.

use super::sys::{self, driver, host, SgIoHdr};
use super::{check_len, PassthroughError};
use lethe_cmds::ata::AtaCommand;
use lethe_cmds::scsi::{ata_outcome, ata_pass_through_16, AtaOutcome, ScsiCdb, Sense};
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

/// An ATA command's answer through ATA PASS-THROUGH(16): the SCSI-level
/// outcome (raw sense included) and its ATA reading, decoded by the same
/// pure code the drive model's translator is tested with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtaAnswer {
    /// The SCSI-level outcome.
    pub scsi: ScsiOutcome,
    /// Registers, completeness and verdict.
    pub ata: AtaOutcome,
}

/// Send an ATA command wrapped in ATA PASS-THROUGH(16) (CK_COND on non-data
/// commands only; see [`lethe_cmds::scsi::ata_pass_through_16`]). Descriptor
/// sense is not requested here: [`super::drive::LinuxDrive`] does that
/// through the shared SAT client.
pub fn ata(file: &File, cmd: &AtaCommand, data: &mut [u8]) -> Result<AtaAnswer, PassthroughError> {
    let cdb = ata_pass_through_16(cmd);
    let scsi = scsi(file, &cdb, data)?;
    let ata = ata_outcome(scsi.status, &scsi.sense);
    Ok(AtaAnswer { scsi, ata })
}

#[cfg(test)]
mod tests {
    use super::*;

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
                let o = ata_outcome(2, &b);
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
