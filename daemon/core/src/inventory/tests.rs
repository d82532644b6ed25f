//! Classification and protection against fixtures shaped like real sysfs and
//! udev data (the JSON fixtures in `tests/fixtures` were recorded on real
//! machines by `lethe-linux`; these inline ones follow the same layouts).

use super::*;
use proptest::prelude::*;

fn rec(name: &str, sys_path: &str, attrs: &[(&str, &str)], udev: &[(&str, &str)]) -> DeviceRecord {
    DeviceRecord {
        name: name.into(),
        devnode: format!("/dev/{name}"),
        devnum: Some(DevNum { major: 8, minor: 0 }),
        sys_path: sys_path.into(),
        attrs: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        udev: udev
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

fn sata_hdd() -> DeviceRecord {
    rec(
        "sda",
        "/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda",
        &[
            ("size", "7814037168"),
            ("queue/logical_block_size", "512"),
            ("queue/physical_block_size", "4096"),
            ("queue/rotational", "1"),
            ("removable", "0"),
            ("ro", "0"),
            ("device/vendor", "ATA     "),
            ("device/model", "ST4000VN008-2DR1"),
            ("device/rev", "SC60"),
            (
                "device/wwid",
                "t10.ATA     ST4000VN008-2DR166                      ZGY5ABCD",
            ),
        ],
        &[],
    )
}

#[test]
fn sata_hdd_without_udev() {
    let d = classify(&sata_hdd());
    assert_eq!(d.transport, Transport::Sata);
    assert_eq!(d.model.as_deref(), Some("ST4000VN008-2DR1"));
    assert_eq!(d.vendor.as_deref(), Some("Seagate"));
    assert_eq!(d.firmware.as_deref(), Some("SC60"));
    assert_eq!(d.size_bytes, 4_000_787_030_016);
    assert_eq!((d.logical_sector, d.physical_sector), (512, 4096));
    assert_eq!(d.media_type, "magnetic");
    assert_eq!(d.wwn, None, "a t10 wwid is not a WWN");
}

#[test]
fn sata_ssd_with_udev_uses_its_properties_and_links() {
    let mut r = rec(
        "sdb",
        "/devices/pci0000:00/0000:00:1f.2/ata2/host1/target1:0:0/1:0:0:0/block/sdb",
        &[
            ("size", "976773168"),
            ("queue/rotational", "0"),
            ("removable", "0"),
        ],
        &[
            ("ID_BUS", "ata"),
            ("ID_MODEL", "Samsung_SSD_860_EVO_500GB"),
            ("ID_SERIAL_SHORT", "S3Z1NB0K123456A"),
            ("ID_REVISION", "RVT01B6Q"),
            ("ID_WWN", "0x5002538e40a1b2c3"),
            ("ID_PATH", "pci-0000:00:1f.2-ata-2"),
        ],
    );
    r.devlinks = vec![
        "disk/by-path/pci-0000:00:1f.2-ata-2".into(),
        "disk/by-id/wwn-0x5002538e40a1b2c3".into(),
        "disk/by-id/ata-Samsung_SSD_860_EVO_500GB_S3Z1NB0K123456A".into(),
    ];
    let d = classify(&r);
    assert_eq!(d.transport, Transport::Sata);
    assert_eq!(d.model.as_deref(), Some("Samsung SSD 860 EVO 500GB"));
    assert_eq!(d.serial.as_deref(), Some("S3Z1NB0K123456A"));
    assert_eq!(d.wwn.as_deref(), Some("0x5002538e40a1b2c3"));
    assert_eq!(
        d.stable_id.as_deref(),
        Some("ata-Samsung_SSD_860_EVO_500GB_S3Z1NB0K123456A")
    );
    assert_eq!(d.vendor.as_deref(), Some("Samsung"));
    assert_eq!(d.media_type, "flash");
}

#[test]
fn nvme_namespace() {
    let r = rec(
        "nvme0n1",
        "/devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0/nvme0n1",
        &[
            ("size", "1000215216"),
            ("queue/rotational", "0"),
            ("device/model", "Samsung SSD 980 PRO 1TB                 "),
            ("device/serial", "S5GXNF0R123456W     "),
            ("device/firmware_rev", "5B2QGXA7"),
            ("wwid", "eui.002538b111b2c3d4"),
        ],
        &[],
    );
    let d = classify(&r);
    assert_eq!(d.transport, Transport::Nvme);
    assert_eq!(d.serial.as_deref(), Some("S5GXNF0R123456W"));
    assert_eq!(d.wwn.as_deref(), Some("eui.002538b111b2c3d4"));
    assert_eq!(
        d.stable_id.as_deref(),
        Some("nvme-Samsung_SSD_980_PRO_1TB_S5GXNF0R123456W")
    );
}

#[test]
fn usb_stick_behind_usb_storage() {
    let r = rec(
        "sdc",
        "/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdc",
        &[
            ("size", "60437492"),
            ("queue/rotational", "1"),
            ("removable", "1"),
            ("device/vendor", "SanDisk "),
            ("device/model", "Ultra           "),
        ],
        &[
            ("ID_BUS", "usb"),
            ("ID_SERIAL_SHORT", "4C530001230815115193"),
        ],
    );
    let d = classify(&r);
    assert_eq!(d.transport, Transport::Usb);
    assert_eq!(d.removable, Some(true));
    assert_eq!(d.vendor.as_deref(), Some("SanDisk"));
    assert_eq!(
        d.stable_id.as_deref(),
        Some("usb-SanDisk_Ultra_4C530001230815115193-0:0")
    );
}

#[test]
fn sas_disk_behind_an_hba() {
    let r = rec(
        "sdd",
        "/devices/pci0000:00/0000:00:01.0/0000:01:00.0/host0/port-0:0/end_device-0:0/target0:0:0/0:0:0:0/block/sdd",
        &[("size", "23437770752"), ("queue/rotational", "1"), ("device/vendor", "SEAGATE "), ("device/model", "ST12000NM0027   "), ("wwid", "naa.5000c500a1b2c3d4")],
        &[],
    );
    let d = classify(&r);
    assert_eq!(d.transport, Transport::Sas);
    assert_eq!(d.wwn.as_deref(), Some("naa.5000c500a1b2c3d4"));
    assert_eq!(d.stable_id.as_deref(), Some("wwn-0x5000c500a1b2c3d4"));
}

#[test]
fn mmc_virtio_loop_zram() {
    let mmc = rec(
        "mmcblk0",
        "/devices/platform/soc/fe340000.mmc/mmc_host/mmc0/mmc0:0001/block/mmcblk0",
        &[
            ("size", "62333952"),
            ("device/serial", "0x1234abcd"),
            ("device/name", "SD64G"),
        ],
        &[],
    );
    assert_eq!(classify(&mmc).transport, Transport::Mmc);
    let vd = rec(
        "vda",
        "/devices/pci0000:00/0000:00:04.0/virtio1/block/vda",
        &[("size", "536870912"), ("serial", "disk01")],
        &[],
    );
    let d = classify(&vd);
    assert_eq!(
        (d.transport, d.stable_id.as_deref()),
        (Transport::Virtio, Some("virtio-disk01"))
    );
    let lo = rec(
        "loop3",
        "/devices/virtual/block/loop3",
        &[("size", "524296"), ("loop/backing_file", "/tmp/x.img")],
        &[],
    );
    let d = classify(&lo);
    assert_eq!((d.transport, d.size_bytes), (Transport::Loop, 268_439_552));
    assert_eq!(d.stable_id.as_deref(), Some("loop-backing:/tmp/x.img"));
    // Certificates name virtual devices instead of leaving the model blank.
    assert_eq!(d.model.as_deref(), Some("Linux loop device"));
    assert_eq!(
        classify(&rec("zram0", "/devices/virtual/block/zram0", &[], &[])).transport,
        Transport::Zram
    );
}

fn facts_with_mount(devnum: DevNum, mp: &str) -> SystemFacts {
    SystemFacts {
        mounts: vec![MountEntry {
            devnum,
            mountpoint: mp.into(),
            fs_type: "ext4".into(),
            source: "/dev/x".into(),
        }],
        ..Default::default()
    }
}

/// safeguard: rule:protected-devices
#[test]
fn protection_reasons() {
    let mut r = sata_hdd();
    r.partitions = vec![
        PartitionRecord {
            name: "sda1".into(),
            devnum: Some(DevNum { major: 8, minor: 1 }),
            number: 1,
            ..Default::default()
        },
        PartitionRecord {
            name: "sda2".into(),
            devnum: Some(DevNum { major: 8, minor: 2 }),
            number: 2,
            holders: vec!["dm-0".into()],
            ..Default::default()
        },
    ];
    assert!(!assess(&sata_hdd(), &SystemFacts::default()).protected);

    let mut facts = facts_with_mount(DevNum { major: 8, minor: 1 }, "/mnt/old disk");
    facts.swaps.insert(DevNum { major: 8, minor: 0 });
    facts
        .system_disks
        .insert("sda".into(), ("/".into(), "dm-0".into()));
    facts.busy.insert("sda1".into());
    let d = assess(&r, &facts);
    assert!(d.protected);
    let text: Vec<String> = d.reasons.iter().map(|x| x.to_string()).collect();
    assert!(
        text.contains(&"holds the system filesystem / (via dm-0)".to_string()),
        "{text:?}"
    );
    assert!(
        text.contains(&"sda1 is mounted at /mnt/old disk".to_string()),
        "{text:?}"
    );
    assert!(
        text.contains(&"sda is in use as swap".to_string()),
        "{text:?}"
    );
    assert!(
        text.contains(&"sda2 is held by dm-0 (md/dm/LVM member)".to_string()),
        "{text:?}"
    );
    // Busy because mounted: not reported twice.
    assert!(
        !d.reasons
            .iter()
            .any(|x| matches!(x, ProtectReason::InUse { .. })),
        "{text:?}"
    );

    let mut busy = SystemFacts::default();
    busy.busy.insert("sda".into());
    assert_eq!(
        assess(&sata_hdd(), &busy).reasons,
        vec![ProtectReason::InUse { by: "sda".into() }]
    );

    let mut ro = sata_hdd();
    ro.attrs.insert("ro".into(), "1".into());
    assert_eq!(
        assess(&ro, &SystemFacts::default()).reasons,
        vec![ProtectReason::ReadOnly]
    );
}

#[test]
fn inactive_raid_signature_is_a_warning_not_a_refusal() {
    let mut r = sata_hdd();
    r.fs_type = Some("linux_raid_member".into());
    let d = assess(&r, &SystemFacts::default());
    assert!(!d.protected);
    assert!(
        d.warnings[0].contains("linux_raid_member"),
        "{:?}",
        d.warnings
    );
}

#[test]
fn udev_database_parses() {
    let text = "S:disk/by-id/ata-QEMU_HARDDISK_QM00001\nS:disk/by-path/pci-0000:00:1f.2-ata-1\nW:3\nI:2093471\nE:ID_ATA=1\nE:ID_BUS=ata\nE:ID_MODEL=QEMU_HARDDISK\nE:ID_SERIAL_SHORT=QM00001\nE:ID_FS_LABEL=a=b\nG:systemd\nQ:systemd\n";
    let (props, links) = parse_udev_db(text);
    assert_eq!(props["ID_BUS"], "ata");
    assert_eq!(props["ID_FS_LABEL"], "a=b");
    assert_eq!(
        links,
        vec![
            "disk/by-id/ata-QEMU_HARDDISK_QM00001",
            "disk/by-path/pci-0000:00:1f.2-ata-1"
        ]
    );
}

#[test]
fn mountinfo_parses_optional_fields_and_escapes() {
    let text = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
35 22 7:3 / /mnt/with\\040space rw,relatime shared:5 master:1 - ext4 /dev/loop3 rw
40 22 0:45 / /proc rw - proc proc rw
garbage line
";
    let m = parse_mountinfo(text);
    assert_eq!(m.len(), 3);
    assert_eq!(
        m[0].devnum,
        DevNum {
            major: 254,
            minor: 0
        }
    );
    assert_eq!(m[0].mountpoint, "/");
    assert_eq!(m[1].mountpoint, "/mnt/with space");
    assert_eq!(
        (m[1].fs_type.as_str(), m[1].source.as_str()),
        ("ext4", "/dev/loop3")
    );
    assert_eq!(m[2].fs_type, "proc");
}

#[test]
fn swaps_parse() {
    let text = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/zram0                              partition\t8388604\t\t0\t\t100\n/swap\\040file file 1 0 -2\n";
    assert_eq!(
        parse_swaps(text),
        vec!["/dev/zram0".to_string(), "/swap file".to_string()]
    );
}

#[test]
fn table_lists_protection() {
    let mut facts = SystemFacts::default();
    facts
        .system_disks
        .insert("sda".into(), ("/".into(), "sda2".into()));
    let t = render_table(&[assess(&sata_hdd(), &facts)]);
    let lines: Vec<&str> = t.lines().collect();
    assert!(lines[0].starts_with("PATH"));
    let node = format!("/dev/{}", sata_hdd().name);
    assert!(
        lines[1].contains(&node)
            && lines[1].contains("3.6 TiB")
            && lines[1].contains("YES (system)"),
        "{t}"
    );
    assert_eq!(human_size(512), "512 B");
    assert_eq!(human_size(268_439_552), "256.0 MiB");
}

/// Every fixture's `expect` object lists fields of the classified [`Drive`]
/// (by their JSON names) that must come out exactly so.
#[test]
fn recorded_fixtures_classify() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut seen = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let r: DeviceRecord = serde_json::from_value(v["record"].clone()).unwrap();
        let d = serde_json::to_value(classify(&r)).unwrap();
        let expect = v["expect"].as_object().unwrap();
        assert!(expect.contains_key("transport"), "{}", p.display());
        for (k, want) in expect {
            assert_eq!(&d[k], want, "{}: field {k}", p.display());
        }
        // The record round-trips through JSON unchanged.
        let again: DeviceRecord =
            serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(again, r);
        seen.push(d["transport"].as_str().unwrap().to_string());
    }
    seen.sort();
    seen.dedup();
    for t in [
        "sata", "sas", "nvme", "usb", "mmc", "virtio", "loop", "zram",
    ] {
        assert!(
            seen.iter().any(|s| s == t),
            "no {t} fixture in {}",
            dir.display()
        );
    }
}

