//! Delivery against real local receivers: a webhook receiver (HTTP and
//! HTTPS with a test CA) and an SMTP sink (plain loopback and STARTTLS with
//! a login). Time is passed in, so retries are driven without sleeping.

mod support;

use hmac::{Hmac, KeyInit, Mac};
use lethe_alert::*;
use sha2::Sha256;
use std::time::Duration;
use support::{free_port, Receiver, SinkOptions, SmtpSink, TestCa};

const T0: Timestamp = Timestamp::from_unix(1_767_225_600); // 2026-01-01T00:00:00Z

fn host() -> Hostname {
    Hostname::new("lethe-test").unwrap()
}

fn label(s: &str) -> Label {
    Label::new(s).unwrap()
}

fn hook(url: &str, secret: Option<&[u8]>, ca: Option<&str>) -> Channel {
    Channel::Webhook(
        Webhook::new(
            label("ops"),
            url,
            secret.map(|s| Secret::new(s.to_vec())),
            ca.map(str::as_bytes),
            Duration::from_secs(5),
        )
        .unwrap(),
    )
}

fn fast_policy(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        first: Duration::from_secs(30),
        max_delay: Duration::from_secs(120),
        attempts,
    }
}

fn alerter(channels: Vec<Channel>, attempts: u32) -> Alerter<SqliteAlertStore> {
    Alerter::new(
        SqliteAlertStore::in_memory().unwrap(),
        host(),
        channels,
        fast_policy(attempts),
    )
    .unwrap()
}

/// What a backup failure that touched a patient's file looks like inside the
/// appliance: the error text names the file. Only its class may leave.
const PATIENT_PATH: &str = "/srv/records/Doe_John_MRN-0042/scan.dcm";

fn backup_failed() -> AlertKind {
    let engine_error = format!("{PATIENT_PATH}: permission denied");
    // The alert API has no field that could take `engine_error`.
    assert!(Label::new(engine_error.as_str()).is_err());
    assert!(Label::new(PATIENT_PATH).is_err());
    AlertKind::BackupFailed {
        job: label("records"),
        reason: FailureClass::Source,
    }
}

fn assert_no_patient_data(text: &str) {
    for fragment in ["Doe", "John", "MRN", "scan.dcm", "/srv/"] {
        assert!(!text.contains(fragment), "{fragment:?} leaked into {text}");
    }
}

/// safeguard: 164.312(e)(1), 164.312(e)(2)(i)
#[tokio::test]
async fn webhook_delivers_signed_json() {
    let rx = Receiver::start(0, &[204], None).await;
    let a = alerter(vec![hook(&rx.url("http"), Some(b"s3cret"), None)], 5);
    let id = a.raise(backup_failed(), T0).unwrap();
    let made = a.deliver_due(T0).await.unwrap();
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].outcome, Outcome::Delivered(Detail::Http(204)));

    let got = rx.requests();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.headers["x-lethe-alert-id"], id.to_string().as_str());
    assert_eq!(r.headers["x-lethe-attempt"], "1");
    // The receiver's check: HMAC-SHA256(secret, "<t>.<body>").
    let sig = r.headers["x-lethe-signature"].to_str().unwrap();
    let (t, v1) = sig
        .strip_prefix("t=")
        .and_then(|s| s.split_once(",v1="))
        .unwrap();
    assert_eq!(t, T0.unix().to_string());
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(b"s3cret").unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&r.body);
    mac.verify_slice(&hex::decode(v1).unwrap()).unwrap();

    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["type"], "backup_failed");
    assert_eq!(body["job"], "records");
    assert_eq!(body["reason"], "source");
    assert_eq!(body["host"], "lethe-test");
    assert_eq!(body["raised_at"], "2026-01-01T00:00:00Z");
    assert_eq!(body["id"], id);
    assert_no_patient_data(std::str::from_utf8(&r.body).unwrap());

    let d = a.store().deliveries(id).unwrap();
    assert_eq!(d[0].state, DeliveryState::Delivered { at: T0 });
    assert_eq!(a.next_due().unwrap(), None);
}

