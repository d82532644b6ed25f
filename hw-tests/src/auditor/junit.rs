//! JUnit XML of a run, for CI systems and the pack: one `<testsuite>` per
//! test binary (`package::target`), a test that skipped its tier as
//! `<skipped>` with its reason, a failure with its captured output.

use super::runlog::{artifact_of_exe, Artifact, Outcome, Run};
use std::fmt::Write as _;

/// XML 1.0 text: escaped, and without the control characters XML forbids.
pub fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\t' | '\n' | '\r' => o.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

/// The suite name of a binary: `package::target`, `doc-tests::CRATE`, or
/// its executable name when cargo's list does not have it.
pub fn suite_name(artifacts: &[Artifact], exe: &str) -> String {
    if let Some(k) = exe.strip_prefix("doc:") {
        return format!("doc-tests::{k}");
    }
    artifact_of_exe(artifacts, exe)
        .map(|a| format!("{}::{}", a.package, a.target))
        .unwrap_or_else(|| exe.to_owned())
}

pub fn junit(run: &Run, artifacts: &[Artifact]) -> String {
    let t = run.totals();
    let all = t.passed + t.failed + t.skipped + t.opt_in + t.ignored;
    let mut o = String::new();
    let _ = writeln!(o, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        o,
        r#"<testsuites name="lethe" tests="{all}" failures="{}" skipped="{}">"#,
        t.failed,
        t.skipped + t.opt_in + t.ignored
    );
    for exe in &run.order {
        let b = &run.binaries[exe];
        let suite = xml_escape(&suite_name(artifacts, exe));
        let failures = b
            .tests
            .iter()
            .filter(|r| r.outcome == Outcome::Failed)
            .count();
        let skipped = b
            .tests
            .iter()
            .filter(|r| !matches!(r.outcome, Outcome::Passed | Outcome::Failed))
            .count();
        let _ = writeln!(
            o,
            r#"  <testsuite name="{suite}" tests="{}" failures="{failures}" skipped="{skipped}">"#,
            b.tests.len()
        );
        for r in &b.tests {
            let name = xml_escape(&r.name);
            let body = match &r.outcome {
                Outcome::Passed => None,
                Outcome::Failed => Some(format!(
                    "<failure message=\"test failed\">{}</failure>",
                    xml_escape(&r.output)
                )),
                Outcome::Ignored => Some("<skipped message=\"ignored\"/>".to_owned()),
                Outcome::Skipped(why) => {
                    Some(format!("<skipped message=\"{}\"/>", xml_escape(why)))
                }
                Outcome::OptIn(why) => Some(format!(
                    "<skipped message=\"opt-in, not requested: {}\"/>",
                    xml_escape(why)
                )),
            };
            match body {
                None => {
                    let _ = writeln!(o, r#"    <testcase classname="{suite}" name="{name}"/>"#);
                }
                Some(body) => {
                    let _ = writeln!(
                        o,
                        "    <testcase classname=\"{suite}\" name=\"{name}\">{body}</testcase>"
                    );
                }
            }
        }
        let _ = writeln!(o, "  </testsuite>");
    }
    o.push_str("</testsuites>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auditor::runlog::parse_log;

    #[test]
    fn skips_failures_and_escaping() {
        let log = "\
     Running tests/x.rs (target/debug/deps/x-1)
test ok_one ... ok
test skips ... ok
test fails ... FAILED
test gated ... ignored
successes:

---- skips stdout ----
SKIPPED: needs <root> & \"losetup\"

failures:

---- fails stdout ----
thread 'fails' panicked: 1 < 2 \u{1}

test result: FAILED. 2 passed; 1 failed; 1 ignored
";
        let run = parse_log(log);
        let x = junit(&run, &[]);
        assert!(
            x.contains(r#"<testsuites name="lethe" tests="4" failures="1" skipped="2">"#),
            "{x}"
        );
        assert!(
            x.contains(r#"<testsuite name="x-1" tests="4" failures="1" skipped="2">"#),
            "{x}"
        );
        assert!(
            x.contains(r#"<testcase classname="x-1" name="ok_one"/>"#),
            "{x}"
        );
        assert!(
            x.contains(r#"<skipped message="needs &lt;root&gt; &amp; &quot;losetup&quot;"/>"#),
            "{x}"
        );
        assert!(x.contains("panicked: 1 &lt; 2 \u{fffd}"), "{x}");
        assert!(
            x.contains(r#"name="gated"><skipped message="ignored"/>"#),
            "{x}"
        );
    }
}