#[test]
fn by_id_helpers_follow_udev() {
    assert_eq!(
        scsi_instance(
            "/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:1:2/block/sdc"
        )
        .as_deref(),
        Some("1:2")
    );
    assert_eq!(scsi_instance("/devices/virtual/block/loop0"), None);
    assert_eq!(scsi_instance("/a/1:2:3/b"), None);
    assert_eq!(wwn_link("naa.5000C500A1B2C3D4"), "wwn-0x5000c500a1b2c3d4");
    assert_eq!(wwn_link("0x5002538e40a1b2c3"), "wwn-0x5002538e40a1b2c3");
    assert_eq!(mmc_vendor("0x000003").as_deref(), Some("SanDisk"));
    assert_eq!(mmc_vendor("0x00001b").as_deref(), Some("Samsung"));
    assert_eq!(mmc_vendor("0xzz"), None);
    assert_eq!(mmc_vendor("0x0000ee"), None);
}

proptest! {
    #[test]
    fn parsers_never_panic(s in "\\PC{0,300}") {
        let _ = parse_udev_db(&s);
        let _ = parse_mountinfo(&s);
        let _ = parse_swaps(&s);
        let _ = DevNum::parse(&s);
        let _ = scsi_instance(&s);
        let _ = mmc_vendor(&s);
    }

    #[test]
    fn mountinfo_escape_round_trip(name in "[a-z \\t\\\\]{1,20}") {
        let esc: String = name.chars().map(|c| match c {
            ' ' => "\\040".to_string(), '\t' => "\\011".to_string(), '\\' => "\\134".to_string(), c => c.to_string()
        }).collect();
        let line = format!("1 1 7:1 / /mnt/{esc} rw - ext4 /dev/loop1 rw");
        let m = parse_mountinfo(&line);
        prop_assert_eq!(m[0].mountpoint.clone(), format!("/mnt/{name}"));
    }
}

