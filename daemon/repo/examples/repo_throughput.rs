//! Single-threaded throughput of the backup write path:
//! chunk (keyed FastCDC) + id (keyed BLAKE3) + compress (zstd) + encrypt (AES-256-GCM-SIV,
//! format 2) + pack. The same chunks are also encrypted with AES-256-GCM (format 1) in
//! the same run, as the baseline of the SIV cost.
//!
//! `cargo run --release -p lethe-repo --example repo_throughput [-- SIZE_MIB [FILE]]`
//! Generates a compressible text-like buffer and an incompressible one (or reads FILE).
//! `ZSTD_LEVEL=1` overrides the default level 3.

use lethe_repo::chunker::Chunker;
use lethe_repo::crypto::{MasterKey, DEFAULT_ZSTD_LEVEL};
use lethe_repo::pack::{PackBuilder, DEFAULT_PACK_TARGET};
use lethe_repo::snapshot::RepoConfig;
use lethe_repo::tree::Timestamp;
use lethe_repo::BlobKind;
use std::time::Instant;

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// Text-like data: words from a 4096-word vocabulary with Zipf-ish reuse.
fn compressible(n: usize) -> Vec<u8> {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let vocab: Vec<Vec<u8>> = (0..4096)
        .map(|_| {
            let len = 2 + (xorshift(&mut s) % 9) as usize;
            (0..len)
                .map(|_| b'a' + (xorshift(&mut s) % 26) as u8)
                .collect()
        })
        .collect();
    let mut out = Vec::with_capacity(n + 16);
    while out.len() < n {
        let r = xorshift(&mut s);
        let w = &vocab[((r % 4096) * (r >> 52) / 4096) as usize % 4096];
        out.extend_from_slice(w);
        out.push(if r % 13 == 0 { b'\n' } else { b' ' });
    }
    out.truncate(n);
    out
}

fn incompressible(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    blake3::Hasher::new()
        .update(b"bench")
        .finalize_xof()
        .fill(&mut v);
    v
}

fn mbps(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / secs / 1e6
}

fn run(name: &str, data: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
    let keys = MasterKey::from_bytes([0x11; 32]).derive()?;
    let cfg = RepoConfig::new([0; 32], Timestamp::default());
    let chunker = Chunker::new(cfg.chunker, keys.gear_key())?;
    let level = std::env::var("ZSTD_LEVEL")
        .ok()
        .and_then(|l| l.parse().ok())
        .unwrap_or(DEFAULT_ZSTD_LEVEL);
    let mut sealer = keys.sealer([0x22; 16], level)?;

    let t = Instant::now();
    let chunks: Vec<&[u8]> = chunker.chunks(data).collect();
    let t_chunk = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let ids: Vec<_> = chunks
        .iter()
        .map(|c| keys.blob_id(BlobKind::Data, c))
        .collect();
    let t_hash = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut sealed_bytes = 0usize;
    let mut packs = 0usize;
    let mut builder = PackBuilder::new(DEFAULT_PACK_TARGET);
    for (c, id) in chunks.iter().zip(&ids) {
        let before = builder.len();
        builder.seal_and_add(&mut sealer, BlobKind::Data, *id, c)?;
        sealed_bytes += builder.len() - before;
        if builder.is_full() {
            let full = std::mem::replace(&mut builder, PackBuilder::new(DEFAULT_PACK_TARGET));
            packs += 1;
            std::hint::black_box(full.finish(&mut sealer)?);
        }
    }
    if !builder.is_empty() {
        packs += 1;
        std::hint::black_box(builder.finish(&mut sealer)?);
    }
    let t_seal = t.elapsed().as_secs_f64();
    let total = t_chunk + t_hash + t_seal;

    // Same sealing with compression off: isolates AES-256-GCM-SIV + copies from zstd.
    let mut raw_sealer = keys.sealer([0x33; 16], 0)?;
    let t = Instant::now();
    let mut out = Vec::new();
    for (c, id) in chunks.iter().zip(&ids) {
        out.clear();
        std::hint::black_box(raw_sealer.seal_blob_into(BlobKind::Data, id, c, &mut out)?);
    }
    let t_enc = t.elapsed().as_secs_f64();
    // Baseline in the same run: AES-256-GCM (format 1's cipher) over the same chunks.
    let gcm = aws_lc_rs::aead::LessSafeKey::new(aws_lc_rs::aead::UnboundKey::new(
        &aws_lc_rs::aead::AES_256_GCM,
        &[0x44; 32],
    )?);
    let t = Instant::now();
    for (i, c) in chunks.iter().enumerate() {
        out.clear();
        out.extend_from_slice(c);
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let _tag = std::hint::black_box(gcm.seal_in_place_separate_tag(
            aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
            aws_lc_rs::aead::Aad::empty(),
            &mut out,
        )?);
    }
    let t_gcm = t.elapsed().as_secs_f64();
    let mut z = zstd::bulk::Compressor::new(level)?;
    let t = Instant::now();
    for c in &chunks {
        std::hint::black_box(z.compress(c)?);
    }
    let t_zstd = t.elapsed().as_secs_f64();

    println!(
        "{name} (zstd {level}): {:.0} MiB, {} chunks (avg {:.0} KiB), {} packs, stored/raw {:.3}",
        data.len() as f64 / 1048576.0,
        chunks.len(),
        data.len() as f64 / chunks.len().max(1) as f64 / 1024.0,
        packs,
        sealed_bytes as f64 / data.len() as f64
    );
    println!(
        "  chunk {:>6.0} MB/s | id {:>6.0} MB/s | AES-GCM-SIV {:>6.0} MB/s (AES-GCM baseline {:>6.0} MB/s, ratio {:.2}) | zstd only {:>6.0} MB/s | zstd+encrypt+pack {:>6.0} MB/s | end-to-end {:>5.0} MB/s (1 thread)",
        mbps(data.len(), t_chunk),
        mbps(data.len(), t_hash),
        mbps(data.len(), t_enc),
        mbps(data.len(), t_gcm),
        t_gcm / t_enc,
        mbps(data.len(), t_zstd),
        mbps(data.len(), t_seal),
        mbps(data.len(), total)
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let mib: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(256);
    if let Some(path) = args.get(2) {
        let data = std::fs::read(path)?;
        run(path, &data)?;
        return Ok(());
    }
    let t = Instant::now();
    let params = lethe_repo::keys::KdfParams::DEFAULT;
    lethe_repo::keys::KeyFileV2::passphrase(
        &lethe_repo::crypto::Keyring::new(MasterKey::from_bytes([1; 32])),
        b"passphrase",
        [2; 32],
        params,
        "bench".into(),
        Timestamp::default(),
        [3; 32],
        [4; 32],
    )?;
    println!(
        "key file with default Argon2id {params:?}: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    run("compressible (text-like)", &compressible(mib << 20))?;
    run("incompressible (random)", &incompressible(mib << 20))?;
    Ok(())
}
