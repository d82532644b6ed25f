//! Block-device hot-plug from the kernel's uevent netlink socket
//! (`NETLINK_KOBJECT_UEVENT`, multicast group 1).
//!
//! Group 1 carries the kernel's own messages whether or not udev runs (udev
//! re-broadcasts on group 2 in its own format, which is ignored here), so the
//! same code works in a bare initramfs and on an appliance with udev.
//!
//! The message parser ([`parse`]) is pure. [`Watcher`] turns the events of
//! whole disks into [`DriveEvent`]s, re-discovering an added device (briefly
//! retried: udev may still be writing its database) so the event carries the
//! same record `lethe drives` prints.

use super::{devnum_of_node, discover, drive, DiscoveryError, SYS_BLOCK, UDEV_DATA};
use lethe_core::inventory::Drive;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    bind, recvfrom, setsockopt, socket, sockopt, AddressFamily, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};
use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

/// The kernel's multicast group on `NETLINK_KOBJECT_UEVENT`.
const KERNEL_GROUP: u32 = 1;
/// The kernel's `UEVENT_BUFFER_SIZE` is 2048; leave room.
const RECV_BUF: usize = 8192;

/// One kernel uevent: `ACTION@DEVPATH` and its `KEY=VALUE` variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uevent {
    pub action: String,
    pub devpath: String,
    pub vars: BTreeMap<String, String>,
}

impl Uevent {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    /// The kernel name of a whole disk this event is about (`sdb`,
    /// `nvme0n1`), or `None` for partitions, other subsystems, and disks
    /// without a device node (hidden NVMe multipath paths).
    pub fn disk_name(&self) -> Option<&str> {
        if self.get("SUBSYSTEM") != Some("block") || self.get("DEVTYPE") != Some("disk") {
            return None;
        }
        let name = self.get("DEVNAME")?;
        // DEVNAME is relative to /dev; a block disk name has no directories.
        let name = name.strip_prefix("/dev/").unwrap_or(name);
        (!name.is_empty() && !name.contains('/') && !name.starts_with("ram")).then_some(name)
    }
}

/// Why a datagram is not a kernel uevent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UeventParseError {
    #[error("empty message")]
    Empty,
    #[error("a udev (libudev) message, not a kernel one")]
    Udev,
    #[error("no ACTION@DEVPATH header")]
    NoHeader,
    #[error("variable without '=': {0:?}")]
    BadVariable(String),
    #[error("ACTION={var} does not match the header's {header}")]
    ActionMismatch { header: String, var: String },
}

/// Parse `ACTION@DEVPATH\0KEY=VALUE\0...` (as the kernel sends it).
pub fn parse(buf: &[u8]) -> Result<Uevent, UeventParseError> {
    if buf.iter().all(|&b| b == 0) {
        return Err(UeventParseError::Empty);
    }
    if buf.starts_with(b"libudev\0") {
        return Err(UeventParseError::Udev);
    }
    let mut parts = buf.split(|&b| b == 0);
    let header = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let (action, devpath) = header
        .split_once('@')
        .filter(|(a, p)| !a.is_empty() && p.starts_with('/'))
        .ok_or(UeventParseError::NoHeader)?;
    let mut vars = BTreeMap::new();
    for p in parts.filter(|p| !p.is_empty()) {
        let s = String::from_utf8_lossy(p);
        let (k, v) = s
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| UeventParseError::BadVariable(s.to_string()))?;
        vars.insert(k.to_string(), v.to_string());
    }
    if let Some(var) = vars.get("ACTION") {
        if var != action {
            return Err(UeventParseError::ActionMismatch {
                header: action.into(),
                var: var.clone(),
            });
        }
    }
    Ok(Uevent {
        action: action.into(),
        devpath: devpath.into(),
        vars,
    })
}

/// Errors of the uevent socket.
#[derive(Debug, thiserror::Error)]
pub enum UeventError {
    #[error("uevent socket: {0}")]
    Socket(Errno),
    /// The kernel dropped messages (socket buffer full): rescan.
    #[error("uevent messages were lost (receive buffer overflow)")]
    Overflow,
}

/// A bound `NETLINK_KOBJECT_UEVENT` socket on the kernel's group.
pub struct UeventSocket {
    fd: OwnedFd,
}

impl UeventSocket {
    /// Open and bind. Unprivileged processes may listen on group 1.
    pub fn open() -> Result<Self, UeventError> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::NetlinkKObjectUEvent,
        )
        .map_err(UeventError::Socket)?;
        // A burst (a USB hub with four sticks) must not overflow the default
        // buffer; failure to enlarge it is not fatal.
        let _ = setsockopt(&fd, sockopt::RcvBuf, &(1 << 20));
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, KERNEL_GROUP)).map_err(UeventError::Socket)?;
        Ok(UeventSocket { fd })
    }

    /// The next kernel uevent, or `None` if `timeout` passed (or a signal
    /// arrived) first. Messages that are not kernel uevents are skipped.
    pub fn recv(&self, timeout: Duration) -> Result<Option<Uevent>, UeventError> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; RECV_BUF];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, ms) {
                Ok(0) | Err(Errno::EINTR) => return Ok(None),
                Ok(_) => {}
                Err(e) => return Err(UeventError::Socket(e)),
            }
            match recvfrom::<NetlinkAddr>(self.fd.as_raw_fd(), &mut buf) {
                // Only the kernel (port 0) speaks for the hardware.
                Ok((n, Some(from))) if from.pid() == 0 => {
                    if let Ok(ev) = parse(&buf[..n.min(buf.len())]) {
                        return Ok(Some(ev));
                    }
                }
                Ok(_) | Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                Err(Errno::ENOBUFS) => return Err(UeventError::Overflow),
                Err(e) => return Err(UeventError::Socket(e)),
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }
}