/// The `--json` field names are an interface: they must match the module docs.
#[test]
fn drive_json_field_names_are_stable() {
    let mut d = classify(&sata_hdd());
    d.reasons = vec![ProtectReason::Mounted {
        by: "sda1".into(),
        mountpoint: "/mnt/x".into(),
    }];
    let v = serde_json::to_value(&d).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = vec![
        "path",
        "name",
        "stable_id",
        "transport",
        "vendor",
        "model",
        "serial",
        "firmware",
        "wwn",
        "size_bytes",
        "logical_sector",
        "physical_sector",
        "rotational",
        "removable",
        "read_only",
        "media_type",
        "partition_table",
        "signatures",
        "partitions",
        "protected",
        "reasons",
        "warnings",
    ];
    want.sort_unstable();
    let mut got = keys.clone();
    got.sort_unstable();
    assert_eq!(got, want);
    assert_eq!(v["transport"], "sata");
    assert_eq!(
        v["reasons"][0],
        serde_json::json!({"reason": "mounted", "by": "sda1", "mountpoint": "/mnt/x"})
    );
    assert_eq!(
        serde_json::to_value(Transport::DeviceMapper).unwrap(),
        "device_mapper"
    );
}

#[test]
fn probe_errors_become_warnings_without_the_path_twice() {
    let mut r = sata_hdd();
    r.probe_error = Some("/dev/sda: libblkid could not open it (Permission denied)".into());
    let d = classify(&r);
    assert_eq!(
        d.warnings,
        vec!["partition/filesystem probe failed: libblkid could not open it (Permission denied)"]
    );
    assert!(!d.protected, "a failed probe alone does not protect");
}

