//! A fake worker for the HTTPS API's tests: it remembers what it was asked
//! and answers every request with a valid reply of the right kind, unless
//! a test scripts another answer.

#![allow(dead_code)]

use lethe_front::client::{BoxFuture, ClientError, Worker};
use lethe_wire::*;
use std::sync::{Arc, Mutex};

/// A scripted answer: given the request and how many requests came
/// before it.
pub type Script = Box<dyn Fn(&Request, usize) -> Option<Result<Reply, ClientError>> + Send + Sync>;

/// The fake worker.
#[derive(Default)]
pub struct Fake {
    pub asked: Mutex<Vec<(Caller, Request)>>,
    pub script: Mutex<Option<Script>>,
    pub tls: Mutex<Option<TlsMaterial>>,
}

impl Fake {
    pub fn new() -> Arc<Fake> {
        Arc::new(Fake::default())
    }

    /// Answer with `f` first (falling back to the canned reply on `None`).
    pub fn scripted(
        f: impl Fn(&Request, usize) -> Option<Result<Reply, ClientError>> + Send + Sync + 'static,
    ) -> Arc<Fake> {
        let fake = Fake::default();
        *fake.script.lock().unwrap() = Some(Box::new(f));
        Arc::new(fake)
    }

    pub fn asked(&self) -> Vec<(Caller, Request)> {
        self.asked.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.asked.lock().unwrap().clear();
    }
}

impl Worker for Fake {
    fn call(&self, caller: Caller, request: Request) -> BoxFuture<'_, Result<Reply, ClientError>> {
        let n = {
            let mut a = self.asked.lock().unwrap();
            a.push((caller, request.clone()));
            a.len() - 1
        };
        let scripted = self
            .script
            .lock()
            .unwrap()
            .as_ref()
            .and_then(|f| f(&request, n));
        let tls = self.tls.lock().unwrap().clone();
        Box::pin(async move {
            match scripted {
                Some(r) => r,
                None => Ok(canned(&request, tls)),
            }
        })
    }
}

/// The `op` of a request, as the wire names it.
pub fn op(r: &Request) -> String {
    serde_json::to_value(r).unwrap()["op"]
        .as_str()
        .unwrap()
        .to_string()
}

pub fn wire_error(code: ErrorCode, m: &str) -> Reply {
    Reply::Error {
        error: WireError::new(code, m),
    }
}

pub fn session_view() -> SessionView {
    SessionView {
        id: "6f1c0d7e-0000-4000-8000-000000000001".into(),
        user_id: "9a1c0d7e-0000-4000-8000-000000000002".into(),
        user: "alice".into(),
        role: RoleName::Operator,
        privileges: vec!["own_session".into(), "read_drives".into()],
        expires_at: "2026-11-23T22:05:01Z".into(),
        idle_timeout_secs: 600,
        reauth_until: None,
        elevated_until: None,
        must_change_password: false,
        recovery_codes_left: None,
    }
}

pub fn job_view(id: &str, state: JobState, done: Option<u64>) -> JobView {
    JobView {
        id: id.into(),
        kind: "wipe".into(),
        state,
        device: "/dev/sdb".into(),
        bay: Some("bay-1".into()),
        created_at: "2026-11-23T14:05:01Z".into(),
        updated_at: "2026-11-23T14:06:01Z".into(),
        certificate: (state == JobState::Passed).then(|| format!("{id}.json")),
        progress: done.map(|d| ProgressView {
            phase: "writing".into(),
            done: d,
            total: 1000,
        }),
    }
}

pub fn status_view(running: Vec<JobView>, interrupted: Vec<JobView>) -> StatusView {
    StatusView {
        daemon: DaemonView {
            version: "0.1.0".into(),
            started_at: "2026-11-23T14:00:00Z".into(),
            pid: 812,
            front_restarts: 0,
            audit_entries: 42,
            https_listen: Some("0.0.0.0:8443".into()),
            tls_fingerprint: None,
        },
        bays: vec![BayView {
            name: "bay-1".into(),
            led: Some(1),
            policy: BayPolicy::Ask,
            level: BayLevel::Clear,
            state: BayState::Waiting,
            drive: Some(DriveView {
                path: "/dev/sdb".into(),
                transport: "sata".into(),
                model: Some("WDC WD10EZEX".into()),
                serial: Some("WD-WX12A3456789".into()),
                size_bytes: 1_000_204_886_016,
            }),
            job: None,
            message: None,
        }],
        running,
        interrupted,
        backups: vec![BackupView {
            job: "records".into(),
            every_secs: 3600,
            last_backup: Some("2026-11-23T13:00:00Z".into()),
            last_result: Some("pass".into()),
            last_success: Some("2026-11-23T13:00:00Z".into()),
            next_due: "2026-11-23T14:00:00Z".into(),
            last_drill: None,
            last_drill_result: None,
            max_age_secs: Some(86400),
        }],
    }
}

