//! Argon2id password hashes as PHC strings
//! (`$argon2id$v=19$m=65536,t=6,p=1$<salt>$<hash>`), with parameters from the
//! configuration, a calibration helper, and the "is this hash below policy?" test
//! that drives rehash-on-login.

use crate::entropy::{self, Entropy};
use argon2::password_hash::{PasswordHash as Phc, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes. The `argon2` crate computes lanes on one thread, so more lanes cost
    /// time without using a second core; 1 is the right value here.
    pub parallelism: u32,
}

impl HashParams {
    /// The smallest parameters Argon2 allows. For tests only: a hash costs microseconds.
    pub const TEST_MINIMUM: HashParams = HashParams {
        memory_kib: Params::MIN_M_COST,
        iterations: Params::MIN_T_COST,
        parallelism: 1,
    };

    /// The shipped default: 64 MiB (RFC 9106's second recommended option),
    /// one lane, and 4 passes: `examples/calibrate.rs` picked 4 on the
    /// reference machine (2 shared cores), where one hash took 0.52-0.72 s
    /// (docs/auth.md has the figures). Re-run the example on the target
    /// hardware and set `[auth.hash]` from its output.
    pub const DEFAULT: HashParams = HashParams {
        memory_kib: 64 * 1024,
        iterations: 4,
        parallelism: 1,
    };

    fn argon2(&self) -> Result<Argon2<'static>, HashError> {
        let p = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| HashError::Params(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, p))
    }

    /// Whether these are valid Argon2 parameters.
    pub fn validate(&self) -> Result<(), HashError> {
        self.argon2().map(|_| ())
    }
}

impl Default for HashParams {
    fn default() -> Self {
        HashParams::DEFAULT
    }
}

/// Errors of hashing and verification. A wrong password is not an error:
/// [`verify_password`] returns `Ok(false)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    #[error("invalid Argon2 parameters: {0}")]
    Params(String),
    #[error("stored password hash is not a valid Argon2id PHC string")]
    Malformed,
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// A stored password hash (a PHC string). Never printed: `Debug` is redacted and
/// the type is not `Serialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a stored PHC string after checking that it parses as Argon2id.
    pub fn from_phc(s: String) -> Result<PasswordHash, HashError> {
        let parsed = Phc::new(&s).map_err(|_| HashError::Malformed)?;
        if parsed.algorithm != Algorithm::Argon2id.ident() {
            return Err(HashError::Malformed);
        }
        Params::try_from(&parsed).map_err(|_| HashError::Malformed)?;
        Ok(PasswordHash(s))
    }

    /// The PHC string, for the store.
    pub(crate) fn as_phc(&self) -> &str {
        &self.0
    }

    /// The parameters this hash was made with.
    pub fn params(&self) -> HashParams {
        // from_phc checked that these parse
        let parsed = Phc::new(&self.0).expect("checked at construction");
        let p = Params::try_from(&parsed).expect("checked at construction");
        HashParams {
            memory_kib: p.m_cost(),
            iterations: p.t_cost(),
            parallelism: p.p_cost(),
        }
    }

    /// Whether this hash is weaker than `policy` in memory or passes, so the
    /// login that just verified it should store a fresh hash.
    pub fn below(&self, policy: &HashParams) -> bool {
        let p = self.params();
        p.memory_kib < policy.memory_kib || p.iterations < policy.iterations
    }
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// Hashes `password` with a 16-byte random salt.
pub fn hash_password(
    password: &str,
    params: &HashParams,
    e: &mut (impl Entropy + ?Sized),
) -> Result<PasswordHash, HashError> {
    let salt_bytes: [u8; 16] = entropy::bytes(e);
    let salt =
        SaltString::encode_b64(&salt_bytes).map_err(|e| HashError::Hashing(e.to_string()))?;
    let phc = params
        .argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| HashError::Hashing(e.to_string()))?
        .to_string();
    Ok(PasswordHash(phc))
}

/// Whether `password` matches `hash` (constant-time comparison inside argon2).
pub fn verify_password(password: &str, hash: &PasswordHash) -> Result<bool, HashError> {
    let parsed = Phc::new(&hash.0).map_err(|_| HashError::Malformed)?;
    match Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(HashError::Hashing(e.to_string())),
    }
}

