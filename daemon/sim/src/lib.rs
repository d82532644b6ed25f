//! Software drive model for tests: a SATA, SAS or NVMe drive that accepts
//! exactly the `lethe-cmds` command values the Linux layer sends.
//!
//! It models the ATA security state machine (SEC1-SEC6), sanitize state with a
//! progress log driven by an injected [`SimClock`] (no real sleeping), NVMe
//! Format with SES and namespaces, HPA/AMA/DCO, a SCSI-to-ATA translator
//! ([`SatPath`]), and scripted faults. Contents are sparse: written sectors
//! live in a map, the rest read as a fill pattern.
//!
//! It is as strict as real drives where a drive's rule decides whether a job
//! is certified correctly; each rule cites its source in `docs/purge.md`:
//! SET MAX ADDRESS EXT only right after READ NATIVE MAX ADDRESS EXT, one
//! non-volatile SET MAX per power cycle, Accessible Max Address drives that
//! abort the HPA commands, the host's block device keeping its size until a
//! rescan, libata's answer to CK_COND on data commands, fixed-format sense
//! where the translator refuses D_SENSE, devices that refuse descriptor sense
//! or report progress in descriptor 0Ah, and a sanitize that is already
//! running (after a power loss) when a new command arrives.

mod ata;
mod config;
mod health;
mod io;
mod media;
mod nvme;
mod scsi;
mod security;

pub use config::{CmdMatch, Fault, ScsiProgress, SimConfig, SimKind};
pub use health::SimHealth;
pub use io::SatPath;
pub use media::Fill;
pub use security::SecState;

use lethe_cmds::ata::{AtaCommand, AtaRegisters, Password};
use lethe_cmds::nvme::{NvmeAdminCmd, NvmeCompletion};
use lethe_cmds::scsi::{ScsiCdb, Sense};
use lethe_core::device::{BlockDevice, Geometry, IoFault};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A clock the test advances by hand. Clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct SimClock(Arc<AtomicU64>);

impl SimClock {
    /// A clock at time zero.
    pub fn new() -> Self {
        Self::default()
    }
    /// Milliseconds since start.
    pub fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
    /// Move time forward.
    pub fn advance_ms(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

/// Why a command did not complete at the transport level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The device is gone (ENODEV).
    #[error("device gone")]
    Gone,
    /// The command timed out (no completion).
    #[error("command timed out")]
    Timeout,
    /// The caller passed a data buffer that does not match the command.
    #[error("bad request: {0}")]
    BadRequest(String),
}

/// An ATA command's completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtaResponse {
    /// Result registers.
    pub regs: AtaRegisters,
    /// Data-in bytes.
    pub data: Vec<u8>,
}

/// An NVMe admin command's completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvmeResponse {
    /// Completion entry.
    pub completion: NvmeCompletion,
    /// Data-in bytes.
    pub data: Vec<u8>,
}

/// A SCSI command's completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScsiResponse {
    /// SCSI status: 00h GOOD, 02h CHECK CONDITION.
    pub status: u8,
    /// Sense data with CHECK CONDITION.
    pub sense: Option<Sense>,
    /// The sense bytes as they go on the wire (`sense` decoded from them).
    pub sense_bytes: Vec<u8>,
    /// Data-in bytes.
    pub data: Vec<u8>,
}

impl ScsiResponse {
    pub(crate) fn good(data: Vec<u8>) -> Self {
        ScsiResponse {
            status: 0,
            sense: None,
            sense_bytes: Vec::new(),
            data,
        }
    }
    pub(crate) fn check(sense: Sense) -> Self {
        ScsiResponse {
            status: 2,
            sense: Some(sense),
            sense_bytes: sense.encode(),
            data: Vec::new(),
        }
    }
    /// CHECK CONDITION with sense bytes built elsewhere (SAT fixed layouts).
    pub(crate) fn check_raw(bytes: Vec<u8>, data: Vec<u8>) -> Self {
        ScsiResponse {
            status: 2,
            sense: Sense::decode(&bytes).ok(),
            sense_bytes: bytes,
            data,
        }
    }
}

/// Where a sanitize operation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SanOp {
    /// Idle; `completed` = the last sanitize completed without error.
    Idle { completed: bool },
    /// Running since `start_ms`.
    Running {
        start_ms: u64,
        erase: media::Erase,
        will_fail: bool,
        unrestricted: bool,
        cdw10: u32,
    },
    /// Failed; `unrestricted` = may be exited by exit-failure-mode / clear.
    Failed { unrestricted: bool },
}