fn loop_rec(name: &str, minor: u32, backing: Option<DevNum>) -> DeviceRecord {
    let mut r = rec(
        name,
        &format!("/devices/virtual/block/{name}"),
        &[("size", "16384")],
        &[],
    );
    r.devnum = Some(DevNum { major: 7, minor });
    r.loop_backing = Some(LoopBacking {
        file: FileId {
            dev: DevNum { major: 0, minor: 5 },
            ino: 100 + u64::from(minor),
        },
        block: backing,
    });
    r
}

fn with_partition(mut r: DeviceRecord, name: &str, devnum: DevNum) -> DeviceRecord {
    r.partitions.push(PartitionRecord {
        name: name.into(),
        devnum: Some(devnum),
        number: 1,
        ..Default::default()
    });
    r
}

/// safeguard: rule:protected-devices
#[test]
fn a_loop_device_in_use_protects_the_device_it_is_stacked_on() {
    let sda = with_partition(sata_hdd(), "sda1", DevNum { major: 8, minor: 1 });
    let lower = loop_rec("loop3", 3, None);
    // loop4 over loop3, loop5 over sda1.
    let upper = loop_rec("loop4", 4, Some(DevNum { major: 7, minor: 3 }));
    let on_part = loop_rec("loop5", 5, Some(DevNum { major: 8, minor: 1 }));
    let records = vec![sda.clone(), lower.clone(), upper.clone(), on_part.clone()];

    // Nothing mounted: stacking alone protects nothing.
    let idle = SystemFacts::default();
    for r in &records {
        assert!(!assess_in(&records, &idle, r).protected, "{}", r.name);
    }

    // The upper loop is mounted: the lower one is protected, and says why.
    let facts = facts_with_mount(DevNum { major: 7, minor: 4 }, "/mnt/upper");
    let d = assess_in(&records, &facts, &lower);
    assert_eq!(
        d.reasons,
        vec![ProtectReason::Stacked {
            upper: "loop4".into(),
            on: "loop3".into(),
            reasons: vec![ProtectReason::Mounted {
                by: "loop4".into(),
                mountpoint: "/mnt/upper".into()
            }],
        }]
    );
    assert!(d.reasons[0]
        .to_string()
        .contains("loop4 is mounted at /mnt/upper"));
    assert_eq!(d.reasons[0].short(), "stacked");
    // Through a partition, and through two levels of stacking.
    let mut facts = facts_with_mount(DevNum { major: 7, minor: 5 }, "/srv");
    facts.busy.insert("loop4".into());
    let d = assess_in(&records, &facts, &sda);
    assert!(
        matches!(&d.reasons[..], [ProtectReason::Stacked { upper, on, .. }] if upper == "loop5" && on == "sda1"),
        "{:?}",
        d.reasons
    );
    let deep = loop_rec("loop6", 6, Some(DevNum { major: 7, minor: 4 }));
    let mut records2 = records.clone();
    records2.push(deep);
    let facts = facts_with_mount(DevNum { major: 7, minor: 6 }, "/deep");
    let d = assess_in(&records2, &facts, &lower);
    let ProtectReason::Stacked { reasons, .. } = &d.reasons[0] else {
        panic!("{:?}", d.reasons)
    };
    assert!(matches!(&reasons[0], ProtectReason::Stacked { upper, .. } if upper == "loop6"));
    // A read-only upper loop does not make the lower device busy.
    let mut ro = upper.clone();
    ro.attrs.insert("ro".into(), "1".into());
    let records3 = vec![lower.clone(), ro];
    assert!(!assess_in(&records3, &idle, &lower).protected);
}

