//! The HTTPS API of `lethe serve` end to end (issue 12): a real daemon (the
//! privileged worker and its unprivileged front), real TLS on a loopback
//! port, users made with `lethe user add`, TOTP codes computed here from
//! the enrolment URI.
//!
//! Each test runs its own daemon, so their clocks (idle timeout, absolute
//! lifetime, break-glass wait) do not interfere. Clients connect from their
//! own loopback address (127.0.0.N) where the per-address rate limit would
//! otherwise couple them.

mod common;
mod common_serve;

use common::*;
use common_serve::*;
use lethe_hw_tests::{skip, LoopDevice};
use reqwest::blocking::{Client, Response};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

/// A strong password the policy accepts.
/// Strong, and without the user name (the policy refuses that).
fn password_of(user: &str) -> String {
    let n: u32 = user.bytes().map(u32::from).sum();
    format!("Correct-Horse-Battery-Staple-{n}")
}

/// A running daemon with its HTTPS address, its certificate and its users.
struct Site {
    dir: tempfile::TempDir,
    serve: Option<Serve>,
    port: u16,
    users: Mutex<HashMap<String, User>>,
}

struct User {
    secret: Vec<u8>,
    last_step: u64,
    recovery: Vec<String>,
}

impl Site {
    /// A daemon with one `ask` bay over loop devices and `extra` appended
    /// to its configuration.
    fn start(extra: &str) -> Site {
        let dir = daemon_tempdir("lethe-api-");
        std::fs::create_dir(dir.path().join("bays")).unwrap();
        let port = free_port();
        let cfg = format!(
            r#"[site]
operator_id = "tech-7"
operator_name = "Test Technician"

[server]
listen = "127.0.0.1:{port}"

[auth.argon2]
memory_kib = 8192
iterations = 1
parallelism = 1

[[bay]]
name = "loops"
match = ["loop:{}/bays/drive-*.img"]
policy = "ask"
level = "clear"
verify = "full"

{extra}
"#,
            dir.path().display()
        );
        let config = dir.path().join("lethe.toml");
        std::fs::write(&config, cfg).unwrap();
        let serve = Serve::start(
            &dir.path().join("state"),
            &config,
            &dir.path().join("run"),
            &dir.path().join("serve.log"),
            &[],
        );
        let site = Site {
            dir,
            serve: Some(serve),
            port,
            users: Mutex::new(HashMap::new()),
        };
        site.wait_https();
        site
    }

