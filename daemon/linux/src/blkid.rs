//! Read-only probing with libblkid: partition table, partitions, and the
//! filesystem/RAID/LVM signature of a device.
//!
//! Only the handful of libblkid calls we need are declared here (from
//! `<blkid/blkid.h>`, util-linux 2.38). The probe is opened read-only by
//! libblkid itself (`blkid_new_probe_from_filename` uses `O_RDONLY`), so
//! probing can never write. All raw pointers stay inside [`Probe`].

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::Path;

type BlkidProbe = *mut c_void;
type BlkidPartlist = *mut c_void;
type BlkidPartition = *mut c_void;
type BlkidLoff = i64;

// Flags from <blkid/blkid.h>.
const BLKID_SUBLKS_LABEL: c_int = 1 << 1;
const BLKID_SUBLKS_UUID: c_int = 1 << 3;
const BLKID_SUBLKS_TYPE: c_int = 1 << 5;

#[link(name = "blkid")]
extern "C" {
    fn blkid_new_probe_from_filename(filename: *const c_char) -> BlkidProbe;
    fn blkid_free_probe(pr: BlkidProbe);
    fn blkid_probe_enable_partitions(pr: BlkidProbe, enable: c_int) -> c_int;
    fn blkid_probe_enable_superblocks(pr: BlkidProbe, enable: c_int) -> c_int;
    fn blkid_probe_set_superblocks_flags(pr: BlkidProbe, flags: c_int) -> c_int;
    fn blkid_do_safeprobe(pr: BlkidProbe) -> c_int;
    fn blkid_probe_lookup_value(
        pr: BlkidProbe,
        name: *const c_char,
        data: *mut *const c_char,
        len: *mut usize,
    ) -> c_int;
    fn blkid_probe_get_partitions(pr: BlkidProbe) -> BlkidPartlist;
    fn blkid_partlist_numof_partitions(ls: BlkidPartlist) -> c_int;
    fn blkid_partlist_get_partition(ls: BlkidPartlist, n: c_int) -> BlkidPartition;
    fn blkid_partition_get_partno(par: BlkidPartition) -> c_int;
    fn blkid_partition_get_size(par: BlkidPartition) -> BlkidLoff;
    fn blkid_partition_get_start(par: BlkidPartition) -> BlkidLoff;
    fn blkid_partition_get_type(par: BlkidPartition) -> c_int;
    fn blkid_partition_get_type_string(par: BlkidPartition) -> *const c_char;
}

/// What libblkid found on a device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeResult {
    /// Partition table type (`gpt`, `dos`…).
    pub partition_table: Option<String>,
    /// Filesystem or container signature on the device itself.
    pub fs_type: Option<String>,
    pub label: Option<String>,
    pub uuid: Option<String>,
    /// Each partition in the table.
    pub partitions: Vec<ProbedPartition>,
}

/// One entry of a partition table, as libblkid reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbedPartition {
    pub number: u32,
    /// Start and size in 512-byte sectors.
    pub start: u64,
    pub size: u64,
    /// GPT type GUID, or the MBR type byte as `0x83`.
    pub type_name: Option<String>,
}

/// Why probing failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{0}: path contains a NUL byte")]
    BadPath(String),
    #[error("{path}: libblkid could not open it ({os})")]
    Open { path: String, os: std::io::Error },
    #[error("{0}: ambivalent result (several signatures: wipefs would list them)")]
    Ambivalent(String),
    #[error("{0}: probing failed")]
    Failed(String),
}

/// An owned libblkid probe, freed on drop.
struct Probe(BlkidProbe);

impl Drop for Probe {
    fn drop(&mut self) {
        // SAFETY: self.0 came from blkid_new_probe_from_filename, is non-null,
        // and is freed exactly once here.
        unsafe { blkid_free_probe(self.0) }
    }
}

