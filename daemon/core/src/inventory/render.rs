//! The `lethe drives` table.

use super::{Drive, ProtectReason};

/// Bytes in binary units for tables: `256.0 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The `lethe drives` table.
pub fn render_table(drives: &[Drive]) -> String {
    let header = [
        "PATH",
        "TRANSPORT",
        "MODEL",
        "SERIAL",
        "SIZE",
        "ROT",
        "RM",
        "PARTS/FS",
        "PROTECTED",
    ];
    let yn = |b: Option<bool>| match b {
        Some(true) => "yes",
        Some(false) => "no",
        None => "-",
    };
    let rows: Vec<[String; 9]> = drives
        .iter()
        .map(|d| {
            let mut fs: Vec<String> = d.signatures.clone();
            for p in &d.partitions {
                fs.push(format!(
                    "{}:{}",
                    p.number,
                    p.fs_type.as_deref().unwrap_or("-")
                ));
            }
            let parts = match (&d.partition_table, fs.is_empty()) {
                (Some(pt), _) => format!("{pt} {}", fs.join(",")),
                (None, true) => "-".into(),
                (None, false) => fs.join(","),
            };
            let mut why: Vec<&str> = d.reasons.iter().map(ProtectReason::short).collect();
            why.dedup();
            [
                d.path.clone(),
                d.transport.to_string(),
                d.model.clone().unwrap_or_else(|| "-".into()),
                d.serial.clone().unwrap_or_else(|| "-".into()),
                human_size(d.size_bytes),
                yn(d.rotational).into(),
                yn(d.removable).into(),
                parts.trim().to_string(),
                if d.protected {
                    format!("YES ({})", why.join(","))
                } else {
                    "no".into()
                },
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(&header.map(String::from));
    for r in &rows {
        line(r);
    }
    out
}
