//! An x86 QEMU guest (TCG) with emulated drives, for tests that run real
//! Lethe binaries against real kernel drivers.
//!
//! The guest boots Debian's kernel with an initramfs built in memory here:
//! a static busybox, the host binaries the test names (with their shared
//! libraries), the storage modules (nvme, ahci, sd_mod, sg, usb-storage, uas,
//! xhci-pci and their dependencies) and the test's shell script, which `/init`
//! runs once the drives are up. Drives are raw files in a temp dir, so the host
//! can inspect them after (or while) the guest writes to them.
//!
//! Protocol: the guest prints facts on the serial console as `@@NAME text@@`;
//! the host waits for them with [`Guest::wait_marker`]. `/init` prints
//! `@@READY ...@@` before the script and `@@DONE rc=N@@` after it, then powers
//! off. QMP (a unix socket) hot-plugs USB sticks at runtime.
//!
//! Needs `qemu-system-x86_64`, `LETHE_QEMU_KERNEL_ROOT` (an extracted
//! linux-image package: `boot/vmlinuz-*` and `lib/modules/*`) and
//! `LETHE_BUSYBOX` (a static busybox; default `/bin/busybox`).
//! [`GuestBuilder::new`] prints `SKIPPED: ...` and returns `None` without them.

mod initramfs;
mod running;

pub use initramfs::{module_closure, shared_libs, Cpio};
pub use running::{fields, markers, Guest};

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Modules every guest loads (dependencies are added from `.modinfo`).
/// `crc64_rocksoft_generic` is only a soft dependency of `crc64_rocksoft`.
pub const DEFAULT_MODULES: &[&str] = &[
    "crc64_rocksoft_generic",
    "nvme",
    "ahci",
    "sd_mod",
    "sg",
    "xhci_pci",
    "usb_storage",
    "uas",
];

