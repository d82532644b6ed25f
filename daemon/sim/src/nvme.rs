//! NVMe admin command execution: Identify, Get Log Page 81h, Format NVM, Sanitize.
//!
//! Scope: Sanitize erases every namespace of the subsystem; Format erases the
//! namespace named by NSID, or all of them for NSID FFFFFFFFh, FNA bit 0 (a
//! format applies to all namespaces) or FNA bit 1 with SES 1/2 (a secure erase
//! applies to all namespaces).

use crate::media::Erase;
use crate::{CmdMatch, NvmeResponse, SanOp, SimDrive, SimError, SimKind, State};
use lethe_cmds::nvme::{
    decode_format, decode_get_log_page, decode_sanitize, opcode, sc, NvmeAdminCmd, NvmeCompletion,
    SaniCap, SanitizeAction, SanitizeLog, SanitizeStatusCode, Ses, LID_SANITIZE_STATUS,
    NO_ESTIMATE,
};

/// Generic status "Command Abort Requested".
const ABORT_REQUESTED: u16 = 0x007;

fn done(status: u16, data: Vec<u8>) -> NvmeResponse {
    NvmeResponse {
        completion: NvmeCompletion { status, result: 0 },
        data,
    }
}

fn put(b: &mut [u8], off: usize, s: &str, len: usize) {
    let mut v = s.as_bytes().to_vec();
    v.resize(len, b' ');
    b[off..off + len].copy_from_slice(&v[..len]);
}

fn identify_controller(d: &SimDrive) -> Vec<u8> {
    let c = d.config();
    let mut b = vec![0u8; 4096];
    b[0..2].copy_from_slice(&0x1D1Du16.to_le_bytes());
    put(&mut b, 4, &c.serial, 20);
    put(&mut b, 24, &c.model, 40);
    put(&mut b, 64, "SIM1.0", 8);
    b[80..84].copy_from_slice(&0x0002_0000u32.to_le_bytes());
    b[256..258].copy_from_slice(&(u16::from(c.nvme_format) << 1).to_le_bytes());
    b[328..332].copy_from_slice(&c.nvme_sanicap.to_le_bytes());
    b[516..520].copy_from_slice(&c.nvme_namespaces.max(1).to_le_bytes());
    b[524] = c.nvme_fna;
    b
}

fn identify_namespace(s: &State) -> Vec<u8> {
    let mut b = vec![0u8; 4096];
    for off in [0, 8, 16] {
        b[off..off + 8].copy_from_slice(&s.max_sectors.to_le_bytes());
    }
    b[128..132].copy_from_slice(&(9u32 << 16).to_le_bytes());
    b
}

fn log(d: &SimDrive, s: &State) -> Vec<u8> {
    let cap = SaniCap::from_raw(d.config().nvme_sanicap);
    let est = |ok: bool| {
        if ok {
            (d.config().sanitize_ms / 1000) as u32
        } else {
            NO_ESTIMATE
        }
    };
    let (status, sprog) = match s.san {
        SanOp::Running { .. } => (
            SanitizeStatusCode::InProgress,
            d.san_progress(s).unwrap_or(0),
        ),
        SanOp::Failed { .. } => (SanitizeStatusCode::Failed, 0xFFFF),
        SanOp::Idle { completed: true } => (SanitizeStatusCode::Completed, 0xFFFF),
        SanOp::Idle { completed: false } if s.last_scdw10 != 0 => {
            (SanitizeStatusCode::Failed, 0xFFFF)
        }
        SanOp::Idle { completed: false } => (SanitizeStatusCode::NeverSanitized, 0xFFFF),
    };
    SanitizeLog {
        sprog,
        status,
        overwrite_passes_done: 0,
        global_data_erased: status == SanitizeStatusCode::Completed,
        scdw10: s.last_scdw10,
        est_overwrite: est(cap.overwrite),
        est_block_erase: est(cap.block_erase),
        est_crypto_erase: est(cap.crypto_erase),
    }
    .encode()
}

