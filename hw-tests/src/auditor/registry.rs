//! `docs/safeguards.toml`: the safeguards and safety rules, and the tiers.

use globset::{Glob, GlobMatcher};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where the registry lives, from the repository root.
pub const REGISTRY_PATH: &str = "docs/safeguards.toml";

/// One safeguard of 45 CFR §164.312 / §164.310(d), or one safety rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Safeguard {
    pub id: String,
    pub title: String,
    pub kind: Kind,
    pub requirement: String,
    pub status: Status,
    pub summary: String,
    pub fails_if: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Hipaa,
    Rule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Implemented,
    Partial,
    Pending,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Implemented => "implemented",
            Status::Partial => "partial",
            Status::Pending => "pending",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TierRuleText {
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    test: Option<String>,
    tier: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryText {
    safeguard: Vec<Safeguard>,
    tiers: BTreeMap<String, String>,
    tier_rule: Vec<TierRuleText>,
}

enum Match {
    File(GlobMatcher),
    Test(String),
}

/// The registry, checked.
pub struct Registry {
    pub safeguards: Vec<Safeguard>,
    /// Tier id → what it runs against.
    pub tiers: BTreeMap<String, String>,
    rules: Vec<(Match, String)>,
}

impl Registry {
    pub fn parse(text: &str) -> Result<Registry, String> {
        let r: RegistryText = toml::from_str(text).map_err(|e| format!("{REGISTRY_PATH}: {e}"))?;
        let mut seen = std::collections::BTreeSet::new();
        for s in &r.safeguard {
            if !seen.insert(s.id.as_str()) {
                return Err(format!("{REGISTRY_PATH}: {} is listed twice", s.id));
            }
            let well_formed = match s.kind {
                Kind::Hipaa => {
                    s.id.starts_with("164.3")
                        && s.id
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"().".contains(&b))
                }
                Kind::Rule => s.id.strip_prefix("rule:").is_some_and(|n| {
                    !n.is_empty() && n.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
                }),
            };
            if !well_formed {
                return Err(format!("{REGISTRY_PATH}: {:?} is not a valid id", s.id));
            }
            if s.status != Status::Implemented && s.pending.is_none() {
                return Err(format!(
                    "{REGISTRY_PATH}: {} is {} but says nothing under `pending`",
                    s.id,
                    s.status.as_str()
                ));
            }
        }
        let mut rules = Vec::new();
        for t in r.tier_rule {
            if !r.tiers.contains_key(&t.tier) {
                return Err(format!("{REGISTRY_PATH}: unknown tier {:?}", t.tier));
            }
            let m = match (t.file, t.test) {
                (Some(f), None) => Match::File(
                    globset::GlobBuilder::new(&f)
                        .literal_separator(true)
                        .build()
                        .map(|g: Glob| g.compile_matcher())
                        .map_err(|e| format!("{REGISTRY_PATH}: {f}: {e}"))?,
                ),
                (None, Some(t)) => Match::Test(t),
                _ => {
                    return Err(format!(
                        "{REGISTRY_PATH}: a tier_rule has exactly one of file and test"
                    ))
                }
            };
            rules.push((m, t.tier));
        }
        Ok(Registry {
            safeguards: r.safeguard,
            tiers: r.tiers,
            rules,
        })
    }

    pub fn get(&self, id: &str) -> Option<&Safeguard> {
        self.safeguards.iter().find(|s| s.id == id)
    }

    /// The tier of test `function` in `file` (repository-relative).
    pub fn tier_of(&self, file: &str, function: &str) -> &str {
        let key = format!("{file}::{function}");
        self.rules
            .iter()
            .find(|(m, _)| match m {
                Match::File(g) => g.is_match(file),
                Match::Test(t) => *t == key,
            })
            .map(|(_, t)| t.as_str())
            .unwrap_or("unit")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_registry_parses_and_maps_tiers() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let text = std::fs::read_to_string(root.join(REGISTRY_PATH)).unwrap();
        let r = Registry::parse(&text).unwrap();
        assert!(r.get("164.312(a)(2)(iii)").is_some());
        assert!(r.get("rule:fail-safe-relay").is_some());
        assert_eq!(
            r.tier_of(
                "daemon/linux/tests/passthrough.rs",
                "qemu_nvme_identify_controller_through_admin"
            ),
            "qemu-guest"
        );
        assert_eq!(
            r.tier_of(
                "daemon/linux/tests/passthrough.rs",
                "sg_io_on_a_loop_device_is_unsupported"
            ),
            "loop"
        );
        assert_eq!(r.tier_of("daemon/cli/tests/wipe_loop.rs", "x"), "loop");
        assert_eq!(r.tier_of("daemon/auth/src/session.rs", "x"), "unit");
        assert_eq!(r.tier_of("daemon/cert/tests/verify.rs", "x"), "integration");
        assert_eq!(r.tier_of("daemon/purge/tests/model.rs", "x"), "model");
        assert_eq!(
            r.tier_of("firmware/logic/src/degausser/tests.rs", "x"),
            "unit"
        );
        assert_eq!(
            r.tier_of("hw-tests/tests/firmware_qemu.rs", "x"),
            "qemu-board"
        );
    }

    #[test]
    fn bad_registries_are_refused() {
        let ok = r#"
[[safeguard]]
id = "164.312(b)"
title = "t"
kind = "hipaa"
requirement = "standard"
status = "implemented"
summary = "s"
fails_if = "f"
[tiers]
unit = "u"
[[tier_rule]]
file = "**/src/**"
tier = "unit"
"#;
        assert!(Registry::parse(ok).is_ok());
        for (bad, why) in [
            (ok.replace("\"164.312(b)\"", "\"164 312\""), "bad id"),
            (
                ok.replace("implemented", "partial"),
                "partial without pending",
            ),
            (
                ok.replace("tier = \"unit\"", "tier = \"nope\""),
                "unknown tier",
            ),
            (
                ok.replace("kind = \"hipaa\"", "kind = \"rule\""),
                "rule id without prefix",
            ),
            (format!("{ok}\nextra = 1\n"), "unknown field"),
        ] {
            assert!(Registry::parse(&bad).is_err(), "{why}");
        }
        let twice = ok.replacen(
            "[tiers]",
            "[[safeguard]]\nid = \"164.312(b)\"\ntitle = \"t\"\nkind = \"hipaa\"\nrequirement = \"x\"\nstatus = \"implemented\"\nsummary = \"s\"\nfails_if = \"f\"\n[tiers]",
            1,
        );
        assert!(Registry::parse(&twice).err().unwrap().contains("twice"));
    }
}
