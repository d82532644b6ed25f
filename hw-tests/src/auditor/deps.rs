//! Dependencies with their licences (from `cargo metadata`), and the
//! CycloneDX SBOM (from `cargo cyclonedx`, installed by hw-tests/setup.sh).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// One third-party package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Dependency {
    pub name: String,
    pub version: String,
    /// The SPDX expression, or "see LICENSE file" / "none stated".
    pub license: String,
    /// crates.io, git, or a path.
    pub source: String,
}

/// A workspace's third-party packages for one platform.
pub struct Workspace {
    pub name: &'static str,
    pub platform: &'static str,
    pub deps: Vec<Dependency>,
}

fn metadata(manifest_dir: &Path, platform: &str) -> Result<serde_json::Value, String> {
    let out = Command::new("cargo")
        .current_dir(manifest_dir)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--filter-platform",
            platform,
        ])
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata in {}: {}",
            manifest_dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: {e}"))
}

/// The packages the resolved graph reaches (normal, build and dev
/// dependencies of every member) that are not workspace members.
pub fn third_party(v: &serde_json::Value) -> Vec<Dependency> {
    let members: Vec<&str> = v["workspace_members"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m.as_str()).collect())
        .unwrap_or_default();
    let reached: Vec<&str> = v["resolve"]["nodes"]
        .as_array()
        .map(|a| a.iter().filter_map(|n| n["id"].as_str()).collect())
        .unwrap_or_default();
    let mut out: Vec<Dependency> = v["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| {
            let id = p["id"].as_str().unwrap_or_default();
            !members.contains(&id) && reached.contains(&id)
        })
        .map(|p| {
            let s = |k: &str| p[k].as_str().map(str::to_owned);
            let license = s("license").unwrap_or_else(|| {
                if p["license_file"].is_string() {
                    "see its licence file".into()
                } else {
                    "none stated".into()
                }
            });
            let source = match p["source"].as_str() {
                Some(src) if src.contains("crates.io") => "crates.io".to_owned(),
                Some(src) if src.starts_with("git+") => "git".to_owned(),
                Some(src) => src.to_owned(),
                None => "path".to_owned(),
            };
            Dependency {
                name: s("name").unwrap_or_default(),
                version: s("version").unwrap_or_default(),
                license,
                source,
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Both workspaces: the host tools for Linux, the firmware for the board.
pub fn collect(root: &Path) -> Result<Vec<Workspace>, String> {
    Ok(vec![
        Workspace {
            name: "host workspace (lethe, its libraries and tests)",
            platform: "x86_64-unknown-linux-gnu",
            deps: third_party(&metadata(root, "x86_64-unknown-linux-gnu")?),
        },
        Workspace {
            name: "firmware workspace (the controller image and its host tests)",
            platform: "thumbv7em-none-eabihf",
            deps: third_party(&metadata(&root.join("firmware"), "thumbv7em-none-eabihf")?),
        },
    ])
}

/// The dependencies document (Markdown).
pub fn document(workspaces: &[Workspace], sbom_files: &[String]) -> String {
    let mut o = String::from("# Dependencies and licences\n\n");
    let _ = writeln!(
        o,
        "Every third-party package the resolved dependency graph of each workspace reaches \
         (normal, build and development dependencies), with the licence its manifest states, \
         from `cargo metadata --locked`. Lethe itself is GPL-3.0-or-later. The machine-readable \
         bill of materials (CycloneDX JSON, one per workspace member, from `cargo cyclonedx`) is \
         in `data/sbom/`:\n"
    );
    for f in sbom_files {
        let _ = writeln!(o, "- `{f}`");
    }
    for w in workspaces {
        let _ = writeln!(
            o,
            "\n## {}\n\nPlatform `{}`: {} packages.\n",
            w.name,
            w.platform,
            w.deps.len()
        );
        let mut by_license: BTreeMap<&str, usize> = BTreeMap::new();
        for d in &w.deps {
            *by_license.entry(d.license.as_str()).or_default() += 1;
        }
        let _ = writeln!(o, "| licence | packages |\n|---|---|");
        for (l, n) in &by_license {
            let _ = writeln!(o, "| {} | {n} |", l.replace('|', "\\|"));
        }
        let _ = writeln!(
            o,
            "\n| package | version | licence | source |\n|---|---|---|---|"
        );
        for d in &w.deps {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                d.name,
                d.version,
                d.license.replace('|', "\\|"),
                d.source
            );
        }
    }
    o
}

/// Run `cargo cyclonedx` on a workspace and move every SBOM it writes into
/// `out` as `<prefix><package>.cdx.json`. The tool writes beside each
/// member's Cargo.toml; the files are moved away at once.
pub fn sbom(
    workspace: &Path,
    platform: &str,
    out: &Path,
    prefix: &str,
) -> Result<Vec<String>, String> {
    const NAME: &str = "lethe-auditor-pack-sbom";
    let run = Command::new("cargo")
        .current_dir(workspace)
        .args([
            "cyclonedx",
            "-q",
            "--format",
            "json",
            "--spec-version",
            "1.5",
        ])
        .args(["--target", platform, "--override-filename", NAME])
        .output()
        .map_err(|e| format!("cargo cyclonedx: {e}"))?;
    if !run.status.success() {
        return Err(format!(
            "cargo cyclonedx in {} failed (is it installed? hw-tests/setup.sh installs it): {}",
            workspace.display(),
            String::from_utf8_lossy(&run.stderr).trim()
        ));
    }
    let meta = metadata(workspace, platform)?;
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut written = Vec::new();
    for p in meta["packages"].as_array().into_iter().flatten() {
        let id = p["id"].as_str().unwrap_or_default();
        let member = meta["workspace_members"]
            .as_array()
            .is_some_and(|m| m.iter().any(|x| x.as_str() == Some(id)));
        let Some(manifest) = p["manifest_path"].as_str().filter(|_| member) else {
            continue;
        };
        let dir = Path::new(manifest).parent().unwrap_or(Path::new("."));
        let file = dir.join(format!("{NAME}.json"));
        if !file.exists() {
            continue;
        }
        let name = format!(
            "{prefix}{}.cdx.json",
            p["name"].as_str().unwrap_or("package")
        );
        std::fs::copy(&file, out.join(&name)).map_err(|e| format!("{}: {e}", file.display()))?;
        std::fs::remove_file(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        written.push(name);
    }
    written.sort();
    if written.is_empty() {
        return Err(format!(
            "cargo cyclonedx wrote no SBOM in {}",
            workspace.display()
        ));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reached_third_party_packages_with_their_licences() {
        let v = serde_json::json!({
            "workspace_members": ["path+file:///r/daemon/core#lethe-core@0.1.0"],
            "resolve": {"nodes": [
                {"id": "path+file:///r/daemon/core#lethe-core@0.1.0"},
                {"id": "registry+https://github.com/rust-lang/crates.io-index#sha2@0.10.9"},
                {"id": "registry+https://github.com/rust-lang/crates.io-index#ring@0.17.0"}
            ]},
            "packages": [
                {"id": "path+file:///r/daemon/core#lethe-core@0.1.0", "name": "lethe-core", "version": "0.1.0", "license": "GPL-3.0-or-later", "source": null},
                {"id": "registry+https://github.com/rust-lang/crates.io-index#sha2@0.10.9", "name": "sha2", "version": "0.10.9", "license": "MIT OR Apache-2.0", "source": "registry+https://github.com/rust-lang/crates.io-index"},
                {"id": "registry+https://github.com/rust-lang/crates.io-index#ring@0.17.0", "name": "ring", "version": "0.17.0", "license": null, "license_file": "LICENSE", "source": "registry+https://github.com/rust-lang/crates.io-index"},
                {"id": "registry+https://github.com/rust-lang/crates.io-index#winapi@0.3.9", "name": "winapi", "version": "0.3.9", "license": "MIT", "source": "registry+https://github.com/rust-lang/crates.io-index"}
            ]
        });
        let d = third_party(&v);
        let names: Vec<(&str, &str, &str)> = d
            .iter()
            .map(|x| (x.name.as_str(), x.license.as_str(), x.source.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("ring", "see its licence file", "crates.io"),
                ("sha2", "MIT OR Apache-2.0", "crates.io")
            ]
        );
        let doc = document(
            &[Workspace {
                name: "host",
                platform: "x86_64",
                deps: d,
            }],
            &["sbom/lethe-core.cdx.json".into()],
        );
        assert!(doc.contains("| MIT OR Apache-2.0 | 1 |"), "{doc}");
        assert!(
            doc.contains("| sha2 | 0.10.9 | MIT OR Apache-2.0 | crates.io |"),
            "{doc}"
        );
    }
}
