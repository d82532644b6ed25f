//! ATA command execution: IDENTIFY, Security, SANITIZE, HPA/AMA, DCO and
//! READ/WRITE SECTORS EXT.
//!
//! HPA: SET MAX ADDRESS EXT is aborted unless the command right before it was
//! a good READ NATIVE MAX ADDRESS EXT (any command in between, block I/O
//! included, breaks the pair), and only one non-volatile SET MAX is accepted
//! per power cycle (IDNF after that). AMA drives (`SimConfig::ata_ama`) take
//! 78h instead and abort 27h/37h and DCO.

use crate::media::Erase;
use crate::{AtaResponse, CmdMatch, SanOp, SimDrive, SimError, SimKind, State};
use lethe_cmds::ata::{
    self, dco, decode_overwrite_count, decode_security_payload, opcode, sanitize_feature as sf,
    AtaCommand, AtaProtocol, AtaRegisters, SanitizeErrorReason, SanitizeStatus,
};
use lethe_cmds::DataDir;

fn put_string(w: &mut [u16], first: usize, words: usize, s: &str) {
    let mut b = s.as_bytes().to_vec();
    b.resize(words * 2, b' ');
    for i in 0..words {
        w[first + i] = u16::from(b[2 * i]) << 8 | u16::from(b[2 * i + 1]);
    }
}

fn with_checksum(words: &[u16; 256]) -> Vec<u8> {
    let mut b: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    b[510] = 0xA5;
    let sum = b[..511].iter().fold(0u8, |a, &x| a.wrapping_add(x));
    b[511] = 0u8.wrapping_sub(sum);
    b
}

/// Build IDENTIFY DEVICE data reflecting the current state.
pub(crate) fn identify(d: &SimDrive, s: &State) -> Vec<u8> {
    let c = d.config();
    let mut w = [0u16; 256];
    put_string(&mut w, 10, 10, &c.serial);
    put_string(&mut w, 23, 4, "SIM1.0");
    put_string(&mut w, 27, 20, &c.model);
    let (cr, bl, ow) = c.ata_sanitize;
    let any_san = cr || bl || ow;
    w[59] =
        u16::from(any_san) << 12 | u16::from(cr) << 13 | u16::from(ow) << 14 | u16::from(bl) << 15;
    let lba28 = s.max_sectors.min(0x0FFF_FFFF) as u32;
    w[60] = lba28 as u16;
    w[61] = (lba28 >> 16) as u16;
    let hpa = !c.ata_ama;
    // Major version: ATA8-ACS through ACS-3 (hdparm's SUPPORTS_ACS3 tests bit 10).
    w[80] = 0x07F0;
    w[82] = 0x4000 | u16::from(c.ata_security) << 1 | u16::from(hpa) << 10;
    w[83] = 0x4000 | 1 << 10 | u16::from(hpa) << 11;
    w[85] = 0x4000
        | u16::from(s.sec.user.is_some()) << 1
        | u16::from(hpa && s.max_sectors < s.native_sectors) << 10;
    // Bit 15: words 119-120 valid.
    w[86] = 1 << 10 | 1 << 15;
    w[119] = 0x4000 | u16::from(c.ata_ama) << 8;
    w[120] = 0x4000;
    let t = c.erase_minutes.div_ceil(2).min(0xFE);
    w[89] = if c.ata_security { t } else { 0 };
    w[90] = if c.ata_enhanced_erase { t } else { 0 };
    w[92] = s.sec.master_rev;
    for i in 0..4 {
        w[100 + i] = (s.max_sectors >> (16 * i)) as u16;
    }
    w[106] = 0x4000;
    if c.ata_security {
        let sec = &s.sec;
        w[128] = 1
            | u16::from(sec.user.is_some()) << 1
            | u16::from(sec.locked()) << 2
            | u16::from(sec.frozen()) << 3
            | u16::from(sec.expired()) << 4
            | u16::from(c.ata_enhanced_erase) << 5
            | u16::from(sec.level == ata::SecurityLevel::Maximum) << 8;
    }
    w[217] = if c.rotational { 7200 } else { 1 };
    with_checksum(&w)
}

