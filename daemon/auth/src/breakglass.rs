//! Break-glass (emergency access, HIPAA §164.312(a)(2)(ii)), remote path: a pure
//! state machine. (The local path, console recovery, is
//! [`crate::Authenticator::recover`].)
//!
//! ```text
//!            approve (by another user)         time ≥ until, or end early
//! Pending ─────────────────────────► Granted ─────────────────────────► Ended ──review──► Reviewed
//!    │  └── time ≥ auto_grant_at ──────┘                                 (by another user,
//!    ├── deny (by another user) ──► Denied                                 notes required)
//!    └── cancel (by the requester) ─► Cancelled
//! ```
//!
//! A user holding the `emergency` grant asks with a reason; the approvers are
//! notified at once; with no answer the request is granted after a configured
//! wait (vaultwarden's emergency-access model), so help comes at 3 a.m. even
//! when nobody answers. The grant is time-boxed; when it ends, the episode stays
//! open until someone other than the requester writes the review that closes
//! it. Denied and Cancelled requests never gave access and need no review.
//! Every transition returns what happened ([`Transition`]), which the
//! authenticator turns into audit events. Operations never move time: callers
//! apply [`BreakGlassRequest::tick`] first (so an auto-grant is reported by the
//! tick, not lost in a refused approval).

use crate::ids::{BreakGlassId, UserId};
use crate::privilege::Role;
use crate::time::{duration_text, Timestamp};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Configuration of the remote path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakGlassPolicy {
    /// Granted automatically after this wait with no decision (30 min).
    #[serde(with = "duration_text")]
    pub auto_grant_after: Duration,
    /// Length of the elevated access (1 h).
    #[serde(with = "duration_text")]
    pub duration: Duration,
    /// The role the elevation gives (admin).
    pub elevated_role: Role,
    /// Who is notified and may decide, by user name. Empty: every enabled user
    /// holding the approve privilege (admins).
    pub approvers: Vec<crate::ids::UserName>,
}

impl Default for BreakGlassPolicy {
    fn default() -> Self {
        BreakGlassPolicy {
            auto_grant_after: Duration::from_secs(30 * 60),
            duration: Duration::from_secs(3600),
            elevated_role: Role::Admin,
            approvers: Vec::new(),
        }
    }
}

/// Who granted the access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "user", rename_all = "snake_case")]
pub enum Approval {
    Approver(UserId),
    AutoAfterWait,
}

/// How the elevated access ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "user", rename_all = "snake_case")]
pub enum EndReason {
    Expired,
    EndedEarly(UserId),
}

/// The request's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BreakGlassState {
    Pending {
        auto_grant_at: Timestamp,
    },
    Granted {
        by: Approval,
        at: Timestamp,
        until: Timestamp,
    },
    Denied {
        by: UserId,
        at: Timestamp,
    },
    Cancelled {
        at: Timestamp,
    },
    /// Access over; awaiting the mandatory review.
    Ended {
        granted_by: Approval,
        granted_at: Timestamp,
        ended_at: Timestamp,
        reason: EndReason,
    },
    Reviewed {
        granted_by: Approval,
        granted_at: Timestamp,
        ended_at: Timestamp,
        reason: EndReason,
        reviewer: UserId,
        reviewed_at: Timestamp,
        notes: String,
    },
}

/// One request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakGlassRequest {
    pub id: BreakGlassId,
    pub requester: UserId,
    pub reason: String,
    pub requested_at: Timestamp,
    /// The elevated role and its length, fixed at request time.
    pub role: Role,
    #[serde(with = "duration_text")]
    pub duration: Duration,
    pub state: BreakGlassState,
}

/// What a call changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    Granted {
        by: Approval,
        at: Timestamp,
        until: Timestamp,
    },
    Denied {
        by: UserId,
        at: Timestamp,
    },
    Cancelled {
        at: Timestamp,
    },
    Ended {
        reason: EndReason,
        at: Timestamp,
    },
    Reviewed {
        reviewer: UserId,
        at: Timestamp,
    },
}

/// A refused operation; the request is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BreakGlassError {
    #[error("a break-glass request needs a reason")]
    EmptyReason,
    #[error("the reason is limited to {max} characters")]
    ReasonTooLong { max: usize },
    #[error("the request is no longer pending")]
    NotPending,
    #[error("the elevated access is not active")]
    NotGranted,
    #[error("only an ended break-glass episode can be reviewed")]
    NotEnded,
    #[error("the requester cannot decide on their own request")]
    SelfDecision,
    #[error("the requester cannot review their own break-glass episode")]
    SelfReview,
    #[error("only the requester can cancel a request")]
    NotRequester,
    #[error("a review needs notes")]
    EmptyNotes,
}

