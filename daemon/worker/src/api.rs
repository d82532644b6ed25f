//! The HTTPS API's requests in the worker. Every request that comes
//! through the HTTPS front ([`Via::Api`]) is authenticated here (session
//! cookie or API token, checked by `lethe-auth`), then authorised against
//! the privilege [`privilege_of`] assigns to it, then carried out. The
//! front's own route table only documents the privileges; a test checks
//! that it agrees with this one.
//!
//! Every identity event (logins, refusals, re-authentications, break-glass)
//! goes to the audit log before the answer leaves, and the loud ones
//! (locks, break-glass, console recovery) also to the alert channels.

use crate::daemon::Daemon;
use crate::hotplug::BayMsg;
use crate::identity::{entry_of, Identity};
use lethe_audit::Source;
use lethe_auth::authz::Via as AuthVia;
use lethe_auth::events::{AuthEvent, EventKind};
use lethe_auth::{
    AuthError, Authorization, DenyReason, LoginRequest, Principal, Privilege, Role, SecretString,
    SessionToken, Timestamp,
};
use lethe_jobs::{AuthTag, Origin, OriginSource};
use lethe_wire::{
    AdminReply, AdminRequest, AuditVerifyView, AuditView, BreakGlassView, Caller, CertFormat,
    CertQuery, CertView, Credential, Enrolment, ErrorCode, KeyView, Reply, Request, RoleName,
    Secret, SessionView, TokenView, UserChange, UserView, Via, WireError,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn err(code: ErrorCode, m: impl Into<String>) -> Reply {
    Reply::Error {
        error: WireError::new(code, m),
    }
}

fn werr(code: ErrorCode, m: impl Into<String>) -> WireError {
    WireError::new(code, m)
}

/// The privilege a request needs (none: login, the health check and the
/// front's own TLS request, which are answered before any session exists).
pub fn privilege_of(d: &Daemon, r: &Request) -> Option<Privilege> {
    Some(match r {
        Request::Login { .. } | Request::Tls {} | Request::Health {} => return None,
        Request::Logout {}
        | Request::LogoutEverywhere {}
        | Request::WhoAmI {}
        | Request::Reauth { .. }
        | Request::BreakGlassList {}
        | Request::BreakGlassEnter { .. } => Privilege::OwnSession,
        Request::ChangePassword { .. } => Privilege::ManageOwnCredentials,
        Request::Status {} | Request::Metrics {} => Privilege::ReadDrives,
        Request::Controller {} => Privilege::ReadControllerStatus,
        Request::BackupHistory { .. } | Request::BackupSnapshots { .. } => {
            Privilege::ReadBackupHistory
        }
        Request::BackupDrill { .. } => Privilege::RunDrill,
        Request::Jobs { .. } => Privilege::ReadJobs,
        Request::StartBay { bay, .. } => match d.cfg.bays.iter().find(|b| b.name.as_str() == bay) {
            Some(b) if b.wipe.level == lethe_config::Level::Purge => Privilege::StartPurge,
            _ => Privilege::StartWipe,
        },
        Request::Resume { .. } | Request::Cancel { .. } => Privilege::ControlJobs,
        Request::Users {} | Request::UserAdd { .. } | Request::UserChange { .. } => {
            Privilege::ManageUsers
        }
        Request::Tokens {} | Request::TokenCreate { .. } | Request::TokenRevoke { .. } => {
            Privilege::ManageOwnTokens
        }
        Request::Certificates { .. }
        | Request::Certificate { .. }
        | Request::CertificateVerify { .. } => Privilege::ReadCertificates,
        Request::Audit { .. } | Request::AuditVerify {} => Privilege::ReadAuditLog,
        Request::Keys {} => Privilege::ManageKeys,
        Request::BreakGlassRequest { .. } => Privilege::RequestEmergencyAccess,
        Request::BreakGlassDecide { .. } => Privilege::ApproveBreakGlass,
        Request::BreakGlassReview { .. } => Privilege::ReviewBreakGlass,
    })
}

/// The wire name of a role.
pub fn role_name(r: Role) -> RoleName {
    match r {
        Role::Auditor => RoleName::Auditor,
        Role::Operator => RoleName::Operator,
        Role::Admin => RoleName::Admin,
    }
}

fn role_of(r: RoleName) -> Role {
    match r {
        RoleName::Auditor => Role::Auditor,
        RoleName::Operator => Role::Operator,
        RoleName::Admin => Role::Admin,
    }
}

fn ts(t: Timestamp) -> String {
    lethe_core::timefmt::rfc3339_utc((t.unix_ms() / 1000) as i64)
}

/// An authenticator error as the client sees it. Login and
/// re-authentication failures say nothing about what was wrong.
fn auth_error(e: AuthError) -> WireError {
    match e {
        AuthError::LoginFailed { .. } => werr(
            ErrorCode::Unauthenticated,
            "login failed: check the user name, password and code",
        ),
        AuthError::ReauthFailed { .. } => werr(
            ErrorCode::Unauthenticated,
            "re-authentication failed: check the password and code",
        ),
        AuthError::NotAuthenticated => werr(
            ErrorCode::Unauthenticated,
            "not logged in, or the session has ended: log in again",
        ),
        AuthError::RateLimited { retry_after } => WireError {
            retry_after_secs: Some(retry_after.as_secs().max(1)),
            ..werr(ErrorCode::RateLimited, e.to_string())
        },
        AuthError::Denied(ref r) => match r.reason {
            DenyReason::FreshAuthRequired { .. } => werr(
                ErrorCode::ReauthRequired,
                format!("{}: {}", r.privilege, r.reason),
            ),
            _ => werr(
                ErrorCode::Forbidden,
                format!("{}: {}", r.privilege, r.reason),
            ),
        },
        AuthError::WrongCurrentPassword { .. } => {
            werr(ErrorCode::Refused, "the current password is wrong")
        }
        AuthError::Password(_)
        | AuthError::Name(_)
        | AuthError::TokenRoleTooHigh { .. }
        | AuthError::TokenLifetime { .. }
        | AuthError::BadLabel
        | AuthError::BreakGlass(_) => werr(ErrorCode::BadRequest, e.to_string()),
        AuthError::NoSuchUser | AuthError::NoSuchToken | AuthError::NoSuchRequest => {
            werr(ErrorCode::NotFound, e.to_string())
        }
        AuthError::NameTaken(_) | AuthError::BreakGlassAlreadyOpen => {
            werr(ErrorCode::Conflict, e.to_string())
        }
        AuthError::LastAdmin | AuthError::NotAnApprover => werr(ErrorCode::Refused, e.to_string()),
        AuthError::Store(_) => werr(ErrorCode::Unavailable, e.to_string()),
        other => werr(ErrorCode::Internal, other.to_string()),
    }
}

/// The delay a failed login or re-authentication must take, if any.
fn failure_delay(e: &AuthError) -> Option<Duration> {
    match e {
        AuthError::LoginFailed { delay }
        | AuthError::ReauthFailed { delay }
        | AuthError::WrongCurrentPassword { delay } => Some(*delay),
        _ => None,
    }
}

/// Write identity events to the audit log and raise alerts for the loud
/// ones. Runs before the answer leaves.
pub fn record(d: &Daemon, events: Vec<AuthEvent>, source: Source) {
    for ev in events {
        if let EventKind::ConfigurationWarning { message } = &ev.kind {
            tracing::warn!("identity configuration: {message}");
            continue;
        }
        if let Some(e) = entry_of(&ev, source.clone()) {
            if let Err(err) = d.audit.log().append(&e) {
                tracing::error!("audit log: {err}");
            }
        }
        let name_of = |u: lethe_auth::UserId| {
            use lethe_auth::AuthStore;
            d.identity
                .as_ref()
                .and_then(|i| i.with(|a| a.store().user(u).ok().flatten()).0)
                .map_or_else(|| u.to_string(), |r| r.name.to_string())
        };
        if let Some(kind) = crate::identity::alert_of(&ev, name_of) {
            match d.alerter.raise(kind, lethe_alert::Timestamp::now()) {
                Ok(id) => {
                    tracing::warn!("alert {id} raised ({:?})", ev.severity());
                    d.alert_wake.notify_one();
                }
                Err(e) => tracing::error!("recording an alert failed: {e}"),
            }
        }
    }
}

fn identity(d: &Daemon) -> Result<&Arc<Identity>, WireError> {
    d.identity.as_ref().ok_or_else(|| {
        werr(
            ErrorCode::Unavailable,
            "the identity store is not available: see the worker's log",
        )
    })
}

/// Run `f` on the authenticator on the blocking pool; audit its events.
async fn with_auth<T: Send + 'static>(
    d: &Arc<Daemon>,
    source: Source,
    f: impl FnOnce(&mut crate::identity::Auth, Timestamp) -> T + Send + 'static,
) -> Result<T, WireError> {
    let id = Arc::clone(identity(d)?);
    let d2 = Arc::clone(d);
    tokio::task::spawn_blocking(move || {
        let (out, events) = id.with(|a| f(a, Timestamp::now()));
        record(&d2, events, source);
        out
    })
    .await
    .map_err(|e| werr(ErrorCode::Internal, e.to_string()))
}

