//! The sources the tags and documents are read from: the work tree, or a
//! git revision (for the changes since a previous version).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Folders whose Rust files may carry tags (both workspaces).
pub const TAGGED_ROOTS: [&str; 3] = ["daemon", "hw-tests", "firmware"];

/// Where sources are read from.
pub enum Source {
    /// The files on disk under this repository root.
    WorkTree(PathBuf),
    /// A git revision of the repository at this root.
    Git { root: PathBuf, rev: String },
}

fn skip_dir(name: &str) -> bool {
    matches!(name, "target" | "fuzz" | ".git") || name.starts_with('.')
}

fn walk(root: &Path, rel: &str, out: &mut Vec<String>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(root.join(rel))?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = format!("{rel}/{name}");
        let ft = e.file_type()?;
        if ft.is_dir() && !skip_dir(&name) {
            walk(root, &path, out)?;
        } else if ft.is_file() && name.ends_with(".rs") {
            out.push(path);
        }
    }
    Ok(())
}

impl Source {
    /// Every Rust file under [`TAGGED_ROOTS`] with its text, sorted by path.
    pub fn rust_files(&self) -> Result<Vec<(String, String)>, String> {
        match self {
            Source::WorkTree(root) => {
                let mut files = Vec::new();
                for r in TAGGED_ROOTS {
                    if root.join(r).is_dir() {
                        walk(root, r, &mut files).map_err(|e| format!("{r}: {e}"))?;
                    }
                }
                files
                    .into_iter()
                    .map(|f| {
                        std::fs::read_to_string(root.join(&f))
                            .map(|t| (f.clone(), t))
                            .map_err(|e| format!("{f}: {e}"))
                    })
                    .collect()
            }
            Source::Git { root, rev } => {
                let list = git(root, &["ls-tree", "-r", "--name-only", rev, "--"])?;
                let files: Vec<String> = String::from_utf8_lossy(&list)
                    .lines()
                    .filter(|f| {
                        f.ends_with(".rs")
                            && TAGGED_ROOTS.iter().any(|r| f.starts_with(&format!("{r}/")))
                            && !f.split('/').any(skip_dir)
                    })
                    .map(str::to_owned)
                    .collect();
                let texts = cat_files(root, rev, &files)?;
                Ok(files.into_iter().zip(texts).collect())
            }
        }
    }

    /// One file's text (`None` when it does not exist there).
    pub fn read(&self, path: &str) -> Result<Option<String>, String> {
        match self {
            Source::WorkTree(root) => match std::fs::read_to_string(root.join(path)) {
                Ok(t) => Ok(Some(t)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!("{path}: {e}")),
            },
            Source::Git { root, rev } => {
                let out = Command::new("git")
                    .arg("-C")
                    .arg(root)
                    .args(["show", &format!("{rev}:{path}")])
                    .output()
                    .map_err(|e| format!("git: {e}"))?;
                Ok(out
                    .status
                    .success()
                    .then(|| String::from_utf8_lossy(&out.stdout).into_owned()))
            }
        }
    }
}

fn git(root: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .map_err(|e| format!("git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out.stdout)
}

/// Read many blobs with one `git cat-file --batch`.
fn cat_files(root: &Path, rev: &str, files: &[String]) -> Result<Vec<String>, String> {
    let mut child = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("git cat-file: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("git cat-file: no stdin")?;
    let requests: String = files.iter().map(|f| format!("{rev}:{f}\n")).collect();
    let writer = std::thread::spawn(move || stdin.write_all(requests.as_bytes()));
    let mut out = BufReader::new(child.stdout.take().ok_or("git cat-file: no stdout")?);
    let mut texts = Vec::with_capacity(files.len());
    for f in files {
        let mut header = String::new();
        out.read_line(&mut header).map_err(|e| e.to_string())?;
        let size: usize = header
            .split_whitespace()
            .nth(2)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("git cat-file: no blob for {f}: {}", header.trim()))?;
        let mut body = vec![0u8; size + 1];
        out.read_exact(&mut body).map_err(|e| e.to_string())?;
        body.pop();
        texts.push(String::from_utf8_lossy(&body).into_owned());
    }
    writer
        .join()
        .map_err(|_| "git cat-file writer panicked")?
        .map_err(|e| e.to_string())?;
    let _ = child.wait();
    Ok(texts)
}
