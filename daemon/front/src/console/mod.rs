//! The web console (issue 15): server-rendered HTML pages over the same
//! worker requests as the JSON API, for a browser with no build step.
//!
//! - Pages are askama templates (`daemon/front/templates/console/`),
//!   compiled into the binary and escaped by default.
//! - One script and one style sheet (`daemon/front/assets/`), built in with
//!   `include_str!`, served under a content-tagged name with a year-long
//!   cache; no inline script or style, no other origin. The pages' CSP
//!   ([`CONSOLE_CSP`]) says so, and the browser test checks it holds.
//! - Live progress: the bays page fetches the grid as a partial
//!   (`/console/bays/grid`, polling: it does not keep a session alive) and
//!   swaps it in; every page asks `/console/session` (polling too) and
//!   goes back to the login page with a banner when the session ended.
//! - Every route is in [`PAGES`] with the privilege the worker checks for
//!   its worker request, like the API's route table. The front decides
//!   nothing: the worker authenticates and authorises each request, and a
//!   hidden button is presentation, never protection.
//! - Forms post with the session cookie: a request from another origin is
//!   refused (`Origin` / `Sec-Fetch-Site`), as for the API.

mod assets;
mod pages;
mod view;

pub use assets::{Asset, ASSETS};

use crate::api::headers::SECURITY_HEADERS;
use crate::api::routes::{Method, PUBLIC};
use crate::client::Worker;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::map_response;
use axum::response::Response;
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{Extension, Router};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The console pages' Content-Security-Policy: scripts, styles and
/// fetches from this origin only (no inline script or style, no `eval`),
/// images from here or `data:` URIs, forms posted here only, never framed.
pub const CONSOLE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
base-uri 'none'";

/// One route of the console.
#[derive(Debug)]
pub struct Page {
    /// Its method.
    pub method: Method,
    /// Its path (`{name}` marks a parameter).
    pub path: &'static str,
    /// The privilege the worker checks for its worker request
    /// (`docs/auth.md`), or [`PUBLIC`].
    pub privilege: &'static str,
    /// Automatic polling: does not keep a session from timing out.
    pub polling: bool,
    /// The worker requests it makes (none: answered by the front alone).
    pub ops: &'static [&'static str],
    /// One line for the documentation.
    pub summary: &'static str,
    /// Its handler, on the method filter given.
    pub handler: fn(MethodFilter) -> MethodRouter<ConsoleState>,
}

macro_rules! page {
    ($m:ident $path:literal, $privilege:expr, polling = $polling:literal, [$($op:literal),*], $handler:path, $summary:literal) => {
        Page {
            method: Method::$m,
            path: $path,
            privilege: $privilege,
            polling: $polling,
            ops: &[$($op),*],
            summary: $summary,
            handler: |m| on(m, $handler),
        }
    };
}

/// Every route of the console. Pages that show the navigation ask
/// `who_am_i` first (the session's user, role and privileges).
pub const PAGES: &[Page] = &[
    page!(Get "/console", PUBLIC, polling = false, [],
        pages::home, "Redirects to the bays page"),
    page!(Get "/console/login", PUBLIC, polling = false, [],
        pages::login_form, "The login form (user name, password, one-time code); a banner when a session ended"),
    page!(Post "/console/login", PUBLIC, polling = false, ["login"],
        pages::login, "Log in; sets the session cookie and goes to the bays page"),
    page!(Post "/console/logout", "own_session", polling = false, ["logout"],
        pages::logout, "Log out; clears the cookie"),
    page!(Get "/console/session", "own_session", polling = true, ["who_am_i"],
        pages::session_check, "204 while the session lasts, 401 once it ended (the pages' automatic return to login)"),
    page!(Get "/console/bays", "read_drives", polling = false, ["who_am_i", "status", "jobs"],
        pages::bays, "The bays: one tile per bay with its drive, state and progress (certificate links need `read_jobs`)"),
    page!(Get "/console/bays/grid", "read_drives", polling = true, ["who_am_i", "status", "jobs"],
        pages::bays_grid, "The bay grid alone, fetched by the bays page to update it live"),
    page!(Get "/console/bays/{bay}/start", "read_drives", polling = false, ["who_am_i", "status"],
        pages::start_form, "The start form of a waiting drive: type its serial or size"),
    page!(Post "/console/bays/{bay}/start", "start_wipe", polling = false, ["who_am_i", "reauth", "start_bay", "status"],
        pages::start, "Start the bay's job; asks for password and code again when the worker wants a re-authentication"),
    page!(Get "/console/backups", "read_drives", polling = false, ["who_am_i", "status"],
        pages::backups, "Backup jobs: last run and result (failures in red), last success, next run, last drill"),
    page!(Get "/console/certificates", "read_certificates", polling = false, ["who_am_i", "certificates"],
        pages::certificates, "Search certificates by serial, asset tag, customer, dates"),
    page!(Post "/console/certificates/{id}/verify", "read_certificates", polling = false, ["who_am_i", "certificate_verify"],
        pages::verify, "Verify a certificate against the appliance key"),
    page!(Get "/console/assets/{file}", PUBLIC, polling = false, [],
        assets::asset, "The console's script and style sheet (built into the binary)"),
];