/// Who is asking, and what they may do now.
struct Authorised {
    principal: Principal,
    auth: Authorization,
    token: Option<SessionToken>,
}

fn session_token(c: &Caller) -> Option<SessionToken> {
    match &c.credential {
        Some(Credential::Session { token }) => SessionToken::parse(token.expose()),
        _ => None,
    }
}

/// Authenticate the caller and authorise `privilege`.
async fn authorise(
    d: &Arc<Daemon>,
    caller: &Caller,
    privilege: Privilege,
) -> Result<Authorised, WireError> {
    let credential = caller.credential.clone().ok_or_else(|| {
        werr(
            ErrorCode::Unauthenticated,
            "not logged in: POST /api/v1/login first, or send an API token",
        )
    })?;
    let activity = if caller.polling {
        lethe_auth::Activity::Poll
    } else {
        lethe_auth::Activity::UserAction
    };
    let out = with_auth(d, Source::Api, move |a, now| {
        let (principal, token) = match &credential {
            Credential::Session { token } => {
                let t = SessionToken::parse(token.expose()).ok_or(AuthError::NotAuthenticated)?;
                (a.session(&t, activity, now)?, Some(t))
            }
            Credential::Token { secret } => (a.token_principal(secret.expose(), now)?, None),
        };
        let auth = a.authorize(&principal, privilege, now)?;
        Ok::<_, AuthError>(Authorised {
            principal,
            auth,
            token,
        })
    })
    .await?;
    let a = out.map_err(auth_error)?;
    if let Some(bg) = a.auth.break_glass() {
        // Everything done under emergency access is on the record, reads
        // included, tagged with its episode.
        let e = lethe_audit::Entry::new(
            lethe_audit::AuditTime::from_unix(d.clock.unix_now())
                .map_err(|e| werr(ErrorCode::Internal, e.to_string()))?,
            Source::Api,
            lethe_audit::UserId::new(a.principal.user.to_string())
                .map_err(|e| werr(ErrorCode::Internal, e.to_string()))?,
            lethe_audit::Action::BreakGlassUsed,
            lethe_audit::Entity::User,
            lethe_audit::RecordId::new(a.principal.user.to_string())
                .map_err(|e| werr(ErrorCode::Internal, e.to_string()))?,
            lethe_audit::Outcome::Success,
        )
        .with_detail(lethe_audit::Detail::new().label("privilege", privilege.name()))
        .with_tag(
            lethe_audit::TagKind::BreakGlass,
            lethe_audit::Token::new(bg.to_string())
                .map_err(|e| werr(ErrorCode::Internal, e.to_string()))?,
        );
        if let Err(e) = d.audit.log().append(&e) {
            tracing::error!("audit log: {e}");
            return Err(werr(
                ErrorCode::Unavailable,
                "the audit log cannot be written: nothing is done under break-glass unaudited",
            ));
        }
    }
    Ok(a)
}

