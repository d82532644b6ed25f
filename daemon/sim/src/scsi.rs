//! SCSI command execution: INQUIRY/VPD, READ CAPACITY(16), READ(16), TEST
//! UNIT READY, the Control mode page (D_SENSE), SANITIZE with REQUEST SENSE
//! progress, and SAT translation of ATA PASS-THROUGH(16) the way libata does it.
//!
//! SAT: a failed ATA command is CHECK CONDITION, ABORTED COMMAND with its
//! registers; a good one is GOOD without sense unless CK_COND asked for the
//! registers (RECOVERED ERROR, 00h/1Dh). CK_COND on a PIO data command gets
//! libata/AHCI's answer: the registers are read while DRQ is still set, so the
//! command is reported as ABORTED COMMAND and, as bridges do, the data-in
//! phase is not returned (hdparm leaves CK_COND off for data commands). The
//! registers come in descriptor sense when D_SENSE is set, else in the
//! configured fixed layout.

use crate::config::ScsiProgress;
use crate::media::Erase;
use crate::{CmdMatch, SanOp, ScsiResponse, SimDrive, SimError, SimKind};
use lethe_cmds::ata::{AtaProtocol, AtaRegisters};
use lethe_cmds::scsi::{
    self, decode_ata_pass_through_16, decode_sanitize, encode_fixed_ata, opcode, sat::byte2,
    AnotherProgress, ScsiCdb, ScsiSanitizeAction, Sense, SenseFormat, SenseKey,
    ATA_PASS_THROUGH_16,
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

fn sanitizing(progress: Option<u16>) -> ScsiResponse {
    let mut sn = Sense::new(SenseFormat::Fixed, SenseKey::NotReady, 0x04, 0x1B);
    sn.progress = progress;
    ScsiResponse::check(sn)
}

/// ATA PASS-THROUGH(16) through a libata-like translator.
fn sat(d: &SimDrive, cdb: &ScsiCdb, data_out: &[u8]) -> Result<ScsiResponse, SimError> {
    if d.config().kind != SimKind::Sata {
        return Ok(invalid_opcode());
    }
    let Some(cmd) = decode_ata_pass_through_16(cdb) else {
        return Ok(invalid_field());
    };
    let ck_cond = cdb.cdb[2] & byte2::CK_COND != 0;
    let r = d.ata(&cmd, data_out)?;
    let data_cmd = matches!(cmd.protocol, AtaProtocol::PioIn | AtaProtocol::PioOut);
    let (key, ascq, regs, data) = if r.regs.failed() {
        (SenseKey::AbortedCommand, 0x00, r.regs, r.data)
    } else if ck_cond && data_cmd {
        // libata/AHCI: DRQ still set when the registers are read.
        let regs = AtaRegisters {
            status: r.regs.status | 0x08,
            ..r.regs
        };
        (SenseKey::AbortedCommand, 0x00, regs, Vec::new())
    } else if ck_cond {
        (SenseKey::RecoveredError, 0x1D, r.regs, r.data)
    } else {
        return Ok(ScsiResponse::good(r.data));
    };
    let d_sense = d.lock().d_sense;
    let bytes = if d_sense {
        let mut sn = Sense::new(SenseFormat::Descriptor, key, 0x00, ascq);
        sn.ata = Some(regs);
        sn.encode()
    } else {
        encode_fixed_ata(
            key,
            0x00,
            ascq,
            &regs,
            cmd.is_ext(),
            d.config().sat_fixed_layout,
        )
    };
    Ok(ScsiResponse::check_raw(bytes, data))
}

/// MODE SENSE(10) answer holding the Control mode page (SPC-5 7.5.10).
fn control_page(d_sense: bool) -> Vec<u8> {
    let mut b = vec![
        0, 18, 0, 0, 0, 0, 0, 0, 0x0A, 0x0A, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    if d_sense {
        b[10] |= 0x04;
    }
    b
}

pub(crate) fn execute(
    d: &SimDrive,
    cdb: &ScsiCdb,
    data_out: &[u8],
) -> Result<ScsiResponse, SimError> {
    if cdb.opcode() == ATA_PASS_THROUGH_16 {
        return sat(d, cdb, data_out);
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
        opcode::TEST_UNIT_READY if running => sanitizing(progress),
        opcode::TEST_UNIT_READY if matches!(s.san, SanOp::Failed { .. }) => {
            sense(SenseKey::MediumError, 0x31, 0x03)
        }
        opcode::TEST_UNIT_READY => ScsiResponse::good(Vec::new()),
        opcode::REQUEST_SENSE => {
            let desc = cdb.cdb[1] & 1 != 0;
            let dsense_ok = cfg.kind == SimKind::Sata || cfg.scsi_dsense;
            if desc && !dsense_ok {
                return Ok(invalid_field());
            }
            let fmt = if desc {
                SenseFormat::Descriptor
            } else {
                SenseFormat::Fixed
            };
            let mut sn = match s.san {
                _ if cfg.scsi_request_sense_blind => Sense::new(fmt, SenseKey::NoSense, 0, 0),
                SanOp::Running { .. } if desc && cfg.scsi_progress == ScsiProgress::Another => {
                    let mut sn = Sense::new(fmt, SenseKey::NoSense, 0, 0);
                    sn.another_progress = Some(AnotherProgress {
                        key: SenseKey::NotReady,
                        asc: 0x04,
                        ascq: 0x1B,
                        progress: progress.unwrap_or(0),
                    });
                    sn
                }
                SanOp::Running { .. } => {
                    let mut sn = Sense::new(fmt, SenseKey::NotReady, 0x04, 0x1B);
                    sn.progress = progress;
                    sn
                }
                SanOp::Failed { .. } => Sense::new(fmt, SenseKey::MediumError, 0x31, 0x03),
                SanOp::Idle { .. } => Sense::new(fmt, SenseKey::NoSense, 0, 0),
            };
            if sn.key == SenseKey::NoSense && sn.another_progress.is_none() {
                sn.progress = None;
            }
            ScsiResponse::good(trunc(sn.encode()))
        }
        opcode::MODE_SENSE_10 if cdb.cdb[2] & 0x3F == scsi::CONTROL_MODE_PAGE => {
            ScsiResponse::good(trunc(control_page(s.d_sense)))
        }
        opcode::MODE_SELECT_10 => {
            let changeable = match cfg.kind {
                SimKind::Sata => cfg.sat_dsense,
                _ => cfg.scsi_dsense,
            };
            match scsi::control_page_d_sense(data_out) {
                Ok(_) if !changeable => sense(SenseKey::IllegalRequest, 0x26, 0x00),
                Ok(_) => {
                    s.d_sense = data_out.get(10).is_some_and(|b| b & 0x04 != 0);
                    ScsiResponse::good(Vec::new())
                }
                Err(_) => sense(SenseKey::IllegalRequest, 0x26, 0x00),
            }
        }
        opcode::READ_16 => {
            if running {
                return Ok(sanitizing(progress));
            }
            if matches!(s.san, SanOp::Failed { .. }) {
                return Ok(sense(SenseKey::MediumError, 0x31, 0x03));
            }
            let c = &cdb.cdb;
            let lba = u64::from_be_bytes([c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9]]);
            let n = u64::from(u32::from_be_bytes([c[10], c[11], c[12], c[13]]));
            if cdb.data.len() as u64 != n * 512 {
                return Ok(invalid_field());
            }
            if lba.checked_add(n).is_none_or(|e| e > s.max_sectors) {
                return Ok(sense(SenseKey::IllegalRequest, 0x21, 0x00));
            }
            let data = (lba..lba + n)
                .flat_map(|l| s.media.read_sector(l))
                .collect();
            ScsiResponse::good(data)
        }
        opcode::SERVICE_ACTION_IN_16 if cdb.cdb[1] & 0x1F == 0x10 => {
            if running {
                return Ok(sanitizing(progress));
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
                return Ok(sanitizing(progress));
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
