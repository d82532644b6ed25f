//! The route table: every route of the HTTPS API, the privilege it needs
//! (`docs/auth.md`), whether it is automatic polling, the one worker
//! request it becomes and its handler. The router is built from this table
//! ([`super::router`]), the OpenAPI document is checked against it and
//! takes each operation's privilege from it, and `docs/api.md`'s route
//! table is generated from it.
//!
//! The worker authorises every request; the privileges here document what
//! it checks (a purge bay's start needs `start_purge` instead of
//! `start_wipe`: the worker decides by the bay's level).

use super::{
    audit, backups, bays, breakglass, certificates, controller, session, tokens, users, ApiState,
};
use axum::routing::{on, MethodFilter, MethodRouter};

/// The HTTP methods the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Method {
    /// `GET` (and `HEAD`).
    Get,
    /// `POST`.
    Post,
    /// `DELETE`.
    Delete,
}

impl Method {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }

    /// The router's filter for it.
    pub fn filter(self) -> MethodFilter {
        match self {
            Method::Get => MethodFilter::GET,
            Method::Post => MethodFilter::POST,
            Method::Delete => MethodFilter::DELETE,
        }
    }
}

/// What needs no session or token.
pub const PUBLIC: &str = "public";

/// One route.
#[derive(Debug)]
pub struct Route {
    /// Its method.
    pub method: Method,
    /// Its path (`{name}` marks a parameter).
    pub path: &'static str,
    /// The privilege it needs (`docs/auth.md`), or [`PUBLIC`].
    pub privilege: &'static str,
    /// Automatic polling (status, progress): the worker does not count it
    /// as a user action, so it does not keep a session from timing out.
    pub polling: bool,
    /// The `op` of the worker request it becomes (none: answered by the
    /// front alone).
    pub op: Option<&'static str>,
    /// One line for the documentation.
    pub summary: &'static str,
    /// Its handler, on the method filter given.
    pub handler: fn(MethodFilter) -> MethodRouter<ApiState>,
}

macro_rules! route {
    ($m:ident $path:literal, $privilege:expr, polling = $polling:literal, $op:expr, $handler:path, $summary:literal) => {
        Route {
            method: Method::$m,
            path: $path,
            privilege: $privilege,
            polling: $polling,
            op: $op,
            summary: $summary,
            handler: |m| on(m, $handler),
        }
    };
}