/// Maximum reason/notes length in characters.
pub const MAX_TEXT: usize = 1000;

fn text(s: &str, empty: BreakGlassError) -> Result<String, BreakGlassError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(empty);
    }
    if t.chars().count() > MAX_TEXT {
        return Err(BreakGlassError::ReasonTooLong { max: MAX_TEXT });
    }
    Ok(t.to_owned())
}

impl BreakGlassRequest {
    /// A new pending request.
    pub fn new(
        id: BreakGlassId,
        requester: UserId,
        reason: &str,
        now: Timestamp,
        policy: &BreakGlassPolicy,
    ) -> Result<BreakGlassRequest, BreakGlassError> {
        Ok(BreakGlassRequest {
            id,
            requester,
            reason: text(reason, BreakGlassError::EmptyReason)?,
            requested_at: now,
            role: policy.elevated_role,
            duration: policy.duration,
            state: BreakGlassState::Pending {
                auto_grant_at: now.plus(policy.auto_grant_after),
            },
        })
    }

    /// Applies the passage of time: auto-grant, then expiry.
    pub fn tick(&mut self, now: Timestamp) -> Vec<Transition> {
        let mut out = Vec::new();
        if let BreakGlassState::Pending { auto_grant_at } = self.state {
            if now >= auto_grant_at {
                let until = auto_grant_at.plus(self.duration);
                self.state = BreakGlassState::Granted {
                    by: Approval::AutoAfterWait,
                    at: auto_grant_at,
                    until,
                };
                out.push(Transition::Granted {
                    by: Approval::AutoAfterWait,
                    at: auto_grant_at,
                    until,
                });
            }
        }
        if let BreakGlassState::Granted { by, at, until } = self.state {
            if now >= until {
                self.state = BreakGlassState::Ended {
                    granted_by: by,
                    granted_at: at,
                    ended_at: until,
                    reason: EndReason::Expired,
                };
                out.push(Transition::Ended {
                    reason: EndReason::Expired,
                    at: until,
                });
            }
        }
        out
    }

    /// Whether the request is still waiting for a decision at `now`.
    fn pending_at(&self, now: Timestamp) -> bool {
        matches!(self.state, BreakGlassState::Pending { auto_grant_at } if now < auto_grant_at)
    }

    /// An approver grants now.
    pub fn approve(&mut self, by: UserId, now: Timestamp) -> Result<Transition, BreakGlassError> {
        if by == self.requester {
            return Err(BreakGlassError::SelfDecision);
        }
        if !self.pending_at(now) {
            return Err(BreakGlassError::NotPending);
        }
        let until = now.plus(self.duration);
        let by = Approval::Approver(by);
        self.state = BreakGlassState::Granted { by, at: now, until };
        Ok(Transition::Granted { by, at: now, until })
    }

    /// An approver refuses.
    pub fn deny(&mut self, by: UserId, now: Timestamp) -> Result<Transition, BreakGlassError> {
        if by == self.requester {
            return Err(BreakGlassError::SelfDecision);
        }
        if !self.pending_at(now) {
            return Err(BreakGlassError::NotPending);
        }
        self.state = BreakGlassState::Denied { by, at: now };
        Ok(Transition::Denied { by, at: now })
    }

    /// The requester withdraws a pending request.
    pub fn cancel(&mut self, by: UserId, now: Timestamp) -> Result<Transition, BreakGlassError> {
        if by != self.requester {
            return Err(BreakGlassError::NotRequester);
        }
        if !self.pending_at(now) {
            return Err(BreakGlassError::NotPending);
        }
        self.state = BreakGlassState::Cancelled { at: now };
        Ok(Transition::Cancelled { at: now })
    }

    /// Ends active access before its time (the requester is done, or an
    /// approver revokes it).
    pub fn end_early(&mut self, by: UserId, now: Timestamp) -> Result<Transition, BreakGlassError> {
        let BreakGlassState::Granted {
            by: granted_by,
            at,
            until,
        } = self.state
        else {
            return Err(BreakGlassError::NotGranted);
        };
        if now >= until || now < at {
            return Err(BreakGlassError::NotGranted);
        }
        let reason = EndReason::EndedEarly(by);
        self.state = BreakGlassState::Ended {
            granted_by,
            granted_at: at,
            ended_at: now,
            reason,
        };
        Ok(Transition::Ended { reason, at: now })
    }

