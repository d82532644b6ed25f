//! The sysfs walk against fake trees shaped like real kernels' (relative
//! links, as sysfs has them).

use super::*;
use std::os::unix::fs::symlink;
use tempfile::TempDir;

fn write(p: &Path, s: &str) {
    if let Some(d) = p.parent() {
        fs::create_dir_all(d).unwrap_or_else(|e| panic!("{e}"));
    }
    fs::write(p, s).unwrap_or_else(|e| panic!("{e}"));
}

fn link(target: &str, at: &Path) {
    if let Some(d) = at.parent() {
        fs::create_dir_all(d).unwrap_or_else(|e| panic!("{e}"));
    }
    symlink(target, at).unwrap_or_else(|e| panic!("{e}"));
}

/// A controller directory `devices/pci0000:00/<pci>/nvme/<name>`.
fn controller(root: &Path, pci: &str, name: &str, minor: u32, state: &str) -> PathBuf {
    let d = root
        .join("devices/pci0000:00")
        .join(pci)
        .join("nvme")
        .join(name);
    write(&d.join("dev"), &format!("241:{minor}\n"));
    write(
        &d.join("uevent"),
        &format!("MAJOR=241\nMINOR={minor}\nDEVNAME={name}\n"),
    );
    write(&d.join("state"), &format!("{state}\n"));
    link("../../../../../class/nvme", &d.join("subsystem"));
    fs::create_dir_all(root.join("class/nvme")).unwrap_or_else(|e| panic!("{e}"));
    d
}

/// Non-multipath: namespace under the controller; its `device` → controller.
/// The controller is deliberately `nvme1` for block `nvme0n1`.
fn plain_tree() -> TempDir {
    let t = TempDir::new().unwrap_or_else(|e| panic!("{e}"));
    let r = t.path();
    let c = controller(r, "0000:00:04.0", "nvme1", 1, "live");
    let ns = c.join("nvme0n1");
    write(&ns.join("dev"), "259:0\n");
    write(&ns.join("nsid"), "3\n");
    link("../../nvme1", &ns.join("device"));
    let p = ns.join("nvme0n1p1");
    write(&p.join("partition"), "1\n");
    write(&p.join("dev"), "259:1\n");
    link(
        "../../devices/pci0000:00/0000:00:04.0/nvme/nvme1/nvme0n1",
        &r.join("class/block/nvme0n1"),
    );
    link(
        "../../devices/pci0000:00/0000:00:04.0/nvme/nvme1/nvme0n1/nvme0n1p1",
        &r.join("class/block/nvme0n1p1"),
    );
    t
}

/// Multipath: the head disk under `nvme-subsys0`, `device` → the subsystem,
/// which links to two controllers, one of them resetting.
fn multipath_tree() -> TempDir {
    let t = TempDir::new().unwrap_or_else(|e| panic!("{e}"));
    let r = t.path();
    controller(r, "0000:00:04.0", "nvme0", 0, "resetting");
    controller(r, "0000:00:05.0", "nvme2", 2, "live");
    let sub = r.join("devices/virtual/nvme-subsystem/nvme-subsys0");
    write(&sub.join("subsysnqn"), "nqn.2019-08.org.qemu:lab\n");
    link("../../../../class/nvme-subsystem", &sub.join("subsystem"));
    link(
        "../../../pci0000:00/0000:00:04.0/nvme/nvme0",
        &sub.join("nvme0"),
    );
    link(
        "../../../pci0000:00/0000:00:05.0/nvme/nvme2",
        &sub.join("nvme2"),
    );
    let ns = sub.join("nvme0n1");
    write(&ns.join("dev"), "259:0\n");
    write(&ns.join("nsid"), "1\n");
    link("../../nvme-subsys0", &ns.join("device"));
    link(
        "../../devices/virtual/nvme-subsystem/nvme-subsys0/nvme0n1",
        &r.join("class/block/nvme0n1"),
    );
    t
}

