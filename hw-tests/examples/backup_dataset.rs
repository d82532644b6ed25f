//! Deterministic dataset for the backup benchmark (hw-tests/bench/backup-bench.sh).
//!
//! `backup_dataset create DIR [MIB]`: about MIB MiB (default 2048): 60 % source-like
//! text in many small files, 40 % incompressible "media" files.
//! `backup_dataset mutate DIR`: the second generation: 5 % of the files
//! changed (text edited in place, media rewritten), 1 % added, 1 % deleted.
//! The same arguments always give the same bytes.

use std::io::Write;
use std::path::Path;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn fill(&mut self, buf: &mut [u8]) {
        for c in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
}

const WORDS: &[&str] = &[
    "fn", "let", "mut", "pub", "struct", "impl", "match", "return", "self", "Some", "None", "Ok",
    "Err", "patient", "record", "id", "name", "date", "buffer", "len", "offset", "device", "if",
    "else", "for", "in", "while", "loop", "true", "false", "u64", "u32", "String", "Vec", "&",
    "->", "=>", "{", "}", "(", ")", ";", "::", "0", "1", "42", "result", "error", "config",
];

fn text(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(n + 64);
    let mut indent = 0usize;
    while v.len() < n {
        v.extend(std::iter::repeat_n(b' ', indent * 4));
        let words = 3 + rng.below(10) as usize;
        for i in 0..words {
            if i > 0 {
                v.push(b' ');
            }
            v.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
            if rng.below(7) == 0 {
                // Identifiers and numbers make lines unique, as in real code.
                v.extend_from_slice(format!("_{}", rng.below(100_000)).as_bytes());
            }
        }
        v.push(b'\n');
        indent = match rng.below(4) {
            0 => indent.saturating_sub(1),
            1 => (indent + 1).min(6),
            _ => indent,
        };
    }
    v.truncate(n);
    v
}

fn write(path: &Path, data: &[u8]) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
    let mut f = std::fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    f.write_all(data)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn text_size(rng: &mut Rng) -> usize {
    // Log-uniform 1 KiB .. 256 KiB.
    let bits = 10 + rng.below(9);
    ((1u64 << bits) + rng.below(1 << bits)) as usize
}

fn create(dir: &Path, mib: u64) {
    let mut rng = Rng(0x1E7E);
    let total = mib << 20;
    let text_total = total * 6 / 10;
    let (mut t, mut i) = (0u64, 0u64);
    while t < text_total {
        let n = text_size(&mut rng);
        write(
            &dir.join(format!("src/d{:03}/f{:05}.rs", i % 300, i)),
            &text(&mut rng, n),
        );
        t += n as u64;
        i += 1;
    }
    let mut m = 0u64;
    let mut j = 0u64;
    while t + m < total {
        let n = ((1 + rng.below(32)) << 20) as usize;
        let mut buf = vec![0u8; n];
        rng.fill(&mut buf);
        write(&dir.join(format!("media/m{j:04}.bin")), &buf);
        m += n as u64;
        j += 1;
    }
    println!("created {i} text files ({t} bytes) and {j} media files ({m} bytes)");
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    v.sort();
    for p in v {
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn mutate(dir: &Path) {
    let mut rng = Rng(0x2E7E);
    let mut all = Vec::new();
    files(dir, &mut all);
    let n = all.len() as u64;
    let (mut changed, mut added, mut deleted) = (0, 0, 0);
    for p in &all {
        let r = rng.below(100);
        let is_media = p.extension().is_some_and(|e| e == "bin");
        if r < 5 {
            if is_media {
                let len = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) as usize;
                let mut buf = vec![0u8; len];
                rng.fill(&mut buf);
                write(p, &buf);
            } else {
                // Edit 10 % of the file somewhere in the middle.
                let mut d = std::fs::read(p).unwrap_or_default();
                let at = rng.below(d.len() as u64) as usize;
                let cut = (d.len() / 10).min(d.len() - at);
                let new = text(&mut rng, cut.max(64));
                d.splice(at..at + cut, new);
                write(p, &d);
            }
            changed += 1;
        } else if r < 6 {
            let _ = std::fs::remove_file(p);
            deleted += 1;
        }
    }
    for k in 0..(n / 100).max(1) {
        let size = text_size(&mut rng);
        write(
            &dir.join(format!("src/new/n{k:05}.rs")),
            &text(&mut rng, size),
        );
        added += 1;
    }
    println!("changed {changed}, added {added}, deleted {deleted} of {n} files");
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    match (a.get(1).map(String::as_str), a.get(2)) {
        (Some("create"), Some(d)) => create(
            Path::new(d),
            a.get(3).and_then(|s| s.parse().ok()).unwrap_or(2048),
        ),
        (Some("mutate"), Some(d)) => mutate(Path::new(d)),
        _ => {
            eprintln!("usage: backup_dataset create DIR [MIB] | mutate DIR");
            std::process::exit(2);
        }
    }
}
