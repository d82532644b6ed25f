//! Randomness as a parameter. Secrets, salts and ids are drawn from an [`Entropy`]
//! the caller hands in: the daemon passes [`OsEntropy`]; tests pass a seeded source
//! so that every generated value is reproducible.

/// A source of random bytes. Implementations used outside tests must be
/// cryptographically secure.
pub trait Entropy {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);
}

/// The operating system's CSPRNG (`getrandom(2)`).
#[derive(Debug, Clone, Copy, Default)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        // getrandom(2) only fails before the kernel pool is initialised (it blocks
        // instead) or on a seccomp denial; no secret may be made without it.
        getrandom::fill(buf).expect("the kernel random number generator is unavailable");
    }
}

impl<E: Entropy + ?Sized> Entropy for &mut E {
    fn fill(&mut self, buf: &mut [u8]) {
        (**self).fill(buf)
    }
}

/// `N` random bytes.
pub(crate) fn bytes<const N: usize>(e: &mut (impl Entropy + ?Sized)) -> [u8; N] {
    let mut b = [0u8; N];
    e.fill(&mut b);
    b
}

/// A deterministic, NOT secure source for tests (SplitMix64).
#[cfg(test)]
#[derive(Debug, Clone)]
pub(crate) struct TestEntropy(pub u64);

#[cfg(test)]
impl Entropy for TestEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_entropy_fills() {
        let a: [u8; 32] = bytes(&mut OsEntropy);
        let b: [u8; 32] = bytes(&mut OsEntropy);
        assert_ne!(a, b);
    }

    #[test]
    fn test_entropy_is_reproducible() {
        let a: [u8; 13] = bytes(&mut TestEntropy(7));
        let b: [u8; 13] = bytes(&mut TestEntropy(7));
        let c: [u8; 13] = bytes(&mut TestEntropy(8));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
