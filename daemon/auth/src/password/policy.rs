//! Password quality policy, after kanidm's ladder: length (in graphemes), no
//! variant of the user's name, the breached-password list, then zxcvbn's score.
//! Every failed rule is reported, each with a specific message, so a user fixes
//! everything in one go. Reuse of recent passwords is checked by the
//! authenticator, which holds the history hashes.

use crate::ids::UserName;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::OnceLock;
use unicode_segmentation::UnicodeSegmentation;

/// Configurable password rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordPolicy {
    /// Minimum length in graphemes. Default 10: kanidm's minimum for accounts that
    /// also have a second factor (every Lethe account has TOTP), from NIST SP 800-63B.
    pub min_length: usize,
    /// Maximum length in graphemes (NIST: allow at least 64). Default 128.
    pub max_length: usize,
    /// zxcvbn score required (0-4). Default 4, the maximum, as kanidm: more than
    /// 10^10 guesses estimated.
    pub min_score: u8,
    /// How many previous passwords may not be reused (the current one is always
    /// refused). Default 5. Each costs one Argon2 verification at a password change.
    pub history: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_length: 10,
            max_length: 128,
            min_score: 4,
            history: 5,
        }
    }
}

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum PasswordProblem {
    TooShort {
        min: usize,
        actual: usize,
    },
    TooLong {
        max: usize,
    },
    ContainsUserName,
    Breached,
    TooGuessable {
        score: u8,
        required: u8,
        warning: Option<String>,
        suggestions: Vec<String>,
    },
    RecentlyUsed {
        history: usize,
    },
}

impl std::fmt::Display for PasswordProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordProblem::TooShort { min, actual } => write!(
                f,
                "The password has {actual} characters; at least {min} are required."
            ),
            PasswordProblem::TooLong { max } => {
                write!(f, "The password is longer than {max} characters.")
            }
            PasswordProblem::ContainsUserName => {
                f.write_str("The password contains the user name (or a variant of it).")
            }
            PasswordProblem::Breached => f.write_str(
                "The password is on the list of breached or common passwords; choose another.",
            ),
            PasswordProblem::TooGuessable {
                score,
                required,
                warning,
                suggestions,
            } => {
                write!(
                    f,
                    "The password is too easy to guess (strength {score} of 4, {required} required)."
                )?;
                if let Some(w) = warning {
                    write!(f, " {w}")?;
                }
                for s in suggestions {
                    write!(f, " {s}")?;
                }
                Ok(())
            }
            PasswordProblem::RecentlyUsed { history } => write!(
                f,
                "The password is the current one or one of the last {history}; choose a new one."
            ),
        }
    }
}

/// A refused password, with every reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}", self.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" "))]
pub struct PasswordRejection {
    pub problems: Vec<PasswordProblem>,
}

/// The breached-password list: the shipped list (compiled in from
/// `data/badlist.txt`) plus the admin's additions from the store. Entries and
/// candidates are compared lowercased.
#[derive(Clone, Debug, Default)]
pub struct Badlist {
    extra: HashSet<String>,
}

static SHIPPED_TEXT: &str = include_str!("../../data/badlist.txt");

fn shipped() -> &'static [&'static str] {
    static LIST: OnceLock<Vec<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| {
        let mut v: Vec<&str> = SHIPPED_TEXT
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect();
        v.sort_unstable();
        v
    })
}

impl Badlist {
    /// The shipped list plus `additions`.
    pub fn new(additions: impl IntoIterator<Item = String>) -> Badlist {
        Badlist {
            extra: additions.into_iter().map(|w| w.to_lowercase()).collect(),
        }
    }

    /// Number of shipped entries.
    pub fn shipped_len() -> usize {
        shipped().len()
    }

    /// Adds entries (already stored by the caller).
    pub fn extend(&mut self, words: impl IntoIterator<Item = String>) {
        self.extra
            .extend(words.into_iter().map(|w| w.to_lowercase()));
    }

