//! The guest's initramfs: a newc cpio archive built in memory, the shared
//! libraries of a host binary, and kernel modules with their dependencies.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A newc cpio archive built in memory (what the kernel unpacks as initramfs).
#[derive(Default)]
pub struct Cpio {
    buf: Vec<u8>,
    ino: u32,
    dirs: BTreeSet<String>,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.ino += 1;
        let hdr = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        );
        self.buf.extend_from_slice(hdr.as_bytes());
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(0);
        self.pad4();
        self.buf.extend_from_slice(data);
        self.pad4();
    }

    /// newc aligns headers and data to 4 bytes.
    fn pad4(&mut self) {
        let n = (4 - self.buf.len() % 4) % 4;
        self.buf.resize(self.buf.len() + n, 0);
    }

    fn parents(&mut self, path: &str) {
        let mut acc = String::new();
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        for p in &parts[..parts.len().saturating_sub(1)] {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(p);
            if self.dirs.insert(acc.clone()) {
                let a = acc.clone();
                self.entry(&a, 0o040755, &[]);
            }
        }
    }

    /// Add a file at absolute guest path `path`.
    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) {
        self.parents(path);
        self.entry(path.trim_start_matches('/'), 0o100000 | mode, data);
    }

    /// Add a directory.
    pub fn dir(&mut self, path: &str) {
        self.parents(&format!("{path}/x"));
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        self.buf
    }
}

/// Shared libraries of `exe` (and the ELF interpreter) as `ldd` lists them.
/// Empty for a static binary.
pub fn shared_libs(exe: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(exe).output().map(|o| o.stdout);
    let text = String::from_utf8_lossy(&out.unwrap_or_default()).into_owned();
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let p = match l.split_once("=>") {
                Some((_, r)) => r.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            p.starts_with('/').then(|| PathBuf::from(p))
        })
        .collect()
}

/// `depends=` of a module, read from its `.modinfo` strings.
fn depends(ko: &[u8]) -> Vec<String> {
    let key = b"depends=";
    ko.windows(key.len())
        .position(|w| w == key)
        .map(|i| {
            let rest = &ko[i + key.len()..];
            let end = rest.iter().position(|&b| b == 0).unwrap_or(0);
            String::from_utf8_lossy(&rest[..end])
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| s.replace('-', "_"))
                .collect()
        })
        .unwrap_or_default()
}

/// Every `.ko` below `dir`, by normalized module name.
fn index(dir: &Path, map: &mut BTreeMap<String, PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            index(&p, map);
        } else if let Some(stem) = p
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".ko"))
        {
            map.insert(stem.replace('-', "_"), p.clone());
        }
    }
}

/// Modules to insmod, dependencies first; `Err` names the first one missing.
pub fn module_closure(modroot: &Path, wanted: &[&str]) -> Result<Vec<PathBuf>, String> {
    fn visit(
        m: &str,
        map: &BTreeMap<String, PathBuf>,
        seen: &mut BTreeSet<String>,
        order: &mut Vec<PathBuf>,
    ) -> Result<(), String> {
        if !seen.insert(m.to_string()) {
            return Ok(());
        }
        let p = map.get(m).ok_or_else(|| format!("no module {m}"))?;
        let bytes = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
        for d in depends(&bytes) {
            visit(&d, map, seen, order)?;
        }
        order.push(p.clone());
        Ok(())
    }
    let mut map = BTreeMap::new();
    index(modroot, &mut map);
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    for w in wanted {
        visit(&w.replace('-', "_"), &map, &mut seen, &mut order)?;
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpio_has_parents_and_trailer() {
        let mut c = Cpio::default();
        c.file("/a/b/c", 0o755, b"hi");
        let out = c.finish();
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("070701"));
        assert!(text.contains("a\0"), "parent dir entry");
        assert!(text.contains("a/b\0"));
        assert!(text.contains("a/b/c\0"));
        assert!(text.contains("TRAILER!!!"));
        assert_eq!(out.len() % 4, 0);
    }

    #[test]
    fn module_closure_reports_the_missing_module() {
        let d = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(d.path().join("a.ko"), b"xx\0depends=b-c\0")
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(d.path().join("b-c.ko"), b"\0depends=\0").unwrap_or_else(|e| panic!("{e}"));
        let order = module_closure(d.path(), &["a"]).unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<_> = order
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        assert_eq!(names, vec!["b-c.ko", "a.ko"]);
        assert_eq!(
            module_closure(d.path(), &["zz"]),
            Err("no module zz".to_string())
        );
    }
}