/// safeguard: rule:protected-devices
#[test]
fn a_loop_device_over_a_protected_device_is_refused() {
    let lower = loop_rec("loop3", 3, None);
    let upper = loop_rec("loop4", 4, Some(DevNum { major: 7, minor: 3 }));
    let records = vec![lower.clone(), upper.clone()];
    let facts = facts_with_mount(DevNum { major: 7, minor: 3 }, "/data");
    let d = assess_in(&records, &facts, &upper);
    assert!(d.protected);
    assert!(
        matches!(&d.reasons[..], [ProtectReason::BackedBy { lower, .. }] if lower == "loop3"),
        "{:?}",
        d.reasons
    );
    // The lower device's record is missing: refused, never assumed idle.
    let alone = vec![upper.clone()];
    let d = assess_in(&alone, &SystemFacts::default(), &upper);
    assert!(d.protected, "{:?}", d.reasons);
    // A loop over a regular file has no lower block device.
    let file_loop = loop_rec("loop9", 9, None);
    assert!(
        !assess_in(
            std::slice::from_ref(&file_loop),
            &SystemFacts::default(),
            &file_loop
        )
        .protected
    );
}

/// safeguard: rule:protected-devices
#[test]
fn a_second_path_to_a_protected_disk_is_refused_by_wwn_or_serial() {
    let path = |name: &str, minor: u32, udev: &[(&str, &str)]| {
        let mut r = rec(
            name,
            &format!("/devices/pci0000:00/0000:00:03.0/host2/port-2:{minor}/end_device-2:{minor}/target2:0:{minor}/2:0:{minor}:0/block/{name}"),
            &[("size", "1000"), ("queue/rotational", "1")],
            udev,
        );
        r.devnum = Some(DevNum {
            major: 8,
            minor: minor * 16,
        });
        r
    };
    let wwn = [
        ("ID_WWN", "0x5000c500a1b2c3d4"),
        ("ID_MODEL", "ST1"),
        ("ID_SCSI_SERIAL", "Z1"),
    ];
    let a = path("sdb", 1, &wwn);
    let b = path("sdc", 2, &wwn);
    let other = path(
        "sdd",
        3,
        &[
            ("ID_WWN", "0x5000c500ffffffff"),
            ("ID_MODEL", "ST1"),
            ("ID_SCSI_SERIAL", "Z1"),
        ],
    );
    assert_eq!(same_disk(&a, &b).as_deref(), Some("WWN 0x5000c500a1b2c3d4"));
    assert_eq!(
        same_disk(&a, &other),
        None,
        "different WWNs are different disks"
    );
    let facts = facts_with_mount(
        DevNum {
            major: 8,
            minor: 16,
        },
        "/var/lib/pacs",
    );
    let records = vec![a.clone(), b.clone(), other.clone()];
    let d = assess_in(&records, &facts, &b);
    assert!(
        matches!(&d.reasons[..], [ProtectReason::OtherPath { path, .. }] if path == "/dev/sdb"),
        "{:?}",
        d.reasons
    );
    assert!(!assess_in(&records, &facts, &other).protected);
    // Without WWNs: model and serial together.
    let s1 = path("sde", 4, &[("ID_MODEL", "X"), ("ID_SCSI_SERIAL", "S-1")]);
    let s2 = path("sdf", 5, &[("ID_MODEL", "X"), ("ID_SCSI_SERIAL", "S-1")]);
    let s3 = path("sdg", 6, &[("ID_MODEL", "Y"), ("ID_SCSI_SERIAL", "S-1")]);
    assert!(same_disk(&s1, &s2).is_some());
    assert_eq!(same_disk(&s1, &s3), None);
    // Loop devices never match each other.
    assert_eq!(
        same_disk(&loop_rec("loop1", 1, None), &loop_rec("loop2", 2, None)),
        None
    );
    // Two namespaces of one NVMe controller share its model and serial but
    // are two devices; the same namespace id is the same device.
    let ns = |name: &str, wwid: &str| {
        rec(
            name,
            &format!("/devices/pci0000:00/0000:00:04.0/nvme/nvme0/{name}"),
            &[("size", "1000"), ("wwid", wwid)],
            &[
                ("ID_MODEL", "QEMU NVMe Ctrl"),
                ("ID_SERIAL_SHORT", "LETHE01"),
            ],
        )
    };
    let n1 = ns("nvme0n1", "nvme.1b36-4c4554484530-51454d55-00000001");
    let n2 = ns("nvme0n2", "nvme.1b36-4c4554484530-51454d55-00000002");
    assert_eq!(same_disk(&n1, &n2), None, "two namespaces, two devices");
    let head = ns("nvme1n1", "nvme.1b36-4c4554484530-51454d55-00000001");
    assert!(same_disk(&n1, &head).is_some_and(|m| m.contains("NVMe namespace")));
}

