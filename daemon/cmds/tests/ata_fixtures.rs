//! Decode the 18 real IDENTIFY DEVICE dumps (libatasmart, LGPL-2.1+, see
//! fixtures/ata/README.md) and compare with what hdparm 9.65 printed for them.

use lethe_cmds::ata::{EraseTime, IdentifyDevice};
use serde_json::Value;
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ata")
}

fn opt_u64(v: &Value) -> Option<u64> {
    v.as_u64()
}

#[test]
fn every_fixture_matches_hdparm() {
    let text = std::fs::read_to_string(dir().join("expected.json")).expect("expected.json");
    let expected: serde_json::Map<String, Value> = serde_json::from_str(&text).expect("json");
    let mut checked = 0;
    for (name, e) in expected.iter().filter(|(k, _)| !k.starts_with('_')) {
        let bytes = std::fs::read(dir().join(name)).expect(name);
        let id = IdentifyDevice::decode(&bytes).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(
            id.model,
            e["model"].as_str().unwrap_or_default(),
            "{name} model"
        );
        assert_eq!(
            id.serial,
            e["serial"].as_str().unwrap_or_default(),
            "{name} serial"
        );
        assert_eq!(
            id.firmware,
            e["firmware"]
                .as_str()
                .unwrap_or_default()
                .trim_end_matches('\0'),
            "{name} firmware"
        );
        assert_eq!(
            Some(u64::from(id.lba28_sectors)),
            opt_u64(&e["lba28_user_sectors"]),
            "{name} lba28"
        );
        assert_eq!(
            id.lba48_sectors,
            opt_u64(&e["lba48_user_sectors"]),
            "{name} lba48"
        );
        match opt_u64(&e["logical_sector_size"]) {
            Some(n) => {
                assert!(id.sector_sizes_reported, "{name}");
                assert_eq!(u64::from(id.logical_sector_size), n, "{name} logical");
                assert_eq!(
                    Some(u64::from(id.physical_sector_size)),
                    opt_u64(&e["physical_sector_size"]),
                    "{name} physical"
                );
            }
            None => assert!(!id.sector_sizes_reported, "{name} sizes"),
        }
        assert_eq!(
            id.rotation_rate.map(u64::from),
            opt_u64(&e["rotation_rate"]),
            "{name} rotation"
        );
        let s = &e["sanitize"];
        assert_eq!(id.sanitize.supported, s["supported"] == true, "{name}");
        assert_eq!(id.sanitize.crypto_scramble, s["crypto"] == true, "{name}");
        assert_eq!(id.sanitize.block_erase, s["block"] == true, "{name}");
        assert_eq!(id.sanitize.overwrite, s["overwrite"] == true, "{name}");
        assert_eq!(
            id.trim_supported,
            e["trim_supported"] == true,
            "{name} trim"
        );
        let sec = &e["security"];
        assert_eq!(
            id.security.supported,
            sec["supported"] == true,
            "{name} sec"
        );
        if sec["hdparm_section_printed"] == true {
            for (field, got) in [
                ("enabled", id.security.enabled),
                ("locked", id.security.locked),
                ("frozen", id.security.frozen),
                ("count_expired", id.security.count_expired),
                (
                    "enhanced_erase_supported",
                    id.security.enhanced_erase_supported,
                ),
            ] {
                assert_eq!(Some(got), sec[field].as_bool(), "{name} security.{field}");
            }
            if let Some(rev) = sec["master_password_revision"].as_u64() {
                assert_eq!(
                    u64::from(id.security.master_password_revision),
                    rev,
                    "{name}"
                );
            }
        }
        let t = &e["erase_time_min"];
        let mins = |et: EraseTime| et.minutes().map(u64::from);
        assert_eq!(
            mins(id.security.erase_time),
            opt_u64(&t["normal"]),
            "{name} t89"
        );
        assert_eq!(
            mins(id.security.enhanced_erase_time),
            opt_u64(&t["enhanced"]),
            "{name} t90"
        );
        // Raw words recorded by the oracle must equal ours.
        if let Some(raw) = e["raw_words"].as_object() {
            for (k, v) in raw {
                let idx: usize = k.trim_start_matches('w').parse().expect("word index");
                let want =
                    u16::from_str_radix(v.as_str().unwrap_or("").trim_start_matches("0x"), 16)
                        .expect("hex");
                assert_eq!(id.words[idx], want, "{name} {k}");
            }
        }
        let hd = e["hdparm_checksum"].as_str().unwrap_or("");
        match hd {
            "correct" => assert_eq!(id.checksum_valid, Some(true), "{name} checksum"),
            _ => assert_ne!(id.checksum_valid, Some(true), "{name} checksum {hd}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 18);
}

#[test]
fn hdparm_text_agrees_on_model_and_serial() {
    for entry in std::fs::read_dir(dir()).expect("dir") {
        let path = entry.expect("entry").path();
        let Some(fname) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        let Some(stem) = fname.strip_suffix(".hdparm.txt") else {
            continue;
        };
        let txt = std::fs::read_to_string(&path).expect("txt");
        let id =
            IdentifyDevice::decode(&std::fs::read(dir().join(format!("{stem}.bin"))).expect("bin"))
                .expect("decode");
        let field = |label: &str| {
            txt.lines()
                .find_map(|l| l.trim().strip_prefix(label).map(|r| r.trim().to_string()))
        };
        assert_eq!(field("Model Number:"), Some(id.model.clone()), "{stem}");
        assert_eq!(field("Serial Number:"), Some(id.serial.clone()), "{stem}");
    }
}
