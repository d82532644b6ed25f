//! Real local receivers for the delivery tests: an HTTP(S) webhook receiver
//! (hyper on 127.0.0.1), a test CA (rcgen) and an SMTP sink (aiosmtpd, run
//! as a child process from `tests/fixtures/smtp_sink.py`).

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Request, Response};
use hyper_util::rt::TokioIo;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// A free loopback port (bound, then released: nothing listens on it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// A webhook receiver answering with scripted statuses (the last one repeats).
pub struct Receiver {
    pub addr: SocketAddr,
    pub got: Arc<Mutex<Vec<Received>>>,
    task: JoinHandle<()>,
}

impl Receiver {
    /// Serve on `port` (0: any), over TLS when `tls` is given.
    pub async fn start(port: u16, statuses: &[u16], tls: Option<TlsAcceptor>) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(
            statuses.iter().copied().collect::<VecDeque<_>>(),
        ));
        let (g, s) = (got.clone(), script.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (g, s, tls) = (g.clone(), s.clone(), tls.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (g, s) = (g.clone(), s.clone());
                        async move {
                            let headers = req.headers().clone();
                            let body = req.into_body().collect().await?.to_bytes().to_vec();
                            g.lock().unwrap().push(Received { headers, body });
                            let status = {
                                let mut q = s.lock().unwrap();
                                if q.len() > 1 {
                                    q.pop_front().unwrap()
                                } else {
                                    *q.front().unwrap_or(&200)
                                }
                            };
                            Ok::<_, hyper::Error>(
                                Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::from_static(b"")))
                                    .unwrap(),
                            )
                        }
                    });
                    match tls {
                        Some(acc) => {
                            if let Ok(stream) = acc.accept(tcp).await {
                                let _ = http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), svc)
                                    .await;
                            }
                        }
                        None => {
                            let _ = http1::Builder::new()
                                .serve_connection(TokioIo::new(tcp), svc)
                                .await;
                        }
                    }
                });
            }
        });
        Receiver { addr, got, task }
    }

    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}/hook", self.addr)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A throw-away CA and a server certificate for 127.0.0.1 and localhost.
pub struct TestCa {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn new() -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "Lethe alert test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        TestCa {
            ca_pem: ca_cert.pem(),
            cert_pem: leaf.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = vec![CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).unwrap();
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        TlsAcceptor::from(Arc::new(cfg))
    }

    /// Write the server certificate and key for the SMTP sink.
    pub fn write_server_files(&self, dir: &Path) -> (PathBuf, PathBuf) {
        let (c, k) = (dir.join("server.pem"), dir.join("server.key"));
        std::fs::write(&c, &self.cert_pem).unwrap();
        std::fs::write(&k, &self.key_pem).unwrap();
        (c, k)
    }
}

/// Options of the SMTP sink.
#[derive(Default)]
pub struct SinkOptions<'a> {
    pub tls: Option<(&'a Path, &'a Path)>,
    /// TLS from the first byte instead of STARTTLS.
    pub implicit_tls: bool,
    pub login: Option<(&'a str, &'a str)>,
}

/// The aiosmtpd sink, stopped (stdin closed, then killed) on drop.
pub struct SmtpSink {
    child: Child,
    pub dir: PathBuf,
}

impl SmtpSink {
    /// Start the sink on `port`, or print `SKIPPED: …` and return None when
    /// python3 with aiosmtpd is not installed (hw-tests/setup.sh installs it).
    pub fn start(test: &str, port: u16, dir: &Path, opts: SinkOptions) -> Option<SmtpSink> {
        let have = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !have {
            println!("SKIPPED: {test}: python3 with aiosmtpd missing (pip install aiosmtpd; hw-tests/setup.sh does it)");
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smtp_sink.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script)
            .args(["--port", &port.to_string()])
            .arg("--dir")
            .arg(dir);
        if let Some((c, k)) = opts.tls {
            cmd.arg("--cert").arg(c).arg("--key").arg(k);
        }
        if opts.implicit_tls {
            cmd.arg("--implicit-tls");
        }
        if let Some((u, p)) = opts.login {
            cmd.args(["--user", u, "--password", p]);
        }
        // aiosmtpd's own chatter goes to a log beside the mail directory.
        let log = dir.with_extension("log");
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "READY",
            "the SMTP sink did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Some(SmtpSink {
            child,
            dir: dir.to_path_buf(),
        })
    }

    /// The messages received so far, in order.
    pub fn messages(&self) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
