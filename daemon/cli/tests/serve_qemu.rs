//! `lethe serve` in a QEMU guest (TCG), with USB sticks hot-added through
//! QMP while it runs. One boot, two daemon runs on the same state directory:
//!
//! 1. an `auto` bay `usb-clear` (`transport:usb`, level clear, full
//!    verification): stick A, hot-added once the daemon is up, is wiped
//!    and gets a certificate that `lethe cert verify` accepts in the guest;
//! 2. after stick A is pulled, the daemon is restarted with an `auto` bay
//!    `usb-purge` (level purge), and two sticks are hot-added. Neither can
//!    reach Purge behind a USB bridge, and the policy decides what follows:
//!    B (a fixed disk behind the bridge) gets the verified overwrite, shown
//!    as Clear only with the hint "move it to a direct SATA/NVMe port for
//!    Purge"; C (removable media: flash) is refused, "destroy it", with
//!    nothing written.
//!
//! The busybox guest has no udev, so `/dev/disk/by-*` links do not exist
//! and the bays match by transport; two bays matching `transport:usb` in one
//! configuration would overlap (the first takes every stick), hence the two
//! runs. The front runs as user `lethe`, which the guest's `/etc/passwd`
//! provides (on the appliance the package creates it).
//!
//! Not covered here: the LED sequence on the emulated front-panel
//! controller (its board runs in another QEMU; see controller_qemu.rs).
//!
//! Prints `SKIPPED:` and returns without qemu-system-x86_64,
//! `LETHE_QEMU_KERNEL_ROOT` or `LETHE_BUSYBOX` (hw-tests/run-tests.sh sets them).

use lethe_hw_tests::qemu_guest::{fields, markers, DiskSpec, Guest, GuestBuilder};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
const STICK_SIZE: u64 = 16 * MIB;
const FILL_A: u8 = 0xA1;
const FILL_B: u8 = 0xB2;
const FILL_C: u8 = 0xC3;
const SERIAL_A: &str = "LETHEUSBA001";
const SERIAL_B: &str = "LETHEUSBB002";
const SERIAL_C: &str = "LETHEUSBC003";
/// `lethe_worker::bays::USB_PURGE_HINT`.
const USB_PURGE_HINT: &str = "move it to a direct SATA/NVMe port for Purge";

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
lethe:x:998:998:Lethe front:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nlethe:x:998:\n";
const NSSWITCH: &str = "passwd: files\ngroup: files\n";

fn bay_config(name: &str, level: &str) -> String {
    format!(
        r#"[site]
operator_id = "qemu-tech"
operator_name = "QEMU Technician"

[[bay]]
name = "{name}"
match = ["transport:usb"]
policy = "auto"
level = "{level}"
verify = "full"
"#
    )
}