/// Mutable drive state.
#[derive(Debug)]
pub(crate) struct State {
    pub media: media::Media,
    pub sec: security::Security,
    pub san: SanOp,
    pub san_frozen: bool,
    /// CDW10 of the last NVMe sanitize (echoed as SCDW10).
    pub last_scdw10: u32,
    pub ever_sanitized: bool,
    /// Accessible max sectors now (HPA/AMA), after the next power-on
    /// (non-volatile setting), native sectors (DCO), and what the host's block
    /// layer believes until a rescan.
    pub max_sectors: u64,
    pub persistent_max: u64,
    pub native_sectors: u64,
    pub host_sectors: u64,
    /// The last command completed was a good READ NATIVE MAX ADDRESS EXT.
    pub after_read_native: bool,
    /// ... as seen by the command being executed now.
    pub prev_read_native: bool,
    /// A non-volatile SET MAX ADDRESS EXT was already accepted this power cycle.
    pub set_max_nv_used: bool,
    /// FREEZE ACCESSIBLE MAX ADDRESS EXT is in force.
    pub ama_frozen: bool,
    /// D_SENSE of the Control mode page (descriptor-format sense).
    pub d_sense: bool,
    /// NVMe namespaces 2..=n.
    pub other_ns: Vec<media::Media>,
    pub faults: Vec<Fault>,
    pub gone: bool,
    pub power_cycles: u32,
    pub commands: u64,
    /// What SMART / health commands report.
    pub health: health::SimHealth,
    /// The transport timeout of the last command of each ATA opcode.
    pub timeouts: std::collections::BTreeMap<u8, u32>,
}

/// The simulated drive.
#[derive(Debug)]
pub struct SimDrive {
    cfg: SimConfig,
    clock: SimClock,
    state: Mutex<State>,
}

impl SimDrive {
    /// A new drive, all sectors reading as `fill`.
    pub fn new(cfg: SimConfig, clock: SimClock) -> Self {
        let state = State {
            media: media::Media::new(Fill::Byte(0)),
            sec: security::Security::new(),
            san: SanOp::Idle { completed: false },
            san_frozen: false,
            last_scdw10: 0,
            ever_sanitized: false,
            max_sectors: cfg.sectors,
            persistent_max: cfg.sectors,
            native_sectors: cfg.sectors,
            host_sectors: cfg.sectors,
            after_read_native: false,
            prev_read_native: false,
            set_max_nv_used: false,
            ama_frozen: false,
            d_sense: false,
            other_ns: (1..cfg.nvme_namespaces.max(1))
                .map(|_| media::Media::new(Fill::Byte(0)))
                .collect(),
            faults: Vec::new(),
            gone: false,
            power_cycles: 0,
            commands: 0,
            health: health::SimHealth::default(),
            timeouts: Default::default(),
        };
        SimDrive {
            cfg,
            clock,
            state: Mutex::new(state),
        }
    }