fn ok(data: Vec<u8>) -> AtaResponse {
    AtaResponse {
        regs: AtaRegisters::ok(),
        data,
    }
}

fn abort() -> AtaResponse {
    AtaResponse {
        regs: AtaRegisters::aborted(),
        data: Vec::new(),
    }
}

fn san_abort(reason: SanitizeErrorReason) -> AtaResponse {
    let mut r = AtaRegisters::aborted();
    r.lba = u64::from(reason.code());
    AtaResponse {
        regs: r,
        data: Vec::new(),
    }
}

fn status_regs(d: &SimDrive, s: &State) -> SanitizeStatus {
    let (completed, failed, progress) = match s.san {
        SanOp::Idle { completed } => (completed, false, 0),
        SanOp::Running { .. } => (false, false, d.san_progress(s).unwrap_or(0)),
        SanOp::Failed { .. } => (false, true, 0),
    };
    SanitizeStatus {
        completed_without_error: completed,
        in_progress: matches!(s.san, SanOp::Running { .. }),
        frozen: s.san_frozen,
        antifreeze: false,
        progress,
        failed,
        reason: if failed {
            SanitizeErrorReason::LastFailed
        } else {
            SanitizeErrorReason::None
        },
    }
}

pub(crate) fn execute(
    d: &SimDrive,
    cmd: &AtaCommand,
    data_out: &[u8],
) -> Result<AtaResponse, SimError> {
    if d.config().kind != SimKind::Sata {
        return Err(SimError::BadRequest(
            "ATA command sent to a non-ATA drive".into(),
        ));
    }
    if let DataDir::Out(n) = cmd.data {
        if data_out.len() < n as usize || cmd.protocol != AtaProtocol::PioOut {
            return Err(SimError::BadRequest(format!(
                "PIO-out needs {n} bytes, got {}",
                data_out.len()
            )));
        }
    }
    let (mut guard, hit) = d.begin(CmdMatch::Ata(cmd.command))?;
    let s = &mut *guard;
    s.timeouts.insert(cmd.command, cmd.timeout_ms);
    // ERASE UNIT must immediately follow ERASE PREPARE: any other command cancels it.
    if cmd.command != opcode::SECURITY_ERASE_UNIT {
        s.sec.prepared = false;
    }
    if hit.is_some() {
        return Ok(abort());
    }
    let running = matches!(s.san, SanOp::Running { .. });
    let failed = matches!(s.san, SanOp::Failed { .. });
    let is_status = cmd.command == opcode::SANITIZE && cmd.feature == sf::STATUS_EXT;
    if (running || failed) && cmd.command != opcode::IDENTIFY_DEVICE && !is_status {
        // SD2 aborts everything but status and IDENTIFY; SD3 also allows a new
        // sanitize. A sanitize command's error output carries the status bits,
        // so a host can tell "aborted: a sanitize is already running".
        if running && cmd.command == opcode::SANITIZE {
            let mut st = status_regs(d, s);
            st.failed = true;
            st.progress = 0;
            st.reason = SanitizeErrorReason::None;
            return Ok(AtaResponse {
                regs: st.to_registers(),
                data: Vec::new(),
            });
        }
        if running || cmd.command != opcode::SANITIZE {
            return Ok(san_abort(if running {
                SanitizeErrorReason::None
            } else {
                SanitizeErrorReason::LastFailed
            }));
        }
    }
    let cfg = d.config();
    let payload =
        || decode_security_payload(data_out).map_err(|e| SimError::BadRequest(e.to_string()));
    let r = |res: Result<(), ()>| if res.is_ok() { ok(Vec::new()) } else { abort() };
    Ok(match cmd.command {
        opcode::IDENTIFY_DEVICE => ok(identify(d, s)),
        _ if !cfg.ata_security && matches!(cmd.command, 0xF1..=0xF6) => abort(),
        opcode::SECURITY_SET_PASSWORD => r(s.sec.set_password(&payload()?)),
        opcode::SECURITY_UNLOCK => r(s.sec.unlock(&payload()?)),
        opcode::SECURITY_DISABLE_PASSWORD => r(s.sec.disable(&payload()?)),
        opcode::SECURITY_ERASE_PREPARE => r(s.sec.prepare()),
        opcode::SECURITY_FREEZE_LOCK => {
            if s.sec.locked() {
                abort()
            } else {
                s.sec.freeze();
                ok(Vec::new())
            }
        }
        opcode::SECURITY_ERASE_UNIT => {
            let p = payload()?;
            if p.enhanced && !cfg.ata_enhanced_erase {
                s.sec.prepared = false;
                return Ok(abort());
            }
            match s.sec.erase_unit(&p) {
                Ok(()) => {
                    // Normal erase writes zeros; enhanced writes a vendor pattern.
                    crate::apply_erase(
                        s,
                        if p.enhanced {
                            Erase::Crypto
                        } else {
                            Erase::Fill(0)
                        },
                        false,
                    );
                    ok(Vec::new())
                }
                Err(()) => abort(),
            }
        }
        opcode::SANITIZE => sanitize(d, s, cmd),
        lethe_cmds::smart::ata::SMART => crate::health::ata(d, s, cmd),
        opcode::READ_NATIVE_MAX_EXT | opcode::SET_MAX_EXT if cfg.ata_ama => abort(),
        opcode::READ_NATIVE_MAX_EXT => {
            s.after_read_native = true;
            let mut regs = AtaRegisters::ok();
            regs.lba = s.native_sectors.saturating_sub(1);
            AtaResponse {
                regs,
                data: Vec::new(),
            }
        }
        opcode::SET_MAX_EXT => set_max(s, cmd),
        opcode::ACCESSIBLE_MAX_ADDRESS if cfg.ata_ama => accessible_max(s, cmd),
        opcode::READ_SECTORS_EXT => read_sectors(s, cmd),
        opcode::WRITE_SECTORS_EXT => write_sectors(s, cmd, data_out),
        opcode::DCO if cfg.ata_ama => abort(),
        opcode::DCO => match cmd.feature {
            dco::IDENTIFY => {
                let mut w = [0u16; 256];
                w[0] = 2;
                let max = cfg.sectors.saturating_sub(1);
                for i in 0..4 {
                    w[3 + i] = (max >> (16 * i)) as u16;
                }
                ok(with_checksum(&w))
            }
            // RESTORE fails while an HPA is set (hdparm documents the same).
            dco::RESTORE if s.max_sectors == s.native_sectors && !s.sec.locked() => {
                s.native_sectors = cfg.sectors;
                s.max_sectors = cfg.sectors;
                s.persistent_max = cfg.sectors;
                ok(Vec::new())
            }
            _ => abort(),
        },
        _ => abort(),
    })
}

