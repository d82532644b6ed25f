//! Privileges and roles. A [`Privilege`] is one kind of action the API can take;
//! every route declares exactly one. A [`Role`] is a named, fixed set of
//! privileges (issue 12): auditor reads, operator runs jobs, admin manages users,
//! configuration and keys. The `emergency` grant is not a role: it adds only
//! [`Privilege::RequestEmergencyAccess`], and elevation comes from an approved
//! break-glass request ([`crate::breakglass`]).

use serde::{Deserialize, Serialize};

macro_rules! privileges {
    ($($(#[$doc:meta])* $v:ident = $name:literal, fresh = $fresh:literal;)*) => {
        /// One kind of action. Names are stable (they appear in the audit log).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Privilege { $($(#[$doc])* $v,)* }

        impl Privilege {
            /// Every privilege, in declaration order.
            pub const ALL: &'static [Privilege] = &[$(Privilege::$v,)*];

            /// The stable snake_case name.
            pub fn name(self) -> &'static str {
                match self { $(Privilege::$v => $name,)* }
            }

            /// Parses a stable name.
            pub fn parse(s: &str) -> Option<Privilege> {
                match s { $($name => Some(Privilege::$v),)* _ => None }
            }

            /// Destructive or sensitive: needs a re-authentication (password + second
            /// factor) within the re-auth window, and is never available to API tokens.
            pub fn requires_fresh_auth(self) -> bool {
                match self { $(Privilege::$v => $fresh,)* }
            }
        }
    };
}

privileges! {
    /// See one's own session; log out; re-authenticate. Every role has it.
    OwnSession = "own_session", fresh = false;
    /// Change one's own password, regenerate one's own recovery codes.
    ManageOwnCredentials = "manage_own_credentials", fresh = false;
    /// List drives and bays, their state and protection.
    ReadDrives = "read_drives", fresh = false;
    /// List jobs and follow their progress.
    ReadJobs = "read_jobs", fresh = false;
    /// List, download and verify sanitization certificates.
    ReadCertificates = "read_certificates", fresh = false;
    /// Read and export reports (batch/system reports, CSV/ZIP exports).
    ReadReports = "read_reports", fresh = false;
    /// Query, export and verify the audit log.
    ReadAuditLog = "read_audit_log", fresh = false;
    /// Backup jobs, snapshots, history and drill results.
    ReadBackupHistory = "read_backup_history", fresh = false;
    /// Controller status: relay, interlock, e-stop, faults.
    ReadControllerStatus = "read_controller_status", fresh = false;
    /// Blink a bay's locate LED.
    LocateBay = "locate_bay", fresh = false;
    /// Start an overwrite (Clear) sanitization.
    StartWipe = "start_wipe", fresh = true;
    /// Start a drive-native Purge (sanitize, crypto erase, secure erase).
    StartPurge = "start_purge", fresh = true;
    /// Arm and fire the degausser.
    StartDegauss = "start_degauss", fresh = true;
    /// Cancel or resume a job.
    ControlJobs = "control_jobs", fresh = false;
    /// Controller actions that erase nothing: LED test, relay self-test.
    OperateController = "operate_controller", fresh = false;
    /// Start a backup.
    RunBackup = "run_backup", fresh = false;
    /// Start a restore drill.
    RunDrill = "run_drill", fresh = false;
    /// Restore a snapshot into the scratch area.
    RestoreToScratch = "restore_to_scratch", fresh = false;
    /// Restore an image onto a device (overwrites it).
    RestoreOntoDevice = "restore_onto_device", fresh = true;
    /// Create API tokens for oneself (scoped to at most one's own role); revoke them.
    ManageOwnTokens = "manage_own_tokens", fresh = true;
    /// Add, disable, enable, remove users; roles; reset second factors; revoke anyone's tokens.
    ManageUsers = "manage_users", fresh = true;
    /// Change the appliance configuration, including the breached-password list.
    ManageConfiguration = "manage_configuration", fresh = true;
    /// See, rotate or export signing and backup keys.
    ManageKeys = "manage_keys", fresh = true;
    /// Approve or deny another user's break-glass request.
    ApproveBreakGlass = "approve_break_glass", fresh = true;
    /// Write the mandatory review that closes a break-glass episode.
    ReviewBreakGlass = "review_break_glass", fresh = false;
    /// Ask for time-boxed elevated access (only from the `emergency` grant).
    RequestEmergencyAccess = "request_emergency_access", fresh = false;
}

impl std::fmt::Display for Privilege {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of privileges (a bit set; `Privilege::ALL.len()` ≤ 64).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct PrivilegeSet(u64);

const _: () = assert!(Privilege::ALL.len() <= 64);

impl PrivilegeSet {
    /// No privilege.
    pub const EMPTY: PrivilegeSet = PrivilegeSet(0);

    const fn bit(p: Privilege) -> u64 {
        1u64 << (p as u32)
    }

    /// A set of the given privileges.
    pub const fn of(ps: &[Privilege]) -> PrivilegeSet {
        let mut bits = 0;
        let mut i = 0;
        while i < ps.len() {
            bits |= Self::bit(ps[i]);
            i += 1;
        }
        PrivilegeSet(bits)
    }

    /// Whether `p` is in the set.
    pub const fn contains(self, p: Privilege) -> bool {
        self.0 & Self::bit(p) != 0
    }

    /// Union.
    pub const fn union(self, o: PrivilegeSet) -> PrivilegeSet {
        PrivilegeSet(self.0 | o.0)
    }

    /// Intersection.
    pub const fn intersection(self, o: PrivilegeSet) -> PrivilegeSet {
        PrivilegeSet(self.0 & o.0)
    }

    /// Whether every privilege of `self` is in `o`.
    pub const fn is_subset(self, o: PrivilegeSet) -> bool {
        self.0 & !o.0 == 0
    }

    /// The members, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Privilege> {
        Privilege::ALL
            .iter()
            .copied()
            .filter(move |p| self.contains(*p))
    }
}

impl Serialize for PrivilegeSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// A named set of privileges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads certificates, reports, audit log, backup history; never starts a job,
    /// never sees a secret.
    Auditor,
    /// Wipes, purges, degausses, runs backups and drills, restores to scratch;
    /// never manages users or keys.
    Operator,
    /// Everything an operator does, plus users, configuration, keys, restores onto
    /// devices, and break-glass approval.
    Admin,
}