#[tokio::test]
async fn webhook_retried_after_the_receiver_was_down() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let a = alerter(vec![hook(&url, None, None)], 5);
    let id = a
        .raise(
            AlertKind::BackupMissed {
                job: label("records"),
                missed: 2,
                last_run: Some(T0),
            },
            T0,
        )
        .unwrap();

    // Nobody listens: a retryable connection failure, next try in 30 s.
    let made = a.deliver_due(T0).await.unwrap();
    assert_eq!(made[0].outcome, Outcome::Retryable(Detail::Connect));
    let retry_at = T0 + Duration::from_secs(30);
    assert_eq!(a.next_due().unwrap(), Some(retry_at));
    // Not due yet: nothing is attempted.
    assert!(a
        .deliver_due(T0 + Duration::from_secs(29))
        .await
        .unwrap()
        .is_empty());

    // The receiver comes up, first busy (503), then accepting.
    let rx = Receiver::start(port, &[503, 200], None).await;
    let made = a.deliver_due(retry_at).await.unwrap();
    assert_eq!(made[0].outcome, Outcome::Retryable(Detail::Http(503)));
    let second_retry = retry_at + Duration::from_secs(60);
    assert_eq!(a.next_due().unwrap(), Some(second_retry));
    let made = a.deliver_due(second_retry).await.unwrap();
    assert_eq!(made[0].outcome, Outcome::Delivered(Detail::Http(200)));

    // Every attempt is on record, and the receiver saw the same alert id twice.
    let attempts = a.store().attempts(id).unwrap();
    let outcomes: Vec<_> = attempts.iter().map(|x| (x.number, x.outcome)).collect();
    assert_eq!(
        outcomes,
        vec![
            (1, Outcome::Retryable(Detail::Connect)),
            (2, Outcome::Retryable(Detail::Http(503))),
            (3, Outcome::Delivered(Detail::Http(200))),
        ]
    );
    let got = rx.requests();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].headers["x-lethe-attempt"], "3");
    assert_eq!(got[0].body, got[1].body);
}

#[tokio::test]
async fn webhook_permanent_failures_recorded() {
    // A refusal (410) ends the delivery at once.
    let rx = Receiver::start(0, &[410], None).await;
    let a = alerter(vec![hook(&rx.url("http"), None, None)], 5);
    let id = a.raise(AlertKind::Test, T0).unwrap();
    a.deliver_due(T0).await.unwrap();
    let d = &a.store().deliveries(id).unwrap()[0];
    assert_eq!(
        d.state,
        DeliveryState::Failed {
            at: T0,
            reason: FailReason::Refused
        }
    );
    assert_eq!(d.attempts, 1);

    // A receiver that stays broken: given up after the last allowed attempt.
    let rx = Receiver::start(0, &[500], None).await;
    let a = alerter(vec![hook(&rx.url("http"), None, None)], 3);
    let id = a.raise(AlertKind::Test, T0).unwrap();
    let mut now = T0;
    for _ in 0..3 {
        now = a.next_due().unwrap().expect("a pending delivery");
        assert_eq!(a.deliver_due(now).await.unwrap().len(), 1);
    }
    assert_eq!(a.next_due().unwrap(), None);
    let d = &a.store().deliveries(id).unwrap()[0];
    assert_eq!(d.attempts, 3);
    assert_eq!(
        d.state,
        DeliveryState::Failed {
            at: now,
            reason: FailReason::Exhausted
        }
    );
    assert_eq!(rx.requests().len(), 3);
}

/// safeguard: 164.312(e)(1), 164.312(e)(2)(ii)
#[tokio::test]
async fn https_webhook_trusts_only_its_ca() {
    let ca = TestCa::new();
    let rx = Receiver::start(0, &[200], Some(ca.acceptor())).await;
    let url = rx.url("https");

    // With the test CA: delivered over TLS.
    let a = alerter(vec![hook(&url, None, Some(&ca.ca_pem))], 5);
    a.raise(AlertKind::Test, T0).unwrap();
    let made = a.deliver_due(T0).await.unwrap();
    assert_eq!(made[0].outcome, Outcome::Delivered(Detail::Http(200)));
    assert_eq!(rx.requests().len(), 1);

    // With the system's roots the test CA is unknown: a TLS failure, retried.
    let a = alerter(vec![hook(&url, None, None)], 5);
    a.raise(AlertKind::Test, T0).unwrap();
    let made = a.deliver_due(T0).await.unwrap();
    assert_eq!(made[0].outcome, Outcome::Retryable(Detail::Tls));
    assert_eq!(rx.requests().len(), 1, "nothing was sent without trust");

    // Another CA's file: also refused.
    let other = TestCa::new();
    let a = alerter(vec![hook(&url, None, Some(&other.ca_pem))], 5);
    a.raise(AlertKind::Test, T0).unwrap();
    let made = a.deliver_due(T0).await.unwrap();
    assert_eq!(made[0].outcome, Outcome::Retryable(Detail::Tls));
}

fn email(
    port: u16,
    security: Security,
    to: &[&str],
    login: Option<(&str, &str)>,
    ca: Option<&str>,
) -> Channel {
    Channel::Email(
        Email::new(
            label("mail"),
            SmtpSettings {
                host: "127.0.0.1".into(),
                port: Some(port),
                security,
                username: login.map(|l| l.0.to_string()),
                password: login.map(|l| Secret::new(l.1.as_bytes().to_vec())),
                from: "Lethe <lethe@appliance.test>".into(),
                to: to.iter().map(|s| s.to_string()).collect(),
                ca_pem: ca.map(|c| c.as_bytes().to_vec()),
                timeout: Duration::from_secs(5),
            },
        )
        .unwrap(),
    )
}

