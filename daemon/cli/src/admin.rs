//! A blocking client of the worker's root-only admin socket
//! (`RUNTIME/admin.sock`, `0600 root`), for `lethe user`.
//!
//! One connection: `hello` with this build's protocol version, `welcome`
//! back, then one `request` per call, each answered by one `reply` with the
//! same id (`docs/worker-socket.md`). Every read waits at most
//! [`READ_TIMEOUT`]: a password change hashes with Argon2id (about half a
//! second), so a worker that says nothing for that long is stuck.

use lethe_wire::paths::ADMIN_SOCKET;
use lethe_wire::{
    decode, encode, read_frame_blocking, write_frame_blocking, AdminReply, AdminRequest, ErrorCode,
    FrameError, FromAdmin, ToAdmin, WireError, VERSION,
};
use std::io::ErrorKind;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long to wait for each answer of the worker.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request got no answer from the worker, or a refusal.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The socket is not there (or nothing listens on it).
    #[error("lethe serve is not running ({why}): start it with systemctl start lethe")]
    NotRunning {
        /// `no /run/lethe/admin.sock`, or why the socket does not answer.
        why: String,
    },
    /// The admin socket is root's only.
    #[error(
        "only root may manage users: {} is root's only (run this command as root, \
         for example with sudo)",
        .path.display()
    )]
    NotRoot {
        /// The admin socket.
        path: PathBuf,
    },
    /// The worker speaks other protocol versions (a `lethe` of another
    /// release than the running daemon).
    #[error(
        "lethe serve speaks protocol version(s) {supported:?} and this lethe speaks {VERSION}: \
         use the lethe of the same release as the running daemon"
    )]
    Incompatible {
        /// What the worker speaks.
        supported: Vec<u32>,
    },
    /// Nothing came back in time, the connection broke, or the answer was
    /// not a message of this protocol.
    #[error("lethe serve did not answer properly on {}: {why}", .path.display())]
    NoAnswer {
        /// The admin socket.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
    /// The worker answered with an error: nothing was done (or, for
    /// `unavailable` and `internal`, the worker could not do it).
    #[error("{}", .0.message)]
    Refused(WireError),
}

impl AdminError {
    /// The error's class, as `--json` reports it: the worker's own code
    /// (`not_found`, `conflict`, `refused`…) for a refusal, otherwise
    /// `not_running`, `not_root`, `incompatible` or `no_answer`.
    pub fn code(&self) -> String {
        match self {
            AdminError::NotRunning { .. } => "not_running".into(),
            AdminError::NotRoot { .. } => "not_root".into(),
            AdminError::Incompatible { .. } => "incompatible".into(),
            AdminError::NoAnswer { .. } => "no_answer".into(),
            AdminError::Refused(e) => code_name(e.code),
        }
    }

    /// A refusal by the worker's rules (bad input, unknown user, a change
    /// that does not fit, policy), as opposed to the worker being
    /// unreachable or failing.
    pub fn is_refusal(&self) -> bool {
        match self {
            AdminError::Refused(e) => {
                !matches!(e.code, ErrorCode::Unavailable | ErrorCode::Internal)
            }
            _ => false,
        }
    }
}

/// The wire name of an error code (`not_found`…).
pub fn code_name(code: ErrorCode) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{code:?}"))
}

/// An open, greeted connection to the admin socket.
pub struct AdminClient {
    stream: UnixStream,
    path: PathBuf,
    timeout: Duration,
    next_id: u64,
    /// The worker's Lethe version, from its `welcome`.
    pub worker_version: String,
}

/// The effective uid of this process, from `/proc/self/status`.
fn euid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("Uid:"))?
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

impl AdminClient {
    /// Connect to `runtime_dir/admin.sock` and greet the worker.
    pub fn connect(runtime_dir: &Path) -> Result<AdminClient, AdminError> {
        Self::open(runtime_dir.join(ADMIN_SOCKET), READ_TIMEOUT, true)
    }

