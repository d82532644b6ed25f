//! Arbitrary bytes as a drive's answers: sense data (fixed, descriptor, the
//! ATA Status Return and another-progress descriptors), ATA PASS-THROUGH
//! results in either fixed layout, IDENTIFY DEVICE and NVMe Identify data.
//! Nothing may panic, and a decoded descriptor sense must re-encode to itself.
#![no_main]
use lethe_cmds::ata::{self, IdentifyDevice};
use lethe_cmds::nvme::{IdentifyController, IdentifyNamespace, SanitizeLog};
use lethe_cmds::scsi::{ata_outcome, Sense, SenseFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = Sense::decode(data) {
        let _ = s.is_sanitize_in_progress();
        let _ = s.sanitize_progress();
        if s.format == SenseFormat::Descriptor {
            assert_eq!(Sense::decode(&s.encode()), Ok(s));
        }
    }
    let o = ata_outcome(2, data);
    let _ = o.failed();
    let _ = o.registers_for(&ata::read_native_max_ext());
    let _ = o.registers_for(&ata::identify_device());
    let _ = IdentifyDevice::decode(data);
    let _ = ata::decode_dco_identify(data);
    let _ = IdentifyController::decode(data);
    let _ = IdentifyNamespace::decode(data);
    let _ = SanitizeLog::decode(data);
});
