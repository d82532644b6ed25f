//! Exclusive, direct-I/O access to a block device.
//!
//! `O_EXCL` on a block device makes the kernel refuse the open while anything
//! else holds it exclusively (a mounted filesystem, md, dm, swap), and keeps
//! them from claiming it while we write. `O_DIRECT` bypasses the page cache so
//! that what we read back during verification comes from the device, not from
//! memory, and so wiping a large drive does not evict the whole cache.

use lethe_core::device::{BlockDevice, Geometry, IoFault};
use lethe_core::inventory::{DevNum, FileId, LoopBacking};
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Why a device could not be opened for wiping.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{path}: not a block device")]
    NotBlockDevice { path: PathBuf },
    #[error("{path} is in use (mounted, swap, or held by md/dm/LVM); nothing was written")]
    Busy { path: PathBuf },
    #[error("{path}: permission denied (run as root)")]
    Permission { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {what} ioctl failed: {source}")]
    Ioctl {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("{path}: unusable geometry (size {size}, logical sector {logical})")]
    Geometry {
        path: PathBuf,
        size: u64,
        logical: u32,
    },
}

// ioctl numbers from <linux/fs.h>:
//   #define BLKSSZGET  _IO(0x12,104)
//   #define BLKPBSZGET _IO(0x12,123)
//   #define BLKGETSIZE64 _IOR(0x12,114,size_t)
// BLKSSZGET and BLKPBSZGET are declared with _IO but write an int (and an
// unsigned int) through the pointer argument, hence the `_bad` variants.
nix::ioctl_read_bad!(blk_ssz_get, nix::request_code_none!(0x12, 104), libc::c_int);
nix::ioctl_read_bad!(
    blk_pbsz_get,
    nix::request_code_none!(0x12, 123),
    libc::c_uint
);
nix::ioctl_read!(blk_get_size64, 0x12, 114, u64);

/// Read size and sector sizes of an open block device.
pub fn geometry_of(file: &File, path: &Path) -> Result<Geometry, OpenError> {
    let fd = file.as_raw_fd();
    let ioctl_err = |what, source| OpenError::Ioctl {
        path: path.to_path_buf(),
        what,
        source,
    };
    let mut size: u64 = 0;
    // SAFETY: `fd` is an open block device owned by `file` for the duration of
    // the call, and BLKGETSIZE64 writes exactly one u64 into `size`.
    unsafe { blk_get_size64(fd, &mut size) }.map_err(|e| ioctl_err("BLKGETSIZE64", e))?;
    let mut logical: libc::c_int = 0;
    // SAFETY: as above; BLKSSZGET writes one int.
    unsafe { blk_ssz_get(fd, &mut logical) }.map_err(|e| ioctl_err("BLKSSZGET", e))?;
    let mut physical: libc::c_uint = 0;
    // SAFETY: as above; BLKPBSZGET writes one unsigned int.
    unsafe { blk_pbsz_get(fd, &mut physical) }.map_err(|e| ioctl_err("BLKPBSZGET", e))?;
    let logical = u32::try_from(logical).unwrap_or(0);
    if logical == 0
        || !logical.is_power_of_two()
        || logical > 65536
        || size % u64::from(logical) != 0
    {
        return Err(OpenError::Geometry {
            path: path.to_path_buf(),
            size,
            logical,
        });
    }
    Ok(Geometry {
        size_bytes: size,
        logical_sector: logical,
        physical_sector: physical.max(logical),
    })
}

/// A whole block device opened `O_RDWR | O_DIRECT | O_EXCL`.
#[derive(Debug)]
pub struct DirectDevice {
    file: File,
    path: PathBuf,
    geo: Geometry,
}

