//! `docs/configuration.md` and the code cannot drift: every TOML example in
//! it is checked, and the keys its tables list are exactly the keys serde
//! accepts for each section.

use crate::raw::*;
use serde::de::{self, Deserialize, Deserializer, Visitor};
use std::collections::{BTreeMap, BTreeSet};

const DOC: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/configuration.md"
));

/// The field names a derived `Deserialize` asks for: a deserializer that
/// records them from `deserialize_struct` and stops.
fn fields_of<'de, T: Deserialize<'de>>() -> Vec<&'static str> {
    struct Probe<'a>(&'a mut Vec<&'static str>);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("stop")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Stop
        }
    }
    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0.extend_from_slice(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut out = Vec::new();
    let _ = T::deserialize(Probe(&mut out));
    assert!(
        !out.is_empty(),
        "{} is not a struct",
        std::any::type_name::<T>()
    );
    out
}

/// Section path (`alerts.smtp`) → keys listed in its table.
fn documented_sections() -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in DOC.lines() {
        if line.starts_with('#') {
            current = line
                .split('`')
                .nth(1)
                .filter(|s| s.starts_with('['))
                .map(|s| s.trim_matches(|c| c == '[' || c == ']').to_string());
            if let Some(c) = &current {
                out.entry(c.clone()).or_default();
            }
        } else if let (Some(c), Some(rest)) = (&current, line.strip_prefix("| `")) {
            let key = rest.split('`').next().unwrap_or_default();
            out.get_mut(c).unwrap().insert(key.to_string());
        }
    }
    out
}

#[test]
fn every_key_is_documented_and_every_documented_key_exists() {
    let doc = documented_sections();
    let code: Vec<(&str, Vec<&str>)> = vec![
        ("", fields_of::<RawConfig>()),
        ("server", fields_of::<RawServer>()),
        ("bay", fields_of::<RawBay>()),
        ("session", fields_of::<RawSession>()),
        ("auth", fields_of::<RawAuth>()),
        ("auth.argon2", fields_of::<RawArgon2>()),
        ("auth.password", fields_of::<RawPassword>()),
        ("tls", fields_of::<RawTls>()),
        ("controller", fields_of::<RawController>()),
        ("backup", {
            let mut f = fields_of::<lethe_backup::schedule::JobConfig>();
            f.extend_from_slice(crate::backup::DAEMON_KEYS);
            f
        }),
        ("alerts", fields_of::<RawAlerts>()),
        ("alerts.webhook", fields_of::<RawWebhook>()),
        ("alerts.smtp", fields_of::<RawSmtp>()),
        ("audit", fields_of::<RawAudit>()),
        ("audit.push", fields_of::<RawPush>()),
        ("breakglass", fields_of::<RawBreakglass>()),
        ("site", fields_of::<RawSite>()),
    ];
    for (section, fields) in &code {
        // A key holding a sub-table is documented by that sub-table's heading
        // (`[auth.argon2]` documents `argon2` of `[auth]`, which has no table).
        let prefix = if section.is_empty() {
            String::new()
        } else {
            format!("{section}.")
        };
        let mut documented: BTreeSet<String> = doc.get(*section).cloned().unwrap_or_default();
        for s in doc.keys() {
            if let Some(rest) = s.strip_prefix(&prefix) {
                documented.insert(rest.split('.').next().unwrap_or_default().to_string());
            }
        }
        documented.remove("");
        let real: BTreeSet<String> = fields.iter().map(|f| f.to_string()).collect();
        assert_eq!(
            documented, real,
            "section [{section}] in docs/configuration.md"
        );
    }
    let covered: BTreeSet<&str> = code.iter().map(|(s, _)| *s).collect();
    for s in doc.keys() {
        assert!(
            covered.contains(s.as_str()),
            "documented section [{s}] is not checked here"
        );
    }
}

#[test]
fn every_example_in_the_doc_is_accepted() {
    let blocks: Vec<&str> = DOC
        .split("```toml\n")
        .skip(1)
        .map(|b| &b[..b.find("```").unwrap()])
        .collect();
    assert!(blocks.len() >= 2);
    for b in &blocks {
        let l = crate::parse(b).unwrap_or_else(|e| panic!("{e}\n\nin:\n{b}"));
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    }
    // The complete example sets every section.
    let c = crate::parse(blocks[0]).unwrap().config;
    assert_eq!(c.bays.len(), 3);
    assert!(c.tls.is_some() && c.controller.is_some() && c.audit.push.is_some());
    assert_eq!(c.backups[0].name.as_str(), "records");
    assert_eq!(c.alerts.webhooks.len(), 1);
    assert!(c.alerts.smtp.is_some());
    assert_eq!(c.breakglass.approvers.len(), 2);
    assert_eq!(c.site.operator.as_ref().unwrap().id, "tech-07");

    // The error shown in the doc is the one the checker gives.
    let shown = DOC.split("```text\n").nth(1).unwrap();
    let shown: Vec<&str> = shown[..shown.find("```").unwrap()]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let bad = "[[bay]]\nname = \"b\"\nmatch = [\"transport:usb\"]\npolicy = \"ask\"\n\n\nlevle = \"purge\"\n";
    let crate::ConfigError::Invalid { diagnostics, .. } = crate::parse(bad).unwrap_err() else {
        panic!()
    };
    let got = diagnostics[0].render(Some(std::path::Path::new("/etc/lethe/lethe.toml")));
    let got: Vec<&str> = got.lines().map(str::trim).collect();
    assert_eq!(got, shown);
}
