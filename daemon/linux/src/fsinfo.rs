//! Free space of a filesystem, for the job library's preflight: a state
//! directory that cannot hold a job's record and documents is found before
//! anything is written to a device.

use std::path::Path;

/// Bytes an unprivileged writer could still store on the filesystem holding
/// `path`, and whether it is mounted read-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsSpace {
    pub available: u64,
    pub read_only: bool,
}

/// `statvfs(path)`.
pub fn space(path: &Path) -> Result<FsSpace, std::io::Error> {
    let s = nix::sys::statvfs::statvfs(path).map_err(std::io::Error::from)?;
    Ok(FsSpace {
        available: (s.blocks_available() as u64).saturating_mul(s.fragment_size() as u64),
        read_only: s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_dir_has_space_and_is_writable() {
        let d = tempfile::tempdir().unwrap();
        let s = space(d.path()).unwrap();
        assert!(s.available > 0);
        assert!(!s.read_only);
        assert!(space(Path::new("/nonexistent/lethe")).is_err());
    }
}
