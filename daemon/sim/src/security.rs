//! ATA Security state machine (ACS-3 4.18, figure 10).
//!
//! SEC0 and SEC3 are the powered-down states; a powered drive is in SEC1
//! (disabled), SEC2 (disabled, frozen), SEC4 (locked), SEC5 (unlocked) or SEC6
//! (unlocked, frozen). Five bad passwords set the count-expired flag until the
//! next power cycle.

use lethe_cmds::ata::{Password, PasswordId, SecurityLevel, SecurityPayload};

/// Powered security states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecState {
    /// SEC1: no user password, not frozen.
    Sec1,
    /// SEC2: no user password, frozen.
    Sec2,
    /// SEC4: password set, locked.
    Sec4,
    /// SEC5: password set, unlocked, not frozen.
    Sec5,
    /// SEC6: password set, unlocked, frozen.
    Sec6,
}

/// Wrong-password attempts that expire the counter.
pub const MAX_ATTEMPTS: u8 = 5;

#[derive(Debug)]
pub(crate) struct Security {
    pub user: Option<Password>,
    pub master: Password,
    pub master_rev: u16,
    pub level: SecurityLevel,
    locked: bool,
    frozen: bool,
    pub attempts: u8,
    /// ERASE PREPARE was the previous command.
    pub prepared: bool,
}

/// The outcome of a security command.
pub(crate) type SecResult = Result<(), ()>;

impl Security {
    pub(crate) fn new() -> Self {
        Security {
            user: None,
            master: Password([0; 32]),
            master_rev: 0xFFFE,
            level: SecurityLevel::High,
            locked: false,
            frozen: false,
            attempts: 0,
            prepared: false,
        }
    }

    pub(crate) fn state(&self) -> SecState {
        match (self.user.is_some(), self.locked, self.frozen) {
            (false, _, false) => SecState::Sec1,
            (false, _, true) => SecState::Sec2,
            (true, true, _) => SecState::Sec4,
            (true, false, false) => SecState::Sec5,
            (true, false, true) => SecState::Sec6,
        }
    }

    pub(crate) fn locked(&self) -> bool {
        self.state() == SecState::Sec4
    }
    pub(crate) fn frozen(&self) -> bool {
        self.frozen
    }
    pub(crate) fn expired(&self) -> bool {
        self.attempts >= MAX_ATTEMPTS
    }

    pub(crate) fn freeze(&mut self) {
        // FREEZE LOCK is aborted in SEC4 (ACS-3 7.45.6.4).
        if !self.locked() {
            self.frozen = true;
        }
    }

    pub(crate) fn power_cycle(&mut self) {
        self.frozen = false;
        self.attempts = 0;
        self.prepared = false;
        self.locked = self.user.is_some();
    }

    /// Does `p` authorise an operation that the master may do at this level?
    fn check(&mut self, p: &SecurityPayload, master_ok: bool) -> bool {
        let good = match p.id {
            PasswordId::User => self.user == Some(p.password),
            PasswordId::Master => master_ok && self.master == p.password,
        };
        if !good {
            self.attempts = self.attempts.saturating_add(1);
        }
        good
    }

    pub(crate) fn set_password(&mut self, p: &SecurityPayload) -> SecResult {
        if !matches!(self.state(), SecState::Sec1 | SecState::Sec5) {
            return Err(());
        }
        match p.id {
            PasswordId::User => {
                self.user = Some(p.password);
                self.level = p.level;
            }
            PasswordId::Master => {
                // 0xFFFF is not a valid master password identifier.
                if p.master_revision == 0xFFFF {
                    return Err(());
                }
                self.master = p.password;
                self.master_rev = p.master_revision;
            }
        }
        Ok(())
    }

    pub(crate) fn unlock(&mut self, p: &SecurityPayload) -> SecResult {
        match self.state() {
            SecState::Sec4 | SecState::Sec5 if !self.expired() => {
                let master_ok = self.level == SecurityLevel::High;
                if self.check(p, master_ok) {
                    self.locked = false;
                    Ok(())
                } else {
                    Err(())
                }
            }
            _ => Err(()),
        }
    }

    pub(crate) fn disable(&mut self, p: &SecurityPayload) -> SecResult {
        if self.state() != SecState::Sec5 || self.expired() {
            return Err(());
        }
        let master_ok = self.level == SecurityLevel::High;
        if self.check(p, master_ok) {
            self.user = None;
            Ok(())
        } else {
            Err(())
        }
    }

    pub(crate) fn prepare(&mut self) -> SecResult {
        if self.frozen {
            return Err(());
        }
        self.prepared = true;
        Ok(())
    }

    /// ERASE UNIT authorisation; on success the password is gone (SEC1).
    /// The master password may erase at either level.
    pub(crate) fn erase_unit(&mut self, p: &SecurityPayload) -> SecResult {
        let prepared = std::mem::replace(&mut self.prepared, false);
        if !prepared || self.frozen || self.expired() {
            return Err(());
        }
        if self.user.is_none() && p.id == PasswordId::User {
            return Err(());
        }
        if !self.check(p, true) {
            return Err(());
        }
        self.user = None;
        self.locked = false;
        self.level = SecurityLevel::High;
        Ok(())
    }
}
