//! Checks the byte-exact vectors in docs/protocol.md against the encoder and decoder.
use lethe_proto::{decode_frame, encode_frame, vectors::CASES, MAX_FRAME};

const DOC: &str = include_str!("../../../docs/protocol.md");

/// Lines of the form "| `name` | `hex bytes` |" in the vectors table.
fn doc_vectors() -> Vec<(String, Vec<u8>)> {
    DOC.lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix("`v:")?.strip_suffix('`')?;
            let hex = cells.get(3)?.trim_matches('`');
            let bytes = hex
                .split_whitespace()
                .map(|b| u8::from_str_radix(b, 16).unwrap())
                .collect();
            Some((name.to_owned(), bytes))
        })
        .collect()
}

#[test]
fn docs_list_every_case_with_exact_bytes() {
    let doc = doc_vectors();
    assert_eq!(doc.len(), CASES.len(), "one table row per case");
    for (name, frame) in CASES {
        let (_, bytes) = doc
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name} missing in docs"));
        let mut buf = [0u8; MAX_FRAME];
        let n = encode_frame(frame, &mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            &bytes[..],
            "{name}: encoder disagrees with docs/protocol.md"
        );
        assert_eq!(*bytes.last().unwrap(), 0, "{name}: frames end in 0x00");
        assert_eq!(
            decode_frame(&bytes[..bytes.len() - 1]).unwrap(),
            *frame,
            "{name}: decode"
        );
    }
}

#[test]
#[ignore = "prints the table rows for docs/protocol.md"]
fn print_vectors() {
    for (name, frame) in CASES {
        let mut buf = [0u8; MAX_FRAME];
        let n = encode_frame(frame, &mut buf).unwrap();
        let hex: Vec<String> = buf[..n].iter().map(|b| format!("{b:02x}")).collect();
        println!("| `v:{name}` | `{frame:?}` | `{}` |", hex.join(" "));
    }
}
