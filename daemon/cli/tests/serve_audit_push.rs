//! `[audit.push]` end to end (issue 11): a real `lethe serve` pushes its
//! signed audit checkpoints to receivers run by the test (a webhook, a TCP
//! and a UDP syslog collector); a pushed checkpoint verifies under the
//! appliance key, covers the entries, and later catches a truncated log.

mod common;
mod common_serve;

use common::*;
use common_serve::*;
use lethe_hw_tests::skip;
use serde_json::Value;
use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A daemon with `extra` as its configuration; its state, runtime and log
/// under `dir`.
fn serve(dir: &Path, extra: &str) -> Serve {
    let cfg = dir.join("lethe.toml");
    std::fs::write(&cfg, extra).unwrap();
    std::fs::create_dir_all(dir.join("run")).unwrap();
    Serve::start(
        &dir.join("state"),
        &cfg,
        &dir.join("run"),
        &dir.join("serve.log"),
        &[],
    )
}

/// Entries appended by the daemon itself: `lethe user add` through the
/// admin socket (each is a `user.created`).
fn add_users(dir: &Path, names: &[&str]) {
    for name in names {
        let pw = dir.join(format!("{name}.pw"));
        // Strong, and without the user name (the policy refuses that).
        let n: u32 = name.bytes().map(u32::from).sum();
        std::fs::write(&pw, format!("Correct-Horse-Battery-Staple-{n}\n")).unwrap();
        let out = lethe(&dir.join("state"))
            .args([
                "user",
                "add",
                name,
                "--role",
                "operator",
                "--json",
                "--password-file",
            ])
            .arg(&pw)
            .arg("--runtime-dir")
            .arg(dir.join("run"))
            .output()
            .unwrap();
        assert!(out.status.success(), "user add {name}: {}", stderr(&out));
    }
}

/// `lethe audit verify --json [--checkpoint FILE]`: (exit code, summary).
fn verify(dir: &Path, checkpoint: Option<&Path>) -> (Option<i32>, Value) {
    let mut c = lethe(&dir.join("state"));
    c.args(["audit", "verify", "--json"]);
    if let Some(p) = checkpoint {
        c.arg("--checkpoint").arg(p);
    }
    let out = c.output().unwrap();
    (out.status.code(), summary(&out))
}

/// The note checked independently of the CLI: signed by the appliance's
/// key (`keys/appliance.pub`), for this log's origin. Returns its size.
fn check_signature(dir: &Path, note: &str) -> u64 {
    let pubkey = dir
        .join("state/keys")
        .join(lethe_cert::key::PUBLIC_KEY_FILE);
    let key = lethe_cert::key::load_public_key(pubkey.to_str().unwrap()).unwrap();
    let cp = lethe_audit::open_checkpoint(note.as_bytes(), &key, None)
        .unwrap_or_else(|e| panic!("a pushed checkpoint does not verify: {e}\n{note}"));
    assert!(cp.checkpoint.origin.starts_with("lethe/audit/"));
    cp.checkpoint.size
}

/// A TCP syslog collector: decodes RFC 6587 octet-counted frames.
struct TcpCollector {
    port: u16,
    messages: Arc<Mutex<Vec<String>>>,
}

impl TcpCollector {
    fn start() -> TcpCollector {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let m = Arc::clone(&messages);
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = Vec::new();
                let _ = s.read_to_end(&mut buf);
                // MSG-LEN SP SYSLOG-MSG, possibly several in a row.
                let mut rest = &buf[..];
                while let Some(sp) = rest.iter().position(|b| *b == b' ') {
                    let len: usize = std::str::from_utf8(&rest[..sp]).unwrap().parse().unwrap();
                    let msg = &rest[sp + 1..sp + 1 + len];
                    m.lock()
                        .unwrap()
                        .push(String::from_utf8(msg.to_vec()).unwrap());
                    rest = &rest[sp + 1 + len..];
                }
            }
        });
        TcpCollector { port, messages }
    }
}

/// The note inside a syslog message (`... lethe-audit-checkpoint-v1 SIZE
/// BASE64`), checking the RFC 5424 header on the way.
fn note_of_syslog(msg: &str) -> (u64, String) {
    use data_encoding::BASE64;
    let f: Vec<&str> = msg.split(' ').collect();
    assert_eq!(f.len(), 10, "{msg}");
    assert_eq!(f[0], "<110>1", "{msg}");
    assert!(f[1].ends_with('Z') && f[1].len() == 20, "{msg}");
    assert_eq!(
        &f[3..8],
        ["lethe", "-", "checkpoint", "-", "lethe-audit-checkpoint-v1"]
    );
    let note = String::from_utf8(BASE64.decode(f[9].as_bytes()).unwrap()).unwrap();
    (f[8].parse().unwrap(), note)
}