    /// Whether `password` is listed.
    pub fn contains(&self, password: &str) -> bool {
        let lower = password.to_lowercase();
        shipped().binary_search(&lower.as_str()).is_ok() || self.extra.contains(&lower)
    }
}

/// Normalises for the name-variant check: lowercase, undo common character
/// substitutions, keep letters and digits only.
fn fold(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .filter_map(|c| match c {
            '0' => Some('o'),
            '1' | '!' | '|' => Some('l'),
            '3' => Some('e'),
            '4' | '@' => Some('a'),
            '5' | '$' => Some('s'),
            '7' => Some('t'),
            '8' => Some('b'),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// Whether `password` contains `input` (a user name or another related word),
/// reversed or not, through case changes, separators and l33t substitutions.
/// Parts of a dotted/underscored name of 4+ characters count on their own.
fn contains_variant(password: &str, input: &str) -> bool {
    let pw = fold(password);
    let mut candidates: Vec<String> = vec![fold(input)];
    candidates.extend(
        input
            .split(|c: char| !c.is_alphanumeric())
            .filter(|p| p.chars().count() >= 4)
            .map(fold),
    );
    candidates
        .into_iter()
        .filter(|c| c.chars().count() >= 3)
        .any(|c| {
            let rev: String = c.chars().rev().collect();
            pw.contains(&c) || pw.contains(&rev)
        })
}

/// Checks `password` for `user`. `related` are other words tied to the user
/// (display name, e-mail, the appliance's host name).
pub fn check_quality(
    password: &str,
    user: &UserName,
    related: &[&str],
    policy: &PasswordPolicy,
    badlist: &Badlist,
) -> Result<(), PasswordRejection> {
    let mut problems = Vec::new();
    let len = password.graphemes(true).count();
    if len < policy.min_length {
        problems.push(PasswordProblem::TooShort {
            min: policy.min_length,
            actual: len,
        });
    }
    if len > policy.max_length {
        // zxcvbn's cost grows with length: refuse before scoring
        problems.push(PasswordProblem::TooLong {
            max: policy.max_length,
        });
        return Err(PasswordRejection { problems });
    }
    if std::iter::once(user.as_str())
        .chain(related.iter().copied())
        .any(|i| contains_variant(password, i))
    {
        problems.push(PasswordProblem::ContainsUserName);
    }
    if badlist.contains(password) {
        problems.push(PasswordProblem::Breached);
    }
    let mut inputs = vec![user.as_str()];
    inputs.extend_from_slice(related);
    let entropy = zxcvbn::zxcvbn(password, &inputs);
    let score = u8::from(entropy.score());
    if score < policy.min_score.min(4) {
        let (warning, mut suggestions) = match entropy.feedback() {
            Some(fb) => (
                fb.warning().map(|w| w.to_string()),
                fb.suggestions().iter().map(|s| s.to_string()).collect(),
            ),
            None => (None, Vec::new()),
        };
        if warning.is_none() && suggestions.is_empty() {
            suggestions.push(
                "Add another word or two; uncommon words and a longer phrase are better."
                    .to_owned(),
            );
        }
        problems.push(PasswordProblem::TooGuessable {
            score,
            required: policy.min_score,
            warning,
            suggestions,
        });
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(PasswordRejection { problems })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pw: &str) -> Result<(), PasswordRejection> {
        check_quality(
            pw,
            &UserName::parse("margaret.hale").unwrap(),
            &[],
            &PasswordPolicy::default(),
            &Badlist::default(),
        )
    }

    fn problems(pw: &str) -> Vec<PasswordProblem> {
        check(pw).err().map(|r| r.problems).unwrap_or_default()
    }

    #[test]
    fn strong_passphrases_pass() {
        check("vivid-Tundra-47-quokka-Lantern").unwrap();
        check("Zq8#rT2!vLp9@xW4").unwrap();
    }

    /// safeguard: 164.312(d)
    #[test]
    fn short_passwords_are_refused_with_lengths() {
        let p = problems("Zq8#rT2!");
        assert!(
            p.contains(&PasswordProblem::TooShort { min: 10, actual: 8 }),
            "{p:?}"
        );
        // graphemes, not bytes: 10 family emoji are 10 characters
        let emoji = "👨‍👩‍👧".repeat(9);
        assert!(problems(&emoji).contains(&PasswordProblem::TooShort { min: 10, actual: 9 }));
    }

    #[test]
    fn overlong_passwords_are_refused_before_scoring() {
        assert_eq!(
            problems(&"x".repeat(129)),
            vec![PasswordProblem::TooLong { max: 128 }]
        );
    }

    /// safeguard: 164.312(d)
    #[test]
    fn user_name_variants_are_refused() {
        for pw in [
            "Margaret.Hale-7431-qz",
            "xx-ELAH.TERAGRAM-91!zz",   // reversed
            "M4rg4r3t-Zq8#rT2!vLp9",    // l33t of a name part
            "hale-is-not-enough-9Zq!x", // 4-letter part
        ] {
            assert!(
                problems(pw).contains(&PasswordProblem::ContainsUserName),
                "{pw}"
            );
        }
        assert!(!problems("vivid-Tundra-47-quokka-Lantern")
            .contains(&PasswordProblem::ContainsUserName));
        // related inputs (e.g. the appliance host name) count too
        let r = check_quality(
            "st-mungos-wipe-box-77-Qz",
            &UserName::parse("bob").unwrap(),
            &["stmungos"],
            &PasswordPolicy::default(),
            &Badlist::default(),
        );
        assert!(r
            .unwrap_err()
            .problems
            .contains(&PasswordProblem::ContainsUserName));
    }

    /// safeguard: 164.312(d)
    #[test]
    fn breached_passwords_are_refused_including_admin_additions() {
        assert!(Badlist::shipped_len() > 3000);
        assert!(Badlist::default().contains("Password1"));
        assert!(problems("BestFriends").contains(&PasswordProblem::Breached));
        let strong = "vivid-Tundra-47-quokka-Lantern";
        let mut b = Badlist::default();
        assert!(!b.contains(strong));
        b.extend(["VIVID-tundra-47-quokka-lantern".to_owned()]);
        let r = check_quality(
            strong,
            &UserName::parse("bob").unwrap(),
            &[],
            &PasswordPolicy::default(),
            &b,
        );
        assert_eq!(r.unwrap_err().problems, vec![PasswordProblem::Breached]);
    }

    /// safeguard: 164.312(d)
    #[test]
    fn weak_passwords_get_zxcvbn_feedback() {
        let p = problems("qwertyuiop1");
        let weak = p.iter().find_map(|p| match p {
            PasswordProblem::TooGuessable {
                score,
                warning,
                suggestions,
                ..
            } => Some((*score, warning.clone(), suggestions.clone())),
            _ => None,
        });
        let (score, warning, suggestions) = weak.expect("scored too low");
        assert!(score < 4);
        assert!(warning.is_some() || !suggestions.is_empty());
        let msg = check("qwertyuiop1").unwrap_err().to_string();
        assert!(msg.contains("too easy to guess"), "{msg}");
    }

    #[test]
    fn every_problem_has_a_specific_message() {
        let all = [
            PasswordProblem::TooShort { min: 10, actual: 3 },
            PasswordProblem::TooLong { max: 128 },
            PasswordProblem::ContainsUserName,
            PasswordProblem::Breached,
            PasswordProblem::TooGuessable {
                score: 1,
                required: 4,
                warning: Some("W.".into()),
                suggestions: vec!["S.".into()],
            },
            PasswordProblem::RecentlyUsed { history: 5 },
        ];
        let msgs: HashSet<String> = all.iter().map(|p| p.to_string()).collect();
        assert_eq!(msgs.len(), all.len());
        assert!(all[4].to_string().ends_with("W. S."));
    }

    #[test]
    fn lower_score_policy_is_honoured() {
        let lax = PasswordPolicy {
            min_score: 0,
            ..PasswordPolicy::default()
        };
        check_quality(
            "qwertyuiop1",
            &UserName::parse("bob").unwrap(),
            &[],
            &lax,
            &Badlist::default(),
        )
        .unwrap();
    }
}
