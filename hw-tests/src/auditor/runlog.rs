//! One test run, read back: the `cargo test … -- --show-output` log that
//! `hw-tests/run-tests.sh` keeps, and the list of test binaries that
//! `cargo test --no-run --message-format=json` prints (which binary is
//! which crate and target).
//!
//! The log is read the way `hw-tests/summarize.awk` reads it: a test that
//! printed a line starting with `SKIPPED:` (or `SKIPPED (opt-in):`) in its
//! captured output is skipped, not passed; a test's captured output is the
//! `---- NAME stdout ----` section libtest prints after its binary ran.

use std::collections::BTreeMap;

/// How one test ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    Ignored,
    /// Its tier could not run here (the reason it printed).
    Skipped(String),
    /// A tier that runs only on request (real drives).
    OptIn(String),
}

impl Outcome {
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "FAILED",
            Outcome::Ignored => "ignored",
            Outcome::Skipped(_) => "skipped",
            Outcome::OptIn(_) => "opt-in, not run",
        }
    }
}

/// One test of one binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    pub name: String,
    pub outcome: Outcome,
    /// Its captured output (with `--show-output`), if the log has it.
    pub output: String,
}

/// One test binary's run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BinaryRun {
    /// What cargo printed after "Running" (`tests/wipe_loop.rs`), or the
    /// crate of a doc-test run.
    pub source: String,
    pub tests: Vec<TestResult>,
}

/// The whole run: binaries by executable file name (`wipe_loop-0123abcd`),
/// doc tests as `doc:CRATE`, in the order they ran.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Run {
    pub order: Vec<String>,
    pub binaries: BTreeMap<String, BinaryRun>,
}

/// Totals, counted as `summarize.awk` counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub opt_in: usize,
    pub ignored: usize,
}

fn exe_base(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_owned()
}

/// Parse a `cargo test --no-fail-fast -- --show-output` log (several
/// workspaces' logs may follow each other).
pub fn parse_log(text: &str) -> Run {
    let mut run = Run::default();
    let mut current: Option<String> = None;
    let mut section: Option<(String, String)> = None;
    let mut outputs: BTreeMap<(String, String), String> = BTreeMap::new();
    let close = |section: &mut Option<(String, String)>,
                 outputs: &mut BTreeMap<(String, String), String>,
                 current: &Option<String>| {
        if let (Some((name, out)), Some(bin)) = (section.take(), current) {
            outputs
                .entry((bin.clone(), name))
                .or_default()
                .push_str(&out);
        }
    };
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("Running ") {
            close(&mut section, &mut outputs, &current);
            let (src, exe) = match (rest.rfind(" ("), rest.ends_with(')')) {
                (Some(i), true) => (&rest[..i], &rest[i + 2..rest.len() - 1]),
                _ => (rest, rest),
            };
            let src = src.strip_prefix("unittests ").unwrap_or(src);
            let key = exe_base(exe);
            if !run.binaries.contains_key(&key) {
                run.order.push(key.clone());
            }
            run.binaries.entry(key.clone()).or_default().source = src.to_owned();
            current = Some(key);
            continue;
        }
        if let Some(krate) = t.strip_prefix("Doc-tests ") {
            close(&mut section, &mut outputs, &current);
            let key = format!("doc:{}", krate.trim());
            if !run.binaries.contains_key(&key) {
                run.order.push(key.clone());
            }
            run.binaries.entry(key.clone()).or_default().source = krate.trim().to_owned();
            current = Some(key);
            continue;
        }
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|r| r.strip_suffix(" stdout ----"))
        {
            close(&mut section, &mut outputs, &current);
            section = Some((name.to_owned(), String::new()));
            continue;
        }
        if line.starts_with("test result:") || line == "successes:" || line == "failures:" {
            close(&mut section, &mut outputs, &current);
            continue;
        }
        if let Some((_, out)) = section.as_mut() {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        if let (Some(rest), Some(bin)) = (line.strip_prefix("test "), current.as_ref()) {
            let Some((name, status)) = rest.rsplit_once(" ... ") else {
                continue;
            };
            let name = name.strip_suffix(" - should panic").unwrap_or(name);
            let outcome = match status {
                "ok" => Outcome::Passed,
                "FAILED" => Outcome::Failed,
                s if s.starts_with("ignored") => Outcome::Ignored,
                _ => continue,
            };
            if let Some(b) = run.binaries.get_mut(bin) {
                b.tests.push(TestResult {
                    name: name.to_owned(),
                    outcome,
                    output: String::new(),
                });
            }
        }
    }
    close(&mut section, &mut outputs, &current);
    for (key, bin) in run.binaries.iter_mut() {
        for t in bin.tests.iter_mut() {
            let Some(out) = outputs.remove(&(key.clone(), t.name.clone())) else {
                continue;
            };
            if t.outcome == Outcome::Passed {
                if let Some(l) = out.lines().find(|l| l.starts_with("SKIPPED")) {
                    let opt_in = l.starts_with("SKIPPED (opt-in)");
                    let reason = l
                        .trim_start_matches("SKIPPED (opt-in):")
                        .trim_start_matches("SKIPPED:")
                        .trim()
                        .to_owned();
                    t.outcome = if opt_in {
                        Outcome::OptIn(reason)
                    } else {
                        Outcome::Skipped(reason)
                    };
                }
            }
            t.output = out;
        }
    }
    run
}

