//! The worker is the trust boundary: whatever bytes reach its socket, the
//! frame decoder and the message decoder must return a message or an
//! error, never panic, and a message must survive a round trip.
#![no_main]

use lethe_wire::{decode, encode, FrameDecoder, ToAdmin, ToWorker};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut d = FrameDecoder::new();
    // Split the input in two pushes to exercise partial frames.
    let cut = data.first().map_or(0, |b| *b as usize).min(data.len());
    d.push(&data[..cut]);
    let mut frames = Vec::new();
    while let Ok(Some(f)) = d.next_frame() {
        frames.push(f);
    }
    d.push(&data[cut..]);
    while let Ok(Some(f)) = d.next_frame() {
        frames.push(f);
    }
    frames.push(data.to_vec());
    for f in frames {
        if let Ok(m) = ToWorker::decode(&f) {
            assert_eq!(ToWorker::decode(&encode(&m)).ok(), Some(m));
        }
        if let Ok(m) = decode::<ToAdmin>(&f) {
            assert_eq!(decode::<ToAdmin>(&encode(&m)).ok(), Some(m));
        }
    }
});
