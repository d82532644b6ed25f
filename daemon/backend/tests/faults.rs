//! Fault injection: full disk, failing / hanging / garbage-speaking servers, dead SFTP server,
//! wrong host key.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{payload, Sshd};
use lethe_backend::s3::{S3Backend, S3Options};
use lethe_backend::sftp::SftpBackend;
use lethe_backend::{
    Backend, BackendError, HostKeyCheck, Location, RetryPolicy, S3Credentials, SftpConfig,
    WriteOptions,
};

/// A tmpfs of a given size, unmounted in Drop.
struct TinyFs {
    dir: tempfile::TempDir,
}

impl TinyFs {
    fn mount(size: &str) -> Option<TinyFs> {
        let dir = tempfile::tempdir().ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(TinyFs { dir })
    }
    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn entries(p: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            out.push(e.file_name().to_string_lossy().into_owned());
            if e.path().is_dir() {
                out.extend(entries(&e.path()));
            }
        }
    }
    out
}

#[tokio::test]
async fn full_disk_gives_clear_error_and_no_partial_object() {
    let Some(fs) = TinyFs::mount("1m") else {
        println!("SKIPPED: full_disk: cannot mount a tmpfs (needs root)");
        return;
    };
    let b = lethe_backend::open(&Location::Local(fs.path()), &Default::default())
        .await
        .expect("open");
    let r = b
        .write(
            "data/ab/too-big",
            payload(1, 2 << 20),
            &WriteOptions::default(),
        )
        .await;
    match &r {
        Err(e @ BackendError::DiskFull { name, .. }) => {
            assert_eq!(name, "data/ab/too-big");
            assert!(e.to_string().contains("no space left"), "{e}");
        }
        other => panic!("expected DiskFull, got {other:?}"),
    }
    assert!(b
        .stat("data/ab/too-big")
        .await
        .is_err_and(|e| e.is_not_found()));
    // Only the directory is left: no object and no temporary file.
    assert_eq!(entries(&fs.path()), vec!["data", "ab"]);
    // The space was given back: a small object still fits.
    b.write("data/ab/small", payload(2, 1000), &WriteOptions::default())
        .await
        .expect("small write after ENOSPC");
    assert_eq!(b.list("").await.expect("list").len(), 1);
}

#[derive(Clone, Copy)]
enum Fault {
    Status503,
    Hang,
    Garbage,
}

/// A TCP server that answers every connection with a fault and counts connections.
fn fault_server(fault: Fault) -> (u16, Arc<AtomicU32>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let count = Arc::new(AtomicU32::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            c.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
                let _ = s.read(&mut buf);
                match fault {
                    Fault::Status503 => {
                        let _ = s.write_all(
                            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        );
                    }
                    Fault::Hang => std::thread::sleep(Duration::from_secs(5)),
                    Fault::Garbage => {
                        let _ = s.write_all(b"\x00\xffSSH-2.0-nonsense\r\n<<<garbage>>>\r\n\r\n");
                    }
                }
            });
        }
    });
    (port, count)
}

fn s3_at(port: u16, timeout: Duration) -> S3Backend {
    let loc = match lethe_backend::location::parse(&format!("s3:http://127.0.0.1:{port}/bkt/p")) {
        Ok(Location::S3(l)) => l,
        other => panic!("{other:?}"),
    };
    S3Backend::new(
        &loc,
        &S3Credentials {
            access_key_id: "k".into(),
            secret_access_key: "s".into(),
        },
        S3Options {
            region: "us-east-1".into(),
            multipart_threshold: None,
            retry: RetryPolicy {
                max_attempts: 3,
                initial_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_millis(400),
                attempt_timeout: timeout,
            },
        },
    )
    .expect("backend")
}