#[test]
fn plain_namespace_finds_its_own_controller_not_the_same_suffix() {
    let t = plain_tree();
    let c = controller_for_namespace(t.path(), "nvme0n1").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((c.name.as_str(), c.major, c.minor), ("nvme1", 241, 1));
    assert!(c.is_live());
    assert_eq!(namespace_id(t.path(), "nvme0n1").ok(), Some(3));
}

#[test]
fn partition_resolves_to_its_disk() {
    let t = plain_tree();
    let c = controller_for_namespace(t.path(), "nvme0n1p1").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.name, "nvme1");
    assert_eq!(namespace_id(t.path(), "nvme0n1p1").ok(), Some(3));
}

#[test]
fn multipath_lists_controllers_live_first_and_picks_live() {
    let t = multipath_tree();
    let all = controllers_for_namespace(t.path(), "nvme0n1").unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<_> = all.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["nvme2", "nvme0"]);
    let c = controller_for_namespace(t.path(), "nvme0n1").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((c.name.as_str(), c.minor), ("nvme2", 2));
    assert_eq!(namespace_id(t.path(), "nvme0n1").ok(), Some(1));
}

#[test]
fn no_live_controller_is_an_error() {
    let t = multipath_tree();
    let st = t
        .path()
        .join("devices/pci0000:00/0000:00:05.0/nvme/nvme2/state");
    write(&st, "dead\n");
    assert!(matches!(
        controller_for_namespace(t.path(), "nvme0n1"),
        Err(TopologyError::NoController(_))
    ));
}

#[test]
fn scsi_disk_is_not_nvme() {
    let t = TempDir::new().unwrap_or_else(|e| panic!("{e}"));
    let r = t.path();
    let tgt = r.join("devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0");
    link("../../../../../../../bus/scsi", &tgt.join("subsystem"));
    let sda = tgt.join("block/sda");
    write(&sda.join("dev"), "8:0\n");
    link("../../../0:0:0:0", &sda.join("device"));
    link(
        "../../devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda",
        &r.join("class/block/sda"),
    );
    assert!(matches!(
        controller_for_namespace(r, "sda"),
        Err(TopologyError::NotNvme(_))
    ));
    // A loop device has no `device` link at all.
    let lo = r.join("devices/virtual/block/loop0");
    write(&lo.join("dev"), "7:0\n");
    link(
        "../../devices/virtual/block/loop0",
        &r.join("class/block/loop0"),
    );
    assert!(matches!(
        controller_for_namespace(r, "loop0"),
        Err(TopologyError::NotNvme(_))
    ));
}

#[test]
fn bad_names_and_missing_devices_are_errors() {
    let t = plain_tree();
    for n in ["", ".", "..", "../nvme0n1", "a/b"] {
        assert!(
            matches!(
                controller_for_namespace(t.path(), n),
                Err(TopologyError::BadName(_))
            ),
            "{n:?}"
        );
    }
    assert!(matches!(
        controller_for_namespace(t.path(), "nvme9n9"),
        Err(TopologyError::Io { .. })
    ));
}

#[test]
fn garbage_dev_attribute_is_a_parse_error() {
    let t = plain_tree();
    let dev = t
        .path()
        .join("devices/pci0000:00/0000:00:04.0/nvme/nvme1/dev");
    for junk in ["", "241", "x:1", "241:", ":", "241:1:2", "99999999999:0"] {
        write(&dev, junk);
        assert!(
            matches!(
                controller_for_namespace(t.path(), "nvme0n1"),
                Err(TopologyError::Parse { .. })
            ),
            "{junk:?}"
        );
    }
}