fn session_view(
    a: &crate::identity::Auth,
    p: &Principal,
    token: &SessionToken,
    now: Timestamp,
    recovery_codes_left: Option<usize>,
) -> Result<SessionView, AuthError> {
    use lethe_auth::AuthStore;
    let s = a
        .store()
        .session_by_token_hash(&token.hash())?
        .ok_or(AuthError::NotAuthenticated)?;
    let window = a.config().session.reauth_window;
    let privileges = lethe_auth::authz::effective(p, now);
    Ok(SessionView {
        id: s.id.to_string(),
        user_id: p.user.to_string(),
        user: p.name.to_string(),
        role: role_name(p.role),
        privileges: Privilege::ALL
            .iter()
            .filter(|x| privileges.contains(**x))
            .map(|x| x.name().to_string())
            .collect(),
        expires_at: ts(s.expires),
        idle_timeout_secs: s.idle_timeout.as_secs(),
        reauth_until: s.fresh_reauth(now, window).map(|r| ts(r.at.plus(window))),
        elevated_until: p.elevation.as_ref().map(|e| ts(e.until)),
        must_change_password: p.must_change_password,
        recovery_codes_left: recovery_codes_left.map(|n| n as u32),
    })
}

fn user_view(u: &lethe_auth::UserSummary) -> UserView {
    UserView {
        id: u.id.to_string(),
        name: u.name.to_string(),
        role: role_name(u.role),
        emergency: u.emergency,
        disabled: u.disabled,
        created_at: ts(u.created),
        locked_until: u.locked_until.map(ts),
        must_change_password: u.must_change_password,
        recovery_codes_left: u.recovery_codes_left as u32,
        sessions: u.sessions as u32,
    }
}

fn summary_of(
    a: &mut crate::identity::Auth,
    auth: &Authorization,
    name: &str,
    now: Timestamp,
) -> Result<Option<UserView>, AuthError> {
    let users = a.list_users(auth, now)?;
    Ok(users
        .iter()
        .find(|u| u.name.as_str() == name.to_ascii_lowercase())
        .map(user_view))
}

fn secret(s: &SecretString) -> Secret {
    Secret(s.expose().to_string())
}

fn enrolment(
    user: UserView,
    e: Option<&lethe_auth::totp::TotpEnrolment>,
    otp: Option<&SecretString>,
    codes: Option<&lethe_auth::recovery::RecoveryCodes>,
) -> Enrolment {
    Enrolment {
        user,
        otpauth_uri: e.map_or_else(|| Secret(String::new()), |e| secret(e.uri())),
        qr_svg: e.map_or_else(|| Secret(String::new()), |e| secret(&e.qr_svg())),
        qr_terminal: e.map_or_else(|| Secret(String::new()), |e| secret(&e.qr_terminal())),
        one_time_password: otp.map(secret),
        recovery_codes: codes
            .map(|c| c.codes().iter().map(secret).collect())
            .unwrap_or_default(),
    }
}

/// Apply a change to a user (the API's admins and root's admin socket).
fn change_user(
    a: &mut crate::identity::Auth,
    auth: &Authorization,
    name: &str,
    change: &UserChange,
    now: Timestamp,
) -> Result<Result<Option<UserView>, Enrolment>, AuthError> {
    let u = a.find_user(auth, name, now)?;
    let id = u.id;
    match change {
        UserChange::Disable {} => a.set_disabled(auth, id, true, now)?,
        UserChange::Enable {} => a.set_disabled(auth, id, false, now)?,
        UserChange::SetRole { role } => a.set_role(auth, id, role_of(*role), now)?,
        UserChange::SetEmergency { granted } => a.set_emergency_grant(auth, id, *granted, now)?,
        UserChange::Unlock {} => a.unlock(auth, id, now)?,
        UserChange::Remove {} => {
            a.remove_user(auth, id, now)?;
            return Ok(Ok(None));
        }
        UserChange::ResetSecondFactor {} => {
            let (e, codes) = a.reset_second_factor(auth, id, now)?;
            let v = summary_of(a, auth, name, now)?.ok_or(AuthError::NoSuchUser)?;
            return Ok(Err(enrolment(v, Some(&e), None, Some(&codes))));
        }
        UserChange::ResetPassword {} => {
            let otp = a.reset_password(auth, id, now)?;
            let v = summary_of(a, auth, name, now)?.ok_or(AuthError::NoSuchUser)?;
            return Ok(Err(enrolment(v, None, Some(&otp), None)));
        }
    }
    Ok(Ok(summary_of(a, auth, name, now)?))
}

fn add_user(
    a: &mut crate::identity::Auth,
    auth: &Authorization,
    name: &str,
    role: RoleName,
    password: Option<&Secret>,
    emergency: bool,
    now: Timestamp,
) -> Result<Enrolment, AuthError> {
    let pw = password.map(|p| SecretString::new(p.0.clone()));
    let n = a.add_user(auth, name, role_of(role), pw.as_ref(), now)?;
    if emergency {
        a.set_emergency_grant(auth, n.id, true, now)?;
    }
    let v = summary_of(a, auth, n.name.as_str(), now)?.ok_or(AuthError::NoSuchUser)?;
    Ok(enrolment(
        v,
        Some(&n.enrolment),
        n.one_time_password.as_ref(),
        Some(&n.recovery_codes),
    ))
}

