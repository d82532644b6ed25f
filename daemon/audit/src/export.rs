//! Export for auditors: CSV, a JSON array, or JSON Lines, streamed.
//!
//! Every record carries `index`, `time`, `user_id`, `source`, `action`,
//! `entity`, `record_id`, `outcome`, `tags` (JSON object), `detail` (JSON
//! object) and `leaf_hash` (hex), taken from the decoded leaf, never from
//! the index columns: the store's filter narrows the scan, and each decoded
//! entry is filtered again, so what is printed is exactly what is signed.
//! A row whose leaf does not decode stops the export with an error (run
//! `lethe audit verify`).
//!
//! CSV follows RFC 4180 (comma, CRLF line ends, fields with `,` `"` CR or LF
//! quoted with `"` doubled) with a header row. No field can begin with `=`,
//! `+`, `-` or `@` (names and tokens start with a letter or digit, JSON with
//! `{`), so a spreadsheet will not read a cell as a formula.

use crate::entry::{AuditTime, Entry};
use crate::leaf::{decode_leaf, LeafError};
use crate::store::{AuditStore, EntryFilter, StoreError};
use lethe_cert::canonical::to_canonical;
use serde_json::{json, Map, Value};
use std::io::Write;
use std::ops::ControlFlow;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// RFC 4180 CSV with a header row.
    Csv,
    /// One JSON array of objects.
    Json,
    /// One JSON object per line.
    JsonLines,
}

/// Which entries to export. `since <= time < until`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportFilter {
    /// Earliest time, inclusive.
    pub since: Option<AuditTime>,
    /// Latest time, exclusive.
    pub until: Option<AuditTime>,
    /// Only this user id.
    pub user_id: Option<String>,
    /// Only these actions (by name).
    pub actions: Vec<String>,
}

impl ExportFilter {
    fn store_filter(&self) -> EntryFilter {
        EntryFilter {
            since: self.since.map(|t| t.unix()),
            until: self.until.map(|t| t.unix()),
            user_id: self.user_id.clone(),
            actions: self.actions.clone(),
        }
    }
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the output failed.
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
    /// A stored entry does not decode.
    #[error("entry {index} is not a valid audit entry ({source}); run `lethe audit verify`")]
    Corrupt {
        /// Its index.
        index: u64,
        /// The decoding error.
        source: LeafError,
    },
}

const COLUMNS: [&str; 11] = [
    "index",
    "time",
    "user_id",
    "source",
    "action",
    "entity",
    "record_id",
    "outcome",
    "tags",
    "detail",
    "leaf_hash",
];

/// Stream the entries passing `filter` to `out`; returns how many.
pub fn export(
    store: &dyn AuditStore,
    filter: &ExportFilter,
    format: ExportFormat,
    out: &mut dyn Write,
) -> Result<u64, ExportError> {
    let mut count = 0u64;
    let mut failure: Option<ExportError> = None;
    match format {
        ExportFormat::Csv => {
            let header: Vec<String> = COLUMNS.iter().map(|c| (*c).to_owned()).collect();
            write_csv_row(out, &header)?;
        }
        ExportFormat::Json => out.write_all(b"[")?,
        ExportFormat::JsonLines => {}
    }
    store.scan_entries(&filter.store_filter(), &mut |row| {
        let result = (|| -> Result<bool, ExportError> {
            let (_, entry) = decode_leaf(&row.leaf).map_err(|source| ExportError::Corrupt {
                index: row.index,
                source,
            })?;
            if !passes(filter, &entry) {
                return Ok(false);
            }
            let hash = hex(&crate::merkle::leaf_hash(&row.leaf));
            match format {
                ExportFormat::Csv => write_csv_row(out, &csv_fields(row.index, &entry, hash))?,
                ExportFormat::Json => {
                    out.write_all(if count == 0 { b"\n" } else { b",\n" })?;
                    serde_json::to_writer(&mut *out, &json_record(row.index, &entry, hash))
                        .map_err(std::io::Error::from)?;
                }
                ExportFormat::JsonLines => {
                    serde_json::to_writer(&mut *out, &json_record(row.index, &entry, hash))
                        .map_err(std::io::Error::from)?;
                    out.write_all(b"\n")?;
                }
            }
            Ok(true)
        })();
        match result {
            Ok(written) => {
                count += u64::from(written);
                ControlFlow::Continue(())
            }
            Err(e) => {
                failure = Some(e);
                ControlFlow::Break(())
            }
        }
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    if format == ExportFormat::Json {
        out.write_all(if count == 0 { b"]\n" } else { b"\n]\n" })?;
    }
    out.flush()?;
    Ok(count)
}

fn passes(f: &ExportFilter, e: &Entry) -> bool {
    f.since.is_none_or(|s| e.time >= s)
        && f.until.is_none_or(|u| e.time < u)
        && f.user_id.as_deref().is_none_or(|u| u == e.user_id.as_str())
        && (f.actions.is_empty() || f.actions.iter().any(|a| a == e.action.as_str()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn tags_json(e: &Entry) -> Map<String, Value> {
    e.tags
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), Value::String(v.as_str().to_owned())))
        .collect()
}

fn json_record(index: u64, e: &Entry, leaf_hash: String) -> Value {
    json!({
        "index": index,
        "time": e.time.to_string(),
        "user_id": e.user_id.as_str(),
        "source": e.source.as_str(),
        "action": e.action.as_str(),
        "entity": e.entity.as_str(),
        "record_id": e.record_id.as_str(),
        "outcome": e.outcome.as_str(),
        "tags": Value::Object(tags_json(e)),
        "detail": Value::Object(e.detail.as_json().clone()),
        "leaf_hash": leaf_hash,
    })
}

fn canonical_text(map: Map<String, Value>) -> String {
    // Decoded details hold integers only, so this cannot fail.
    String::from_utf8(to_canonical(&Value::Object(map)).unwrap_or_default()).unwrap_or_default()
}

fn csv_fields(index: u64, e: &Entry, leaf_hash: String) -> Vec<String> {
    vec![
        index.to_string(),
        e.time.to_string(),
        e.user_id.as_str().to_owned(),
        e.source.as_str().to_owned(),
        e.action.as_str().to_owned(),
        e.entity.as_str().to_owned(),
        e.record_id.as_str().to_owned(),
        e.outcome.as_str().to_owned(),
        canonical_text(tags_json(e)),
        canonical_text(e.detail.as_json().clone()),
        leaf_hash,
    ]
}

fn write_csv_row(out: &mut dyn Write, fields: &[String]) -> std::io::Result<()> {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        if f.contains([',', '"', '\r', '\n']) {
            out.write_all(b"\"")?;
            out.write_all(f.replace('"', "\"\"").as_bytes())?;
            out.write_all(b"\"")?;
        } else {
            out.write_all(f.as_bytes())?;
        }
    }
    out.write_all(b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_what_needs_quoting() {
        let mut out = Vec::new();
        write_csv_row(
            &mut out,
            &["a".into(), "b,c".into(), "{\"k\":1}".into(), "x\ny".into()],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a,\"b,c\",\"{\"\"k\"\":1}\",\"x\ny\"\r\n"
        );
    }
}
