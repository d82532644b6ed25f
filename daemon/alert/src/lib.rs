//! Alerts by webhook and e-mail, with no patient data in them.
//!
//! - [`label`]: the only text an alert can hold ([`Label`], [`Hostname`],
//!   [`Timestamp`]): validated tokens with no room for a file name or a sentence.
//! - [`kind`]: what happened ([`AlertKind`]), rendered as a short text and a
//!   versioned JSON body (`docs/alerts.md`).
//! - [`webhook`], [`email`]: the two channels (HTTPS POST with an optional
//!   HMAC signature; SMTP relay with STARTTLS/TLS).
//! - [`retry`]: the pure retry schedule and the closed set of attempt outcomes.
//! - [`store`]: the [`AlertStore`] seam and its SQLite implementation, which
//!   records every alert, delivery and attempt.
//! - [`Alerter`]: raise an alert (recorded at once), deliver what is due
//!   ("now" passed in), and say when to wake up next.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use lethe_alert::*;
//! let store = SqliteAlertStore::open("/var/lib/lethe/alerts.db".as_ref())?;
//! let hook = Webhook::new(Label::new("ops")?, "https://hooks.example.org/lethe", None, None,
//!                         std::time::Duration::from_secs(10))?;
//! let alerter = Alerter::new(store, Hostname::new("lethe-01")?, vec![Channel::Webhook(hook)],
//!                            RetryPolicy::default())?;
//! let now = Timestamp::now();
//! alerter.raise(AlertKind::BackupFailed { job: Label::new("records")?, reason: FailureClass::Storage }, now)?;
//! alerter.deliver_due(now).await?;
//! # Ok(()) }
//! ```

pub mod email;
pub mod kind;
pub mod label;
pub mod retry;
pub mod store;
pub mod webhook;

pub use email::{Email, Security, SmtpSettings};
pub use kind::{Alert, AlertId, AlertKind, FailureClass, Grant, JobKind, Severity, Unlock};
pub use label::{Hostname, Label, LabelError, Timestamp};
pub use retry::{Detail, FailReason, Next, Outcome, RetryPolicy};
pub use store::{
    AlertStore, AlertStoreError, Attempt, Delivery, DeliveryState, PendingDelivery,
    SqliteAlertStore,
};
pub use webhook::Webhook;

use std::collections::BTreeSet;
use zeroize::Zeroizing;

/// A channel that cannot be set up as configured. Nothing was sent.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// A malformed or refused URL.
    #[error("webhook URL: {0}")]
    Url(String),
    /// Plain text to a host other than the appliance itself.
    #[error("plain (unencrypted) connection to {0} refused: only loopback hosts may use it")]
    PlainToRemote(String),
    /// The CA file could not be used.
    #[error("CA certificate: {0}")]
    Ca(String),
    /// The TLS client could not be built.
    #[error("TLS setup: {0}")]
    Tls(String),
    /// A malformed e-mail address.
    #[error("e-mail address {0}")]
    Address(String),
    /// Another SMTP setting problem.
    #[error("SMTP relay: {0}")]
    Smtp(String),
    /// Two channels with one name.
    #[error("two alert channels are named {0}")]
    DuplicateName(Label),
}

/// Secret bytes (webhook key, relay password): zeroed on drop, never printed.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wrap bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(Zeroizing::new(bytes))
    }

    /// Read a secret file; one trailing line break is dropped.
    pub fn from_file(path: &std::path::Path) -> std::io::Result<Self> {
        let mut b = Zeroizing::new(std::fs::read(path)?);
        if b.last() == Some(&b'\n') {
            b.pop();
            if b.last() == Some(&b'\r') {
                b.pop();
            }
        }
        Ok(Secret(b))
    }

    /// The bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

/// A delivery channel.
#[derive(Debug)]
pub enum Channel {
    /// HTTPS POST of the JSON body.
    Webhook(Webhook),
    /// E-mail through an SMTP relay.
    Email(Email),
}

impl Channel {
    /// The channel's configured name.
    pub fn name(&self) -> &Label {
        match self {
            Channel::Webhook(w) => w.name(),
            Channel::Email(e) => e.name(),
        }
    }

    async fn send(&self, id: AlertId, alert: &Alert, attempt: u32, now: Timestamp) -> Outcome {
        match self {
            Channel::Webhook(w) => w.send(id, alert, attempt, now).await,
            Channel::Email(e) => e.send(id, alert).await,
        }
    }
}

/// Raises alerts and delivers them on every channel, with retries.
pub struct Alerter<S> {
    store: S,
    host: Hostname,
    channels: Vec<Channel>,
    policy: RetryPolicy,
}

