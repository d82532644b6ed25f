//! The console's handlers and templates.

use super::view::{self, BackupRow, CertRow, Chrome, Drive, Tile};
use super::{ConsoleState, Page};
use crate::api::extract::{credential, same_origin, source_of};
use crate::api::session::{cleared_cookie, session_cookie};
use crate::api::ApiError;
use askama::Template;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use lethe_wire::{
    Caller, CertQuery, CertView, Credential, ErrorCode, Reply, Request, Secret, SessionView,
    StatusView, Via, WireError,
};
use serde::Deserialize;

/// Why a console request was not answered with its page.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No session, or it ended: back to the login page (with the banner
    /// when a cookie was presented, i.e. a session ended).
    #[error("not logged in")]
    LoggedOut { ended: bool },
    /// The worker (or the origin check) refused, or did not answer.
    #[error("{}", .0.error().message)]
    Refused(ApiError),
    /// A template did not render (a bug).
    #[error("the page could not be rendered: {0}")]
    Render(#[from] askama::Error),
}

impl From<ApiError> for ConsoleError {
    fn from(e: ApiError) -> Self {
        ConsoleError::Refused(e)
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage {
    chrome: Chrome,
    title: String,
    message: String,
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            ConsoleError::LoggedOut { ended } => {
                let to = if ended {
                    "/console/login?ended=1"
                } else {
                    "/console/login"
                };
                let mut r = Redirect::to(to).into_response();
                if ended {
                    r.headers_mut().insert(header::SET_COOKIE, cleared_cookie());
                }
                return r;
            }
            ConsoleError::Refused(e) => (
                e.status(),
                match e.error().code {
                    ErrorCode::NotFound => "Not found",
                    ErrorCode::Unavailable => "The appliance is not answering",
                    ErrorCode::RateLimited => "Too many attempts",
                    ErrorCode::BadRequest => "Not understood",
                    _ => "Refused",
                },
                e.error().message.clone(),
            ),
            ConsoleError::Render(e) => {
                tracing::error!("console template: {e}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal error",
                    "the page could not be rendered".to_string(),
                )
            }
        };
        let page = ErrorPage {
            chrome: Chrome::new("", None),
            title: title.into(),
            message,
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, title).into_response(),
        }
    }
}

type Result<T> = std::result::Result<T, ConsoleError>;

/// The caller of a console request: the session cookie as presented, the
/// client's address, the page's polling flag. A request that changes
/// something (POST) must come from this origin, logged in or not (a login
/// form posted from elsewhere is refused too).
pub struct Visitor(Caller);

impl<S: Send + Sync> FromRequestParts<S> for Visitor {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self> {
        let page = parts.extensions.get::<&'static Page>().copied();
        if parts.method != Method::GET && parts.method != Method::HEAD {
            same_origin(parts)?;
        }
        // The console uses the cookie only; a bearer token belongs to
        // scripts, which use the API.
        let credential = match credential(&parts.headers)? {
            Some(c @ Credential::Session { .. }) => Some(c),
            _ => None,
        };
        Ok(Visitor(Caller {
            via: Via::Api,
            uid: None,
            credential,
            source: source_of(parts),
            polling: page.is_some_and(|p| p.polling),
        }))
    }
}

impl Visitor {
    fn has_cookie(&self) -> bool {
        self.0.credential.is_some()
    }

    /// Ask the worker; an unauthenticated answer is the return to the
    /// login page.
    async fn ask(&self, st: &ConsoleState, request: Request) -> Result<Reply> {
        request
            .check()
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        match st.worker.call(self.0.clone(), request).await {
            Ok(Reply::Error { error }) if error.code == ErrorCode::Unauthenticated => {
                Err(ConsoleError::LoggedOut {
                    ended: self.has_cookie(),
                })
            }
            Ok(Reply::Error { error }) => Err(ApiError::from(error).into()),
            Ok(reply) => Ok(reply),
            Err(e) => {
                tracing::warn!("worker request failed: {e}");
                Err(ApiError::unavailable().into())
            }
        }
    }

    /// The session (who, role, privileges). Without a cookie, straight to
    /// the login page without asking.
    async fn session(&self, st: &ConsoleState) -> Result<SessionView> {
        if !self.has_cookie() {
            return Err(ConsoleError::LoggedOut { ended: false });
        }
        match self.ask(st, Request::WhoAmI {}).await? {
            Reply::Session { session } => Ok(session),
            other => Err(unexpected(&other)),
        }
    }