fn token_view(t: &lethe_auth::token::ApiTokenRecord, owner: &str) -> TokenView {
    TokenView {
        id: t.id.to_string(),
        owner: owner.to_string(),
        label: t.label.clone(),
        role: role_name(t.role),
        created_at: ts(t.created),
        expires_at: ts(t.expires),
        last_used_at: t.last_used.map(ts),
        revoked: t.revoked.is_some(),
    }
}

fn bg_view(
    a: &crate::identity::Auth,
    r: &lethe_auth::breakglass::BreakGlassRequest,
    auto_grant_after: Duration,
) -> BreakGlassView {
    use lethe_auth::breakglass::BreakGlassState as S;
    use lethe_auth::AuthStore;
    let requester = a
        .store()
        .user(r.requester)
        .ok()
        .flatten()
        .map_or_else(|| r.requester.to_string(), |u| u.name.to_string());
    let (state, until) = match &r.state {
        S::Pending { .. } => ("pending", None),
        S::Granted { until, .. } => ("granted", Some(ts(*until))),
        S::Denied { .. } => ("denied", None),
        S::Cancelled { .. } => ("cancelled", None),
        S::Ended { .. } => ("ended", None),
        S::Reviewed { .. } => ("reviewed", None),
    };
    let auto = match &r.state {
        S::Pending { auto_grant_at } => *auto_grant_at,
        _ => r.requested_at.plus(auto_grant_after),
    };
    BreakGlassView {
        id: r.id.to_string(),
        requester,
        reason: r.reason.clone(),
        state: state.into(),
        requested_at: ts(r.requested_at),
        auto_grant_at: ts(auto),
        until,
    }
}

/// The job origin of an API request: the user's name, the session, the
/// re-authentication that allowed it and any break-glass episode.
fn origin_of(a: &Authorised) -> Origin {
    let mut authorization = Vec::new();
    if let AuthVia::Session { session } = a.principal.via {
        authorization.push((AuthTag::Session, session.to_string()));
    }
    if let Some(r) = a.auth.reauth() {
        authorization.push((AuthTag::Reauth, r.id.to_string()));
    }
    if let Some(b) = a.auth.break_glass() {
        authorization.push((AuthTag::BreakGlass, b.to_string()));
    }
    Origin {
        source: OriginSource::Api,
        user: a.principal.name.to_string(),
        bay: None,
        authorization,
    }
}

/// Answer an API request (`via: api`). Requests of the local API socket
/// (`via: cli`) never come here.
pub async fn handle(d: &Arc<Daemon>, caller: Caller, request: Request) -> Reply {
    match handle_inner(d, caller, request).await {
        Ok(r) => r,
        Err(error) => Reply::Error { error },
    }
}