#[tokio::test]
async fn email_through_a_loopback_relay_retries_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let a = alerter(
        vec![email(
            port,
            Security::Plain,
            &["it-ops@hospital.test"],
            None,
            None,
        )],
        5,
    );
    let id = a.raise(backup_failed(), T0).unwrap();

    // The relay is down: retried.
    let made = a.deliver_due(T0).await.unwrap();
    assert_eq!(made[0].outcome, Outcome::Retryable(Detail::Connect));

    let Some(sink) = SmtpSink::start(
        "email_through_a_loopback_relay_retries_and_refusals",
        port,
        &dir.path().join("mail"),
        SinkOptions::default(),
    ) else {
        return;
    };
    let now = a.next_due().unwrap().unwrap();
    let made = a.deliver_due(now).await.unwrap();
    assert_eq!(made[0].outcome, Outcome::Delivered(Detail::Smtp(250)));
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1);
    // Unfold header lines (RFC 5322 folding) before looking at them.
    let m = &msgs[0].replace("\r\n ", " ").replace("\n ", " ");
    assert!(m.contains("X-Rcpt-To: it-ops@hospital.test"));
    assert!(m.contains(
        "Subject: [lethe lethe-test] CRITICAL: backup job records failed: source unreadable"
    ));
    assert!(m.contains(&format!("Alert id:  {id}")));
    assert_no_patient_data(m);
    assert_eq!(a.store().attempts(id).unwrap().len(), 2);

    // A recipient the relay refuses (550): a permanent failure, recorded.
    let a = alerter(
        vec![email(
            port,
            Security::Plain,
            &["reject-me@hospital.test"],
            None,
            None,
        )],
        5,
    );
    let id = a.raise(AlertKind::Test, T0).unwrap();
    let made = a.deliver_due(T0).await.unwrap();
    assert_eq!(made[0].outcome, Outcome::Permanent(Detail::Smtp(550)));
    assert_eq!(
        a.store().deliveries(id).unwrap()[0].state,
        DeliveryState::Failed {
            at: T0,
            reason: FailReason::Refused
        }
    );
    assert_eq!(sink.messages().len(), 1);
}

/// safeguard: 164.312(e)(1), 164.312(e)(2)(ii)
#[tokio::test]
async fn email_starttls_with_login_and_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let (cert, key) = ca.write_server_files(dir.path());
    let port = free_port();
    let Some(sink) = SmtpSink::start(
        "email_starttls_with_login_and_a_private_ca",
        port,
        &dir.path().join("mail"),
        SinkOptions {
            tls: Some((&cert, &key)),
            login: Some(("lethe", "relay-pass")),
            implicit_tls: false,
        },
    ) else {
        return;
    };
    let to = ["it-ops@hospital.test"];

    let a = alerter(
        vec![email(
            port,
            Security::StartTls,
            &to,
            Some(("lethe", "relay-pass")),
            Some(&ca.ca_pem),
        )],
        5,
    );
    a.raise(AlertKind::Test, T0).unwrap();
    let made = a.deliver_due(T0).await.unwrap();
    assert_eq!(made[0].outcome, Outcome::Delivered(Detail::Smtp(250)));
    assert_eq!(sink.messages().len(), 1);

    // A wrong password: the relay refuses the login (535, permanent).
    let a = alerter(
        vec![email(
            port,
            Security::StartTls,
            &to,
            Some(("lethe", "wrong")),
            Some(&ca.ca_pem),
        )],
        5,
    );
    a.raise(AlertKind::Test, T0).unwrap();
    let made = a.deliver_due(T0).await.unwrap();
    assert_eq!(made[0].outcome, Outcome::Permanent(Detail::Smtp(535)));

    // Without the private CA, the relay's certificate is not trusted.
    let a = alerter(
        vec![email(
            port,
            Security::StartTls,
            &to,
            Some(("lethe", "relay-pass")),
            None,
        )],
        5,
    );
    a.raise(AlertKind::Test, T0).unwrap();
    let made = a.deliver_due(T0).await.unwrap();
    assert!(
        matches!(
            made[0].outcome,
            Outcome::Retryable(Detail::Tls | Detail::Connect)
        ),
        "{:?}",
        made[0].outcome
    );
    assert_eq!(sink.messages().len(), 1, "nothing was sent without trust");
}

