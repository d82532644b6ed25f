//! The identity of the device a job works on, as recorded in the job store
//! and on the certificate. `--resume` refuses a device whose identity changed.

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
}

impl DeviceIdentity {
    /// Why `other` is not the same device, if it is not.
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
        if self.stable_id != other.stable_id {
            return Some(field("stable id", &self.stable_id, &other.stable_id));
        }
        None
    }

    /// A short label for prompts and summaries.
    pub fn label(&self) -> String {
        let model = self.model.as_deref().unwrap_or("unknown model");
        let serial = self.serial.as_deref().unwrap_or("no serial");
        format!(
            "{} ({model}, serial {serial}, {} bytes, {})",
            self.path, self.size_bytes, self.transport
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> DeviceIdentity {
        DeviceIdentity {
            path: "/dev/disk/by-id/ata-X_S1".into(),
            stable_id: Some("ata-X_S1".into()),
            transport: "sata".into(),
            manufacturer: None,
            model: Some("X".into()),
            serial: Some("S1".into()),
            wwn: None,
            firmware: None,
            size_bytes: 1 << 30,
            logical_sector: 512,
            physical_sector: 4096,
            rotational: Some(true),
            removable: Some(false),
            media_type: "magnetic".into(),
        }
    }

    #[test]
    fn path_may_change_but_serial_and_size_may_not() {
        let a = id();
        let mut b = id();
        b.path = "/dev/disk/by-path/pci-0000:00:17.0-ata-2".into();
        assert_eq!(a.mismatch(&b), None);
        b.serial = Some("S2".into());
        assert!(a.mismatch(&b).unwrap().contains("serial"));
        let mut c = id();
        c.size_bytes += 512;
        assert!(a.mismatch(&c).unwrap().contains("size"));
    }
}