async fn handle_inner(
    d: &Arc<Daemon>,
    caller: Caller,
    request: Request,
) -> Result<Reply, WireError> {
    if caller.via == Via::Cli {
        return Err(werr(
            ErrorCode::BadRequest,
            "this request is served by the HTTPS API only",
        ));
    }
    if d.stopping() && matches!(request, Request::StartBay { .. } | Request::Resume { .. }) {
        return Err(werr(ErrorCode::Unavailable, "the daemon is stopping"));
    }
    if let Request::Login {
        username,
        password,
        totp,
    } = request
    {
        return login(d, &caller, username, password, totp).await;
    }
    if let Request::Health {} = request {
        // Up or not needs no login (load balancers, monitoring); the front
        // answers only "ok" and drops the version and counts.
        return Ok(crate::handler::local(d, Caller::local(None), request).await);
    }
    let Some(privilege) = privilege_of(d, &request) else {
        return Err(werr(ErrorCode::BadRequest, "not an API request"));
    };
    if let Request::Reauth { password, totp } = request {
        return reauth(d, &caller, password, totp).await;
    }
    if let Request::ChangePassword { current, new } = request {
        return change_password(d, &caller, current, new).await;
    }
    let a = authorise(d, &caller, privilege).await?;
    match request {
        Request::Status {}
        | Request::Metrics {}
        | Request::Jobs { .. }
        | Request::Controller {}
        | Request::BackupHistory { .. } => {
            Ok(crate::handler::local(d, Caller::local(None), request).await)
        }
        Request::StartBay { bay, answer } => {
            let (reply, rx) = tokio::sync::oneshot::channel();
            Ok(crate::handler::via_bays(
                d,
                BayMsg::StartBay {
                    bay,
                    answer,
                    origin: origin_of(&a),
                    reply,
                },
                rx,
            )
            .await)
        }
        Request::Resume { job } => {
            let (reply, rx) = tokio::sync::oneshot::channel();
            Ok(crate::handler::via_bays(
                d,
                BayMsg::Resume {
                    job,
                    origin: origin_of(&a),
                    reply,
                },
                rx,
            )
            .await)
        }
        Request::BackupSnapshots { job } => {
            let d2 = Arc::clone(d);
            let read = tokio::task::spawn_blocking(move || crate::backups::snapshots(&d2, &job))
                .await
                .map_err(|e| werr(ErrorCode::Internal, e.to_string()))?;
            match read {
                None => Err(werr(
                    ErrorCode::NotFound,
                    "no backup job by that name in the configuration",
                )),
                Some(Ok(snapshots)) => Ok(Reply::BackupSnapshots { snapshots }),
                Some(Err(e)) => Err(werr(ErrorCode::Unavailable, e)),
            }
        }
        Request::BackupDrill { job } => {
            if d.stopping() {
                return Err(werr(ErrorCode::Unavailable, "the daemon is stopping"));
            }
            let request = crate::backups::drill_request(d, &job).ok_or_else(|| {
                werr(
                    ErrorCode::NotFound,
                    format!("no backup job {job:?} in the configuration"),
                )
            })?;
            let h = d.jobs.submit_as(request, origin_of(&a));
            tracing::info!(
                "backup job {job}: drill {} started by {}",
                h.id(),
                a.principal.name
            );
            Ok(Reply::Started {
                job: h.id().to_string(),
            })
        }
        Request::Cancel { job } => {
            if d.jobs.cancel(&job) {
                tracing::info!("job {job}: stop requested by {}", a.principal.name);
                Ok(Reply::Cancelling { job })
            } else {
                Err(werr(
                    ErrorCode::NotFound,
                    format!("job {job} is not running here"),
                ))
            }
        }
        Request::WhoAmI {} => {
            let token = a
                .token
                .ok_or_else(|| werr(ErrorCode::Unauthenticated, NO_SESSION))?;
            let p = a.principal;
            let v = with_auth(d, Source::Api, move |au, now| {
                session_view(au, &p, &token, now, None)
            })
            .await?
            .map_err(auth_error)?;
            Ok(Reply::Session { session: v })
        }
        Request::Logout {} | Request::LogoutEverywhere {} => {
            let everywhere = matches!(request, Request::LogoutEverywhere {});
            let token = a
                .token
                .ok_or_else(|| werr(ErrorCode::Unauthenticated, NO_SESSION))?;
            let auth = a.auth;
            with_auth(d, Source::Api, move |au, now| {
                if everywhere {
                    au.logout_everywhere(&auth, None, now).map(|_| ())
                } else {
                    au.logout(&token, now)
                }
            })
            .await?
            .map_err(auth_error)?;
            Ok(Reply::Done {})
        }
        Request::Users {} => {
            let auth = a.auth;
            let users = with_auth(d, Source::Api, move |au, now| au.list_users(&auth, now))
                .await?
                .map_err(auth_error)?;
            Ok(Reply::Users {
                users: users.iter().map(user_view).collect(),
            })
        }
        Request::UserAdd {
            name,
            role,
            emergency,
        } => {
            let auth = a.auth;
            let e = with_auth(d, Source::Api, move |au, now| {
                add_user(au, &auth, &name, role, None, emergency, now)
            })
            .await?
            .map_err(auth_error)?;
            Ok(Reply::Enrolled { enrolment: e })
        }
        Request::UserChange { name, change } => {
            let auth = a.auth;
            let r = with_auth(d, Source::Api, move |au, now| {
                change_user(au, &auth, &name, &change, now)
            })
            .await?
            .map_err(auth_error)?;
            Ok(match r {
                Ok(user) => Reply::User { user },
                Err(enrolment) => Reply::Enrolled { enrolment },
            })
        }
        Request::Tokens {} => {
            let auth = a.auth;
            let owner = a.principal.user;
            let name = a.principal.name.to_string();
            let list = with_auth(d, Source::Api, move |au, now| {
                au.list_tokens(&auth, Some(owner), now)
            })
            .await?
            .map_err(auth_error)?;
            Ok(Reply::Tokens {
                tokens: list.iter().map(|t| token_view(t, &name)).collect(),
            })
        }
        Request::TokenCreate {
            label,
            role,
            lifetime_secs,
        } => {
            let auth = a.auth;
            let owner = a.principal.user;
            let name = a.principal.name.to_string();
            let (view, secret) = with_auth(d, Source::Api, move |au, now| {
                let (id, s) = au.create_token(
                    &auth,
                    &label,
                    role_of(role),
                    Duration::from_secs(lifetime_secs),
                    now,
                )?;
                let list = au.list_tokens(&auth, Some(owner), now)?;
                let t = list
                    .iter()
                    .find(|t| t.id == id)
                    .ok_or(AuthError::NoSuchToken)?;
                Ok::<_, AuthError>((token_view(t, &name), Secret(s.expose().to_string())))
            })
            .await?
            .map_err(auth_error)?;
            Ok(Reply::TokenCreated {
                token: view,
                secret,
            })
        }
        Request::TokenRevoke { id } => {
            let auth = a.auth;
            let tid = lethe_auth::TokenId::parse(&id)
                .ok_or_else(|| werr(ErrorCode::NotFound, "no such API token"))?;
            with_auth(d, Source::Api, move |au, now| {
                au.revoke_token(&auth, tid, now)
            })
            .await?
            .map_err(auth_error)?;
            Ok(Reply::Done {})
        }
        Request::BreakGlassRequest { reason } => {
            let auth = a.auth;
            let wait = d.cfg.breakglass.wait;
            let v = with_auth(d, Source::Api, move |au, now| {
                use lethe_auth::AuthStore;
                let id = au.request_break_glass(&auth, &reason, now)?;
                let r = au
                    .store()
                    .break_glass(id)?
                    .ok_or(AuthError::NoSuchRequest)?;
                Ok::<_, AuthError>(bg_view(au, &r, wait))
            })
            .await?
            .map_err(auth_error)?;
            Ok(Reply::BreakGlass { requests: vec![v] })
        }
        Request::BreakGlassList {} => {
            let user = a.principal.user;
            let approver = lethe_auth::authz::effective(&a.principal, Timestamp::now())
                .contains(Privilege::ReviewBreakGlass);
            let wait = d.cfg.breakglass.wait;
            let list = with_auth(d, Source::Api, move |au, now| {
                use lethe_auth::AuthStore;
                au.tick(now)?;
                let mut out = Vec::new();
                for r in au.store().open_break_glass()? {
                    if approver || r.requester == user {
                        out.push(bg_view(au, &r, wait));
                    }
                }
                Ok::<_, AuthError>(out)
            })
            .await?
            .map_err(auth_error)?;
            Ok(Reply::BreakGlass { requests: list })
        }
        Request::BreakGlassDecide { id, approve } => {
            let auth = a.auth;
            let bid = lethe_auth::BreakGlassId::parse(&id)
                .ok_or_else(|| werr(ErrorCode::NotFound, "no such break-glass request"))?;
            let wait = d.cfg.breakglass.wait;
            let v = with_auth(d, Source::Api, move |au, now| {
                use lethe_auth::AuthStore;
                if approve {
                    au.approve_break_glass(&auth, bid, now)?;
                } else {
                    au.deny_break_glass(&auth, bid, now)?;
                }
                let r = au
                    .store()
                    .break_glass(bid)?
                    .ok_or(AuthError::NoSuchRequest)?;
                Ok::<_, AuthError>(bg_view(au, &r, wait))
            })
            .await?
            .map_err(auth_error)?;
            Ok(Reply::BreakGlass { requests: vec![v] })
        }
        Request::BreakGlassEnter { id } => {
            let token = a.token.ok_or_else(|| {
                werr(
                    ErrorCode::Unauthenticated,
                    "break-glass access is used in a logged-in session, not with an API token",
                )
            })?;
            let bid = lethe_auth::BreakGlassId::parse(&id)
                .ok_or_else(|| werr(ErrorCode::NotFound, "no such break-glass request"))?;
            let v = with_auth(d, Source::Api, move |au, now| {
                au.enter_elevation(&token, bid, now)?;
                let p = au.session(&token, lethe_auth::Activity::UserAction, now)?;
                session_view(au, &p, &token, now, None)
            })
            .await?
            .map_err(auth_error)?;
            Ok(Reply::Session { session: v })
        }
        Request::BreakGlassReview { id, notes } => {
            let auth = a.auth;
            let bid = lethe_auth::BreakGlassId::parse(&id)
                .ok_or_else(|| werr(ErrorCode::NotFound, "no such break-glass request"))?;
            let wait = d.cfg.breakglass.wait;
            let v = with_auth(d, Source::Api, move |au, now| {
                use lethe_auth::AuthStore;
                au.review_break_glass(&auth, bid, &notes, now)?;
                let r = au
                    .store()
                    .break_glass(bid)?
                    .ok_or(AuthError::NoSuchRequest)?;
                Ok::<_, AuthError>(bg_view(au, &r, wait))
            })
            .await?
            .map_err(auth_error)?;
            Ok(Reply::BreakGlass { requests: vec![v] })
        }
        Request::Certificates { query } => {
            let d2 = Arc::clone(d);
            blocking(move || certificates(&d2, &query)).await
        }
        Request::Certificate { id, format } => {
            let d2 = Arc::clone(d);
            let user = a.principal.user.to_string();
            blocking(move || certificate(&d2, &id, format, &user)).await
        }
        Request::CertificateVerify { id } => {
            let d2 = Arc::clone(d);
            blocking(move || verify_certificate(&d2, &id)).await
        }
        Request::Audit { limit, before } => {
            let d2 = Arc::clone(d);
            blocking(move || audit(&d2, limit.min(1000), before)).await
        }
        Request::AuditVerify {} => {
            let d2 = Arc::clone(d);
            blocking(move || audit_verify(&d2)).await
        }
        Request::Keys {} => {
            let d2 = Arc::clone(d);
            blocking(move || keys(&d2)).await
        }
        Request::Login { .. }
        | Request::Health {}
        | Request::Reauth { .. }
        | Request::ChangePassword { .. }
        | Request::Tls {} => Err(werr(ErrorCode::Internal, "handled above")),
    }
}

