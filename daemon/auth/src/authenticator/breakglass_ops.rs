//! The remote break-glass path, over the pure state machine in
//! [`crate::breakglass`].

use super::{AuthError, Authenticator};
use crate::authz::Authorization;
use crate::breakglass::BreakGlassRequest;
use crate::entropy::Entropy;
use crate::events::EventKind;
use crate::ids::{BreakGlassId, UserId};
use crate::privilege::Privilege;
use crate::session::{Activity, SessionToken};
use crate::store::{AuthStore, UserRecord};
use crate::time::Timestamp;

impl<S: AuthStore, E: Entropy> Authenticator<S, E> {
    /// Who is notified of, and may decide on, break-glass requests: the
    /// configured approvers, or every enabled user whose role may approve.
    pub fn approvers(&self) -> Result<Vec<UserRecord>, AuthError> {
        let configured = &self.config.break_glass.approvers;
        Ok(self
            .store
            .users()?
            .into_iter()
            .filter(|u| {
                !u.disabled
                    && u.role.privileges().contains(Privilege::ApproveBreakGlass)
                    && (configured.is_empty() || configured.contains(&u.name))
            })
            .collect())
    }

    fn request_or_err(
        &mut self,
        id: BreakGlassId,
        now: Timestamp,
    ) -> Result<BreakGlassRequest, AuthError> {
        let mut r = self
            .store
            .break_glass(id)?
            .ok_or(AuthError::NoSuchRequest)?;
        self.tick_request(&mut r, now)?;
        Ok(r)
    }

    /// A user with the `emergency` grant asks for elevated access
    /// (`RequestEmergencyAccess`). The approvers are named in the
    /// [`EventKind::BreakGlassRequested`] alert, which the daemon sends at once.
    pub fn request_break_glass(
        &mut self,
        auth: &Authorization,
        reason: &str,
        now: Timestamp,
    ) -> Result<BreakGlassId, AuthError> {
        self.require(auth, &[Privilege::RequestEmergencyAccess], now)?;
        let requester = auth.actor().user().ok_or(AuthError::NoSuchUser)?;
        let user = self.store.user(requester)?.ok_or(AuthError::NoSuchUser)?;
        for mut r in self.store.open_break_glass()? {
            self.tick_request(&mut r, now)?;
            let busy = matches!(
                r.state,
                crate::breakglass::BreakGlassState::Pending { .. }
                    | crate::breakglass::BreakGlassState::Granted { .. }
            );
            if r.requester == requester && busy {
                return Err(AuthError::BreakGlassAlreadyOpen);
            }
        }
        let id = BreakGlassId::generate(&mut self.entropy);
        let r = BreakGlassRequest::new(id, requester, reason, now, &self.config.break_glass)?;
        self.store.insert_break_glass(&r)?;
        let approvers = self
            .approvers()?
            .into_iter()
            .map(|u| u.id)
            .filter(|a| *a != requester)
            .collect();
        let crate::breakglass::BreakGlassState::Pending { auto_grant_at } = r.state else {
            unreachable!("a new request is pending")
        };
        self.emit(
            now,
            EventKind::BreakGlassRequested {
                request: id,
                requester,
                name: user.name,
                reason: r.reason.clone(),
                approvers,
                auto_grant_at,
            },
        );
        Ok(id)
    }

    fn approver_check(&self, auth: &Authorization, now: Timestamp) -> Result<UserId, AuthError> {
        self.require(auth, &[Privilege::ApproveBreakGlass], now)?;
        let me = auth.actor().user().ok_or(AuthError::NotAnApprover)?;
        if !self.approvers()?.iter().any(|u| u.id == me) {
            return Err(AuthError::NotAnApprover);
        }
        Ok(me)
    }

    /// An approver grants a pending request now.
    pub fn approve_break_glass(
        &mut self,
        auth: &Authorization,
        id: BreakGlassId,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        let me = self.approver_check(auth, now)?;
        let mut r = self.request_or_err(id, now)?;
        let t = r.approve(me, now)?;
        self.store.update_break_glass(&r)?;
        self.emit_transition(&r, t);
        Ok(())
    }

