//! Interactive confirmation before a destructive job.
//!
//! The operator must type the device's serial number or its exact size in
//! bytes: a habit-proof check that they are looking at the right drive.

use crate::identity::DeviceIdentity;
use std::io::BufRead;

/// Whether `answer` confirms `dev`.
pub fn accepts(dev: &DeviceIdentity, answer: &str) -> bool {
    let answer = answer.trim();
    if answer.is_empty() {
        return false;
    }
    let serial_ok = dev
        .serial
        .as_deref()
        .is_some_and(|s| !s.trim().is_empty() && s.trim() == answer);
    serial_ok || answer == dev.size_bytes.to_string()
}

/// The prompt shown before reading the answer.
pub fn prompt(dev: &DeviceIdentity) -> String {
    let what = match dev.serial.as_deref() {
        Some(s) if !s.trim().is_empty() => format!(
            "its serial number ({s}) or its size in bytes ({})",
            dev.size_bytes
        ),
        _ => format!("its size in bytes ({})", dev.size_bytes),
    };
    format!(
        "ALL DATA on {} will be destroyed.\nTo confirm, type {what}: ",
        dev.label()
    )
}

/// Read one line from `input` and check it.
pub fn ask(dev: &DeviceIdentity, input: &mut dyn BufRead) -> std::io::Result<bool> {
    let mut line = String::new();
    input.read_line(&mut line)?;
    Ok(accepts(dev, &line))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(serial: Option<&str>) -> DeviceIdentity {
        DeviceIdentity {
            path: "/dev/loop7".into(),
            stable_id: None,
            transport: "loop".into(),
            manufacturer: None,
            model: None,
            serial: serial.map(Into::into),
            wwn: None,
            firmware: None,
            size_bytes: 268_439_552,
            logical_sector: 512,
            physical_sector: 512,
            rotational: None,
            removable: None,
            media_type: "unknown".into(),
        }
    }

    #[test]
    fn serial_or_exact_size_confirms() {
        assert!(accepts(&dev(Some("WD-123")), "WD-123\n"));
        assert!(accepts(&dev(Some("WD-123")), " 268439552 "));
        assert!(accepts(&dev(None), "268439552"));
        assert!(!accepts(&dev(None), ""));
        assert!(!accepts(&dev(Some("")), ""));
        assert!(!accepts(&dev(Some("WD-123")), "yes"));
        assert!(!accepts(&dev(Some("WD-123")), "268439551"));
        let mut input: &[u8] = b"WD-123\n";
        assert!(ask(&dev(Some("WD-123")), &mut input).unwrap());
        assert!(prompt(&dev(None)).contains("268439552"));
    }
}