fn idnf() -> AtaResponse {
    let mut a = abort();
    a.regs.error = ata::error::IDNF | ata::error::ABRT;
    a
}

/// SET MAX ADDRESS EXT (ATA8-ACS 7.49 and vendor manuals: aborted unless READ
/// NATIVE MAX ADDRESS EXT came immediately before; IDNF for a second
/// non-volatile setting in one power cycle or an address past native max).
fn set_max(s: &mut State, cmd: &AtaCommand) -> AtaResponse {
    if !s.prev_read_native || s.sec.locked() {
        return abort();
    }
    if cmd.lba >= s.native_sectors {
        return idnf();
    }
    let non_volatile = cmd.count & 1 != 0;
    if non_volatile {
        if s.set_max_nv_used {
            let mut a = abort();
            a.regs.error = ata::error::IDNF;
            return a;
        }
        s.set_max_nv_used = true;
        s.persistent_max = cmd.lba + 1;
    }
    s.max_sectors = cmd.lba + 1;
    ok(Vec::new())
}

/// ACCESSIBLE MAX ADDRESS CONFIGURATION (78h, ACS-3 7.7).
fn accessible_max(s: &mut State, cmd: &AtaCommand) -> AtaResponse {
    match cmd.feature {
        ata::ama::GET_NATIVE_MAX => {
            let mut regs = AtaRegisters::ok();
            regs.lba = s.native_sectors.saturating_sub(1);
            AtaResponse {
                regs,
                data: Vec::new(),
            }
        }
        ata::ama::SET_ACCESSIBLE_MAX => {
            if s.ama_frozen || s.sec.locked() {
                return abort();
            }
            if cmd.lba >= s.native_sectors {
                return idnf();
            }
            // Non-volatile: the new capacity survives power cycles.
            s.max_sectors = cmd.lba + 1;
            s.persistent_max = s.max_sectors;
            ok(Vec::new())
        }
        ata::ama::FREEZE_ACCESSIBLE_MAX => {
            s.ama_frozen = true;
            ok(Vec::new())
        }
        _ => abort(),
    }
}

