//! What changed in the safeguards and safety rules since a previous version:
//! a snapshot of the registry, the tags, the documents and (for a built
//! pack) the results, compared with the previous pack's `data/safeguards.json`
//! or with the same snapshot taken from a git revision.

use super::plan::{hipaa_section, tests_of, HIPAA_PATH};
use super::registry::{Registry, Safeguard, REGISTRY_PATH};
use super::results::Joined;
use super::source::Source;
use super::tags::TaggedTest;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt::Write as _;

pub const SNAPSHOT_FORMAT: &str = "lethe-auditor-pack-safeguards/1";

/// The documents whose changes are listed.
pub const TRACKED_DOCS: [&str; 6] = [
    HIPAA_PATH,
    super::plan::PLAN_PATH,
    "docs/threat-model.md",
    "docs/safety.md",
    "docs/audit-log.md",
    "docs/auth.md",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestEntry {
    pub test: String,
    pub tier: String,
    /// passed, FAILED, skipped, … or null when the snapshot has no run.
    pub result: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SafeguardEntry {
    pub safeguard: Safeguard,
    /// SHA-256 of its section in docs/hipaa.md (HIPAA entries).
    pub section_sha256: Option<String>,
    pub tests: Vec<TestEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub format: String,
    pub version: String,
    pub commit: String,
    pub safeguards: Vec<SafeguardEntry>,
    /// Document path → SHA-256 of its text.
    pub documents: BTreeMap<String, String>,
}

fn sha(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A snapshot of `source`; `joined` adds each test's result.
pub fn snapshot(
    source: &Source,
    registry: &Registry,
    tags: &[TaggedTest],
    joined: Option<&[Joined]>,
    version: &str,
    commit: &str,
) -> Result<Snapshot, String> {
    let hipaa = source.read(HIPAA_PATH)?.unwrap_or_default();
    let result_of = |t: &TaggedTest| -> Option<String> {
        joined?
            .iter()
            .find(|j| std::ptr::eq(j.test, t) || j.test.key() == t.key())
            .map(|j| j.word().to_owned())
    };
    let safeguards = registry
        .safeguards
        .iter()
        .map(|s| SafeguardEntry {
            safeguard: s.clone(),
            section_sha256: hipaa_section(&hipaa, s).map(|t| sha(&t)),
            tests: tests_of(tags, &s.id)
                .into_iter()
                .map(|t| TestEntry {
                    test: t.key(),
                    tier: registry.tier_of(&t.file, &t.function).to_owned(),
                    result: result_of(t),
                })
                .collect(),
        })
        .collect();
    let mut documents = BTreeMap::new();
    for d in TRACKED_DOCS {
        if let Some(t) = source.read(d)? {
            documents.insert(d.to_owned(), sha(&t));
        }
    }
    Ok(Snapshot {
        format: SNAPSHOT_FORMAT.into(),
        version: version.into(),
        commit: commit.into(),
        safeguards,
        documents,
    })
}

/// A snapshot of a git revision, or `None` when it predates the registry.
pub fn snapshot_of_rev(root: &std::path::Path, rev: &str) -> Result<Option<Snapshot>, String> {
    let source = Source::Git {
        root: root.to_path_buf(),
        rev: rev.to_owned(),
    };
    let Some(text) = source.read(REGISTRY_PATH)? else {
        return Ok(None);
    };
    let registry = Registry::parse(&text).map_err(|e| format!("{rev}: {e}"))?;
    let mut tags = Vec::new();
    for (file, src) in source.rust_files()? {
        // An old revision's misplaced tag is its own business: skip, don't fail.
        tags.extend(super::tags::scan_file(&file, &src).unwrap_or_default());
    }
    let version = source
        .read("Cargo.toml")?
        .and_then(|t| super::workspace_version(&t))
        .unwrap_or_else(|| "unknown".into());
    snapshot(&source, &registry, &tags, None, &version, rev).map(Some)
}

fn title(s: &Safeguard) -> String {
    format!("{} {}", super::plan::label(s), s.title)
}

/// The change list, as Markdown (without a top heading).
pub fn changes(previous: Option<&Snapshot>, previous_name: &str, now: &Snapshot) -> String {
    let mut o = String::new();
    let Some(prev) = previous else {
        let _ = writeln!(
            o,
            "There is no previous pack to compare with ({previous_name}): every safeguard, rule \
             and test below is listed as it stands in this version.\n"
        );
        for s in &now.safeguards {
            let _ = writeln!(
                o,
                "- {}: {}, {} tagged tests",
                title(&s.safeguard),
                s.safeguard.status.as_str(),
                s.tests.len()
            );
        }
        return o;
    };
    let _ = writeln!(
        o,
        "Compared with version {} (commit {}, {previous_name}).\n",
        prev.version, prev.commit
    );
    let before: BTreeMap<&str, &SafeguardEntry> = prev
        .safeguards
        .iter()
        .map(|s| (s.safeguard.id.as_str(), s))
        .collect();
    let after: BTreeMap<&str, &SafeguardEntry> = now
        .safeguards
        .iter()
        .map(|s| (s.safeguard.id.as_str(), s))
        .collect();
    let mut any = false;
    for s in &now.safeguards {
        let id = s.safeguard.id.as_str();
        let Some(p) = before.get(id) else {
            any = true;
            let _ = writeln!(
                o,
                "### {} (new)\n\n- {} tagged tests, {}\n",
                title(&s.safeguard),
                s.tests.len(),
                s.safeguard.status.as_str()
            );
            continue;
        };
        let mut lines = Vec::new();
        let (a, b) = (&p.safeguard, &s.safeguard);
        if a.title != b.title {
            lines.push(format!("title was \"{}\"", a.title));
        }
        if a.status != b.status {
            lines.push(format!(
                "status {} → {}",
                a.status.as_str(),
                b.status.as_str()
            ));
        }
        if a.requirement != b.requirement {
            lines.push(format!("requirement {} → {}", a.requirement, b.requirement));
        }
        if a.summary != b.summary {
            lines.push("what Lethe does was rewritten".into());
        }
        if a.fails_if != b.fails_if {
            lines.push("what makes its tests fail was rewritten".into());
        }
        if a.pending != b.pending {
            lines.push(match &b.pending {
                Some(p) => format!("not yet covered: {p}"),
                None => "nothing is pending any more".into(),
            });
        }
        if p.section_sha256 != s.section_sha256 {
            lines.push(format!("its section of {HIPAA_PATH} changed"));
        }
        let old: BTreeMap<&str, &TestEntry> =
            p.tests.iter().map(|t| (t.test.as_str(), t)).collect();
        let new: BTreeMap<&str, &TestEntry> =
            s.tests.iter().map(|t| (t.test.as_str(), t)).collect();
        for t in new.keys().filter(|k| !old.contains_key(*k)) {
            lines.push(format!("test added: `{t}`"));
        }
        for t in old.keys().filter(|k| !new.contains_key(*k)) {
            lines.push(format!("test removed: `{t}`"));
        }
        for (k, t) in &new {
            if let Some(o) = old.get(k) {
                if o.tier != t.tier {
                    lines.push(format!("`{k}` moved from tier {} to {}", o.tier, t.tier));
                }
                if let (Some(r0), Some(r1)) = (&o.result, &t.result) {
                    if r0 != r1 {
                        lines.push(format!("`{k}` was {r0}, now {r1}"));
                    }
                }
            }
        }
        if !lines.is_empty() {
            any = true;
            let _ = writeln!(o, "### {}\n", title(b));
            for l in lines {
                let _ = writeln!(o, "- {l}");
            }
            o.push('\n');
        }
    }
    for p in &prev.safeguards {
        if !after.contains_key(p.safeguard.id.as_str()) {
            any = true;
            let _ = writeln!(
                o,
                "### {} (removed)\n\n- no longer in {REGISTRY_PATH}\n",
                title(&p.safeguard)
            );
        }
    }
    let docs: Vec<&String> = now
        .documents
        .iter()
        .filter(|(d, h)| prev.documents.get(*d) != Some(h))
        .map(|(d, _)| d)
        .collect();
    if !docs.is_empty() {
        any = true;
        let _ = writeln!(o, "### Documents\n");
        for d in docs {
            let what = if prev.documents.contains_key(d) {
                "changed"
            } else {
                "new"
            };
            let _ = writeln!(o, "- `{d}` {what}");
        }
        o.push('\n');
    }
    if !any {
        let _ = writeln!(
            o,
            "No safeguard, safety rule, tagged test or tracked document changed."
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auditor::registry::{Kind, Status};

    fn entry(id: &str, status: Status, tests: &[(&str, Option<&str>)]) -> SafeguardEntry {
        SafeguardEntry {
            safeguard: Safeguard {
                id: id.into(),
                title: format!("title of {id}"),
                kind: if id.starts_with("rule:") {
                    Kind::Rule
                } else {
                    Kind::Hipaa
                },
                requirement: "required".into(),
                status,
                summary: "s".into(),
                fails_if: "f".into(),
                pending: (status != Status::Implemented).then(|| "issue 12".into()),
            },
            section_sha256: Some("aa".into()),
            tests: tests
                .iter()
                .map(|(t, r)| TestEntry {
                    test: (*t).into(),
                    tier: "unit".into(),
                    result: r.map(str::to_owned),
                })
                .collect(),
        }
    }

    fn snap(v: &str, s: Vec<SafeguardEntry>, docs: &[(&str, &str)]) -> Snapshot {
        Snapshot {
            format: SNAPSHOT_FORMAT.into(),
            version: v.into(),
            commit: "c".into(),
            safeguards: s,
            documents: docs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }

    #[test]
    fn every_kind_of_change_is_listed() {
        let prev = snap(
            "0.1.0",
            vec![
                entry(
                    "164.312(b)",
                    Status::Partial,
                    &[("a.rs::t1", Some("passed")), ("a.rs::t2", Some("passed"))],
                ),
                entry("rule:gone", Status::Implemented, &[]),
                entry(
                    "164.312(d)",
                    Status::Partial,
                    &[("d.rs::t", Some("passed"))],
                ),
            ],
            &[("docs/hipaa.md", "1"), ("docs/safety.md", "2")],
        );
        let mut b = entry(
            "164.312(b)",
            Status::Implemented,
            &[("a.rs::t1", Some("FAILED")), ("a.rs::t3", Some("passed"))],
        );
        b.section_sha256 = Some("bb".into());
        let now = snap(
            "0.2.0",
            vec![
                b,
                entry(
                    "rule:new",
                    Status::Implemented,
                    &[("n.rs::t", Some("passed"))],
                ),
                entry(
                    "164.312(d)",
                    Status::Partial,
                    &[("d.rs::t", Some("passed"))],
                ),
            ],
            &[
                ("docs/hipaa.md", "1"),
                ("docs/safety.md", "3"),
                ("docs/threat-model.md", "4"),
            ],
        );
        let text = changes(Some(&prev), "pack 0.1.0", &now);
        for want in [
            "Compared with version 0.1.0 (commit c, pack 0.1.0).",
            "### §164.312(b) title of 164.312(b)",
            "- status partial → implemented",
            "- nothing is pending any more",
            "- its section of docs/hipaa.md changed",
            "- test added: `a.rs::t3`",
            "- test removed: `a.rs::t2`",
            "- `a.rs::t1` was passed, now FAILED",
            "### rule:new title of rule:new (new)",
            "### rule:gone title of rule:gone (removed)",
            "- `docs/safety.md` changed",
            "- `docs/threat-model.md` new",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        assert!(
            !text.contains("164.312(d) title"),
            "unchanged entries are not listed\n{text}"
        );
        let same = changes(Some(&now), "itself", &now);
        assert!(
            same.contains("No safeguard, safety rule, tagged test or tracked document changed.")
        );
        let none = changes(None, "no tag", &now);
        assert!(none.contains("no previous pack"), "{none}");
    }

    #[test]
    fn snapshots_round_trip_as_json() {
        let s = snap(
            "0.1.0",
            vec![entry("164.312(b)", Status::Partial, &[("a.rs::t", None)])],
            &[],
        );
        let text = serde_json::to_string_pretty(&s).unwrap();
        assert!(text.contains("\"id\": \"164.312(b)\""), "{text}");
        assert_eq!(serde_json::from_str::<Snapshot>(&text).unwrap(), s);
    }
}
