//! The web console's router over a fake worker: what each page asks the
//! worker, the return to the login page, the origin check on forms, the
//! headers (the console's CSP, cached assets) and pages free of inline
//! code.

mod common;

use axum::body::Body;
use axum::http::{header, Request as HttpRequest, StatusCode};
use axum::Router;
use common::*;
use http_body_util::BodyExt;
use lethe_front::api::ClientAddr;
use lethe_front::console::{self, ASSETS, CONSOLE_CSP};
use lethe_wire::*;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tower::ServiceExt;

const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)), 50123);
const COOKIE: &str = "__Host-lethe_session=sess-abc";

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

fn app(w: &Arc<Fake>) -> Router {
    lethe_front::https_router(w.clone())
}

async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    cookie: bool,
    form: Option<&str>,
    extra: &[(&str, &str)],
) -> Answer {
    let mut b = HttpRequest::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "lethe.local:8443")
        .extension(ClientAddr(PEER));
    if cookie {
        b = b.header(header::COOKIE, COOKIE);
    }
    if form.is_some() {
        b = b.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(b.body(Body::from(form.unwrap_or("").to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        status,
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

fn ops(w: &Fake) -> Vec<String> {
    w.asked().iter().map(|(_, r)| op(r)).collect()
}

/// A session that may start wipes.
fn operator() -> SessionView {
    let mut s = session_view();
    s.privileges.push("start_wipe".into());
    s
}

/// No inline script, no inline style, no event-handler attribute, and
/// only this origin's files: what the CSP would block anyway, checked
/// here so that a page never relies on the browser to block it.
fn no_inline_code(html: &str) {
    let lower = html.to_ascii_lowercase();
    for (i, _) in lower.match_indices("<script") {
        let tag = &lower[i..i + lower[i..].find('>').unwrap()];
        assert!(tag.contains(" src=\"/console/assets/"), "{tag}");
        assert!(lower[i..].starts_with(&format!("{tag}></script>")), "{tag}");
    }
    assert!(!lower.contains("<style"), "inline style element");
    assert!(!lower.contains(" style="), "inline style attribute");
    assert!(!lower.contains("javascript:"));
    for attr in [
        " onclick=",
        " onload=",
        " onsubmit=",
        " onchange=",
        " oninput=",
    ] {
        assert!(!lower.contains(attr), "{attr}");
    }
    assert!(!lower.contains("http://") && !lower.contains("https://"));
}

/// Every input that is not hidden has a `<label for=…>`.
fn labelled(html: &str) {
    for (i, _) in html.match_indices("<input ") {
        let tag = &html[i..i + html[i..].find('>').unwrap()];
        if tag.contains("type=\"hidden\"") {
            continue;
        }
        let id = tag
            .split("id=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_else(|| panic!("an input without id: {tag}"));
        assert!(
            html.contains(&format!("<label for=\"{id}\">")),
            "no label for {id}"
        );
    }
}

#[tokio::test]
async fn pages_without_a_session_go_to_login_and_an_ended_session_says_so() {
    let w = Fake::new();
    let a = app(&w);
    let r = send(&a, "GET", "/console/bays", false, None, &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), Some("/console/login"));
    assert!(w.asked().is_empty(), "nothing asked without a cookie");

    let w = Fake::scripted(|r, _| {
        matches!(r, Request::WhoAmI {})
            .then(|| Ok(wire_error(ErrorCode::Unauthenticated, "the session ended")))
    });
    let a = app(&w);
    for page in ["/console/bays", "/console/certificates"] {
        let r = send(&a, "GET", page, true, None, &[]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{page}");
        assert_eq!(r.header("location"), Some("/console/login?ended=1"));
        assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    }
    // The script's check: 401 once the session ended; it is polling.
    let r = send(&a, "GET", "/console/session", true, None, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let (caller, _) = w.asked().pop().unwrap();
    assert!(caller.polling);
    let r = send(&a, "GET", "/console/login?ended=1", false, None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Your session ended"), "{}", r.body);
}

#[tokio::test]
async fn logging_in_sets_the_apis_cookie_and_only_from_this_origin() {
    let w = Fake::new();
    let a = app(&w);
    let r = send(&a, "GET", "/console/login", false, None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    for token in ["username", "current-password", "one-time-code"] {
        assert!(
            r.body.contains(&format!("autocomplete=\"{token}\"")),
            "{token}"
        );
    }
    no_inline_code(&r.body);
    labelled(&r.body);

    let form = "username=alice&password=pw-1&totp=123456";
    let r = send(
        &a,
        "POST",
        "/console/login",
        true,
        Some(form),
        &[
            ("origin", "https://lethe.local:8443"),
            ("sec-fetch-site", "same-origin"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.header("location"), Some("/console/bays"));
    let cookie = r.header("set-cookie").unwrap();
    assert!(
        cookie.starts_with("__Host-lethe_session=")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let (caller, req) = w.asked().pop().unwrap();
    // A stale cookie is not sent along with a login.
    assert_eq!(caller.credential, None);
    assert_eq!(caller.source, Some(PEER.ip()));
    match req {
        Request::Login {
            username,
            password,
            totp,
        } => {
            assert_eq!(username, "alice");
            assert_eq!(password.expose(), "pw-1");
            assert_eq!(totp.expose(), "123456");
        }
        other => panic!("{other:?}"),
    }

    // From another origin: refused before the worker is asked.
    w.clear();
    for bad in [
        &[("origin", "https://evil.example")][..],
        &[("sec-fetch-site", "cross-site")],
    ] {
        let r = send(&a, "POST", "/console/login", false, Some(form), bad).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{bad:?}");
        let r = send(
            &a,
            "POST",
            "/console/bays/bay-1/start",
            true,
            Some("answer=x"),
            bad,
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{bad:?}");
    }
    assert!(w.asked().is_empty(), "{:?}", ops(&w));

    // A wrong login: the form again with the message, no cookie.
    let w = Fake::scripted(|r, _| {
        matches!(r, Request::Login { .. }).then(|| {
            Ok(wire_error(
                ErrorCode::Unauthenticated,
                "the user name, password or code is wrong",
            ))
        })
    });
    let r = send(&app(&w), "POST", "/console/login", false, Some(form), &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("set-cookie").is_none());
    assert!(r.body.contains("The user name, password or code is wrong."));
    assert!(r.body.contains("value=\"alice\""), "the name is kept");
}

#[tokio::test]
async fn the_bays_page_shows_tiles_and_the_start_button_only_with_the_privilege() {
    let tile_of = |who: SessionView, running: bool| {
        Fake::scripted(move |r, _| match r {
            Request::WhoAmI {} => Some(Ok(Reply::Session {
                session: who.clone(),
            })),
            Request::Status {} if running => {
                let mut st =
                    status_view(vec![job_view("j1", JobState::Running, Some(250))], vec![]);
                st.bays[0].state = BayState::Running;
                st.bays[0].job = Some("j1".into());
                Some(Ok(Reply::Status { status: st }))
            }
            _ => None,
        })
    };
    let w = tile_of(operator(), false);
    let r = send(&app(&w), "GET", "/console/bays", true, None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(ops(&w), ["who_am_i", "status", "jobs"]);
    assert!(!w.asked()[0].0.polling, "opening a page is a user action");
    assert!(r.body.contains("WD-WX12A3456789"));
    assert!(r.body.contains("931.5 GiB (1000204886016 bytes)"));
    assert!(r.body.contains("data-state=\"waiting\""));
    assert!(r.body.contains("href=\"/console/bays/bay-1/start\""));
    assert!(r.body.contains("data-poll=\"/console/bays/grid\""));
    no_inline_code(&r.body);

    // The start notice names only a bay of this appliance.
    let r = send(
        &app(&w),
        "GET",
        "/console/bays?started=bay-1",
        true,
        None,
        &[],
    )
    .await;
    assert!(r.body.contains("The job in bay bay-1 was started."));
    let r = send(
        &app(&w),
        "GET",
        "/console/bays?started=Call%20us",
        true,
        None,
        &[],
    )
    .await;
    assert!(!r.body.contains("Call us"));

    // Without read_jobs the history is refused: the page is still shown,
    // without certificate links.
    let w = Fake::scripted(|r, _| match r {
        Request::WhoAmI {} => Some(Ok(Reply::Session {
            session: operator(),
        })),
        Request::Jobs { .. } => Some(Ok(wire_error(ErrorCode::Forbidden, "needs read_jobs"))),
        _ => None,
    });
    let r = send(&app(&w), "GET", "/console/bays", true, None, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("WD-WX12A3456789"));

    // Without start_wipe: no button (the worker would refuse anyway).
    let w = tile_of(session_view(), false);
    let r = send(&app(&w), "GET", "/console/bays", true, None, &[]).await;
    assert!(!r.body.contains("/start\""), "{}", r.body);

    // The partial: polling, only for the page's script; progress shown.
    let w = tile_of(operator(), true);
    let a = app(&w);
    let r = send(&a, "GET", "/console/bays/grid", true, None, &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = send(
        &a,
        "GET",
        "/console/bays/grid",
        true,
        None,
        &[("x-lethe-partial", "1")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.body.contains("<html"), "a partial, not a page");
    assert!(r
        .body
        .contains("<progress id=\"progress-0\" max=\"1000\" value=\"250\">"));
    assert!(r.body.contains("writing: 25 %"));
    assert!(r.body.contains("data-state=\"busy\""));
    assert!(
        w.asked().iter().all(|(c, _)| c.polling),
        "the partial polls"
    );
}

#[tokio::test]
async fn starting_asks_for_reauthentication_when_the_worker_wants_it() {
    // Starting wants a re-authentication until there was one.
    let reauthed = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&reauthed);
    let w = Fake::scripted(move |r, _| match r {
        Request::WhoAmI {} => Some(Ok(Reply::Session {
            session: operator(),
        })),
        Request::Reauth { .. } => {
            seen.store(true, Ordering::SeqCst);
            None
        }
        Request::StartBay { .. } if !seen.load(Ordering::SeqCst) => Some(Ok(wire_error(
            ErrorCode::ReauthRequired,
            "re-authenticate first",
        ))),
        _ => None,
    });
    let a = app(&w);
    let r = send(&a, "GET", "/console/bays/bay-1/start", true, None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    labelled(&r.body);
    no_inline_code(&r.body);
    assert!(r
        .body
        .contains("serial number (WD-WX12A3456789) or size in bytes (1000204886016)"));

    w.clear();
    let r = send(
        &a,
        "POST",
        "/console/bays/bay-1/start",
        true,
        Some("answer=WD-WX12A3456789"),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("needs your password and code again"));
    assert!(r
        .body
        .contains("type=\"hidden\" name=\"answer\" value=\"WD-WX12A3456789\""));
    assert!(r.body.contains("autocomplete=\"one-time-code\""));
    labelled(&r.body);

    w.clear();
    let r = send(
        &a,
        "POST",
        "/console/bays/bay-1/start",
        true,
        Some("answer=WD-WX12A3456789&password=pw&totp=654321"),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.header("location"), Some("/console/bays?started=bay-1"));
    assert_eq!(ops(&w), ["who_am_i", "reauth", "start_bay"]);
    assert!(reauthed.load(Ordering::SeqCst));
    match &w.asked()[2].1 {
        Request::StartBay { bay, answer } => {
            assert_eq!(
                (bay.as_str(), answer.as_str()),
                ("bay-1", "WD-WX12A3456789")
            );
        }
        other => panic!("{other:?}"),
    }

    // A refusal is shown with the worker's reason, the form kept.
    let w = Fake::scripted(|r, _| match r {
        Request::StartBay { .. } => Some(Ok(wire_error(
            ErrorCode::Refused,
            "the answer matches neither the serial nor the size",
        ))),
        _ => None,
    });
    let r = send(
        &app(&w),
        "POST",
        "/console/bays/bay-1/start",
        true,
        Some("answer=nope"),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r
        .body
        .contains("Refused: the answer matches neither the serial nor the size"));
    assert!(r.body.contains("id=\"answer\""));
}

#[tokio::test]
async fn certificates_are_searched_and_verified() {
    let w = Fake::new();
    let a = app(&w);
    let r = send(
        &a,
        "GET",
        "/console/certificates?serial=WD&asset_tag=&customer=acme&from=2026-01-01&to=",
        true,
        None,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    labelled(&r.body);
    no_inline_code(&r.body);
    match &w.asked()[1].1 {
        Request::Certificates { query } => {
            assert_eq!(query.serial.as_deref(), Some("WD"));
            assert_eq!(query.asset_tag, None, "an empty field is no condition");
            assert_eq!(query.customer.as_deref(), Some("acme"));
            assert_eq!(query.from.as_deref(), Some("2026-01-01"));
            assert_eq!(query.to, None);
        }
        other => panic!("{other:?}"),
    }
    assert!(r.body.contains("/pdf\""), "{}", r.body);

    w.clear();
    let r = send(
        &a,
        "POST",
        "/console/certificates/c-1/verify",
        true,
        Some("serial=WD&asset_tag=&customer=&from=&to="),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(ops(&w), ["who_am_i", "certificate_verify", "certificates"]);
    assert!(r.body.contains("id=\"verified\""), "{}", r.body);
}

#[tokio::test]
async fn console_pages_have_their_csp_assets_are_cached_and_the_api_keeps_its_own() {
    let w = Fake::new();
    let a = app(&w);
    let r = send(&a, "GET", "/console/login", false, None, &[]).await;
    assert_eq!(r.header("content-security-policy"), Some(CONSOLE_CSP));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("referrer-policy"), Some("same-origin"));
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    for asset in ASSETS {
        assert!(r.body.contains(&asset.href()), "{} not linked", asset.name);
        let got = send(&a, "GET", &asset.href(), false, None, &[]).await;
        assert_eq!(got.status, StatusCode::OK);
        assert_eq!(got.header("content-type"), Some(asset.content_type));
        assert_eq!(
            got.header("cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        assert_eq!(got.body, asset.body);
    }
    let r = send(
        &a,
        "GET",
        "/console/assets/console.0000000000000000.js",
        false,
        None,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // The API's answers keep the API's stricter policy.
    let r = send(&a, "GET", "/api/v1/session", true, None, &[]).await;
    assert!(r
        .header("content-security-policy")
        .unwrap()
        .starts_with("default-src 'none'; frame-ancestors"));
    assert!(console::markdown().contains("| `GET` | `/console/bays` | `read_drives` |"));
}

/// `docs/console.md`'s route table is [`console::markdown`]; regenerate it
/// with `LETHE_UPDATE_OPENAPI=1 cargo test -p lethe-front --test console`.
#[test]
fn the_route_table_of_console_md_is_generated() {
    const BEGIN: &str = "<!-- pages:begin (generated from daemon/front/src/console/mod.rs) -->\n";
    const END: &str = "<!-- pages:end -->";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/console.md");
    let text = std::fs::read_to_string(&path).expect("docs/console.md");
    let (head, rest) = text.split_once(BEGIN).expect("the pages:begin marker");
    let (_, tail) = rest.split_once(END).expect("the pages:end marker");
    let now = format!("{head}{BEGIN}{}{END}{tail}", console::markdown());
    if std::env::var_os("LETHE_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &now).unwrap();
        return;
    }
    assert!(
        text == now,
        "the route table of docs/console.md differs from the code; regenerate it with\n    \
         LETHE_UPDATE_OPENAPI=1 cargo test -p lethe-front --test console"
    );
}

#[tokio::test]
async fn the_backups_page_shows_failures_in_red() {
    let w = Fake::scripted(|r, _| match r {
        Request::Status {} => {
            let mut st = status_view(vec![], vec![]);
            let mut bad = st.backups[0].clone();
            bad.job = "imaging".into();
            bad.last_result = Some("fail".into());
            st.backups.push(bad);
            Some(Ok(Reply::Status { status: st }))
        }
        _ => None,
    });
    let r = send(&app(&w), "GET", "/console/backups", true, None, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(ops(&w), ["who_am_i", "status"]);
    no_inline_code(&r.body);
    assert!(r
        .body
        .contains("1 backup job(s) failed or missed their last run."));
    assert!(r
        .body
        .contains("<tr class=\"failed-row\">\n<th scope=\"row\">imaging</th>"));
    assert!(r.body.contains("<th scope=\"row\">records</th>"));
    assert_eq!(r.body.matches("failed-row").count(), 1);
    assert!(r
        .body
        .contains("<span class=\"badge badge-passed\">pass</span>"));
}
