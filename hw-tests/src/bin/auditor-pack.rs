//! `auditor-pack`: the documentation for auditors (docs/auditor-pack.md).
//!
//! - `docs [--write]`: regenerate `docs/security-test-plan.md` and the test
//!   lists of `docs/hipaa.md` (without `--write`: fail when they are stale);
//! - `junit`: the JUnit XML of a `cargo test -- --show-output` log;
//! - `build`: the signed pack, from the results folder `run-tests.sh` keeps.
//!
//! The work is done by `lethe_hw_tests::auditor`; this is the edge.

use clap::{Parser, Subcommand};
use lethe_hw_tests::auditor::{self, build, junit, plan, runlog};
use std::path::PathBuf;
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
    Build {
        /// The results folder of `hw-tests/run-tests.sh` (test.log,
        /// binaries.json, firmware-binaries.json, commit).
        #[arg(long)]
        results: PathBuf,
        /// Where to create the pack's folder.
        #[arg(long)]
        out: PathBuf,
        /// The previous version: a pack folder, `git:REV`, `auto` (the
        /// newest tag v* before HEAD), or `none`.
        #[arg(long, default_value = "auto")]
        previous: String,
        /// The release private key (64 hex digits, mode 0600, as
        /// appliance.key). Without it a throw-away key signs the pack, and
        /// the manifest says so.
        #[arg(long, env = "LETHE_RELEASE_KEY")]
        key: Option<PathBuf>,
        /// Leave out the CycloneDX SBOM.
        #[arg(long)]
        no_sbom: bool,
        /// The Chromium binary that prints the PDF.
        #[arg(long, default_value = "chromium")]
        chromium: String,
        /// The build time, `YYYY-MM-DDTHH:MM:SSZ` (default: now).
        #[arg(long)]
        built: Option<String>,
    },
}

fn run(cli: Cli) -> Result<(), String> {
    let root = cli.root.unwrap_or_else(auditor::default_root);
    match cli.cmd {
        Cmd::Docs { write } => {
            let (registry, tags) = auditor::load(&root)?;
            if write {
                for (path, text) in auditor::generated_docs(&root, &registry, &tags)? {
                    std::fs::write(root.join(path), text).map_err(|e| format!("{path}: {e}"))?;
                    println!("wrote {path}");
                }
            } else {
                auditor::check_docs(&root, &registry, &tags)?;
                println!(
                    "{} and {} are up to date ({} tagged tests)",
                    plan::PLAN_PATH,
                    plan::HIPAA_PATH,
                    tags.len()
                );
            }
            Ok(())
        }
        Cmd::Junit { log, binaries, out } => {
            let text =
                std::fs::read_to_string(&log).map_err(|e| format!("{}: {e}", log.display()))?;
            let run = runlog::parse_log(&text);
            let artifacts = build::read_binaries(&root, &binaries)?;
            std::fs::write(&out, junit::junit(&run, &artifacts))
                .map_err(|e| format!("{}: {e}", out.display()))
        }
        Cmd::Build {
            results,
            out,
            previous,
            key,
            no_sbom,
            chromium,
            built,
        } => {
            let opts = build::BuildOptions {
                results,
                out,
                previous,
                key,
                sbom: !no_sbom,
                chromium,
                built,
            };
            let pack = build::build(&root, &opts)?;
            println!("{}", pack.summary);
            Ok(())
        }
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
