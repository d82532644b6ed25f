//! Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP).
//!
//! - A secret is 20 random bytes (160 bits, RFC 4226 §4's recommendation),
//!   shown to the user as base32 inside an `otpauth://` URI and a QR code.
//! - A code is accepted for the current 30-second step and one step either side
//!   (clock drift), and a step is never accepted twice: the caller stores the
//!   last accepted step per credential and passes it back in (replay defence,
//!   as Proxmox and vaultwarden do). Accepting step `s` also retires every
//!   earlier step, so codes are used in order.
//! - SHA-1 is the default because every authenticator app supports it; SHA-256
//!   and SHA-512 are implemented (and tested against RFC 6238's vectors).

use crate::entropy::{self, Entropy};
use crate::ids::UserName;
use crate::secret::{SecretBytes, SecretString};
use crate::time::Timestamp;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// The HMAC hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TotpAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl TotpAlgorithm {
    fn uri_name(self) -> &'static str {
        match self {
            TotpAlgorithm::Sha1 => "SHA1",
            TotpAlgorithm::Sha256 => "SHA256",
            TotpAlgorithm::Sha512 => "SHA512",
        }
    }
}

/// TOTP parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TotpParams {
    /// Step length in seconds (30).
    pub step_secs: u64,
    /// Code length (6).
    pub digits: u32,
    /// HMAC hash (SHA1).
    pub algorithm: TotpAlgorithm,
    /// Steps accepted either side of the current one (1).
    pub skew: u64,
}

impl Default for TotpParams {
    fn default() -> Self {
        TotpParams {
            step_secs: 30,
            digits: 6,
            algorithm: TotpAlgorithm::Sha1,
            skew: 1,
        }
    }
}

/// A TOTP shared secret. `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(SecretBytes);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

impl TotpSecret {
    /// Secret length in bytes.
    pub const LEN: usize = 20;

    /// A new random secret.
    pub fn generate(e: &mut (impl Entropy + ?Sized)) -> TotpSecret {
        let b: [u8; Self::LEN] = entropy::bytes(e);
        TotpSecret(SecretBytes::new(b.to_vec()))
    }

    /// From stored bytes.
    pub fn from_bytes(b: Vec<u8>) -> TotpSecret {
        TotpSecret(SecretBytes::new(b))
    }

    /// The raw key (for the store).
    pub(crate) fn expose(&self) -> &[u8] {
        self.0.expose()
    }

    /// Base32 without padding, as authenticator apps take it.
    pub fn base32(&self) -> SecretString {
        SecretString::new(data_encoding::BASE32_NOPAD.encode(self.0.expose()))
    }
}

fn hmac_digest(alg: TotpAlgorithm, key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length: new_from_slice cannot fail
    match alg {
        TotpAlgorithm::Sha1 => {
            let mut m = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key).expect("any key length");
            m.update(msg);
            m.finalize().into_bytes().to_vec()
        }
        TotpAlgorithm::Sha256 => {
            let mut m =
                <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
            m.update(msg);
            m.finalize().into_bytes().to_vec()
        }
        TotpAlgorithm::Sha512 => {
            let mut m =
                <Hmac<sha2::Sha512> as KeyInit>::new_from_slice(key).expect("any key length");
            m.update(msg);
            m.finalize().into_bytes().to_vec()
        }
    }
}

/// RFC 4226 HOTP value (dynamic truncation, then modulo 10^digits).
pub fn hotp(key: &[u8], counter: u64, digits: u32, alg: TotpAlgorithm) -> u32 {
    let mac = hmac_digest(alg, key, &counter.to_be_bytes());
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let bin = (u32::from(mac[offset]) & 0x7f) << 24
        | u32::from(mac[offset + 1]) << 16
        | u32::from(mac[offset + 2]) << 8
        | u32::from(mac[offset + 3]);
    bin % 10u32.pow(digits.min(9))
}

/// The step number at `t`.
pub fn step_at(t: Timestamp, params: &TotpParams) -> u64 {
    t.unix_secs() / params.step_secs.max(1)
}

/// The code for step `step`, zero-padded.
pub fn code_for_step(secret: &TotpSecret, step: u64, params: &TotpParams) -> String {
    let v = hotp(secret.expose(), step, params.digits, params.algorithm);
    format!("{v:0width$}", width = params.digits as usize)
}

/// The code at time `t` (what the user's app shows).
pub fn code_at(secret: &TotpSecret, t: Timestamp, params: &TotpParams) -> String {
    code_for_step(secret, step_at(t, params), params)
}

/// Result of checking a code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TotpCheck {
    /// Valid for `step`, which is newer than the last accepted one: store it.
    Accepted { step: u64 },
    /// Valid, but for a step already used (or older than the last one used).
    Replayed,
    /// Not a valid code in the window (or not a code at all).
    Wrong,
}

