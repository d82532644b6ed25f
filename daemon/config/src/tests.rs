//! Parsing and checking, error by error.

use crate::*;
use lethe_core::inventory::Transport;
use lethe_core::plan::VerifyMode;
use proptest::prelude::*;
use std::time::Duration;

fn errors(text: &str) -> Vec<Diagnostic> {
    match parse(text) {
        Ok(l) => panic!("accepted: {:?}", l.warnings),
        Err(ConfigError::Invalid { diagnostics, .. }) => diagnostics
            .into_iter()
            .filter(|d| d.level == DiagnosticLevel::Error)
            .collect(),
        Err(e) => panic!("{e}"),
    }
}

/// The single error of `text`, as (line, column, message, help).
fn error(text: &str) -> (usize, usize, String, Option<String>) {
    let e = errors(text);
    assert_eq!(e.len(), 1, "{e:#?}");
    let d = &e[0];
    (d.line, d.column, d.message.clone(), d.help.clone())
}

fn ok(text: &str) -> Loaded {
    match parse(text) {
        Ok(l) => l,
        Err(e) => panic!("{e}"),
    }
}

const BAY: &str = r#"
[[bay]]
name = "bay-1"
match = ["/dev/disk/by-path/pci-0000:00:17.0-ata-1"]
led = 1
policy = "ask"
"#;

#[test]
fn an_empty_file_is_all_defaults() {
    let c = ok("").config;
    assert_eq!(c.server.listen.to_string(), "0.0.0.0:8443");
    assert!(c.bays.is_empty() && c.backups.is_empty());
    assert_eq!(c.session.idle_timeout, Duration::from_secs(600));
    assert_eq!(c.session.absolute_lifetime, Duration::from_secs(8 * 3600));
    assert_eq!(c.auth.argon2.memory_kib, 65_536);
    assert_eq!(c.auth.password.min_length, 12);
    assert!(c.tls.is_none() && c.controller.is_none() && c.audit.push.is_none());
    assert_eq!(c.alerts.retry, lethe_alert::RetryPolicy::default());
    assert!(c.site.require_operator);
    assert_eq!(c.breakglass.wait, Duration::from_secs(900));
}