pub fn user_view(name: &str) -> UserView {
    UserView {
        id: "9a1c0d7e-0000-4000-8000-000000000003".into(),
        name: name.into(),
        role: RoleName::Auditor,
        emergency: false,
        disabled: false,
        created_at: "2026-11-23T14:05:01Z".into(),
        locked_until: None,
        must_change_password: true,
        recovery_codes_left: 10,
        sessions: 0,
    }
}

pub fn enrolment(name: &str) -> Enrolment {
    Enrolment {
        user: user_view(name),
        otpauth_uri: Secret("otpauth://totp/Lethe:bob?secret=JBSWY3DPEHPK3PXP&issuer=Lethe".into()),
        qr_svg: Secret("<svg/>".into()),
        qr_terminal: Secret("▀▄".into()),
        one_time_password: Some(Secret("abcde-fghij-klmno-pqrst".into())),
        recovery_codes: vec![Secret("0123-4567-89ab-cdef".into())],
    }
}

pub fn token_view() -> TokenView {
    TokenView {
        id: "0123456789abcdef0123456789abcdef".into(),
        owner: "alice".into(),
        label: "monitoring".into(),
        role: RoleName::Auditor,
        created_at: "2026-11-23T14:05:01Z".into(),
        expires_at: "2027-02-21T14:05:01Z".into(),
        last_used_at: None,
        revoked: false,
    }
}

pub fn cert_view(id: &str) -> CertView {
    CertView {
        id: id.into(),
        issued_at: "2026-11-23T15:00:00Z".into(),
        result: Some("pass".into()),
        model: "WDC WD10EZEX".into(),
        serial: "WD-WX12A3456789".into(),
        asset_tag: Some("A-1001".into()),
        customer: None,
        key_id: "lethe-ed25519-1a2b3c4d".into(),
        problem: None,
    }
}

pub fn audit_view(seq: u64) -> AuditView {
    AuditView {
        seq,
        at: "2026-11-23T15:00:00Z".into(),
        actor: "alice".into(),
        source: "api".into(),
        action: "session.login".into(),
        outcome: "success".into(),
        entity: "session".into(),
        record_id: "6f1c0d7e".into(),
        detail: serde_json::json!({ "n": seq }),
    }
}

pub fn bg_view(id: &str, state: &str) -> BreakGlassView {
    BreakGlassView {
        id: id.into(),
        requester: "carol".into(),
        reason: "the admin is on leave".into(),
        state: state.into(),
        requested_at: "2026-11-23T15:00:00Z".into(),
        auto_grant_at: "2026-11-23T15:30:00Z".into(),
        until: None,
    }
}

/// The PDF bytes the fake serves, and their base64.
pub const PDF: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n";
pub const PDF_B64: &str = "JVBERi0xLjcKJeLjz9MK";
/// The JSON certificate the fake serves, and its base64.
pub const CERT_JSON: &str = r#"{"id":"c1","sig":"x"}"#;
pub const CERT_JSON_B64: &str = "eyJpZCI6ImMxIiwic2lnIjoieCJ9";