async fn blocking(
    f: impl FnOnce() -> Result<Reply, WireError> + Send + 'static,
) -> Result<Reply, WireError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| werr(ErrorCode::Internal, e.to_string()))?
}

/// The reply of a credential check: `ok` of its value, or its failure
/// after the rest of the failure's delay (counted from the request's
/// start), so that timing tells nothing.
async fn after_check<T>(
    start: Instant,
    r: Result<T, AuthError>,
    ok: impl FnOnce(T) -> Reply,
) -> Result<Reply, WireError> {
    match r {
        Ok(v) => Ok(ok(v)),
        Err(e) => {
            if let Some(delay) = failure_delay(&e) {
                tokio::time::sleep_until((start + delay).into()).await;
            }
            Err(auth_error(e))
        }
    }
}

async fn login(
    d: &Arc<Daemon>,
    caller: &Caller,
    username: String,
    password: Secret,
    totp: Secret,
) -> Result<Reply, WireError> {
    let start = Instant::now();
    let source = caller.source;
    let r = with_auth(d, Source::Api, move |a, now| {
        let pw = SecretString::new(password.0);
        let code = SecretString::new(totp.0);
        let ok = a.login(
            &LoginRequest {
                username: &username,
                password: &pw,
                second_factor: &code,
                source,
            },
            now,
        )?;
        let p = a.session(&ok.token, lethe_auth::Activity::UserAction, now)?;
        let v = session_view(a, &p, &ok.token, now, ok.recovery_codes_left)?;
        Ok::<_, AuthError>((v, Secret(ok.token.expose().to_string())))
    })
    .await?;
    after_check(start, r, |(session, cookie)| Reply::LoggedIn {
        session,
        cookie,
    })
    .await
}

/// What a session-only request made with an API token gets (401, as for
/// re-authentication and password changes: the request has no session).
const NO_SESSION: &str = "this needs a logged-in session: an API token has none";

async fn reauth(
    d: &Arc<Daemon>,
    caller: &Caller,
    password: Secret,
    totp: Secret,
) -> Result<Reply, WireError> {
    let start = Instant::now();
    let token = session_token(caller).ok_or_else(|| {
        werr(
            ErrorCode::Unauthenticated,
            "re-authentication needs a logged-in session (API tokens cannot re-authenticate)",
        )
    })?;
    let source = caller.source;
    let r = with_auth(d, Source::Api, move |a, now| {
        let pw = SecretString::new(password.0);
        let code = SecretString::new(totp.0);
        a.reauthenticate(&token, &pw, &code, source, now)?;
        let p = a.session(&token, lethe_auth::Activity::UserAction, now)?;
        session_view(a, &p, &token, now, None)
    })
    .await?;
    after_check(start, r, |session| Reply::Session { session }).await
}