#[test]
fn the_issue_shape_parses() {
    let l = ok(r#"
[server]
listen = "0.0.0.0:8443"          # HTTPS
[[bay]]
name = "bay-1"
match = ["/dev/disk/by-path/pci-0000:00:17.0-ata-1"]   # globs over by-path/by-id names
led = 1
policy = "auto"                  # or "ask"
level = "clear"                  # or "purge"
verify = "full"
[site]
operator_id = "tech-1"
"#);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let b = &l.config.bays[0];
    assert_eq!(b.policy, Policy::Auto);
    assert_eq!(b.led, Some(1));
    assert_eq!(b.wipe.level, Level::Clear);
    assert_eq!(b.wipe.verify, VerifyMode::Full);
    assert_eq!(b.wipe.operator.as_ref().unwrap().id, "tech-1");
}

#[test]
fn unknown_keys_and_values_name_the_nearest_valid_one() {
    let (line, col, msg, help) = error(&format!("{BAY}levle = \"purge\"\n"));
    assert_eq!((line, col), (7, 1));
    assert_eq!(msg, "unknown key `levle`");
    assert_eq!(help.as_deref(), Some("did you mean `level`?"));

    let (line, _, msg, help) = error(&format!("{BAY}level = \"purg\"\n"));
    assert_eq!(line, 7);
    assert_eq!(msg, "unknown value `purg`");
    assert_eq!(help.as_deref(), Some("did you mean `purge`?"));

    let (line, col, msg, help) = error("[sesion]\nidle_timeout = \"5m\"\n");
    assert_eq!((line, col), (1, 2));
    assert_eq!(msg, "unknown key `sesion`");
    assert_eq!(help.as_deref(), Some("did you mean `session`?"));

    let (_, _, _, help) = error("[session]\nidle_timout = \"5m\"\n");
    assert_eq!(help.as_deref(), Some("did you mean `idle_timeout`?"));
    let (_, _, _, help) = error("[alerts.smtp]\nhots = \"x\"\n");
    assert_eq!(help.as_deref(), Some("did you mean `host`?"));
}

#[test]
fn values_are_checked_where_they_stand() {
    let (line, col, msg, _) = error("[session]\n\nidle_timeout = \"ten minutes\"\n");
    assert_eq!((line, col), (3, 16));
    assert!(msg.starts_with("invalid duration \"ten minutes\""), "{msg}");

    let (_, _, msg, _) = error("[session]\nidle_timeout = 5\n");
    assert!(
        msg.starts_with("a duration needs a unit: write \"5s\""),
        "{msg}"
    );
    let (_, _, msg, _) = error("[session]\nidle_timeout = true\n");
    assert!(msg.contains("a duration such as"), "{msg}");

    let (line, _, msg, _) = error("[server]\nlisten = \"localhost\"\n");
    assert_eq!(line, 2);
    assert!(msg.contains("address"), "{msg}");

    let (line, _, msg, _) = error(&BAY.replace("\"bay-1\"", "\"bay 1\""));
    assert_eq!(line, 3);
    assert!(msg.contains("not a valid name"), "{msg}");

    let (line, _, msg, _) = error(&format!("{BAY}pattern = \"stripes\"\n"));
    assert_eq!(line, 7);
    assert!(msg.contains("unknown pattern"), "{msg}");

    let (_, _, msg, _) = error(&format!("{BAY}verify = \"sample:200\"\n"));
    assert!(msg.contains("invalid verify mode"), "{msg}");

    let (_, _, msg, _) = error("[tls]\ncert = \"/c.pem\"\n");
    assert!(msg.contains("both cert and key"), "{msg}");

    let (line, _, msg, _) = error("[[bay]]\nname = \"b\"\npolicy = \"ask\"\n");
    assert_eq!(line, 1);
    assert!(msg.contains("missing field `match`"), "{msg}");

    let (line, col, msg, _) = error("[server\nlisten = 1\n");
    assert_eq!((line, col), (1, 8));
    assert!(!msg.is_empty());
}

#[test]
fn bays_cross_checks() {
    let dup = format!("{BAY}{BAY}");
    let e = errors(&dup);
    assert_eq!(e.len(), 2, "{e:#?}");
    assert_eq!(e[0].line, 9);
    assert_eq!(e[0].message, "bay name `bay-1` is used twice");
    assert_eq!(e[0].help.as_deref(), Some("first used on line 3"));
    assert_eq!(e[1].line, 11);
    assert_eq!(e[1].message, "LED 1 is already bay `bay-1`'s");

    let (_, _, msg, _) = error(&BAY.replace("led = 1", "led = 31"));
    assert!(msg.contains("LED 31 does not exist"), "{msg}");

    let (line, col, msg, help) = error(&BAY.replace(
        "[\"/dev/disk/by-path/pci-0000:00:17.0-ata-1\"]",
        "[\"/dev/disk/by-path/x\", \"/dev/sdb\"]",
    ));
    assert_eq!((line, col), (4, 33));
    assert!(msg.contains("\"/dev/sdb\""), "{msg}");
    assert!(help.unwrap().contains("/dev/disk/by-path/GLOB"));

    let (_, _, msg, _) =
        error(&BAY.replace("[\"/dev/disk/by-path/pci-0000:00:17.0-ata-1\"]", "[]"));
    assert_eq!(msg, "bay `bay-1` has no match entry");

    let (_, _, msg, _) = error(&format!("{BAY}passes = 0\n"));
    assert_eq!(msg, "passes must be 1 to 35");
}

#[test]
fn auto_bays_verify_and_have_an_operator() {
    let auto = BAY.replace("\"ask\"", "\"auto\"");
    let (line, _, msg, help) = error(&auto);
    assert_eq!(line, 6);
    assert!(msg.contains("needs an operator of record"), "{msg}");
    assert!(help.unwrap().contains("require_operator = false"));

    let with_op = format!("{auto}operator_id = \"night-shift\"\n");
    let b = &ok(&with_op).config.bays[0];
    assert_eq!(b.wipe.operator.as_ref().unwrap().id, "night-shift");

    let site_op = format!("[site]\noperator_id = \"t1\"\nlocation = \"Room 12\"\n{auto}");
    let b = &ok(&site_op).config.bays[0];
    assert_eq!(b.wipe.operator.as_ref().unwrap().id, "t1");
    assert_eq!(b.wipe.location.as_deref(), Some("Room 12"));

    let unrequired = format!("[site]\nrequire_operator = false\n{auto}");
    assert!(ok(&unrequired).config.bays[0].wipe.operator.is_none());

    let (line, _, msg, _) = error(&format!("{with_op}verify = \"off\"\n"));
    assert_eq!(line, 8);
    assert!(msg.contains("must verify"), "{msg}");
    // An ask bay may default to off: the operator chooses at start.
    ok(&format!("{BAY}verify = \"off\"\n"));

    let (_, _, msg, _) = error(&format!("{with_op}operator_name = \"\\u0007bell\"\n"));
    assert!(msg.contains("control characters"), "{msg}");
    let (_, _, msg, _) = error(&format!("{BAY}operator_name = \"Sam\"\n"));
    assert_eq!(msg, "operator_name without operator_id");
}

#[test]
fn overlapping_bays_are_noted() {
    let text = format!(
        "{BAY}\n[[bay]]\nname = \"all-ata\"\nmatch = [\"/dev/disk/by-path/*-ata-*\", \"transport:usb\"]\npolicy = \"ask\"\n\n[[bay]]\nname = \"usb\"\nmatch = [\"transport:usb\"]\npolicy = \"ask\"\n"
    );
    let l = ok(&text);
    let w: Vec<_> = l
        .warnings
        .iter()
        .map(|w| (w.line, w.message.as_str()))
        .collect();
    assert_eq!(
        w,
        vec![
            (10, "match entry \"/dev/disk/by-path/*-ata-*\" of bay `all-ata` overlaps \"/dev/disk/by-path/pci-0000:00:17.0-ata-1\" of bay `bay-1`"),
            (15, "match entry \"transport:usb\" of bay `usb` overlaps \"transport:usb\" of bay `all-ata`"),
        ]
    );
    assert_eq!(
        l.warnings[0].help.as_deref(),
        Some("a drive matching both goes to `bay-1`, the first in the file")
    );
}

#[test]
fn the_idle_timeout_is_clamped_to_15_minutes() {
    let l = ok("[session]\nidle_timeout = \"30m\"\n");
    assert_eq!(l.config.session.idle_timeout, Duration::from_secs(900));
    assert_eq!(l.warnings.len(), 1);
    assert_eq!(l.warnings[0].line, 2);
    assert!(l.warnings[0].message.contains("15m is used"));

    let l = ok("[session]\nidle_timeout = \"30s\"\n");
    assert_eq!(l.config.session.idle_timeout, Duration::from_secs(30));
    assert!(l.warnings.is_empty());

    let (_, _, msg, _) = error("[session]\nidle_timeout = \"0s\"\n");
    assert_eq!(msg, "idle_timeout must be longer than zero");
    let (_, _, msg, _) = error("[session]\nidle_timeout = \"10m\"\nabsolute_lifetime = \"5m\"\n");
    assert_eq!(msg, "absolute_lifetime is shorter than idle_timeout");
    let (_, _, msg, _) = error("[session]\nabsolute_lifetime = \"2d\"\n");
    assert_eq!(msg, "absolute_lifetime may be at most 1day");
}

#[test]
fn auth_parameters() {
    let (_, _, msg, _) = error("[auth.argon2]\nparallelism = 0\n");
    assert_eq!(msg, "parallelism must be 1 to 16");
    let (_, _, msg, _) = error("[auth.password]\nmin_length = 6\n");
    assert!(msg.starts_with("min_length must be 8 to 128"));
    let (_, _, msg, _) = error("[auth.password]\nmin_score = 5\n");
    assert!(msg.contains("0 to 4"));
    let l = ok("[auth.argon2]\nmemory_kib = 8192\niterations = 1\n");
    assert_eq!(l.config.auth.argon2.memory_kib, 8192);
    assert!(l.warnings[0].message.contains("OWASP"));
}

const JOB: &str = r#"
[[backup]]
name = "records"
repo = "/srv/backup/records"
password_file = "/etc/lethe/records.pass"
paths = ["/srv/records"]
every = "6h"
"#;

#[test]
fn backup_jobs_are_the_engines_jobs_plus_max_age() {
    let l = ok(&format!("{JOB}max_age = \"26h\"\nkeep_daily = 7\n"));
    let b = &l.config.backups[0];
    assert_eq!(b.name.as_str(), "records");
    assert_eq!(b.job.every, "6h");
    assert_eq!(b.job.keep_daily, Some(7));
    assert_eq!(b.job.drill_sample, 20, "the engine's defaults apply");
    assert_eq!(b.max_age, Some(Duration::from_secs(26 * 3600)));

    // Unknown keys get a suggestion, including the daemon's own `max_age`.
    let (line, _, msg, help) = error(&format!("{JOB}max_ag = \"1d\"\n"));
    assert_eq!(line, 8);
    assert_eq!(msg, "unknown key `max_ag`");
    assert_eq!(help.as_deref(), Some("did you mean `max_age`?"));
    let (line, _, _, help) = error(&format!("{JOB}keep_dayly = 3\n"));
    assert_eq!(line, 8);
    assert_eq!(help.as_deref(), Some("did you mean `keep_daily`?"));

    let (line, _, msg, _) = error(&format!("{JOB}max_age = \"soon\"\n"));
    assert_eq!(line, 8);
    assert!(msg.starts_with("invalid duration"), "{msg}");

    let (line, _, msg, _) = error(&JOB.replace("\"records\"", "\"patient records\""));
    assert_eq!(line, 3);
    assert!(msg.contains("not a valid name"), "{msg}");

    let e = errors(&format!("{JOB}{JOB}"));
    assert_eq!(e.len(), 1);
    assert_eq!(
        (e[0].line, e[0].message.as_str()),
        (10, "backup job name `records` is used twice")
    );

    let (_, _, msg, _) = error(&format!("{JOB}device = \"/dev/sdb\"\n"));
    assert!(
        msg.contains("exactly one of paths, device or stdin_command"),
        "{msg}"
    );

    let (line, _, msg, _) = error(&JOB.replace("\"6h\"", "\"6 hours\""));
    assert_eq!(line, 7);
    assert!(msg.contains("interval"), "{msg}");

    let l = ok(&format!("{JOB}max_age = \"1h\"\n"));
    assert_eq!(l.warnings.len(), 1);
    assert!(l.warnings[0].message.contains("shorter than the interval"));

    let (_, _, msg, _) = error("backup = 3\n");
    assert!(msg.contains("[[backup]]"), "{msg}");
}

#[test]
fn alert_channels_are_checked() {
    let (line, _, msg, _) =
        error("[[alerts.webhook]]\nname = \"ops\"\nurl = \"http://hooks.example.org/x\"\n");
    assert_eq!(line, 3);
    assert!(msg.contains("only loopback hosts"), "{msg}");
    ok("[[alerts.webhook]]\nname = \"ops\"\nurl = \"http://127.0.0.1:9000/x\"\n");

    let smtp = "[alerts.smtp]\nhost = \"smtp.example.org\"\nfrom = \"lethe@example.org\"\nto = [\"ops@example.org\"]\n";
    let c = ok(smtp).config;
    let s = c.alerts.smtp.unwrap();
    assert_eq!(s.name.as_str(), "email");
    assert_eq!(s.security, lethe_alert::Security::StartTls);

    let (line, _, msg, _) = error(&format!("{smtp}security = \"plain\"\n"));
    assert_eq!(line, 2);
    assert!(msg.contains("refused"), "{msg}");
    let (_, _, msg, _) = error(&format!("{smtp}username = \"u\"\n"));
    assert!(msg.contains("both username and password_file"), "{msg}");
    let (line, _, msg, _) = error(&smtp.replace("\"lethe@example.org\"", "\"not an address\""));
    assert_eq!(line, 3);
    assert!(msg.starts_with("e-mail address"), "{msg}");

    let hook = "[[alerts.webhook]]\nname = \"email\"\nurl = \"https://x.example/\"\n";
    let (line, _, msg, _) = error(&format!("{hook}{smtp}"));
    assert_eq!(line, 4, "the default name `email` collides");
    assert!(msg.contains("used twice"), "{msg}");

    let (_, _, msg, _) = error("[alerts]\nretry_first = \"10m\"\nretry_max_delay = \"1m\"\n");
    assert_eq!(msg, "retry_max_delay is shorter than retry_first");
}

#[test]
fn channels_read_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("hook.secret");
    std::fs::write(&secret, "k3y\n").unwrap();
    let pass = dir.path().join("smtp.pass");
    std::fs::write(&pass, "pw\n").unwrap();
    let text = format!(
        "[[alerts.webhook]]\nname = \"ops\"\nurl = \"https://hooks.example.org/x\"\nsecret_file = {:?}\n\n[alerts.smtp]\nhost = \"smtp.example.org\"\nusername = \"lethe\"\npassword_file = {:?}\nfrom = \"lethe@example.org\"\nto = [\"ops@example.org\"]\n",
        secret, pass
    );
    let c = ok(&text).config;
    let ch = c.alerts.channels().unwrap();
    let names: Vec<_> = ch.iter().map(|c| c.name().as_str().to_string()).collect();
    assert_eq!(names, ["ops", "email"]);

    std::fs::remove_file(&secret).unwrap();
    let e = c.alerts.channels().unwrap_err();
    assert!(
        matches!(
            e,
            ConfigError::Referenced {
                what: "webhook secret_file",
                ..
            }
        ),
        "{e}"
    );
    std::fs::write(&secret, "").unwrap();
    assert!(c.alerts.channels().is_err(), "an empty secret is refused");
    std::fs::write(&secret, "k").unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not a certificate").unwrap();
    let mut bad_ca = c.alerts.clone();
    bad_ca.webhooks[0].ca_file = Some(ca);
    let e = bad_ca.channels().unwrap_err();
    assert!(
        matches!(&e, ConfigError::Channel { name, .. } if name == "ops"),
        "{e}"
    );
    assert!(!format!("{:?}", c.alerts.webhooks[0]).contains("/x"));
}

