//! Fuzz every lethe-repo decoder: raw bytes straight into the parsers (as a hostile storage
//! provider would supply them), and the same bytes sealed under a fixed key so the
//! post-decryption decoders (tree, index, snapshot, config, pack header) see them too.
#![no_main]

use lethe_repo::crypto::MasterKey;
use lethe_repo::index::IndexFile;
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
    let _ = PackReader::open(&mut opener, &Id::ZERO, data, false);
    let _ = parse_trailer(data);
    let _ = KeyFile::parse(data);
    let _ = IndexFile::open(&mut opener, data);
    let _ = Snapshot::open(&mut opener, data);
    let _ = RepoConfig::open(&mut opener, data);
    let text = String::from_utf8_lossy(data);
    let _ = recovery::decode(&text);
    let _ = FileKind::parse_path(&text);
    let _ = Id::from_hex(&text);
    // Authenticated but malformed plaintexts (a buggy or compromised writer).
    let _ = Tree::decode(data);
    let _ = ExtentList::decode(data);
    // A snapshot plaintext: version-1 fields, then optional extension records.
    let _ = Snapshot::decode(data);
    if let Ok(mut sealer) = keys.sealer([1; 16], 1) {
        for ty in [ObjectType::Index, ObjectType::Snapshot, ObjectType::Config] {
            if let Ok(sealed) = sealer.seal(ty, &Id::ZERO, data) {
                let _ = IndexFile::open(&mut opener, &sealed);
                let _ = Snapshot::open(&mut opener, &sealed);
                let _ = RepoConfig::open(&mut opener, &sealed);
            }
        }
        if let Ok(header) = sealer.seal(ObjectType::PackHeader, &Id::ZERO, data) {
            let mut pack = vec![0u8; 64];
            pack.extend_from_slice(&header);
            pack.extend_from_slice(&(header.len() as u32).to_le_bytes());
            pack.extend_from_slice(b"LPK1");
            let _ = PackReader::open(&mut opener, &Id::ZERO, &pack, false);
        }
    }
});