async fn change_password(
    d: &Arc<Daemon>,
    caller: &Caller,
    current: Secret,
    new: Secret,
) -> Result<Reply, WireError> {
    let start = Instant::now();
    let token = session_token(caller).ok_or_else(|| {
        werr(
            ErrorCode::Unauthenticated,
            "changing a password needs a logged-in session",
        )
    })?;
    let r = with_auth(d, Source::Api, move |a, now| {
        a.change_own_password(
            &token,
            &SecretString::new(current.0),
            &SecretString::new(new.0),
            now,
        )?;
        let p = a.session(&token, lethe_auth::Activity::UserAction, now)?;
        session_view(a, &p, &token, now, None)
    })
    .await?;
    after_check(start, r, |session| Reply::Session { session }).await
}

/// A certificate id as the API accepts it: the store's own file names,
/// never a path.
fn cert_id(id: &str) -> Result<&str, WireError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if ok && !id.contains("..") {
        Ok(id)
    } else {
        Err(werr(ErrorCode::NotFound, format!("no certificate {id:?}")))
    }
}

fn contains(hay: Option<&str>, needle: &Option<String>) -> bool {
    match needle {
        None => true,
        Some(n) => hay.is_some_and(|h| h.to_lowercase().contains(&n.to_lowercase())),
    }
}

fn cert_view(s: &lethe_cert::CertSummary, body: Option<&lethe_cert::CertificateBody>) -> CertView {
    CertView {
        id: s.id.clone(),
        issued_at: s.issued_at.clone(),
        result: s.status.map(|st| {
            serde_json::to_value(st)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| format!("{st:?}"))
        }),
        model: s.model.clone(),
        serial: s.serial.clone(),
        asset_tag: body.and_then(|b| b.asset_tag.clone()),
        customer: body.and_then(|b| b.customer.clone()),
        key_id: s.key_id.clone(),
        problem: s.problem.clone(),
    }
}

fn certificates(d: &Daemon, q: &CertQuery) -> Result<Reply, WireError> {
    let store = lethe_cert::CertStore::new(d.state.certificates());
    let list = store
        .list()
        .map_err(|e| werr(ErrorCode::Unavailable, e.to_string()))?;
    let limit = q.limit.unwrap_or(100).min(1000) as usize;
    let mut out = Vec::new();
    for s in list.iter().rev() {
        if out.len() >= limit {
            break;
        }
        if let Some(from) = &q.from {
            if s.issued_at.as_str() < from.as_str() {
                continue;
            }
        }
        if let Some(to) = &q.to {
            if s.issued_at.as_str() >= to.as_str() {
                continue;
            }
        }
        if !contains(Some(&s.serial), &q.serial) {
            continue;
        }
        let body = if q.asset_tag.is_some() || q.customer.is_some() || s.problem.is_none() {
            store.load(&s.id).ok()
        } else {
            None
        };
        let b = body.as_ref().map(|v| v.body());
        if !contains(b.and_then(|b| b.asset_tag.as_deref()), &q.asset_tag)
            || !contains(b.and_then(|b| b.customer.as_deref()), &q.customer)
        {
            continue;
        }
        out.push(cert_view(s, b));
    }
    Ok(Reply::Certificates { certificates: out })
}

fn certificate(d: &Daemon, id: &str, format: CertFormat, user: &str) -> Result<Reply, WireError> {
    use base64::Engine;
    let id = cert_id(id)?;
    let store = lethe_cert::CertStore::new(d.state.certificates());
    let (path, ctype) = match format {
        CertFormat::Json => (store.json_path(id), "application/json"),
        CertFormat::Pdf => (store.pdf_path(id), "application/pdf"),
    };
    let bytes = match std::fs::symlink_metadata(&path) {
        Ok(m) if m.is_file() => std::fs::read(&path)
            .map_err(|e| werr(ErrorCode::Unavailable, format!("{}: {e}", path.display())))?,
        _ => return Err(werr(ErrorCode::NotFound, format!("no certificate {id}"))),
    };
    if bytes.len() > (lethe_wire::MAX_FRAME / 4) * 3 - 64 * 1024 {
        return Err(werr(
            ErrorCode::Unavailable,
            format!(
                "certificate {id} is too large to send ({} bytes)",
                bytes.len()
            ),
        ));
    }
    d.audit_as(
        user,
        lethe_audit::Action::CertificateViewed,
        lethe_audit::Entity::Certificate,
        id,
        lethe_audit::Detail::new().label(
            "format",
            match format {
                CertFormat::Json => "json",
                CertFormat::Pdf => "pdf",
            },
        ),
    );
    Ok(Reply::Document {
        content_type: ctype.into(),
        base64: base64::engine::general_purpose::STANDARD.encode(bytes),
    })
}

fn verify_certificate(d: &Daemon, id: &str) -> Result<Reply, WireError> {
    let id = cert_id(id)?;
    let store = lethe_cert::CertStore::new(d.state.certificates());
    let summary = store
        .list()
        .map_err(|e| werr(ErrorCode::Unavailable, e.to_string()))?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| werr(ErrorCode::NotFound, format!("no certificate {id}")))?;
    let key = lethe_cert::ApplianceKey::load_or_create(&d.state.keys())
        .map_err(|e| werr(ErrorCode::Unavailable, e.to_string()))?;
    let r = store.load_with_key(id, Some(&key.verifying_key()));
    let (ok, problem, body) = match &r {
        Ok(v) => (true, None, Some(v.body())),
        Err(e) => (false, Some(e.to_string()), None),
    };
    Ok(Reply::CertificateVerified {
        certificate: cert_view(&summary, body),
        ok,
        problem,
    })
}

