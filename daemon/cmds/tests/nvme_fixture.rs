//! Decode a real drive's Identify Controller (reconstructed from published
//! `nvme id-ctrl -H` output, see fixtures/nvme/README.md) and feed it to the policy.

use lethe_cmds::nvme::IdentifyController;
use lethe_cmds::nvme::SanitizeAction;
use lethe_cmds::policy::{select_method, Capabilities, Level, Method, NvmeCaps, Transport};
use serde_json::Value;
use std::path::PathBuf;

#[test]
fn samsung_pm1733_identify_controller() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nvme");
    let b = std::fs::read(dir.join("samsung_MZWLJ7T6HALA-00AU3.id-ctrl.bin")).expect("bin");
    let e: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).expect("json"))
            .expect("parse");
    let c = IdentifyController::decode(&b).expect("decode");
    assert_eq!(Some(u64::from(c.vid)), e["vid"].as_u64());
    assert_eq!(Some(c.serial.as_str()), e["sn"].as_str());
    assert_eq!(Some(c.model.as_str()), e["mn"].as_str());
    assert_eq!(Some(c.firmware.as_str()), e["fr"].as_str());
    assert_eq!(Some(u64::from(c.cntlid)), e["cntlid"].as_u64());
    assert_eq!(Some(u64::from(c.version)), e["ver"].as_u64());
    assert_eq!(Some(u64::from(c.oacs)), e["oacs"].as_u64());
    assert_eq!(Some(c.tnvmcap), e["tnvmcap"].as_u64());
    assert_eq!(Some(u64::from(c.sanicap.raw)), e["sanicap"].as_u64());
    assert_eq!(Some(u64::from(c.nn)), e["nn"].as_u64());
    assert_eq!(Some(u64::from(c.fna)), e["fna"].as_u64());
    assert_eq!(Some(c.format_supported()), e["format_supported"].as_bool());
    assert_eq!(
        Some(c.security_send_receive()),
        e["security_send_receive"].as_bool()
    );
    assert_eq!(Some(c.sanicap.crypto_erase), e["crypto_erase"].as_bool());
    assert_eq!(Some(c.sanicap.block_erase), e["block_erase"].as_bool());
    assert_eq!(Some(c.sanicap.overwrite), e["overwrite"].as_bool());
    assert_eq!(
        Some(c.format_crypto_erase()),
        e["format_crypto_erase"].as_bool()
    );
    assert_eq!(
        Some(c.format_all_namespaces()),
        e["format_all_namespaces"].as_bool()
    );

    let caps = Capabilities {
        transport: Transport::Nvme,
        rotational: Some(false),
        removable_flash: false,
        ata: None,
        nvme: Some(NvmeCaps {
            sanicap: c.sanicap,
            format_supported: c.format_supported(),
            format_crypto: c.format_crypto_erase(),
            format_all_namespaces: c.format_all_namespaces(),
            secure_erase_all_namespaces: c.secure_erase_all_namespaces(),
        }),
        scsi: None,
    };
    let choice = select_method(&caps, Level::Purge);
    assert_eq!(
        choice.method,
        Method::NvmeSanitize(SanitizeAction::CryptoErase)
    );
}
