//! E-mail delivery through an SMTP relay (`lettre`, rustls).
//!
//! - `starttls` (port 587 by default) and `tls` (implicit TLS, port 465)
//!   require TLS; `plain` (port 25) is accepted only for a loopback relay
//!   (a local MTA, or a test sink) and never with credentials.
//! - A `ca_file` makes the relay trusted through that CA only.
//! - A 2xx reply is delivered; a 4xx reply, a timeout or a connection
//!   failure is retried; a 5xx reply, or a relay that lacks what the
//!   configuration needs (a login mechanism), is a permanent refusal.

use crate::kind::{Alert, AlertId};
use crate::label::Label;
use crate::retry::{Detail, Outcome};
use crate::webhook::is_loopback_host;
use crate::{ChannelError, Secret};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// How the relay connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain connection upgraded with STARTTLS (required); default port 587.
    StartTls,
    /// TLS from the first byte; default port 465.
    Tls,
    /// No TLS: loopback relays only, no credentials; default port 25.
    Plain,
}

impl Security {
    /// The port used when none is configured.
    pub fn default_port(self) -> u16 {
        match self {
            Security::StartTls => 587,
            Security::Tls => 465,
            Security::Plain => 25,
        }
    }
}

/// What the relay needs.
#[derive(Debug)]
pub struct SmtpSettings {
    /// Relay host name or address.
    pub host: String,
    /// Port (default by security).
    pub port: Option<u16>,
    /// Connection protection.
    pub security: Security,
    /// Login, if the relay wants one.
    pub username: Option<String>,
    /// Password for `username`.
    pub password: Option<Secret>,
    /// Sender, e.g. `Lethe <lethe@example.org>`.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// PEM CA certificates to trust instead of the system's.
    pub ca_pem: Option<Vec<u8>>,
    /// Bound on one whole delivery attempt (connect, TLS, login, message).
    pub timeout: Duration,
}

/// A configured SMTP relay with its recipients.
pub struct Email {
    name: Label,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    timeout: Duration,
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("name", &self.name)
            .field("from", &self.from.to_string())
            .field("to", &self.to.len())
            .finish_non_exhaustive()
    }
}

/// Parse an address such as `it-ops@example.org` or `Ops <ops@example.org>`.
pub fn parse_mailbox(s: &str) -> Result<Mailbox, ChannelError> {
    s.parse::<Mailbox>()
        .map_err(|e| ChannelError::Address(format!("{s:?}: {e}")))
}

/// Check settings without building a transport (configuration check).
pub fn check(s: &SmtpSettings) -> Result<(), ChannelError> {
    if s.host.trim().is_empty() {
        return Err(ChannelError::Smtp("relay host is empty".into()));
    }
    if s.security == Security::Plain {
        if !is_loopback_host(&s.host) {
            return Err(ChannelError::PlainToRemote(s.host.clone()));
        }
        if s.username.is_some() || s.password.is_some() {
            return Err(ChannelError::Smtp(
                "credentials are never sent without TLS: use starttls or tls".into(),
            ));
        }
    }
    if s.username.is_some() != s.password.is_some() {
        return Err(ChannelError::Smtp(
            "give both username and password_file, or neither".into(),
        ));
    }
    parse_mailbox(&s.from)?;
    if s.to.is_empty() {
        return Err(ChannelError::Address("no recipient (to = [...])".into()));
    }
    for t in &s.to {
        parse_mailbox(t)?;
    }
    Ok(())
}