#[tokio::test]
async fn s3_server_errors_are_retried_with_backoff_then_reported() {
    let (port, count) = fault_server(Fault::Status503);
    let b = s3_at(port, Duration::from_secs(10));
    let t = Instant::now();
    let r = b.read("data/ab/obj").await;
    match &r {
        Err(
            e @ BackendError::Failed {
                op,
                name,
                attempts,
                backend,
                ..
            },
        ) => {
            assert_eq!((*op, name.as_str(), *attempts), ("read", "data/ab/obj", 3));
            assert_eq!(backend, &format!("s3:http://127.0.0.1:{port}/bkt/p"));
            assert!(e.to_string().contains("503"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(count.load(Ordering::SeqCst), 3, "one request per attempt");
    // Backoff 100 ms + 200 ms between the three attempts.
    assert!(t.elapsed() >= Duration::from_millis(300));
    let w = b
        .write("config", payload(1, 10), &WriteOptions::default())
        .await;
    assert!(
        matches!(w, Err(BackendError::Failed { attempts: 3, .. })),
        "{w:?}"
    );
}

#[tokio::test]
async fn s3_timeouts_are_retried_then_reported() {
    let (port, count) = fault_server(Fault::Hang);
    let b = s3_at(port, Duration::from_millis(300));
    let t = Instant::now();
    let r = b.stat("index/abc").await;
    assert!(
        matches!(&r, Err(BackendError::Failed { attempts: 3, name, .. }) if name == "index/abc"),
        "{r:?}"
    );
    assert!(count.load(Ordering::SeqCst) >= 3);
    assert!(t.elapsed() >= Duration::from_millis(900));
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn s3_garbage_answers_are_errors_not_panics() {
    let (port, _count) = fault_server(Fault::Garbage);
    let b = s3_at(port, Duration::from_secs(5));
    assert!(b.list("data").await.is_err());
    assert!(b.read("config").await.is_err());
    assert!(b.read_range("config", 5, 10).await.is_err());
    assert!(b.stat("config").await.is_err());
    assert!(b.delete("config").await.is_err());
}

fn sftp_url(sshd: &Sshd) -> lethe_backend::SftpLocation {
    let url = format!(
        "sftp:{}@127.0.0.1:{}{}",
        sshd.user,
        sshd.port,
        sshd.repo_path("repo").display()
    );
    match lethe_backend::location::parse(&url) {
        Ok(Location::Sftp(l)) => l,
        other => panic!("{other:?}"),
    }
}

fn quick() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(100),
        attempt_timeout: Duration::from_secs(20),
    }
}

#[tokio::test]
async fn sftp_dead_server_is_retried_then_reported() {
    let Some(mut sshd) = Sshd::start("sftp_dead_server") else {
        return;
    };
    let b = SftpBackend::connect(&sftp_url(&sshd), &sshd.config(), quick())
        .await
        .expect("connect");
    b.write("config", payload(1, 100), &WriteOptions::default())
        .await
        .expect("write");
    assert_eq!(b.read("config").await.expect("read").len(), 100);
    // Kills the listener and the established session (same process group).
    sshd.kill();
    let t = Instant::now();
    let e = b.read("config").await.expect_err("server is gone");
    match &e {
        BackendError::Failed { attempts, name, .. } => {
            assert_eq!(*attempts, 3, "{e}");
            assert_eq!(name, "config");
        }
        other => panic!("{other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(30));
}

/// safeguard: 164.312(e)(1)
#[tokio::test]
async fn sftp_refused_connection_and_wrong_host_key() {
    let Some(sshd) = Sshd::start("sftp_wrong_host_key") else {
        return;
    };
    // Refused port: connect fails after all attempts, naming the backend.
    let mut loc = sftp_url(&sshd);
    loc.port = common::free_ports(1)[0];
    let e = SftpBackend::connect(&loc, &sshd.config(), quick())
        .await
        .expect_err("nothing listens there");
    assert!(
        matches!(
            e,
            BackendError::Failed {
                op: "connect",
                attempts: 3,
                ..
            }
        ),
        "{e:?}"
    );

    // A different pinned key is rejected (no trust on first use).
    let other = tempfile::tempdir().expect("tempdir");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(other.path().join("k"))
        .status()
        .expect("ssh-keygen");
    assert!(st.success());
    let wrong = std::fs::read_to_string(other.path().join("k.pub")).expect("pub");
    let cfg = SftpConfig {
        host_key: HostKeyCheck::PinnedKey(wrong),
        ..sshd.config()
    };
    let e = SftpBackend::connect(&sftp_url(&sshd), &cfg, quick()).await;
    assert!(e.is_err(), "wrong host key must be refused");

    // A known_hosts file with the right key works.
    let kh = other.path().join("known_hosts");
    std::fs::write(
        &kh,
        format!("[127.0.0.1]:{} {}", sshd.port, sshd.host_pubkey()),
    )
    .expect("kh");
    let cfg = SftpConfig {
        host_key: HostKeyCheck::KnownHostsFile(kh),
        ..sshd.config()
    };
    let b = SftpBackend::connect(&sftp_url(&sshd), &cfg, quick())
        .await
        .expect("known_hosts file accepted");
    assert!(b.list("").await.expect("list").is_empty());
    drop(b);

    // Fingerprint pinning: ours must agree with ssh-keygen, and only the right one connects.
    let out = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(sshd.dir.path().join("host_key.pub"))
        .output()
        .expect("ssh-keygen -l");
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    let fp = listed
        .split_whitespace()
        .nth(1)
        .expect("fingerprint")
        .to_string();
    let b64 = sshd
        .host_pubkey()
        .split_whitespace()
        .nth(1)
        .expect("b64")
        .to_string();
    assert_eq!(
        lethe_backend::sftp::fingerprint(&b64).as_deref(),
        Some(fp.as_str())
    );
    let cfg = SftpConfig {
        host_key: HostKeyCheck::Fingerprint(fp),
        ..sshd.config()
    };
    let b = SftpBackend::connect(&sftp_url(&sshd), &cfg, quick())
        .await
        .expect("fingerprint accepted");
    b.write("config", payload(1, 5), &WriteOptions::default())
        .await
        .expect("write via fingerprint-pinned session");
    let cfg = SftpConfig {
        host_key: HostKeyCheck::Fingerprint(
            "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
        ),
        ..sshd.config()
    };
    let e = SftpBackend::connect(&sftp_url(&sshd), &cfg, quick()).await;
    assert!(
        matches!(e, Err(BackendError::HostKeyMismatch { ref offered, .. }) if !offered.is_empty()),
        "{e:?}"
    );

    // Garbage pinned key and missing key file are configuration errors.
    let cfg = SftpConfig {
        host_key: HostKeyCheck::PinnedKey("ssh-ed25519 ;rm -rf".into()),
        ..sshd.config()
    };
    let e = SftpBackend::connect(&sftp_url(&sshd), &cfg, quick()).await;
    assert!(matches!(e, Err(BackendError::Config(_))), "{e:?}");
    let cfg = SftpConfig {
        key_file: other.path().join("nope"),
        ..sshd.config()
    };
    let e = SftpBackend::connect(&sftp_url(&sshd), &cfg, quick()).await;
    assert!(matches!(e, Err(BackendError::Config(_))), "{e:?}");
}
