//! Webhook delivery: the alert's JSON body POSTed over HTTPS (rustls).
//!
//! - Plain `http://` is accepted only for a loopback host (a receiver on the
//!   appliance itself, or a test); credentials in the URL are refused (URLs
//!   end up in logs); redirects are not followed.
//! - With a shared secret, `X-Lethe-Signature: t=<unix time>,v1=<hex>` carries
//!   HMAC-SHA256(secret, "<t>.<body>") so the receiver can check origin and
//!   freshness (scheme in `docs/alerts.md`, with a test vector).
//! - A `ca_file` makes the webhook trust only that CA (a hospital's private CA).
//! - 2xx is delivered; 408, 425, 429 and 5xx are retried; any other answer is
//!   a permanent refusal.

use crate::kind::{Alert, AlertId};
use crate::label::{Label, Timestamp};
use crate::retry::{Detail, Outcome};
use crate::{ChannelError, Secret};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::Url;
use sha2::Sha256;
use std::net::IpAddr;
use std::time::Duration;

/// Header carrying the HMAC signature.
pub const SIGNATURE_HEADER: &str = "x-lethe-signature";
/// Header carrying the alert id (receivers drop duplicates by it).
pub const ALERT_ID_HEADER: &str = "x-lethe-alert-id";
/// Header carrying the attempt number.
pub const ATTEMPT_HEADER: &str = "x-lethe-attempt";

/// A configured webhook.
pub struct Webhook {
    name: Label,
    url: Url,
    secret: Option<Secret>,
    client: reqwest::Client,
}

/// Shows the scheme and host only: webhook URLs often carry a token in
/// their path, and a `Debug` print may end up in a log.
impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("scheme", &self.url.scheme())
            .field("host", &self.url.host_str())
            .field("signed", &self.secret.is_some())
            .finish_non_exhaustive()
    }
}

/// True for `localhost` and loopback addresses.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<IpAddr>()
            .map(|a| a.is_loopback())
            .unwrap_or(false)
}

/// Check a webhook URL: `https://`, or `http://` to a loopback host; no
/// user or password in it.
pub fn check_url(url: &str) -> Result<Url, ChannelError> {
    let u = Url::parse(url).map_err(|e| ChannelError::Url(e.to_string()))?;
    let host = u
        .host_str()
        .ok_or_else(|| ChannelError::Url("no host".into()))?;
    if !u.username().is_empty() || u.password().is_some() {
        return Err(ChannelError::Url(
            "credentials in the URL are refused (they would be logged): use secret_file".into(),
        ));
    }
    match u.scheme() {
        "https" => Ok(u),
        "http" if is_loopback_host(host) => Ok(u),
        "http" => Err(ChannelError::PlainToRemote(host.to_string())),
        other => Err(ChannelError::Url(format!(
            "scheme {other:?}: expected https"
        ))),
    }
}

/// `t=<now>,v1=<hex HMAC-SHA256(secret, "<now>.<body>")>`.
pub fn signature(secret: &[u8], now: Timestamp, body: &[u8]) -> String {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(now.unix().to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={},v1={}",
        now.unix(),
        hex::encode(mac.finalize().into_bytes())
    )
}