/// Errors of building, booting or talking to a guest.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("kernel modules not found under {0}: {1}")]
    Modules(PathBuf, String),
    #[error("timed out after {secs:.1} s waiting for {what}; console:\n{console}")]
    Timeout {
        what: String,
        secs: f64,
        console: String,
    },
    #[error("the guest exited while waiting for {what}; console:\n{console}")]
    Exited { what: String, console: String },
    #[error("QMP: {0}")]
    Qmp(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> GuestError {
    let what = what.into();
    move |source| GuestError::Io { what, source }
}

/// One emulated drive's backing file and identity.
#[derive(Debug, Clone)]
pub struct DiskSpec {
    pub serial: String,
    /// Model string (AHCI only: QEMU's NVMe and USB disks have fixed models,
    /// `QEMU NVMe Ctrl` and `QEMU HARDDISK`).
    pub model: Option<String>,
    pub size: u64,
    /// Every byte of the backing file, so an erase is visible from the host;
    /// `None` leaves it sparse (zeros).
    pub fill: Option<u8>,
    /// USB only: the stick says it is removable media (SCSI RMB), as flash
    /// sticks do.
    pub removable: bool,
}

impl DiskSpec {
    pub fn new(serial: &str, size: u64) -> Self {
        DiskSpec {
            serial: serial.into(),
            model: None,
            size,
            fill: None,
            removable: false,
        }
    }

    pub fn removable(mut self) -> Self {
        self.removable = true;
        self
    }

    pub fn model(mut self, m: &str) -> Self {
        self.model = Some(m.into());
        self
    }

    pub fn fill(mut self, byte: u8) -> Self {
        self.fill = Some(byte);
        self
    }
}

/// A value inside a QEMU `-device` option list: commas are doubled.
fn opt(v: &str) -> String {
    v.replace(',', ",,")
}

fn make_backing(path: &Path, spec: &DiskSpec) -> Result<(), GuestError> {
    let what = || format!("backing file {}", path.display());
    let mut f = std::fs::File::create(path).map_err(io(what()))?;
    match spec.fill {
        Some(b) => {
            let block = vec![b; 1 << 20];
            let mut left = spec.size;
            while left > 0 {
                let n = left.min(block.len() as u64) as usize;
                f.write_all(&block[..n]).map_err(io(what()))?;
                left -= n as u64;
            }
        }
        None => f.set_len(spec.size).map_err(io(what()))?,
    }
    f.sync_all().map_err(io(what()))
}

/// What the host needs to boot guests here.
#[derive(Debug, Clone)]
pub struct QemuEnv {
    pub vmlinuz: PathBuf,
    /// `lib/modules/<kver>/kernel` of the extracted kernel package.
    pub modroot: PathBuf,
    pub busybox: PathBuf,
}

impl QemuEnv {
    /// The kernel, modules, busybox and QEMU, or why they are missing.
    pub fn detect() -> Result<Self, String> {
        let has_qemu = Command::new("qemu-system-x86_64")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !has_qemu {
            return Err("qemu-system-x86_64 is not installed (hw-tests/setup.sh)".into());
        }
        let kroot = std::env::var_os("LETHE_QEMU_KERNEL_ROOT")
            .map(PathBuf::from)
            .ok_or("set LETHE_QEMU_KERNEL_ROOT to an extracted linux-image package (hw-tests/run-tests.sh does)")?;
        let busybox = std::env::var_os("LETHE_BUSYBOX")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/bin/busybox"));
        if !busybox.is_file() {
            return Err(format!(
                "no static busybox at {} (set LETHE_BUSYBOX)",
                busybox.display()
            ));
        }
        let vmlinuz = std::fs::read_dir(kroot.join("boot"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
            })
            .ok_or_else(|| format!("no boot/vmlinuz-* under {}", kroot.display()))?;
        let kver = vmlinuz
            .file_name()
            .map(|n| {
                n.to_string_lossy()
                    .trim_start_matches("vmlinuz-")
                    .to_string()
            })
            .unwrap_or_default();
        let modroot = kroot.join("lib/modules").join(&kver).join("kernel");
        if !modroot.is_dir() {
            return Err(format!("no modules at {}", modroot.display()));
        }
        Ok(QemuEnv {
            vmlinuz,
            modroot,
            busybox,
        })
    }
}

/// A guest being put together. Nothing runs until [`GuestBuilder::boot`].
pub struct GuestBuilder {
    env: QemuEnv,
    dir: tempfile::TempDir,
    cpio: Cpio,
    modules: Vec<String>,
    kernel_args: Vec<String>,
    qemu_args: Vec<String>,
    disks: BTreeMap<String, PathBuf>,
    expect_disks: usize,
    xhci: bool,
    memory_mb: u32,
    script: String,
    failed: Option<GuestError>,
}

impl GuestBuilder {
    /// A builder, or `None` after printing `SKIPPED: <test>: <reason>` when
    /// QEMU, the kernel or busybox are missing.
    pub fn new(test: &str) -> Option<Self> {
        let env = match QemuEnv::detect() {
            Ok(e) => e,
            Err(why) => {
                eprintln!("SKIPPED: {test}: {why}");
                return None;
            }
        };
        let dir = match tempfile::Builder::new().prefix("lethe-guest-").tempdir() {
            Ok(d) => d,
            Err(e) => {
                eprintln!("SKIPPED: {test}: no temp dir: {e}");
                return None;
            }
        };
        Some(GuestBuilder {
            env,
            dir,
            cpio: Cpio::default(),
            modules: DEFAULT_MODULES.iter().map(|s| s.to_string()).collect(),
            kernel_args: Vec::new(),
            qemu_args: Vec::new(),
            disks: BTreeMap::new(),
            expect_disks: 0,
            xhci: false,
            memory_mb: 768,
            script: String::new(),
            failed: None,
        })
    }

    /// The temp dir holding the backing files, console log and sockets.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn note<T>(&mut self, r: Result<T, GuestError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.failed.get_or_insert(e);
                None
            }
        }
    }

    /// Copy host binary `host` to guest path `guest` (mode 755), with its
    /// shared libraries; debug info is stripped when `strip` exists, to keep
    /// the initramfs small.
    pub fn binary(mut self, guest: &str, host: &Path) -> Self {
        let stripped = self
            .dir
            .path()
            .join(format!("strip{}", guest.replace('/', "_")));
        let ok = Command::new("strip")
            .arg("--strip-debug")
            .arg("-o")
            .arg(&stripped)
            .arg(host)
            .status()
            .is_ok_and(|s| s.success());
        let src = if ok { stripped.as_path() } else { host };
        let data = std::fs::read(src).map_err(io(format!("read {}", src.display())));
        if let Some(d) = self.note(data) {
            self.cpio.file(guest, 0o755, &d);
        }
        let _ = std::fs::remove_file(&stripped);
        for lib in shared_libs(host) {
            // The ELF interpreter must be executable, or every dynamic binary fails.
            let data = std::fs::read(&lib).map_err(io(format!("read {}", lib.display())));
            if let Some(d) = self.note(data) {
                self.cpio.file(&lib.to_string_lossy(), 0o755, &d);
            }
        }
        self
    }

    /// Add a file to the initramfs.
    pub fn file(mut self, guest: &str, mode: u32, data: &[u8]) -> Self {
        self.cpio.file(guest, mode, data);
        self
    }

    /// Load one more module (with its dependencies), e.g. `ext4`.
    pub fn module(mut self, name: &str) -> Self {
        self.modules.push(name.into());
        self
    }

    /// Replace the module list (dependencies are still resolved).
    pub fn modules(mut self, names: &[&str]) -> Self {
        self.modules = names.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn kernel_arg(mut self, arg: &str) -> Self {
        self.kernel_args.push(arg.into());
        self
    }

    /// Extra QEMU arguments (devices the typed helpers do not cover).
    pub fn qemu_args(mut self, args: &[&str]) -> Self {
        self.qemu_args.extend(args.iter().map(|s| s.to_string()));
        self
    }

    pub fn memory_mb(mut self, mb: u32) -> Self {
        self.memory_mb = mb;
        self
    }

    /// `n` more disks (with a /dev node and a size) for `/init` to wait for
    /// before the script: the typed helpers count their own, disks attached
    /// through [`GuestBuilder::qemu_args`] must be counted here.
    pub fn extra_disks(mut self, n: usize) -> Self {
        self.expect_disks += n;
        self
    }

    /// Create backing file `<dir>/<id>.raw` without attaching it (for
    /// [`GuestBuilder::qemu_args`]); its path is in [`Guest::disk`] later.
    pub fn backing_file(&mut self, id: &str, spec: &DiskSpec) -> PathBuf {
        let path = self.dir.path().join(format!("{id}.raw"));
        let r = make_backing(&path, spec);
        self.note(r);
        self.disks.insert(id.into(), path.clone());
        path
    }

    /// An NVMe controller with one namespace over `<dir>/<id>.raw`.
    pub fn nvme(mut self, id: &str, spec: &DiskSpec) -> Self {
        let p = self.backing_file(id, spec);
        self.qemu_args.extend([
            "-drive".into(),
            format!(
                "file={},if=none,id={id},format=raw,discard=unmap",
                p.display()
            ),
            "-device".into(),
            format!("nvme,id={id}-ctrl,serial={},drive={id}", opt(&spec.serial)),
        ]);
        self.expect_disks += 1;
        self
    }

    /// One NVMe controller in its own NVM subsystem (`nvme-subsys`) with one
    /// namespace per entry of `namespaces` (NSID 1, 2, ...), each over
    /// `<dir>/<id>.raw`. The guest kernel shows them as multipath heads
    /// (`/dev/nvmeXn1`, `/dev/nvmeXn2`...).
    pub fn nvme_subsystem(
        mut self,
        ctrl: &str,
        serial: &str,
        namespaces: &[(&str, &DiskSpec)],
    ) -> Self {
        self.qemu_args.extend([
            "-device".into(),
            format!("nvme-subsys,id={ctrl}-subsys,nqn=lethe-{}", opt(ctrl)),
            "-device".into(),
            format!("nvme,id={ctrl},serial={},subsys={ctrl}-subsys", opt(serial)),
        ]);
        for (i, (id, spec)) in namespaces.iter().enumerate() {
            let p = self.backing_file(id, spec);
            self.qemu_args.extend([
                "-drive".into(),
                format!(
                    "file={},if=none,id={id},format=raw,discard=unmap",
                    p.display()
                ),
                "-device".into(),
                format!("nvme-ns,drive={id},bus={ctrl},nsid={}", i + 1),
            ]);
            self.expect_disks += 1;
        }
        self
    }

    /// An AHCI controller with one SATA disk over `<dir>/<id>.raw`.
    pub fn sata(mut self, id: &str, spec: &DiskSpec) -> Self {
        let p = self.backing_file(id, spec);
        let model = spec
            .model
            .as_ref()
            .map(|m| format!(",model={}", opt(m)))
            .unwrap_or_default();
        self.qemu_args.extend([
            "-drive".into(),
            format!(
                "file={},if=none,id={id},format=raw,discard=unmap",
                p.display()
            ),
            "-device".into(),
            format!("ahci,id={id}-ahci"),
            "-device".into(),
            format!(
                "ide-hd,drive={id},bus={id}-ahci.0,serial={}{model}",
                opt(&spec.serial)
            ),
        ]);
        self.expect_disks += 1;
        self
    }

    /// The xHCI controller (`xhci`), where USB sticks plug in.
    pub fn xhci(mut self) -> Self {
        if !self.xhci {
            self.qemu_args
                .extend(["-device".into(), "qemu-xhci,id=xhci".into()]);
            self.xhci = true;
        }
        self
    }

    /// A USB stick (`usb-storage`, bulk-only) present at boot.
    pub fn usb(mut self, id: &str, spec: &DiskSpec) -> Self {
        self = self.xhci();
        let p = self.backing_file(id, spec);
        self.qemu_args.extend([
            "-drive".into(),
            format!(
                "file={},if=none,id={id},format=raw,discard=unmap",
                p.display()
            ),
            "-device".into(),
            format!(
                "usb-storage,id={id}-dev,drive={id},bus=xhci.0,serial={},removable={}",
                opt(&spec.serial),
                if spec.removable { "on" } else { "off" }
            ),
        ]);
        self.expect_disks += 1;
        self
    }

    /// The shell script `/init` runs (as `/test.sh`) once the disks are up.
    pub fn script(mut self, sh: &str) -> Self {
        self.script = sh.into();
        self
    }

    fn init(&self, insmods: &str) -> String {
        format!(
            r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
echo "@@INIT uptime=$(cut -d' ' -f1 /proc/uptime)@@"
{insmods}
disks() {{
    n=0
    for d in /sys/block/*; do
        b=${{d##*/}}
        case $b in ram*|loop*) continue;; esac
        [ -e /dev/$b ] && [ "$(cat $d/size)" != 0 ] && n=$((n+1))
    done
    echo $n
}}
i=0
while [ "$(disks)" -lt {want} ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
echo "@@READY disks=$(disks) uptime=$(cut -d' ' -f1 /proc/uptime)@@"
cd /tmp
sh /test.sh
echo "@@DONE rc=$?@@"
sync
poweroff -f
"#,
            want = self.expect_disks
        )
    }

    /// Build the initramfs and start QEMU. The guest runs on its own; use
    /// [`Guest::wait_marker`] and [`Guest::wait_exit`] to follow it.
    pub fn boot(mut self) -> Result<Guest, GuestError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let names: Vec<&str> = self.modules.iter().map(String::as_str).collect();
        let mods = module_closure(&self.env.modroot, &names)
            .map_err(|e| GuestError::Modules(self.env.modroot.clone(), e))?;
        let busybox = std::fs::read(&self.env.busybox)
            .map_err(io(format!("read {}", self.env.busybox.display())))?;
        self.cpio.file("/bin/busybox", 0o755, &busybox);
        let mut insmods = String::new();
        for (i, m) in mods.iter().enumerate() {
            let data = std::fs::read(m).map_err(io(format!("read {}", m.display())))?;
            self.cpio.file(&format!("/mods/{i:02}.ko"), 0o644, &data);
            insmods.push_str(&format!("insmod /mods/{i:02}.ko\n"));
        }
        for d in ["/proc", "/sys", "/dev", "/tmp", "/sbin"] {
            self.cpio.dir(d);
        }
        let init = self.init(&insmods);
        self.cpio.file("/init", 0o755, init.as_bytes());
        self.cpio.file("/test.sh", 0o755, self.script.as_bytes());

        let dir = self.dir.path().to_path_buf();
        let initrd = dir.join("initrd.cpio");
        let cpio = std::mem::take(&mut self.cpio).finish();
        std::fs::write(&initrd, cpio).map_err(io("write initrd"))?;
        let console = dir.join("console.log");
        let qmp = dir.join("qmp.sock");
        let stderr = std::fs::File::create(dir.join("qemu.err")).map_err(io("qemu.err"))?;
        // usb-storage waits a second before scanning a new stick by default.
        let mut append =
            "console=ttyS0 quiet panic=-1 rdinit=/init usb_storage.delay_use=0".to_string();
        for a in &self.kernel_args {
            append.push(' ');
            append.push_str(a);
        }
        let mut args: Vec<String> = [
            "-machine",
            "q35,accel=tcg",
            "-smp",
            "1",
            "-display",
            "none",
            "-nodefaults",
            "-no-reboot",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend([
            "-m".into(),
            self.memory_mb.to_string(),
            "-serial".into(),
            format!("file:{}", console.display()),
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", qmp.display()),
            "-kernel".into(),
            self.env.vmlinuz.display().to_string(),
            "-initrd".into(),
            initrd.display().to_string(),
            "-append".into(),
            append,
        ]);
        args.extend(self.qemu_args.iter().cloned());
        let child = Command::new("qemu-system-x86_64")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(io("start qemu-system-x86_64"))?;
        Ok(Guest {
            child,
            started: Instant::now(),
            console,
            qmp_path: qmp,
            qmp: None,
            disks: self.disks,
            xhci: self.xhci,
            dir: self.dir,
        })
    }
}