/// Parses a submitted code: `digits` ASCII digits, spaces ignored.
pub fn parse_code(input: &str, digits: u32) -> Option<String> {
    let code: String = input.chars().filter(|c| !c.is_whitespace()).collect();
    (code.len() == digits as usize && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

/// Checks `input` at `now` with ±`skew` steps, refusing steps at or before
/// `last_used`. Every candidate step is compared in constant time.
pub fn verify(
    secret: &TotpSecret,
    params: &TotpParams,
    input: &str,
    now: Timestamp,
    last_used: Option<u64>,
) -> TotpCheck {
    let Some(code) = parse_code(input, params.digits) else {
        return TotpCheck::Wrong;
    };
    let current = step_at(now, params);
    let mut fresh: Option<u64> = None;
    let mut stale = false;
    for step in current.saturating_sub(params.skew)..=current.saturating_add(params.skew) {
        let expected = code_for_step(secret, step, params);
        let matches: bool = expected.as_bytes().ct_eq(code.as_bytes()).into();
        if matches {
            if last_used.is_some_and(|l| step <= l) {
                stale = true;
            } else if fresh.is_none() {
                fresh = Some(step);
            }
        }
    }
    match (fresh, stale) {
        (Some(step), _) => TotpCheck::Accepted { step },
        (None, true) => TotpCheck::Replayed,
        (None, false) => TotpCheck::Wrong,
    }
}

/// RFC 3986 percent-encoding of everything but unreserved characters.
fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What a user needs to enrol an authenticator app: the `otpauth://` URI
/// (Google Authenticator key-URI format) and QR renderings of it. Everything
/// here contains the secret: `Debug` is redacted; show it to the user once.
#[derive(Clone)]
pub struct TotpEnrolment {
    uri: SecretString,
    secret_base32: SecretString,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrolment(<redacted>)")
    }
}

impl TotpEnrolment {
    /// Builds the enrolment for `account` at `issuer` (e.g. "Lethe st-mungo-wipe-01").
    pub fn new(issuer: &str, account: &UserName, secret: &TotpSecret, params: &TotpParams) -> Self {
        let b32 = secret.base32();
        let uri = format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm={}&digits={}&period={}",
            pct(issuer),
            pct(account.as_str()),
            b32.expose(),
            pct(issuer),
            params.algorithm.uri_name(),
            params.digits,
            params.step_secs
        );
        TotpEnrolment {
            uri: SecretString::new(uri),
            secret_base32: b32,
        }
    }

    /// The `otpauth://` URI.
    pub fn uri(&self) -> &SecretString {
        &self.uri
    }

    /// The secret in base32, for typing into an app by hand.
    pub fn secret_base32(&self) -> &SecretString {
        &self.secret_base32
    }

    fn qr(&self) -> qrcode::QrCode {
        // an otpauth URI is ~150 bytes: far below QR capacity at the default EC level
        qrcode::QrCode::new(self.uri.expose().as_bytes()).expect("URI fits in a QR code")
    }

    /// The QR code as Unicode half blocks for a terminal (two modules per
    /// character cell, with the quiet zone). Light modules are drawn as blocks,
    /// as `qrencode -t UTF8` does, so it scans on the usual light-on-dark console.
    pub fn qr_terminal(&self) -> SecretString {
        use qrcode::render::unicode::Dense1x2;
        SecretString::new(
            self.qr()
                .render::<Dense1x2>()
                .dark_color(Dense1x2::Light)
                .light_color(Dense1x2::Dark)
                .quiet_zone(true)
                .build(),
        )
    }

    /// The QR code as a standalone SVG document (for the web console).
    pub fn qr_svg(&self) -> SecretString {
        SecretString::new(
            self.qr()
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(200, 200)
                .build(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::TestEntropy;
    use proptest::prelude::*;

    /// safeguard: 164.312(d)
    #[test]
    fn rfc4226_appendix_d_vectors() {
        let key = b"12345678901234567890";
        let want = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (c, w) in want.iter().enumerate() {
            assert_eq!(
                hotp(key, c as u64, 6, TotpAlgorithm::Sha1),
                *w,
                "counter {c}"
            );
        }
    }

    /// safeguard: 164.312(d)
    #[test]
    fn rfc6238_appendix_b_vectors() {
        let sha1 = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        let sha256 = TotpSecret::from_bytes(b"12345678901234567890123456789012".to_vec());
        let sha512 = TotpSecret::from_bytes(
            b"1234567890123456789012345678901234567890123456789012345678901234".to_vec(),
        );
        let rows: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        let p = |algorithm| TotpParams {
            digits: 8,
            algorithm,
            ..TotpParams::default()
        };
        for (t, w1, w256, w512) in rows {
            let t = Timestamp::from_unix_secs(t);
            assert_eq!(code_at(&sha1, t, &p(TotpAlgorithm::Sha1)), w1);
            assert_eq!(code_at(&sha256, t, &p(TotpAlgorithm::Sha256)), w256);
            assert_eq!(code_at(&sha512, t, &p(TotpAlgorithm::Sha512)), w512);
        }
    }

    fn secret() -> TotpSecret {
        TotpSecret::generate(&mut TestEntropy(42))
    }

    /// safeguard: 164.312(d)
    #[test]
    fn window_is_plus_minus_one_step() {
        let s = secret();
        let p = TotpParams::default();
        let now = Timestamp::from_unix_secs(1_700_000_015); // inside step 56_666_667
        let step = step_at(now, &p);
        for (d, ok) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let code = code_for_step(&s, (step as i64 + d) as u64, &p);
            let r = verify(&s, &p, &code, now, None);
            assert_eq!(
                matches!(r, TotpCheck::Accepted { .. }),
                ok,
                "offset {d}: {r:?}"
            );
        }
    }

    /// safeguard: 164.312(d)
    #[test]
    fn a_code_is_never_accepted_twice() {
        let s = secret();
        let p = TotpParams::default();
        let now = Timestamp::from_unix_secs(1_700_000_000);
        let code = code_at(&s, now, &p);
        let TotpCheck::Accepted { step } = verify(&s, &p, &code, now, None) else {
            panic!()
        };
        assert_eq!(verify(&s, &p, &code, now, Some(step)), TotpCheck::Replayed);
        // still refused in the next step, where it is the -1 step of the window
        assert_eq!(
            verify(
                &s,
                &p,
                &code,
                now.plus(std::time::Duration::from_secs(25)),
                Some(step)
            ),
            TotpCheck::Replayed
        );
        // and two steps on it is simply outside the window
        assert_eq!(
            verify(
                &s,
                &p,
                &code,
                now.plus(std::time::Duration::from_secs(45)),
                Some(step)
            ),
            TotpCheck::Wrong
        );
        // an older code in the window is refused once a newer one was used
        let older = code_for_step(&s, step - 1, &p);
        assert_eq!(verify(&s, &p, &older, now, Some(step)), TotpCheck::Replayed);
        // the next step's code is fine
        let next = code_for_step(&s, step + 1, &p);
        assert_eq!(
            verify(&s, &p, &next, now, Some(step)),
            TotpCheck::Accepted { step: step + 1 }
        );
    }

    #[test]
    fn malformed_codes_are_wrong() {
        let s = secret();
        let p = TotpParams::default();
        let now = Timestamp::from_unix_secs(1_700_000_000);
        let code = code_at(&s, now, &p);
        assert_eq!(
            verify(&s, &p, &format!("{} {}", &code[..3], &code[3..]), now, None),
            TotpCheck::Accepted {
                step: step_at(now, &p)
            }
        );
        for bad in ["", "12345", "1234567", "12345a", "١٢٣٤٥٦"] {
            assert_eq!(verify(&s, &p, bad, now, None), TotpCheck::Wrong, "{bad}");
        }
    }

    #[test]
    fn enrolment_uri_and_qr() {
        let s = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        let e = TotpEnrolment::new(
            "Lethe st-mungo",
            &UserName::parse("alice").unwrap(),
            &s,
            &TotpParams::default(),
        );
        assert_eq!(
            e.uri().expose(),
            "otpauth://totp/Lethe%20st-mungo:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Lethe%20st-mungo&algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(format!("{e:?}"), "TotpEnrolment(<redacted>)");
        assert_eq!(format!("{s:?}"), "TotpSecret(<redacted>)");
        let term = e.qr_terminal();
        assert!(term.expose().lines().count() > 15);
        assert!(term.expose().contains('▀') || term.expose().contains('▄'));
        let svg = e.qr_svg();
        assert!(svg.expose().contains("<svg") && svg.expose().contains("</svg>"));
    }

    proptest! {
        /// safeguard: 164.312(d)
        #[test]
        fn no_step_is_ever_accepted_twice(start in 0u64..4_000_000_000, offsets in proptest::collection::vec(-40i64..40, 1..30)) {
            // a user submitting codes from arbitrary moments: whatever is accepted
            // has a strictly increasing step
            let s = secret();
            let p = TotpParams::default();
            let mut last: Option<u64> = None;
            let mut now = Timestamp::from_unix_secs(start);
            for o in offsets {
                now = now.plus(std::time::Duration::from_secs(7));
                let code_time = Timestamp::from_unix_secs((now.unix_secs() as i64 + o).max(0) as u64);
                let code = code_at(&s, code_time, &p);
                if let TotpCheck::Accepted { step } = verify(&s, &p, &code, now, last) {
                    prop_assert!(last.is_none_or(|l| step > l));
                    prop_assert!(step + 1 >= step_at(now, &p) && step <= step_at(now, &p) + 1);
                    last = Some(step);
                }
            }
        }

        #[test]
        fn parse_code_accepts_only_digits(s in "\\PC{0,12}") {
            if let Some(c) = parse_code(&s, 6) {
                prop_assert_eq!(c.len(), 6);
                prop_assert!(c.bytes().all(|b| b.is_ascii_digit()));
            }
        }
    }
}