#[test]
fn open_controller_rejects_a_regular_file_or_wrong_numbers() {
    let d = TempDir::new().unwrap_or_else(|e| panic!("{e}"));
    write(&d.path().join("nvme0"), "");
    let c = Controller {
        name: "nvme0".into(),
        major: 241,
        minor: 0,
        state: None,
        sysfs: PathBuf::new(),
    };
    assert!(matches!(
        open_controller(&c, d.path()),
        Err(TopologyError::NodeMismatch { .. })
    ));
    // /dev/null is a character device, but 1:3, not 241:0.
    let null = Controller {
        name: "null".into(),
        ..c
    };
    assert!(matches!(
        open_controller(&null, Path::new("/dev")),
        Err(TopologyError::NodeMismatch { .. })
    ));
    let right = Controller {
        major: 1,
        minor: 3,
        ..null
    };
    assert!(open_controller(&right, Path::new("/dev")).is_ok());
}

fn names(v: Vec<NamespaceNode>) -> Vec<(String, u32)> {
    v.into_iter().map(|n| (n.name, n.nsid)).collect()
}

#[test]
fn plain_controller_without_subsystem_entry_lists_its_namespaces() {
    let t = plain_tree();
    let ctrl = t.path().join("devices/pci0000:00/0000:00:04.0/nvme/nvme1");
    write(&ctrl.join("nvme0n2/nsid"), "4\n");
    write(&ctrl.join("nvme0n2/dev"), "259:2\n");
    let got = subsystem_namespaces(t.path(), "nvme0n1p1").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        names(got),
        [("nvme0n1".to_string(), 3), ("nvme0n2".to_string(), 4)]
    );
}

#[test]
fn plain_controllers_of_one_subsystem_are_found_through_class_nvme_subsystem() {
    let t = plain_tree();
    let r = t.path();
    // A second controller of the same subsystem shows the same namespace
    // under its own name, and one more namespace.
    let c2 = controller(r, "0000:00:05.0", "nvme2", 2, "live");
    write(&c2.join("nvme2n1/nsid"), "3\n");
    write(&c2.join("nvme2n2/nsid"), "5\n");
    let sub = r.join("devices/virtual/nvme-subsystem/nvme-subsys0");
    link("../../../../class/nvme-subsystem", &sub.join("subsystem"));
    link(
        "../../../pci0000:00/0000:00:04.0/nvme/nvme1",
        &sub.join("nvme1"),
    );
    link(
        "../../../pci0000:00/0000:00:05.0/nvme/nvme2",
        &sub.join("nvme2"),
    );
    link(
        "../../devices/virtual/nvme-subsystem/nvme-subsys0",
        &r.join("class/nvme-subsystem/nvme-subsys0"),
    );
    let got = subsystem_namespaces(r, "nvme0n1").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        names(got),
        [
            ("nvme0n1".to_string(), 3),
            ("nvme2n1".to_string(), 3),
            ("nvme2n2".to_string(), 5)
        ]
    );
}

#[test]
fn multipath_subsystem_lists_heads_not_hidden_paths() {
    let t = multipath_tree();
    let r = t.path();
    let sub = r.join("devices/virtual/nvme-subsystem/nvme-subsys0");
    write(&sub.join("nvme0n2/nsid"), "2\n");
    // Per-path disks live under the controllers, hidden.
    let c0 = r.join("devices/pci0000:00/0000:00:04.0/nvme/nvme0");
    write(&c0.join("nvme0c0n1/nsid"), "1\n");
    write(&c0.join("nvme0c0n1/hidden"), "1\n");
    let got = subsystem_namespaces(r, "nvme0n1").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        names(got),
        [("nvme0n1".to_string(), 1), ("nvme0n2".to_string(), 2)]
    );
    assert!(matches!(
        subsystem_namespaces(r, "nvme9n9"),
        Err(TopologyError::Io { .. })
    ));
}

#[test]
fn garbage_nsid_is_a_parse_error() {
    let t = multipath_tree();
    let sub = t.path().join("devices/virtual/nvme-subsystem/nvme-subsys0");
    write(&sub.join("nvme0n2/nsid"), "two\n");
    assert!(matches!(
        subsystem_namespaces(t.path(), "nvme0n1"),
        Err(TopologyError::Parse { .. })
    ));
}