    async fn status(&self, st: &ConsoleState) -> Result<StatusView> {
        match self.ask(st, Request::Status {}).await? {
            Reply::Status { status } => Ok(status),
            other => Err(unexpected(&other)),
        }
    }
}

fn unexpected(r: &Reply) -> ConsoleError {
    crate::api::unexpected(r).into()
}

fn page(t: impl Template) -> Result<Response> {
    Ok(Html(t.render()?).into_response())
}

/// `GET /console`.
pub async fn home() -> Redirect {
    Redirect::to("/console/bays")
}

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    chrome: Chrome,
    ended: bool,
    error: Option<String>,
    username: String,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    ended: Option<String>,
}

/// `GET /console/login`.
pub async fn login_form(Query(q): Query<LoginQuery>) -> Result<Response> {
    page(LoginPage {
        chrome: Chrome::new("login", None),
        ended: q.ended.is_some(),
        error: None,
        username: String::new(),
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: Secret,
    totp: Secret,
}

/// `POST /console/login`: the API's login; the same cookie.
pub async fn login(
    State(st): State<ConsoleState>,
    Visitor(mut caller): Visitor,
    Form(f): Form<LoginForm>,
) -> Result<Response> {
    // A stale cookie must not stand in the way of logging in again.
    caller.credential = None;
    let r = Request::Login {
        username: f.username.clone(),
        password: f.password,
        totp: f.totp,
    };
    let error = match Visitor(caller).ask(&st, r).await {
        Ok(Reply::LoggedIn { cookie, .. }) => {
            let set = session_cookie(cookie.expose())?;
            let mut resp = Redirect::to("/console/bays").into_response();
            resp.headers_mut().insert(header::SET_COOKIE, set);
            return Ok(resp);
        }
        Ok(other) => return Err(unexpected(&other)),
        Err(ConsoleError::LoggedOut { .. }) => {
            "The user name, password or code is wrong.".to_string()
        }
        Err(ConsoleError::Refused(e)) => e.error().message.clone(),
        Err(e) => return Err(e),
    };
    let html = LoginPage {
        chrome: Chrome::new("login", None),
        ended: false,
        error: Some(error),
        username: f.username,
    }
    .render()?;
    Ok((StatusCode::UNAUTHORIZED, Html(html)).into_response())
}

/// `POST /console/logout`: the cookie is cleared whatever the worker
/// answered (the user asked to be logged out).
pub async fn logout(State(st): State<ConsoleState>, v: Visitor) -> Response {
    if v.has_cookie() {
        if let Err(e) = v.ask(&st, Request::Logout {}).await {
            tracing::debug!("console logout: {e}");
        }
    }
    let mut resp = Redirect::to("/console/login").into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, cleared_cookie());
    resp
}

/// `GET /console/session` (polling): 204 while the session lasts, 401
/// when it ended, for the pages' script.
pub async fn session_check(State(st): State<ConsoleState>, v: Visitor) -> Response {
    match v.session(&st).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(ConsoleError::LoggedOut { .. }) => StatusCode::UNAUTHORIZED.into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Template)]
#[template(path = "console/bays.html")]
struct BaysPage {
    chrome: Chrome,
    tiles: Vec<Tile>,
    notice: Option<String>,
}

#[derive(Template)]
#[template(path = "console/grid.html")]
struct GridPartial {
    tiles: Vec<Tile>,
}

async fn tiles(st: &ConsoleState, v: &Visitor, session: &SessionView) -> Result<Vec<Tile>> {
    let status = v.status(st).await?;
    // The certificates of ended jobs are in the history, not the status.
    // The history needs `read_jobs`: without it the tiles have no
    // certificate links, and the page is still shown.
    let history = match v.ask(st, Request::Jobs { limit: 50 }).await {
        Ok(Reply::Jobs { jobs }) => jobs,
        Ok(other) => return Err(unexpected(&other)),
        Err(ConsoleError::Refused(e)) if e.error().code == ErrorCode::Forbidden => Vec::new(),
        Err(e) => return Err(e),
    };
    Ok(view::tiles(
        st,
        session,
        &status.bays,
        &status.running,
        &history,
    ))
}

#[derive(Deserialize)]
pub struct BaysQuery {
    started: Option<String>,
}