#[test]
fn breakglass_and_audit() {
    let l = ok("[breakglass]\napprovers = [\"alice\"]\n");
    assert_eq!(l.warnings.len(), 1);
    assert!(l.warnings[0].message.contains("no alert channel"));
    let (_, _, msg, _) = error("[breakglass]\napprovers = [\"alice\", \"alice\"]\n");
    assert_eq!(msg, "approver `alice` is listed twice");
    let (_, _, msg, _) = error("[breakglass]\nlifetime = \"9h\"\n");
    assert_eq!(msg, "lifetime may be at most 8h");
    let (line, _, msg, _) = error("[audit.push]\nurl = \"ftp://x/\"\n");
    assert_eq!(line, 2);
    assert!(msg.contains("scheme"), "{msg}");
    let l = ok("[audit.push]\nurl = \"https://x.example/cp\"\n");
    // No alert channel: a push that keeps failing would tell nobody.
    assert_eq!(l.warnings.len(), 1);
    assert!(l.warnings[0].message.contains("no alert channel"));
    let p = l.config.audit.push.unwrap();
    assert_eq!(p.every, Duration::from_secs(60));
    assert_eq!(p.timeout, Duration::from_secs(10));
    assert_eq!(p.retry_first, Duration::from_secs(10));
    assert_eq!(p.retry_max_delay, Duration::from_secs(900));
    assert_eq!(p.alert_after, 3);
    assert_eq!(p.name.as_str(), "audit-push");
    assert_eq!(p.syslog, None);
}

