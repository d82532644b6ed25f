//! Fuzz every lethe-repo decoder: raw bytes straight into the parsers (as a hostile storage
//! provider would supply them), and the same bytes sealed under a fixed key so the
//! post-decryption decoders (tree, index, snapshot, config, manifest, pack header) see them
//! too. Format version 2 and the version-1 readers alike.
#![no_main]

use lethe_repo::crypto::MasterKey;
use lethe_repo::index::IndexFile;
use lethe_repo::manifest::{parse_manifest_path, Manifest};
use lethe_repo::keys::KeyFile;
use lethe_repo::recovery;
use lethe_repo::object::ObjectHeader;
use lethe_repo::pack::{parse_trailer, PackReader};
use lethe_repo::snapshot::{RepoConfig, Snapshot};
use lethe_repo::tree::{ExtentList, Tree};
use lethe_repo::{FileKind, Id, ObjectType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let keys = match MasterKey::from_bytes([7; 32]).derive() {
        Ok(k) => k,
        Err(_) => return,
    };
    let mut opener = keys.opener();
    // Untrusted bytes as stored files.
    let _ = ObjectHeader::parse(data);
    let _ = opener.open_any(&Id::ZERO, data);
    let _ = PackReader::open(&keys, &mut opener, &Id::ZERO, data, false);
    let _ = parse_trailer(&keys, data);
    let _ = Manifest::open(&mut opener, 1, data);
    let _ = KeyFile::parse(data);
    let _ = IndexFile::open(&mut opener, data);
    let _ = Snapshot::open(&mut opener, data);
    let _ = RepoConfig::open(&mut opener, data);
    let text = String::from_utf8_lossy(data);
    let _ = recovery::decode(&text);
    let _ = FileKind::parse_path(&text);
    let _ = Id::from_hex(&text);
    let _ = parse_manifest_path(&text);
    // Authenticated but malformed plaintexts (a buggy or compromised writer).
    let _ = Tree::decode(data);
    let _ = ExtentList::decode(data);
    // A snapshot plaintext: version-1 fields, then optional extension records.
    let _ = Snapshot::decode(data);
    let _ = Snapshot::decode_v2(data);
    if let Ok(mut sealer) = keys.sealer([1; 16], 1) {
        for ty in [ObjectType::Index, ObjectType::Snapshot, ObjectType::Config] {
            if let Ok(sealed) = sealer.seal(ty, &Id::ZERO, data) {
                let _ = IndexFile::open(&mut opener, &sealed);
                let _ = Snapshot::open(&mut opener, &sealed);
                let _ = RepoConfig::open(&mut opener, &sealed);
            }
        }
        // The manifest binds its generation (see manifest.rs); a plaintext sealed
        // like the writer does reaches the decoder.
        let mut m = Manifest::first(0, lethe_repo::tree::Timestamp::default());
        m.generation = 1;
        if let Ok(sealed) = m.seal(&mut sealer) {
            let _ = Manifest::open(&mut opener, 1, &sealed);
        }
        if let Ok((header, nonce)) = sealer.seal_pack_header(data) {
            let mut pack = vec![0u8; 64];
            pack.extend_from_slice(&header);
            pack.extend_from_slice(&nonce);
            pack.extend_from_slice(&(header.len() as u32).to_le_bytes());
            pack.extend_from_slice(&0u32.to_le_bytes());
            pack.extend_from_slice(b"LPK2");
            let _ = PackReader::open(&keys, &mut opener, &Id::ZERO, &pack, false);
        }
    }
});
