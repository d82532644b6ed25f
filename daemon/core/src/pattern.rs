//! Overwrite patterns.
//!
//! `Random` is a keyed AES-128-CTR keystream (generated in `lethe-wipe`): the
//! verify pass regenerates it from the job key instead of storing it.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What one overwrite pass writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "byte")]
pub enum Pattern {
    /// Cryptographically random stream, reproducible from the job key.
    Random,
    /// Every byte is this value (0x00 for zero, 0xFF for one).
    Fill(u8),
}

impl Pattern {
    pub const ZERO: Pattern = Pattern::Fill(0x00);
    pub const ONE: Pattern = Pattern::Fill(0xFF);

    /// Name used on the command line and in certificates.
    pub fn describe(&self) -> String {
        match self {
            Pattern::Random => "random (AES-128-CTR keystream)".to_string(),
            Pattern::Fill(b) => format!("fill 0x{b:02x}"),
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Random => f.write_str("random"),
            Pattern::Fill(0x00) => f.write_str("zero"),
            Pattern::Fill(0xFF) => f.write_str("one"),
            Pattern::Fill(b) => write!(f, "0x{b:02x}"),
        }
    }
}

/// A pattern string that is not `random`, `zero`, `one` or `0xHH`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown pattern {0:?}: expected random, zero, one or a byte such as 0xA5")]
pub struct PatternParseError(pub String);

impl FromStr for Pattern {
    type Err = PatternParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.as_str() {
            "random" => Ok(Pattern::Random),
            "zero" | "zeros" | "zeroes" => Ok(Pattern::ZERO),
            "one" | "ones" => Ok(Pattern::ONE),
            _ => {
                let hex = lower
                    .strip_prefix("0x")
                    .ok_or_else(|| PatternParseError(s.to_string()))?;
                if hex.is_empty() || hex.len() > 2 {
                    return Err(PatternParseError(s.to_string()));
                }
                u8::from_str_radix(hex, 16)
                    .map(Pattern::Fill)
                    .map_err(|_| PatternParseError(s.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_names_and_bytes() {
        assert_eq!("random".parse::<Pattern>().unwrap(), Pattern::Random);
        assert_eq!("zero".parse::<Pattern>().unwrap(), Pattern::Fill(0));
        assert_eq!("ONE".parse::<Pattern>().unwrap(), Pattern::Fill(0xff));
        assert_eq!("0xA5".parse::<Pattern>().unwrap(), Pattern::Fill(0xa5));
        assert_eq!("0x7".parse::<Pattern>().unwrap(), Pattern::Fill(7));
        for bad in ["", "0x", "0x100", "a5", "rand", "0xzz"] {
            assert!(bad.parse::<Pattern>().is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn display_round_trips(b in any::<u8>()) {
            let p = Pattern::Fill(b);
            prop_assert_eq!(p.to_string().parse::<Pattern>().unwrap(), p);
        }

        #[test]
        fn never_panics(s in ".{0,12}") {
            let _ = s.parse::<Pattern>();
        }
    }
}
