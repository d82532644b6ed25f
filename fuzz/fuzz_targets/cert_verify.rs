//! Certificates arrive from auditors, e-mail and USB sticks: the verifier
//! must reject anything malformed without panicking, and must never accept a
//! file it did not produce byte for byte.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = lethe_cert::verify(data, None) {
        // Whatever verifies must be exactly what signing would have written.
        assert_eq!(v.signed().as_bytes(), data);
    }
});