    /// The mandatory review, by someone other than the requester.
    pub fn review(
        &mut self,
        reviewer: UserId,
        now: Timestamp,
        notes: &str,
    ) -> Result<Transition, BreakGlassError> {
        if reviewer == self.requester {
            return Err(BreakGlassError::SelfReview);
        }
        let notes = text(notes, BreakGlassError::EmptyNotes)?;
        let BreakGlassState::Ended {
            granted_by,
            granted_at,
            ended_at,
            reason,
        } = self.state
        else {
            return Err(BreakGlassError::NotEnded);
        };
        self.state = BreakGlassState::Reviewed {
            granted_by,
            granted_at,
            ended_at,
            reason,
            reviewer,
            reviewed_at: now,
            notes,
        };
        Ok(Transition::Reviewed { reviewer, at: now })
    }

    /// `Some(until)` while the elevated access is active at `now`.
    pub fn active_until(&self, now: Timestamp) -> Option<Timestamp> {
        match self.state {
            BreakGlassState::Granted { at, until, .. } if at <= now && now < until => Some(until),
            _ => None,
        }
    }

    /// Still needs someone's attention (pending, active, or awaiting review).
    pub fn is_open(&self) -> bool {
        matches!(
            self.state,
            BreakGlassState::Pending { .. }
                | BreakGlassState::Granted { .. }
                | BreakGlassState::Ended { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::TestEntropy;
    use proptest::prelude::*;

    struct Ids {
        req: UserId,
        a: UserId,
        b: UserId,
    }

    fn ids() -> Ids {
        let mut e = TestEntropy(77);
        Ids {
            req: UserId::generate(&mut e),
            a: UserId::generate(&mut e),
            b: UserId::generate(&mut e),
        }
    }

    fn t(s: u64) -> Timestamp {
        Timestamp::from_unix_secs(50_000 + s)
    }

    fn new_req(i: &Ids) -> BreakGlassRequest {
        BreakGlassRequest::new(
            BreakGlassId::generate(&mut TestEntropy(1)),
            i.req,
            " ransomware on ward 3 PACS ",
            t(0),
            &BreakGlassPolicy::default(),
        )
        .unwrap()
    }

    /// safeguard: 164.312(a)(2)(ii)
    #[test]
    fn auto_grant_after_wait_then_expiry_then_review() {
        let i = ids();
        let mut r = new_req(&i);
        assert_eq!(r.reason, "ransomware on ward 3 PACS");
        assert!(r.tick(t(1799)).is_empty());
        assert_eq!(r.active_until(t(1799)), None);
        let tr = r.tick(t(1800));
        assert_eq!(
            tr,
            vec![Transition::Granted {
                by: Approval::AutoAfterWait,
                at: t(1800),
                until: t(5400)
            }]
        );
        assert_eq!(r.active_until(t(5399)), Some(t(5400)));
        assert_eq!(r.active_until(t(5400)), None);
        assert_eq!(
            r.tick(t(6000)),
            vec![Transition::Ended {
                reason: EndReason::Expired,
                at: t(5400)
            }]
        );
        assert!(r.is_open(), "awaiting review");
        assert_eq!(
            r.review(i.req, t(7000), "fine"),
            Err(BreakGlassError::SelfReview)
        );
        assert_eq!(
            r.review(i.a, t(7000), "  "),
            Err(BreakGlassError::EmptyNotes)
        );
        r.review(i.a, t(7000), "checked the audit trail").unwrap();
        assert!(!r.is_open());
        assert_eq!(
            r.review(i.b, t(7001), "again"),
            Err(BreakGlassError::NotEnded)
        );
    }

    /// safeguard: 164.312(a)(2)(ii)
    #[test]
    fn approval_grants_at_once_and_late_approval_fails() {
        let i = ids();
        let mut r = new_req(&i);
        assert_eq!(r.approve(i.req, t(10)), Err(BreakGlassError::SelfDecision));
        let tr = r.approve(i.a, t(10)).unwrap();
        assert_eq!(
            tr,
            Transition::Granted {
                by: Approval::Approver(i.a),
                at: t(10),
                until: t(3610)
            }
        );
        assert_eq!(r.deny(i.b, t(11)), Err(BreakGlassError::NotPending));
        let mut r2 = new_req(&i);
        assert_eq!(r2.approve(i.a, t(1801)), Err(BreakGlassError::NotPending));
        assert!(
            matches!(r2.state, BreakGlassState::Pending { .. }),
            "operations do not move time"
        );
        assert_eq!(r2.tick(t(1801)).len(), 1);
        assert!(matches!(
            r2.state,
            BreakGlassState::Granted {
                by: Approval::AutoAfterWait,
                ..
            }
        ));
    }

    /// safeguard: 164.312(a)(2)(ii)
    #[test]
    fn deny_and_cancel_are_terminal_without_review() {
        let i = ids();
        let mut r = new_req(&i);
        r.deny(i.a, t(5)).unwrap();
        assert!(!r.is_open());
        assert!(r.tick(t(100_000)).is_empty());
        assert_eq!(r.active_until(t(2000)), None);
        let mut r = new_req(&i);
        assert_eq!(r.cancel(i.a, t(5)), Err(BreakGlassError::NotRequester));
        r.cancel(i.req, t(5)).unwrap();
        assert!(!r.is_open());
    }

    /// safeguard: 164.312(a)(2)(ii)
    #[test]
    fn end_early() {
        let i = ids();
        let mut r = new_req(&i);
        assert_eq!(r.end_early(i.req, t(1)), Err(BreakGlassError::NotGranted));
        r.approve(i.a, t(10)).unwrap();
        r.end_early(i.req, t(20)).unwrap();
        assert_eq!(r.active_until(t(21)), None);
        assert!(matches!(
            r.state,
            BreakGlassState::Ended {
                reason: EndReason::EndedEarly(_),
                ..
            }
        ));
    }

    #[test]
    fn reasons_are_checked_and_state_serializes() {
        let i = ids();
        let p = BreakGlassPolicy::default();
        let id = BreakGlassId::generate(&mut TestEntropy(1));
        assert_eq!(
            BreakGlassRequest::new(id, i.req, "  ", t(0), &p),
            Err(BreakGlassError::EmptyReason)
        );
        assert!(matches!(
            BreakGlassRequest::new(id, i.req, &"x".repeat(1001), t(0), &p),
            Err(BreakGlassError::ReasonTooLong { .. })
        ));
        let r = new_req(&i);
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<BreakGlassRequest>(&j).unwrap(), r);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Tick,
        Approve(u8),
        Deny(u8),
        Cancel(u8),
        End(u8),
        Review(u8),
    }

    fn op() -> impl Strategy<Value = (u64, Op)> {
        (
            0u64..2400,
            prop_oneof![
                Just(Op::Tick),
                (0u8..3).prop_map(Op::Approve),
                (0u8..3).prop_map(Op::Deny),
                (0u8..3).prop_map(Op::Cancel),
                (0u8..3).prop_map(Op::End),
                (0u8..3).prop_map(Op::Review),
            ],
        )
    }

    proptest! {
        /// safeguard: 164.312(a)(2)(ii)
        #[test]
        fn state_machine_invariants(ops in proptest::collection::vec(op(), 1..40)) {
            let i = ids();
            let who = |n: u8| [i.req, i.a, i.b][n as usize % 3];
            let mut r = new_req(&i);
            let mut now = t(0);
            let mut granted_once = false;
            let mut reviewed = false;
            for (dt, o) in ops {
                now = now.plus(Duration::from_secs(dt));
                let before = r.clone();
                let res = match o {
                    Op::Tick => Ok(r.tick(now)),
                    Op::Approve(n) => r.approve(who(n), now).map(|t| vec![t]),
                    Op::Deny(n) => r.deny(who(n), now).map(|t| vec![t]),
                    Op::Cancel(n) => r.cancel(who(n), now).map(|t| vec![t]),
                    Op::End(n) => r.end_early(who(n), now).map(|t| vec![t]),
                    Op::Review(n) => r.review(who(n), now, "reviewed").map(|t| vec![t]),
                };
                if res.is_err() {
                    prop_assert_eq!(&r, &before, "a refused operation changes nothing");
                }
                if let Ok(trs) = &res {
                    for tr in trs {
                        match tr {
                            Transition::Granted { by, at, until } => {
                                // only from pending, never self-approved, exactly the configured length
                                let was_pending = matches!(before.state, BreakGlassState::Pending { .. });
                                prop_assert!(was_pending);
                                prop_assert!(!granted_once);
                                prop_assert!(*by != Approval::Approver(i.req));
                                prop_assert_eq!(until.since(*at), Duration::from_secs(3600));
                                prop_assert!(*at <= now);
                                granted_once = true;
                            }
                            Transition::Reviewed { reviewer, .. } => {
                                prop_assert!(*reviewer != i.req);
                                prop_assert!(granted_once);
                                reviewed = true;
                            }
                            _ => {}
                        }
                    }
                }
                // elevation never outlasts its box and never exists before a grant
                if let Some(until) = r.active_until(now) {
                    prop_assert!(granted_once);
                    prop_assert!(until.since(now) <= Duration::from_secs(3600));
                    prop_assert!(!reviewed);
                }
                // terminal states are absorbing
                match before.state {
                    BreakGlassState::Denied { .. } | BreakGlassState::Cancelled { .. } | BreakGlassState::Reviewed { .. } => {
                        prop_assert_eq!(&r.state, &before.state);
                    }
                    _ => {}
                }
                // a closed episode that was granted has a review
                if granted_once && !r.is_open() {
                    let is_reviewed = matches!(r.state, BreakGlassState::Reviewed { .. });
                    prop_assert!(is_reviewed);
                }
            }
        }
    }
}
