//! A running `lethe serve` for the daemon's end-to-end tests.
#![allow(dead_code)]

use crate::common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why this tier cannot run here, if it cannot.
pub fn unavailable() -> Option<String> {
    if let Some(why) = lethe_hw_tests::loop_tier_unavailable() {
        return Some(why);
    }
    let ok = Command::new("getent")
        .args(["passwd", "lethe"])
        .output()
        .is_ok_and(|o| o.status.success());
    (!ok).then(|| "the front's system user `lethe` is missing: run hw-tests/setup.sh".into())
}

/// A running `lethe serve`, stopped (SIGTERM, then SIGKILL) on drop.
pub struct Serve {
    pub child: Child,
    pub runtime: PathBuf,
    pub log: PathBuf,
}

impl Serve {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn try_status(&self) -> Option<Value> {
        let out = Command::new(env!("CARGO_BIN_EXE_lethe"))
            .args(["status", "--json", "--runtime-dir"])
            .arg(&self.runtime)
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    pub fn status(&self) -> Value {
        if let Some(v) = self.try_status() {
            return v;
        }
        let out = Command::new(env!("CARGO_BIN_EXE_lethe"))
            .args(["status", "--json", "--runtime-dir"])
            .arg(&self.runtime)
            .output()
            .unwrap();
        panic!(
            "lethe status failed: {}{}; daemon log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            stderr(&out),
            self.log()
        )
    }

    /// The front's pid (the worker's child).
    pub fn front_pid(&self) -> u32 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pid = self.child.id();
            let mut kids = String::new();
            for t in std::fs::read_dir(format!("/proc/{pid}/task"))
                .unwrap()
                .flatten()
            {
                kids += &std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
                kids.push(' ');
            }
            if let Some(k) = kids.split_whitespace().next() {
                return k.parse().unwrap();
            }
            assert!(Instant::now() < deadline, "the worker has no front");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        unsafe_free_kill(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < deadline, "lethe serve did not stop");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            unsafe_free_kill(self.child.id(), "TERM");
            let deadline = Instant::now() + Duration::from_secs(30);
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `kill -SIG pid` (the test harness keeps away from libc).
pub fn unsafe_free_kill(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// Poll `status` until `done` says so (or panic after `secs`).
pub fn wait_for(s: &Serve, secs: u64, what: &str, mut done: impl FnMut(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let st = s.status();
        if done(&st) {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; status {st:#}\nlog:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A temporary directory for a daemon's state and runtime directories, in
/// /dev/shm when there is one, that the front (user `lethe`) can enter.
pub fn daemon_tempdir(prefix: &str) -> tempfile::TempDir {
    let base = if Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    };
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(base)
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A loopback TCP port free now, below the kernel's ephemeral range (so
/// an outgoing connection cannot take it between now and its use).
pub fn free_port() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut x = (u64::from(nanos) ^ (u64::from(std::process::id()) << 32)) | 1;
    loop {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = 20_000 + (x % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Serve {
    /// `lethe --state-dir STATE serve --config CONFIG --runtime-dir RUNTIME ARGS`,
    /// its log in `log`; returns once `lethe status` answers.
    pub fn start(state: &Path, config: &Path, runtime: &Path, log: &Path, args: &[&str]) -> Serve {
        // Tests run in parallel: each daemon's HTTPS listener gets its own
        // loopback port unless the test chose one.
        let text = std::fs::read_to_string(config).unwrap();
        if !text.contains("[server]") {
            std::fs::write(
                config,
                format!("{text}\n[server]\nlisten = \"127.0.0.1:{}\"\n", free_port()),
            )
            .unwrap();
        }
        let file = std::fs::File::create(log).unwrap();
        let child = lethe(state)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .arg("--runtime-dir")
            .arg(runtime)
            .args(args)
            .env("LETHE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        let s = Serve {
            child,
            runtime: runtime.to_path_buf(),
            log: log.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while s.try_status().is_none() {
            assert!(
                Instant::now() < deadline,
                "lethe serve did not come up:\n{}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }
}

/// A tiny webhook receiver (plain HTTP on loopback): records the JSON
/// bodies it is sent.
pub struct Hook {
    pub port: u16,
    pub bodies: Arc<Mutex<Vec<Value>>>,
}

impl Hook {
    pub fn start() -> Hook {
        Hook::answering("204 No Content")
    }

    /// A receiver that answers every request with `status` (e.g. `503
    /// Service Unavailable`), recording the bodies all the same.
    pub fn answering(status: &'static str) -> Hook {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let b = Arc::clone(&bodies);
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let body = loop {
                    let Ok(n) = s.read(&mut chunk) else {
                        break None;
                    };
                    if n == 0 {
                        break None;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(h) = text.find("\r\n\r\n") {
                        let len = text[..h]
                            .lines()
                            .find_map(|l| {
                                let l = l.to_ascii_lowercase();
                                l.strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= h + 4 + len {
                            break Some(buf[h + 4..h + 4 + len].to_vec());
                        }
                    }
                };
                let _ = s.write_all(
                    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                );
                if let Some(body) = body.and_then(|b| serde_json::from_slice(&b).ok()) {
                    b.lock().unwrap().push(body);
                }
            }
        });
        Hook { port, bodies }
    }

    pub fn wait_for(&self, secs: u64, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = self.bodies.lock().unwrap().iter().find(|v| f(v)) {
                return v.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {what} alert: {:?}",
                self.bodies.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
