//! Load generator for the HTTPS API: N clients, each with its own HTTP
//! client (so its own TLS connection), polling one path about once a second
//! (with jitter) until a duration passes, a stop file appears, or SIGINT /
//! SIGTERM. Every request's latency (send to end of body) and outcome is
//! recorded; at the end one JSON object goes to stdout: requests, errors
//! (non-2xx or transport), latency percentiles in ms and the poller's own
//! CPU time (from /proc/self/stat).
//!
//! Used by `hw-tests/bench/api-load.sh`; a benchmark tool, not a test.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;
use tokio::sync::watch;

#[derive(Parser)]
#[command(about = "Poll the Lethe HTTPS API from many clients at once")]
struct Args {
    /// Base URL, e.g. https://127.0.0.1:8443
    #[arg(long)]
    url: String,
    /// Path polled by every client.
    #[arg(long, default_value = "/api/v1/status")]
    path: String,
    /// PEM certificate to trust (the appliance's self-signed one); only it
    /// is trusted.
    #[arg(long)]
    cacert: PathBuf,
    /// A header sent with every request, `Name: value` (e.g.
    /// `Authorization: Bearer …`).
    #[arg(long, env = "API_LOAD_AUTH_HEADER")]
    header: Option<String>,
    /// Number of clients, each with its own connection pool.
    #[arg(long, default_value_t = 200)]
    clients: usize,
    /// Mean interval between one client's requests, in ms.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Jitter of each interval, ± this fraction of it.
    #[arg(long, default_value_t = 0.2)]
    jitter: f64,
    /// Stop after this many seconds (0: only on the stop file or a signal).
    #[arg(long, default_value_t = 0)]
    duration: u64,
    /// Stop when this file exists.
    #[arg(long)]
    stop_file: Option<PathBuf>,
    /// Per-request timeout, in seconds (a timeout counts as an error).
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

/// One client's record.
#[derive(Default)]
struct Record {
    latencies_us: Vec<u64>,
    ok: u64,
    errors: BTreeMap<String, u64>,
    first_error: Option<String>,
}

/// A small xorshift generator for the jitter (no need for a real RNG).
struct Jitter(u64);

impl Jitter {
    fn next_unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    // Clock ticks per second: getconf's answer, else Linux's usual 100.
    let hz = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    Some((utime + stime) / hz)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

async fn client_loop(
    id: usize,
    client: reqwest::Client,
    url: String,
    header: Option<(String, String)>,
    interval: Duration,
    jitter: f64,
    mut stop: watch::Receiver<bool>,
) -> Record {
    let mut rec = Record::default();
    let mut rng = Jitter(0x9e37_79b9_7f4a_7c15 ^ ((id as u64 + 1) * 0x2545_f491_4f6c_dd1d));
    // Spread the clients' first requests over one interval.
    let mut next = Instant::now() + interval.mul_f64(rng.next_unit());
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()) => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
        let mut rq = client.get(&url);
        if let Some((k, v)) = &header {
            rq = rq.header(k, v);
        }
        let t0 = Instant::now();
        let outcome = match rq.send().await {
            Ok(r) => {
                let status = r.status();
                match r.bytes().await {
                    Ok(_) if status.is_success() => Ok(()),
                    Ok(_) => Err((format!("status {}", status.as_u16()), String::new())),
                    Err(e) => Err(("body".to_string(), format!("{e:?}"))),
                }
            }
            Err(e) => {
                let kind = if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connect"
                } else {
                    "transport"
                };
                Err((kind.to_string(), format!("{e:?}")))
            }
        };
        rec.latencies_us.push(t0.elapsed().as_micros() as u64);
        match outcome {
            Ok(()) => rec.ok += 1,
            Err((kind, detail)) => {
                *rec.errors.entry(kind.clone()).or_default() += 1;
                rec.first_error.get_or_insert(format!("{kind} {detail}"));
            }
        }
        let factor = 1.0 + jitter * (2.0 * rng.next_unit() - 1.0);
        next += interval.mul_f64(factor.max(0.0));
        // Behind schedule (a slow answer): do not fire a burst to catch up.
        let now = Instant::now();
        if next < now {
            next = now;
        }
    }
    rec
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let pem = std::fs::read(&args.cacert)?;
    let header = match &args.header {
        Some(h) => {
            let (k, v) = h.split_once(':').ok_or("--header must be `Name: value`")?;
            Some((k.trim().to_string(), v.trim().to_string()))
        }
        None => None,
    };
    let url = format!("{}{}", args.url.trim_end_matches('/'), args.path);
    let (stop_tx, stop_rx) = watch::channel(false);
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(args.clients);
    for id in 0..args.clients {
        let cert = reqwest::Certificate::from_pem(&pem)?;
        let client = reqwest::Client::builder()
            .tls_certs_only([cert])
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(args.timeout))
            .build()?;
        tasks.push(tokio::spawn(client_loop(
            id,
            client,
            url.clone(),
            header.clone(),
            Duration::from_millis(args.interval_ms),
            args.jitter.clamp(0.0, 1.0),
            stop_rx.clone(),
        )));
    }

    let deadline = (args.duration > 0).then(|| t0 + Duration::from_secs(args.duration));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if args.stop_file.as_ref().is_some_and(|f| f.exists()) {
            break;
        }
    }
    let _ = stop_tx.send(true);
    let wall = t0.elapsed().as_secs_f64();

    let mut all = Vec::new();
    let mut ok = 0;
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut first_error = None;
    for t in tasks {
        let rec = t.await?;
        all.extend(rec.latencies_us);
        ok += rec.ok;
        for (k, n) in rec.errors {
            *errors.entry(k).or_default() += n;
        }
        if first_error.is_none() {
            first_error = rec.first_error;
        }
    }
    let cpu = match (cpu0, cpu_seconds()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    all.sort_unstable();
    let requests = all.len() as u64;
    let mean = if all.is_empty() {
        0.0
    } else {
        all.iter().sum::<u64>() as f64 / all.len() as f64 / 1000.0
    };
    let out = json!({
        "url": url,
        "clients": args.clients,
        "seconds": (wall * 10.0).round() / 10.0,
        "requests": requests,
        "requests_per_sec": (requests as f64 / wall * 10.0).round() / 10.0,
        "ok": ok,
        "errors": requests - ok,
        "error_kinds": errors,
        "first_error": first_error,
        "latency_ms": {
            "mean": (mean * 100.0).round() / 100.0,
            "p50": percentile(&all, 50.0),
            "p90": percentile(&all, 90.0),
            "p99": percentile(&all, 99.0),
            "max": percentile(&all, 100.0),
        },
        "cpu_seconds": cpu.map(|c| (c * 100.0).round() / 100.0),
        "cpu_percent_of_one_core": cpu.map(|c| (c / wall * 1000.0).round() / 10.0),
    });
    println!("{out}");
    Ok(())
}
