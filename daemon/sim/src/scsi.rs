//! SCSI command execution: INQUIRY/VPD, READ CAPACITY(16), SANITIZE with
//! REQUEST SENSE progress, and SAT translation of ATA PASS-THROUGH(16).

use crate::media::Erase;
use crate::{CmdMatch, SanOp, ScsiResponse, SimDrive, SimError, SimKind};
use lethe_cmds::scsi::{
    self, decode_ata_pass_through_16, decode_sanitize, opcode, ScsiCdb, ScsiSanitizeAction, Sense,
    SenseFormat, SenseKey, ATA_PASS_THROUGH_16,
};

fn sense(key: SenseKey, asc: u8, ascq: u8) -> ScsiResponse {
    ScsiResponse::check(Sense::new(SenseFormat::Fixed, key, asc, ascq))
}

fn invalid_opcode() -> ScsiResponse {
    sense(SenseKey::IllegalRequest, 0x20, 0x00)
}

fn invalid_field() -> ScsiResponse {
    sense(SenseKey::IllegalRequest, 0x24, 0x00)
}

pub(crate) fn execute(
    d: &SimDrive,
    cdb: &ScsiCdb,
    data_out: &[u8],
) -> Result<ScsiResponse, SimError> {
    // SAT: a SATA drive answers ATA PASS-THROUGH with the ATA Status Return descriptor.
    if cdb.opcode() == ATA_PASS_THROUGH_16 {
        if d.config().kind != SimKind::Sata {
            return Ok(invalid_opcode());
        }
        let Some(cmd) = decode_ata_pass_through_16(cdb) else {
            return Ok(invalid_field());
        };
        let r = d.ata(&cmd, data_out)?;
        let mut s = Sense::new(
            SenseFormat::Descriptor,
            SenseKey::RecoveredError,
            0x00,
            0x1D,
        );
        if r.regs.failed() {
            s.key = SenseKey::AbortedCommand;
            s.ascq = 0x00;
        }
        s.ata = Some(r.regs);
        return Ok(ScsiResponse {
            status: 2,
            sense: Some(s),
            data: r.data,
        });
    }
    let (mut guard, hit) = d.begin(CmdMatch::Scsi(cdb.opcode()))?;
    let s = &mut *guard;
    if hit.is_some() {
        return Ok(sense(SenseKey::AbortedCommand, 0x00, 0x00));
    }
    let cfg = d.config();
    let progress = d.san_progress(s);
    let running = progress.is_some();
    let alloc = cdb.data.len() as usize;
    let trunc = |mut v: Vec<u8>| {
        v.truncate(alloc);
        v
    };
    Ok(match cdb.opcode() {
        opcode::INQUIRY => {
            let c = &cdb.cdb;
            match (c[1] & 1, c[2]) {
                (0, 0) => {
                    let mut b = vec![b' '; 36];
                    b[0] = 0;
                    b[1] = 0;
                    b[2] = 0x07;
                    b[3] = 0x12;
                    b[4] = 31;
                    b[5] = 0;
                    b[6] = 0;
                    b[7] = 0;
                    let vendor = if cfg.kind == SimKind::Sata {
                        "ATA"
                    } else {
                        "LETHE"
                    };
                    b[8..8 + vendor.len()].copy_from_slice(vendor.as_bytes());
                    let m = cfg.model.as_bytes();
                    let n = m.len().min(16);
                    b[16..16 + n].copy_from_slice(&m[..n]);
                    b[32..36].copy_from_slice(b"SIM1");
                    ScsiResponse::good(trunc(b))
                }
                (1, 0x80) => {
                    let sn = cfg.serial.as_bytes();
                    let mut b = vec![0, 0x80, 0, sn.len() as u8];
                    b.extend_from_slice(sn);
                    ScsiResponse::good(trunc(b))
                }
                (1, 0x83) => {
                    let mut b = vec![0, 0x83, 0, 12, 0x01, 0x03, 0, 8];
                    let h = cfg
                        .serial
                        .bytes()
                        .fold(0u64, |a, x| a.wrapping_mul(31).wrapping_add(u64::from(x)));
                    b.extend_from_slice(
                        &(0x5000_0000_0000_0000 | (h & 0x0FFF_FFFF_FFFF_FFFF)).to_be_bytes(),
                    );
                    ScsiResponse::good(trunc(b))
                }
                _ => invalid_field(),
            }
        }
        opcode::TEST_UNIT_READY if running => {
            let mut sn = Sense::new(SenseFormat::Fixed, SenseKey::NotReady, 0x04, 0x1B);
            sn.progress = progress;
            ScsiResponse::check(sn)
        }
        opcode::TEST_UNIT_READY => ScsiResponse::good(Vec::new()),
        opcode::REQUEST_SENSE => {
            let fmt = if cdb.cdb[1] & 1 != 0 {
                SenseFormat::Descriptor
            } else {
                SenseFormat::Fixed
            };
            let mut sn = match s.san {
                SanOp::Running { .. } => Sense::new(fmt, SenseKey::NotReady, 0x04, 0x1B),
                SanOp::Failed { .. } => Sense::new(fmt, SenseKey::MediumError, 0x31, 0x03),
                SanOp::Idle { .. } => Sense::new(fmt, SenseKey::NoSense, 0, 0),
            };
            sn.progress = progress;
            ScsiResponse::good(trunc(sn.encode()))
        }
        opcode::SERVICE_ACTION_IN_16 if cdb.cdb[1] & 0x1F == 0x10 => {
            if running {
                return Ok(sense(SenseKey::NotReady, 0x04, 0x1B));
            }
            let mut b = vec![0u8; 32];
            b[0..8].copy_from_slice(&s.max_sectors.saturating_sub(1).to_be_bytes());
            b[8..12].copy_from_slice(&512u32.to_be_bytes());
            ScsiResponse::good(trunc(b))
        }
        opcode::MAINTENANCE_IN if cdb.cdb[1] & 0x1F == scsi::REPORT_SUPPORTED_OPCODES_SA => {
            // One-command format only (REPORTING OPTIONS 001b/010b).
            let c = &cdb.cdb;
            if !matches!(c[2] & 0x07, 1 | 2) {
                return Ok(invalid_field());
            }
            let (cr, bl, ow) = cfg.scsi_sanitize;
            let sa = u16::from_be_bytes([c[4], c[5]]);
            let supported = c[3] == opcode::SANITIZE
                && cfg.kind == SimKind::Sas
                && match sa {
                    0x01 => ow,
                    0x02 => bl,
                    0x03 => cr,
                    0x1F => cr || bl || ow,
                    _ => false,
                }
                || matches!(
                    c[3],
                    opcode::INQUIRY | opcode::TEST_UNIT_READY | opcode::REQUEST_SENSE
                );
            let mut b = vec![0u8; 4];
            b[1] = if supported { 0x03 } else { 0x01 };
            ScsiResponse::good(trunc(b))
        }
        opcode::SANITIZE => {
            let (cr, bl, ow) = cfg.scsi_sanitize;
            if cfg.kind != SimKind::Sas || !(cr || bl || ow) {
                return Ok(invalid_opcode());
            }
            if running {
                return Ok(sense(SenseKey::NotReady, 0x04, 0x1B));
            }
            let Some((action, immed, ause)) = decode_sanitize(cdb, data_out) else {
                return Ok(invalid_field());
            };
            let erase = match action {
                ScsiSanitizeAction::ExitFailureMode => {
                    if let SanOp::Failed { unrestricted: true } = s.san {
                        s.san = SanOp::Idle { completed: false };
                        return Ok(ScsiResponse::good(Vec::new()));
                    }
                    return Ok(invalid_field());
                }
                ScsiSanitizeAction::CryptoErase if cr => Erase::Crypto,
                ScsiSanitizeAction::BlockErase if bl => Erase::Fill(0),
                ScsiSanitizeAction::Overwrite {
                    count,
                    invert,
                    pattern,
                } if ow => Erase::Pattern {
                    pattern: u32::from_le_bytes(pattern),
                    passes: count.min(16),
                    invert,
                },
                _ => return Ok(invalid_field()),
            };
            d.start_sanitize(s, erase, ause, 0);
            if !immed {
                // Without IMMED the command completes when the sanitize does;
                // the model jumps the operation to its end.
                crate::finish_sanitize(s);
                if let SanOp::Failed { .. } = s.san {
                    return Ok(sense(SenseKey::MediumError, 0x31, 0x03));
                }
            }
            ScsiResponse::good(Vec::new())
        }
        _ if cfg.kind == SimKind::Sas => {
            crate::health::scsi(d, s, cdb).unwrap_or_else(invalid_opcode)
        }
        _ => invalid_opcode(),
    })
}
