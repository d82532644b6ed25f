//! Checkpoints arrive from outside: saved files, webhooks, certificate
//! bundles. Arbitrary bytes into the signed-note parser, the checkpoint body
//! parser and the verifier must never panic, and whatever parses must have
//! exactly one spelling.
#![no_main]

use lethe_audit::note::Note;
use lethe_audit::{open_checkpoint, Checkpoint};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(note) = Note::parse(data) {
        assert_eq!(Note::parse(note.to_text().as_bytes()).as_ref(), Ok(&note));
        if let Ok(cp) = Checkpoint::from_text(&note.text) {
            assert_eq!(cp.text(), note.text);
        }
    }
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
    if let Ok(signed) = open_checkpoint(data, &key, None) {
        // Only a note this key signed can get here.
        assert_eq!(signed.checkpoint.text(), Note::parse(data).unwrap().text);
    }
});