/// safeguard: 164.312(e)(1), 164.312(e)(2)(ii)
#[tokio::test]
async fn email_over_implicit_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let (cert, key) = ca.write_server_files(dir.path());
    let port = free_port();
    let Some(sink) = SmtpSink::start(
        "email_over_implicit_tls",
        port,
        &dir.path().join("mail"),
        SinkOptions {
            tls: Some((&cert, &key)),
            login: Some(("lethe", "relay-pass")),
            implicit_tls: true,
        },
    ) else {
        return;
    };
    let a = alerter(
        vec![email(
            port,
            Security::Tls,
            &["it-ops@hospital.test"],
            Some(("lethe", "relay-pass")),
            Some(&ca.ca_pem),
        )],
        5,
    );
    a.raise(AlertKind::Test, T0).unwrap();
    let made = a.deliver_due(T0).await.unwrap();
    assert_eq!(made[0].outcome, Outcome::Delivered(Detail::Smtp(250)));
    assert_eq!(sink.messages().len(), 1);

    // A relay that offers no login while the configuration has one: refused
    // at once (retrying cannot help), nothing sent.
    let port = free_port();
    let Some(no_auth) = SmtpSink::start(
        "email_over_implicit_tls",
        port,
        &dir.path().join("mail2"),
        SinkOptions {
            tls: Some((&cert, &key)),
            login: None,
            implicit_tls: true,
        },
    ) else {
        return;
    };
    let a = alerter(
        vec![email(
            port,
            Security::Tls,
            &["it-ops@hospital.test"],
            Some(("lethe", "relay-pass")),
            Some(&ca.ca_pem),
        )],
        5,
    );
    a.raise(AlertKind::Test, T0).unwrap();
    let made = a.deliver_due(T0).await.unwrap();
    assert_eq!(made[0].outcome, Outcome::Permanent(Detail::Protocol));
    assert!(no_auth.messages().is_empty());
}

#[tokio::test]
async fn one_alert_on_two_channels_is_tracked_per_channel() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(0, &[200], None).await;
    let port = free_port();
    let Some(sink) = SmtpSink::start(
        "one_alert_on_two_channels_is_tracked_per_channel",
        port,
        &dir.path().join("mail"),
        SinkOptions::default(),
    ) else {
        return;
    };
    let db = dir.path().join("alerts.db");
    let channels = vec![
        hook(&rx.url("http"), None, None),
        email(port, Security::Plain, &["reject@hospital.test"], None, None),
    ];
    let a = Alerter::new(
        SqliteAlertStore::open(&db).unwrap(),
        host(),
        channels,
        fast_policy(5),
    )
    .unwrap();
    let id = a
        .raise(
            AlertKind::AccountLocked {
                user: label("alice"),
                failures: 5,
                until: Some(T0 + Duration::from_secs(900)),
            },
            T0,
        )
        .unwrap();
    a.deliver_due(T0).await.unwrap();
    drop(a);

    // The record is in the database file, per channel.
    let store = SqliteAlertStore::open(&db).unwrap();
    let d = store.deliveries(id).unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].channel.as_str(), "mail");
    assert!(matches!(d[0].state, DeliveryState::Failed { .. }));
    assert_eq!(d[1].channel.as_str(), "ops");
    assert_eq!(d[1].state, DeliveryState::Delivered { at: T0 });
    assert_eq!(rx.requests().len(), 1);
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn receivers_that_stop_answering_time_out_and_are_retried() {
    // Accepts connections and never says a word (no HTTP answer, no SMTP banner).
    let mute = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = mute.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = mute.accept().await {
            conns.push(c);
        }
    });
    let quick = Duration::from_secs(1);
    let webhook = Channel::Webhook(
        Webhook::new(
            label("ops"),
            &format!("http://{addr}/hook"),
            None,
            None,
            quick,
        )
        .unwrap(),
    );
    let mail = Channel::Email(
        Email::new(
            label("mail"),
            SmtpSettings {
                host: "127.0.0.1".into(),
                port: Some(addr.port()),
                security: Security::Plain,
                username: None,
                password: None,
                from: "lethe@appliance.test".into(),
                to: vec!["it-ops@hospital.test".into()],
                ca_pem: None,
                timeout: quick,
            },
        )
        .unwrap(),
    );
    let a = alerter(vec![webhook, mail], 5);
    a.raise(AlertKind::Test, T0).unwrap();
    let made = a.deliver_due(T0).await.unwrap();
    assert_eq!(made.len(), 2);
    for m in &made {
        assert_eq!(
            m.outcome,
            Outcome::Retryable(Detail::Timeout),
            "{}",
            m.channel
        );
    }
    assert_eq!(a.next_due().unwrap(), Some(T0 + Duration::from_secs(30)));
    held.abort();
}