fn wait_until<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The daemon pushes each newest checkpoint to a webhook (JSON, the note in
/// `checkpoint`) and a TCP syslog collector (RFC 5424, octet counting), and
/// the last one at stop, after `daemon.stopped`. What a receiver kept
/// verifies under the appliance key, covers every entry, and after the
/// log's tail is cut off on the appliance (entries and their checkpoints),
/// `lethe audit verify --checkpoint` with the pushed copy names the first
/// missing entry.
///
/// safeguard: 164.312(b), rule:audit-integrity
#[test]
fn pushed_checkpoints_verify_and_catch_a_truncated_tail() {
    if let Some(why) = unavailable() {
        skip!("{why}");
    }
    let tmp = daemon_tempdir("lethe-push-");
    let dir = tmp.path();
    let hook = Hook::start();
    let tcp = TcpCollector::start();
    let mut s = serve(
        dir,
        &format!(
            r#"[[alerts.webhook]]
name = "ops"
url = "http://127.0.0.1:{hook}/alerts"

[audit.push]
url = "http://127.0.0.1:{hook}/checkpoints"
syslog = "tcp://127.0.0.1:{tcp}"
every = "1s"
"#,
            hook = hook.port,
            tcp = tcp.port
        ),
    );
    // At start-up: the checkpoint sealing daemon.started goes out at once.
    let first = hook.wait_for(20, "first checkpoint", |v| v["type"] == "audit_checkpoint");
    assert_eq!(first["v"], 1);
    assert!(
        first["host"].as_str().is_some_and(|h| !h.is_empty()),
        "{first}"
    );
    assert!(first["pushed_at"].as_str().unwrap().ends_with('Z'));
    let note = first["checkpoint"].as_str().unwrap();
    assert_eq!(
        check_signature(dir, note),
        first["tree_size"].as_u64().unwrap()
    );
    assert_eq!(first["origin"].as_str(), note.lines().next());
    // Only the note, the host and the time: no entry, no user, nothing else.
    let mut keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "checkpoint",
            "host",
            "origin",
            "pushed_at",
            "tree_size",
            "type",
            "v"
        ]
    );

    // Entries made by the daemon: a newer checkpoint follows within `every`.
    add_users(dir, &["ann", "bob", "cyd"]);
    let before_stop = verify(dir, None).1["entries"].as_u64().unwrap();
    let grown = hook.wait_for(20, "a checkpoint covering the new users", |v| {
        v["type"] == "audit_checkpoint" && v["tree_size"].as_u64() >= Some(before_stop)
    });
    check_signature(dir, grown["checkpoint"].as_str().unwrap());

    // Stop: the checkpoint sealing daemon.stopped is pushed before exit.
    assert!(s.terminate().success(), "{}", s.log());
    let (code, log) = verify(dir, None);
    assert_eq!(
        (code, log["status"].as_str()),
        (Some(0), Some("verified")),
        "{log}"
    );
    let entries = log["entries"].as_u64().unwrap();
    assert!(entries > before_stop, "{log}");
    let last = hook.wait_for(5, "the checkpoint sealing daemon.stopped", |v| {
        v["type"] == "audit_checkpoint" && v["tree_size"].as_u64() == Some(entries)
    });
    let last_note = last["checkpoint"].as_str().unwrap().to_string();
    assert_eq!(check_signature(dir, &last_note), entries);

    // The syslog collector got the same checkpoints, as base64 in RFC 5424.
    let from_syslog: Vec<(u64, String)> = tcp
        .messages
        .lock()
        .unwrap()
        .iter()
        .map(|m| note_of_syslog(m))
        .collect();
    assert!(from_syslog.len() >= 2, "{from_syslog:?}");
    for (size, note) in &from_syslog {
        assert_eq!(check_signature(dir, note), *size);
    }
    assert_eq!(from_syslog.last().unwrap(), &(entries, last_note.clone()));
    // Only a newer checkpoint is pushed again: never the same size twice.
    let sizes: Vec<u64> = from_syslog.iter().map(|(s, _)| *s).collect();
    assert!(sizes.windows(2).all(|w| w[0] < w[1]), "{sizes:?}");

    // The status file records each channel's last success.
    let status: Value =
        serde_json::from_slice(&std::fs::read(dir.join("state/audit-push.json")).unwrap()).unwrap();
    for c in status["channels"].as_array().unwrap() {
        assert_eq!(c["pushed_size"].as_u64(), Some(entries), "{status}");
        assert_eq!(c["failures"], 0, "{status}");
    }

    // A receiver saves the webhook's note as a file (as `jq -j .checkpoint`
    // would) and the syslog one (as `base64 -d` would): both anchor the log.
    let saved_hook: PathBuf = dir.join("pushed-webhook.txt");
    std::fs::write(&saved_hook, &last_note).unwrap();
    let saved_syslog: PathBuf = dir.join("pushed-syslog.txt");
    std::fs::write(&saved_syslog, &from_syslog.last().unwrap().1).unwrap();
    for saved in [&saved_hook, &saved_syslog] {
        let (code, j) = verify(dir, Some(saved));
        assert_eq!(code, Some(0), "{j}");
        assert_eq!(
            (j["anchored"].as_bool(), j["external_size"].as_u64()),
            (Some(true), Some(entries))
        );
    }

    // Offline, someone cuts off the newest entries and their checkpoints.
    let cut = entries - 3;
    {
        let c = rusqlite::Connection::open(dir.join("state").join(lethe_audit::DB_FILE)).unwrap();
        c.execute_batch(&format!(
            "DROP TRIGGER entries_no_update; DROP TRIGGER entries_no_delete;
             DROP TRIGGER checkpoints_no_delete;
             DELETE FROM entries WHERE idx >= {cut}; DELETE FROM checkpoints WHERE size > {cut};"
        ))
        .unwrap();
    }
    // From inside, the log looks whole...
    let (code, j) = verify(dir, None);
    assert_eq!(
        (code, j["status"].as_str()),
        (Some(0), Some("verified")),
        "{j}"
    );
    assert_eq!(j["anchored"], false);
    // ...the pushed copy names the first missing entry.
    for saved in [&saved_hook, &saved_syslog] {
        let (code, j) = verify(dir, Some(saved));
        assert_eq!(code, Some(2), "{j}");
        assert_eq!(j["status"], "tampered");
        assert_eq!(j["first_bad_entry"].as_u64(), Some(cut), "{j}");
        assert!(j["reason"].as_str().unwrap().contains("truncated"), "{j}");
    }
}