/// Every route of the HTTPS listener.
pub const ROUTES: &[Route] = &[
    route!(Get "/healthz", PUBLIC, polling = true, Some("health"),
        session::healthz, "Is the appliance up (no details)"),
    route!(Get "/api/v1/openapi.json", PUBLIC, polling = false, None,
        super::openapi::openapi_json, "This API's OpenAPI 3.1 document"),
    route!(Post "/api/v1/login", PUBLIC, polling = false, Some("login"),
        session::login, "Log in with password and second factor; sets the session cookie"),
    route!(Post "/api/v1/logout", "own_session", polling = false, Some("logout"),
        session::logout, "End this session; clears the cookie"),
    route!(Post "/api/v1/logout-everywhere", "own_session", polling = false, Some("logout_everywhere"),
        session::logout_everywhere, "End every session of this user; clears the cookie"),
    route!(Post "/api/v1/reauth", "own_session", polling = false, Some("reauth"),
        session::reauth, "Password and second factor again, for destructive actions"),
    route!(Get "/api/v1/session", "own_session", polling = false, Some("who_am_i"),
        session::whoami, "This session: user, role, privileges, timeouts"),
    route!(Post "/api/v1/session/password", "manage_own_credentials", polling = false, Some("change_password"),
        session::change_password, "Change one's own password"),
    route!(Get "/api/v1/status", "read_drives", polling = true, Some("status"),
        bays::status, "Bays, running and interrupted jobs, backup jobs"),
    route!(Get "/api/v1/bays", "read_drives", polling = true, Some("status"),
        bays::bays, "Every bay with its drive and job"),
    route!(Post "/api/v1/bays/{bay}/start", "start_wipe", polling = false, Some("start_bay"),
        bays::start, "Start the bay's job on the drive waiting in it"),
    route!(Get "/api/v1/jobs", "read_jobs", polling = true, Some("jobs"),
        bays::jobs, "The newest jobs of the job history"),
    route!(Post "/api/v1/jobs/{job}/cancel", "control_jobs", polling = false, Some("cancel"),
        bays::cancel, "Stop a running job at its next safe point"),
    route!(Post "/api/v1/jobs/{job}/resume", "control_jobs", polling = false, Some("resume"),
        bays::resume, "Resume an interrupted or stopped wipe"),
    route!(Get "/api/v1/jobs/{job}/events", "read_jobs", polling = true, Some("status"),
        super::events::job_events, "A job's progress as server-sent events"),
    route!(Get "/api/v1/backups", "read_backup_history", polling = false, Some("status"),
        bays::backups, "Backup jobs with their last and next runs"),
    route!(Get "/api/v1/backups/{job}/history", "read_backup_history", polling = false, Some("backup_history"),
        backups::history, "A backup job's history: backups, retention, drills, missed slots"),
    route!(Get "/api/v1/backups/{job}/snapshots", "read_backup_history", polling = false, Some("backup_snapshots"),
        backups::snapshots, "A backup job's snapshots, read from its repository now"),
    route!(Post "/api/v1/backups/{job}/drill", "run_drill", polling = false, Some("backup_drill"),
        backups::drill, "Run a restore drill of a backup job now"),
    route!(Get "/api/v1/controller", "read_controller_status", polling = true, Some("controller"),
        controller::status, "The front-panel controller and degausser, as it answers now"),
    route!(Get "/api/v1/certificates", "read_certificates", polling = false, Some("certificates"),
        certificates::search, "Search certificates and reports"),
    route!(Get "/api/v1/certificates/{id}", "read_certificates", polling = false, Some("certificate"),
        certificates::json, "A certificate's signed JSON document"),
    route!(Get "/api/v1/certificates/{id}/pdf", "read_certificates", polling = false, Some("certificate"),
        certificates::pdf, "A certificate's PDF"),
    route!(Post "/api/v1/certificates/{id}/verify", "read_certificates", polling = false, Some("certificate_verify"),
        certificates::verify, "Verify a stored certificate against the appliance key"),
    route!(Get "/api/v1/audit", "read_audit_log", polling = false, Some("audit"),
        audit::entries, "The newest audit-log entries"),
    route!(Get "/api/v1/audit/export", "read_audit_log", polling = false, Some("audit"),
        audit::export, "Audit-log entries as JSON lines, oldest first"),
    route!(Post "/api/v1/audit/verify", "read_audit_log", polling = false, Some("audit_verify"),
        audit::verify, "Verify the whole audit log"),
    route!(Get "/api/v1/keys", "manage_keys", polling = false, Some("keys"),
        audit::keys, "Key ids and fingerprints (never key material)"),
    route!(Get "/api/v1/users", "manage_users", polling = false, Some("users"),
        users::list, "Every user"),
    route!(Post "/api/v1/users", "manage_users", polling = false, Some("user_add"),
        users::add, "Add a user with a one-time password and a second factor"),
    route!(Delete "/api/v1/users/{name}", "manage_users", polling = false, Some("user_change"),
        users::remove, "Remove a user"),
    route!(Post "/api/v1/users/{name}/disable", "manage_users", polling = false, Some("user_change"),
        users::disable, "Disable a user; their sessions end"),
    route!(Post "/api/v1/users/{name}/enable", "manage_users", polling = false, Some("user_change"),
        users::enable, "Enable a user again"),
    route!(Post "/api/v1/users/{name}/role", "manage_users", polling = false, Some("user_change"),
        users::set_role, "Give a user another role; their sessions end"),
    route!(Post "/api/v1/users/{name}/emergency", "manage_users", polling = false, Some("user_change"),
        users::set_emergency, "Give or take the emergency grant"),
    route!(Post "/api/v1/users/{name}/unlock", "manage_users", polling = false, Some("user_change"),
        users::unlock, "Lift a soft lock"),
    route!(Post "/api/v1/users/{name}/reset-password", "manage_users", polling = false, Some("user_change"),
        users::reset_password, "A one-time password for a user"),
    route!(Post "/api/v1/users/{name}/reset-second-factor", "manage_users", polling = false, Some("user_change"),
        users::reset_second_factor, "A new TOTP secret and recovery codes for a user"),
    route!(Get "/api/v1/tokens", "manage_own_tokens", polling = false, Some("tokens"),
        tokens::list, "API tokens (one's own; admins see every token)"),
    route!(Post "/api/v1/tokens", "manage_own_tokens", polling = false, Some("token_create"),
        tokens::create, "Create an API token; its secret is shown once"),
    route!(Delete "/api/v1/tokens/{id}", "manage_own_tokens", polling = false, Some("token_revoke"),
        tokens::revoke, "Revoke an API token"),
    route!(Get "/api/v1/breakglass", "own_session", polling = false, Some("break_glass_list"),
        breakglass::list, "Open and recent break-glass requests (one's own; approvers see all)"),
    route!(Post "/api/v1/breakglass", "request_emergency_access", polling = false, Some("break_glass_request"),
        breakglass::request, "Ask for time-boxed emergency access"),
    route!(Post "/api/v1/breakglass/{id}/approve", "approve_break_glass", polling = false, Some("break_glass_decide"),
        breakglass::approve, "Approve a break-glass request"),
    route!(Post "/api/v1/breakglass/{id}/deny", "approve_break_glass", polling = false, Some("break_glass_decide"),
        breakglass::deny, "Deny a break-glass request"),
    route!(Post "/api/v1/breakglass/{id}/enter", "own_session", polling = false, Some("break_glass_enter"),
        breakglass::enter, "Use a granted request in this session: its privileges apply until it ends"),
    route!(Post "/api/v1/breakglass/{id}/review", "review_break_glass", polling = false, Some("break_glass_review"),
        breakglass::review, "Write the review that closes an ended episode"),
];

