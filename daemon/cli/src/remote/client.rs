//! The HTTPS client of `lethe --server`: whom to trust, how to
//! authenticate, and the API's error shape turned into typed errors.

use super::pin::{Fingerprint, PinnedVerifier};
use super::session::{SavedSession, SessionStore};
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

/// The session cookie's name (`__Host-` prefixed: HTTPS only, no domain).
pub const SESSION_COOKIE: &str = "__Host-lethe_session";

/// How the server's certificate is trusted.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Exactly the certificate with this fingerprint (no CA, no name check).
    Pinned(Fingerprint),
    /// Certificates issued by these CAs (PEM), for the server's name.
    Ca(PathBuf),
    /// The system's trusted CAs, for the server's name.
    System,
}

/// How requests are authenticated.
pub enum Credential {
    /// An API token (`Authorization: Bearer`), for automation.
    Token(Zeroizing<String>),
    /// A session saved by `lethe login`.
    Session(SavedSession),
    /// Nothing (only login and public routes).
    None,
}

/// What went wrong talking to the appliance.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{server}: {detail}")]
    Transport { server: String, detail: String },
    #[error("{message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error(
        "not logged in to {server}: run `lethe --server {server} login`, or give an API token \
         with --token-file"
    )]
    NotLoggedIn { server: String },
    #[error(
        "your session on {server} has ended ({message}); run `lethe --server {server} login` again"
    )]
    SessionEnded { server: String, message: String },
    #[error("{server} answered {what} that this lethe cannot read: {detail}")]
    Unreadable {
        server: String,
        what: String,
        detail: String,
    },
}

impl RemoteError {
    /// The API's error code, when the appliance answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            RemoteError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

/// Every cause of a transport error on one line (reqwest hides the TLS
/// reason, such as a fingerprint mismatch, two levels down).
fn causes(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    parts.join(": ")
}

/// Parse `https://HOST[:PORT]` (no path, no plain HTTP).
pub fn parse_server(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text.trim())
        .map_err(|e| format!("--server {text:?}: {e} (expected https://HOST:PORT)"))?;
    if url.scheme() != "https" {
        return Err(format!(
            "--server {text:?}: the appliance speaks HTTPS only (https://HOST:PORT)"
        ));
    }
    if url.host_str().is_none() {
        return Err(format!("--server {text:?}: no host"));
    }
    if !(url.path() == "/" || url.path().is_empty()) || url.query().is_some() {
        return Err(format!(
            "--server {text:?}: give only the scheme, host and port (https://HOST:PORT)"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "--server {text:?}: no credentials in the address; use `lethe login` or --token-file"
        ));
    }
    Ok(url)
}

/// A connection to one appliance.
pub struct Remote {
    base: reqwest::Url,
    client: Client,
    credential: Credential,
    sessions: SessionStore,
}

