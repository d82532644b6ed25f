//! The operator's go-ahead for one degauss cycle, as a value the driver checks before it arms
//! or fires (like a wipe's typed confirmation).
use crate::ControllerError;
use serde::{Deserialize, Serialize};

/// How the operator confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentBy {
    /// Typed the medium's serial number, label or exact size.
    Typed,
    /// Ran the job with an explicit `--yes`.
    AssumeYes,
}

/// Consent to destroy one named medium in the degausser. [`crate::Controller::arm`] records the
/// medium in the arm, and [`crate::Controller::fire`] refuses a consent for another medium.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    medium: String,
    by: ConsentBy,
}

impl Consent {
    /// The operator typed `answer` when asked to confirm `medium`; it must equal one of
    /// `accepted` (its serial number or label, its exact size in bytes), ignoring surrounding
    /// whitespace. Empty answers and empty accepted values never match.
    pub fn typed(
        medium: impl Into<String>,
        accepted: &[&str],
        answer: &str,
    ) -> Result<Consent, ControllerError> {
        let medium = medium.into();
        let answer = answer.trim();
        let ok = !answer.is_empty()
            && accepted
                .iter()
                .any(|a| !a.trim().is_empty() && a.trim() == answer);
        if ok {
            Ok(Consent {
                medium,
                by: ConsentBy::Typed,
            })
        } else {
            Err(ControllerError::NotConfirmed(format!(
                "the answer does not match {medium}"
            )))
        }
    }

    /// The operator passed `--yes` for `medium`.
    pub fn assume_yes(medium: impl Into<String>) -> Consent {
        Consent {
            medium: medium.into(),
            by: ConsentBy::AssumeYes,
        }
    }

    /// The medium this consent is for.
    pub fn medium(&self) -> &str {
        &self.medium
    }

    /// How it was given.
    pub fn by(&self) -> ConsentBy {
        self.by
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_answer_must_match_a_non_empty_accepted_value() {
        let c = Consent::typed("tape:LTO-1", &["LTO-1", "0"], " LTO-1\n").unwrap();
        assert_eq!((c.medium(), c.by()), ("tape:LTO-1", ConsentBy::Typed));
        assert!(Consent::typed("x", &["LTO-1"], "LTO-2").is_err());
        assert!(Consent::typed("x", &["", "  "], "").is_err());
        assert!(Consent::typed("x", &[""], " ").is_err());
        assert!(Consent::typed("x", &[], "anything").is_err());
        assert_eq!(Consent::assume_yes("x").by(), ConsentBy::AssumeYes);
    }
}