impl Run {
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for b in self.binaries.values() {
            for r in &b.tests {
                match r.outcome {
                    Outcome::Passed => t.passed += 1,
                    Outcome::Failed => t.failed += 1,
                    Outcome::Ignored => t.ignored += 1,
                    Outcome::Skipped(_) => t.skipped += 1,
                    Outcome::OptIn(_) => t.opt_in += 1,
                }
            }
        }
        t
    }
}

/// A test binary as cargo built it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The package name (`lethe-cli`).
    pub package: String,
    /// The package folder from the repository root (`daemon/cli`).
    pub package_dir: String,
    /// The target's name (`wipe_loop`, `lethe_core`, `lethe`).
    pub target: String,
    /// `lib`, `bin`, `test`, …
    pub kind: String,
    /// The target's root file from the repository root.
    pub src_path: String,
    /// The executable's file name, as the log names it.
    pub exe: String,
}

fn relative(path: &str, root: &str) -> String {
    let root = root.trim_end_matches('/');
    path.strip_prefix(root)
        .and_then(|p| p.strip_prefix('/'))
        .unwrap_or(path)
        .to_owned()
}

/// Parse `cargo test --no-run --message-format=json` output. `root` is the
/// repository root as an absolute path (cargo prints absolute paths).
pub fn parse_binaries(json_lines: &str, root: &str) -> Result<Vec<Artifact>, String> {
    let mut out = Vec::new();
    for line in json_lines.lines().filter(|l| l.starts_with('{')) {
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("test binary list: {e}"))?;
        if v["reason"] != "compiler-artifact" || v["profile"]["test"] != true {
            continue;
        }
        let Some(exe) = v["executable"].as_str() else {
            continue;
        };
        let s = |p: &serde_json::Value| p.as_str().unwrap_or_default().to_owned();
        let manifest = s(&v["manifest_path"]);
        let package_dir = relative(manifest.trim_end_matches("/Cargo.toml"), root);
        let package_id = s(&v["package_id"]);
        // "path+file:///…/daemon/cli#lethe-cli@0.1.0" (or "…#0.1.0" when the
        // folder is named like the package, or the older "lethe-cli 0.1.0 (…)").
        let package = match package_id.rsplit_once('#') {
            Some((path, tail)) => match tail.split_once('@') {
                Some((name, _)) => name.to_owned(),
                None => path.rsplit('/').next().unwrap_or_default().to_owned(),
            },
            None => package_id.split(' ').next().unwrap_or_default().to_owned(),
        };
        out.push(Artifact {
            package,
            package_dir,
            target: s(&v["target"]["name"]),
            kind: v["target"]["kind"][0]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            src_path: relative(&s(&v["target"]["src_path"]), root),
            exe: exe_base(exe),
        });
    }
    Ok(out)
}

/// The artifact of an executable's file name.
pub fn artifact_of_exe<'a>(artifacts: &'a [Artifact], exe: &str) -> Option<&'a Artifact> {
    artifacts.iter().find(|a| a.exe == exe)
}