fn audit(d: &Daemon, limit: u32, before: Option<u64>) -> Result<Reply, WireError> {
    use lethe_audit::AuditStore;
    let entries = d.audit.log().with(|l| {
        let store = l.store();
        let len = store.len().map_err(|e| e.to_string())?;
        let end = before.map_or(len, |b| b.min(len));
        let mut out = Vec::new();
        let mut i = end;
        while i > 0 && out.len() < limit as usize {
            i -= 1;
            let Some(e) = store.entry(i).map_err(|e| e.to_string())? else {
                continue;
            };
            let Ok((_, entry)) = lethe_audit::decode_leaf(&e.leaf) else {
                continue;
            };
            out.push(AuditView {
                seq: e.index,
                at: entry.time.to_string(),
                actor: entry.user_id.as_str().to_string(),
                source: entry.source.as_str().to_string(),
                action: entry.action.as_str().to_string(),
                outcome: entry.outcome.as_str().to_string(),
                entity: entry.entity.as_str().to_string(),
                record_id: entry.record_id.as_str().to_string(),
                detail: serde_json::Value::Object({
                    let mut m = entry.detail.as_json().clone();
                    for (k, v) in entry.tags.iter() {
                        m.insert(
                            format!("tag:{}", k.as_str()),
                            serde_json::Value::String(v.as_str().to_string()),
                        );
                    }
                    m
                }),
            });
        }
        Ok::<_, String>(out)
    });
    let entries = entries.map_err(|e| werr(ErrorCode::Unavailable, e))?;
    Ok(Reply::Audit { entries })
}

fn audit_verify(d: &Daemon) -> Result<Reply, WireError> {
    let key = lethe_cert::ApplianceKey::load_or_create(&d.state.keys())
        .map_err(|e| werr(ErrorCode::Unavailable, e.to_string()))?;
    let vk = key.verifying_key();
    let r = d
        .audit
        .log()
        .with(|l| lethe_audit::verify_log(l.store(), &vk, None))
        .map_err(|e| werr(ErrorCode::Unavailable, e.to_string()))?;
    Ok(Reply::AuditVerified {
        verify: AuditVerifyView {
            entries: r.entries,
            root: r
                .latest
                .as_ref()
                .map(|c| c.root_base64())
                .unwrap_or_default(),
            ok: r.is_intact(),
            problem: r.finding.as_ref().map(|f| f.to_string()),
        },
    })
}

fn keys(d: &Daemon) -> Result<Reply, WireError> {
    let key = lethe_cert::ApplianceKey::load_or_create(&d.state.keys())
        .map_err(|e| werr(ErrorCode::Unavailable, e.to_string()))?;
    let mut keys = vec![KeyView {
        purpose: "appliance_signing".into(),
        id: key.key_id().to_string(),
        public: Some(key.public_key_hex()),
    }];
    if let Some(fp) = d.tls_fingerprint() {
        keys.push(KeyView {
            purpose: "tls".into(),
            id: fp,
            public: None,
        });
    }
    Ok(Reply::Keys { keys })
}

/// The TLS material, for the front's account (and root) only.
pub fn tls_for(d: &Daemon, peer_uid: u32) -> Reply {
    if peer_uid != 0 && peer_uid != d.front_user.uid {
        return err(ErrorCode::Forbidden, "the TLS key goes to the front only");
    }
    match crate::tls::material(d) {
        Ok(tls) => Reply::Tls { tls },
        Err(e) => err(ErrorCode::Unavailable, e),
    }
}

fn admin_error(e: WireError) -> AdminReply {
    AdminReply::Error { error: e }
}

/// User management on the admin socket (root at the console). Every
/// change is audited as `root` from the command line; a console recovery
/// is also alerted.
pub async fn admin(d: &Arc<Daemon>, request: AdminRequest) -> AdminReply {
    let r = with_auth(d, Source::Cli, move |a, now| {
        let console = Authorization::console(Privilege::ManageUsers, now);
        match request {
            AdminRequest::UserAdd {
                name,
                role,
                password,
                emergency,
            } => add_user(a, &console, &name, role, password.as_ref(), emergency, now)
                .map(|enrolment| AdminReply::Enrolled { enrolment }),
            AdminRequest::Users {} => a.list_users(&console, now).map(|u| AdminReply::Users {
                users: u.iter().map(user_view).collect(),
            }),
            AdminRequest::UserChange { name, change } => {
                change_user(a, &console, &name, &change, now).map(|r| match r {
                    Ok(user) => AdminReply::User { user },
                    Err(enrolment) => AdminReply::Enrolled { enrolment },
                })
            }
            AdminRequest::UserPassword { name, password } => {
                let u = a.find_user(&console, &name, now);
                u.and_then(|u| {
                    a.set_user_password(&console, u.id, &SecretString::new(password.0), now)?;
                    Ok(AdminReply::User {
                        user: summary_of(a, &console, &name, now)?,
                    })
                })
            }
            AdminRequest::UserRecover { name } => a.recover(&console, &name, now).and_then(|k| {
                let v =
                    summary_of(a, &console, k.name.as_str(), now)?.ok_or(AuthError::NoSuchUser)?;
                Ok(AdminReply::Enrolled {
                    enrolment: enrolment(
                        v,
                        Some(&k.enrolment),
                        Some(&k.one_time_password),
                        Some(&k.recovery_codes),
                    ),
                })
            }),
            AdminRequest::Ping {} | AdminRequest::Checkpoint {} => {
                Err(AuthError::Config("not a user request".to_string()))
            }
        }
    })
    .await;
    match r {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => admin_error(auth_error(e)),
        Err(e) => admin_error(e),
    }
}

/// Housekeeping every few seconds: break-glass auto-grants and expiries,
/// sessions that timed out, locks whose time ran out, all audited.
pub async fn tick(d: Arc<Daemon>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = d.shutdown.notified() => return,
        }
        if d.identity.is_none() {
            return;
        }
        if let Ok(Err(e)) = with_auth(&d, Source::Daemon, |a, now| a.tick(now)).await {
            tracing::error!("identity housekeeping: {e}");
        }
    }
}
