//! Arbitrary bytes into the frame decoder (whole-frame and streaming); anything that decodes
//! must re-encode to a frame that decodes to the same value.
#![no_main]
use lethe_proto::{decode_frame, encode_frame, FrameDecoder, MAX_FRAME};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = decode_frame(data) {
        let mut buf = [0u8; MAX_FRAME];
        let n = encode_frame(&f, &mut buf).expect("a decoded frame re-encodes");
        assert_eq!(decode_frame(&buf[..n - 1]), Ok(f));
    }
    let mut d = FrameDecoder::new();
    for &b in data {
        let _ = d.push(b);
    }
});