const HOOK: &str = "[[alerts.webhook]]\nname = \"ops\"\nurl = \"https://alerts.example/x\"\n";

/// safeguard: 164.312(b)
#[test]
fn audit_push_targets_and_their_errors_are_line_precise() {
    let l = ok(&format!(
        "{HOOK}[audit.push]\nsyslog = \"tcp://[2001:db8::5]:6514\"\nevery = \"5m\"\nalert_after = 5\n"
    ));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let p = l.config.audit.push.unwrap();
    let s = p.syslog.unwrap();
    assert_eq!(
        (s.transport, s.host.as_str(), s.port),
        (crate::SyslogTransport::Tcp, "2001:db8::5", 6514)
    );
    assert_eq!(s.to_string(), "tcp://[2001:db8::5]:6514");
    assert_eq!(
        (p.url, p.every, p.alert_after),
        (None, Duration::from_secs(300), 5)
    );
    let s = SyslogTarget::parse("udp://logs.hospital.example:514").unwrap();
    assert_eq!(
        (s.transport, s.host.as_str(), s.port),
        (crate::SyslogTransport::Udp, "logs.hospital.example", 514)
    );

    // Each error on the line of its key (the [[alerts.webhook]] takes 3).
    for (text, line, needle) in [
        ("[audit.push]\nsyslog = \"syslog://x:514\"\n", 5, "udp://HOST:PORT"),
        ("[audit.push]\nsyslog = \"udp://x\"\n", 5, "needs a port"),
        ("[audit.push]\nsyslog = \"udp://x:0\"\n", 5, "not a port"),
        ("[audit.push]\nsyslog = \"tcp://a b:514\"\n", 5, "not a host name"),
        ("[audit.push]\nsyslog = \"tcp://[zz]:514\"\n", 5, "not an IPv6 address"),
        ("[audit.push]\nsyslog = \"udp://x:1\"\nsecret_file = \"/k\"\n", 6, "no `url` is set"),
        ("[audit.push]\nurl = \"https://x.example/\"\nevery = \"0s\"\n", 6, "every must be longer than zero"),
        ("[audit.push]\nurl = \"https://x.example/\"\nevery = \"2days\"\n", 6, "every may be at most 1day"),
        ("[audit.push]\nurl = \"https://x.example/\"\nretry_first = \"1m\"\nretry_max_delay = \"30s\"\n", 7, "retry_max_delay must not be shorter"),
        ("[audit.push]\nurl = \"https://x.example/\"\nalert_after = 0\n", 6, "alert_after must be 1 to 1000"),
        ("[audit.push]\nurl = \"https://x.example/\"\nwebhook = \"https://y.example/\"\n", 6, "webhook"),
    ] {
        let (l, _, msg, _) = error(&format!("{HOOK}{text}"));
        assert_eq!(l, line, "{text}: {msg}");
        assert!(msg.contains(needle), "{text}: {msg}");
    }
    // A table with no target at all is named at the table.
    let (l, _, msg, help) = error(&format!("{HOOK}[audit.push]\nevery = \"1m\"\n"));
    assert_eq!(l, 4, "{msg}");
    assert_eq!(msg, "[audit.push] has no target");
    assert!(help.unwrap().contains("syslog"));
}