/// Deliveries handled per store query in [`Alerter::deliver_due`].
const BATCH: usize = 64;

impl<S: AlertStore> Alerter<S> {
    /// An alerter for appliance `host`. Channel names must be unique.
    pub fn new(
        store: S,
        host: Hostname,
        channels: Vec<Channel>,
        policy: RetryPolicy,
    ) -> Result<Self, ChannelError> {
        let mut seen = BTreeSet::new();
        for c in &channels {
            if !seen.insert(c.name().clone()) {
                return Err(ChannelError::DuplicateName(c.name().clone()));
            }
        }
        Ok(Alerter {
            store,
            host,
            channels,
            policy,
        })
    }

    /// The store (for history queries).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Record an alert raised at `now`, with one delivery per channel due at
    /// once. With no channel configured it is still recorded.
    pub fn raise(&self, kind: AlertKind, now: Timestamp) -> Result<AlertId, AlertStoreError> {
        let alert = Alert {
            kind,
            raised_at: now,
            host: self.host.clone(),
        };
        let names: Vec<Label> = self.channels.iter().map(|c| c.name().clone()).collect();
        self.store.add(&alert, &names, now)
    }

    /// Make every attempt due at `now`, one at a time (each bounded by its
    /// channel's timeout); record each with its next step. Returns the
    /// attempts made.
    pub async fn deliver_due(&self, now: Timestamp) -> Result<Vec<Attempt>, AlertStoreError> {
        let mut made = Vec::new();
        loop {
            let due = self.store.due(now, BATCH)?;
            if due.is_empty() {
                return Ok(made);
            }
            for p in due {
                let number = p.attempts + 1;
                let outcome = match self.channels.iter().find(|c| *c.name() == p.channel) {
                    Some(c) => c.send(p.id, &p.alert, number, now).await,
                    None => Outcome::Permanent(Detail::ChannelRemoved),
                };
                let next = self.policy.decide(number, &outcome, now);
                let attempt = Attempt {
                    id: p.id,
                    channel: p.channel,
                    number,
                    at: now,
                    outcome,
                };
                self.store.record(&attempt, next)?;
                made.push(attempt);
            }
        }
    }

    /// When the next attempt is due, if any delivery is pending.
    pub fn next_due(&self) -> Result<Option<Timestamp>, AlertStoreError> {
        self.store.next_due()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// safeguard: rule:secrets-in-worker
    #[test]
    fn secrets_are_redacted_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, b"hunter2\r\n").unwrap();
        let s = Secret::from_file(&p).unwrap();
        assert_eq!(s.expose(), b"hunter2");
        assert_eq!(format!("{s:?}"), "Secret(redacted)");
    }

    #[tokio::test]
    async fn removed_channel_fails_permanently_and_no_channel_still_records() {
        let host = Hostname::new("lethe").unwrap();
        let store = SqliteAlertStore::in_memory().unwrap();
        let now = Timestamp::from_unix(1000);
        // An alert raised while a channel "gone" existed...
        let alert = Alert {
            kind: AlertKind::Test,
            raised_at: now,
            host: host.clone(),
        };
        let id = store
            .add(&alert, &[Label::new("gone").unwrap()], now)
            .unwrap();
        // ...delivered after a restart without it.
        let a = Alerter::new(store, host, vec![], RetryPolicy::default()).unwrap();
        let made = a.deliver_due(now).await.unwrap();
        assert_eq!(made.len(), 1);
        assert_eq!(made[0].outcome, Outcome::Permanent(Detail::ChannelRemoved));
        assert_eq!(
            a.store().deliveries(id).unwrap()[0].state,
            DeliveryState::Failed {
                at: now,
                reason: FailReason::Refused
            }
        );
        let id2 = a.raise(AlertKind::Test, now).unwrap();
        assert!(a.store().deliveries(id2).unwrap().is_empty());
        assert_eq!(a.next_due().unwrap(), None);
    }

    #[test]
    fn duplicate_channel_names_refused() {
        let mk = || {
            Channel::Webhook(
                Webhook::new(
                    Label::new("ops").unwrap(),
                    "https://example.org/",
                    None,
                    None,
                    std::time::Duration::from_secs(1),
                )
                .unwrap(),
            )
        };
        let r = Alerter::new(
            SqliteAlertStore::in_memory().unwrap(),
            Hostname::new("lethe").unwrap(),
            vec![mk(), mk()],
            RetryPolicy::default(),
        );
        assert!(matches!(r, Err(ChannelError::DuplicateName(_))));
    }
}