impl Probe {
    fn lookup(&self, name: &CStr) -> Option<String> {
        let mut data: *const c_char = std::ptr::null();
        // SAFETY: the probe is live; `name` is NUL-terminated; on success
        // libblkid points `data` at a NUL-terminated string owned by the probe,
        // which we copy before the probe can be freed.
        let rc = unsafe {
            blkid_probe_lookup_value(self.0, name.as_ptr(), &mut data, std::ptr::null_mut())
        };
        if rc != 0 || data.is_null() {
            return None;
        }
        // SAFETY: see above: `data` is a valid C string for the probe's lifetime.
        let s = unsafe { CStr::from_ptr(data) }
            .to_string_lossy()
            .into_owned();
        (!s.is_empty()).then_some(s)
    }
}

/// Probe `path` for a partition table, partitions and a signature.
pub fn probe(path: &Path) -> Result<ProbeResult, ProbeError> {
    let shown = path.display().to_string();
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| ProbeError::BadPath(shown.clone()))?;
    // SAFETY: `c` is a valid NUL-terminated path; a null return means failure
    // (errno set), which is checked before use.
    let raw = unsafe { blkid_new_probe_from_filename(c.as_ptr()) };
    if raw.is_null() {
        return Err(ProbeError::Open {
            path: shown,
            os: std::io::Error::last_os_error(),
        });
    }
    let pr = Probe(raw);
    // SAFETY: `pr.0` is a live probe for all of these configuration calls.
    unsafe {
        blkid_probe_enable_partitions(pr.0, 1);
    }
    // SAFETY: as above.
    unsafe {
        blkid_probe_enable_superblocks(pr.0, 1);
    }
    // SAFETY: as above.
    unsafe {
        blkid_probe_set_superblocks_flags(
            pr.0,
            BLKID_SUBLKS_LABEL | BLKID_SUBLKS_UUID | BLKID_SUBLKS_TYPE,
        );
    }
    // SAFETY: the probe is live and configured.
    let rc = unsafe { blkid_do_safeprobe(pr.0) };
    match rc {
        0 | 1 => {} // 1 = nothing found
        -2 => return Err(ProbeError::Ambivalent(shown)),
        _ => return Err(ProbeError::Failed(shown)),
    }
    let mut out = ProbeResult {
        partition_table: pr.lookup(c"PTTYPE"),
        fs_type: pr.lookup(c"TYPE"),
        label: pr.lookup(c"LABEL"),
        uuid: pr.lookup(c"UUID"),
        partitions: Vec::new(),
    };
    if out.partition_table.is_some() {
        // SAFETY: the probe is live; the returned list is owned by the probe
        // and used only while `pr` lives.
        let list = unsafe { blkid_probe_get_partitions(pr.0) };
        if !list.is_null() {
            // SAFETY: `list` is a valid partlist of the live probe.
            let n = unsafe { blkid_partlist_numof_partitions(list) };
            for i in 0..n.max(0) {
                // SAFETY: 0 <= i < n, so the index is valid for this list.
                let par = unsafe { blkid_partlist_get_partition(list, i) };
                if par.is_null() {
                    continue;
                }
                // SAFETY: `par` is a valid partition of the live list.
                let no = unsafe { blkid_partition_get_partno(par) };
                // SAFETY: as above.
                let size = unsafe { blkid_partition_get_size(par) };
                // SAFETY: as above.
                let start = unsafe { blkid_partition_get_start(par) };
                // SAFETY: as above; the string (if any) belongs to the list and
                // is copied below while the probe lives.
                let tstr = unsafe { blkid_partition_get_type_string(par) };
                let type_name = if tstr.is_null() {
                    // SAFETY: as above.
                    let t = unsafe { blkid_partition_get_type(par) };
                    (t != 0).then(|| format!("0x{t:02x}"))
                } else {
                    // SAFETY: non-null, NUL-terminated, owned by the live probe.
                    let t = unsafe { CStr::from_ptr(tstr) };
                    Some(t.to_string_lossy().into_owned()).filter(|t| !t.is_empty())
                };
                out.partitions.push(ProbedPartition {
                    number: u32::try_from(no).unwrap_or(0),
                    start: u64::try_from(start).unwrap_or(0),
                    size: u64::try_from(size).unwrap_or(0),
                    type_name,
                });
            }
        }
    }
    Ok(out)
}