#[test]
fn several_errors_are_reported_together_and_rendered_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lethe.toml");
    std::fs::write(
        &path,
        format!("{BAY}{BAY}[session]\nidle_timeout = \"20m\"\n[auth.password]\nmin_length = 4\n"),
    )
    .unwrap();
    let e = load(&path).unwrap_err();
    let ConfigError::Invalid { diagnostics, .. } = &e else {
        panic!("{e}")
    };
    let levels: Vec<_> = diagnostics.iter().map(|d| (d.level, d.line)).collect();
    assert_eq!(
        levels,
        vec![
            (DiagnosticLevel::Error, 9),
            (DiagnosticLevel::Error, 11),
            (DiagnosticLevel::Error, 16),
            // The second bay-1's entry overlaps the first's.
            (DiagnosticLevel::Warning, 10),
            (DiagnosticLevel::Warning, 14),
        ]
    );
    let text = e.to_string();
    assert!(
        text.contains(&format!(
            "{}:9:8: error: bay name `bay-1` is used twice",
            path.display()
        )),
        "{text}"
    );
    assert!(text.ends_with("configuration refused: 3 errors"), "{text}");

    assert!(matches!(
        load(&dir.path().join("missing.toml")),
        Err(ConfigError::Read { .. })
    ));
}

#[test]
fn the_path_comes_from_the_option_then_the_environment() {
    use std::ffi::OsStr;
    use std::path::Path;
    assert_eq!(resolve_path(None, None), Path::new("/etc/lethe/lethe.toml"));
    assert_eq!(
        resolve_path(None, Some(OsStr::new(""))),
        Path::new(DEFAULT_PATH)
    );
    assert_eq!(
        resolve_path(None, Some(OsStr::new("/e.toml"))),
        Path::new("/e.toml")
    );
    assert_eq!(
        resolve_path(Some(Path::new("/o.toml")), Some(OsStr::new("/e.toml"))),
        Path::new("/o.toml")
    );
}

