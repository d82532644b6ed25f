//! Trusting an appliance's certificate by its SHA-256 fingerprint.
//!
//! An appliance makes itself a self-signed certificate on first start and
//! `lethe status` prints its fingerprint (`AB:CD:…`, 32 bytes). A client that
//! pins that fingerprint needs no CA and no host name: the server proves it
//! holds the key of exactly that certificate (the TLS handshake signature is
//! still checked), which is stronger than a name check against a CA.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// A SHA-256 certificate fingerprint.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

/// A fingerprint that is not 32 bytes of hex.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "{0:?} is not a SHA-256 fingerprint: give the 64 hex digits `lethe status` prints on the \
     appliance (colons optional)"
)]
pub struct BadFingerprint(pub String);

impl Fingerprint {
    /// `AB:CD:…` as `lethe status` prints it, or the same without colons,
    /// in either case; an optional `sha256:` / `SHA256:` prefix.
    pub fn parse(text: &str) -> Result<Self, BadFingerprint> {
        let t = text.trim();
        let t = t
            .strip_prefix("sha256:")
            .or_else(|| t.strip_prefix("SHA256:"))
            .or_else(|| t.strip_prefix("SHA-256:"))
            .unwrap_or(t);
        let hexdigits: String = t.chars().filter(|c| *c != ':').collect();
        let bad = || BadFingerprint(text.to_string());
        if hexdigits.len() != 64 {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(&hexdigits, &mut out).map_err(|_| bad())?;
        Ok(Self(out))
    }

    /// The fingerprint of a DER certificate.
    pub fn of(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|b| format!("{b:02X}")).collect();
        f.write_str(&parts.join(":"))
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Accepts exactly the certificate with the pinned fingerprint.
#[derive(Debug)]
pub struct PinnedVerifier {
    pin: Fingerprint,
    provider: Arc<CryptoProvider>,
}

impl PinnedVerifier {
    pub fn new(pin: Fingerprint, provider: Arc<CryptoProvider>) -> Self {
        Self { pin, provider }
    }
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = Fingerprint::of(end_entity);
        if seen == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the server's certificate has the SHA-256 fingerprint {seen}, not the pinned {}; \
                 this is not the appliance you pinned (or its certificate was replaced: compare \
                 with `lethe status` on the appliance)",
                self.pin
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRINTED: &str = "3A:7F:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:01:23:45:67:89:AB:CD:EF:10:32:54:76:98:BA";

    #[test]
    fn the_printed_form_and_plain_hex_parse_to_the_same_fingerprint() {
        let a = Fingerprint::parse(PRINTED).unwrap();
        let plain = PRINTED.replace(':', "").to_lowercase();
        assert_eq!(Fingerprint::parse(&plain).unwrap(), a);
        assert_eq!(Fingerprint::parse(&format!("sha256:{plain}")).unwrap(), a);
        assert_eq!(a.to_string(), PRINTED);
    }

    #[test]
    fn short_long_and_non_hex_fingerprints_are_refused_by_name() {
        for bad in [
            "",
            "3A:7F",
            &format!("{PRINTED}:00"),
            &PRINTED.replace('A', "G"),
        ] {
            let e = Fingerprint::parse(bad).unwrap_err();
            assert_eq!(e.0, bad);
            assert!(e.to_string().contains("64 hex digits"));
        }
    }

    #[test]
    fn the_fingerprint_of_a_certificate_is_its_sha256() {
        // SHA-256 of "abc" (FIPS 180-2 test vector), as a stand-in DER.
        let f = Fingerprint::of(b"abc");
        assert_eq!(
            f.to_string().replace(':', "").to_lowercase(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