use Privilege as P;

const AUDITOR: PrivilegeSet = PrivilegeSet::of(&[
    P::OwnSession,
    P::ManageOwnCredentials,
    P::ReadDrives,
    P::ReadJobs,
    P::ReadCertificates,
    P::ReadReports,
    P::ReadAuditLog,
    P::ReadBackupHistory,
    P::ReadControllerStatus,
    P::ManageOwnTokens,
]);

const OPERATOR: PrivilegeSet = AUDITOR.union(PrivilegeSet::of(&[
    P::LocateBay,
    P::StartWipe,
    P::StartPurge,
    P::StartDegauss,
    P::ControlJobs,
    P::OperateController,
    P::RunBackup,
    P::RunDrill,
    P::RestoreToScratch,
]));

const ADMIN: PrivilegeSet = OPERATOR.union(PrivilegeSet::of(&[
    P::RestoreOntoDevice,
    P::ManageUsers,
    P::ManageConfiguration,
    P::ManageKeys,
    P::ApproveBreakGlass,
    P::ReviewBreakGlass,
]));

/// What the `emergency` grant adds to a user's role.
pub const EMERGENCY_GRANT: PrivilegeSet = PrivilegeSet::of(&[P::RequestEmergencyAccess]);

impl Role {
    /// Every role, least powerful first.
    pub const ALL: &'static [Role] = &[Role::Auditor, Role::Operator, Role::Admin];

