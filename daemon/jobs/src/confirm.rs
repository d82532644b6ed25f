//! The operator's confirmation, carried as data and checked by the library
//! against the device it actually opened, never only in a prompt.
//!
//! An edge shows the operator a device (from [`crate::Jobs::inspect`]) and
//! asks them to type its serial number or its exact size in bytes: a
//! habit-proof check that they are looking at the right drive. The answer
//! travels in the request with the identity that was shown. After the
//! exclusive open the library requires both that the answer confirms the
//! shown device and that the opened device *is* the shown device, so a drive
//! swapped while the prompt waited is refused even when the answer was right.

use crate::identity::DeviceIdentity;
use crate::refusal::Refusal;
use serde::{Deserialize, Serialize};

/// How the operator confirmed a destructive job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Confirmation {
    /// The operator was shown `shown` and typed `answer`.
    Typed {
        shown: Box<DeviceIdentity>,
        answer: String,
    },
    /// Confirmed outside this request (`--yes` on the command line, an
    /// operator action already authorised by the caller). `by` says which,
    /// and goes into the job's history.
    Waived { by: String },
}

impl Confirmation {
    /// The operator typed `answer` after being shown `shown`.
    pub fn typed(shown: DeviceIdentity, answer: impl Into<String>) -> Self {
        Confirmation::Typed {
            shown: Box::new(shown),
            answer: answer.into(),
        }
    }

    /// Whether this confirms the job on `opened`, the device held open.
    pub fn check(&self, opened: &DeviceIdentity) -> Result<(), Refusal> {
        match self {
            Confirmation::Waived { .. } => Ok(()),
            Confirmation::Typed { shown, answer } => {
                if !accepts(shown, answer) {
                    return Err(Refusal::NotConfirmed(format!(
                        "{answer:?} is neither the serial number nor the size of {}",
                        shown.path
                    )));
                }
                if let Some(why) = shown.mismatch(opened) {
                    return Err(Refusal::NotConfirmed(format!(
                        "the device opened is not the one that was confirmed ({why})"
                    )));
                }
                Ok(())
            }
        }
    }

    /// One line for the job's history.
    pub fn describe(&self) -> String {
        match self {
            Confirmation::Typed { .. } => {
                "confirmed by the operator typing the device's serial number or size".into()
            }
            Confirmation::Waived { by } => format!("confirmation waived: {by}"),
        }
    }
}

/// Whether `answer` confirms `dev`: its serial number or its exact size.
pub fn accepts(dev: &DeviceIdentity, answer: &str) -> bool {
    let answer = answer.trim();
    if answer.is_empty() {
        return false;
    }
    let serial_ok = dev
        .serial
        .as_deref()
        .is_some_and(|s| !s.trim().is_empty() && s.trim() == answer);
    // A medium without a size (a tape) is confirmed by its label alone:
    // "0" must never confirm anything.
    serial_ok || (dev.size_bytes > 0 && answer == dev.size_bytes.to_string())
}

/// What confirming does to the device, for the prompt's first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consequence {
    /// A wipe or purge.
    Destroyed,
    /// A degauss: the drive itself is destroyed.
    Degaussed,
    /// An image restore overwrites the device.
    Overwritten,
}

/// The prompt shown before reading the answer.
pub fn prompt(dev: &DeviceIdentity, what: Consequence) -> String {
    let expect = match (dev.serial.as_deref(), dev.transport.as_str()) {
        (Some(s), "tape") => format!("its label ({s})"),
        (Some(s), _) if !s.trim().is_empty() && dev.size_bytes == 0 => {
            format!("its serial number ({s})")
        }
        (Some(s), _) if !s.trim().is_empty() => format!(
            "its serial number ({s}) or its size in bytes ({})",
            dev.size_bytes
        ),
        _ => format!("its size in bytes ({})", dev.size_bytes),
    };
    let head = match what {
        Consequence::Destroyed => format!("ALL DATA on {} will be destroyed.", dev.label()),
        Consequence::Degaussed => format!(
            "Degaussing DESTROYS {}: the drive will not work again.",
            dev.label()
        ),
        Consequence::Overwritten => format!(
            "ALL DATA on {} will be overwritten by the restored image.",
            dev.label()
        ),
    };
    format!("{head}\nTo confirm, type {expect}: ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::sample;

    #[test]
    fn serial_or_exact_size_confirms() {
        let d = sample("/dev/loop7", Some("WD-123"), 268_439_552);
        let none = sample("/dev/loop7", None, 268_439_552);
        assert!(accepts(&d, "WD-123\n"));
        assert!(accepts(&d, " 268439552 "));
        assert!(accepts(&none, "268439552"));
        assert!(!accepts(&none, ""));
        assert!(!accepts(&sample("/dev/x", Some(""), 1), ""));
        assert!(!accepts(&d, "yes"));
        assert!(!accepts(&d, "268439551"));
        assert!(prompt(&none, Consequence::Destroyed).contains("268439552"));
        assert!(prompt(&d, Consequence::Degaussed).starts_with("Degaussing DESTROYS"));
    }

    /// safeguard: rule:checked-device
    #[test]
    fn a_tape_is_named_and_confirmed_by_its_label_never_by_a_size() {
        let tape = crate::degauss::tape_identity("LTO-000123");
        let p = prompt(&tape, Consequence::Degaussed);
        assert!(p.contains("tape LTO-000123"), "{p}");
        assert!(p.contains("type its label (LTO-000123)"), "{p}");
        assert!(!p.contains("bytes"), "a tape has no size in bytes: {p}");
        assert!(accepts(&tape, "LTO-000123"));
        assert!(!accepts(&tape, "0"), "a size of 0 confirms nothing");
    }

    #[test]
    fn a_right_answer_for_another_device_is_refused() {
        let shown = sample("/dev/sdb", Some("S1"), 1 << 30);
        let ok = Confirmation::Typed {
            shown: Box::new(shown.clone()),
            answer: "S1".into(),
        };
        assert_eq!(ok.check(&shown), Ok(()));
        // Swapped while the prompt waited: same size, another serial.
        let other = sample("/dev/sdb", Some("S2"), 1 << 30);
        let e = ok.check(&other).unwrap_err();
        assert!(
            e.to_string().contains("not the one that was confirmed"),
            "{e}"
        );
        // A wrong answer.
        let wrong = Confirmation::Typed {
            shown: Box::new(shown.clone()),
            answer: "yes".into(),
        };
        assert!(matches!(wrong.check(&shown), Err(Refusal::NotConfirmed(_))));
        // Waived: the caller vouches.
        let yes = Confirmation::Waived { by: "--yes".into() };
        assert_eq!(yes.check(&other), Ok(()));
        assert!(yes.describe().contains("--yes"));
    }
}