/// The sector range of a READ/WRITE SECTORS EXT, if the drive accepts it.
fn rw_range(s: &State, cmd: &AtaCommand) -> Option<(u64, u64)> {
    let n = match cmd.count {
        0 => 65536,
        n => u64::from(n),
    };
    let ok = cmd.data.len() as u64 == n * 512
        && !s.sec.locked()
        && cmd.lba.checked_add(n).is_some_and(|e| e <= s.max_sectors);
    ok.then_some((cmd.lba, n))
}

fn read_sectors(s: &mut State, cmd: &AtaCommand) -> AtaResponse {
    let Some((first, n)) = rw_range(s, cmd) else {
        return idnf();
    };
    let data = (first..first + n)
        .flat_map(|l| s.media.read_sector(l))
        .collect();
    ok(data)
}

fn write_sectors(s: &mut State, cmd: &AtaCommand, data: &[u8]) -> AtaResponse {
    let Some((first, _)) = rw_range(s, cmd) else {
        return idnf();
    };
    for (i, chunk) in data.chunks(512).enumerate() {
        s.media.write_sector(first + i as u64, chunk);
    }
    ok(Vec::new())
}

fn sanitize(d: &SimDrive, s: &mut State, cmd: &AtaCommand) -> AtaResponse {
    let cfg = d.config();
    let (cr, bl, ow) = cfg.ata_sanitize;
    if !(cr || bl || ow) {
        return san_abort(SanitizeErrorReason::Unsupported);
    }
    let failure_mode = cmd.count & 0x10 != 0;
    let started = |s: &mut State, erase| {
        d.start_sanitize(s, erase, failure_mode, 0);
        let st = status_regs(d, s);
        AtaResponse {
            regs: st.to_registers(),
            data: Vec::new(),
        }
    };
    match cmd.feature {
        sf::STATUS_EXT => {
            if cmd.count & 1 != 0 {
                if let SanOp::Failed { unrestricted: true } = s.san {
                    s.san = SanOp::Idle { completed: false };
                }
            }
            AtaResponse {
                regs: status_regs(d, s).to_registers(),
                data: Vec::new(),
            }
        }
        _ if s.sec.locked() => abort(),
        _ if s.san_frozen => san_abort(SanitizeErrorReason::Frozen),
        sf::CRYPTO_SCRAMBLE_EXT if cr && cmd.lba == ata::CRYPTO_SCRAMBLE_KEY => {
            started(s, Erase::Crypto)
        }
        sf::BLOCK_ERASE_EXT if bl && cmd.lba == ata::BLOCK_ERASE_KEY => started(s, Erase::Fill(0)),
        sf::OVERWRITE_EXT if ow && cmd.lba >> 32 == ata::OVERWRITE_KEY => {
            let (passes, invert, _) = decode_overwrite_count(cmd.count);
            started(
                s,
                Erase::Pattern {
                    pattern: cmd.lba as u32,
                    passes,
                    invert,
                },
            )
        }
        sf::FREEZE_LOCK_EXT if cmd.lba == ata::FREEZE_LOCK_KEY => {
            s.san_frozen = true;
            ok(Vec::new())
        }
        _ => san_abort(SanitizeErrorReason::Unsupported),
    }
}
