//! Tags joined with a run: which tagged tests ran and passed, per safeguard,
//! and the gate that fails the build when a safeguard has none.

use super::registry::Registry;
use super::runlog::{artifact_of, Artifact, Outcome, Run};
use super::tags::TaggedTest;

/// A tagged test and what the run says of it.
#[derive(Debug, Clone)]
pub struct Joined<'a> {
    pub test: &'a TaggedTest,
    pub tier: String,
    /// `package::target` of its binary, if known.
    pub binary: Option<String>,
    /// `None`: its binary did not run, or it is not in its binary's results.
    pub outcome: Option<Outcome>,
    /// Why it could not be found, when `outcome` is `None`.
    pub missing: Option<String>,
}

impl Joined<'_> {
    pub fn passed(&self) -> bool {
        self.outcome == Some(Outcome::Passed)
    }

    pub fn word(&self) -> &'static str {
        self.outcome.as_ref().map_or("not run", Outcome::word)
    }
}

/// Find each tagged test in the run.
pub fn join<'a>(
    registry: &Registry,
    tags: &'a [TaggedTest],
    artifacts: &[Artifact],
    run: &Run,
) -> Vec<Joined<'a>> {
    tags.iter()
        .map(|t| {
            let tier = registry.tier_of(&t.file, &t.function).to_owned();
            let Some(a) = artifact_of(artifacts, &t.file) else {
                return Joined {
                    test: t,
                    tier,
                    binary: None,
                    outcome: None,
                    missing: Some(format!("{} is in no test binary that was built", t.file)),
                };
            };
            let binary = Some(format!("{}::{}", a.package, a.target));
            let Some(results) = run.binaries.get(&a.exe) else {
                return Joined {
                    test: t,
                    tier,
                    binary,
                    outcome: None,
                    missing: Some(format!("its test binary {} did not run", a.exe)),
                };
            };
            let exact: Vec<_> = results
                .tests
                .iter()
                .filter(|r| r.name == t.test_path())
                .collect();
            let suffix = format!("::{}", t.function);
            let loose: Vec<_> = results
                .tests
                .iter()
                .filter(|r| r.name == t.function || r.name.ends_with(&suffix))
                .collect();
            let found = match (exact.as_slice(), loose.as_slice()) {
                ([one], _) | ([], [one]) => Ok(*one),
                ([], []) => Err(format!(
                    "{} is not among the tests of {}",
                    t.test_path(),
                    a.exe
                )),
                _ => Err(format!(
                    "{} matches several tests of {}",
                    t.test_path(),
                    a.exe
                )),
            };
            match found {
                Ok(r) => Joined {
                    test: t,
                    tier,
                    binary,
                    outcome: Some(r.outcome.clone()),
                    missing: None,
                },
                Err(m) => Joined {
                    test: t,
                    tier,
                    binary,
                    outcome: None,
                    missing: Some(m),
                },
            }
        })
        .collect()
}

/// The safeguards without a tagged test that ran and passed (the build
/// fails on any), each with what its tests did instead.
pub fn uncovered(registry: &Registry, joined: &[Joined]) -> Vec<String> {
    registry
        .safeguards
        .iter()
        .filter_map(|s| {
            let mine: Vec<&Joined> = joined
                .iter()
                .filter(|j| j.test.ids.contains(&s.id))
                .collect();
            if mine.iter().any(|j| j.passed()) {
                return None;
            }
            let why = if mine.is_empty() {
                "no test carries its tag".to_owned()
            } else {
                mine.iter()
                    .map(|j| {
                        format!(
                            "{} {}{}",
                            j.test.key(),
                            j.word(),
                            j.missing
                                .as_ref()
                                .map(|m| format!(" ({m})"))
                                .unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            Some(format!("{} ({}): {why}", s.id, s.title))
        })
        .collect()
}

/// Tags naming ids the registry does not have.
pub fn unknown_ids(registry: &Registry, tags: &[TaggedTest]) -> Vec<String> {
    tags.iter()
        .flat_map(|t| {
            t.ids
                .iter()
                .filter(|id| registry.get(id).is_none())
                .map(move |id| format!("{}:{}: unknown safeguard id {id:?}", t.file, t.line))
        })
        .collect()
}
