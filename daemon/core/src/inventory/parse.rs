//! Parsers for the text files discovery reads: the udev database,
//! /proc/self/mountinfo and /proc/swaps. They never panic on any input.

use super::{DevNum, MountEntry};
use std::collections::BTreeMap;

/// Parse a udev database file (`/run/udev/data/bMAJ:MIN`): `E:KEY=VALUE`
/// properties and `S:link` symlinks; other lines are ignored.
pub fn parse_udev_db(text: &str) -> (BTreeMap<String, String>, Vec<String>) {
    let mut props = BTreeMap::new();
    let mut links = Vec::new();
    for line in text.lines() {
        if let Some(kv) = line.strip_prefix("E:") {
            if let Some((k, v)) = kv.split_once('=') {
                props.insert(k.to_string(), v.to_string());
            }
        } else if let Some(l) = line.strip_prefix("S:") {
            if !l.is_empty() {
                links.push(l.to_string());
            }
        }
    }
    (props, links)
}

/// Undo mountinfo's octal escapes (`\040` for space, `\011`, `\012`, `\134`).
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = (oct[0] - b'0') as u32 * 64
                    + (oct[1] - b'0') as u32 * 8
                    + (oct[2] - b'0') as u32;
                if let Ok(byte) = u8::try_from(v) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse /proc/self/mountinfo. Lines that do not parse are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let devnum = DevNum::parse(fields.get(2)?)?;
            let mountpoint = unescape_octal(fields.get(4)?);
            // Optional fields end at "-"; fs type and source follow it.
            let dash = fields.iter().position(|f| *f == "-")?;
            let fs_type = fields.get(dash + 1)?.to_string();
            let source = unescape_octal(fields.get(dash + 2).copied().unwrap_or(""));
            Some(MountEntry {
                devnum,
                mountpoint,
                fs_type,
                source,
            })
        })
        .collect()
}

/// Parse /proc/swaps into the swap areas' paths (header skipped).
pub fn parse_swaps(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(unescape_octal)
        .collect()
}
