//! The generated documents: `docs/security-test-plan.md`, and the test
//! lists inside `docs/hipaa.md`. Both come from the registry and the tags
//! only (no test run), so they are committed and a test fails when they
//! are stale.

use super::registry::{Kind, Registry, Safeguard};
use super::tags::TaggedTest;
use std::collections::BTreeMap;
use std::fmt::Write as _;

pub const PLAN_PATH: &str = "docs/security-test-plan.md";
pub const HIPAA_PATH: &str = "docs/hipaa.md";
pub const REGENERATE: &str = "cargo run -p lethe-hw-tests --bin auditor-pack -- docs --write";

const BEGIN: &str = "<!-- BEGIN GENERATED: tests ";
const END: &str = "<!-- END GENERATED -->";

/// The tests tagged with `id`, in file and line order.
pub fn tests_of<'a>(tags: &'a [TaggedTest], id: &str) -> Vec<&'a TaggedTest> {
    let mut v: Vec<&TaggedTest> = tags
        .iter()
        .filter(|t| t.ids.iter().any(|i| i == id))
        .collect();
    v.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    v
}

fn link(t: &TaggedTest) -> String {
    let short = t.file.strip_prefix("daemon/").unwrap_or(&t.file);
    format!("[`{short}::{}`](../{}#L{})", t.function, t.file, t.line)
}

fn one_line(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// `§164.312(a)(1)` for HIPAA entries, the id itself for rules.
pub fn label(s: &Safeguard) -> String {
    match s.kind {
        Kind::Hipaa => format!("§{}", s.id),
        Kind::Rule => s.id.clone(),
    }
}

/// The anchor pulldown-cmark / GitHub give a heading `### §ID Title`.
pub fn anchor(s: &Safeguard) -> String {
    let text = format!("{} {}", label(s), s.title);
    text.chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                Some(c.to_ascii_lowercase())
            } else if c == ' ' {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

fn test_table(out: &mut String, registry: &Registry, tests: &[&TaggedTest]) {
    if tests.is_empty() {
        let _ = writeln!(
            out,
            "**No tagged test.** The auditor pack cannot be built until one exists.\n"
        );
        return;
    }
    let _ = writeln!(out, "| test | tier | what it checks |\n|---|---|---|");
    for t in tests {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            link(t),
            registry.tier_of(&t.file, &t.function),
            one_line(&t.describe())
        );
    }
    out.push('\n');
}

/// The whole of `docs/security-test-plan.md`.
pub fn security_test_plan(registry: &Registry, tags: &[TaggedTest]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# Security test plan\n\n\
<!-- Generated from docs/safeguards.toml and the `safeguard:` tags on tests by\n     {REGENERATE}\n     Do not edit by hand: hw-tests/tests/auditor_docs.rs fails when this file is stale. -->\n\n\
For each HIPAA technical safeguard Lethe serves ([hipaa.md](hipaa.md)) and each of its safety\n\
rules, this plan lists the tests that check it, the tier they run at ([testing.md](testing.md)),\n\
and what would make them fail. A test is listed here because a line of its doc comment names\n\
the safeguard (`/// safeguard: 164.312(b)`); the list is generated from those tags, never kept\n\
by hand. Every CI run joins the tags with the run's results and fails if a safeguard has no\n\
tagged test that ran and passed; the auditor pack reports the result of each test\n\
([auditor-pack.md](auditor-pack.md)).\n"
    );
    let _ = writeln!(
        o,
        "## Tiers\n\n| tier | runs against | tagged tests |\n|---|---|---|"
    );
    let mut per_tier: BTreeMap<&str, usize> = BTreeMap::new();
    for t in tags {
        *per_tier
            .entry(registry.tier_of(&t.file, &t.function))
            .or_default() += 1;
    }
    for (tier, what) in &registry.tiers {
        let _ = writeln!(
            o,
            "| {tier} | {} | {} |",
            one_line(what),
            per_tier.get(tier.as_str()).unwrap_or(&0)
        );
    }
    let _ = writeln!(
        o,
        "\n## Summary\n\n| safeguard or rule | status | tests | tiers |\n|---|---|---|---|"
    );
    for s in &registry.safeguards {
        let tests = tests_of(tags, &s.id);
        let mut tiers: Vec<&str> = tests
            .iter()
            .map(|t| registry.tier_of(&t.file, &t.function))
            .collect();
        tiers.sort();
        tiers.dedup();
        let _ = writeln!(
            o,
            "| [{} {}](#{}) | {} | {} | {} |",
            label(s),
            one_line(&s.title),
            anchor(s),
            s.status.as_str(),
            tests.len(),
            tiers.join(", ")
        );
    }
    for (kind, heading) in [
        (
            Kind::Hipaa,
            "HIPAA technical safeguards (45 CFR §164.312, §164.310(d)(2))",
        ),
        (Kind::Rule, "Safety rules"),
    ] {
        let _ = writeln!(o, "\n## {heading}\n");
        for s in registry.safeguards.iter().filter(|s| s.kind == kind) {
            let _ = writeln!(o, "### {} {}\n", label(s), s.title);
            let _ = writeln!(o, "- **Status:** {} ({})", s.status.as_str(), s.requirement);
            let _ = writeln!(o, "- **What Lethe does:** {}", s.summary);
            let _ = writeln!(o, "- **The tests fail if** {}", s.fails_if);
            if let Some(p) = &s.pending {
                let _ = writeln!(o, "- **Not yet covered:** {p}");
            }
            o.push('\n');
            test_table(&mut o, registry, &tests_of(tags, &s.id));
        }
    }
    while o.ends_with("\n\n") {
        o.pop();
    }
    o
}