/// A valid reply of the right kind to every request.
pub fn canned(r: &Request, tls: Option<TlsMaterial>) -> Reply {
    match r {
        Request::Health {} => Reply::Health {
            health: HealthView {
                version: "0.1.0".into(),
                uptime_secs: 5,
                jobs_running: 0,
            },
        },
        Request::Status {} => Reply::Status {
            status: status_view(
                vec![job_view("wipe-1", JobState::Running, Some(10))],
                vec![job_view("wipe-0", JobState::Interrupted, None)],
            ),
        },
        Request::Jobs { limit } => Reply::Jobs {
            jobs: (0..(*limit).min(2))
                .map(|i| job_view(&format!("old-{i}"), JobState::Passed, None))
                .collect(),
        },
        Request::Metrics {} => wire_error(ErrorCode::BadRequest, "not over HTTPS"),
        Request::BackupSnapshots { .. } => Reply::BackupSnapshots {
            snapshots: lethe_wire::SnapshotsView {
                snapshots: vec![],
                damaged: 0,
                tampering: 0,
            },
        },
        Request::BackupDrill { .. } => Reply::Started {
            job: "drill-1".into(),
        },
        Request::BackupHistory { .. } => Reply::BackupHistory {
            runs: vec![lethe_wire::BackupRunView {
                kind: "backup".into(),
                started: "2026-12-04T02:00:00Z".into(),
                ended: "2026-12-04T02:03:10Z".into(),
                result: "pass".into(),
            }],
        },
        Request::Controller {} => Reply::Controller {
            controller: lethe_wire::ControllerView {
                configured: true,
                port: Some("/dev/ttyACM0".into()),
                connected: false,
                error: Some("controller on /dev/ttyACM0 unavailable".into()),
                state: None,
            },
        },
        Request::StartBay { .. } => Reply::Started {
            job: "wipe-2".into(),
        },
        Request::Resume { job } => Reply::Started { job: job.clone() },
        Request::Cancel { job } => Reply::Cancelling { job: job.clone() },
        Request::Login { .. } => Reply::LoggedIn {
            session: session_view(),
            cookie: Secret("q6Yx1z8Wb2Xc3Vd4Ue5Tf6Sg7Rh8Qi9Pj0Ok1Nl2Mm3".into()),
        },
        Request::Logout {} | Request::LogoutEverywhere {} | Request::TokenRevoke { .. } => {
            Reply::Done {}
        }
        Request::Reauth { .. }
        | Request::WhoAmI {}
        | Request::ChangePassword { .. }
        | Request::BreakGlassEnter { .. } => Reply::Session {
            session: session_view(),
        },
        Request::Users {} => Reply::Users {
            users: vec![user_view("alice"), user_view("bob")],
        },
        Request::UserAdd { name, .. } => Reply::Enrolled {
            enrolment: enrolment(name),
        },
        Request::UserChange { name, change } => match change {
            UserChange::Remove {} => Reply::User { user: None },
            UserChange::ResetPassword {} | UserChange::ResetSecondFactor {} => Reply::Enrolled {
                enrolment: enrolment(name),
            },
            _ => Reply::User {
                user: Some(user_view(name)),
            },
        },
        Request::Tokens {} => Reply::Tokens {
            tokens: vec![token_view()],
        },
        Request::TokenCreate { .. } => Reply::TokenCreated {
            token: token_view(),
            secret: Secret("lethe_0123456789abcdef0123456789abcdef_secret".into()),
        },
        Request::Certificates { .. } => Reply::Certificates {
            certificates: vec![cert_view("c1")],
        },
        Request::Certificate { format, .. } => match format {
            CertFormat::Json => Reply::Document {
                content_type: "application/json".into(),
                base64: CERT_JSON_B64.into(),
            },
            CertFormat::Pdf => Reply::Document {
                content_type: "application/pdf".into(),
                base64: PDF_B64.into(),
            },
        },
        Request::CertificateVerify { id } => Reply::CertificateVerified {
            certificate: cert_view(id),
            ok: true,
            problem: None,
        },
        Request::Audit { limit, before } => Reply::Audit {
            entries: (0..u64::from(*limit).min(3))
                .map(|i| audit_view(before.unwrap_or(100) - 1 - i))
                .collect(),
        },
        Request::AuditVerify {} => Reply::AuditVerified {
            verify: AuditVerifyView {
                entries: 42,
                root: "3q2+7w==".into(),
                ok: true,
                problem: None,
            },
        },
        Request::Keys {} => Reply::Keys {
            keys: vec![KeyView {
                purpose: "appliance_signing".into(),
                id: "lethe-ed25519-1a2b3c4d".into(),
                public: Some("ab12".into()),
            }],
        },
        Request::BreakGlassRequest { .. } => Reply::BreakGlass {
            requests: vec![bg_view("bg-1", "pending")],
        },
        Request::BreakGlassList {} => Reply::BreakGlass {
            requests: vec![bg_view("bg-1", "pending"), bg_view("bg-0", "ended")],
        },
        Request::BreakGlassDecide { id, approve } => Reply::BreakGlass {
            requests: vec![bg_view(id, if *approve { "granted" } else { "denied" })],
        },
        Request::BreakGlassReview { id, .. } => Reply::BreakGlass {
            requests: vec![bg_view(id, "reviewed")],
        },
        Request::Tls {} => match tls {
            Some(tls) => Reply::Tls { tls },
            None => wire_error(ErrorCode::Unavailable, "no certificate yet"),
        },
    }
}
