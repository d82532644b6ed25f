//! Engine throughput on a block device, without the CLI around it, for
//! tuning `--io-depth` and `--chunk-mib`. Writes to the device given!
//!   cargo run --release -p lethe-hw-tests --example engine_throughput -- /dev/loopN [depth] [chunk_mib] [random|zero]
use lethe_core::device::BlockDevice;
use lethe_core::pattern::Pattern;
use lethe_core::plan::{Checkpoint, VerifyMode, WipePlan};
use lethe_core::ranges::RangeSet;
use lethe_linux::blockdev::DirectDevice;
use lethe_wipe::{run, StreamKey, WipeConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: engine_throughput DEVICE [depth] [chunk_mib] [random|zero]");
        std::process::exit(2);
    };
    let depth = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(4);
    let chunk: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(4);
    let pattern = args
        .get(4)
        .and_then(|s| s.parse().ok())
        .unwrap_or(Pattern::Random);
    let dev = DirectDevice::open(std::path::Path::new(path)).expect("open device");
    let plan = WipePlan::new(pattern, 1, false, VerifyMode::Full).expect("plan");
    let mut cfg = WipeConfig::new(plan, StreamKey([1; 16]), 0);
    cfg.depth = depth;
    cfg.chunk_size = chunk << 20;
    let out = run(&dev, &cfg, Checkpoint::START, RangeSet::new(), &());
    let size = dev.geometry().size_bytes as f64;
    println!(
        "depth {depth} chunk {chunk} MiB {pattern}: write {:.0} MB/s, verify {:.0} MB/s, verdict {}",
        size / out.write_time.as_secs_f64() / 1e6,
        size / out.verify_time.as_secs_f64() / 1e6,
        out.verdict()
    );
}
