//! `auditor-pack`: the documentation for auditors, generated from the
//! sources and one test run, signed per version (docs/auditor-pack.md).
//!
//! - `docs [--write]`: regenerate `docs/security-test-plan.md` and the test
//!   lists of `docs/hipaa.md` from `docs/safeguards.toml` and the
//!   `safeguard:` tags on tests (without `--write`: fail when they are stale).
//! - `junit`: the JUnit XML of a `cargo test -- --show-output` log.
//! - `build`: the pack, from the results folder `hw-tests/run-tests.sh`
//!   leaves (log, test-binary lists, JUnit).
//!
//! Modules: [`registry`] (the safeguards), [`tags`] and [`source`] (the
//! tags in the sources, of the work tree or a git revision), [`runlog`] and
//! [`junit`] (the run), [`results`] (tags joined with the run, the gate),
//! [`plan`] (the generated documents), [`changes`] (since a previous
//! version), [`deps`] (licences, SBOM), [`render`] (HTML and PDF),
//! [`build`] (the pack).

mod build;
mod changes;
mod deps;
mod junit;
mod plan;
mod registry;
mod render;
mod results;
mod runlog;
mod source;
mod tags;

use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "auditor-pack", about = "Lethe's documentation for auditors")]
struct Cli {
    /// The repository root (default: the one this tool was built from).
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check (or with --write, regenerate) docs/security-test-plan.md and
    /// the generated test lists of docs/hipaa.md.
    Docs {
        #[arg(long)]
        write: bool,
    },
    /// Write the JUnit XML of a test run.
    Junit {
        /// The `cargo test -- --show-output` log.
        #[arg(long)]
        log: PathBuf,
        /// `cargo test --no-run --message-format=json` outputs.
        #[arg(long = "binaries")]
        binaries: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Build the signed pack.
    Build(build::BuildArgs),
}

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

fn default_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn run(cli: Cli) -> Result<(), String> {
    let root = cli.root.unwrap_or_else(default_root);
    match cli.cmd {
        Cmd::Docs { write } => {
            let (registry, tags) = load(&root)?;
            if write {
                for (path, text) in generated_docs(&root, &registry, &tags)? {
                    std::fs::write(root.join(path), text).map_err(|e| format!("{path}: {e}"))?;
                    println!("wrote {path}");
                }
                Ok(())
            } else {
                check_docs(&root, &registry, &tags)?;
                println!(
                    "{} and {} are up to date ({} tagged tests)",
                    plan::PLAN_PATH,
                    plan::HIPAA_PATH,
                    tags.len()
                );
                Ok(())
            }
        }
        Cmd::Junit { log, binaries, out } => {
            let text =
                std::fs::read_to_string(&log).map_err(|e| format!("{}: {e}", log.display()))?;
            let run = runlog::parse_log(&text);
            let artifacts = build::read_binaries(&root, &binaries)?;
            std::fs::write(&out, junit::junit(&run, &artifacts))
                .map_err(|e| format!("{}: {e}", out.display()))
        }
        Cmd::Build(args) => build::build(&root, &args),
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("auditor-pack: {e}");
            ExitCode::FAILURE
        }
    }
}