    /// The drive's configuration.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// The shared clock.
    pub fn clock(&self) -> &SimClock {
        &self.clock
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the model half-updated in
        // a way tests care about; recover the guard instead of propagating.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Add a scripted fault.
    pub fn inject(&self, f: Fault) {
        self.lock().faults.push(f);
    }

    /// Hide sectors above `sectors` with a non-volatile HPA (or Accessible
    /// Max Address), as a vendor or BIOS would; the host booted seeing it.
    pub fn set_hpa(&self, sectors: u64) {
        let mut s = self.lock();
        s.max_sectors = sectors.min(s.native_sectors);
        s.persistent_max = s.max_sectors;
        s.host_sectors = s.max_sectors;
    }

    /// Reduce the native capacity with a DCO.
    pub fn set_dco(&self, sectors: u64) {
        let mut s = self.lock();
        s.native_sectors = sectors.min(self.cfg.sectors);
        s.max_sectors = s.max_sectors.min(s.native_sectors);
        s.persistent_max = s.persistent_max.min(s.native_sectors);
        s.host_sectors = s.host_sectors.min(s.max_sectors);
    }

    /// The host re-reads the capacity (Linux: a disk revalidation); until
    /// then the block device keeps the size it had.
    pub fn rescan(&self) {
        let mut s = self.lock();
        s.host_sectors = s.max_sectors;
    }

    /// Sectors the drive accepts now (its accessible max address + 1).
    pub fn accessible_sectors(&self) -> u64 {
        self.lock().max_sectors
    }

    /// Model a BIOS that issues FREEZE ACCESSIBLE MAX ADDRESS EXT at boot.
    pub fn bios_ama_freeze(&self) {
        self.lock().ama_frozen = true;
    }

    /// Power comes back with a sanitize running that this job did not send
    /// (ACS-3 7.36.1 / NVMe: an interrupted sanitize resumes at power-on).
    /// NVMe's log names it as a Crypto Erase (SCDW10 = 4). A drive without
    /// any sanitize operation cannot be sanitizing: nothing happens.
    pub fn sanitize_running_at_power_on(&self) {
        let mut s = self.lock();
        self.start_foreign_sanitize(&mut s);
    }

    /// True when the drive has any sanitize operation of its command set.
    pub fn supports_sanitize(&self) -> bool {
        let c = &self.cfg;
        let (a, b, o) = match c.kind {
            SimKind::Sata => c.ata_sanitize,
            SimKind::Sas => c.scsi_sanitize,
            SimKind::Nvme => return lethe_cmds::nvme::SaniCap::from_raw(c.nvme_sanicap).any(),
        };
        a || b || o
    }

    fn start_foreign_sanitize(&self, s: &mut State) {
        if !self.supports_sanitize() {
            return;
        }
        const CRYPTO_ERASE_CDW10: u32 = 4;
        s.last_scdw10 = CRYPTO_ERASE_CDW10;
        self.start_sanitize(s, media::Erase::Crypto, false, CRYPTO_ERASE_CDW10);
        let will_fail = matches!(
            s.san,
            SanOp::Running {
                will_fail: true,
                ..
            }
        );
        if let SanOp::Running { will_fail: wf, .. } = &mut s.san {
            // A scripted SanitizeFails is meant for Lethe's own command.
            *wf = false;
        }
        if will_fail {
            s.faults.push(Fault::SanitizeFails);
        }
    }

    /// Model a BIOS that issues SECURITY FREEZE LOCK at boot.
    pub fn bios_freeze(&self) {
        self.lock().sec.freeze();
    }

    /// Model a BIOS that issues SANITIZE FREEZE LOCK EXT at boot.
    pub fn bios_sanitize_freeze(&self) {
        self.lock().san_frozen = true;
    }

    /// Remove power and restore it: security relocks, freezes clear, a running
    /// sanitize restarts from zero (ACS-3 7.36.1, NVMe 8.21: it resumes after power-on).
    pub fn power_cycle(&self) {
        let now = self.clock.now_ms();
        power_cycle_locked(&mut self.lock(), now);
    }

    /// The ATA security state (SEC1..SEC6).
    pub fn security_state(&self) -> SecState {
        self.lock().sec.state()
    }

    /// True when any ATA password is set (the thing Lethe must never leave behind).
    pub fn password_set(&self) -> bool {
        self.lock().sec.user.is_some()
    }

    /// The user password currently set (tests check escrow/cleanup).
    pub fn user_password(&self) -> Option<Password> {
        self.lock().sec.user
    }

    /// True once the drive has vanished (a `GoneAfter` fault fired).
    pub fn is_gone(&self) -> bool {
        self.lock().gone
    }

    /// Number of power cycles so far.
    pub fn power_cycles(&self) -> u32 {
        self.lock().power_cycles
    }

    /// The transport timeout the host gave the last ATA command `opcode`.
    pub fn last_timeout_ms(&self, opcode: u8) -> Option<u32> {
        self.lock().timeouts.get(&opcode).copied()
    }

    /// Pre-command bookkeeping: time-based faults, sanitize completion, the
    /// gone countdown and matching one-shot faults.
    pub(crate) fn begin(
        &self,
        m: CmdMatch,
    ) -> Result<(MutexGuard<'_, State>, Option<Fault>), SimError> {
        let mut s = self.lock();
        self.tick(&mut s);
        if s.gone {
            return Err(SimError::Gone);
        }
        s.commands += 1;
        s.prev_read_native = std::mem::replace(&mut s.after_read_native, false);
        if let Some(i) = s
            .faults
            .iter()
            .position(|f| matches!(f, Fault::ForeignSanitize(c) if matches(*c, m)))
        {
            s.faults.remove(i);
            if !matches!(s.san, SanOp::Running { .. }) {
                self.start_foreign_sanitize(&mut s);
            }
        }
        let mut hit = None;
        let mut i = 0;
        while i < s.faults.len() {
            match s.faults[i] {
                Fault::GoneAfter(0) => {
                    s.gone = true;
                    s.faults.remove(i);
                    return Err(SimError::Gone);
                }
                Fault::GoneAfter(n) => {
                    s.faults[i] = Fault::GoneAfter(n - 1);
                    i += 1;
                }
                Fault::Abort(c) | Fault::Timeout(c) if hit.is_none() && matches(c, m) => {
                    hit = Some(s.faults.remove(i));
                }
                _ => i += 1,
            }
        }
        if hit.is_some_and(|f| matches!(f, Fault::Timeout(_))) {
            return Err(SimError::Timeout);
        }
        Ok((s, hit))
    }

    /// Advance time-driven state: power loss and sanitize completion.
    pub(crate) fn tick(&self, s: &mut State) {
        let now = self.clock.now_ms();
        let mut lost = false;
        s.faults.retain(|f| match f {
            Fault::PowerLossAt(t) if *t <= now => {
                lost = true;
                false
            }
            _ => true,
        });
        if lost {
            power_cycle_locked(s, now);
        }
        if let SanOp::Running { start_ms, .. } = s.san {
            if now.saturating_sub(start_ms) >= self.cfg.sanitize_ms {
                finish_sanitize(s);
            }
        }
    }

    /// Sanitize progress out of 65536 while running.
    pub(crate) fn san_progress(&self, s: &State) -> Option<u16> {
        match s.san {
            SanOp::Running { start_ms, .. } => {
                let el = self.clock.now_ms().saturating_sub(start_ms);
                let p = el.saturating_mul(65536) / self.cfg.sanitize_ms.max(1);
                Some(p.min(65535) as u16)
            }
            _ => None,
        }
    }

    /// Start a sanitize; consumes a pending `SanitizeFails` fault.
    pub(crate) fn start_sanitize(
        &self,
        s: &mut State,
        erase: media::Erase,
        unrestricted: bool,
        cdw10: u32,
    ) {
        let will_fail = take_fault(s, |f| matches!(f, Fault::SanitizeFails));
        s.san = SanOp::Running {
            start_ms: self.clock.now_ms(),
            erase,
            will_fail,
            unrestricted,
            cdw10,
        };
    }

    /// Geometry as the host currently sees it (its size until a rescan).
    fn geometry_now(&self, s: &State) -> Geometry {
        Geometry {
            size_bytes: s.host_sectors * 512,
            logical_sector: 512,
            physical_sector: 512,
        }
    }

    /// Why media access is refused right now, if it is.
    fn media_blocked(&self, s: &State) -> Option<IoFault> {
        if s.gone {
            return Some(IoFault::Gone("simulated drive removed".into()));
        }
        if s.sec.locked() {
            return Some(IoFault::Other("ATA security locked".into()));
        }
        match s.san {
            SanOp::Running { .. } => Some(IoFault::Other("sanitize in progress".into())),
            SanOp::Failed { .. } => {
                Some(IoFault::Media("sanitize failed: media inaccessible".into()))
            }
            SanOp::Idle { .. } => None,
        }
    }

    fn io_check(&self, s: &State, len: usize, offset: u64) -> Result<(u64, u64), IoFault> {
        if let Some(f) = self.media_blocked(s) {
            return Err(f);
        }
        if len % 512 != 0 || offset % 512 != 0 {
            return Err(IoFault::Other(format!(
                "unaligned I/O at {offset} len {len}"
            )));
        }
        let first = offset / 512;
        let n = len as u64 / 512;
        if first.saturating_add(n) > s.host_sectors {
            return Err(IoFault::Other(format!(
                "I/O beyond the end of the block device at LBA {first}"
            )));
        }
        if first.saturating_add(n) > s.max_sectors {
            return Err(IoFault::Media(format!(
                "ID NOT FOUND: LBA {first} is beyond the accessible max address"
            )));
        }
        if let Some(bad) = s.faults.iter().find_map(|f| match f {
            Fault::MediumError(l) if (first..first + n).contains(l) => Some(*l),
            _ => None,
        }) {
            return Err(IoFault::Media(format!(
                "unrecovered read error at LBA {bad}"
            )));
        }
        Ok((first, n))
    }

    /// Fill all native sectors with a known pattern (test setup).
    pub fn fill_native(&self, byte: u8) {
        self.lock().media.erase(media::Erase::Fill(byte));
    }

    /// Read sectors regardless of HPA/lock state (the test's view of the platters).
    pub fn peek(&self, lba: u64) -> Vec<u8> {
        let mut s = self.lock();
        self.tick(&mut s);
        s.media.read_sector(lba)
    }

    /// Write a sector of NVMe namespace `nsid` directly (test setup).
    pub fn poke_ns(&self, nsid: u32, lba: u64, data: &[u8]) {
        let mut s = self.lock();
        if let Some(m) = ns_media(&mut s, nsid) {
            m.write_sector(lba, data);
        }
    }

    /// Read a sector of NVMe namespace `nsid` (the test's view of the flash).
    pub fn peek_ns(&self, nsid: u32, lba: u64) -> Vec<u8> {
        let mut s = self.lock();
        self.tick(&mut s);
        ns_media(&mut s, nsid).map_or_else(Vec::new, |m| m.read_sector(lba))
    }
}

/// The medium of NVMe namespace `nsid` (1 is the block device's).
pub(crate) fn ns_media(s: &mut State, nsid: u32) -> Option<&mut media::Media> {
    match nsid {
        0 => None,
        1 => Some(&mut s.media),
        n => s.other_ns.get_mut(usize::try_from(n - 2).ok()?),
    }
}

fn matches(c: CmdMatch, m: CmdMatch) -> bool {
    c == CmdMatch::Any || c == m
}

pub(crate) fn take_fault(s: &mut State, pred: impl Fn(&Fault) -> bool) -> bool {
    if let Some(i) = s.faults.iter().position(pred) {
        s.faults.remove(i);
        true
    } else {
        false
    }
}

/// Apply an erase to namespace 1 (and every other namespace when
/// `all_namespaces`), unless a scripted [`Fault::LieAboutErase`] swallows it.
pub(crate) fn apply_erase(s: &mut State, e: media::Erase, all_namespaces: bool) {
    if !take_fault(s, |f| matches!(f, Fault::LieAboutErase)) {
        s.media.erase(e);
        if all_namespaces {
            for m in &mut s.other_ns {
                m.erase(e);
            }
        }
    }
}

/// End a running sanitize: apply its erase, or fail it if scripted to.
pub(crate) fn finish_sanitize(s: &mut State) {
    if let SanOp::Running {
        erase,
        will_fail,
        unrestricted,
        ..
    } = s.san
    {
        if will_fail {
            s.san = SanOp::Failed { unrestricted };
        } else {
            // Sanitize acts on the whole NVM subsystem: every namespace.
            apply_erase(s, erase, true);
            s.san = SanOp::Idle { completed: true };
            s.ever_sanitized = true;
        }
    }
}

fn power_cycle_locked(s: &mut State, now: u64) {
    s.power_cycles += 1;
    s.sec.power_cycle();
    s.san_frozen = false;
    // A volatile SET MAX is lost; the non-volatile setting comes back.
    s.max_sectors = s.persistent_max;
    s.set_max_nv_used = false;
    s.ama_frozen = false;
    s.after_read_native = false;
    // D_SENSE is a current (not saved) mode value: back to fixed format.
    s.d_sense = false;
    if let SanOp::Running { start_ms, .. } = &mut s.san {
        *start_ms = now;
    }
}

impl BlockDevice for SimDrive {
    fn geometry(&self) -> Geometry {
        self.geometry_now(&self.lock())
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> Result<(), IoFault> {
        let mut s = self.lock();
        self.tick(&mut s);
        // The drive sees a command: a pending READ NATIVE MAX no longer counts.
        s.after_read_native = false;
        let (first, _) = self.io_check(&s, buf.len(), offset)?;
        for (i, chunk) in buf.chunks(512).enumerate() {
            s.media.write_sector(first + i as u64, chunk);
        }
        Ok(())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), IoFault> {
        let mut s = self.lock();
        self.tick(&mut s);
        s.after_read_native = false;
        let (first, _) = self.io_check(&s, buf.len(), offset)?;
        for (i, chunk) in buf.chunks_mut(512).enumerate() {
            chunk.copy_from_slice(&s.media.read_sector(first + i as u64));
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), IoFault> {
        let s = self.lock();
        if s.gone {
            return Err(IoFault::Gone("simulated drive removed".into()));
        }
        Ok(())
    }
}

impl SimDrive {
    /// Execute an ATA command; `data_out` is the PIO-out payload.
    pub fn ata(&self, cmd: &AtaCommand, data_out: &[u8]) -> Result<AtaResponse, SimError> {
        ata::execute(self, cmd, data_out)
    }

    /// Execute an NVMe admin command.
    pub fn nvme_admin(
        &self,
        cmd: &NvmeAdminCmd,
        data_out: &[u8],
    ) -> Result<NvmeResponse, SimError> {
        nvme::execute(self, cmd, data_out)
    }

    /// Execute a SCSI command (ATA PASS-THROUGH(16) is translated for SATA drives).
    pub fn scsi(&self, cdb: &ScsiCdb, data_out: &[u8]) -> Result<ScsiResponse, SimError> {
        scsi::execute(self, cdb, data_out)
    }
}

#[cfg(test)]
mod tests;
