//! Reading a certificate file safely: regular files only, bounded size.
//!
//! `lethe cert verify` is pointed at files people receive by mail or on a
//! stick. A FIFO would block the verifier forever, a device node would read
//! a disk, and a huge file would fill memory: all are refused before
//! anything is read. The file is opened with `O_NONBLOCK` (so opening a FIFO
//! does not wait for a writer) and checked with `fstat` on the open file, so
//! a file swapped after a check cannot slip in.

use crate::sign::MAX_FILE_BYTES;
use crate::CertError;
use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Read a certificate file: at most [`MAX_FILE_BYTES`], regular files only.
pub fn read_certificate_file(path: &Path) -> Result<Vec<u8>, CertError> {
    let io = |what: &str| {
        let what = what.to_owned();
        let path = path.to_path_buf();
        move |source| CertError::Io { what, path, source }
    };
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(io("opening certificate"))?;
    let meta = file.metadata().map_err(io("inspecting certificate"))?;
    let ft = meta.file_type();
    let kind = if ft.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if ft.is_block_device() {
        Some("a block device")
    } else if ft.is_char_device() {
        Some("a character device")
    } else if ft.is_socket() {
        Some("a socket")
    } else if ft.is_dir() {
        Some("a directory")
    } else if !ft.is_file() {
        Some("not a regular file")
    } else {
        None
    };
    if let Some(kind) = kind {
        return Err(CertError::NotARegularFile {
            path: path.to_path_buf(),
            kind: kind.into(),
        });
    }
    if meta.len() > MAX_FILE_BYTES as u64 {
        return Err(CertError::TooLarge {
            path: path.to_path_buf(),
            len: meta.len(),
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow after fstat: never read more than the bound.
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io("reading certificate"))?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(CertError::TooLarge {
            path: path.to_path_buf(),
            len: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn refuses_fifos_devices_dirs_sockets_and_huge_files() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let fifo = tmp.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        for (p, want) in [
            (fifo.as_path(), "FIFO"),
            (Path::new("/dev/null"), "character device"),
            (tmp.path(), "directory"),
        ] {
            let e = read_certificate_file(p).map(|_| ()).unwrap_err();
            assert!(e.to_string().contains(want), "{e}");
        }
        let sock = tmp.path().join("s");
        let _l = UnixListener::bind(&sock).unwrap_or_else(|e| panic!("{e}"));
        assert!(read_certificate_file(&sock).is_err());
        let big = tmp.path().join("big.json");
        let f = std::fs::File::create(&big).unwrap_or_else(|e| panic!("{e}"));
        f.set_len(MAX_FILE_BYTES as u64 + 1)
            .unwrap_or_else(|e| panic!("{e}"));
        let e = read_certificate_file(&big).map(|_| ()).unwrap_err();
        assert!(matches!(e, CertError::TooLarge { .. }), "{e}");
        let ok = tmp.path().join("ok.json");
        std::fs::write(&ok, b"{}\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_certificate_file(&ok).ok(), Some(b"{}\n".to_vec()));
    }
}
