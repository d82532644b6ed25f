//! The HTTPS listener's certificate: asked of the worker (`tls`), which
//! holds the key files the front cannot read, and swapped without a
//! restart.
//!
//! rustls with the aws-lc-rs provider, TLS 1.2 and 1.3 (rustls' safe
//! defaults: no TLS 1.0/1.1, no CBC, no RSA key exchange), ALPN
//! `http/1.1`. The certificate is picked per handshake by a
//! [`CertResolver`] holding the current [`CertifiedKey`]: [`TlsReloader::reload`]
//! asks the worker again (at start, on SIGHUP and every minute: see
//! [`crate::run`]) and swaps it when the fingerprint changed. Connections
//! already open keep the certificate they were made with; the next
//! handshake gets the new one.

use crate::client::{ClientError, Worker};
use lethe_wire::{Caller, Reply, Request, TlsMaterial, Via};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Why there is no (new) certificate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The worker did not answer.
    #[error("asking the worker for the TLS certificate: {0}")]
    Worker(#[from] ClientError),
    /// The worker refused or answered something else.
    #[error("the worker gave no TLS certificate: {0}")]
    Refused(String),
    /// The PEM is not a certificate chain and a matching key.
    #[error("the TLS certificate or key is unusable: {0}")]
    Material(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The crypto provider: aws-lc-rs.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Parse the worker's PEM into a certificate chain and its key, checking
/// that the key is the certificate's.
pub fn certified_key(m: &TlsMaterial) -> Result<CertifiedKey, TlsError> {
    let bad = |e: &dyn std::fmt::Display| TlsError::Material(e.to_string());
    let chain = CertificateDer::pem_slice_iter(m.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&e))?;
    if chain.is_empty() {
        return Err(TlsError::Material("no CERTIFICATE in the PEM".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(m.key_pem.expose().as_bytes()).map_err(|e| bad(&e))?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|e| bad(&e))
}

/// Picks the current certificate for every handshake; none (the handshake
/// fails) before the first one is loaded.
#[derive(Debug, Default)]
pub struct CertResolver {
    current: RwLock<Option<Arc<CertifiedKey>>>,
}

impl CertResolver {
    /// Serve `key` from the next handshake on.
    pub fn set(&self, key: Arc<CertifiedKey>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(key);
    }

    /// The certificate served now.
    pub fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}

/// The server configuration over `resolver`.
pub fn server_config(resolver: Arc<CertResolver>) -> Result<Arc<ServerConfig>, TlsError> {
    let mut c = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(c))
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// The worker's certificate is the one served.
    Unchanged,
    /// A (new) certificate is served from now on.
    Loaded {
        /// Its SHA-256 fingerprint, as the worker gave it.
        fingerprint: String,
        /// The one it replaced.
        previous: Option<String>,
        /// Self-signed by the appliance.
        self_signed: bool,
    },
}

/// Asks the worker for the certificate and keeps the resolver current.
pub struct TlsReloader {
    worker: Arc<dyn Worker>,
    resolver: Arc<CertResolver>,
    fingerprint: Mutex<Option<String>>,
}

impl TlsReloader {
    /// A reloader asking `worker`; nothing loaded yet.
    pub fn new(worker: Arc<dyn Worker>) -> Self {
        TlsReloader {
            worker,
            resolver: Arc::new(CertResolver::default()),
            fingerprint: Mutex::new(None),
        }
    }

    /// The resolver to build the server configuration with.
    pub fn resolver(&self) -> Arc<CertResolver> {
        Arc::clone(&self.resolver)
    }

    /// The fingerprint of the certificate served now.
    pub fn fingerprint(&self) -> Option<String> {
        self.fingerprint
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Ask the worker; swap the certificate when its fingerprint changed.
    /// On an error the certificate served stays.
    pub async fn reload(&self) -> Result<Reload, TlsError> {
        let caller = Caller {
            via: Via::Api,
            ..Caller::local(None)
        };
        let m = match self.worker.call(caller, Request::Tls {}).await? {
            Reply::Tls { tls } => tls,
            Reply::Error { error } => return Err(TlsError::Refused(error.message)),
            other => return Err(TlsError::Refused(format!("an unexpected reply: {other:?}"))),
        };
        let previous = self.fingerprint();
        if previous.as_deref() == Some(m.fingerprint.as_str()) {
            return Ok(Reload::Unchanged);
        }
        let key = certified_key(&m)?;
        self.resolver.set(Arc::new(key));
        *self.fingerprint.lock().unwrap_or_else(|e| e.into_inner()) = Some(m.fingerprint.clone());
        Ok(Reload::Loaded {
            fingerprint: m.fingerprint,
            previous,
            self_signed: m.self_signed,
        })
    }

    /// [`Self::reload`], with the outcome logged.
    pub async fn reload_logged(&self, why: &str) -> bool {
        match self.reload().await {
            Ok(Reload::Unchanged) => {
                tracing::debug!("HTTPS certificate unchanged ({why})");
                true
            }
            Ok(Reload::Loaded {
                fingerprint,
                previous,
                self_signed,
            }) => {
                let kind = if self_signed { "self-signed " } else { "" };
                match previous {
                    None => tracing::info!(
                        "HTTPS {kind}certificate loaded, SHA-256 fingerprint {fingerprint}"
                    ),
                    Some(old) => tracing::info!(
                        "HTTPS certificate changed ({why}): now {kind}{fingerprint}, was {old}"
                    ),
                }
                true
            }
            Err(e) => {
                tracing::warn!("HTTPS certificate not reloaded ({why}): {e}");
                false
            }
        }
    }

    /// Keep the certificate current: reload on every message of `now`
    /// (the front forwards SIGHUP there) and every `every`. Runs until
    /// `now` is closed.
    pub async fn watch(&self, every: Duration, mut now: tokio::sync::mpsc::Receiver<()>) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            let why = tokio::select! {
                m = now.recv() => match m {
                    Some(()) => "SIGHUP",
                    None => return,
                },
                _ = tick.tick() => "periodic check",
            };
            self.reload_logged(why).await;
        }
    }

    /// Load the first certificate, retrying with backoff (from 250 ms,
    /// doubling, at most `max_backoff`) until the worker gives one: the
    /// worker may start a moment after the front.
    pub async fn first(&self, max_backoff: Duration) {
        let mut wait = Duration::from_millis(250);
        while !self.reload_logged("start").await {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(max_backoff);
        }
    }
}