/// Finds the smallest pass count at `memory_kib` whose hash takes at least
/// `target`, measuring with `measure` (pure: the measurement is injected).
/// Doubling then bisection: about `2·log2(t)` measurements.
pub fn calibrate(
    target: Duration,
    memory_kib: u32,
    max_iterations: u32,
    mut measure: impl FnMut(&HashParams) -> Duration,
) -> HashParams {
    let at = |t: u32| HashParams {
        memory_kib,
        iterations: t,
        parallelism: 1,
    };
    let max = max_iterations.max(1);
    // find hi with measure(hi) >= target (or hi = max)
    let mut lo = 0u32; // measure(lo) < target (0 = nothing measured)
    let mut hi = 1u32;
    while hi < max && measure(&at(hi)) < target {
        lo = hi;
        hi = (hi * 2).min(max);
    }
    // bisect (lo, hi]
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if measure(&at(mid)) >= target {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    at(hi)
}

/// Times one hash with `params` on this machine (the impure half of calibration).
pub fn time_one_hash(params: &HashParams) -> Result<Duration, HashError> {
    let a = params.argon2()?;
    let salt = SaltString::encode_b64(&[7u8; 16]).map_err(|e| HashError::Hashing(e.to_string()))?;
    let start = std::time::Instant::now();
    a.hash_password(b"calibration password", &salt)
        .map_err(|e| HashError::Hashing(e.to_string()))?;
    Ok(start.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::TestEntropy;
    use proptest::prelude::*;

    /// safeguard: 164.312(d)
    #[test]
    fn hash_and_verify() {
        let h = hash_password(
            "a long passphrase",
            &HashParams::TEST_MINIMUM,
            &mut TestEntropy(1),
        )
        .unwrap();
        assert!(
            h.as_phc().starts_with("$argon2id$v=19$m=8,t=1,p=1$"),
            "{}",
            h.as_phc()
        );
        assert!(verify_password("a long passphrase", &h).unwrap());
        assert!(!verify_password("a long passphrasE", &h).unwrap());
        assert_eq!(format!("{h:?}"), "PasswordHash(<redacted>)");
        assert_eq!(h.params(), HashParams::TEST_MINIMUM);
        assert!(h.below(&HashParams::DEFAULT));
        assert!(!h.below(&HashParams::TEST_MINIMUM));
        let again = PasswordHash::from_phc(h.as_phc().to_owned()).unwrap();
        assert!(verify_password("a long passphrase", &again).unwrap());
    }

    /// safeguard: 164.312(d)
    #[test]
    fn known_vector_verifies() {
        // Made once with the reference implementation (`argon2` CLI from the
        // Debian `argon2` package):
        // echo -n password | argon2 somesalt -id -t 2 -k 16 -p 1 -e
        let h = PasswordHash::from_phc(
            "$argon2id$v=19$m=16,t=2,p=1$c29tZXNhbHQ$BYICwHI82IwkQIzKwcv4KN7mO884Q6FQ6jZKHgtOH/g"
                .into(),
        )
        .unwrap();
        assert!(verify_password("password", &h).unwrap());
        assert!(!verify_password("passwore", &h).unwrap());
    }

    /// safeguard: 164.312(d)
    #[test]
    fn refuses_other_algorithms_and_garbage() {
        assert_eq!(
            PasswordHash::from_phc("plain".into()),
            Err(HashError::Malformed)
        );
        assert_eq!(
            PasswordHash::from_phc(
                "$argon2i$v=19$m=16,t=2,p=1$c29tZXNhbHQ$3PCg1m+yQqPwF7bcdN+wBw".into()
            ),
            Err(HashError::Malformed)
        );
        assert!(HashParams {
            memory_kib: 1,
            iterations: 1,
            parallelism: 1
        }
        .validate()
        .is_err());
        assert!(HashParams::DEFAULT.validate().is_ok());
    }

    #[test]
    fn calibration_finds_smallest_sufficient_pass_count() {
        // fake cost model: 70 ms per pass at 64 MiB
        let mut calls = 0;
        let p = calibrate(Duration::from_millis(500), 65536, 64, |p| {
            calls += 1;
            Duration::from_millis(70 * u64::from(p.iterations))
        });
        assert_eq!(p.iterations, 8); // 7 passes = 490 ms < 500
        assert_eq!(p.memory_kib, 65536);
        assert!(calls <= 8, "{calls}");
        // capped
        let p = calibrate(Duration::from_secs(100), 65536, 10, |p| {
            Duration::from_millis(u64::from(p.iterations))
        });
        assert_eq!(p.iterations, 10);
        // one pass already enough
        let p = calibrate(Duration::from_millis(1), 65536, 10, |_| {
            Duration::from_secs(1)
        });
        assert_eq!(p.iterations, 1);
    }

    proptest! {
        #[test]
        fn calibration_is_minimal_for_monotone_costs(per_pass in 1u64..400, target in 1u64..3000, max in 1u32..40) {
            let cost = |t: u32| Duration::from_millis(per_pass * u64::from(t));
            let p = calibrate(Duration::from_millis(target), 1024, max, |p| cost(p.iterations));
            let t = p.iterations;
            prop_assert!(t >= 1 && t <= max);
            prop_assert!(t == max || cost(t) >= Duration::from_millis(target));
            prop_assert!(t == 1 || cost(t - 1) < Duration::from_millis(target));
        }
    }
}