/// The guest: for each phase, start `lethe serve`, say so, wait until
/// `$2` drives in the bay reached an end state and no job runs (the host
/// hot-adds them meanwhile), print the status, stop the daemon. Between the
/// phases the host pulls stick A. At the end: every certificate verified,
/// the job history, the audit log verified.
const SCRIPT: &str = r#"
export LETHE_CONFIG=/dev/null
L="/bin/lethe --state-dir /tmp/state"
st() { $L status --json --runtime-dir /tmp/run 2>/dev/null | tr -d '\n'; }
phase() {
    LETHE_LOG=info $L serve --config /etc/lethe/$1.toml --runtime-dir /tmp/run >/tmp/$1.log 2>&1 &
    pid=$!
    i=0
    until $L status --json --runtime-dir /tmp/run >/dev/null 2>&1; do
        i=$((i+1)); [ $i -gt 600 ] && break; sleep 0.1
    done
    echo "@@UP phase=$1 tries=$i@@"
    i=0; s=""
    while [ $i -lt 1500 ]; do
        s=$(st)
        n=$(echo "$s" | grep -Eo '"state": ?"(passed|clear_only|unverified|failed|refused|stopped|interrupted)"' | wc -l)
        [ "$n" -ge $2 ] && echo "$s" | grep -Eq '"running": ?\[\]' && break
        sleep 0.2; i=$((i+1))
    done
    echo "@@END phase=$1 $s@@"
    kill -TERM $pid
    wait $pid
    echo "@@STOPPED phase=$1 rc=$?@@"
    echo "@@LOG phase=$1 $(tail -c 4000 /tmp/$1.log | tr '\n' '|')@@"
}
phase clear 1
echo "@@PULL@@"
i=0
while ls /sys/block | grep -q '^sd' && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
phase purge 2
for c in /tmp/state/certificates/*.json; do
    $L cert verify $c >/tmp/v.out 2>&1
    echo "@@VERIFY rc=$? file=$c out=$(tr '\n' ' ' < /tmp/v.out | cut -c1-600)@@"
    echo "@@CERT $(tr -d '\n' < $c)@@"
done
$L jobs --json > /tmp/jobs.json 2>&1
echo "@@JOBS $(tr -d '\n' < /tmp/jobs.json)@@"
$L audit verify > /tmp/a.out 2>&1
echo "@@AUDIT rc=$? out=$(tr '\n' ' ' < /tmp/a.out | cut -c1-600)@@"
"#;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn wait(g: &mut Guest, name: &str, secs: Duration, pred: impl Fn(&str) -> bool) -> String {
    g.wait_for(name, secs, pred)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The phase's marker body without its `phase=NAME ` prefix.
fn phase_body(g: &mut Guest, name: &str, phase: &str, timeout: Duration) -> String {
    let prefix = format!("phase={phase}");
    let body = wait(g, name, timeout, |b| {
        b == prefix || b.starts_with(&format!("{prefix} "))
    });
    body[prefix.len()..].trim_start().to_string()
}

/// The daemon's log of a phase (the tail the guest printed).
fn log_of(console: &str, phase: &str) -> String {
    markers(console, "LOG")
        .into_iter()
        .find(|b| b.starts_with(&format!("phase={phase} ")))
        .unwrap_or_default()
        .replace('|', "\n")
}

/// A phase's end: the status then (its bay entries: one per drive), the
/// daemon stopped cleanly, and its log.
fn end_of_phase(g: &mut Guest, phase: &str) -> (Value, Vec<Value>, String) {
    let body = phase_body(g, "END", phase, secs(180));
    eprintln!("phase {phase} ended at {:.1} s", g.elapsed());
    let rc = phase_body(g, "STOPPED", phase, secs(60));
    phase_body(g, "LOG", phase, secs(30));
    let log = log_of(&g.console(), phase);
    assert_eq!(
        rc, "rc=0",
        "lethe serve did not stop cleanly in phase {phase}; log:\n{log}"
    );
    let st: Value = serde_json::from_str(&body).unwrap_or_else(|e| {
        panic!("status JSON at the end of phase {phase} ({e}): {body}\nlog:\n{log}")
    });
    let bays = st["bays"].as_array().cloned().unwrap_or_default();
    (st, bays, log)
}

fn by_serial<'a>(bays: &'a [Value], serial: &str, st: &Value, log: &str) -> &'a Value {
    bays.iter()
        .find(|b| b["drive"]["serial"] == serial)
        .unwrap_or_else(|| panic!("no bay holds {serial}: {st:#}\nlog:\n{log}"))
}

fn file_is(path: &Path, byte: u8) -> bool {
    std::fs::read(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .iter()
        .all(|&x| x == byte)
}

fn wait_up(g: &mut Guest, phase: &str) {
    let up = phase_body(g, "UP", phase, secs(120));
    eprintln!("phase {phase}: daemon up at {:.1} s ({up})", g.elapsed());
    assert!(
        fields(&up)
            .get("tries")
            .and_then(|t| t.parse::<u32>().ok())
            .is_some_and(|t| t <= 600),
        "lethe serve did not answer in the guest (phase {phase}); console:\n{}",
        g.console()
    );
}

#[test]
fn qemu_serve_auto_bays_take_hot_added_usb_sticks() {
    let t0 = Instant::now();
    let Some(b) = GuestBuilder::new("qemu_serve_auto_bays_take_hot_added_usb_sticks") else {
        return;
    };
    let mut g = b
        .binary("/bin/lethe", Path::new(env!("CARGO_BIN_EXE_lethe")))
        .xhci()
        .file("/etc/passwd", 0o644, PASSWD.as_bytes())
        .file("/etc/group", 0o644, GROUP.as_bytes())
        .file("/etc/nsswitch.conf", 0o644, NSSWITCH.as_bytes())
        .file(
            "/etc/lethe/clear.toml",
            0o600,
            bay_config("usb-clear", "clear").as_bytes(),
        )
        .file(
            "/etc/lethe/purge.toml",
            0o600,
            bay_config("usb-purge", "purge").as_bytes(),
        )
        .script(SCRIPT)
        .boot()
        .unwrap_or_else(|e| panic!("boot: {e}"));

    // Phase 1: clear. Stick A arrives once the daemon is up.
    wait_up(&mut g, "clear");
    let stick_a = g
        .usb_attach("a", &DiskSpec::new(SERIAL_A, STICK_SIZE).fill(FILL_A))
        .unwrap_or_else(|e| panic!("hot-add stick A: {e}"));
    let (st, bays, log) = end_of_phase(&mut g, "clear");
    assert_eq!(bays.len(), 1, "{st:#}");
    let a = by_serial(&bays, SERIAL_A, &st, &log);
    assert_eq!(a["name"], "usb-clear");
    assert_eq!(a["state"], "passed", "{st:#}\nlog:\n{log}");
    assert_eq!(a["drive"]["transport"], "usb", "{a:#}");
    assert!(a["message"].is_null(), "{a:#}");
    let job_a = a["job"]
        .as_str()
        .expect("the bay names its job")
        .to_string();
    // The host sees the stick overwritten: no 4 KiB block keeps the old fill.
    let bytes = std::fs::read(&stick_a).unwrap();
    assert!(
        !bytes.chunks(4096).any(|c| c.iter().all(|&x| x == FILL_A)),
        "stick A still holds its old contents"
    );

    // Phase 2: purge. Stick A is pulled; after the restart a stick that is
    // a fixed disk behind a USB bridge and a removable flash stick arrive.
    wait(&mut g, "PULL", secs(60), |_| true);
    g.usb_detach("a")
        .unwrap_or_else(|e| panic!("unplug stick A: {e}"));
    wait_up(&mut g, "purge");
    g.usb_attach("b", &DiskSpec::new(SERIAL_B, STICK_SIZE).fill(FILL_B))
        .unwrap_or_else(|e| panic!("hot-add stick B: {e}"));
    let stick_c = g
        .usb_attach(
            "c",
            &DiskSpec::new(SERIAL_C, STICK_SIZE).fill(FILL_C).removable(),
        )
        .unwrap_or_else(|e| panic!("hot-add stick C: {e}"));
    let (st, bays, log) = end_of_phase(&mut g, "purge");
    assert_eq!(bays.len(), 2, "{st:#}");
    // B: no Purge command reaches it through the bridge; the policy falls
    // back to a verified overwrite, which the bay shows as Clear only, with
    // the hint.
    let b = by_serial(&bays, SERIAL_B, &st, &log);
    assert_eq!(b["name"], "usb-purge");
    assert_eq!(b["level"], "purge", "{b:#}");
    assert_eq!(b["state"], "clear_only", "{st:#}\nlog:\n{log}");
    assert_eq!(
        b["message"].as_str(),
        Some(format!("{USB_PURGE_HINT}: verified at clear only").as_str()),
        "{b:#}"
    );
    let job_b = b["job"].as_str().expect("B's job").to_string();
    // C: removable flash can only be cleared, so Purge means destruction:
    // refused, nothing written.
    let c = by_serial(&bays, SERIAL_C, &st, &log);
    assert_eq!(c["state"], "refused", "{st:#}\nlog:\n{log}");
    let message = c["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(USB_PURGE_HINT) && message.contains("destroy it"),
        "C's message: {message:?}"
    );
    let job_c = c["job"].as_str().expect("C's refused job").to_string();
    assert!(
        file_is(&stick_c, FILL_C),
        "stick C was written although Purge was refused"
    );

    // The job history: A passed, B clear only; C's job was refused before
    // anything started, so it has no record and no certificate.
    let body = wait(&mut g, "JOBS", secs(120), |_| true);
    let jobs: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("jobs JSON: {e}"));
    let jobs = jobs.as_array().cloned().unwrap_or_default();
    let status_of = |id: &str| {
        jobs.iter()
            .find(|j| j["job"] == id)
            .map(|j| j["status"].clone())
            .unwrap_or_else(|| panic!("no job {id} in {jobs:#?}"))
    };
    assert_eq!(status_of(&job_a), "pass", "{jobs:#?}");
    assert_eq!(status_of(&job_b), "clear_only", "{jobs:#?}");
    assert_eq!(jobs.len(), 2, "{jobs:#?}");
    assert!(
        !jobs.iter().any(|j| j["job"] == job_c.as_str()),
        "{jobs:#?}"
    );

    // Certificates: every one verifies in the guest; A's is a pass with full
    // verification; B's records Clear, not Purge.
    let console = g.console();
    let verified = markers(&console, "VERIFY");
    assert_eq!(verified.len(), 2, "certificates: {verified:#?}");
    for v in &verified {
        assert!(v.starts_with("rc=0 "), "lethe cert verify: {v}");
    }
    let certs: Vec<Value> = markers(&console, "CERT")
        .iter()
        .map(|c| {
            serde_json::from_str::<Value>(c).unwrap_or_else(|e| panic!("certificate JSON: {e}"))
        })
        .map(|v| v["certificate"].clone())
        .collect();
    let cert_of = |job: &str| {
        certs
            .iter()
            .find(|c| c.to_string().contains(&format!("\"{job}\"")))
            .unwrap_or_else(|| panic!("no certificate for {job}: {certs:#?}"))
    };
    let ca = cert_of(&job_a);
    assert_eq!(ca["result"]["status"], "pass", "{ca:#}");
    assert_eq!(ca["verification"]["result"], "pass", "{ca:#}");
    assert_eq!(ca["verification"]["bytes_verified"], STICK_SIZE, "{ca:#}");
    assert_eq!(ca["operator"]["id"], "qemu-tech", "{ca:#}");
    assert!(ca.to_string().contains(SERIAL_A), "{ca:#}");
    let cb = cert_of(&job_b);
    assert_eq!(cb["verification"]["result"], "pass", "{cb:#}");
    assert_eq!(cb["result"]["status"], "clear_only", "{cb:#}");
    assert_eq!(cb["method"]["category"], "clear", "{cb:#}");
    assert_eq!(cb["method"]["requested_level"], "purge", "{cb:#}");
    assert!(cb.to_string().contains(SERIAL_B), "{cb:#}");

    let audit = wait(&mut g, "AUDIT", secs(60), |_| true);
    assert!(audit.starts_with("rc=0 "), "lethe audit verify: {audit}");
    g.wait_exit(secs(60)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(g.script_rc(), Some(0));
    eprintln!(
        "guest ran {:.1} s, whole test {:.1} s",
        g.elapsed(),
        t0.elapsed().as_secs_f64()
    );
}
