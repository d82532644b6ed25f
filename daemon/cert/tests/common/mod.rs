//! Shared fixtures: a realistic certificate body and a fixed-seed key.
#![allow(dead_code)]

use lethe_cert::*;

/// The test-vector seed: bytes 0x00..=0x1f.
pub fn vector_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    for (i, b) in seed.iter_mut().enumerate() {
        *b = i as u8;
    }
    seed
}

/// The fixed body of the published test vector (docs/certificate.md).
pub fn vector_body() -> CertificateBody {
    CertificateBody {
        format: FORMAT.into(),
        id: "job-20261123-0001".into(),
        issued_at: "2026-11-23T14:05:00Z".into(),
        appliance: Appliance {
            id: "lethe-appliance-01".into(),
            hostname: "wipe-bench-1".into(),
            location: Some("Lab B, rack 3".into()),
        },
        tool: Tool {
            name: "lethe".into(),
            version: "0.1.0".into(),
        },
        device: Device {
            manufacturer: None,
            model: "QEMU HARDDISK".into(),
            serial: "QM00001".into(),
            wwn: String::new(),
            firmware: "2.5+".into(),
            capacity_bytes: 268_439_552,
            logical_sector_size: 512,
            physical_sector_size: 512,
            media_type: MediaType::Magnetic,
            transport: "sata".into(),
            path: "/dev/sdb".into(),
            stable_id: "ata-QEMU_HARDDISK_QM00001".into(),
            hidden_areas: Some("none detected".into()),
            health: None,
        },
        method: Method {
            category: Category::Clear,
            technique: "overwrite".into(),
            pattern: "random (AES-128-CTR stream)".into(),
            passes: 1,
            final_blank: false,
            standard: "NIST SP 800-88 Rev.1".into(),
            reason: "magnetic media: one overwrite pass is a Clear per NIST SP 800-88".into(),
            requested_level: None,
            drive_command: None,
        },
        verification: Verification {
            method: VerificationMethod::Full,
            coverage_ppm: 1_000_000,
            bytes_verified: 268_439_552,
            sample_seed: None,
            result: VerificationResult::Pass,
            detail: None,
            attestation: None,
        },
        operator: Operator {
            id: "op-7".into(),
            name: "Dana Müller".into(),
        },
        timing: Timing {
            started_at: "2026-11-23T13:50:00Z".into(),
            ended_at: "2026-11-23T14:04:59Z".into(),
            duration_seconds: 899,
        },
        customer: Some("ACME \"Recycling\" Ltd".into()),
        asset_tag: Some("AT-0042".into()),
        media_source: None,
        destination: Some(Destination::ReturnToLessor),
        result: Outcome {
            status: ResultStatus::Pass,
            bytes_written: 268_439_552,
            failed_ranges: vec![],
            messages: vec!["verified every sector".into()],
        },
        events: vec![
            Event {
                at: "2026-11-23T13:50:00Z".into(),
                kind: "started".into(),
                detail: "pass 1 of 1".into(),
            },
            Event {
                at: "2026-11-23T13:55:10Z".into(),
                kind: "interrupted".into(),
                detail: "power loss at byte 104857600".into(),
            },
            Event {
                at: "2026-11-23T13:58:00Z".into(),
                kind: "resumed".into(),
                detail: "from checkpoint 104857600".into(),
            },
            Event {
                at: "2026-11-23T14:04:59Z".into(),
                kind: "completed".into(),
                detail: String::new(),
            },
        ],
    }
}

/// A failed certificate with `n` failed ranges and long texts.
pub fn failed_body(n: usize) -> CertificateBody {
    let mut b = vector_body();
    b.id = format!("job-fail-{n}");
    b.result.status = ResultStatus::Fail;
    b.verification.result = VerificationResult::Fail;
    b.verification.method = VerificationMethod::Sample;
    b.verification.coverage_ppm = 12_500;
    b.verification.sample_seed = Some("00ff11ee22dd33cc".into());
    b.result.failed_ranges = (0..n as u64)
        .map(|i| FailedRange {
            offset: i * 1_048_576 + 4096,
            length: 4096 * (i % 7 + 1),
        })
        .collect();
    b.result.messages = vec![
        "write error (EIO) at several offsets; the drive reported medium errors".into(),
        format!(
            "a very long message that must wrap: {}",
            "lorem ipsum dolor sit amet ".repeat(20)
        ),
        "/dev/disk/by-id/ata-VERY_LONG_IDENTIFIER_WITHOUT_SPACES_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789".into(),
        "unicode: 日本語 € – “quotes” ✓".into(),
    ];
    b.events = (0..n)
        .map(|i| Event {
            at: "2026-11-23T14:00:00Z".into(),
            kind: if i % 2 == 0 { "interrupted" } else { "resumed" }.into(),
            detail: format!("event number {i}"),
        })
        .collect();
    b
}

/// Sign a body value exactly as `sign` would, but without its checks, with
/// the key of `seed`: what a forger with a key, or an older buggy signer,
/// could produce.
pub fn sign_raw_with(body: &serde_json::Value, seed: &[u8; 32]) -> Vec<u8> {
    use ed25519_dalek::Signer as _;
    let k = ApplianceKey::from_seed(seed);
    let canon = lethe_cert::canonical::to_canonical(body).unwrap();
    let mut input = SIGNING_PREFIX.to_vec();
    input.extend_from_slice(&canon);
    let sig = ed25519_dalek::SigningKey::from_bytes(seed).sign(&input);
    envelope(body, &k.public_key_hex(), &sig.to_bytes())
}

/// [`sign_raw_with`] and the vector key.
pub fn sign_raw(body: &serde_json::Value) -> Vec<u8> {
    sign_raw_with(body, &vector_seed())
}

/// The canonical file for a body, a public key (hex) and raw signature bytes.
pub fn envelope(body: &serde_json::Value, public_key_hex: &str, sig: &[u8]) -> Vec<u8> {
    use base64::Engine;
    use sha2::Digest;
    let pk = hex::decode(public_key_hex).unwrap();
    let file = serde_json::json!({
        "certificate": body,
        "signature": {
            "algorithm": "ed25519",
            "key_id": hex::encode(&sha2::Sha256::digest(&pk)[..8]),
            "public_key": public_key_hex,
            "value": base64::engine::general_purpose::STANDARD.encode(sig),
        }
    });
    let mut bytes = lethe_cert::canonical::to_canonical(&file).unwrap();
    bytes.push(b'\n');
    bytes
}
