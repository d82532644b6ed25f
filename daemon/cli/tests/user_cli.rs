//! `lethe user`: user accounts through the running daemon's admin socket.
//!
//! - without a daemon: command-line mistakes exit 64, a missing socket
//!   says how to start the daemon (exit 1), an empty password file and a
//!   password asked for without a terminal are refused before the daemon
//!   is asked, a user who is not root is told so; under `--json` the last
//!   stdout line is always one JSON object;
//! - with `lethe serve` running (root, and the front's system user
//!   `lethe`, which `hw-tests/setup.sh` creates): add, list, disable and
//!   enable, the emergency grant, a weak password refused with the
//!   policy's reason, the last admin kept, console recovery, a new second
//!   factor, a new role, remove.

mod common;
mod common_serve;

use common::*;
use common_serve::*;
use lethe_hw_tests::skip;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// `lethe user ARGS --runtime-dir RUNTIME`, stdin empty.
fn lethe_user(runtime: &Path, args: &[&str]) -> Output {
    user_cmd(runtime, args).output().unwrap()
}

fn user_cmd(runtime: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lethe"));
    c.arg("user")
        .args(args)
        .arg("--runtime-dir")
        .arg(runtime)
        .env_remove("LETHE_RUNTIME_DIR")
        .stdin(Stdio::null());
    c
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The JSON error ending of a failed command: its exit code matches the
/// process's, and its `error` has a code and a message.
fn json_error(out: &Output) -> Value {
    let v = summary(out);
    assert_eq!(
        Some(v["exit_code"].as_i64().unwrap() as i32),
        out.status.code(),
        "{v}"
    );
    assert!(v["error"]["code"].as_str().is_some(), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    v
}

#[test]
fn command_line_mistakes_exit_64_and_end_in_json_under_json() {
    let t = tempfile::tempdir().unwrap();
    let long = "a".repeat(200);
    let cases: &[&[&str]] = &[
        &[],
        &["frobnicate"],
        &["add", "alice"],
        &["add", "alice", "--role", "root"],
        &["add", "--role", "admin"],
        &["role", "bob"],
        &["role", "bob", "superuser"],
        &["emergency", "bob", "maybe"],
        &["disable"],
        &["list", "--verbose"],
        &["disable", long.as_str()],
    ];
    for args in cases {
        let out = lethe_user(t.path(), args);
        assert_eq!(
            out.status.code(),
            Some(64),
            "lethe user {args:?}: {}",
            stderr(&out)
        );
        assert!(stdout(&out).is_empty(), "{args:?}: {}", stdout(&out));
        let mut with_json = args.to_vec();
        with_json.push("--json");
        let out = lethe_user(t.path(), &with_json);
        assert_eq!(out.status.code(), Some(64), "{with_json:?}");
        let v = summary(&out);
        assert_eq!(v["result"], "usage_error", "{with_json:?}: {v}");
        assert_eq!(v["exit_code"], 64, "{with_json:?}: {v}");
    }
    // Help is not a mistake.
    let out = lethe_user(t.path(), &["--help"]);
    assert_eq!(out.status.code(), Some(0));
    for sub in ["add", "list", "passwd", "recover", "reset-2fa", "emergency"] {
        assert!(stdout(&out).contains(sub), "{sub}: {}", stdout(&out));
    }
}

#[test]
fn no_daemon_says_how_to_start_it() {
    let t = tempfile::tempdir().unwrap();
    let run = t.path().join("run");
    let want = format!(
        "lethe serve is not running (no {}): start it with systemctl start lethe",
        run.join("admin.sock").display()
    );
    for args in [
        &["list"][..],
        &["disable", "bob"],
        &["add", "bob", "--role", "operator"],
        &["recover", "bob"],
        &["emergency", "bob", "on"],
    ] {
        let out = lethe_user(&run, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr(&out).contains(&want), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).is_empty(), "{args:?}: {}", stdout(&out));
        // recover's banner is shown only once the daemon answers.
        assert!(!stderr(&out).contains("BREAK-GLASS"), "{}", stderr(&out));

        let mut with_json = args.to_vec();
        with_json.push("--json");
        let out = lethe_user(&run, &with_json);
        assert_eq!(out.status.code(), Some(1));
        let v = json_error(&out);
        assert_eq!(v["result"], "error", "{v}");
        assert_eq!(v["error"]["code"], "not_running", "{v}");
        assert_eq!(v["error"]["message"], want.as_str(), "{v}");
        assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));
    }
    // The runtime directory also comes from LETHE_RUNTIME_DIR.
    let out = Command::new(env!("CARGO_BIN_EXE_lethe"))
        .args(["user", "list"])
        .env("LETHE_RUNTIME_DIR", &run)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(&want), "{}", stderr(&out));
}

