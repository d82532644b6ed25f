//! Calibrates Argon2id for this machine: prints the pass count at which one
//! hash takes at least the target time (default 0.5 s) at 64 MiB, and the
//! time each measured setting took.
//!
//! `cargo run --release -p lethe-auth --example calibrate [TARGET_MS] [MEMORY_MIB]`

use lethe_auth::password::hash::{calibrate, time_one_hash, HashParams};
use std::time::Duration;

fn main() {
    let mut args = std::env::args().skip(1);
    let target_ms: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(500);
    let memory_mib: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let mut measured = Vec::new();
    let p = calibrate(
        Duration::from_millis(target_ms),
        memory_mib * 1024,
        64,
        |p| {
            // best of three: the machine is shared
            let d = (0..3)
                .map(|_| time_one_hash(p).expect("valid parameters"))
                .min()
                .expect("three runs");
            measured.push((*p, d));
            d
        },
    );
    for (p, d) in &measured {
        println!(
            "m={} KiB t={} p={}: {:.0} ms",
            p.memory_kib,
            p.iterations,
            p.parallelism,
            d.as_secs_f64() * 1000.0
        );
    }
    let chosen = measured
        .iter()
        .find(|(q, _)| q == &p)
        .map(|(_, d)| *d)
        .unwrap_or_else(|| time_one_hash(&p).expect("valid parameters"));
    println!(
        "chosen: m={} KiB t={} p={} ({:.0} ms; target {target_ms} ms); shipped default: {:?}",
        p.memory_kib,
        p.iterations,
        p.parallelism,
        chosen.as_secs_f64() * 1000.0,
        HashParams::DEFAULT
    );
}