impl Webhook {
    /// A webhook named `name` posting to `url`. `ca_pem`: trust only these
    /// CA certificates instead of the system's.
    pub fn new(
        name: Label,
        url: &str,
        secret: Option<Secret>,
        ca_pem: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Self, ChannelError> {
        let url = check_url(url)?;
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(concat!("lethe/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ChannelError::Ca(e.to_string()))?;
            if certs.is_empty() {
                return Err(ChannelError::Ca("no certificate in the file".into()));
            }
            b = b.tls_certs_only(certs);
        }
        let client = b.build().map_err(|e| ChannelError::Tls(e.to_string()))?;
        Ok(Webhook {
            name,
            url,
            secret,
            client,
        })
    }

    /// The channel's name.
    pub fn name(&self) -> &Label {
        &self.name
    }

    /// POST the alert; classify the answer.
    pub async fn send(&self, id: AlertId, alert: &Alert, attempt: u32, now: Timestamp) -> Outcome {
        let body = alert.json(id);
        let mut req = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(ALERT_ID_HEADER, id.to_string())
            .header(ATTEMPT_HEADER, attempt.to_string());
        if let Some(s) = &self.secret {
            req = req.header(SIGNATURE_HEADER, signature(s.expose(), now, &body));
        }
        match req.body(body).send().await {
            Ok(resp) => classify_status(resp.status().as_u16()),
            Err(e) => Outcome::Retryable(classify_error(&e)),
        }
    }
}

impl Webhook {
    /// POST another body than an alert over this webhook's client and URL
    /// (the daemon pushes signed audit checkpoints this way), signed like
    /// an alert when the webhook has a secret; classify the answer.
    pub async fn post(&self, content_type: &str, body: Vec<u8>, now: Timestamp) -> Outcome {
        let mut req = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, content_type);
        if let Some(s) = &self.secret {
            req = req.header(SIGNATURE_HEADER, signature(s.expose(), now, &body));
        }
        match req.body(body).send().await {
            Ok(resp) => classify_status(resp.status().as_u16()),
            Err(e) => Outcome::Retryable(classify_error(&e)),
        }
    }
}

/// 2xx delivered; 408, 425, 429, 5xx retried; anything else refused.
pub fn classify_status(code: u16) -> Outcome {
    let d = Detail::Http(code);
    match code {
        200..=299 => Outcome::Delivered(d),
        408 | 425 | 429 | 500..=599 => Outcome::Retryable(d),
        _ => Outcome::Permanent(d),
    }
}

fn classify_error(e: &reqwest::Error) -> Detail {
    if e.is_timeout() {
        Detail::Timeout
    } else if std::error::Error::source(e).is_some_and(is_tls_error) {
        // TLS failures surface as connect errors: tell them apart.
        Detail::Tls
    } else if e.is_connect() {
        Detail::Connect
    } else {
        Detail::Transport
    }
}

/// Whether a rustls error is somewhere in the chain. `io::Error` hides the
/// error it wraps from `source()`, so look inside it too.
fn is_tls_error(e: &(dyn std::error::Error + 'static)) -> bool {
    if e.downcast_ref::<rustls::Error>().is_some() {
        return true;
    }
    if let Some(inner) = e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        if is_tls_error(inner) {
            return true;
        }
    }
    e.source().is_some_and(is_tls_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(check_url("https://hooks.example.org/x?token=1").is_ok());
        assert!(check_url("http://127.0.0.1:9999/hook").is_ok());
        assert!(check_url("http://[::1]:9999/hook").is_ok());
        assert!(check_url("http://localhost/hook").is_ok());
        assert!(matches!(
            check_url("http://hooks.example.org/x"),
            Err(ChannelError::PlainToRemote(_))
        ));
        assert!(check_url("https://user:pw@hooks.example.org/").is_err());
        assert!(check_url("ftp://example.org/").is_err());
        assert!(check_url("not a url").is_err());
    }

    /// safeguard: rule:secrets-in-worker
    #[test]
    fn debug_hides_the_path() {
        let w = Webhook::new(
            Label::new("chat").unwrap(),
            "https://hooks.example.org/services/T000/B000/XXXXSECRET",
            Some(crate::Secret::new(b"k".to_vec())),
            None,
            Duration::from_secs(1),
        )
        .unwrap();
        let d = format!("{w:?}");
        assert!(
            d.contains("hooks.example.org") && !d.contains("SECRET"),
            "{d}"
        );
    }

    #[test]
    fn statuses() {
        assert_eq!(classify_status(204), Outcome::Delivered(Detail::Http(204)));
        assert_eq!(classify_status(503), Outcome::Retryable(Detail::Http(503)));
        assert_eq!(classify_status(429), Outcome::Retryable(Detail::Http(429)));
        assert_eq!(classify_status(410), Outcome::Permanent(Detail::Http(410)));
        assert_eq!(classify_status(302), Outcome::Permanent(Detail::Http(302)));
    }
}
