//! Identity of a device: transport, vendor/model/serial, media type and the
//! `/dev/disk/by-id` style stable name, from sysfs attributes and udev
//! properties (udev wins when present).

use super::{DeviceRecord, Drive, PartitionInfo, Transport};

fn clean(s: Option<&String>) -> Option<String> {
    let t = s?.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// Transport from udev (preferred) or the sysfs path.
pub fn transport(r: &DeviceRecord) -> Transport {
    let p = r.sys_path.as_str();
    if r.name.starts_with("loop") || p.contains("/virtual/block/loop") {
        return Transport::Loop;
    }
    if r.name.starts_with("zram") {
        return Transport::Zram;
    }
    if r.name.starts_with("dm-") {
        return Transport::DeviceMapper;
    }
    if r.name.starts_with("md") && p.contains("/virtual/") {
        return Transport::Md;
    }
    let bus = r.udev.get("ID_BUS").map(String::as_str);
    let id_path = r.udev.get("ID_PATH").map(String::as_str).unwrap_or("");
    if bus == Some("usb") || p.contains("/usb") {
        return Transport::Usb;
    }
    if r.name.starts_with("nvme") || p.contains("/nvme/") || bus == Some("nvme") {
        return Transport::Nvme;
    }
    if r.name.starts_with("mmcblk") || p.contains("/mmc_host/") {
        return Transport::Mmc;
    }
    if r.name.starts_with("vd") || p.contains("/virtio") {
        return Transport::Virtio;
    }
    if id_path.contains("-sas-") || p.contains("/end_device-") || p.contains("/expander-") {
        return Transport::Sas;
    }
    if bus == Some("ata") || p.contains("/ata") {
        return Transport::Sata;
    }
    if bus == Some("scsi") || p.contains("/host") {
        return Transport::Scsi;
    }
    Transport::Unknown
}

/// udev's own escaping for `/dev/disk/by-id` names: spaces become `_`.
fn by_id_part(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| {
            if c.is_whitespace() || c == '/' {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// Vendor from the model string of ATA drives (libata reports vendor "ATA").
fn vendor_from_model(model: &str) -> Option<String> {
    const PREFIXES: &[(&str, &str)] = &[
        ("WDC", "Western Digital"),
        ("ST", "Seagate"),
        ("Samsung", "Samsung"),
        ("SAMSUNG", "Samsung"),
        ("TOSHIBA", "Toshiba"),
        ("HGST", "HGST"),
        ("Hitachi", "Hitachi"),
        ("INTEL", "Intel"),
        ("Crucial", "Crucial"),
        ("CT", "Crucial"),
        ("KINGSTON", "Kingston"),
        ("Micron", "Micron"),
        ("MTFD", "Micron"),
        ("SanDisk", "SanDisk"),
        ("FUJITSU", "Fujitsu"),
        ("Maxtor", "Maxtor"),
        ("QEMU", "QEMU"),
    ];
    let first = model.split_whitespace().next()?;
    PREFIXES
        .iter()
        .find(|(p, _)| first.starts_with(p))
        .map(|(_, v)| v.to_string())
}

/// Card manufacturer from the MMC/SD CID `manfid` (JEDEC/SD-3C assigned ids
/// as listed by the kernel's mmc quirks and common card databases).
pub(crate) fn mmc_vendor(manfid: &str) -> Option<String> {
    let id = u32::from_str_radix(manfid.trim().trim_start_matches("0x"), 16).ok()?;
    let v = match id {
        0x01 => "Panasonic",
        0x02 => "Toshiba",
        0x03 => "SanDisk",
        0x11 => "Toshiba",
        0x13 => "Micron",
        0x15 | 0x1b => "Samsung",
        0x1d => "ADATA",
        0x27 => "Phison",
        0x28 => "Lexar",
        0x41 => "Kingston",
        0x45 => "SanDisk",
        0x70 => "Kingston",
        0x74 => "Transcend",
        0x90 => "SK Hynix",
        _ => return None,
    };
    Some(v.to_string())
}

/// Classify a record (identity only; protection comes from [`evaluate`]).
pub fn classify(r: &DeviceRecord) -> Drive {
    let t = transport(r);
    let attr = |k: &str| clean(r.attrs.get(k));
    let prop = |k: &str| clean(r.udev.get(k));
    // MMC/SD cards name themselves in `name` (udev ID_NAME), not `model`.
    let model = prop("ID_MODEL")
        .map(|m| m.replace('_', " "))
        .or_else(|| attr("device/model"))
        .or_else(|| prop("ID_NAME"))
        .or_else(|| attr("device/name"));
    // For SCSI/SAS disks udev's ID_SERIAL_SHORT is often the WWN; the unit
    // serial number (VPD page 0x80) is ID_SCSI_SERIAL.
    let serial = prop("ID_SCSI_SERIAL")
        .or_else(|| prop("ID_SERIAL_SHORT"))
        .or_else(|| attr("device/serial"))
        .or_else(|| attr("serial"));
    let firmware = prop("ID_REVISION")
        .or_else(|| attr("device/firmware_rev"))
        .or_else(|| attr("device/rev"));
    let wwn = prop("ID_WWN_WITH_EXTENSION")
        .or_else(|| prop("ID_WWN"))
        .or_else(|| attr("wwid").filter(|w| w.starts_with("naa.") || w.starts_with("eui.")))
        .or_else(|| attr("device/wwid").filter(|w| w.starts_with("naa.") || w.starts_with("eui.")));
    let mut vendor = prop("ID_VENDOR").or_else(|| attr("device/vendor"));
    if vendor.as_deref().is_some_and(|v| v == "ATA") || vendor.is_none() {
        vendor = model
            .as_deref()
            .and_then(vendor_from_model)
            .or(vendor.filter(|v| v != "ATA"));
    }
    // virtio-blk's `device/vendor` is the PCI vendor id of virtio devices.
    if t == Transport::Virtio && vendor.as_deref() == Some("0x1af4") {
        vendor = Some("Red Hat (virtio)".into());
    }
    if vendor.is_none() && t == Transport::Mmc {
        vendor = attr("device/manfid").and_then(|m| mmc_vendor(&m));
    }
    // Virtual devices have no model string; name what they are rather than
    // leave the certificate's model blank.
    let model = model.or(match t {
        Transport::Loop => Some("Linux loop device".to_string()),
        Transport::Zram => Some("Linux zram device".to_string()),
        Transport::Virtio => Some("virtio block device".to_string()),
        _ => None,
    });
    let size = attr("size")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0)
        * 512;
    let logical = attr("queue/logical_block_size")
        .and_then(|s| s.parse().ok())
        .unwrap_or(512);
    let physical = attr("queue/physical_block_size")
        .and_then(|s| s.parse().ok())
        .unwrap_or(logical);
    let rotational = attr("queue/rotational").map(|s| s == "1");
    let removable = attr("removable").map(|s| s == "1");
    let read_only = attr("ro").is_some_and(|s| s == "1");
    let media_type = match (t, rotational) {
        (Transport::Loop | Transport::Zram | Transport::DeviceMapper | Transport::Md, _) => {
            "unknown"
        }
        (Transport::Virtio, _) => "unknown",
        // usb-storage reports every stick as rotational; a removable USB
        // disk is a flash stick or card reader.
        (Transport::Usb, _) if removable == Some(true) => "flash",
        (_, Some(true)) => "magnetic",
        (_, Some(false)) => "flash",
        (_, None) => "unknown",
    };
    let stable_id = stable_id(r, t, model.as_deref(), serial.as_deref(), wwn.as_deref());
    let mut signatures = Vec::new();
    if let Some(fs) = &r.fs_type {
        signatures.push(fs.clone());
    }
    let mut warnings = Vec::new();
    for sig in signatures
        .iter()
        .chain(r.partitions.iter().filter_map(|p| p.fs_type.as_ref()))
    {
        if matches!(
            sig.as_str(),
            "linux_raid_member"
                | "LVM2_member"
                | "zfs_member"
                | "ddf_raid_member"
                | "isw_raid_member"
        ) && r.holders.is_empty()
        {
            warnings.push(format!(
                "carries a {sig} signature but is not assembled on this machine"
            ));
        }
    }
    if let Some(e) = &r.probe_error {
        // Probe errors start with the device path; the reader already knows it.
        let e = e
            .strip_prefix(r.devnode.as_str())
            .and_then(|x| x.strip_prefix(": "))
            .unwrap_or(e);
        warnings.push(format!("partition/filesystem probe failed: {e}"));
    }
    Drive {
        path: if r.devnode.is_empty() {
            format!("/dev/{}", r.name)
        } else {
            r.devnode.clone()
        },
        name: r.name.clone(),
        stable_id,
        transport: t,
        vendor,
        model,
        serial,
        firmware,
        wwn,
        size_bytes: size,
        logical_sector: logical,
        physical_sector: physical,
        rotational,
        removable,
        read_only,
        media_type: media_type.into(),
        partition_table: r.partition_table.clone(),
        signatures,
        partitions: r
            .partitions
            .iter()
            .map(|p| PartitionInfo {
                name: p.name.clone(),
                number: p.number,
                size_bytes: p.size_bytes,
                start_sector: p.start_sector,
                part_type: p.part_type.clone(),
                fs_type: p.fs_type.clone(),
                label: p.label.clone(),
                uuid: p.uuid.clone(),
            })
            .collect(),
        protected: false,
        reasons: Vec::new(),
        warnings,
    }
}

fn stable_id(
    r: &DeviceRecord,
    t: Transport,
    model: Option<&str>,
    serial: Option<&str>,
    wwn: Option<&str>,
) -> Option<String> {
    // udev's own links, most specific first.
    let pick = |prefix: &str| {
        r.devlinks
            .iter()
            .filter_map(|l| l.strip_prefix("disk/by-id/"))
            .find(|l| l.starts_with(prefix) && !l.contains("-part"))
            .map(str::to_string)
    };
    for prefix in [
        "ata-", "nvme-eui", "nvme-", "scsi-", "usb-", "mmc-", "virtio-", "wwn-",
    ] {
        if let Some(l) = pick(prefix) {
            return Some(l);
        }
    }
    let ms = |pre: &str| match (model, serial) {
        (Some(m), Some(s)) => Some(format!("{pre}-{}_{}", by_id_part(m), by_id_part(s))),
        _ => None,
    };
    match t {
        Transport::Sata => ms("ata"),
        Transport::Nvme => ms("nvme"),
        // usb_id: `usb-VENDOR_MODEL_SERIAL-TARGET:LUN`.
        Transport::Usb => {
            let vendor =
                clean(r.udev.get("ID_VENDOR")).or_else(|| clean(r.attrs.get("device/vendor")));
            match (vendor, model, serial) {
                (Some(v), Some(m), Some(s)) => Some(format!(
                    "usb-{}_{}_{}-{}",
                    by_id_part(&v),
                    by_id_part(m),
                    by_id_part(s),
                    scsi_instance(&r.sys_path).unwrap_or_else(|| "0:0".into())
                )),
                _ => ms("usb"),
            }
        }
        Transport::Mmc => ms("mmc"),
        Transport::Virtio => serial.map(|s| format!("virtio-{}", by_id_part(s))),
        Transport::Loop => r
            .attrs
            .get("loop/backing_file")
            .map(|b| format!("loop-backing:{}", b.trim())),
        _ => wwn.map(wwn_link).or_else(|| ms("scsi")),
    }
}

/// `wwn-0x…` the way udev names it, from either `0x…` (udev) or a sysfs
/// `naa.…` wwid.
pub(crate) fn wwn_link(w: &str) -> String {
    match w.strip_prefix("naa.") {
        Some(hex) => format!("wwn-0x{}", hex.to_ascii_lowercase()),
        None => format!("wwn-{w}"),
    }
}

/// The `TARGET:LUN` of the SCSI device in a sysfs path (`…/6:0:0:0/block/sdc`).
pub(crate) fn scsi_instance(sys_path: &str) -> Option<String> {
    sys_path.split('/').rev().find_map(|c| {
        let n: Vec<&str> = c.split(':').collect();
        (n.len() == 4
            && n.iter()
                .all(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit())))
        .then(|| format!("{}:{}", n[2], n[3]))
    })
}
