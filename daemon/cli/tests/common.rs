//! Helpers shared by the CLI's loop-device tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `lethe` binary on `state`, with an operator of record (tests that
/// need none remove `LETHE_OPERATOR_ID`) and no site configuration (an empty
/// one: every default), whatever the machine has in /etc/lethe.
pub fn lethe(state: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lethe"));
    c.arg("--state-dir").arg(state);
    c.env_remove("LETHE_STATE_DIR");
    c.env("LETHE_OPERATOR_ID", "test-operator");
    c.env_remove("LETHE_OPERATOR_NAME");
    c.env_remove("SUDO_USER");
    c.env("LETHE_CONFIG", "/dev/null");
    c
}

/// The text of a PDF, as `pdftotext -layout` reads it (poppler-utils,
/// installed by hw-tests/setup.sh).
pub fn pdf_text(pdf: &Path) -> String {
    let out = Command::new("pdftotext")
        .arg("-layout")
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext (apt package poppler-utils, installed by hw-tests/setup.sh)");
    assert!(out.status.success(), "pdftotext {}", pdf.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Parse the last stdout line as the JSON job summary.
pub fn summary(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| {
        panic!(
            "last line is not JSON ({e}): {last:?}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The certificate document (inside the signed envelope).
pub fn cert_body(path: &str) -> serde_json::Value {
    let bytes = std::fs::read(path).expect("read certificate");
    let v: serde_json::Value = serde_json::from_slice(&bytes).expect("certificate is JSON");
    v["certificate"].clone()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Compare a file against the bytes a closure produces for each offset.
pub fn assert_file_matches(path: &Path, fill: impl Fn(&mut [u8], u64)) {
    use std::io::Read;
    let mut f = std::fs::File::open(path).unwrap();
    let mut got = vec![0u8; 1 << 20];
    let mut want = vec![0u8; 1 << 20];
    let mut off = 0u64;
    loop {
        let n = read_full(&mut f, &mut got);
        if n == 0 {
            break;
        }
        fill(&mut want[..n], off);
        if got[..n] != want[..n] {
            let i = got[..n]
                .iter()
                .zip(&want[..n])
                .position(|(a, b)| a != b)
                .unwrap();
            panic!("{} differs at byte {}", path.display(), off + i as u64);
        }
        off += n as u64;
    }
    fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> usize {
        let mut n = 0;
        while n < buf.len() {
            match f.read(&mut buf[n..]).unwrap() {
                0 => break,
                k => n += k,
            }
        }
        n
    }
}

/// The random-stream key a job stored (to regenerate what it wrote).
pub fn job_key(state: &Path, job: &str) -> [u8; 16] {
    let store = lethe_store::JobStore::open(state).unwrap();
    store
        .get(job)
        .unwrap()
        .secret
        .as_slice()
        .try_into()
        .unwrap()
}

/// A mount of a loop device's filesystem, unmounted on drop.
pub struct Mount {
    pub dir: tempfile::TempDir,
}

impl Mount {
    pub fn new(dev: &Path) -> Self {
        Self::with_options(dev, "rw")
    }

    /// Mount with `-o OPTIONS` (e.g. "ro,noload", which writes nothing at all).
    pub fn with_options(dev: &Path, options: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let st = Command::new("mount")
            .args(["-o", options])
            .arg(dev)
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "mount failed");
        Self { dir }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

pub fn mkfs_ext4(dev: &Path) {
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(dev)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mkfs.ext4: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn state_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("lethe-state-")
        .tempdir()
        .unwrap()
}

pub fn pub_key(state: &Path) -> PathBuf {
    state.join("keys/appliance.pub")
}

/// Deterministic pseudo-random bytes (an LCG), for test data.
pub fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 33) as u8
        })
        .collect()
}