impl Email {
    /// A relay channel named `name`.
    pub fn new(name: Label, s: SmtpSettings) -> Result<Self, ChannelError> {
        check(&s)?;
        let port = s.port.unwrap_or(s.security.default_port());
        let tls_params = || -> Result<TlsParameters, ChannelError> {
            let mut b = TlsParameters::builder(s.host.clone());
            if let Some(pem) = &s.ca_pem {
                let cert =
                    Certificate::from_pem(pem).map_err(|e| ChannelError::Ca(e.to_string()))?;
                b = b
                    .certificate_store(CertificateStore::None)
                    .add_root_certificate(cert);
            }
            b.build_rustls()
                .map_err(|e| ChannelError::Tls(e.to_string()))
        };
        let tls = match s.security {
            Security::StartTls => Tls::Required(tls_params()?),
            Security::Tls => Tls::Wrapper(tls_params()?),
            Security::Plain => Tls::None,
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.clone())
            .port(port)
            .tls(tls)
            .timeout(Some(s.timeout));
        if let (Some(user), Some(pass)) = (&s.username, &s.password) {
            let pass = String::from_utf8(pass.expose().to_vec())
                .map_err(|_| ChannelError::Smtp("the password is not UTF-8".into()))?;
            b = b.credentials(Credentials::new(user.clone(), pass));
        }
        Ok(Email {
            name,
            transport: b.build(),
            from: parse_mailbox(&s.from)?,
            to: s
                .to
                .iter()
                .map(|t| parse_mailbox(t))
                .collect::<Result<_, _>>()?,
            timeout: s.timeout,
        })
    }

    /// The channel's name.
    pub fn name(&self) -> &Label {
        &self.name
    }

    /// Send the alert; classify the relay's answer.
    pub async fn send(&self, id: AlertId, alert: &Alert) -> Outcome {
        let mut m = Message::builder()
            .from(self.from.clone())
            .subject(alert.subject())
            .header(ContentType::TEXT_PLAIN);
        for t in &self.to {
            m = m.to(t.clone());
        }
        let msg = match m.body(alert.text(id)) {
            Ok(m) => m,
            Err(_) => return Outcome::Permanent(Detail::Message),
        };
        // lettre bounds only the connect by its timeout: bound the whole
        // exchange, so a relay that stops answering cannot hold the alerter.
        match tokio::time::timeout(self.timeout, self.transport.send(msg)).await {
            Ok(Ok(resp)) => Outcome::Delivered(Detail::Smtp(resp.code().into())),
            Ok(Err(e)) => classify(&e),
            Err(_elapsed) => Outcome::Retryable(Detail::Timeout),
        }
    }
}

fn classify(e: &lettre::transport::smtp::Error) -> Outcome {
    if let Some(code) = e.status() {
        let d = Detail::Smtp(code.into());
        return if e.is_permanent() {
            Outcome::Permanent(d)
        } else {
            Outcome::Retryable(d)
        };
    }
    if e.is_client() {
        // The relay lacks something required (e.g. no login mechanism we
        // accept): retrying cannot help until the configuration changes.
        return Outcome::Permanent(Detail::Protocol);
    }
    Outcome::Retryable(if e.is_timeout() {
        Detail::Timeout
    } else if e.is_tls() {
        Detail::Tls
    } else {
        Detail::Connect
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SmtpSettings {
        SmtpSettings {
            host: "smtp.example.org".into(),
            port: None,
            security: Security::StartTls,
            username: None,
            password: None,
            from: "Lethe <lethe@example.org>".into(),
            to: vec!["ops@example.org".into()],
            ca_pem: None,
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn checks() {
        assert!(check(&settings()).is_ok());
        let plain_remote = SmtpSettings {
            security: Security::Plain,
            ..settings()
        };
        assert!(matches!(
            check(&plain_remote),
            Err(ChannelError::PlainToRemote(_))
        ));
        let plain_local = SmtpSettings {
            security: Security::Plain,
            host: "127.0.0.1".into(),
            ..settings()
        };
        assert!(check(&plain_local).is_ok());
        let plain_with_login = SmtpSettings {
            security: Security::Plain,
            host: "127.0.0.1".into(),
            username: Some("u".into()),
            password: Some(Secret::new(b"p".to_vec())),
            ..settings()
        };
        assert!(check(&plain_with_login).is_err());
        let half_login = SmtpSettings {
            username: Some("u".into()),
            ..settings()
        };
        assert!(check(&half_login).is_err());
        let bad_to = SmtpSettings {
            to: vec!["not an address".into()],
            ..settings()
        };
        assert!(matches!(check(&bad_to), Err(ChannelError::Address(_))));
        let no_to = SmtpSettings {
            to: vec![],
            ..settings()
        };
        assert!(check(&no_to).is_err());
    }
}
