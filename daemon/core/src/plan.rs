//! A wipe plan: the passes to write and how the result is verified, plus the
//! checkpoint that lets an interrupted job resume.

use crate::pattern::Pattern;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How the final pass is read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum VerifyMode {
    /// Read every byte back and compare.
    Full,
    /// Read a seeded stratified sample covering `ppm` parts per million.
    Sample { ppm: u32 },
    /// Do not read back. Such a job can never be certified as a pass.
    Off,
}

impl VerifyMode {
    /// Coverage in parts per million of the device.
    pub fn coverage_ppm(&self) -> u32 {
        match self {
            VerifyMode::Full => 1_000_000,
            VerifyMode::Sample { ppm } => *ppm,
            VerifyMode::Off => 0,
        }
    }
}

impl fmt::Display for VerifyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyMode::Full => f.write_str("full"),
            VerifyMode::Off => f.write_str("off"),
            VerifyMode::Sample { ppm } => {
                let whole = ppm / 10_000;
                let frac = ppm % 10_000;
                if frac == 0 {
                    write!(f, "sample:{whole}")
                } else {
                    let s = format!("{frac:04}");
                    write!(f, "sample:{whole}.{}", s.trim_end_matches('0'))
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid verify mode {0:?}: expected full, off or sample:PERCENT with 0 < PERCENT <= 100 (up to 4 decimals)")]
pub struct VerifyParseError(pub String);

impl FromStr for VerifyMode {
    type Err = VerifyParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || VerifyParseError(s.to_string());
        match s.trim().to_ascii_lowercase().as_str() {
            "full" => Ok(VerifyMode::Full),
            "off" | "none" => Ok(VerifyMode::Off),
            other => {
                let pct = other.strip_prefix("sample:").ok_or_else(err)?;
                let pct = pct.strip_suffix('%').unwrap_or(pct);
                let (whole, frac) = pct.split_once('.').unwrap_or((pct, ""));
                if whole.is_empty() && frac.is_empty() || frac.len() > 4 {
                    return Err(err());
                }
                let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
                if !digits(whole) || !digits(frac) || whole.len() > 3 {
                    return Err(err());
                }
                let w: u32 = if whole.is_empty() {
                    0
                } else {
                    whole.parse().map_err(|_| err())?
                };
                let f: u32 = if frac.is_empty() {
                    0
                } else {
                    format!("{frac:0<4}").parse().map_err(|_| err())?
                };
                let ppm = w * 10_000 + f;
                match ppm {
                    0 => Err(err()),
                    1_000_000 => Ok(VerifyMode::Full),
                    p if p > 1_000_000 => Err(err()),
                    p => Ok(VerifyMode::Sample { ppm: p }),
                }
            }
        }
    }
}

/// The passes to write, in order, and the verification of the last one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WipePlan {
    pub passes: Vec<Pattern>,
    /// True when the last pass is the zero blanking pass added by `--blank`.
    pub blank: bool,
    pub verify: VerifyMode,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("--passes must be between 1 and {max}, got {got}")]
    Passes { got: u32, max: u32 },
}

impl WipePlan {
    pub const MAX_PASSES: u32 = 64;

    /// `passes` passes of `pattern`, then an optional zero pass.
    pub fn new(
        pattern: Pattern,
        passes: u32,
        blank: bool,
        verify: VerifyMode,
    ) -> Result<Self, PlanError> {
        if passes == 0 || passes > Self::MAX_PASSES {
            return Err(PlanError::Passes {
                got: passes,
                max: Self::MAX_PASSES,
            });
        }
        let mut list = vec![pattern; passes as usize];
        if blank {
            list.push(Pattern::ZERO);
        }
        Ok(Self {
            passes: list,
            blank,
            verify,
        })
    }

    /// The pattern the device must hold when the job is done.
    pub fn final_pattern(&self) -> Pattern {
        // `new` guarantees at least one pass.
        self.passes.last().copied().unwrap_or(Pattern::ZERO)
    }

    /// Index of the pass whose content verification compares against.
    pub fn final_pass_index(&self) -> usize {
        self.passes.len().saturating_sub(1)
    }
}

/// Where a job stands; persisted so `--resume` can continue.
///
/// Everything below `offset` in pass `pass` has been written and flushed to
/// the device before the checkpoint was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "phase")]
pub enum Checkpoint {
    Writing {
        pass: usize,
        offset: u64,
    },
    /// Verification restarts from the beginning on resume: it is read-only and
    /// its result must come from one uninterrupted sweep.
    Verifying,
    Done,
}

impl Checkpoint {
    pub const START: Checkpoint = Checkpoint::Writing { pass: 0, offset: 0 };
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn verify_modes_parse() {
        assert_eq!("full".parse::<VerifyMode>().unwrap(), VerifyMode::Full);
        assert_eq!("off".parse::<VerifyMode>().unwrap(), VerifyMode::Off);
        assert_eq!(
            "sample:10".parse::<VerifyMode>().unwrap(),
            VerifyMode::Sample { ppm: 100_000 }
        );
        assert_eq!(
            "sample:0.5%".parse::<VerifyMode>().unwrap(),
            VerifyMode::Sample { ppm: 5_000 }
        );
        assert_eq!(
            "sample:100".parse::<VerifyMode>().unwrap(),
            VerifyMode::Full
        );
        for bad in [
            "sample:0",
            "sample:",
            "sample:101",
            "sample:1.23456",
            "sample:-1",
            "x",
            "sample:1e3",
            "sample:.",
        ] {
            assert!(bad.parse::<VerifyMode>().is_err(), "{bad}");
        }
    }

    #[test]
    fn plan_with_blank_ends_in_zero() {
        let p = WipePlan::new(Pattern::Random, 2, true, VerifyMode::Full).unwrap();
        assert_eq!(
            p.passes,
            vec![Pattern::Random, Pattern::Random, Pattern::ZERO]
        );
        assert_eq!(p.final_pattern(), Pattern::ZERO);
        assert_eq!(p.final_pass_index(), 2);
        assert!(WipePlan::new(Pattern::Random, 0, false, VerifyMode::Full).is_err());
    }

    proptest! {
        #[test]
        fn sample_display_round_trips(ppm in 1u32..1_000_000) {
            let m = VerifyMode::Sample { ppm };
            prop_assert_eq!(m.to_string().parse::<VerifyMode>().unwrap(), m);
        }

        #[test]
        fn verify_parse_never_panics(s in ".{0,16}") {
            let _ = s.parse::<VerifyMode>();
        }
    }
}
