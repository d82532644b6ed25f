//! Leaves come back from a database an attacker may have edited and from
//! certificate bundles: the decoder must never panic, and what decodes must
//! re-encode to the same bytes.
#![no_main]

use lethe_audit::{decode_leaf, encode_leaf};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((seq, entry)) = decode_leaf(data) {
        // The write rules may refuse a decoded detail; if they accept it,
        // the encoding is the one that was read.
        if let Ok(again) = encode_leaf(seq, &entry) {
            assert_eq!(again, data);
        }
    }
});