/// `GET /console/bays`.
pub async fn bays(
    State(st): State<ConsoleState>,
    v: Visitor,
    Query(q): Query<BaysQuery>,
) -> Result<Response> {
    let session = v.session(&st).await?;
    let tiles = tiles(&st, &v, &session).await?;
    // Only a bay of this appliance: a crafted link cannot make the page
    // announce anything else.
    let notice = q
        .started
        .filter(|bay| tiles.iter().any(|t| &t.bay == bay))
        .map(|bay| format!("The job in bay {bay} was started."));
    page(BaysPage {
        chrome: Chrome::new("bays", Some(&session)),
        tiles,
        notice,
    })
}

/// `GET /console/bays/grid` (polling): the grid alone. Only the page's
/// script asks for it (it sends `X-Lethe-Partial`); a browser that opens
/// it directly is sent to the whole page.
pub async fn bays_grid(
    State(st): State<ConsoleState>,
    v: Visitor,
    headers: axum::http::HeaderMap,
) -> Result<Response> {
    if !headers.contains_key("x-lethe-partial") {
        return Ok(Redirect::to("/console/bays").into_response());
    }
    let session = v.session(&st).await?;
    let tiles = tiles(&st, &v, &session).await?;
    page(GridPartial { tiles })
}

#[derive(Template)]
#[template(path = "console/start.html")]
struct StartPage {
    chrome: Chrome,
    bay: String,
    bay_url: String,
    level: &'static str,
    drive: Drive,
    error: Option<String>,
    /// The worker wants password and code again: the form asks for them
    /// and keeps the typed answer.
    reauth: bool,
    answer: String,
}

async fn start_page(
    st: &ConsoleState,
    v: &Visitor,
    session: &SessionView,
    bay: &str,
    error: Option<String>,
    reauth: bool,
    answer: String,
) -> Result<StartPage> {
    let status = v.status(st).await?;
    let b = status
        .bays
        .iter()
        .find(|b| b.name == bay)
        .ok_or_else(|| ApiError::not_found(format!("no bay {bay}")))?;
    let drive = b.drive.as_ref().ok_or_else(|| {
        ApiError::new(ErrorCode::Conflict, format!("no drive waits in bay {bay}"))
    })?;
    Ok(StartPage {
        chrome: Chrome::new("bays", Some(session)),
        bay: b.name.clone(),
        bay_url: view::segment(&b.name),
        level: match b.level {
            lethe_wire::BayLevel::Clear => "wipe",
            lethe_wire::BayLevel::Purge => "purge",
        },
        drive: view::drive(drive),
        error,
        reauth,
        answer,
    })
}

/// `GET /console/bays/{bay}/start`.
pub async fn start_form(
    State(st): State<ConsoleState>,
    v: Visitor,
    Path(bay): Path<String>,
) -> Result<Response> {
    let session = v.session(&st).await?;
    page(start_page(&st, &v, &session, &bay, None, false, String::new()).await?)
}

#[derive(Deserialize)]
pub struct StartForm {
    answer: String,
    password: Option<Secret>,
    totp: Option<Secret>,
}

/// `POST /console/bays/{bay}/start`: re-authenticate first when the form
/// carries password and code, then start; a `reauth_required` answer
/// shows the form again with password and code, other refusals with the
/// worker's reason.
pub async fn start(
    State(st): State<ConsoleState>,
    v: Visitor,
    Path(bay): Path<String>,
    Form(f): Form<StartForm>,
) -> Result<Response> {
    let session = v.session(&st).await?;
    let again = |error: String, reauth: bool| {
        let (st, v, session, bay, answer) = (&st, &v, &session, &bay, f.answer.clone());
        async move {
            let p = start_page(st, v, session, bay, Some(error), reauth, answer).await?;
            Ok::<_, ConsoleError>((StatusCode::FORBIDDEN, Html(p.render()?)).into_response())
        }
    };
    if let (Some(password), Some(totp)) = (f.password.clone(), f.totp.clone()) {
        match v.ask(&st, Request::Reauth { password, totp }).await {
            Ok(Reply::Session { .. }) => {}
            Ok(other) => return Err(unexpected(&other)),
            // A wrong password or code is "unauthenticated" from the
            // worker, but the session goes on: ask again.
            Err(ConsoleError::LoggedOut { .. }) => {
                if v.session(&st).await.is_err() {
                    return Err(ConsoleError::LoggedOut { ended: true });
                }
                return again("The password or code is wrong.".into(), true).await;
            }
            Err(ConsoleError::Refused(e)) => return again(e.error().message.clone(), true).await,
            Err(e) => return Err(e),
        }
    }
    let r = Request::StartBay {
        bay: bay.clone(),
        answer: f.answer.trim().to_string(),
    };
    match v.ask(&st, r).await {
        Ok(Reply::Started { .. }) => Ok(Redirect::to(&format!(
            "/console/bays?started={}",
            view::segment(&bay)
        ))
        .into_response()),
        Ok(other) => Err(unexpected(&other)),
        Err(ConsoleError::Refused(e)) if e.error().code == ErrorCode::ReauthRequired => {
            again(
                "Starting a job needs your password and code again.".into(),
                true,
            )
            .await
        }
        Err(ConsoleError::Refused(e)) => again(refusal(e.error()), false).await,
        Err(e) => Err(e),
    }
}