pub(crate) fn execute(
    d: &SimDrive,
    cmd: &NvmeAdminCmd,
    _data_out: &[u8],
) -> Result<NvmeResponse, SimError> {
    if d.config().kind != SimKind::Nvme {
        return Err(SimError::BadRequest(
            "NVMe command sent to a non-NVMe drive".into(),
        ));
    }
    let (mut guard, hit) = d.begin(CmdMatch::Nvme(cmd.opcode))?;
    let s = &mut *guard;
    if hit.is_some() {
        return Ok(done(ABORT_REQUESTED, Vec::new()));
    }
    let cfg = d.config();
    let running = matches!(s.san, SanOp::Running { .. });
    Ok(match cmd.opcode {
        opcode::IDENTIFY => match (cmd.cdw10 & 0xFF, cmd.nsid) {
            (1, _) => done(sc::SUCCESS, identify_controller(d)),
            (0, n) if n >= 1 && n <= cfg.nvme_namespaces.max(1) => {
                done(sc::SUCCESS, identify_namespace(s))
            }
            _ => done(sc::INVALID_FIELD, Vec::new()),
        },
        opcode::GET_LOG_PAGE => match decode_get_log_page(cmd) {
            (LID_SANITIZE_STATUS, len) => {
                let mut l = log(d, s);
                l.resize(len.min(4096) as usize, 0);
                done(sc::SUCCESS, l)
            }
            (lethe_cmds::smart::nvme::LID_SMART, len) => crate::health::nvme_log(s, len),
            _ => done(sc::INVALID_FIELD, Vec::new()),
        },
        opcode::FORMAT_NVM if !cfg.nvme_format => done(sc::INVALID_OPCODE, Vec::new()),
        opcode::FORMAT_NVM if running => done(sc::SANITIZE_IN_PROGRESS, Vec::new()),
        opcode::FORMAT_NVM if matches!(s.san, SanOp::Failed { .. }) => {
            done(sc::SANITIZE_FAILED, Vec::new())
        }
        opcode::FORMAT_NVM => match decode_format(cmd.cdw10) {
            Some(p) if p.lbaf != 0 || p.pi != 0 => done(sc::INVALID_FORMAT, Vec::new()),
            Some(_)
                if !(cmd.nsid == 0xFFFF_FFFF
                    || (1..=cfg.nvme_namespaces.max(1)).contains(&cmd.nsid)) =>
            {
                done(sc::INVALID_FIELD, Vec::new())
            }
            Some(p) => {
                let crypto_ok = cfg.nvme_fna & 4 != 0;
                let erase = match p.ses {
                    Ses::None => Erase::Nothing,
                    Ses::UserData => Erase::Fill(0),
                    Ses::Crypto if crypto_ok => Erase::Crypto,
                    // QEMU accepts SES=2 without crypto support and erases user data.
                    Ses::Crypto if cfg.nvme_lax_ses => Erase::Fill(0),
                    Ses::Crypto => return Ok(done(sc::INVALID_FIELD, Vec::new())),
                };
                let all = cmd.nsid == 0xFFFF_FFFF
                    || cfg.nvme_fna & 1 != 0
                    || (p.ses != Ses::None && cfg.nvme_fna & 2 != 0);
                if all || cmd.nsid == 1 {
                    crate::apply_erase(s, erase, all);
                } else if let Some(m) = crate::ns_media(s, cmd.nsid) {
                    m.erase(erase);
                }
                done(sc::SUCCESS, Vec::new())
            }
            None => done(sc::INVALID_FIELD, Vec::new()),
        },
        opcode::SANITIZE => sanitize(d, s, cmd),
        _ => done(sc::INVALID_OPCODE, Vec::new()),
    })
}

fn sanitize(d: &SimDrive, s: &mut State, cmd: &NvmeAdminCmd) -> NvmeResponse {
    let cap = SaniCap::from_raw(d.config().nvme_sanicap);
    if !cap.any() {
        return done(sc::INVALID_OPCODE, Vec::new());
    }
    if matches!(s.san, SanOp::Running { .. }) {
        return done(sc::SANITIZE_IN_PROGRESS, Vec::new());
    }
    let Some(p) = decode_sanitize(cmd.cdw10, cmd.cdw11) else {
        return done(sc::INVALID_FIELD, Vec::new());
    };
    let erase = match p.action {
        SanitizeAction::ExitFailureMode => {
            return match s.san {
                SanOp::Failed {
                    unrestricted: false,
                } => done(sc::SANITIZE_FAILED, Vec::new()),
                SanOp::Failed { unrestricted: true } => {
                    s.san = SanOp::Idle { completed: false };
                    done(sc::SUCCESS, Vec::new())
                }
                _ => done(sc::SUCCESS, Vec::new()),
            };
        }
        SanitizeAction::CryptoErase if cap.crypto_erase => Erase::Crypto,
        SanitizeAction::BlockErase if cap.block_erase => Erase::Fill(0),
        SanitizeAction::Overwrite if cap.overwrite => Erase::Pattern {
            pattern: p.pattern,
            passes: p.overwrite_passes,
            invert: p.invert,
        },
        _ => return done(sc::INVALID_FIELD, Vec::new()),
    };
    if p.no_dealloc && cap.no_dealloc_inhibited {
        return done(sc::INVALID_FIELD, Vec::new());
    }
    s.last_scdw10 = cmd.cdw10;
    d.start_sanitize(s, erase, p.ause, cmd.cdw10);
    done(sc::SUCCESS, Vec::new())
}