/// The route of `method` and `path`, if there is one.
pub fn find(method: Method, path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.method == method && r.path == path)
}

/// The route table as Markdown, for `docs/api.md`.
pub fn markdown() -> String {
    let mut out = String::from(
        "| method | path | privilege | polling | worker request | what |\n|---|---|---|---|---|---|\n",
    );
    for r in ROUTES {
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} | {} | {} |\n",
            r.method.as_str(),
            r.path,
            if r.privilege == PUBLIC {
                "public".to_string()
            } else {
                format!("`{}`", r.privilege)
            },
            if r.polling { "yes" } else { "" },
            r.op.map_or_else(|| "none".to_string(), |o| format!("`{o}`")),
            r.summary,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The privilege names of `docs/auth.md`'s role table.
    fn documented_privileges() -> BTreeSet<String> {
        let doc = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/auth.md"),
        )
        .unwrap();
        let set: BTreeSet<String> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once('`'))
            .map(|(name, _)| name.to_string())
            .collect();
        assert!(set.len() > 20, "the role table of docs/auth.md: {set:?}");
        set
    }

    #[test]
    fn every_route_declares_a_documented_privilege() {
        let known = documented_privileges();
        for r in ROUTES {
            assert!(
                r.privilege == PUBLIC || known.contains(r.privilege),
                "{} {}: privilege {:?} is not in docs/auth.md",
                r.method.as_str(),
                r.path,
                r.privilege
            );
            assert!(!r.summary.is_empty(), "{} has no summary", r.path);
        }
        // Only logging in, the document and the health check are public.
        let public: Vec<_> = ROUTES
            .iter()
            .filter(|r| r.privilege == PUBLIC)
            .map(|r| r.path)
            .collect();
        assert_eq!(
            public,
            ["/healthz", "/api/v1/openapi.json", "/api/v1/login"]
        );
    }

    #[test]
    fn routes_are_unique_and_only_reads_poll() {
        let mut seen = BTreeSet::new();
        for r in ROUTES {
            assert!(
                seen.insert((r.method, r.path)),
                "{} {} twice",
                r.method.as_str(),
                r.path
            );
            assert!(
                r.path == "/healthz" || r.path.starts_with("/api/v1/"),
                "{}",
                r.path
            );
            if r.polling {
                assert_eq!(r.method, Method::Get, "{} polls but changes things", r.path);
            }
        }
        let polling: BTreeSet<_> = ROUTES
            .iter()
            .filter(|r| r.polling)
            .map(|r| r.path)
            .collect();
        assert_eq!(
            polling,
            BTreeSet::from([
                "/healthz",
                "/api/v1/status",
                "/api/v1/bays",
                "/api/v1/jobs",
                "/api/v1/jobs/{job}/events",
                "/api/v1/controller",
            ])
        );
    }
}