#[test]
fn loop_backing_round_trips_and_old_records_still_load() {
    let r = loop_rec("loop1", 1, Some(DevNum { major: 8, minor: 0 }));
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["loop_backing"]["block"]["major"], 8);
    let back: DeviceRecord = serde_json::from_value(v).unwrap();
    assert_eq!(back, r);
    let mut old = serde_json::to_value(sata_hdd()).unwrap();
    old.as_object_mut().unwrap().remove("loop_backing");
    assert_eq!(
        serde_json::from_value::<DeviceRecord>(old).unwrap(),
        sata_hdd()
    );
}

#[test]
fn nvme_namespaces_of_one_controller_are_not_other_paths_of_each_other() {
    let ns = |name: &str, wwid: Option<&str>| {
        let mut attrs = vec![
            ("size", "2097152"),
            ("queue/rotational", "0"),
            ("device/model", "QEMU NVMe Ctrl"),
            ("device/serial", "LETHEPURGE01"),
        ];
        if let Some(w) = wwid {
            attrs.push(("wwid", w));
        }
        rec(
            name,
            &format!("/devices/pci0000:00/0000:00:04.0/nvme/nvme0/{name}"),
            &attrs,
            &[],
        )
    };
    // Same controller serial and model, different namespaces: different media.
    assert_eq!(same_disk(&ns("nvme0n1", None), &ns("nvme0n2", None)), None);
    assert_eq!(
        same_disk(
            &ns("nvme0n1", Some("nvme.1b36-4c45-01")),
            &ns("nvme0n2", Some("nvme.1b36-4c45-02"))
        ),
        None
    );
    // The same namespace reached through a second controller is another path.
    assert!(same_disk(&ns("nvme0n1", None), &ns("nvme1n1", None)).is_some());
    assert!(same_disk(
        &ns("nvme0n1", Some("eui.0011223344556677")),
        &ns("nvme1n1", Some("eui.0011223344556677"))
    )
    .is_some());
}
