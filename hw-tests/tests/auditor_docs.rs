//! The generated documents are not stale: docs/security-test-plan.md and
//! the test lists of docs/hipaa.md are what docs/safeguards.toml and the
//! `safeguard:` tags of both workspaces give, and every tag is well placed
//! and names a known safeguard or rule.

use lethe_hw_tests::auditor::{self, plan};

#[test]
fn generated_documents_match_the_registry_and_the_tags() {
    let root = auditor::default_root();
    let (registry, tags) = auditor::load(&root).unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = auditor::check_docs(&root, &registry, &tags) {
        panic!("{e}");
    }
    // Every safeguard and rule has a tagged test (the run itself decides
    // whether one passed: auditor_pack.rs and hw-tests/pack.sh).
    for s in &registry.safeguards {
        assert!(
            !plan::tests_of(&tags, &s.id).is_empty(),
            "{} has no tagged test",
            s.id
        );
    }
    // Tags in both workspaces are found, including the firmware's.
    assert!(tags.iter().any(|t| t.file.starts_with("firmware/")));
    assert!(tags.iter().any(|t| t.file.starts_with("hw-tests/tests/")));
}
