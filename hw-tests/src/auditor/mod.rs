//! The documentation for auditors, generated from the sources and one test
//! run, signed per version (`docs/auditor-pack.md`); driven by the
//! `auditor-pack` binary.
//!
//! - [`registry`]: `docs/safeguards.toml`, the safeguards and safety rules
//!   and the test tiers.
//! - [`tags`] and [`source`]: the `safeguard:` tags on tests, read from the
//!   work tree or a git revision.
//! - [`runlog`] and [`junit`]: one test run (the `cargo test` log kept by
//!   `run-tests.sh` and cargo's list of test binaries), as JUnit XML.
//! - [`results`]: tags joined with the run; the gate that fails when a
//!   safeguard has no tagged test that ran and passed.
//! - [`plan`]: the generated `docs/security-test-plan.md` and the test lists
//!   of `docs/hipaa.md`.
//! - [`changes`]: what changed since a previous version.
//! - [`deps`]: dependencies with licences, the CycloneDX SBOM.
//! - [`render`]: Markdown to an HTML folder and one PDF (Chromium).
//! - [`build`]: the pack itself, signed with `lethe-pack`.

pub mod build;
pub mod changes;
pub mod deps;
pub mod junit;
pub mod plan;
pub mod registry;
pub mod render;
pub mod results;
pub mod runlog;
pub mod source;
pub mod tags;

use std::path::Path;

/// `[workspace.package] version` of a Cargo.toml.
pub fn workspace_version(cargo_toml: &str) -> Option<String> {
    let v: toml::Value = toml::from_str(cargo_toml).ok()?;
    v.get("workspace")?
        .get("package")?
        .get("version")?
        .as_str()
        .map(str::to_owned)
}

/// The registry and every tag of the work tree, checked: misplaced tags
/// and unknown ids are errors.
pub fn load(root: &Path) -> Result<(registry::Registry, Vec<tags::TaggedTest>), String> {
    let text = std::fs::read_to_string(root.join(registry::REGISTRY_PATH))
        .map_err(|e| format!("{}: {e}", registry::REGISTRY_PATH))?;
    let registry = registry::Registry::parse(&text)?;
    let mut all = Vec::new();
    let mut errors = Vec::new();
    for (file, src) in source::Source::WorkTree(root.to_path_buf()).rust_files()? {
        match tags::scan_file(&file, &src) {
            Ok(t) => all.extend(t),
            Err(e) => errors.push(e),
        }
    }
    errors.extend(results::unknown_ids(&registry, &all));
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }
    Ok((registry, all))
}

/// The generated documents as they should be: (path, text) pairs.
pub fn generated_docs(
    root: &Path,
    registry: &registry::Registry,
    tags: &[tags::TaggedTest],
) -> Result<Vec<(&'static str, String)>, String> {
    let hipaa = std::fs::read_to_string(root.join(plan::HIPAA_PATH))
        .map_err(|e| format!("{}: {e}", plan::HIPAA_PATH))?;
    Ok(vec![
        (
            plan::PLAN_PATH,
            plan::security_test_plan(registry, tags) + "\n",
        ),
        (
            plan::HIPAA_PATH,
            plan::refill_hipaa(registry, tags, &hipaa)?,
        ),
    ])
}

/// Fail when a generated document differs from what is committed.
pub fn check_docs(
    root: &Path,
    registry: &registry::Registry,
    tags: &[tags::TaggedTest],
) -> Result<(), String> {
    let mut stale = Vec::new();
    for (path, want) in generated_docs(root, registry, tags)? {
        let have = std::fs::read_to_string(root.join(path)).unwrap_or_default();
        if have != want {
            stale.push(path);
        }
    }
    if stale.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} out of date with docs/safeguards.toml and the safeguard tags; run: {}",
            stale.join(" and "),
            plan::REGENERATE
        ))
    }
}

/// The repository root this crate was built from.
pub fn default_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| std::path::PathBuf::from("."))
}