/// A drive arriving or leaving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriveEvent {
    Added(Box<Drive>),
    /// `last` is the record from when it was seen (the node is gone now).
    Removed {
        name: String,
        path: String,
        last: Option<Box<Drive>>,
    },
}

/// Errors of watching for drives.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Uevent(#[from] UeventError),
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
}

fn size_is_zero(name: &str) -> bool {
    fs::read_to_string(Path::new(SYS_BLOCK).join(name).join("size"))
        .map_or(true, |s| s.trim() == "0")
}

/// Re-discover `name` after its uevent. The kernel sends the event once sysfs
/// is complete, but a running udev writes its database (by-id links) a little
/// later, and blkid may find the node busy for a moment. `None` if it is not
/// a listable disk (no medium, an unattached loop device, gone again).
pub fn rediscover(name: &str, wait: Duration) -> Option<Drive> {
    let start = Instant::now();
    let udev = Path::new(UDEV_DATA).is_dir();
    loop {
        if size_is_zero(name) {
            return None;
        }
        let d = drive(name);
        let udev_done = !udev
            || d.as_ref()
                .and_then(|d| devnum_of_node(&d.path))
                .is_some_and(|n| Path::new(UDEV_DATA).join(format!("b{n}")).exists());
        match d {
            Some(d) if udev_done || start.elapsed() >= wait => return Some(d),
            _ if start.elapsed() >= wait => return None,
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The drives present, kept current from block-device uevents.
///
/// Besides `add`/`remove`, a `change` that gives a disk a size (a loop device
/// attached, a card put in a reader) is an arrival, and one that takes the
/// size away is a removal, so the events match what `lethe drives` lists.
pub struct Watcher {
    sock: UeventSocket,
    known: BTreeMap<String, Drive>,
    pending: VecDeque<DriveEvent>,
}

impl Watcher {
    /// Start listening, then list the drives present: the socket is bound
    /// first, so a drive arriving in between is not lost.
    pub fn start() -> Result<(Self, Vec<Drive>), WatchError> {
        let sock = UeventSocket::open()?;
        let drives = discover()?;
        let known = drives.iter().map(|d| (d.name.clone(), d.clone())).collect();
        let w = Watcher {
            sock,
            known,
            pending: VecDeque::new(),
        };
        Ok((w, drives))
    }

    /// The next drive event within `timeout`; `None` on timeout or signal.
    pub fn next(&mut self, timeout: Duration) -> Result<Option<DriveEvent>, WatchError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Ok(Some(ev));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let ev = match self.sock.recv(left) {
                Ok(Some(ev)) => ev,
                Ok(None) => return Ok(None),
                Err(UeventError::Overflow) => {
                    self.rescan()?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let Some(name) = ev.disk_name().map(str::to_string) else {
                continue;
            };
            match ev.action.as_str() {
                "add" | "change" if !self.known.contains_key(&name) => {
                    if let Some(d) = rediscover(&name, Duration::from_secs(2)) {
                        self.known.insert(name, d.clone());
                        return Ok(Some(DriveEvent::Added(Box::new(d))));
                    }
                }
                "change" if size_is_zero(&name) => {
                    if let Some(e) = self.removed(&name) {
                        return Ok(Some(e));
                    }
                }
                "remove" => {
                    if let Some(e) = self.removed(&name) {
                        return Ok(Some(e));
                    }
                }
                _ => {}
            }
        }
    }

    fn removed(&mut self, name: &str) -> Option<DriveEvent> {
        let last = self.known.remove(name)?;
        Some(DriveEvent::Removed {
            name: name.to_string(),
            path: format!("/dev/{name}"),
            last: Some(Box::new(last)),
        })
    }

    /// Events were lost: compare a fresh listing with what is known.
    fn rescan(&mut self) -> Result<(), WatchError> {
        let fresh: BTreeMap<String, Drive> = discover()?
            .into_iter()
            .map(|d| (d.name.clone(), d))
            .collect();
        let gone: Vec<String> = self
            .known
            .keys()
            .filter(|n| !fresh.contains_key(*n))
            .cloned()
            .collect();
        for n in gone {
            if let Some(e) = self.removed(&n) {
                self.pending.push_back(e);
            }
        }
        for (n, d) in fresh {
            if !self.known.contains_key(&n) {
                self.pending
                    .push_back(DriveEvent::Added(Box::new(d.clone())));
            }
            self.known.insert(n, d);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const USB_ADD: &[u8] = b"add@/devices/pci0000:00/0000:00:02.0/usb1/1-1/1-1:1.0/host2/target2:0:0/2:0:0:0/block/sdb\0\
ACTION=add\0DEVPATH=/devices/pci0000:00/0000:00:02.0/usb1/1-1/1-1:1.0/host2/target2:0:0/2:0:0:0/block/sdb\0\
SUBSYSTEM=block\0MAJOR=8\0MINOR=16\0DEVNAME=sdb\0DEVTYPE=disk\0DISKSEQ=9\0SEQNUM=2201\0";

    #[test]
    fn a_kernel_disk_add_is_parsed() {
        let ev = parse(USB_ADD).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ev.action, "add");
        assert!(ev.devpath.ends_with("/block/sdb"));
        assert_eq!(ev.get("MAJOR"), Some("8"));
        assert_eq!(ev.get("SEQNUM"), Some("2201"));
        assert_eq!(ev.disk_name(), Some("sdb"));
    }

    #[test]
    fn partitions_other_subsystems_and_hidden_disks_are_not_disks() {
        let part = b"add@/devices/x/block/sdb/sdb1\0ACTION=add\0SUBSYSTEM=block\0DEVNAME=sdb1\0DEVTYPE=partition\0";
        assert_eq!(parse(part).map(|e| e.disk_name().is_none()), Ok(true));
        let usb = b"add@/devices/x/usb1/1-1\0ACTION=add\0SUBSYSTEM=usb\0DEVNAME=bus/usb/001/002\0DEVTYPE=usb_device\0";
        assert_eq!(parse(usb).map(|e| e.disk_name().is_none()), Ok(true));
        // A hidden NVMe multipath path has no device node, hence no DEVNAME.
        let hidden = b"add@/devices/x/nvme0/nvme0c0n1\0ACTION=add\0SUBSYSTEM=block\0DEVTYPE=disk\0";
        assert_eq!(parse(hidden).map(|e| e.disk_name().is_none()), Ok(true));
        let ram = b"add@/devices/virtual/block/ram0\0SUBSYSTEM=block\0DEVNAME=ram0\0DEVTYPE=disk\0";
        assert_eq!(parse(ram).map(|e| e.disk_name().is_none()), Ok(true));
    }

    #[test]
    fn a_remove_event_names_the_disk() {
        let rm = b"remove@/devices/x/block/nvme1n1\0ACTION=remove\0SUBSYSTEM=block\0DEVNAME=nvme1n1\0DEVTYPE=disk\0";
        let ev = parse(rm).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (ev.action.as_str(), ev.disk_name()),
            ("remove", Some("nvme1n1"))
        );
    }

    #[test]
    fn malformed_messages_are_refused() {
        assert_eq!(parse(b""), Err(UeventParseError::Empty));
        assert_eq!(parse(b"\0\0"), Err(UeventParseError::Empty));
        assert_eq!(
            parse(b"libudev\0\xfe\xed\xca\xfe"),
            Err(UeventParseError::Udev)
        );
        assert_eq!(parse(b"add\0ACTION=add\0"), Err(UeventParseError::NoHeader));
        assert_eq!(parse(b"@/devices\0"), Err(UeventParseError::NoHeader));
        assert_eq!(parse(b"add@devices\0"), Err(UeventParseError::NoHeader));
        assert_eq!(
            parse(b"add@/d\0NOEQUALS\0"),
            Err(UeventParseError::BadVariable("NOEQUALS".into()))
        );
        assert!(matches!(
            parse(b"add@/d\0ACTION=remove\0"),
            Err(UeventParseError::ActionMismatch { .. })
        ));
    }

    #[test]
    fn the_socket_opens_unprivileged() {
        // Listening on group 1 needs no privilege; a sandbox without netlink
        // support is the only reason this may fail.
        match UeventSocket::open() {
            Ok(s) => assert!(s.recv(Duration::from_millis(10)).is_ok()),
            Err(e) => eprintln!("SKIPPED: the_socket_opens_unprivileged: {e}"),
        }
    }

    fn render(action: &str, devpath: &str, vars: &BTreeMap<String, String>) -> Vec<u8> {
        let mut b = format!("{action}@{devpath}\0ACTION={action}\0").into_bytes();
        for (k, v) in vars {
            b.extend_from_slice(format!("{k}={v}\0").as_bytes());
        }
        b
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn rendered_events_round_trip(
            action in "[a-z]{1,8}",
            devpath in "/[a-z0-9:./-]{0,40}",
            vars in proptest::collection::btree_map("[A-Z_]{1,10}", "[ -~]{0,20}", 0..8),
        ) {
            let vars: BTreeMap<String, String> =
                vars.into_iter().filter(|(k, _)| k != "ACTION").collect();
            let ev = parse(&render(&action, &devpath, &vars));
            let ev = ev.map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&ev.action, &action);
            prop_assert_eq!(&ev.devpath, &devpath);
            for (k, v) in &vars {
                prop_assert_eq!(ev.get(k), Some(v.as_str()));
            }
        }
    }
}