/// The console's state: the worker, and what the rate column needs.
#[derive(Clone)]
pub struct ConsoleState {
    pub(crate) worker: Arc<dyn Worker>,
    /// Per running job and phase: when the console first saw it and how
    /// far it was then, for MB/s and the time left. The worker reports
    /// progress, not speed; a few entries, dropped when the job ends.
    pub(crate) rates: Arc<Mutex<Samples>>,
}

/// The first sample of each (job, phase): when, and how much was done.
pub(crate) type Samples = HashMap<(String, String), (Instant, u64)>;

/// The console's router over `worker`: the pages of [`PAGES`], their
/// headers ([`console_headers`]). Merge it with the API's router.
pub fn router(worker: Arc<dyn Worker>) -> Router {
    let mut r = Router::new();
    for page in PAGES {
        r = r.route(
            page.path,
            (page.handler)(page.method.filter()).layer(Extension(page)),
        );
    }
    r.layer(DefaultBodyLimit::max(crate::api::MAX_BODY))
        .layer(map_response(console_headers))
        .with_state(ConsoleState {
            worker,
            rates: Arc::default(),
        })
}

/// Middleware: the API's security headers with the console's CSP and
/// referrer policy instead of the API's. Assets keep the cache header they set (they are named by
/// their content); everything else is `no-store`.
pub async fn console_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    let cached = h.contains_key(header::CACHE_CONTROL);
    for (name, value) in SECURITY_HEADERS {
        if *name == "cache-control" && cached {
            continue;
        }
        h.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONSOLE_CSP),
    );
    // Under `no-referrer` a browser sends `Origin: null` with a form post,
    // and the origin check must refuse that. `same-origin` sends the
    // origin (and referrer) to this appliance only, nothing elsewhere.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    resp
}

/// The console's route table as Markdown, for `docs/console.md`.
pub fn markdown() -> String {
    let mut out = String::from(
        "| method | path | privilege | polling | worker requests | what |\n|---|---|---|---|---|---|\n",
    );
    for p in PAGES {
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} | {} | {} |\n",
            p.method.as_str(),
            p.path,
            if p.privilege == PUBLIC {
                "public".to_string()
            } else {
                format!("`{}`", p.privilege)
            },
            if p.polling { "yes" } else { "" },
            if p.ops.is_empty() {
                "none".to_string()
            } else {
                p.ops
                    .iter()
                    .map(|o| format!("`{o}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            p.summary,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn documented_privileges() -> BTreeSet<String> {
        let doc = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/auth.md"),
        )
        .unwrap();
        doc.lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once('`'))
            .map(|(name, _)| name.to_string())
            .collect()
    }

    #[test]
    fn every_console_route_declares_a_documented_privilege() {
        let known = documented_privileges();
        let api_ops: BTreeSet<_> = crate::api::ROUTES.iter().filter_map(|r| r.op).collect();
        let mut seen = BTreeSet::new();
        for p in PAGES {
            assert!(
                p.privilege == PUBLIC || known.contains(p.privilege),
                "{}: {:?} is not in docs/auth.md",
                p.path,
                p.privilege
            );
            assert!(p.path.starts_with("/console"), "{}", p.path);
            assert!(seen.insert((p.method, p.path)), "{} twice", p.path);
            if p.polling {
                assert_eq!(p.method, Method::Get, "{} polls but changes things", p.path);
            }
            // The console makes only requests the API makes too: it is a
            // second face of the same operations, not a new one.
            for op in p.ops {
                assert!(api_ops.contains(op), "{}: {op} is no API request", p.path);
            }
        }
        // Only the login form, logging in, the redirect and the assets
        // are public; none of them reads anything from the worker but
        // logging in.
        let public: Vec<_> = PAGES
            .iter()
            .filter(|p| p.privilege == PUBLIC)
            .map(|p| (p.path, p.ops))
            .collect();
        assert_eq!(
            public,
            [
                ("/console", &[][..]),
                ("/console/login", &[][..]),
                ("/console/login", &["login"][..]),
                ("/console/assets/{file}", &[][..]),
            ]
        );
        // No console path shadows an API path.
        for r in crate::api::ROUTES {
            assert!(!r.path.starts_with("/console"), "{}", r.path);
        }
    }

    #[test]
    fn the_console_csp_allows_no_inline_code_and_no_other_origin() {
        for d in CONSOLE_CSP.split(';').map(str::trim) {
            assert!(!d.contains("unsafe"), "{d}");
            assert!(!d.contains("http"), "{d}");
            assert!(!d.contains('*'), "{d}");
        }
        assert!(CONSOLE_CSP.contains("script-src 'self'"));
        assert!(CONSOLE_CSP.contains("frame-ancestors 'none'"));
    }
}