#[test]
fn bay_for_uses_the_loaded_rules() {
    let c = ok(r#"
[[bay]]
name = "sata-1"
match = ["/dev/disk/by-path/pci-0000:00:17.0-ata-1"]
policy = "ask"
[[bay]]
name = "tests"
match = ["loop:/tmp/lethe-bays-*/drive-*.img"]
policy = "ask"
"#)
    .config;
    let lp = DeviceFacts {
        links: vec![],
        transport: Transport::Loop,
        loop_backing_file: Some("/tmp/lethe-bays-42/drive-3.img".into()),
    };
    assert_eq!(bay_for(&c.bays, &lp).unwrap().name.as_str(), "tests");
    let sata = DeviceFacts {
        links: vec!["/dev/disk/by-path/pci-0000:00:17.0-ata-1".into()],
        transport: Transport::Sata,
        loop_backing_file: None,
    };
    assert_eq!(bay_for(&c.bays, &sata).unwrap().name.as_str(), "sata-1");
}

proptest! {
    /// No input panics the checker, and every diagnostic points inside the text.
    #[test]
    fn any_text_is_checked_without_panicking(text in "\\PC{0,200}") {
        if let Err(ConfigError::Invalid { diagnostics, .. }) = parse(&text) {
            prop_assert!(!diagnostics.is_empty());
            for d in diagnostics {
                prop_assert!(d.line >= 1 && d.line <= text.lines().count().max(1) + 1);
            }
        }
    }

    /// Cutting a valid file anywhere gives a clean verdict (accepted or refused with positions).
    #[test]
    fn truncated_files_are_refused_cleanly(cut in 0usize..400) {
        let full = format!("{BAY}[session]\nidle_timeout = \"5m\"\n{JOB}max_age = \"1d\"\n");
        let mut cut = cut.min(full.len());
        while !full.is_char_boundary(cut) { cut -= 1; }
        let _ = parse(&full[..cut]);
    }
}
