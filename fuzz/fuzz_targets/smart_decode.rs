//! Drive health pages come from whatever drive (or USB bridge) is plugged in:
//! the SMART, NVMe health log and SCSI log page decoders must never panic.
#![no_main]

use lethe_cmds::smart::{ata, nvme, scsi};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (a, b) = data.split_at(data.len() / 2);
    if let Ok(attrs) = ata::decode(a, Some(b)) {
        let _ = ata::health(&attrs, None, false);
    }
    if let Ok(log) = nvme::SmartLog::decode(data) {
        let _ = log.health();
    }
    if let Ok(page) = scsi::LogPage::decode(data) {
        let mut s = scsi::ScsiHealth::default();
        s.absorb(&page);
        let _ = s.health();
    }
    let _ = scsi::LogPage::supported_pages(data);
    let _ = scsi::decode_defect_count(data);
});