    /// [`AdminClient::connect`] to `path`, each read waiting at most
    /// `timeout`; `root_only`: refuse at once when this process is not root.
    fn open(path: PathBuf, timeout: Duration, root_only: bool) -> Result<AdminClient, AdminError> {
        let not_root = || AdminError::NotRoot { path: path.clone() };
        match std::fs::symlink_metadata(&path) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(AdminError::NotRunning {
                    why: format!("no {}", path.display()),
                })
            }
            Err(e) if e.kind() == ErrorKind::PermissionDenied => return Err(not_root()),
            Err(e) => {
                return Err(AdminError::NotRunning {
                    why: format!("{}: {e}", path.display()),
                })
            }
        }
        // The worker closes a connection from any other uid without a
        // word; say why before trying.
        if root_only && euid().is_some_and(|u| u != 0) {
            return Err(not_root());
        }
        let stream = match UnixStream::connect(&path) {
            Ok(s) => s,
            Err(e) => {
                return Err(match e.kind() {
                    ErrorKind::PermissionDenied => not_root(),
                    ErrorKind::NotFound => AdminError::NotRunning {
                        why: format!("no {}", path.display()),
                    },
                    ErrorKind::ConnectionRefused => AdminError::NotRunning {
                        why: format!("nothing answers on {}", path.display()),
                    },
                    _ => AdminError::NotRunning {
                        why: format!("{}: {e}", path.display()),
                    },
                })
            }
        };
        let io = |e: std::io::Error| AdminError::NoAnswer {
            path: path.clone(),
            why: e.to_string(),
        };
        stream.set_read_timeout(Some(timeout)).map_err(io)?;
        stream.set_write_timeout(Some(timeout)).map_err(io)?;
        let mut c = AdminClient {
            stream,
            path,
            timeout,
            next_id: 1,
            worker_version: String::new(),
        };
        c.send(&ToAdmin::Hello { version: VERSION })?;
        match c.receive()? {
            FromAdmin::Welcome { worker, .. } => {
                c.worker_version = worker;
                Ok(c)
            }
            FromAdmin::Incompatible { supported } => Err(AdminError::Incompatible { supported }),
            FromAdmin::Reply { .. } => Err(c.no_answer("a reply before the welcome")),
        }
    }

    /// Ask `request`; the worker's answer, or its refusal as
    /// [`AdminError::Refused`].
    pub fn request(&mut self, request: AdminRequest) -> Result<AdminReply, AdminError> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&ToAdmin::Request { id, request })?;
        match self.receive()? {
            FromAdmin::Reply {
                id: got,
                reply: AdminReply::Error { error },
            } if got == id => Err(AdminError::Refused(error)),
            FromAdmin::Reply { id: got, reply } if got == id => Ok(reply),
            FromAdmin::Reply { id: got, .. } => {
                Err(self.no_answer(&format!("the reply to request {got}, not {id}")))
            }
            _ => Err(self.no_answer("a message that is not a reply")),
        }
    }

    fn no_answer(&self, why: &str) -> AdminError {
        AdminError::NoAnswer {
            path: self.path.clone(),
            why: why.to_owned(),
        }
    }

    fn send(&mut self, msg: &ToAdmin) -> Result<(), AdminError> {
        write_frame_blocking(&mut self.stream, &encode(msg))
            .map_err(|e| self.frame_error(e, "sending"))
    }

    fn receive(&mut self) -> Result<FromAdmin, AdminError> {
        let body = match read_frame_blocking(&mut self.stream) {
            Ok(Some(b)) => b,
            Ok(None) => return Err(self.no_answer("it closed the connection")),
            Err(e) => return Err(self.frame_error(e, "reading")),
        };
        decode::<FromAdmin>(&body).map_err(|e| self.no_answer(&e.to_string()))
    }

    fn frame_error(&self, e: FrameError, doing: &str) -> AdminError {
        let why = match &e {
            FrameError::Io(io)
                if matches!(io.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                format!("no answer within {:?}", self.timeout)
            }
            _ => format!("{doing}: {e}"),
        };
        self.no_answer(&why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lethe_wire::FrameDecoder;
    use std::io::Read;
    use std::os::unix::net::UnixListener;

    /// A fake worker on `dir/admin.sock` answering each frame with
    /// `answer(frame)`.
    fn fake_worker(
        dir: &Path,
        answer: impl Fn(ToAdmin) -> Option<FromAdmin> + Send + 'static,
    ) -> std::thread::JoinHandle<Vec<ToAdmin>> {
        let l = UnixListener::bind(dir.join(ADMIN_SOCKET)).unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut seen = Vec::new();
            let mut d = FrameDecoder::new();
            let mut buf = [0u8; 4096];
            loop {
                while let Some(f) = d.next_frame().unwrap() {
                    let m: ToAdmin = decode(&f).unwrap();
                    seen.push(m.clone());
                    match answer(m) {
                        Some(a) => write_frame_blocking(&mut s, &encode(&a)).unwrap(),
                        None => return seen,
                    }
                }
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return seen,
                    Ok(n) => d.push(&buf[..n]),
                }
            }
        })
    }

    /// Connect to the fake worker in `dir` whoever runs the tests.
    fn client(dir: &Path) -> Result<AdminClient, AdminError> {
        AdminClient::open(dir.join(ADMIN_SOCKET), Duration::from_secs(10), false)
    }

    fn welcome() -> FromAdmin {
        FromAdmin::Welcome {
            version: VERSION,
            worker: "9.9.9".into(),
        }
    }

    #[test]
    fn a_missing_socket_says_the_daemon_is_not_running() {
        let t = tempfile::tempdir().unwrap();
        let e = AdminClient::connect(t.path()).err().unwrap();
        assert_eq!(e.code(), "not_running");
        let want = format!(
            "lethe serve is not running (no {}): start it with systemctl start lethe",
            t.path().join(ADMIN_SOCKET).display()
        );
        assert_eq!(e.to_string(), want);
    }

    #[test]
    fn hello_then_a_request_with_its_id_and_the_reply_matched() {
        let t = tempfile::tempdir().unwrap();
        let w = fake_worker(t.path(), |m| match m {
            ToAdmin::Hello { .. } => Some(welcome()),
            ToAdmin::Request { id, request } => Some(FromAdmin::Reply {
                id,
                reply: match request {
                    AdminRequest::Users {} => AdminReply::Users { users: vec![] },
                    _ => AdminReply::Error {
                        error: WireError::new(ErrorCode::NotFound, "no such user"),
                    },
                },
            }),
        });
        let mut c = client(t.path()).unwrap();
        assert_eq!(c.worker_version, "9.9.9");
        assert_eq!(
            c.request(AdminRequest::Users {}).unwrap(),
            AdminReply::Users { users: vec![] }
        );
        let e = c
            .request(AdminRequest::UserRecover { name: "zed".into() })
            .unwrap_err();
        assert_eq!(e.code(), "not_found");
        assert!(e.is_refusal());
        assert_eq!(e.to_string(), "no such user");
        drop(c);
        let seen = w.join().unwrap();
        assert_eq!(seen[0], ToAdmin::Hello { version: VERSION });
        assert_eq!(
            seen[1],
            ToAdmin::Request {
                id: 1,
                request: AdminRequest::Users {}
            }
        );
        assert!(matches!(seen[2], ToAdmin::Request { id: 2, .. }));
    }

    #[test]
    fn an_incompatible_worker_and_a_wrong_id_are_errors() {
        let t = tempfile::tempdir().unwrap();
        let w = fake_worker(t.path(), |_| {
            Some(FromAdmin::Incompatible {
                supported: vec![VERSION + 1],
            })
        });
        let e = client(t.path()).err().unwrap();
        assert_eq!(e.code(), "incompatible");
        assert!(e.to_string().contains(&format!("[{}]", VERSION + 1)), "{e}");
        drop(w);

        let t = tempfile::tempdir().unwrap();
        let _w = fake_worker(t.path(), |m| match m {
            ToAdmin::Hello { .. } => Some(welcome()),
            ToAdmin::Request { id, .. } => Some(FromAdmin::Reply {
                id: id + 7,
                reply: AdminReply::Users { users: vec![] },
            }),
        });
        let mut c = client(t.path()).unwrap();
        let e = c.request(AdminRequest::Users {}).unwrap_err();
        assert_eq!(e.code(), "no_answer");
        assert!(!e.is_refusal());
        assert!(e.to_string().contains("request 8, not 1"), "{e}");
    }

    #[test]
    fn a_worker_that_closes_is_no_answer() {
        let t = tempfile::tempdir().unwrap();
        let _w = fake_worker(t.path(), |_| None);
        let e = client(t.path()).err().unwrap();
        assert_eq!(e.code(), "no_answer");
        assert!(e.to_string().contains("closed the connection"), "{e}");
    }

    #[test]
    fn a_silent_worker_times_out() {
        let t = tempfile::tempdir().unwrap();
        let l = UnixListener::bind(t.path().join(ADMIN_SOCKET)).unwrap();
        let started = std::time::Instant::now();
        let e = AdminClient::open(
            t.path().join(ADMIN_SOCKET),
            Duration::from_millis(300),
            false,
        )
        .err()
        .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(e.code(), "no_answer");
        assert!(e.to_string().contains("no answer within 300ms"), "{e}");
        drop(l);
    }

    #[test]
    fn a_socket_nobody_listens_on_is_not_running() {
        let t = tempfile::tempdir().unwrap();
        drop(UnixListener::bind(t.path().join(ADMIN_SOCKET)).unwrap());
        let e = client(t.path()).err().unwrap();
        assert_eq!(e.code(), "not_running");
        assert!(e.to_string().contains("nothing answers on"), "{e}");
    }
}
