//! The identity of the device a job works on, as recorded in the job store
//! and on the certificate. A resume, and a typed confirmation, refuse a
//! device whose identity changed.

use lethe_core::inventory::{Drive, FileId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceIdentity {
    pub path: String,
    pub stable_id: Option<String>,
    pub transport: String,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub wwn: Option<String>,
    pub firmware: Option<String>,
    pub size_bytes: u64,
    pub logical_sector: u32,
    pub physical_sector: u32,
    pub rotational: Option<bool>,
    pub removable: Option<bool>,
    /// magnetic, flash, hybrid or unknown.
    pub media_type: String,
    /// For a loop device: its backing file's device and inode (what survives
    /// a rename of the file or a new loop number; a path does not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backing: Option<FileId>,
}

impl DeviceIdentity {
    /// The identity of a classified drive; `backing` from the loop device.
    pub fn of(d: &Drive, backing: Option<FileId>) -> Self {
        Self {
            path: d.path.clone(),
            stable_id: d.stable_id.clone(),
            transport: d.transport.to_string(),
            manufacturer: d.vendor.clone(),
            model: d.model.clone(),
            serial: d.serial.clone(),
            wwn: d.wwn.clone(),
            firmware: d.firmware.clone(),
            size_bytes: d.size_bytes,
            logical_sector: d.logical_sector,
            physical_sector: d.physical_sector,
            rotational: d.rotational,
            removable: d.removable,
            media_type: d.media_type.clone(),
            backing,
        }
    }

    /// Why `other` is not the same device, if it is not. The path may change
    /// (a drive gets a new name after a reconnect); size, serial, WWN and
    /// model may not. Devices without a serial are told apart by their
    /// backing file's device and inode when they have one (loop devices),
    /// never by a path.
    pub fn mismatch(&self, other: &DeviceIdentity) -> Option<String> {
        let field = |name: &str, a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| {
            format!("{name} was {a:?} when the job started, now {b:?}")
        };
        if self.size_bytes != other.size_bytes {
            return Some(field("size", &self.size_bytes, &other.size_bytes));
        }
        if self.serial != other.serial {
            return Some(field("serial", &self.serial, &other.serial));
        }
        if self.wwn != other.wwn {
            return Some(field("WWN", &self.wwn, &other.wwn));
        }
        if self.model != other.model {
            return Some(field("model", &self.model, &other.model));
        }
        match (&self.backing, &other.backing) {
            (Some(a), Some(b)) if a != b => {
                return Some(format!(
                    "backing file was {a} when the job started, now {b}"
                ))
            }
            (Some(_), Some(_)) => return None,
            (Some(a), None) => {
                return Some(format!(
                    "backing file was {a} when the job started; the device now has none"
                ))
            }
            _ => {}
        }
        if self.stable_id != other.stable_id {
            return Some(field("stable id", &self.stable_id, &other.stable_id));
        }
        None
    }

    /// A short label for prompts and summaries.
    pub fn label(&self) -> String {
        if self.transport == "tape" {
            let label = self.serial.as_deref().unwrap_or("without a label");
            return format!("tape {label} (a magnetic tape declared by the operator)");
        }
        let model = self.model.as_deref().unwrap_or("unknown model");
        let serial = match self.serial.as_deref().map(str::trim) {
            Some(s) if !s.is_empty() => format!("serial {s}"),
            _ => "no serial".to_string(),
        };
        format!(
            "{} ({model}, {serial}, {} bytes, {})",
            self.path, self.size_bytes, self.transport
        )
    }
}

#[cfg(test)]
pub(crate) fn sample(path: &str, serial: Option<&str>, size: u64) -> DeviceIdentity {
    DeviceIdentity {
        path: path.into(),
        stable_id: serial.map(|s| format!("ata-X_{s}")),
        transport: "sata".into(),
        manufacturer: None,
        model: Some("X".into()),
        serial: serial.map(Into::into),
        wwn: None,
        firmware: None,
        size_bytes: size,
        logical_sector: 512,
        physical_sector: 4096,
        rotational: Some(true),
        removable: Some(false),
        media_type: "magnetic".into(),
        backing: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lethe_core::inventory::DevNum;

    /// safeguard: 164.310(d)(2)(iii), rule:checked-device
    #[test]
    fn path_may_change_but_serial_and_size_may_not() {
        let a = sample("/dev/disk/by-id/ata-X_S1", Some("S1"), 1 << 30);
        let mut b = a.clone();
        b.path = "/dev/disk/by-path/pci-0000:00:17.0-ata-2".into();
        assert_eq!(a.mismatch(&b), None);
        b.serial = Some("S2".into());
        assert!(a.mismatch(&b).unwrap().contains("serial"));
        let mut c = a.clone();
        c.size_bytes += 512;
        assert!(a.mismatch(&c).unwrap().contains("size"));
    }

    /// safeguard: rule:checked-device
    #[test]
    fn serial_less_devices_compare_backing_file_identity_not_paths() {
        let file = |ino| FileId {
            dev: DevNum {
                major: 0,
                minor: 40,
            },
            ino,
        };
        let mut a = sample("/dev/loop3", None, 1 << 20);
        a.transport = "loop".into();
        a.stable_id = Some("loop-backing:/srv/disk.img".into());
        a.backing = Some(file(12));
        // Re-attached as another loop device, file renamed: the same device.
        let mut b = a.clone();
        b.path = "/dev/loop7".into();
        b.stable_id = Some("loop-backing:/srv/renamed.img".into());
        assert_eq!(a.mismatch(&b), None);
        // Same path and name, another file (replaced in place): not the same.
        let mut c = a.clone();
        c.backing = Some(file(13));
        assert!(
            a.mismatch(&c).unwrap().contains("backing file"),
            "{:?}",
            a.mismatch(&c)
        );
        let mut d = a.clone();
        d.backing = None;
        assert!(a.mismatch(&d).is_some());
    }

    #[test]
    fn old_stored_identities_without_backing_still_load() {
        let v = serde_json::json!({
            "path": "/dev/sdb", "stable_id": null, "transport": "sata", "manufacturer": null,
            "model": "M", "serial": "S", "wwn": null, "firmware": null, "size_bytes": 4096,
            "logical_sector": 512, "physical_sector": 512, "rotational": true,
            "removable": false, "media_type": "magnetic"
        });
        let d: DeviceIdentity = serde_json::from_value(v).unwrap();
        assert_eq!(d.backing, None);
        assert!(!serde_json::to_string(&d).unwrap().contains("backing"));
    }
}