impl DirectDevice {
    /// Open `path` for wiping. Fails with [`OpenError::Busy`] when the kernel
    /// reports the device in use, before a single byte is written.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        Self::open_with(path, true)
    }

    /// Open read-only (still exclusive and direct), e.g. for verification-only runs.
    pub fn open_read_only(path: &Path) -> Result<Self, OpenError> {
        Self::open_with(path, false)
    }

    fn open_with(path: &Path, write: bool) -> Result<Self, OpenError> {
        let meta = std::fs::metadata(path).map_err(|source| OpenError::Io {
            path: path.into(),
            source,
        })?;
        if !meta.file_type().is_block_device() {
            return Err(OpenError::NotBlockDevice { path: path.into() });
        }
        let file = OpenOptions::new()
            .read(true)
            .write(write)
            .custom_flags(libc::O_DIRECT | libc::O_EXCL | libc::O_CLOEXEC)
            .open(path)
            .map_err(|source| match source.raw_os_error() {
                Some(libc::EBUSY) => OpenError::Busy { path: path.into() },
                Some(libc::EACCES) | Some(libc::EPERM) => {
                    OpenError::Permission { path: path.into() }
                }
                _ => OpenError::Io {
                    path: path.into(),
                    source,
                },
            })?;
        let geo = geometry_of(&file, path)?;
        Ok(Self {
            file,
            path: path.into(),
            geo,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open descriptor (for `fstat` and read-only ioctls).
    pub fn file(&self) -> &File {
        &self.file
    }
}

fn fault(e: std::io::Error, what: &str, len: usize, offset: u64) -> IoFault {
    IoFault::from_errno(
        e.raw_os_error().unwrap_or(libc::EIO),
        format!("{what} of {len} bytes at offset {offset}: {e}"),
    )
}

impl BlockDevice for DirectDevice {
    fn geometry(&self) -> Geometry {
        self.geo
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> Result<(), IoFault> {
        // write_all_at retries short writes; an error carries the errno.
        self.file
            .write_all_at(buf, offset)
            .map_err(|e| fault(e, "write", buf.len(), offset))
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<(), IoFault> {
        self.file.read_exact_at(buf, offset).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                // The device shrank under us: treat it as gone.
                IoFault::from_errno(libc::ENXIO, format!("read at {offset}: device ended early"))
            } else {
                fault(e, "read", buf.len(), offset)
            }
        })
    }

    fn flush(&self) -> Result<(), IoFault> {
        // On a block device fdatasync also sends a cache flush to the drive.
        self.file
            .sync_data()
            .map_err(|e| fault(e, "fdatasync", 0, 0))
    }
}

/// `struct loop_info64` from `<linux/loop.h>`.
#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}
const _: () = assert!(std::mem::size_of::<LoopInfo64>() == 232);
const _: () = assert!(std::mem::align_of::<LoopInfo64>() == 8);

// #define LOOP_GET_STATUS64 0x4C05 (a bare number, no _IOR encoding).
nix::ioctl_read_bad!(loop_get_status64, 0x4C05, LoopInfo64);

/// What a bound loop device's backing file is, from `LOOP_GET_STATUS64`
/// (the kernel stats the file it holds, so a renamed or replaced path
/// cannot fool it). `Ok(None)` for a loop device that is not bound.
pub fn loop_backing(file: &File) -> Result<Option<LoopBacking>, nix::Error> {
    // SAFETY: all-zero bytes are a valid LoopInfo64 (integers and byte arrays).
    let mut info: LoopInfo64 = unsafe { std::mem::zeroed() };
    // SAFETY: `file` is an open loop device for the duration of the call, and
    // LOOP_GET_STATUS64 writes exactly one `struct loop_info64` (232 bytes,
    // asserted above) into `info`.
    match unsafe { loop_get_status64(file.as_raw_fd(), &mut info) } {
        Ok(_) => {}
        Err(nix::Error::ENXIO) => return Ok(None),
        Err(e) => return Err(e),
    }
    let devnum = |d: u64| DevNum {
        major: nix::sys::stat::major(d) as u32,
        minor: nix::sys::stat::minor(d) as u32,
    };
    Ok(Some(LoopBacking {
        file: FileId {
            dev: devnum(info.lo_device),
            ino: info.lo_inode,
        },
        block: (info.lo_rdevice != 0).then(|| devnum(info.lo_rdevice)),
    }))
}

/// [`loop_backing`] of the loop device node at `path`, opened read-only
/// without claiming it (nothing is written, nobody is locked out).
pub fn loop_backing_of(path: &Path) -> Result<Option<LoopBacking>, std::io::Error> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)?;
    loop_backing(&f).map_err(std::io::Error::from)
}