/// `docs/hipaa.md` with every generated block refilled. Each HIPAA entry of
/// the registry must have a heading starting `### §ID` and a block
/// `<!-- BEGIN GENERATED: tests ID -->` … `<!-- END GENERATED -->`.
pub fn refill_hipaa(
    registry: &Registry,
    tags: &[TaggedTest],
    text: &str,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    let mut filled = Vec::new();
    while let Some(i) = rest.find(BEGIN) {
        let after = &rest[i + BEGIN.len()..];
        let close = after
            .find(" -->")
            .ok_or(format!("{HIPAA_PATH}: unclosed marker"))?;
        let id = &after[..close];
        let s = registry.get(id).ok_or(format!(
            "{HIPAA_PATH}: a generated block names unknown id {id:?}"
        ))?;
        let body_start = i + BEGIN.len() + close + " -->".len();
        let end = rest[body_start..]
            .find(END)
            .ok_or(format!("{HIPAA_PATH}: the block of {id} has no end marker"))?;
        out.push_str(&rest[..body_start]);
        out.push('\n');
        let tests = tests_of(tags, id);
        if tests.is_empty() {
            out.push_str("No tagged test yet.\n");
        }
        for t in tests {
            let _ = writeln!(
                out,
                "- {} ({}): {}",
                link(t),
                registry.tier_of(&t.file, &t.function),
                t.describe()
            );
        }
        out.push_str(END);
        rest = &rest[body_start + end + END.len()..];
        filled.push(s.id.clone());
    }
    out.push_str(rest);
    for s in registry.safeguards.iter().filter(|s| s.kind == Kind::Hipaa) {
        if !out.contains(&format!("\n### {} ", label(s))) {
            return Err(format!("{HIPAA_PATH}: no section \"### {} …\"", label(s)));
        }
        if !filled.contains(&s.id) {
            return Err(format!("{HIPAA_PATH}: no generated test list for {}", s.id));
        }
    }
    Ok(out)
}

/// The hand-written text of a HIPAA entry's section in `docs/hipaa.md`
/// (its heading to the next heading of the same or a higher level, without
/// the generated test list), for the change list.
pub fn hipaa_section(text: &str, s: &Safeguard) -> Option<String> {
    let head = format!("### {} ", label(s));
    let start = text.find(&format!("\n{head}"))? + 1;
    let body = &text[start..];
    let end = body[4..]
        .find("\n## ")
        .into_iter()
        .chain(body[4..].find("\n### "))
        .min()
        .map_or(body.len(), |e| e + 4);
    let section = &body[..end];
    Some(match (section.find(BEGIN), section.find(END)) {
        (Some(b), Some(e)) if b < e => format!("{}{}", &section[..b], &section[e + END.len()..]),
        _ => section.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auditor::registry::{Kind, Status};

    #[test]
    fn a_section_is_its_prose_without_the_generated_list() {
        let s = Safeguard {
            id: "164.312(b)".into(),
            title: "Audit controls".into(),
            kind: Kind::Hipaa,
            requirement: "standard".into(),
            status: Status::Implemented,
            summary: String::new(),
            fails_if: String::new(),
            pending: None,
        };
        let doc = format!(
            "# T\n\n### §164.312(a)(1) Access\n\nA.\n\n### §164.312(b) Audit controls\n\nProse.\n\
             {BEGIN}164.312(b) -->\n- a test\n{END}\n\n## Next\n"
        );
        assert_eq!(
            hipaa_section(&doc, &s).unwrap(),
            "### §164.312(b) Audit controls\n\nProse.\n\n"
        );
    }
}