/// A refusal as the operator reads it: the worker's reason, prefixed by
/// what kind of refusal it is.
fn refusal(e: &WireError) -> String {
    let what = match e.code {
        ErrorCode::Forbidden => "Not allowed",
        ErrorCode::Conflict => "Not now",
        ErrorCode::Refused => "Refused",
        ErrorCode::BadRequest => "Not accepted",
        _ => "Not started",
    };
    format!("{what}: {}", e.message)
}

#[derive(Template)]
#[template(path = "console/backups.html")]
struct BackupsPage {
    chrome: Chrome,
    rows: Vec<BackupRow>,
    failures: usize,
}

/// `GET /console/backups`.
pub async fn backups(State(st): State<ConsoleState>, v: Visitor) -> Result<Response> {
    let session = v.session(&st).await?;
    let rows: Vec<_> = v
        .status(&st)
        .await?
        .backups
        .iter()
        .map(view::backup_row)
        .collect();
    page(BackupsPage {
        chrome: Chrome::new("backups", Some(&session)),
        failures: rows.iter().filter(|r| r.failed).count(),
        rows,
    })
}

#[derive(Template)]
#[template(path = "console/certificates.html")]
struct CertificatesPage {
    chrome: Chrome,
    q: CertForm,
    searched: bool,
    rows: Vec<CertRow>,
    verified: Option<Verified>,
}

struct Verified {
    id: String,
    ok: bool,
    problem: String,
}

/// The search form, as typed (empty fields are no condition).
#[derive(Debug, Default, Clone, Deserialize)]
pub struct CertForm {
    #[serde(default)]
    serial: String,
    #[serde(default)]
    asset_tag: String,
    #[serde(default)]
    customer: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

impl CertForm {
    fn query(&self) -> CertQuery {
        let some = |s: &str| {
            let s = s.trim();
            (!s.is_empty()).then(|| s.to_string())
        };
        CertQuery {
            serial: some(&self.serial),
            asset_tag: some(&self.asset_tag),
            customer: some(&self.customer),
            from: some(&self.from),
            to: some(&self.to),
            limit: Some(100),
        }
    }
}

async fn search(st: &ConsoleState, v: &Visitor, q: &CertForm) -> Result<Vec<CertView>> {
    match v
        .ask(st, Request::Certificates { query: q.query() })
        .await?
    {
        Reply::Certificates { certificates } => Ok(certificates),
        other => Err(unexpected(&other)),
    }
}

/// `GET /console/certificates`.
pub async fn certificates(
    State(st): State<ConsoleState>,
    v: Visitor,
    Query(q): Query<CertForm>,
) -> Result<Response> {
    let session = v.session(&st).await?;
    let certs = search(&st, &v, &q).await?;
    page(CertificatesPage {
        chrome: Chrome::new("certificates", Some(&session)),
        searched: true,
        rows: certs.iter().map(view::cert_row).collect(),
        q,
        verified: None,
    })
}

/// `POST /console/certificates/{id}/verify`: the verification above the
/// search it came from (the form carries the search fields).
pub async fn verify(
    State(st): State<ConsoleState>,
    v: Visitor,
    Path(id): Path<String>,
    Form(q): Form<CertForm>,
) -> Result<Response> {
    let session = v.session(&st).await?;
    let verified = match v.ask(&st, Request::CertificateVerify { id }).await? {
        Reply::CertificateVerified {
            certificate,
            ok,
            problem,
        } => Verified {
            id: certificate.id,
            ok,
            problem: problem.unwrap_or_default(),
        },
        other => return Err(unexpected(&other)),
    };
    let certs = search(&st, &v, &q).await?;
    page(CertificatesPage {
        chrome: Chrome::new("certificates", Some(&session)),
        searched: true,
        rows: certs.iter().map(view::cert_row).collect(),
        q,
        verified: Some(verified),
    })
}
