//! `[[backup]]`: the backup engine's own job type (`lethe_backup::schedule::JobConfig`,
//! the format of the former schedule file) plus `max_age`, read entry by entry
//! so that errors keep their positions.

use crate::build::Ctx;
use crate::model::BackupJob;
use crate::raw::Dur;
use lethe_alert::Label;
use lethe_backup::schedule::{parse_interval, JobConfig};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

/// Keys of `[[backup]]` that belong to the daemon, not to the engine's job.
pub const DAEMON_KEYS: &[&str] = &["max_age"];

fn span_of(t: &DeTable<'_>, key: &str) -> Option<Range<usize>> {
    t.get(key).map(|v| v.span())
}

/// Read every `[[backup]]` entry of `doc`.
pub(crate) fn read(doc: &DeTable<'_>, ctx: &mut Ctx) -> Vec<BackupJob> {
    let Some(v) = doc.get("backup") else {
        return Vec::new();
    };
    let DeValue::Array(entries) = v.get_ref() else {
        ctx.error(
            v.span(),
            "`backup` must be an array of tables: write [[backup]] sections",
            None,
        );
        return Vec::new();
    };
    let mut jobs = Vec::new();
    let mut names: BTreeMap<String, Range<usize>> = BTreeMap::new();
    for entry in entries.iter() {
        let DeValue::Table(t) = entry.get_ref() else {
            ctx.error(entry.span(), "a `backup` entry must be a table", None);
            continue;
        };
        let mut t = t.clone();
        let max_age = t.remove("max_age").and_then(|v| {
            let span = v.span();
            match Dur::deserialize(ValueDeserializer::from(v)) {
                Ok(d) if d.0.is_zero() => {
                    ctx.error(span, "max_age must be longer than zero", None);
                    None
                }
                Ok(d) => Some(Spanned::new(span, d.0)),
                Err(e) => {
                    ctx.toml_error_at(&e, span, DAEMON_KEYS);
                    None
                }
            }
        });
        let (name_span, every_span) = (span_of(&t, "name"), span_of(&t, "every"));
        let drill_span = span_of(&t, "drill_every");
        let located = t.clone();
        let value = Spanned::new(entry.span(), DeValue::Table(t));
        let job = match JobConfig::deserialize(ValueDeserializer::from(value)) {
            Ok(j) => j,
            Err(e) => {
                // toml leaves an unknown key of a nested struct unplaced:
                // point at the key, else at the entry.
                let key = e
                    .message()
                    .strip_prefix("unknown field `")
                    .and_then(|r| r.split('`').next());
                let span = key
                    .and_then(|k| located.keys().find(|s| s.get_ref() == k))
                    .map_or(entry.span(), |k| k.span());
                ctx.toml_error_at(&e, span, DAEMON_KEYS);
                continue;
            }
        };
        let name_span = name_span.unwrap_or(entry.span());
        let name = match Label::new(job.name.clone()) {
            Ok(n) => n,
            Err(e) => {
                ctx.error(
                    name_span,
                    e.to_string(),
                    Some("backup job names appear in alerts, so they are short tokens".into()),
                );
                continue;
            }
        };
        if let Some(first) = names.get(name.as_str()) {
            let line = ctx.line_of(first.start);
            ctx.error(
                name_span,
                format!("backup job name `{name}` is used twice"),
                Some(format!("first used on line {line}")),
            );
        } else {
            names.insert(name.as_str().to_string(), name_span.clone());
        }
        let sources = usize::from(!job.paths.is_empty())
            + usize::from(job.device.is_some())
            + usize::from(job.stdin_command.is_some());
        if sources != 1 {
            ctx.error(
                entry.span(),
                format!(
                    "backup job `{name}` must give exactly one of paths, device or stdin_command"
                ),
                None,
            );
        }
        let every = match parse_interval(&job.every) {
            Ok(s) => Some(s),
            Err(e) => {
                ctx.error(
                    every_span.clone().unwrap_or(entry.span()),
                    e.to_string(),
                    None,
                );
                None
            }
        };
        if let Some(d) = &job.drill_every {
            if let Err(e) = parse_interval(d) {
                ctx.error(drill_span.unwrap_or(entry.span()), e.to_string(), None);
            }
        }
        if let (Some(every), Some(max)) = (every, &max_age) {
            if max.get_ref().as_secs() < every {
                ctx.warn(
                    max.span(),
                    format!(
                        "max_age is shorter than the interval ({}): job `{name}` will be reported too old before every run",
                        job.every
                    ),
                    None,
                );
            }
        }
        jobs.push(BackupJob {
            name,
            job,
            max_age: max_age.map(Spanned::into_inner),
        });
    }
    jobs
}