    /// The role's privileges.
    pub const fn privileges(self) -> PrivilegeSet {
        match self {
            Role::Auditor => AUDITOR,
            Role::Operator => OPERATOR,
            Role::Admin => ADMIN,
        }
    }

    /// The stable name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Auditor => "auditor",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Parses `auditor|operator|admin`.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.iter().copied().find(|r| r.name() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for p in Privilege::ALL {
            assert_eq!(Privilege::parse(p.name()), Some(*p));
            assert!(seen.insert(p.name()));
            assert_eq!(serde_json::to_value(p).unwrap(), p.name());
        }
        for r in Role::ALL {
            assert_eq!(Role::parse(r.name()), Some(*r));
        }
    }

    /// safeguard: 164.312(a)(1)
    #[test]
    fn roles_are_nested_and_issue_12_boundaries_hold() {
        assert!(AUDITOR.is_subset(OPERATOR));
        assert!(OPERATOR.is_subset(ADMIN));
        // auditor: never starts a job or sees a secret
        for p in [
            P::StartWipe,
            P::StartPurge,
            P::StartDegauss,
            P::RunBackup,
            P::RunDrill,
            P::ManageKeys,
            P::ManageUsers,
            P::ControlJobs,
        ] {
            assert!(!Role::Auditor.privileges().contains(p), "{p}");
        }
        // operator: never manages users or keys, never restores onto a device
        for p in [
            P::ManageUsers,
            P::ManageKeys,
            P::ManageConfiguration,
            P::RestoreOntoDevice,
            P::ApproveBreakGlass,
        ] {
            assert!(!Role::Operator.privileges().contains(p), "{p}");
        }
        // the emergency request comes from the grant only
        for r in Role::ALL {
            assert!(!r.privileges().contains(P::RequestEmergencyAccess));
        }
        // admin has everything else
        for p in Privilege::ALL {
            assert_eq!(
                Role::Admin.privileges().contains(*p),
                *p != P::RequestEmergencyAccess,
                "{p}"
            );
        }
    }

    /// docs/auth.md's role table is the code's.
    /// safeguard: 164.312(a)(1)
    #[test]
    fn docs_role_table_matches_the_code() {
        let doc = include_str!("../../../docs/auth.md");
        let rows = doc.lines().filter(|l| l.starts_with("| `")).count();
        assert_eq!(rows, Privilege::ALL.len());
        for p in Privilege::ALL {
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", p.name())))
                .unwrap_or_else(|| panic!("{p} missing from docs/auth.md"));
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            for (i, r) in Role::ALL.iter().enumerate() {
                assert_eq!(
                    cells[2 + i] == "✓",
                    r.privileges().contains(*p),
                    "{p} / {r}"
                );
            }
            assert_eq!(cells[5] == "**F**", p.requires_fresh_auth(), "{p} fresh");
        }
    }

    #[test]
    fn set_algebra() {
        let a = PrivilegeSet::of(&[P::StartWipe, P::ReadJobs]);
        let b = PrivilegeSet::of(&[P::ReadJobs, P::ManageKeys]);
        assert_eq!(a.intersection(b), PrivilegeSet::of(&[P::ReadJobs]));
        assert_eq!(a.union(b).iter().count(), 3);
        assert!(PrivilegeSet::EMPTY.is_subset(a));
        assert!(!a.is_subset(b));
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"["read_jobs","start_wipe"]"#
        );
    }

    #[test]
    fn fresh_auth_covers_issue_12_list() {
        for p in [
            P::StartWipe,
            P::StartPurge,
            P::StartDegauss,
            P::RestoreOntoDevice,
            P::ManageKeys,
            P::ManageUsers,
        ] {
            assert!(p.requires_fresh_auth(), "{p}");
        }
        for p in [P::ReadJobs, P::OwnSession, P::ReadAuditLog] {
            assert!(!p.requires_fresh_auth(), "{p}");
        }
    }
}