    /// An approver denies a pending request.
    pub fn deny_break_glass(
        &mut self,
        auth: &Authorization,
        id: BreakGlassId,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        let me = self.approver_check(auth, now)?;
        let mut r = self.request_or_err(id, now)?;
        let t = r.deny(me, now)?;
        self.store.update_break_glass(&r)?;
        self.emit_transition(&r, t);
        Ok(())
    }

    /// The requester withdraws a pending request.
    pub fn cancel_break_glass(
        &mut self,
        auth: &Authorization,
        id: BreakGlassId,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        self.require(
            auth,
            &[Privilege::RequestEmergencyAccess, Privilege::OwnSession],
            now,
        )?;
        let me = auth.actor().user().ok_or(AuthError::NoSuchUser)?;
        let mut r = self.request_or_err(id, now)?;
        let t = r.cancel(me, now)?;
        self.store.update_break_glass(&r)?;
        self.emit_transition(&r, t);
        Ok(())
    }

    /// Ends active elevated access early: the requester (`OwnSession`) or an
    /// approver (`ApproveBreakGlass`).
    pub fn end_break_glass(
        &mut self,
        auth: &Authorization,
        id: BreakGlassId,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        let me = auth.actor().user().ok_or(AuthError::NoSuchUser)?;
        let mut r = self.request_or_err(id, now)?;
        if r.requester == me {
            self.require(
                auth,
                &[Privilege::OwnSession, Privilege::RequestEmergencyAccess],
                now,
            )?;
        } else {
            self.approver_check(auth, now)?;
        }
        let t = r.end_early(me, now)?;
        self.store.update_break_glass(&r)?;
        self.emit_transition(&r, t);
        Ok(())
    }

    /// The mandatory review that closes an episode (`ReviewBreakGlass`), by
    /// someone other than the requester.
    pub fn review_break_glass(
        &mut self,
        auth: &Authorization,
        id: BreakGlassId,
        notes: &str,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        self.require(auth, &[Privilege::ReviewBreakGlass], now)?;
        let me = auth.actor().user().ok_or(AuthError::NoSuchUser)?;
        let mut r = self.request_or_err(id, now)?;
        let t = r.review(me, now, notes)?;
        self.store.update_break_glass(&r)?;
        self.emit_transition(&r, t);
        Ok(())
    }

    /// Open requests (pending, active, awaiting review), for approvers'
    /// and reviewers' pages and the elevated-session banner.
    pub fn open_break_glass(
        &mut self,
        auth: &Authorization,
        now: Timestamp,
    ) -> Result<Vec<BreakGlassRequest>, AuthError> {
        self.require(
            auth,
            &[
                Privilege::ApproveBreakGlass,
                Privilege::ReviewBreakGlass,
                Privilege::RequestEmergencyAccess,
            ],
            now,
        )?;
        let me = auth.actor().user();
        let all_visible = matches!(
            auth.privilege(),
            Privilege::ApproveBreakGlass | Privilege::ReviewBreakGlass
        );
        let mut out = Vec::new();
        for mut r in self.store.open_break_glass()? {
            self.tick_request(&mut r, now)?;
            if all_visible || Some(r.requester) == me {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// The requester enters a granted elevation in this session: until it
    /// ends, the session has the elevated role and every authorisation it
    /// gets is tagged with the request id.
    pub fn enter_elevation(
        &mut self,
        token: &SessionToken,
        id: BreakGlassId,
        now: Timestamp,
    ) -> Result<crate::authz::Elevation, AuthError> {
        let p = self.session(token, Activity::UserAction, now)?;
        self.authorize(&p, Privilege::OwnSession, now)?;
        let r = self.request_or_err(id, now)?;
        if r.requester != p.user {
            return Err(AuthError::NoSuchRequest);
        }
        let until = r
            .active_until(now)
            .ok_or(crate::breakglass::BreakGlassError::NotGranted)?;
        let crate::authz::Via::Session { session } = p.via else {
            return Err(AuthError::NotAuthenticated);
        };
        let mut s = self
            .store
            .sessions_of(p.user)?
            .into_iter()
            .find(|s| s.id == session)
            .ok_or(AuthError::NotAuthenticated)?;
        s.elevation = Some(id);
        self.store.update_session(&s)?;
        self.emit(
            now,
            EventKind::ElevatedSessionStarted {
                request: id,
                user: p.user,
                session,
                until,
            },
        );
        Ok(crate::authz::Elevation {
            request: id,
            role: r.role,
            until,
        })
    }
}