/// A webhook that keeps failing is retried with backoff and raises
/// `audit_push_failed` once, on the alert channel, with the target and the
/// size it could not push; the attempts are recorded in `audit-push.json`;
/// meanwhile a UDP syslog collector keeps getting checkpoints.
///
/// safeguard: 164.312(b)
#[test]
fn a_failing_webhook_raises_an_alert_while_udp_syslog_keeps_receiving() {
    if let Some(why) = unavailable() {
        skip!("{why}");
    }
    let tmp = daemon_tempdir("lethe-pushfail-");
    let dir = tmp.path();
    let alerts = Hook::start();
    let down = Hook::answering("503 Service Unavailable");
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut s = serve(
        dir,
        &format!(
            r#"[[alerts.webhook]]
name = "ops"
url = "http://127.0.0.1:{}/alerts"

[audit.push]
name = "siem"
url = "http://127.0.0.1:{}/checkpoints"
syslog = "udp://127.0.0.1:{}"
every = "1s"
retry_first = "1s"
retry_max_delay = "2s"
alert_after = 2
"#,
            alerts.port,
            down.port,
            udp.local_addr().unwrap().port()
        ),
    );
    let mut buf = [0u8; 2048];
    let n = udp.recv(&mut buf).expect("a checkpoint over UDP");
    let (size, note) = note_of_syslog(std::str::from_utf8(&buf[..n]).unwrap());
    assert_eq!(check_signature(dir, &note), size);

    let alert = alerts.wait_for(30, "audit_push_failed", |v| {
        v["type"] == "audit_push_failed"
    });
    assert_eq!(alert["target"], "siem", "{alert}");
    assert_eq!(alert["failures"], 2, "{alert}");
    assert_eq!(alert["severity"], "critical");
    assert!(alert["tree_size"].as_u64().unwrap() >= 1);
    // The failing receiver was tried with the checkpoint each time.
    let tried = wait_until(20, "three attempts", || {
        let b = down.bodies.lock().unwrap();
        (b.len() >= 3).then(|| b.clone())
    });
    for b in &tried {
        check_signature(dir, b["checkpoint"].as_str().unwrap());
    }
    let status = wait_until(10, "the failures in audit-push.json", || {
        let v: Value =
            serde_json::from_slice(&std::fs::read(dir.join("state/audit-push.json")).ok()?).ok()?;
        let hook = v["channels"]
            .as_array()?
            .iter()
            .find(|c| c["channel"] == "webhook")?
            .clone();
        (hook["failures"].as_u64()? >= 2).then_some(v)
    });
    let hook = status["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == "webhook")
        .unwrap();
    assert_eq!(hook["last_result"], "HTTP 503", "{status}");
    assert_eq!(hook["pushed_size"], Value::Null, "{status}");
    let sys = status["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == "syslog")
        .unwrap();
    assert_eq!(sys["failures"], 0, "{status}");
    assert!(sys["pushed_size"].as_u64().is_some(), "{status}");
    // One alert per streak, however many failures.
    std::thread::sleep(Duration::from_secs(3));
    let n = alerts
        .bodies
        .lock()
        .unwrap()
        .iter()
        .filter(|v| v["type"] == "audit_push_failed")
        .count();
    assert_eq!(n, 1);
    assert!(s.terminate().success(), "{}", s.log());
}
