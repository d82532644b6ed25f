//! Building the pack: documents, data, HTML, PDF, signed manifest.
//!
//! ```text
//! lethe-auditor-pack-VERSION-COMMIT/
//!   MANIFEST                     signed note: SHA-256 and size of every other file
//!   release.pub                  the signing key's public half (convenience only)
//!   lethe-auditor-pack.pdf       every document, one PDF
//!   html/                        the same documents as pages; print.html is the PDF's source
//!   data/safeguards.json         registry + tags + results (the next version's "previous")
//!   data/test-results.junit.xml  the run, per test
//!   data/test-run.log            the run's log
//!   data/dependencies.json       third-party packages and licences
//!   data/sbom/*.cdx.json         CycloneDX SBOMs
//! ```

use super::changes::{self, Snapshot};
use super::registry::Registry;
use super::render::{self, Banner, Doc};
use super::results::{self, Joined};
use super::runlog::{self, Artifact, Outcome, Run};
use super::source::Source;
use super::{deps, junit, plan};
use lethe_cert::ApplianceKey;
use lethe_pack::{Header, KeyKind};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What to build, and from what.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The results folder of `hw-tests/run-tests.sh`: test.log,
    /// binaries.json, firmware-binaries.json, commit.
    pub results: PathBuf,
    /// Where to create the pack's folder.
    pub out: PathBuf,
    /// The previous version: a pack folder, `git:REV`, `auto` (the newest
    /// tag v* before HEAD), or `none`.
    pub previous: String,
    /// The release private key file; `None`: a throw-away key.
    pub key: Option<PathBuf>,
    /// Write the CycloneDX SBOM (`cargo cyclonedx`).
    pub sbom: bool,
    /// The Chromium binary that prints the PDF.
    pub chromium: String,
    /// The build time (`YYYY-MM-DDTHH:MM:SSZ`; default: now).
    pub built: Option<String>,
}

/// A pack that was built and signed.
#[derive(Debug, Clone)]
pub struct BuiltPack {
    /// Its folder.
    pub dir: PathBuf,
    /// The signed manifest.
    pub manifest: lethe_pack::Manifest,
    /// One line for the terminal.
    pub summary: String,
}

pub fn read_binaries(root: &Path, files: &[PathBuf]) -> Result<Vec<Artifact>, String> {
    let root_abs = std::fs::canonicalize(root).map_err(|e| format!("{}: {e}", root.display()))?;
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        out.extend(runlog::parse_binaries(&text, &root_abs.to_string_lossy())?);
    }
    Ok(out)
}

fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The commit, with `+dirty` when tracked files differ from it.
pub fn commit_of(root: &Path) -> Result<String, String> {
    let head = git(root, &["rev-parse", "HEAD"])
        .ok_or("not a git checkout (git rev-parse HEAD failed)")?;
    let dirty = git(root, &["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|s| !s.is_empty());
    Ok(if dirty { format!("{head}+dirty") } else { head })
}

fn now_rfc3339() -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output();
    out.ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn previous_snapshot(root: &Path, spec: &str) -> Result<(Option<Snapshot>, String), String> {
    if spec == "none" {
        return Ok((None, "none requested".into()));
    }
    if let Some(rev) = spec.strip_prefix("git:") {
        let s = changes::snapshot_of_rev(root, rev)?;
        let name = format!("git revision {rev}");
        return Ok(match s {
            Some(s) => (Some(s), name),
            None => (None, format!("{name} predates docs/safeguards.toml")),
        });
    }
    if spec == "auto" {
        let Some(tag) = git(
            root,
            &["describe", "--tags", "--abbrev=0", "--match", "v*", "HEAD^"],
        ) else {
            return Ok((None, "no earlier version tag (v*) in this clone".into()));
        };
        return previous_snapshot(root, &format!("git:{tag}"));
    }
    let dir = Path::new(spec);
    let signer = match lethe_pack::verify_pack(dir, None) {
        Ok(_) => "its signature and files check out",
        Err(e) => return Err(format!("previous pack {spec}: {e}")),
    };
    let text = std::fs::read_to_string(dir.join("data/safeguards.json"))
        .map_err(|e| format!("{spec}/data/safeguards.json: {e}"))?;
    let s: Snapshot =
        serde_json::from_str(&text).map_err(|e| format!("{spec}/data/safeguards.json: {e}"))?;
    Ok((Some(s), format!("the pack in {spec}; {signer}")))
}

fn totals_line(run: &Run) -> String {
    let t = run.totals();
    format!(
        "{} passed, {} failed, {} skipped ({} opt-in not requested, {} ignored)",
        t.passed, t.failed, t.skipped, t.opt_in, t.ignored
    )
}

fn cover(
    registry: &Registry,
    joined: &[Joined],
    run: &Run,
    header: &Header,
    key_id: &str,
    docs: &[(String, String)],
) -> String {
    let mut o = String::new();
    let kind = match header.key_kind {
        KeyKind::Release => "the release key",
        KeyKind::ThrowAway => {
            "a throw-away key made for this build (no release key was configured)"
        }
    };
    let _ = writeln!(o, "# Lethe {} auditor pack\n", header.version);
    let _ = writeln!(
        o,
        "| | |\n|---|---|\n| version | {} |\n| commit | `{}` |\n| built | {} |\n| signed by | key `{key_id}`, {kind} |\n| test run | {} |\n",
        header.version,
        header.commit,
        header.built,
        totals_line(run)
    );
    let _ = writeln!(
        o,
        "This pack documents one version of Lethe for auditors: how it serves the HIPAA technical \
         safeguards (45 CFR §164.312) and the device and media controls (§164.310(d)(2)), the plan \
         for testing them and its safety rules, the results of this version's own test run by \
         safeguard, what changed since the previous version, the threat model, the benchmark \
         summary, and the software bill of materials with every dependency's licence. Everything \
         was generated from the sources of the commit above and from its CI test run.\n"
    );
    let _ = writeln!(
        o,
        "## Checking this pack\n\n`MANIFEST` lists the SHA-256 of every file and is signed with \
         Ed25519. With Lethe installed:\n\n```\nlethe verify-pack lethe-auditor-pack-{}-… --key RELEASE.pub\n```\n\n\
         exits 0 and prints `VALID` only when the signature is the release key's and no file was \
         changed, added or removed. `release.pub` inside the pack only names the key; get the \
         release public key from the project, not from the pack.\n",
        header.version
    );
    let _ = writeln!(o, "## Safeguards at a glance\n\n| safeguard or rule | status | tagged tests | passed in this run |\n|---|---|---|---|");
    for s in &registry.safeguards {
        let mine: Vec<&Joined> = joined
            .iter()
            .filter(|j| j.test.ids.contains(&s.id))
            .collect();
        let passed = mine.iter().filter(|j| j.passed()).count();
        let _ = writeln!(
            o,
            "| [{} {}](test-results.md#{}) | {} | {} | {} |",
            plan::label(s),
            s.title,
            plan::anchor(s),
            s.status.as_str(),
            mine.len(),
            passed
        );
    }
    let _ = writeln!(o, "\n## Contents\n");
    for (slug, title) in docs {
        let _ = writeln!(o, "- [{title}]({slug}.md)");
    }
    let _ = writeln!(
        o,
        "\nData (in `data/`): `safeguards.json` (the registry, tags and results: the next \
         version's comparison base), `test-results.junit.xml` and `test-run.log` (the whole run), \
         `dependencies.json`, `sbom/*.cdx.json` (CycloneDX)."
    );
    o
}

fn results_doc(registry: &Registry, joined: &[Joined], run: &Run) -> String {
    let mut o = String::from("# Test results by safeguard\n\n");
    let _ = writeln!(
        o,
        "The results of this version's test run (`hw-tests/run-tests.sh`, {}) for every test \
         tagged with a safeguard or safety rule. A test counts for its safeguard only when it ran \
         and passed: a test that skipped its tier, was ignored or did not run does not. The pack \
         is not built when a safeguard has no passing test.\n",
        totals_line(run)
    );
    for s in &registry.safeguards {
        let mine: Vec<&Joined> = {
            let mut v: Vec<&Joined> = joined
                .iter()
                .filter(|j| j.test.ids.contains(&s.id))
                .collect();
            v.sort_by(|a, b| (&a.test.file, a.test.line).cmp(&(&b.test.file, b.test.line)));
            v
        };
        let passed = mine.iter().filter(|j| j.passed()).count();
        let _ = writeln!(o, "## {} {}\n", plan::label(s), s.title);
        let _ = writeln!(
            o,
            "{} ({}); {passed} of {} tagged tests passed.{}\n",
            s.status.as_str(),
            s.requirement,
            mine.len(),
            s.pending
                .as_ref()
                .map(|p| format!(" Not yet covered: {p}"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            o,
            "| test | tier | test binary | result |\n|---|---|---|---|"
        );
        for j in mine {
            let result = match (&j.outcome, &j.missing) {
                (Some(Outcome::Skipped(why)), _) | (Some(Outcome::OptIn(why)), _) => {
                    format!("{}: {}", j.word(), why)
                }
                (_, Some(m)) => format!("not run: {m}"),
                _ => j.word().to_owned(),
            };
            let _ = writeln!(
                o,
                "| `{}` | {} | {} | {} |",
                j.test.key(),
                j.tier,
                j.binary.as_deref().unwrap_or("?"),
                result.replace('|', "\\|")
            );
        }
        o.push('\n');
    }
    let mut not_passed = Vec::new();
    for exe in &run.order {
        for r in &run.binaries[exe].tests {
            if !matches!(r.outcome, Outcome::Passed) {
                let why = match &r.outcome {
                    Outcome::Skipped(w) | Outcome::OptIn(w) => format!(": {w}"),
                    _ => String::new(),
                };
                not_passed.push(format!("- `{exe}` `{}`: {}{why}", r.name, r.outcome.word()));
            }
        }
    }
    let _ = writeln!(o, "## Every test of the run that did not pass\n");
    if not_passed.is_empty() {
        let _ = writeln!(o, "None: every test of the run passed.");
    } else {
        o.push_str(&not_passed.join("\n"));
        o.push('\n');
    }
    o
}

fn read_doc(root: &Path, path: &str) -> Result<String, String> {
    std::fs::read_to_string(root.join(path)).map_err(|e| format!("{path}: {e}"))
}

/// The documents of the pack, in order: (slug, markdown).
fn documents(root: &Path, generated: Vec<(&str, String)>) -> Result<Vec<Doc>, String> {
    let mut docs = Vec::new();
    for (slug, md) in generated {
        docs.push((slug.to_owned(), md));
    }
    for (slug, path) in [
        ("hipaa", plan::HIPAA_PATH),
        ("security-test-plan", plan::PLAN_PATH),
        ("threat-model", "docs/threat-model.md"),
        ("safety", "docs/safety.md"),
        ("benchmarks", "docs/benchmarks.md"),
    ] {
        docs.push((slug.to_owned(), read_doc(root, path)?));
    }
    docs.into_iter()
        .map(|(slug, markdown)| {
            let title =
                render::title_of(&markdown).ok_or(format!("{slug}: no top-level heading"))?;
            Ok(Doc {
                slug,
                title,
                markdown,
            })
        })
        .collect()
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn build(root: &Path, args: &BuildOptions) -> Result<BuiltPack, String> {
    let commit = commit_of(root)?;
    let tested = std::fs::read_to_string(args.results.join("commit")).map_err(|e| {
        format!(
            "{}/commit: {e} (a results folder of hw-tests/run-tests.sh)",
            args.results.display()
        )
    })?;
    if tested.trim() != commit {
        return Err(format!(
            "the results in {} are of commit {}, not of {commit}: run hw-tests/run-tests.sh again",
            args.results.display(),
            tested.trim()
        ));
    }
    let version = super::workspace_version(&read_doc(root, "Cargo.toml")?)
        .ok_or("Cargo.toml has no [workspace.package] version")?;
    let built = args.built.clone().unwrap_or_else(now_rfc3339);

    // Sources: the registry, the tags, and documents that match them.
    let (registry, tags) = super::load(root)?;
    super::check_docs(root, &registry, &tags)?;

    // The run.
    let log_path = args.results.join("test.log");
    let log =
        std::fs::read_to_string(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let run = runlog::parse_log(&log);
    let binaries: Vec<PathBuf> = ["binaries.json", "firmware-binaries.json"]
        .iter()
        .map(|f| args.results.join(f))
        .filter(|p| p.exists())
        .collect();
    let artifacts = read_binaries(root, &binaries)?;
    let joined = results::join(&registry, &tags, &artifacts, &run);
    let uncovered = results::uncovered(&registry, &joined);
    if !uncovered.is_empty() {
        return Err(format!(
            "{} safeguard(s) have no tagged test that ran and passed in this run:\n  {}",
            uncovered.len(),
            uncovered.join("\n  ")
        ));
    }

    // The pack folder, fresh.
    let short: String = commit.chars().take(12).collect();
    let dir = args.out.join(format!(
        "lethe-auditor-pack-{version}-{short}{}",
        if commit.ends_with("+dirty") {
            "-dirty"
        } else {
            ""
        }
    ));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir.join("data")).map_err(|e| format!("{}: {e}", dir.display()))?;

    // Data.
    let source = Source::WorkTree(root.to_path_buf());
    let snap = changes::snapshot(&source, &registry, &tags, Some(&joined), &version, &commit)?;
    write(
        &dir.join("data/safeguards.json"),
        &(serde_json::to_string_pretty(&snap).map_err(|e| e.to_string())? + "\n"),
    )?;
    write(
        &dir.join("data/test-results.junit.xml"),
        &junit::junit(&run, &artifacts),
    )?;
    write(&dir.join("data/test-run.log"), &log)?;
    let workspaces = deps::collect(root)?;
    let dep_json: Vec<serde_json::Value> = workspaces
        .iter()
        .map(|w| serde_json::json!({"workspace": w.name, "platform": w.platform, "packages": w.deps}))
        .collect();
    write(
        &dir.join("data/dependencies.json"),
        &(serde_json::to_string_pretty(&dep_json).map_err(|e| e.to_string())? + "\n"),
    )?;
    let mut sbom_files = Vec::new();
    if args.sbom {
        let sbom_dir = dir.join("data/sbom");
        for f in deps::sbom(root, "x86_64-unknown-linux-gnu", &sbom_dir, "")? {
            sbom_files.push(format!("data/sbom/{f}"));
        }
        for f in deps::sbom(
            &root.join("firmware"),
            "thumbv7em-none-eabihf",
            &sbom_dir,
            "firmware-",
        )? {
            sbom_files.push(format!("data/sbom/{f}"));
        }
    }

    // Documents.
    let (previous, previous_name) = previous_snapshot(root, &args.previous)?;
    let changes_md = format!(
        "# Changes since the previous version\n\n{}",
        changes::changes(previous.as_ref(), &previous_name, &snap)
    );
    let key = match &args.key {
        Some(k) => (
            ApplianceKey::load_file(k).map_err(|e| e.to_string())?,
            KeyKind::Release,
        ),
        None => {
            let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
            let k = ApplianceKey::load_or_create(tmp.path()).map_err(|e| e.to_string())?;
            (k, KeyKind::ThrowAway)
        }
    };
    let header = Header {
        version: version.clone(),
        commit: commit.clone(),
        built: built.clone(),
        key_kind: key.1,
    };
    let mut docs = documents(
        root,
        vec![
            ("test-results", results_doc(&registry, &joined, &run)),
            ("changes", changes_md),
        ],
    )?;
    docs.push(Doc {
        slug: "dependencies".into(),
        title: "Dependencies and licences".into(),
        markdown: deps::document(&workspaces, &sbom_files),
    });
    let contents: Vec<(String, String)> = docs
        .iter()
        .map(|d| (d.slug.clone(), d.title.clone()))
        .collect();
    let index_md = cover(&registry, &joined, &run, &header, key.0.key_id(), &contents);
    docs.insert(
        0,
        Doc {
            slug: "index".into(),
            title: render::title_of(&index_md).unwrap_or_default(),
            markdown: index_md,
        },
    );
    let banner = Banner {
        version: version.clone(),
        commit: commit.clone(),
        built: built.clone(),
    };
    render::write_folder(&dir.join("html"), &docs, &banner)?;
    let pdf = dir.join("lethe-auditor-pack.pdf");
    render::print_pdf(&args.chromium, &dir.join("html/print.html"), &pdf)?;
    let text = render::pdf_text(&pdf)?;
    let missing: Vec<&str> = docs
        .iter()
        .map(|d| d.title.as_str())
        .filter(|t| !text.contains(&t.split_whitespace().collect::<Vec<_>>().join(" ")))
        .collect();
    if !missing.is_empty() {
        return Err(format!("the PDF lacks the headings {missing:?}"));
    }

    let manifest = lethe_pack::sign_pack(&dir, &header, &key.0).map_err(|e| e.to_string())?;
    let summary = format!(
        "auditor pack: {} ({} files, signed by {} key {}); {} safeguards and rules, {} tagged tests; {}",
        dir.display(),
        manifest.files.len(),
        if key.1 == KeyKind::Release { "release" } else { "throw-away" },
        key.0.key_id(),
        registry.safeguards.len(),
        tags.len(),
        totals_line(&run)
    );
    Ok(BuiltPack {
        dir,
        manifest,
        summary,
    })
}