/// The test binary a source file's tests are compiled into: the target
/// whose root is the file, or whose root (`lib.rs`, `main.rs`) sits in the
/// closest folder above it; a library before a binary.
pub fn artifact_of<'a>(artifacts: &'a [Artifact], file: &str) -> Option<&'a Artifact> {
    artifacts
        .iter()
        .filter_map(|a| {
            if a.src_path == file {
                return Some((usize::MAX, a));
            }
            let (dir, base) = a.src_path.rsplit_once('/')?;
            let is_root = matches!(base, "lib.rs" | "main.rs" | "mod.rs");
            (is_root && file.starts_with(&format!("{dir}/"))).then_some((dir.len(), a))
        })
        .max_by_key(|(score, a)| (*score, a.kind == "lib"))
        .map(|(_, a)| a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> String {
        let p =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/show-output.log");
        std::fs::read_to_string(p).unwrap()
    }

    #[test]
    fn the_recorded_log_is_read_as_summarize_awk_reads_it() {
        let run = parse_log(&fixture());
        assert_eq!(
            run.order,
            ["lethe_core-0123abcd", "real_drive-99ff", "doc:lethe_core"]
        );
        let core = &run.binaries["lethe_core-0123abcd"];
        assert_eq!(core.source, "src/lib.rs");
        let outcomes: Vec<(&str, &Outcome)> = core
            .tests
            .iter()
            .map(|t| (t.name.as_str(), &t.outcome))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("a", &Outcome::Skipped("needs root".into())),
                ("b", &Outcome::Skipped("again".into())),
                ("c", &Outcome::Failed),
            ]
        );
        assert!(core.tests[2].output.contains("thread 'c' panicked"));
        assert_eq!(
            run.binaries["real_drive-99ff"].tests[0].outcome,
            Outcome::OptIn("set LETHE_HW_DEVICE".into())
        );
        // The same figures as the awk script's closing line in
        // hw-tests/tests/summary_script.rs ("0 passed, 1 failed, 2 skipped (1 opt-in …)").
        let t = run.totals();
        assert_eq!((t.passed, t.failed, t.skipped, t.opt_in), (0, 1, 2, 1));
    }

    #[test]
    fn should_panic_ignored_and_interleaved_binaries() {
        let log = "\
     Running tests/x.rs (target/debug/deps/x-1)
test a - should panic ... ok
test b ... ignored, needs a drive
test c ... ok
test result: ok. 2 passed; 0 failed; 1 ignored
   Doc-tests lethe_core
test src/lib.rs - (line 5) ... ok
     Running unittests src/lib.rs (/abs/firmware/target/debug/deps/lethe_fw_logic-2)
test machine::tests::t ... ok
";
        let run = parse_log(log);
        let x = &run.binaries["x-1"];
        assert_eq!(x.tests[0].name, "a");
        assert_eq!(x.tests[1].outcome, Outcome::Ignored);
        assert_eq!(run.binaries["doc:lethe_core"].tests.len(), 1);
        assert_eq!(
            run.binaries["lethe_fw_logic-2"].tests[0].name,
            "machine::tests::t"
        );
        assert_eq!(run.totals().passed, 4);
    }

    #[test]
    fn binaries_map_files_to_their_test_targets() {
        let line = |pkg: &str, dir: &str, name: &str, kind: &str, src: &str, exe: &str| {
            format!(
                r#"{{"reason":"compiler-artifact","package_id":"path+file:///r/{dir}#{pkg}@0.1.0","manifest_path":"/r/{dir}/Cargo.toml","target":{{"kind":["{kind}"],"name":"{name}","src_path":"/r/{dir}/{src}"}},"profile":{{"test":true}},"executable":"/r/target/debug/deps/{exe}"}}"#
            )
        };
        let json = [
            line(
                "lethe-core",
                "daemon/core",
                "lethe_core",
                "lib",
                "src/lib.rs",
                "lethe_core-1",
            ),
            line(
                "lethe-cli",
                "daemon/cli",
                "lethe",
                "bin",
                "src/main.rs",
                "lethe-2",
            ),
            line(
                "lethe-cli",
                "daemon/cli",
                "wipe_loop",
                "test",
                "tests/wipe_loop.rs",
                "wipe_loop-3",
            ),
            line(
                "lethe-audit",
                "daemon/audit",
                "integration",
                "test",
                "tests/integration/main.rs",
                "integration-4",
            ),
            line(
                "lethe-hw-tests",
                "hw-tests",
                "lethe_hw_tests",
                "lib",
                "src/lib.rs",
                "lethe_hw_tests-5",
            ),
            line(
                "lethe-hw-tests",
                "hw-tests",
                "auditor-pack",
                "bin",
                "src/bin/auditor-pack/main.rs",
                "auditor_pack-6",
            ),
            r#"{"reason":"build-finished","success":true}"#.to_owned(),
        ]
        .join("\n");
        let a = parse_binaries(&json, "/r/").unwrap();
        assert_eq!(a.len(), 6);
        assert_eq!(a[0].package, "lethe-core");
        assert_eq!(a[0].package_dir, "daemon/core");
        let exe = |f: &str| artifact_of(&a, f).map(|x| x.exe.as_str());
        assert_eq!(
            exe("daemon/core/src/inventory/tests.rs"),
            Some("lethe_core-1")
        );
        assert_eq!(exe("daemon/cli/src/cmd_backup/args.rs"), Some("lethe-2"));
        assert_eq!(exe("daemon/cli/tests/wipe_loop.rs"), Some("wipe_loop-3"));
        assert_eq!(exe("daemon/cli/tests/common.rs"), None);
        assert_eq!(
            exe("daemon/audit/tests/integration/writer.rs"),
            Some("integration-4")
        );
        assert_eq!(exe("hw-tests/src/qemu_board.rs"), Some("lethe_hw_tests-5"));
        assert_eq!(
            exe("hw-tests/src/bin/auditor-pack/tags.rs"),
            Some("auditor_pack-6")
        );
    }
}
