//! An auditor pack arrives from outside; `lethe verify-pack` parses its
//! MANIFEST. Arbitrary bytes into the note parser and the manifest parser
//! must never panic, whatever parses must have exactly one spelling, and
//! every listed path must be one the pack format allows (relative, no `..`,
//! no hidden names).
#![no_main]

use lethe_audit::note::Note;
use lethe_pack::manifest::{is_pack_path, Manifest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = match Note::parse(data) {
        Ok(note) => note.text,
        Err(_) => String::from_utf8_lossy(data).into_owned(),
    };
    if let Ok(m) = Manifest::parse(&text) {
        assert_eq!(m.to_text(), text);
        for f in &m.files {
            assert!(is_pack_path(&f.path), "{:?}", f.path);
            assert!(!f.path.split('/').any(|c| c == ".." || c == "." || c.is_empty()));
        }
    }
});
