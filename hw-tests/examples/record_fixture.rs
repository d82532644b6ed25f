//! Record a device's `DeviceRecord` as a JSON fixture for the pure
//! classification tests in `lethe-core` (read-only: probes, never writes).
//!   cargo run -p lethe-hw-tests --example record_fixture -- sda > daemon/core/tests/fixtures/sata-hdd.json
fn main() {
    let Some(name) = std::env::args().nth(1) else {
        eprintln!("usage: record_fixture KERNEL_NAME (e.g. sda, nvme0n1, loop3)");
        std::process::exit(2);
    };
    let Some(rec) = lethe_linux::discovery::record(&name) else {
        eprintln!("{name}: not a whole block device");
        std::process::exit(1);
    };
    let d = lethe_core::inventory::classify(&rec);
    let v = serde_json::json!({
        "source": format!("recorded with record_fixture on {}", std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim()),
        "record": rec,
        "expect": { "transport": d.transport.as_str(), "size_bytes": d.size_bytes },
    });
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
}