impl Remote {
    pub fn new(
        base: reqwest::Url,
        trust: &Trust,
        credential: Credential,
        sessions: SessionStore,
    ) -> Result<Self, RemoteError> {
        let server = base.as_str().trim_end_matches('/').to_string();
        let fail = |detail: String| RemoteError::Transport {
            server: server.clone(),
            detail,
        };
        let builder = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .https_only(true)
            .user_agent(concat!("lethe/", env!("CARGO_PKG_VERSION")));
        let builder = match trust {
            Trust::Pinned(pin) => {
                let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
                let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| fail(format!("TLS setup: {e}")))?
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(PinnedVerifier::new(*pin, provider)))
                    .with_no_client_auth();
                tls.alpn_protocols = vec![b"http/1.1".to_vec()];
                builder.tls_backend_preconfigured(tls)
            }
            Trust::Ca(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| fail(format!("reading the CA file {}: {e}", path.display())))?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| fail(format!("the CA file {}: {e}", path.display())))?;
                builder.tls_certs_only(certs)
            }
            Trust::System => builder,
        };
        let client = builder
            .build()
            .map_err(|e| fail(format!("setting up HTTPS: {}", causes(&e))))?;
        Ok(Self {
            base,
            client,
            credential,
            sessions,
        })
    }

    /// `https://host:port`, as the user gave it.
    pub fn server(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server())
    }

    pub fn has_session(&self) -> bool {
        matches!(self.credential, Credential::Session(_))
    }

    pub fn has_credential(&self) -> bool {
        !matches!(self.credential, Credential::None)
    }

    pub fn sessions(&self) -> &SessionStore {
        &self.sessions
    }

    fn authed(&self, rq: RequestBuilder) -> RequestBuilder {
        match &self.credential {
            Credential::Token(t) => rq.bearer_auth(t.as_str()),
            Credential::Session(s) => {
                rq.header("cookie", format!("{SESSION_COOKIE}={}", s.cookie.as_str()))
            }
            Credential::None => rq,
        }
    }

    fn transport(&self, e: &reqwest::Error) -> RemoteError {
        RemoteError::Transport {
            server: self.server(),
            detail: causes(e),
        }
    }

    /// Send; a non-2xx answer becomes [`RemoteError`] (a 401 on a saved
    /// session: the session ended, and its file is removed).
    pub fn send(
        &self,
        rq: RequestBuilder,
        timeout: Option<Duration>,
    ) -> Result<Response, RemoteError> {
        let mut rq = self.authed(rq);
        if let Some(t) = timeout {
            rq = rq.timeout(t);
        }
        let r = rq.send().map_err(|e| self.transport(&e))?;
        if r.status().is_success() {
            return Ok(r);
        }
        let status = r.status();
        let text = r.text().unwrap_or_default();
        let (code, message) = match serde_json::from_str::<ErrorBody>(&text) {
            Ok(b) => (b.error.code, b.error.message),
            Err(_) => (
                String::new(),
                format!("{} answered {status}", self.server()),
            ),
        };
        if status == StatusCode::UNAUTHORIZED {
            match &self.credential {
                Credential::Session(_) => {
                    self.sessions.forget(&self.server());
                    return Err(RemoteError::SessionEnded {
                        server: self.server(),
                        message,
                    });
                }
                Credential::None => {
                    return Err(RemoteError::NotLoggedIn {
                        server: self.server(),
                    })
                }
                Credential::Token(_) => {}
            }
        }
        Err(RemoteError::Api {
            status: status.as_u16(),
            code,
            message,
        })
    }

    fn json<T: DeserializeOwned>(&self, r: Response, what: &str) -> Result<T, RemoteError> {
        r.json().map_err(|e| RemoteError::Unreadable {
            server: self.server(),
            what: what.into(),
            detail: causes(&e),
        })
    }

    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, RemoteError> {
        let r = self.send(
            self.client.get(self.url(path)),
            Some(Duration::from_secs(60)),
        )?;
        self.json(r, path)
    }

    pub fn get_bytes(&self, path: &str) -> Result<Vec<u8>, RemoteError> {
        let r = self.send(
            self.client.get(self.url(path)),
            Some(Duration::from_secs(120)),
        )?;
        r.bytes()
            .map(|b| b.to_vec())
            .map_err(|e| self.transport(&e))
    }

    pub fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T, RemoteError> {
        let r = self.send(
            self.client.post(self.url(path)).json(body),
            Some(Duration::from_secs(60)),
        )?;
        self.json(r, path)
    }

    /// A POST whose answer's body does not matter.
    pub fn post_unit(&self, path: &str, body: &serde_json::Value) -> Result<(), RemoteError> {
        self.send(
            self.client.post(self.url(path)).json(body),
            Some(Duration::from_secs(60)),
        )
        .map(drop)
    }

    /// A streaming GET (server-sent events): no overall timeout.
    pub fn stream(&self, path: &str) -> Result<Response, RemoteError> {
        self.send(
            self.client
                .get(self.url(path))
                .header("accept", "text/event-stream"),
            None,
        )
    }

    /// `POST /api/v1/login`: the session cookie the appliance set.
    pub fn login(
        &self,
        username: &str,
        password: &str,
        totp: &str,
    ) -> Result<Zeroizing<String>, RemoteError> {
        let body = serde_json::json!({"username": username, "password": password, "totp": totp});
        let r = self.send(
            self.client.post(self.url("/api/v1/login")).json(&body),
            Some(Duration::from_secs(60)),
        )?;
        r.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| {
                c.split(';')
                    .next()
                    .and_then(|kv| kv.strip_prefix(&format!("{SESSION_COOKIE}=")))
                    .map(|v| Zeroizing::new(v.to_string()))
            })
            .ok_or_else(|| RemoteError::Unreadable {
                server: self.server(),
                what: "a login".into(),
                detail: "no session cookie was set".into(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_addresses_without_path_or_credentials_are_servers() {
        assert_eq!(
            parse_server("https://appliance.example:8443")
                .unwrap()
                .as_str(),
            "https://appliance.example:8443/"
        );
        assert!(parse_server("https://10.0.0.5:8443/").is_ok());
        for (bad, why) in [
            ("http://appliance:8443", "HTTPS only"),
            ("appliance:8443", "HTTPS only"),
            ("https://appliance:8443/api/v1", "only the scheme"),
            ("https://bob:pw@appliance:8443", "no credentials"),
            ("not a url", "expected https://HOST:PORT"),
        ] {
            let e = parse_server(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn every_cause_of_a_nested_error_is_named_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] Inner);
        #[derive(Debug, thiserror::Error)]
        #[error("pinned fingerprint mismatch")]
        struct Inner;
        assert_eq!(causes(&Outer(Inner)), "outer: pinned fingerprint mismatch");
    }
}