    fn serve(&self) -> &Serve {
        self.serve.as_ref().unwrap()
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    fn cert_pem(&self) -> Vec<u8> {
        std::fs::read(self.state().join("tls/cert.pem")).unwrap()
    }

    /// A client trusting only the appliance's certificate, connecting from
    /// loopback address `source`.
    fn client(&self, source: &str) -> Client {
        let cert = reqwest::Certificate::from_pem(&self.cert_pem()).unwrap();
        Client::builder()
            .tls_certs_only([cert])
            .local_address(source.parse::<IpAddr>().unwrap())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap()
    }

    fn wait_https(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let last = match self.client("127.0.0.1").get(self.url("/healthz")).send() {
                Ok(r) if r.status().is_success() => return,
                Ok(r) => format!("status {}", r.status()),
                Err(e) => format!("{e:?}"),
            };
            assert!(
                Instant::now() < deadline,
                "the HTTPS API did not come up ({last}):\n{}",
                self.serve().log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `lethe user add NAME --role ROLE --password-file F [--emergency]`:
    /// the enrolment URI on stdout gives the TOTP secret.
    fn add_user(&self, name: &str, role: &str, emergency: bool) {
        let pw = self.dir.path().join(format!("{name}.pw"));
        std::fs::write(&pw, format!("{}\n", password_of(name))).unwrap();
        let mut cmd = lethe(&self.state());
        cmd.args([
            "user",
            "add",
            name,
            "--role",
            role,
            "--json",
            "--password-file",
        ])
        .arg(&pw)
        .arg("--runtime-dir")
        .arg(self.dir.path().join("run"));
        if emergency {
            cmd.arg("--emergency");
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "user add {name}: {}", stderr(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let v: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        let uri = v["otpauth_uri"]
            .as_str()
            .or_else(|| v["enrolment"]["otpauth_uri"].as_str())
            .unwrap_or_else(|| panic!("no otpauth_uri in {v}"));
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        let secret = uri
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("secret="))
            .unwrap();
        let secret = data_encoding::BASE32_NOPAD
            .decode(secret.trim_end_matches('=').as_bytes())
            .unwrap();
        let codes = v["recovery_codes"]
            .as_array()
            .or_else(|| v["enrolment"]["recovery_codes"].as_array())
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect();
        self.users.lock().unwrap().insert(
            name.into(),
            User {
                secret,
                last_step: 0,
                recovery: codes,
            },
        );
    }

    /// A TOTP code for `name` that has not been used yet: this step's, or
    /// the next (accepted within ±1 step), waiting for the clock if both
    /// were used.
    fn totp(&self, name: &str) -> String {
        loop {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let step_now = now / 30;
            let mut users = self.users.lock().unwrap();
            let u = users.get_mut(name).unwrap();
            let step = (u.last_step + 1).max(step_now);
            if step <= step_now + 1 {
                u.last_step = step;
                return code_at_step(&u.secret, step);
            }
            drop(users);
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// A code that was already used (the one of the user's last step).
    fn used_totp(&self, name: &str) -> String {
        let users = self.users.lock().unwrap();
        let u = &users[name];
        code_at_step(&u.secret, u.last_step)
    }

    fn recovery_code(&self, name: &str) -> String {
        self.users
            .lock()
            .unwrap()
            .get_mut(name)
            .unwrap()
            .recovery
            .pop()
            .unwrap()
    }

    fn login(&self, client: &Client, name: &str) -> Session {
        let code = self.totp(name);
        let r = post(
            client,
            &self.url("/api/v1/login"),
            json!({"username": name, "password": password_of(name), "totp": code}),
            None,
        );
        assert_eq!(r.status(), 200, "login {name}: {}", body(r));
        let cookie = session_cookie(&r).unwrap();
        Session {
            client: client.clone(),
            cookie,
        }
    }

    /// The audit log through the admin API of `admin`.
    fn audit(&self, admin: &Session, limit: u32) -> Vec<Value> {
        let r = admin.get(&self.url(&format!("/api/v1/audit?limit={limit}")));
        assert_eq!(r.status(), 200);
        let v: Value = r.json().unwrap();
        v.as_array()
            .cloned()
            .or_else(|| v["entries"].as_array().cloned())
            .unwrap_or_else(|| panic!("not an audit listing: {v}"))
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        drop(self.serve.take());
    }
}

fn code_at_step(secret: &[u8], step: u64) -> String {
    let s = lethe_auth::totp::TotpSecret::from_bytes(secret.to_vec());
    lethe_auth::totp::code_for_step(&s, step, &lethe_auth::totp::TotpParams::default())
}

fn session_cookie(r: &Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("__Host-lethe_session="))
        .map(|c| {
            c.split(';')
                .next()
                .unwrap()
                .trim_start_matches("__Host-lethe_session=")
                .to_string()
        })
}

fn body(r: Response) -> String {
    r.text().unwrap_or_default()
}

fn post(client: &Client, url: &str, b: Value, cookie: Option<&str>) -> Response {
    let mut rq = client.post(url).json(&b);
    if let Some(c) = cookie {
        rq = rq.header("cookie", format!("__Host-lethe_session={c}"));
    }
    rq.send().unwrap()
}

struct Session {
    client: Client,
    cookie: String,
}

impl Session {
    fn get(&self, url: &str) -> Response {
        self.client
            .get(url)
            .header("cookie", format!("__Host-lethe_session={}", self.cookie))
            .send()
            .unwrap()
    }

    fn post(&self, url: &str, b: Value) -> Response {
        post(&self.client, url, b, Some(&self.cookie))
    }

    fn delete(&self, url: &str) -> Response {
        self.client
            .delete(url)
            .header("cookie", format!("__Host-lethe_session={}", self.cookie))
            .send()
            .unwrap()
    }
}

fn error_code(r: Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let v: Value = r.json().unwrap_or(Value::Null);
    (
        status,
        v["error"]["code"].as_str().unwrap_or("").to_string(),
        v["error"]["message"].as_str().unwrap_or("").to_string(),
    )
}

fn entries_with<'a>(log: &'a [Value], action: &str) -> Vec<&'a Value> {
    log.iter().filter(|e| e["action"] == action).collect()
}

/// Login with password and TOTP over real HTTPS; a replayed code, a wrong
/// password and a wrong code all get the same answer; repeated failures
/// soft-lock the account (audited and alerted) and too many attempts from
/// one address are rate-limited.
///
/// safeguard: 164.312(d), 164.312(a)(2)(i), 164.312(b), 164.312(e)(1)
#[test]
fn login_needs_password_and_code_refuses_replays_and_locks_after_failures() {
    if let Some(why) = unavailable() {
        skip!("{why}");
    }
    let site = Site::start("");
    site.add_user("alice", "admin", false);
    site.add_user("oscar", "operator", false);
    site.add_user("carol", "operator", false);

    // A good login sets a __Host- cookie: Secure, HttpOnly, SameSite=Strict.
    let c2 = site.client("127.0.0.2");
    let code = site.totp("alice");
    let r = post(
        &c2,
        &site.url("/api/v1/login"),
        json!({"username": "alice", "password": password_of("alice"), "totp": code}),
        None,
    );
    assert_eq!(r.status(), 200);
    let set = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    for attr in [
        "__Host-lethe_session=",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(set.contains(attr), "{attr} missing from {set}");
    }
    assert!(!set.contains("Domain="), "{set}");
    let hsts = r.headers()["strict-transport-security"].to_str().unwrap();
    assert!(hsts.contains("max-age="), "{hsts}");
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    let alice = Session {
        client: c2.clone(),
        cookie: session_cookie(&r).unwrap(),
    };
    let v: Value = r.json().unwrap();
    assert_eq!(v["user"], "alice");
    assert_eq!(v["role"], "admin");
    let me: Value = alice.get(&site.url("/api/v1/session")).json().unwrap();
    assert_eq!(me["user"], "alice");

    // The same code again: refused, with the generic answer.
    let r = post(
        &c2,
        &site.url("/api/v1/login"),
        json!({"username": "alice", "password": password_of("alice"), "totp": site.used_totp("alice")}),
        None,
    );
    let replay = error_code(r);
    assert_eq!(replay.0, 401, "{replay:?}");
    assert_eq!(replay.1, "unauthenticated");

    // Wrong password with a good code, good password with a wrong code, an
    // unknown user: the same status, code and message.
    let c3 = site.client("127.0.0.3");
    let wrong_pw = error_code(post(
        &c3,
        &site.url("/api/v1/login"),
        json!({"username": "oscar", "password": "not-the-password-at-all", "totp": site.totp("oscar")}),
        None,
    ));
    let wrong_code = error_code(post(
        &c3,
        &site.url("/api/v1/login"),
        json!({"username": "oscar", "password": password_of("oscar"), "totp": "000000"}),
        None,
    ));
    let unknown = error_code(post(
        &c3,
        &site.url("/api/v1/login"),
        json!({"username": "nobody", "password": "whatever-it-is-123", "totp": "123456"}),
        None,
    ));
    assert_eq!(wrong_pw, replay);
    assert_eq!(wrong_code, replay);
    assert_eq!(unknown, replay);
    // oscar can still log in: two failures are within the free ones.
    site.login(&c3, "oscar");

    // carol: failures soft-lock the account; then even the right
    // credentials are refused, with the same answer.
    let c4 = site.client("127.0.0.4");
    for _ in 0..4 {
        let e = error_code(post(
            &c4,
            &site.url("/api/v1/login"),
            json!({"username": "carol", "password": "guess-guess-guess-1", "totp": "111111"}),
            None,
        ));
        assert_eq!(e, replay);
    }
    let locked = error_code(post(
        &c4,
        &site.url("/api/v1/login"),
        json!({"username": "carol", "password": password_of("carol"), "totp": site.totp("carol")}),
        None,
    ));
    assert_eq!(locked, replay, "a locked account answers like any failure");

    // The lock is audited (with carol's id) and alerted.
    let log = site.audit(&alice, 500);
    let locks = entries_with(&log, "account.locked");
    assert_eq!(locks.len(), 1, "{log:#?}");
    assert!(!entries_with(&log, "session.login_failed").is_empty());
    assert!(
        entries_with(&log, "session.login").len() >= 2,
        "{log:#?}\n{}",
        site.serve().log()
    );
    let alerts = site.state().join("alerts.db");
    let db = rusqlite::Connection::open(&alerts).unwrap();
    let kinds: Vec<String> = db
        .prepare("SELECT body FROM alert ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        kinds
            .iter()
            .any(|b| b.contains("account_locked") && b.contains("carol")),
        "{kinds:?}"
    );
    for b in &kinds {
        assert!(!b.contains("guess-guess"), "a password in an alert: {b}");
    }

    // Too many attempts from one address: 429 with Retry-After.
    let c9 = site.client("127.0.0.9");
    let statuses: Vec<(u16, Option<String>)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..14)
            .map(|_| {
                let c = c9.clone();
                let url = site.url("/api/v1/login");
                s.spawn(move || {
                    let r = post(
                        &c,
                        &url,
                        json!({"username": "nobody", "password": "x-x-x-x-x-x-x-x", "totp": "123456"}),
                        None,
                    );
                    (
                        r.status().as_u16(),
                        r.headers()
                            .get("retry-after")
                            .map(|v| v.to_str().unwrap().to_string()),
                    )
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let limited: Vec<_> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert!(!limited.is_empty(), "{statuses:?}");
    assert!(limited.iter().all(|(_, ra)| ra.is_some()), "{statuses:?}");

    // Nothing secret reached the daemon's log.
    let log = site.serve().log();
    for secret in [
        password_of("alice"),
        "guess-guess-guess-1".into(),
        alice.cookie.clone(),
    ] {
        assert!(!log.contains(&secret), "a secret in the daemon's log");
    }
}

/// An auditor is refused (403, audited) when starting a wipe, managing
/// users or reading keys; an operator when managing users. A wipe needs a
/// fresh re-authentication; with it, it runs to a certificate, and its
/// audit entry carries the re-authentication.
///
/// safeguard: 164.312(a)(1), 164.312(d), 164.312(b)
#[test]
fn roles_are_enforced_and_a_wipe_needs_a_fresh_reauthentication() {
    if let Some(why) = unavailable() {
        skip!("{why}");
    }
    let site = Site::start("");
    site.add_user("alice", "admin", false);
    site.add_user("oscar", "operator", false);
    site.add_user("audrey", "auditor", false);
    let alice = site.login(&site.client("127.0.0.2"), "alice");
    let oscar = site.login(&site.client("127.0.0.3"), "oscar");
    let audrey = site.login(&site.client("127.0.0.4"), "audrey");

    // A drive waits in the ask bay.
    let backing = site.dir.path().join("bays/drive-1.img");
    lethe_hw_tests::fill_file(&backing, 16 * MIB, 0x5a).unwrap();
    let drive = LoopDevice::over(&backing, 512).unwrap();
    wait_for(site.serve(), 30, "the drive to wait in its bay", |st| {
        st["bays"][0]["state"] == "waiting"
    });
    let answer = (16 * MIB).to_string();
    let start = site.url("/api/v1/bays/loops/start");

    // The auditor: refused everything that acts, 403 forbidden.
    let (s, code, _) = error_code(audrey.post(&start, json!({"answer": answer})));
    assert_eq!((s, code.as_str()), (403, "forbidden"));
    let (s, code, _) = error_code(audrey.post(
        &site.url("/api/v1/users"),
        json!({"name": "mallory", "role": "admin", "emergency": false}),
    ));
    assert_eq!((s, code.as_str()), (403, "forbidden"));
    let (s, code, _) = error_code(audrey.get(&site.url("/api/v1/keys")));
    assert_eq!((s, code.as_str()), (403, "forbidden"));
    // ... but reads what an auditor reads.
    assert_eq!(audrey.get(&site.url("/api/v1/certificates")).status(), 200);
    assert_eq!(audrey.get(&site.url("/api/v1/jobs")).status(), 200);
    assert_eq!(audrey.get(&site.url("/api/v1/audit?limit=5")).status(), 200);
    // The operator: no user management.
    let (s, code, _) = error_code(oscar.get(&site.url("/api/v1/users")));
    assert_eq!((s, code.as_str()), (403, "forbidden"));
    // No session: 401.
    let anon = site.client("127.0.0.5");
    let r = anon.get(site.url("/api/v1/jobs")).send().unwrap();
    assert_eq!(error_code(r).0, 401);

    // The operator without a fresh re-authentication: nothing written.
    let (s, code, _) = error_code(oscar.post(&start, json!({"answer": answer})));
    assert_eq!((s, code.as_str()), (403, "reauth_required"));
    assert!(std::fs::read(&backing).unwrap().iter().all(|&b| b == 0x5a));
    // A wrong re-authentication is refused.
    let (s, _, _) = error_code(oscar.post(
        &site.url("/api/v1/reauth"),
        json!({"password": "wrong-wrong-wrong-1", "totp": site.totp("oscar")}),
    ));
    assert_eq!(s, 401);
    // Re-authenticated with a recovery code as the second factor.
    let r = oscar.post(
        &site.url("/api/v1/reauth"),
        json!({"password": password_of("oscar"), "totp": site.recovery_code("oscar")}),
    );
    assert_eq!(r.status(), 200);
    let me: Value = r.json().unwrap();
    assert!(me["reauth_until"].is_string(), "{me}");
    let r = oscar.post(&start, json!({"answer": answer}));
    assert_eq!(r.status(), 202);
    let job = r.json::<Value>().unwrap()["job"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for(site.serve(), 120, "the API's wipe to pass", |st| {
        st["bays"][0]["state"] == "passed"
    });
    drop(drive);

    // An API token for automation: at most the owner's role (here
    // auditor), never a destructive action, every use audited; revoked, it
    // stops working.
    let r = oscar.post(
        &site.url("/api/v1/tokens"),
        json!({"label": "nightly export", "role": "admin", "lifetime_secs": 3600}),
    );
    assert_eq!(error_code(r).0, 400, "a token above its owner's role");
    let r = oscar.post(
        &site.url("/api/v1/tokens"),
        json!({"label": "nightly export", "role": "auditor", "lifetime_secs": 3600}),
    );
    assert!(r.status().is_success());
    let t: Value = r.json().unwrap();
    let bearer = t["secret"].as_str().unwrap().to_string();
    let token_id = t["token"]["id"].as_str().unwrap().to_string();
    let c6 = site.client("127.0.0.6");
    let with_token = |url: &str| c6.get(site.url(url)).bearer_auth(&bearer).send().unwrap();
    assert_eq!(with_token("/api/v1/jobs").status(), 200);
    let r = c6
        .post(&start)
        .bearer_auth(&bearer)
        .json(&json!({"answer": answer}))
        .send()
        .unwrap();
    assert_eq!(error_code(r).0, 403);
    assert_eq!(
        oscar
            .delete(&site.url(&format!("/api/v1/tokens/{token_id}")))
            .status()
            .as_u16()
            / 100,
        2
    );
    assert_eq!(error_code(with_token("/api/v1/jobs")).0, 401);

    // The refusals and the wipe are in the audit log; the wipe's start
    // carries oscar's name, his session and his re-authentication.
    let log = site.audit(&alice, 1000);
    let denied = entries_with(&log, "access.denied");
    assert!(denied.len() >= 4, "{denied:#?}");
    let started: Vec<_> = entries_with(&log, "job.started")
        .into_iter()
        .filter(|e| e["record_id"] == job)
        .collect();
    assert_eq!(started.len(), 1, "{log:#?}");
    let e = started[0];
    assert_eq!(e["actor"], "oscar");
    assert_eq!(e["source"], "api");
    assert!(e["detail"]["tag:reauth"].is_string(), "{e:#}");
    assert!(e["detail"]["tag:session"].is_string(), "{e:#}");
    assert_eq!(entries_with(&log, "session.reauthenticated").len(), 2);
    let used = entries_with(&log, "token.used");
    assert!(
        used.len() >= 2,
        "every use of a token is audited: {used:#?}"
    );
    assert!(used.iter().any(|e| e["outcome"] == "refused"));
    assert_eq!(entries_with(&log, "token.created").len(), 1);
    assert_eq!(entries_with(&log, "token.revoked").len(), 1);

    // The certificate through the API: JSON, PDF, verified.
    let certs: Value = audrey
        .get(&site.url("/api/v1/certificates?limit=10"))
        .json()
        .unwrap();
    let list = certs
        .as_array()
        .cloned()
        .or_else(|| certs["certificates"].as_array().cloned())
        .unwrap();
    assert_eq!(list.len(), 1, "{certs}");
    let id = list[0]["id"].as_str().unwrap();
    let pdf = audrey.get(&site.url(&format!("/api/v1/certificates/{id}/pdf")));
    assert_eq!(pdf.status(), 200);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    assert!(pdf.bytes().unwrap().starts_with(b"%PDF"));
    let v: Value = audrey
        .post(
            &site.url(&format!("/api/v1/certificates/{id}/verify")),
            json!({}),
        )
        .json()
        .unwrap();
    assert_eq!(v["ok"], true, "{v}");
    let (s, _, _) = error_code(audrey.get(&site.url("/api/v1/certificates/..%2Fkeys%2Fsigning")));
    assert_eq!(s, 404);
}

/// Idle logoff: a session that only polls progress expires after the idle
/// timeout, one with user actions stays; the absolute lifetime ends both.
///
/// safeguard: 164.312(a)(2)(iii)
#[test]
fn polling_does_not_keep_a_session_alive_and_the_lifetime_ends_every_session() {
    if let Some(why) = unavailable() {
        skip!("{why}");
    }
    let site = Site::start("[session]\nidle_timeout = \"8s\"\nabsolute_lifetime = \"22s\"\n");
    site.add_user("ida", "operator", false);
    site.add_user("bea", "operator", false);
    let ida = site.login(&site.client("127.0.0.2"), "ida");
    let bea = site.login(&site.client("127.0.0.3"), "bea");
    let t0 = Instant::now();
    // 12 s: ida only polls status and job lists; bea acts every 2 s. Ida's
    // polls are answered until her idle timeout (8 s after her login) and
    // refused from then on: polling never counted as activity.
    let mut ida_refused_at = None;
    while t0.elapsed() < Duration::from_secs(12) {
        let status = ida.get(&site.url("/api/v1/status")).status();
        let jobs = ida.get(&site.url("/api/v1/jobs")).status();
        match (ida_refused_at, status.as_u16(), jobs.as_u16()) {
            (None, 200, 200) => {}
            (None, 401, _) | (None, 200, 401) => ida_refused_at = Some(t0.elapsed()),
            (Some(_), 401, 401) => {}
            other => panic!("ida's polls at {:?}: {other:?}", t0.elapsed()),
        }
        assert_eq!(bea.get(&site.url("/api/v1/session")).status(), 200);
        std::thread::sleep(Duration::from_secs(2));
    }
    let refused = ida_refused_at.expect("polling kept ida logged in");
    assert!(
        refused >= Duration::from_secs(6),
        "ida was logged off after {refused:?}, before her idle timeout"
    );
    let (s, code, _) = error_code(ida.get(&site.url("/api/v1/session")));
    assert_eq!(
        (s, code.as_str()),
        (401, "unauthenticated"),
        "polling kept ida logged in"
    );
    assert_eq!(bea.get(&site.url("/api/v1/session")).status(), 200);
    // Up to the absolute lifetime (22 s) bea stays, as she is active; past
    // it she is logged off though she is active.
    while t0.elapsed() < Duration::from_secs(19) {
        assert_eq!(
            bea.get(&site.url("/api/v1/session")).status(),
            200,
            "bea lost her session at {:?}",
            t0.elapsed()
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    while t0.elapsed() < Duration::from_secs(23) {
        std::thread::sleep(Duration::from_millis(250));
    }
    let (s, _, _) = error_code(bea.get(&site.url("/api/v1/session")));
    assert_eq!(
        s, 401,
        "the absolute lifetime did not end an active session"
    );
    // Both ends are in the audit log as expiries.
    let admin_log = Command::new(env!("CARGO_BIN_EXE_lethe"))
        .args(["--state-dir"])
        .arg(site.state())
        .args([
            "audit",
            "export",
            "--format",
            "jsonl",
            "--action",
            "session.expired",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&admin_log.stdout);
    assert_eq!(
        text.matches("session.expired").count(),
        2,
        "{text}{}",
        stderr(&admin_log)
    );
}

/// Break-glass, remote path: a user with the emergency grant asks with a
/// reason; the approvers' webhook is told at once (without the reason);
/// with no answer, access is granted after the configured wait, gives the
/// elevated role only until its lifetime ends, tags every action in the
/// audit log, and is closed by an admin's review.
///
/// safeguard: 164.312(a)(2)(ii), 164.312(b)
#[test]
fn break_glass_alerts_the_approvers_is_granted_after_the_wait_and_expires() {
    if let Some(why) = unavailable() {
        skip!("{why}");
    }
    let hook = Hook::start();
    let site = Site::start(&format!(
        r#"[breakglass]
approvers = ["alice"]
wait = "4s"
lifetime = "10s"

[[alerts.webhook]]
name = "approvers"
url = "http://127.0.0.1:{}/hook"
"#,
        hook.port
    ));
    site.add_user("alice", "admin", false);
    site.add_user("emma", "operator", true);
    let emma = site.login(&site.client("127.0.0.2"), "emma");
    // Before: emma cannot read the keys (not in her role).
    let (s, code, _) = error_code(emma.get(&site.url("/api/v1/keys")));
    assert_eq!((s, code.as_str()), (403, "forbidden"));

    let reason = "Radiology archive down at 3 a.m., patient Jane Example's scans needed";
    let r = emma.post(&site.url("/api/v1/breakglass"), json!({ "reason": reason }));
    assert!(r.status().is_success(), "{}", body(r));
    let v: Value = r.json().unwrap();
    let req = v
        .as_array()
        .and_then(|a| a.first().cloned())
        .or_else(|| v["requests"].as_array().and_then(|a| a.first().cloned()))
        .unwrap_or(v.clone());
    let id = req["id"].as_str().unwrap().to_string();
    assert_eq!(req["state"], "pending");

    // The approvers hear of it at once, without the reason.
    let asked = hook.wait_for(15, "break_glass_requested", |v| {
        v["type"] == "break_glass_requested"
    });
    assert_eq!(asked["user"], "emma");
    assert!(!asked.to_string().contains("Jane"), "{asked}");
    // Nobody answers: granted after the wait.
    let granted = hook.wait_for(20, "break_glass_granted", |v| {
        v["type"] == "break_glass_granted"
    });
    assert_eq!(granted["by"]["how"], "wait_elapsed", "{granted}");
    let t_granted = Instant::now();

    let r = emma.post(
        &site.url(&format!("/api/v1/breakglass/{id}/enter")),
        json!({}),
    );
    assert_eq!(r.status(), 200, "{}", body(r));
    let me: Value = r.json().unwrap();
    assert!(me["elevated_until"].is_string(), "{me}");
    // Keys need admin and a fresh re-authentication.
    let r = emma.post(
        &site.url("/api/v1/reauth"),
        json!({"password": password_of("emma"), "totp": site.totp("emma")}),
    );
    assert_eq!(r.status(), 200);
    let r = emma.get(&site.url("/api/v1/keys"));
    assert_eq!(r.status(), 200, "elevated emma reads the keys");
    // The elevation ends on time.
    while t_granted.elapsed() < Duration::from_secs(12) {
        std::thread::sleep(Duration::from_millis(500));
    }
    let (s, _, _) = error_code(emma.get(&site.url("/api/v1/keys")));
    assert_eq!(s, 403, "the elevation outlived its lifetime");

    // The admin reviews the episode; everything is in the audit log.
    let alice = site.login(&site.client("127.0.0.3"), "alice");
    let r = alice.post(
        &site.url(&format!("/api/v1/breakglass/{id}/review")),
        json!({"notes": "Checked with radiology: justified; archive restored."}),
    );
    assert!(r.status().is_success(), "{}", body(r));
    let log = site.audit(&alice, 1000);
    for action in [
        "breakglass.requested",
        "breakglass.started",
        "breakglass.used",
        "breakglass.ended",
        "breakglass.reviewed",
    ] {
        let es = entries_with(&log, action);
        assert!(!es.is_empty(), "no {action} in {log:#?}");
        assert!(
            es.iter()
                .all(|e| e["detail"]["tag:break_glass"] == id.as_str()),
            "{action} not tagged with the episode: {es:#?}"
        );
    }
    assert!(!serde_json::to_string(&log).unwrap().contains("Jane"));
}

/// HTTPS only: a plain-HTTP request gets no data, TLS 1.0 and 1.1 are
/// refused, TLS 1.2 and 1.3 work; `lethe status` shows the certificate's
/// fingerprint, which matches the one the server presents.
///
/// safeguard: 164.312(e)(1), 164.312(e)(2)(ii)
#[test]
fn only_modern_tls_is_spoken_and_the_fingerprint_is_shown() {
    if let Some(why) = unavailable() {
        skip!("{why}");
    }
    let site = Site::start("");
    // Plain HTTP on the HTTPS port: no HTTP answer, no data.
    let mut s = TcpStream::connect(("127.0.0.1", site.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(
        !got.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert!(!got.contains(&b'{'), "{}", String::from_utf8_lossy(&got));

    let s_client = |flag: &str| {
        let mut c = Command::new("openssl")
            .args(["s_client", "-connect"])
            .arg(format!("127.0.0.1:{}", site.port))
            .arg(flag)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("openssl (Debian package openssl)");
        drop(c.stdin.take());
        let out = c.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (
            out.status.success() && text.contains("BEGIN CERTIFICATE"),
            text,
        )
    };
    for old in ["-tls1", "-tls1_1"] {
        let (ok, text) = s_client(old);
        assert!(!ok, "{old} was accepted:\n{text}");
    }
    for new in ["-tls1_2", "-tls1_3"] {
        let (ok, text) = s_client(new);
        assert!(ok, "{new} was refused:\n{text}");
    }
    // The fingerprint: lethe status == openssl's view of the file == the
    // certificate the server presents.
    let st = site.serve().status();
    let shown = st["daemon"]["tls_fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    let fp = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(site.state().join("tls/cert.pem"))
        .output()
        .unwrap();
    let fp = String::from_utf8_lossy(&fp.stdout);
    assert!(fp.trim().ends_with(&shown), "{fp} vs {shown}");
    let (_, text) = s_client("-tls1_3");
    let presented = text
        .split("-----BEGIN CERTIFICATE-----")
        .nth(1)
        .and_then(|t| t.split("-----END CERTIFICATE-----").next())
        .unwrap();
    let presented = format!("-----BEGIN CERTIFICATE-----{presented}-----END CERTIFICATE-----\n");
    let mut x = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    x.stdin
        .take()
        .unwrap()
        .write_all(presented.as_bytes())
        .unwrap();
    let out = x.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout)
        .trim()
        .ends_with(&shown));
    // The human status shows it too.
    let out = Command::new(env!("CARGO_BIN_EXE_lethe"))
        .args(["status", "--runtime-dir"])
        .arg(site.dir.path().join("run"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&shown));
}

/// The request a route gets in the role test: its path with harmless
/// parameters (nothing by those names exists) and a well-formed body, so
/// that the front passes it on and the worker's decision is what answers.
fn sample_request(route: &lethe_front::api::Route, own_role: &str) -> (String, Option<Value>) {
    let path = route
        .path
        .replace("{bay}", "nobay")
        .replace("{job}", "00000000-0000-4000-8000-000000000000")
        .replace("{id}", "nope-0")
        .replace("{name}", "nobody");
    let body = match route.path {
        "/api/v1/reauth" => Some(json!({"password": "not-the-password-1", "totp": "000000"})),
        "/api/v1/session/password" => {
            Some(json!({"current": "not-the-password-1", "new": "Another-Long-Passphrase-Here-42"}))
        }
        "/api/v1/bays/{bay}/start" => Some(json!({"answer": "no"})),
        "/api/v1/users" => {
            Some(json!({"name": format!("new-{own_role}"), "role": "auditor", "emergency": false}))
        }
        "/api/v1/users/{name}/role" => Some(json!({"role": "auditor"})),
        "/api/v1/users/{name}/emergency" => Some(json!({"granted": false})),
        "/api/v1/tokens" => {
            Some(json!({"label": "role-test", "role": own_role, "lifetime_secs": 600}))
        }
        "/api/v1/breakglass" => Some(json!({"reason": "role test"})),
        "/api/v1/breakglass/{id}/review" => Some(json!({"notes": "role test"})),
        _ if route.method == lethe_front::api::routes::Method::Post => Some(json!({})),
        _ => None,
    };
    (path, body)
}

/// Every route of the route table, with every role (and an operator
/// without the emergency grant): a route is refused with 403 `forbidden`
/// exactly when the caller's role lacks the route's privilege, and each
/// refusal is in the audit log. Callers have just re-authenticated, so a
/// destructive route is refused only for its privilege.
///
/// safeguard: 164.312(a)(1), 164.312(b)
#[test]
fn every_route_with_every_role_is_allowed_exactly_by_the_role_table() {
    use lethe_auth::privilege::{Privilege, Role, EMERGENCY_GRANT};
    use lethe_front::api::routes::{Method, PUBLIC, ROUTES};
    if let Some(why) = unavailable() {
        skip!("{why}");
    }
    let site = Site::start("");
    site.add_user("root-admin", "admin", false);
    let callers = [
        ("aud", Role::Auditor, true),
        ("opa", Role::Operator, true),
        ("opb", Role::Operator, false),
        ("adm", Role::Admin, true),
    ];
    for (name, role, emergency) in callers {
        site.add_user(name, role.name(), emergency);
    }
    let anon = site.client("127.0.0.9");
    let mut refusals = 0;
    for (i, (name, role, emergency)) in callers.into_iter().enumerate() {
        let client = site.client(&format!("127.0.0.{}", 10 + i));
        let s = site.login(&client, name);
        let r = s.post(
            &site.url("/api/v1/reauth"),
            json!({"password": password_of(name), "totp": site.totp(name)}),
        );
        assert_eq!(r.status(), 200, "reauth {name}: {}", body(r));
        let mut allowed = role.privileges();
        if emergency {
            allowed = allowed.union(EMERGENCY_GRANT);
        }
        // Routes that end the session go last: logout on a second session
        // (logged in with a recovery code), then logout-everywhere.
        let mut order: Vec<_> = ROUTES
            .iter()
            .filter(|r| r.privilege != PUBLIC && !r.path.starts_with("/api/v1/logout"))
            .collect();
        order.extend(ROUTES.iter().filter(|r| r.path == "/api/v1/logout"));
        order.extend(
            ROUTES
                .iter()
                .filter(|r| r.path == "/api/v1/logout-everywhere"),
        );
        for route in order {
            let privilege = Privilege::parse(route.privilege)
                .unwrap_or_else(|| panic!("{}: unknown privilege {}", route.path, route.privilege));
            let (path, b) = sample_request(route, role.name());
            let caller = if route.path == "/api/v1/logout" {
                let r = post(
                    &client,
                    &site.url("/api/v1/login"),
                    json!({"username": name, "password": password_of(name),
                           "totp": site.recovery_code(name)}),
                    None,
                );
                assert_eq!(r.status(), 200, "second login of {name}: {}", body(r));
                Session {
                    client: client.clone(),
                    cookie: session_cookie(&r).unwrap(),
                }
            } else {
                Session {
                    client: client.clone(),
                    cookie: s.cookie.clone(),
                }
            };
            let url = site.url(&path);
            let resp = match route.method {
                Method::Get => caller.get(&url),
                Method::Post => caller.post(&url, b.unwrap_or(json!({}))),
                Method::Delete => caller.delete(&url),
            };
            let (status, code, message) = error_code(resp);
            let what = format!(
                "{} {} as {name} ({}): {status} {code} {message}",
                route.method.as_str(),
                route.path,
                role.name()
            );
            if allowed.contains(privilege) {
                assert!(
                    !(status == 403 && code == "forbidden"),
                    "refused though the role has {}: {what}",
                    route.privilege
                );
                assert!(status < 500, "{what}");
                // A wrong password in the body is a failed check of the
                // credentials (401); anywhere else a 401 means the session
                // ended too early.
                if !matches!(route.path, "/api/v1/reauth" | "/api/v1/session/password") {
                    assert_ne!(status, 401, "the session ended early: {what}");
                }
            } else {
                assert_eq!(
                    (status, code.as_str()),
                    (403, "forbidden"),
                    "the role lacks {}: {what}",
                    route.privilege
                );
                refusals += 1;
            }
        }
        // Both sessions are gone now.
        let (status, _, _) = error_code(s.get(&site.url("/api/v1/session")));
        assert_eq!(status, 401, "{name}'s session outlived logout-everywhere");
    }
    assert!(
        refusals > 30,
        "only {refusals} refusals: the matrix is too thin"
    );
    // Public routes answer without a credential; nothing else does.
    for route in ROUTES {
        let (path, b) = sample_request(route, "auditor");
        let url = site.url(&path);
        let resp = match route.method {
            Method::Get => anon.get(&url).send().unwrap(),
            Method::Post => anon
                .post(&url)
                .json(&b.unwrap_or(json!({})))
                .send()
                .unwrap(),
            Method::Delete => anon.delete(&url).send().unwrap(),
        };
        let (status, code, _) = error_code(resp);
        if route.privilege == PUBLIC {
            assert_ne!(status, 401, "{} needs no login", route.path);
        } else {
            assert_eq!(
                (status, code.as_str()),
                (401, "unauthenticated"),
                "{} {} without a credential",
                route.method.as_str(),
                route.path
            );
        }
    }
    // Every refusal is in the audit log.
    let admin = site.login(&site.client("127.0.0.20"), "root-admin");
    let log = site.audit(&admin, 1000);
    assert!(
        log.len() < 1000,
        "more entries than one page: {}",
        log.len()
    );
    let denied = entries_with(&log, "access.denied");
    assert_eq!(denied.len(), refusals, "refusals audited");
}

/// The controller's status through the API comes from the controller
/// itself: none configured says so; the real firmware booted in QEMU
/// reports its build, a relay that is off and a closed interlock.
///
/// safeguard: rule:fail-safe-relay
#[test]
fn the_controller_status_is_what_the_controller_reports() {
    use lethe_hw_tests::qemu_board::{firmware_elf, missing_prereq, one_at_a_time, QemuBoard};
    if let Some(why) = unavailable() {
        skip!("{why}");
    }
    {
        let site = Site::start("");
        site.add_user("audra", "auditor", false);
        let s = site.login(&site.client("127.0.0.2"), "audra");
        let v: Value = s.get(&site.url("/api/v1/controller")).json().unwrap();
        assert_eq!(v, json!({"configured": false, "connected": false}));
    }
    let _one = one_at_a_time();
    if let Some(why) = missing_prereq() {
        skip!("controller QEMU board: {why}");
    }
    let elf = firmware_elf().as_ref().unwrap_or_else(|e| panic!("{e}"));
    let board = QemuBoard::boot(elf).expect("boot the controller firmware");
    let site = Site::start(&format!("[controller]\nport = \"{}\"\n", board.pty()));
    site.add_user("audra", "auditor", false);
    let s = site.login(&site.client("127.0.0.3"), "audra");
    let r = s.get(&site.url("/api/v1/controller"));
    assert_eq!(r.status(), 200);
    let v: Value = r.json().unwrap();
    assert_eq!(v["configured"], true, "{v:#}");
    assert_eq!(v["connected"], true, "{v:#}");
    assert_eq!(v["port"], board.pty(), "{v:#}");
    let st = &v["state"];
    assert_eq!(st["build"], "Simulation", "{v:#}");
    assert_eq!(st["firmware_version"], "0.2.0", "{v:#}");
    assert_eq!(st["relay"], false, "{v:#}");
    assert_eq!(st["energized"], false, "{v:#}");
    assert_eq!(st["interlock_closed"], true, "{v:#}");
    assert_eq!(st["estop"], false, "{v:#}");
    assert!(st.get("fault").is_none(), "{v:#}");
}

/// A backup job's history through the API: the daemon's scheduled backup
/// and drill appear, newest first, with their results and nothing of their
/// reports (which name files); a job outside the configuration is a 404.
/// Its snapshots are listed from the repository without paths. An
/// operator (not an auditor) runs a drill on demand, recorded in the
/// history like a scheduled one.
///
/// safeguard: 164.310(d)(2)(iv)
#[test]
fn a_backup_jobs_history_shows_its_backups_and_drills() {
    if let Some(why) = unavailable() {
        skip!("{why}");
    }
    let t = tempfile::Builder::new()
        .prefix("lethe-api-backup-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (repo, pw, src) = (
        t.path().join("repo"),
        t.path().join("pw"),
        t.path().join("records"),
    );
    std::fs::write(&pw, "correct horse").unwrap();
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("jane-doe-chart.txt"), "record\n".repeat(1000)).unwrap();
    let init = lethe(&t.path().join("init-state"))
        .args(["backup", "--repo"])
        .arg(&repo)
        .arg("--password-file")
        .arg(&pw)
        .args(["init", "--json"])
        .env_remove("LETHE_REPO")
        .env_remove("LETHE_PASSWORD")
        .env_remove("LETHE_PASSWORD_FILE")
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", stderr(&init));
    let site = Site::start(&format!(
        "[[backup]]\nname = \"records\"\nrepo = \"{}\"\npassword_file = \"{}\"\n\
         paths = [\"{}\"]\nevery = \"1h\"\ndrill_every = \"1h\"\ndrill_sample = 1\n",
        repo.display(),
        pw.display(),
        src.display()
    ));
    site.add_user("audra", "auditor", false);
    let s = site.login(&site.client("127.0.0.2"), "audra");
    let deadline = Instant::now() + Duration::from_secs(180);
    let runs = loop {
        let r = s.get(&site.url("/api/v1/backups/records/history?limit=10"));
        assert_eq!(r.status(), 200);
        let runs: Vec<Value> = r.json().unwrap();
        let has = |kind: &str| {
            runs.iter()
                .any(|x| x["kind"] == kind && x["result"] == "pass")
        };
        if has("backup") && has("drill") {
            break runs;
        }
        assert!(
            Instant::now() < deadline,
            "no passed backup and drill in the history: {runs:#?}\n{}",
            site.serve().log()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    for run in &runs {
        let keys: Vec<&str> = run
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["ended", "kind", "result", "started"], "{run}");
        assert!(run["started"].as_str().unwrap() <= run["ended"].as_str().unwrap());
    }
    // Newest first: the drill follows its backup.
    let pos = |kind: &str| runs.iter().position(|x| x["kind"] == kind).unwrap();
    assert!(pos("drill") < pos("backup"), "{runs:#?}");
    assert!(!serde_json::to_string(&runs).unwrap().contains("jane-doe"));
    let (status, code, _) = error_code(s.get(&site.url("/api/v1/backups/nope/history")));
    assert_eq!((status, code.as_str()), (404, "not_found"));

    // The manifest the daemon's backup wrote carries the audit log's signed
    // checkpoint.
    let conn = lethe_backup::connect::connect(
        repo.to_str().unwrap(),
        &lethe_backup::connect::ConnectOptions::default(),
    )
    .unwrap();
    let st = lethe_backup::Repository::open(conn.store.clone(), b"correct horse")
        .unwrap()
        .state()
        .unwrap();
    let note = st
        .manifest
        .and_then(|m| m.audit_checkpoint)
        .expect("the daemon's manifest carries the audit checkpoint");
    assert!(note.lines().count() >= 3, "not a signed note: {note}");
    // The job's snapshots, read from the repository by the worker.
    let snaps: Value = s
        .get(&site.url("/api/v1/backups/records/snapshots"))
        .json()
        .unwrap();
    let list = snaps["snapshots"].as_array().unwrap();
    assert!(!list.is_empty(), "{snaps:#}");
    assert_eq!(snaps["damaged"], 0, "{snaps:#}");
    assert_eq!(snaps["tampering"], 0, "{snaps:#}");
    assert_eq!(list[0]["files"], 1, "{snaps:#}");
    assert!(list[0]["id"].as_str().unwrap().len() >= 16, "{snaps:#}");
    assert!(!snaps.to_string().contains("jane-doe"), "{snaps:#}");
    let (status, code, _) = error_code(s.get(&site.url("/api/v1/backups/nope/snapshots")));
    assert_eq!((status, code.as_str()), (404, "not_found"));

    // A drill on demand: an operator starts it, it runs as a job of its
    // own and passes; the auditor may not start one.
    let (status, code, _) =
        error_code(s.post(&site.url("/api/v1/backups/records/drill"), json!({})));
    assert_eq!((status, code.as_str()), (403, "forbidden"));
    site.add_user("otto", "operator", false);
    let o = site.login(&site.client("127.0.0.3"), "otto");
    let drills = |sess: &Session| -> Vec<Value> {
        let runs: Vec<Value> = sess
            .get(&site.url("/api/v1/backups/records/history?limit=100"))
            .json()
            .unwrap();
        runs.into_iter().filter(|x| x["kind"] == "drill").collect()
    };
    let before = drills(&o).len();
    let r = o.post(&site.url("/api/v1/backups/records/drill"), json!({}));
    assert_eq!(r.status(), 202);
    let job = r.json::<Value>().unwrap()["job"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(job.starts_with("drill-"), "{job}");
    // It is recorded in the job's history like a scheduled drill.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = drills(&o);
        if now.len() > before {
            assert_eq!(now[0]["result"], "pass", "{now:#?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the drill {job} was not recorded: {now:#?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let (status, code, _) = error_code(o.post(&site.url("/api/v1/backups/nope/drill"), json!({})));
    assert_eq!((status, code.as_str()), (404, "not_found"));
}

/// `lethe --server URL --server-fingerprint FP CMD` as a technician's laptop
/// runs it: its own session directory and configuration, stdin for what
/// the user types.
struct Laptop<'a> {
    site: &'a Site,
    home: tempfile::TempDir,
    fingerprint: String,
}

impl<'a> Laptop<'a> {
    fn new(site: &'a Site) -> Self {
        let fingerprint = site.serve().status()["daemon"]["tls_fingerprint"]
            .as_str()
            .unwrap()
            .to_string();
        Laptop {
            site,
            home: tempfile::tempdir().unwrap(),
            fingerprint,
        }
    }

    fn run_with(&self, fingerprint: &str, args: &[&str], stdin: &str) -> std::process::Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lethe"));
        c.arg("--server")
            .arg(self.site.url(""))
            .arg("--server-fingerprint")
            .arg(fingerprint)
            .args(args)
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("LETHE_SESSION_DIR", self.home.path().join("sessions"))
            .env_remove("LETHE_CLIENT_CONFIG")
            .env_remove("LETHE_STATE_DIR")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn run(&self, args: &[&str], stdin: &str) -> std::process::Output {
        self.run_with(&self.fingerprint, args, stdin)
    }

    fn password_file(&self, user: &str) -> PathBuf {
        let p = self.home.path().join(format!("{user}.pw"));
        std::fs::write(&p, format!("{}\n", password_of(user))).unwrap();
        p
    }

    fn login(&self, user: &str) {
        let pw = self.password_file(user);
        let code = format!("{}\n", self.site.totp(user));
        let out = self.run(
            &[
                "login",
                "--user",
                user,
                "--password-file",
                pw.to_str().unwrap(),
            ],
            &code,
        );
        assert!(out.status.success(), "login {user}: {}", stderr(&out));
    }
}

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn last_json(out: &std::process::Output) -> Value {
    let text = stdout_of(out);
    serde_json::from_str(text.lines().last().unwrap_or("null"))
        .unwrap_or_else(|e| panic!("{e}: {text}\n{}", stderr(out)))
}

/// The CLI as a client (issue 12, item 8): with `--server`, `status`,
/// `jobs`, `wipe`, `cert` run through the HTTPS API and print what they
/// print on the appliance; the certificate is pinned by its fingerprint;
/// the operator logs in with password and TOTP, re-authenticates for the
/// wipe and types the drive's size; an auditor's wipe is refused; a
/// certificate fetched from the appliance is verified locally against the
/// key the user names.
///
/// safeguard: 164.312(d), 164.312(e)(1), 164.312(e)(2)(ii)
#[test]
fn the_cli_drives_an_appliance_through_the_api_with_the_same_output() {
    if let Some(why) = unavailable() {
        skip!("{why}");
    }
    let site = Site::start("");
    site.add_user("oscar", "operator", false);
    site.add_user("audrey", "auditor", false);
    let laptop = Laptop::new(&site);

    // Not logged in: told so. Another certificate: refused by the pin.
    let out = laptop.run(&["status"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not logged in"), "{}", stderr(&out));
    let wrong = "00".repeat(32);
    let out = laptop.run_with(&wrong, &["status"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not the pinned"), "{}", stderr(&out));
    let out = laptop.run_with("12:34", &["status"], "");
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    // A wrong second factor: no session saved.
    let pw = laptop.password_file("oscar");
    let out = laptop.run(
        &[
            "login",
            "--user",
            "oscar",
            "--password-file",
            pw.to_str().unwrap(),
        ],
        "000000\n",
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!laptop
        .home
        .path()
        .join("sessions")
        .join(format!("127.0.0.1_{}.json", site.port))
        .exists());

    laptop.login("oscar");
    let saved = laptop
        .home
        .path()
        .join("sessions")
        .join(format!("127.0.0.1_{}.json", site.port));
    let mode = std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // The same status as on the appliance (but for the audit-log count,
    // which the requests themselves raise).
    let mut remote = last_json(&laptop.run(&["status", "--json"], ""));
    let mut local = site.serve().status();
    for v in [&mut remote, &mut local] {
        v["daemon"]["audit_entries"] = Value::Null;
    }
    assert_eq!(remote, local);
    let text = stdout_of(&laptop.run(&["status"], ""));
    assert!(text.contains("BAYS") && text.contains("loops"), "{text}");
    assert!(text.contains(&laptop.fingerprint), "{text}");

    // A drive waits in the ask bay.
    let backing = site.dir.path().join("bays/drive-1.img");
    lethe_hw_tests::fill_file(&backing, 16 * MIB, 0x5a).unwrap();
    let drive = LoopDevice::over(&backing, 512).unwrap();
    wait_for(site.serve(), 30, "the drive to wait in its bay", |st| {
        st["bays"][0]["state"] == "waiting"
    });
    let size = format!("{}\n", 16 * MIB);
    let untouched = || std::fs::read(&backing).unwrap().iter().all(|&b| b == 0x5a);

    // Policy options are the bay's, not the laptop's; --yes is no answer.
    let out = laptop.run(&["wipe", "loops", "--passes", "3"], &size);
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(stderr(&out).contains("--passes"), "{}", stderr(&out));
    let out = laptop.run(&["wipe", "loops", "--yes"], "");
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    // No fresh re-authentication: refused, and told how.
    let out = laptop.run(&["wipe", "loops", "--json"], &size);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("reauth"), "{}", stderr(&out));
    assert_eq!(last_json(&out)["result"], "refused");
    // A wrong answer: refused before anything is sent.
    let out = laptop.run(&["wipe", "loops"], "12345\n");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("not confirmed"), "{}", stderr(&out));
    assert!(untouched());
    // An unknown bay names the bays there are.
    let out = laptop.run(&["wipe", "/dev/loop-absent"], &size);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("bays: loops"), "{}", stderr(&out));

    // An auditor cannot wipe, even re-authenticated.
    let auditor = Laptop::new(&site);
    auditor.login("audrey");
    let out = auditor.run(&["wipe", "loops"], &size);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(untouched());

    // Re-authenticated, the operator's wipe runs to a certificate.
    let pw = laptop.password_file("oscar");
    let code = format!("{}\n", site.totp("oscar"));
    let out = laptop.run(&["reauth", "--password-file", pw.to_str().unwrap()], &code);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = laptop.run(&["wipe", "loops", "--json"], &size);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout_of(&out),
        stderr(&out)
    );
    let end = last_json(&out);
    assert_eq!(end["result"], "pass", "{end}");
    assert_eq!(end["certified"], true);
    let job = end["job"].as_str().unwrap().to_string();
    let cert = end["certificate_id"].as_str().unwrap().to_string();
    assert!(end["certificate"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/{cert}.json")));
    assert!(!untouched());
    drop(drive);

    // `jobs` as on the appliance.
    let remote = last_json(&laptop.run(&["jobs", "--json"], ""));
    let local = {
        let out = lethe(&site.state())
            .args(["jobs", "--json"])
            .output()
            .unwrap();
        last_json(&out)
    };
    let keys = [
        "job",
        "kind",
        "status",
        "device",
        "certificate",
        "resumable",
        "updated_at",
    ];
    let pick = |v: &Value| -> Vec<Vec<Value>> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|j| keys.iter().map(|k| j[*k].clone()).collect())
            .collect()
    };
    assert_eq!(pick(&remote), pick(&local));
    assert_eq!(remote[0]["job"], job.as_str());
    assert_eq!(remote[0]["status"], "pass");
    let table = stdout_of(&laptop.run(&["jobs"], ""));
    let here = stdout_of(&lethe(&site.state()).arg("jobs").output().unwrap());
    assert_eq!(table, here);

    // Certificates: the same list; fetched and verified here against the
    // appliance's public key (signer unknown without one); saved with
    // their PDF byte for byte.
    let list = stdout_of(&laptop.run(&["cert", "list"], ""));
    let here = stdout_of(
        &lethe(&site.state())
            .args(["cert", "list"])
            .output()
            .unwrap(),
    );
    assert_eq!(list, here);
    let key = site.state().join("keys/appliance.pub");
    let out = laptop.run(
        &["cert", "verify", &cert, "--key", key.to_str().unwrap()],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout_of(&out).contains("VALID"), "{}", stdout_of(&out));
    let out = laptop.run(&["cert", "verify", &cert], "");
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
    let got = laptop.home.path().join("got");
    let out = laptop.run(&["cert", "get", &cert, "-o", got.to_str().unwrap()], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let stored = site.state().join(format!("certificates/{cert}.json"));
    assert_eq!(
        std::fs::read(got.join(format!("{cert}.json"))).unwrap(),
        std::fs::read(&stored).unwrap()
    );
    assert!(std::fs::read(got.join(format!("{cert}.pdf")))
        .unwrap()
        .starts_with(b"%PDF"));

    // Commands that act on this machine's hardware are not sent.
    let out = laptop.run(&["drives"], "");
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));

    // Logged out: the session file is gone and the next command says so.
    let out = laptop.run(&["logout"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!saved.exists());
    let out = laptop.run(&["jobs"], "");
    assert!(stderr(&out).contains("not logged in"), "{}", stderr(&out));
}