#[test]
fn an_empty_password_file_is_refused_before_the_daemon_is_asked() {
    let t = tempfile::tempdir().unwrap();
    let run = t.path().join("run");
    let empty = t.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let e = empty.to_str().unwrap();
    for args in [
        &["add", "alice", "--role", "admin", "--password-file", e][..],
        &["passwd", "alice", "--password-file", e],
        &["add", "alice", "--role", "admin", "--password-file", "-"],
        &["passwd", "alice", "--password-file", "-"],
    ] {
        let out = lethe_user(&run, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains("is empty"), "{args:?}: {err}");
        assert!(!err.contains("not running"), "{args:?}: {err}");

        let mut with_json = args.to_vec();
        with_json.push("--json");
        let out = lethe_user(&run, &with_json);
        let v = json_error(&out);
        assert_eq!(v["error"]["code"], "bad_input", "{v}");
        assert_eq!(v["result"], "refused", "{v}");
        assert_eq!(v["exit_code"], 1, "{v}");
    }
    // A file that cannot be read is named.
    let missing = t.path().join("missing");
    let out = lethe_user(
        &run,
        &[
            "add",
            "alice",
            "--role",
            "admin",
            "--password-file",
            missing.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(missing.to_str().unwrap()),
        "{}",
        stderr(&out)
    );
}

#[test]
fn passwd_without_a_file_needs_a_terminal() {
    let t = tempfile::tempdir().unwrap();
    let out = lethe_user(&t.path().join("run"), &["passwd", "alice", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json_error(&out);
    let m = v["error"]["message"].as_str().unwrap();
    assert!(m.contains("--password-file"), "{m}");
    assert!(m.contains("terminal"), "{m}");
    assert!(!m.contains("not running"), "{m}");
}

#[test]
fn a_user_who_is_not_root_is_told_so() {
    let t = tempfile::Builder::new()
        .prefix("lethe-user-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // A socket file is there (the daemon's is 0600 root).
    let sock = t.path().join("admin.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600)).unwrap();
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        .unwrap();
    let out = if root {
        // Run it as nobody.
        let o = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_lethe"))
            .args(["user", "list", "--json", "--runtime-dir"])
            .arg(t.path())
            .env_remove("LETHE_RUNTIME_DIR")
            .output();
        match o {
            Ok(o) if !stderr(&o).contains("setpriv:") => o,
            _ => skip!("cannot run the test as another user (setpriv, util-linux)"),
        }
    } else {
        lethe_user(t.path(), &["list", "--json"])
    };
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = json_error(&out);
    assert_eq!(v["error"]["code"], "not_root", "{v}");
    let m = v["error"]["message"].as_str().unwrap();
    assert!(m.contains("only root may manage users"), "{m}");
    assert!(m.contains(sock.to_str().unwrap()), "{m}");
}

// ---- with a running daemon ----

/// The value of `secret=` in an `otpauth://` URI.
fn totp_secret(uri: &str) -> String {
    let q = uri.split_once('?').expect("a query").1;
    q.split('&')
        .find_map(|kv| kv.strip_prefix("secret="))
        .expect("a secret= parameter")
        .to_owned()
}

/// The lines after `recovery codes:`.
fn recovery_codes(out: &str) -> Vec<String> {
    out.lines()
        .skip_while(|l| *l != "recovery codes:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.trim().to_owned())
        .collect()
}

fn uri_line(out: &str) -> String {
    let uris: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("otpauth://"))
        .collect();
    assert_eq!(uris.len(), 1, "{out}");
    uris[0].to_owned()
}

fn find_user(list: &Value, name: &str) -> Option<Value> {
    list["users"]
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["name"] == name)
        .cloned()
}

/// Error codes a refusal by the worker's rules may carry.
const REFUSALS: [&str; 5] = [
    "refused",
    "forbidden",
    "conflict",
    "not_found",
    "bad_request",
];

#[test]
fn users_end_to_end_through_the_running_daemon() {
    if let Some(why) = unavailable() {
        skip!("{why}");
    }
    let dir = daemon_tempdir("lethe-user-");
    let config = dir.path().join("lethe.toml");
    std::fs::write(
        &config,
        "[site]\noperator_id = \"tech-7\"\noperator_name = \"Test Technician\"\n",
    )
    .unwrap();
    let serve = Serve::start(
        &dir.path().join("state"),
        &config,
        &dir.path().join("run"),
        &dir.path().join("serve.log"),
        &[],
    );
    let rt: PathBuf = serve.runtime.clone();
    let run = |args: &[&str]| lethe_user(&rt, args);
    let ok = |args: &[&str]| -> Output {
        let o = run(args);
        assert_eq!(
            o.status.code(),
            Some(0),
            "lethe user {args:?}:\n{}{}\ndaemon log:\n{}",
            stdout(&o),
            stderr(&o),
            serve.log()
        );
        o
    };
    let list = || summary(&ok(&["list", "--json"]));
    let secret_file = |name: &str, text: &str| -> String {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let strong = secret_file("strong", "Vq9!tLm#4zRw-Xp7 kettle\n");
    let strong2 = secret_file("strong2", "Hj3$uQ8&nWc5-Ze2 saddle\n");
    let weak = secret_file("weak", "short\n");

    // alice, the first admin, with her own password: the URI on its own
    // stdout line, the recovery codes, no QR code (stdout is not a
    // terminal) and no one-time password.
    let o = ok(&[
        "add",
        "alice",
        "--role",
        "admin",
        "--password-file",
        &strong,
    ]);
    let out = stdout(&o);
    let alice_uri = uri_line(&out);
    assert!(alice_uri.starts_with("otpauth://totp/"), "{alice_uri}");
    let alice_secret = totp_secret(&alice_uri);
    assert!(alice_secret.len() >= 16, "{alice_uri}");
    assert!(
        alice_secret
            .chars()
            .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c)),
        "not base32: {alice_secret}"
    );
    assert!(alice_uri.contains("alice"), "{alice_uri}");
    let codes = recovery_codes(&out);
    assert_eq!(codes.len(), 10, "{out}");
    assert!(codes.iter().all(|c| !c.is_empty()));
    assert!(!out.contains("one-time password"), "{out}");
    assert!(
        !out.contains(['█', '▀', '▄']),
        "a QR code on a pipe:\n{out}"
    );
    let err = stderr(&o);
    assert!(err.contains("SHOWN ONCE"), "{err}");
    assert!(err.contains("Added user alice (role admin)"), "{err}");

    // bob, an operator, without a password: a one-time password (JSON).
    let o = ok(&["add", "bob", "--role", "operator", "--json"]);
    let bob = summary(&o);
    assert_eq!(bob["user"]["name"], "bob", "{bob}");
    assert_eq!(bob["user"]["role"], "operator", "{bob}");
    assert_eq!(bob["user"]["emergency"], false, "{bob}");
    assert_eq!(bob["user"]["must_change_password"], true, "{bob}");
    let otp = bob["one_time_password"]
        .as_str()
        .expect("a one-time password");
    assert!(otp.len() >= 16, "{bob}");
    assert_eq!(bob["recovery_codes"].as_array().unwrap().len(), 10, "{bob}");
    let bob_uri = bob["otpauth_uri"].as_str().unwrap();
    assert!(bob_uri.starts_with("otpauth://totp/"), "{bob}");
    assert_ne!(totp_secret(bob_uri), alice_secret);
    assert_eq!(stdout(&o).lines().count(), 1, "{}", stdout(&o));

    // The same name twice is refused.
    let o = run(&["add", "bob", "--role", "auditor", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v = json_error(&o);
    assert_eq!(v["result"], "refused", "{v}");
    assert!(
        REFUSALS.contains(&v["error"]["code"].as_str().unwrap()),
        "{v}"
    );

    // The list, as a table and as JSON.
    let o = ok(&["list"]);
    let table = stdout(&o);
    let header = table.lines().next().unwrap();
    for col in [
        "NAME",
        "ROLE",
        "EMERGENCY",
        "DISABLED",
        "LOCKED UNTIL",
        "SESSIONS",
    ] {
        assert!(header.contains(col), "{table}");
    }
    let row = |name: &str| -> Vec<String> {
        table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} in\n{table}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(row("alice")[1..4], ["admin", "no", "no"], "{table}");
    assert_eq!(row("bob")[1..4], ["operator", "no", "no"], "{table}");
    let l = list();
    assert_eq!(l["users"].as_array().unwrap().len(), 2, "{l}");
    let a = find_user(&l, "alice").unwrap();
    assert_eq!(a["role"], "admin");
    assert_eq!(a["must_change_password"], false, "{a}");
    assert_eq!(a["recovery_codes_left"], 10, "{a}");

    // Disable and enable.
    let v = summary(&ok(&["disable", "bob", "--json"]));
    assert_eq!(v["user"]["disabled"], true, "{v}");
    assert_eq!(find_user(&list(), "bob").unwrap()["disabled"], true);
    let o = ok(&["enable", "bob"]);
    assert_eq!(stdout(&o).trim(), "bob is enabled.");
    assert_eq!(find_user(&list(), "bob").unwrap()["disabled"], false);

    // The emergency grant, and an unlock of a user who is not locked.
    let v = summary(&ok(&["emergency", "bob", "on", "--json"]));
    assert_eq!(v["user"]["emergency"], true, "{v}");
    assert_eq!(find_user(&list(), "bob").unwrap()["emergency"], true);
    let v = summary(&ok(&["unlock", "bob", "--json"]));
    assert!(v["user"]["locked_until"].is_null(), "{v}");

    // A weak password is refused with the policy's reason; a strong one
    // is taken.
    let o = run(&["passwd", "bob", "--password-file", &weak]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("5 characters") && err.contains("at least"),
        "no policy reason: {err}"
    );
    let o = run(&["passwd", "bob", "--password-file", &weak, "--json"]);
    let v = json_error(&o);
    assert_eq!(v["result"], "refused", "{v}");
    assert!(
        REFUSALS.contains(&v["error"]["code"].as_str().unwrap()),
        "{v}"
    );
    let o = ok(&["passwd", "bob", "--password-file", &strong2]);
    assert!(
        stdout(&o).contains("The password of bob was changed; their sessions ended."),
        "{}",
        stdout(&o)
    );

    // The last enabled admin stays: not removed, not demoted, not disabled.
    for args in [
        &["remove", "alice", "--json"][..],
        &["role", "alice", "operator", "--json"],
        &["disable", "alice", "--json"],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stdout(&o));
        let v = json_error(&o);
        assert_eq!(v["result"], "refused", "{args:?}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains("admin"),
            "{args:?}: {v}"
        );
    }
    let a = find_user(&list(), "alice").unwrap();
    assert_eq!(a["role"], "admin", "{a}");
    assert_eq!(a["disabled"], false, "{a}");

    // Break-glass at the console, on a disabled bob: after a loud banner,
    // enabled again with a one-time password and a new second factor. He
    // keeps his role: alice is an enabled admin (with none, he would be
    // made one).
    ok(&["disable", "bob"]);
    let o = ok(&["recover", "bob"]);
    let err = stderr(&o);
    assert!(err.contains("BREAK-GLASS"), "{err}");
    assert!(
        err.contains("audit log") && err.contains("ALERTED"),
        "{err}"
    );
    let out = stdout(&o);
    let otp_line = out
        .lines()
        .find(|l| l.starts_with("one-time password: "))
        .unwrap_or_else(|| panic!("no one-time password:\n{out}"));
    assert!(
        otp_line.len() > "one-time password: ".len() + 10,
        "{otp_line}"
    );
    let recovered_uri = uri_line(&out);
    assert!(recovered_uri.starts_with("otpauth://totp/"));
    assert_ne!(totp_secret(&recovered_uri), totp_secret(bob_uri));
    assert_eq!(recovery_codes(&out).len(), 10, "{out}");
    let b = find_user(&list(), "bob").unwrap();
    assert_eq!(b["disabled"], false, "{b}");
    assert_eq!(b["role"], "operator", "{b}");
    assert_eq!(b["must_change_password"], true, "{b}");
    assert!(b["locked_until"].is_null(), "{b}");

    // A new second factor: a new secret, new codes.
    let o = ok(&["reset-2fa", "bob"]);
    let out = stdout(&o);
    let reset_uri = uri_line(&out);
    assert_ne!(totp_secret(&reset_uri), totp_secret(&recovered_uri));
    assert_eq!(recovery_codes(&out).len(), 10, "{out}");
    assert!(!out.contains("one-time password"), "{out}");

    // With bob an admin too, alice may go.
    let v = summary(&ok(&["role", "bob", "admin", "--json"]));
    assert_eq!(v["user"]["role"], "admin", "{v}");
    let o = ok(&["remove", "alice"]);
    assert!(stdout(&o).contains("alice was removed"), "{}", stdout(&o));
    let l = list();
    assert!(find_user(&l, "alice").is_none(), "{l}");
    assert_eq!(l["users"].as_array().unwrap().len(), 1, "{l}");

    // A user who does not exist.
    let o = run(&["disable", "zed", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v = json_error(&o);
    assert_eq!(v["result"], "refused", "{v}");
    assert_eq!(v["error"]["code"], "not_found", "{v}");
    drop(serve);
}
