#!/usr/bin/env bash
# HTTPS API under load: the same 4 parallel wipes by `lethe serve` (one job
# per loop device, all in one `auto` bay, as serve-bench.sh) run (a) with no
# API client and (b) with CLIENTS pollers (each its own TLS connection)
# polling GET /api/v1/status about once a second with an auditor API token,
# from before the first attach to after the last job's end. Prints each run's
# aggregate wipe throughput, the ratio b/a, and the poller's requests,
# errors, latency percentiles and own CPU. Rounds alternate a b, b a, ...
# Everything on loopback; writes only to loop devices it creates (over files
# in /dev/shm).
#
# Usage: hw-tests/bench/api-load.sh [SIZE_MIB] [PASSES] [ROUNDS] [CLIENTS]
#   SIZE_MIB  size of each of the 4 loop devices (default 2048)
#   PASSES    overwrite passes per job (default 10: about 20 s a run on a
#             2 vCPU VM, where a wipe to tmpfs is bound by the CPU)
#   ROUNDS    rounds of (a, b) (default 4), after one warm-up run (a) that
#             is not counted (its writes allocate the tmpfs pages)
#   CLIENTS   pollers in (b) (default 200)
# LETHE=path/to/lethe and POLLER=path/to/api-load use those binaries instead
# of release builds. Needs root, losetup, python3 and the `lethe` user
# (hw-tests/setup.sh). Each job: PASSES passes of random, verify sample:1;
# the figure is bytes written / wall time from the first attach to the last
# job's end (hot-plug, verification and certificate included).
# Prints a Markdown report; the same goes to bench-out/api-load-<date>.md.
# THROTTLE_MBPS=N limits each loop device to N MB/s like a drive
# (hw-tests/bench/throttle.sh): the wipes are then bound by the devices, as
# on an appliance, not by the CPU they share with the pollers.
set -euo pipefail

SIZE_MIB=${1:-2048}
PASSES=${2:-10}
ROUNDS=${3:-4}
CLIENTS=${4:-200}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT_DIR="$ROOT/bench-out"
mkdir -p "$OUT_DIR"
REPORT="$OUT_DIR/api-load-$(date -u +%Y%m%dT%H%M%SZ).md"

for tool in losetup python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool (hw-tests/setup.sh)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "run as root (loop devices)" >&2; exit 1; }
getent passwd lethe >/dev/null || { echo "no user lethe (hw-tests/setup.sh)" >&2; exit 1; }

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}/release"
if [ -z "${LETHE:-}" ]; then
    cargo build --release -q -p lethe-cli --manifest-path "$ROOT/Cargo.toml"
    LETHE="$TARGET/lethe"
fi
if [ -z "${POLLER:-}" ]; then
    cargo build --release -q -p lethe-hw-tests --bin api-load --manifest-path "$ROOT/Cargo.toml"
    POLLER="$TARGET/api-load"
fi

WORK=$(mktemp -d /dev/shm/lethe-api-load-XXXXXX)
chmod 755 "$WORK"
DAEMON=
POLL_PID=
cleanup() {
    [ -n "$POLL_PID" ] && kill "$POLL_PID" 2>/dev/null && wait "$POLL_PID" 2>/dev/null || true
    [ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null || true
    # run_jobs attaches in a subshell: find its devices by backing file.
    for i in 1 2 3 4; do
        for l in $(losetup -j "$WORK/d-$i.img" -O NAME -n 2>/dev/null); do
            losetup -d "$l" 2>/dev/null || true
        done
    done
    throttle_cleanup
    rm -rf "$WORK"
}
trap cleanup EXIT
. "$(dirname "$0")/throttle.sh"
throttle_loops lethe-api-load

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$WORK/lethe.toml" <<EOF
[site]
operator_id = "bench"

[server]
listen = "127.0.0.1:$PORT"

[[bay]]
name = "bench"
match = ["loop:$WORK/d-*.img"]
policy = "auto"
pattern = "random"
passes = $PASSES
verify = "sample:1"
EOF

for i in 1 2 3 4; do fallocate -l "${SIZE_MIB}M" "$WORK/d-$i.img"; done

"$LETHE" --state-dir "$WORK/state" serve --config "$WORK/lethe.toml" \
    --runtime-dir "$WORK/run" 2>"$WORK/serve.log" &
DAEMON=$!
for _ in $(seq 300); do
    [ -s "$WORK/state/tls/cert.pem" ] && "$LETHE" status --json --runtime-dir "$WORK/run" >/dev/null 2>&1 && break
    sleep 0.1
done
[ -s "$WORK/state/tls/cert.pem" ] || { cat "$WORK/serve.log" >&2; exit 1; }
CERT="$WORK/state/tls/cert.pem"

# An admin (password + TOTP) logs in, re-authenticates and makes an auditor
# token for the pollers.
printf 'polling-load-secret-4821\n' >"$WORK/pw"
"$LETHE" --state-dir "$WORK/state" user add bench --role admin --json \
    --password-file "$WORK/pw" --runtime-dir "$WORK/run" >"$WORK/user.json"
python3 - "$PORT" "$CERT" "$WORK/pw" "$WORK/user.json" >"$WORK/token" <<'EOF'
import base64, hashlib, hmac, http.client, json, ssl, struct, sys, time
port, cert, pwfile, userfile = sys.argv[1:]
password = open(pwfile).read().strip()
uri = json.loads(open(userfile).read().strip().splitlines()[-1])["otpauth_uri"]
secret = [p[7:] for p in uri.replace("?", "&").split("&") if p.startswith("secret=")][0]
key = base64.b32decode(secret + "=" * (-len(secret) % 8))
def code(step):
    h = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    o = h[-1] & 15
    return "%06d" % ((struct.unpack(">I", h[o:o + 4])[0] & 0x7FFFFFFF) % 10**6)
ctx = ssl.create_default_context(cafile=cert)
def call(method, path, body, cookie=None):
    for _ in range(100):
        try:
            c = http.client.HTTPSConnection("127.0.0.1", int(port), context=ctx, timeout=30)
            h = {"content-type": "application/json"}
            if cookie:
                h["cookie"] = "__Host-lethe_session=" + cookie
            c.request(method, path, json.dumps(body) if body is not None else None, h)
            r = c.getresponse()
            return r, r.read()
        except (ConnectionError, OSError):
            time.sleep(0.2)
    sys.exit("the HTTPS API did not come up")
call("GET", "/healthz", None)
step = int(time.time()) // 30
r, b = call("POST", "/api/v1/login", {"username": "bench", "password": password, "totp": code(step)})
if r.status != 200:
    sys.exit(f"login: {r.status} {b!r}")
cookie = [v.split(";")[0].split("=", 1)[1] for k, v in r.getheaders()
          if k.lower() == "set-cookie" and v.startswith("__Host-lethe_session=")][0]
r, b = call("POST", "/api/v1/reauth", {"password": password, "totp": code(step + 1)}, cookie)
if r.status != 200:
    sys.exit(f"reauth: {r.status} {b!r}")
r, b = call("POST", "/api/v1/tokens",
            {"label": "api-load", "role": "auditor", "lifetime_secs": 3600 * 24}, cookie)
if r.status // 100 != 2:
    sys.exit(f"token: {r.status} {b!r}")
print(json.loads(b)["secret"])
print(cookie)
EOF
TOKEN=$(sed -n 1p "$WORK/token")
COOKIE=$(sed -n 2p "$WORK/token")

front_pid() { cat /proc/"$DAEMON"/task/*/children | tr ' ' '\n' | grep -m1 .; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Busy ticks of the whole machine (user nice system irq softirq steal).
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }
HZ=$(getconf CLK_TCK)

# Attach the 4 devices, wait until every job passed; print seconds.
run_jobs() {
    local t0 t1
    t0=$(date +%s.%N)
    local LOOPS=()
    for i in 1 2 3 4; do LOOPS+=("$(losetup --find --show "$WORK/d-$i.img")"); done
    for l in "${LOOPS[@]}"; do check_throttled "$l"; done
    while :; do
        local passed
        passed=$("$LETHE" status --json --runtime-dir "$WORK/run" | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(sum(1 for b in s["bays"] if b["state"] == "passed") if not s["running"] else -1)
for b in s["bays"]:
    if b["state"] == "failed": sys.exit("a job failed: " + str(b))')
        [ "$passed" -ge 4 ] && break
        sleep 0.2
    done
    t1=$(date +%s.%N)
    for l in "${LOOPS[@]}"; do losetup -d "$l"; done
    python3 -c "print(f'{$t1 - $t0:.3f}')"
}

mbps() { python3 -c "print(f'{4 * $PASSES * $SIZE_MIB * 1048576 / $1 / 1e6:.1f}')"; }

# One run: $1 = a (no client) or b (pollers); $2 = "warm-up" to print the
# row without counting it. Appends a row to $WORK/rows.
run() {
    local mode=$1 t w0 f0 w1 f1 s0 s1 l0 l1 poll='{}' front
    sleep 2
    if [ "$mode" = b ]; then
        rm -f "$WORK/stop"
        API_LOAD_AUTH_HEADER="Authorization: Bearer $TOKEN" "$POLLER" \
            --url "https://127.0.0.1:$PORT" --cacert "$CERT" --clients "$CLIENTS" \
            --stop-file "$WORK/stop" >"$WORK/poll.json" 2>"$WORK/poll.err" &
        POLL_PID=$!
        sleep 3 # every client has made its first request (and handshake)
    fi
    front=$(front_pid)
    l0=$(cut -d' ' -f1 /proc/loadavg)
    w0=$(cpu_ticks "$DAEMON"); f0=$(cpu_ticks "$front"); s0=$(busy_ticks)
    t=$(run_jobs)
    w1=$(cpu_ticks "$DAEMON"); f1=$(cpu_ticks "$front"); s1=$(busy_ticks)
    l1=$(cut -d' ' -f1 /proc/loadavg)
    if [ "$mode" = b ]; then
        touch "$WORK/stop"
        wait "$POLL_PID" || { cat "$WORK/poll.err" >&2; exit 1; }
        POLL_PID=
        poll=$(cat "$WORK/poll.json")
    fi
    python3 - "$mode" "$t" "$(mbps "$t")" "$((w1 - w0))" "$((f1 - f0))" "$((s1 - s0))" \
        "$HZ" "$l0" "$l1" "$poll" >"$WORK/row" <<'EOF'
import json, sys
mode, t, mb, w, f, s, hz, l0, l1, poll = sys.argv[1:]
hz = int(hz)
print(json.dumps({"mode": mode, "seconds": float(t), "mbps": float(mb),
                  "worker_cpu_s": int(w) / hz, "front_cpu_s": int(f) / hz,
                  "machine_busy_s": int(s) / hz, "load": [float(l0), float(l1)],
                  "poll": json.loads(poll)}))
EOF
    cat "$WORK/row" >&2
    [ "${2:-}" = warm-up ] || cat "$WORK/row" >>"$WORK/rows"
}

# The worker's CPU per request, with no job running: CLIENTS pollers for
# IDLE_SECS seconds, with the token and then with the admin's session
# cookie (which polling does not keep alive, nor need to: 10 min idle).
idle_cost() { # $1 = label, $2 = header
    local w0 w1 f0 f1 front
    front=$(front_pid)
    w0=$(cpu_ticks "$DAEMON"); f0=$(cpu_ticks "$front")
    API_LOAD_AUTH_HEADER="$2" "$POLLER" --url "https://127.0.0.1:$PORT" --cacert "$CERT" \
        --clients "$CLIENTS" --duration "$IDLE_SECS" >"$WORK/idle.json" 2>"$WORK/idle.err" \
        || { cat "$WORK/idle.err" >&2; exit 1; }
    w1=$(cpu_ticks "$DAEMON"); f1=$(cpu_ticks "$front")
    python3 - "$1" "$((w1 - w0))" "$((f1 - f0))" "$HZ" "$WORK/idle.json" <<'EOF' >>"$WORK/idle-rows"
import json, sys
label, w, f, hz, path = sys.argv[1:]
p = json.load(open(path))
n = max(p["requests"], 1)
print(f"| {label} | {p['requests']} | {p['errors']} | {int(w) / int(hz) * 1000 / n:.3f} | {int(f) / int(hz) * 1000 / n:.3f} | {p['cpu_seconds'] * 1000 / n:.3f} | {p['latency_ms']['p50']:.1f} | {p['latency_ms']['p99']:.1f} |")
EOF
}
IDLE_SECS=${IDLE_SECS:-20}
: >"$WORK/idle-rows"
for rep in 1 2; do
    idle_cost "API token" "Authorization: Bearer $TOKEN"
    idle_cost "session cookie" "Cookie: __Host-lethe_session=$COOKIE"
done

: >"$WORK/rows"
run a warm-up
for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then run a; run b; else run b; run a; fi
done

python3 - "$WORK/rows" "$CLIENTS" "$SIZE_MIB" "$PASSES" <<'EOF' | tee "$REPORT"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
clients, size, passes = sys.argv[2:]
import os
limit = os.environ.get("THROTTLE_MBPS") or "no"
print(f"4 wipes x {size} MiB x {passes} passes (random, verify sample:1), {limit} MB/s limit per device; (b): {clients} pollers, GET /api/v1/status ~1/s each, auditor token")
print()
print("| run | mode | wall s | aggregate MB/s | worker CPU s | front CPU s | poller CPU s | other CPU s | load avg | requests | errors | p50 ms | p90 ms | p99 ms | max ms |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for i, r in enumerate(rows, 1):
    p = r["poll"]
    # The poller's CPU over its whole life (about 3 s longer than the run);
    # "other" is the rest of the machine's busy time (other processes, the
    # script's own status polling).
    pc = p["cpu_seconds"] if p else 0.0
    other = r["machine_busy_s"] - r["worker_cpu_s"] - r["front_cpu_s"] - pc
    if p:
        l = p["latency_ms"]
        extra = f"{p['requests']} | {p['errors']} | {l['p50']:.1f} | {l['p90']:.1f} | {l['p99']:.1f} | {l['max']:.1f}"
    else:
        extra = "- | - | - | - | - | -"
    mode = "a (no client)" if r["mode"] == "a" else f"b ({clients} clients)"
    load = f"{r['load'][0]:.1f}-{r['load'][1]:.1f}"
    pcs = f"{pc:.2f}" if p else "-"
    print(f"| {i} | {mode} | {r['seconds']:.1f} | {r['mbps']:.1f} | {r['worker_cpu_s']:.1f} | {r['front_cpu_s']:.2f} | {pcs} | {other:.1f} | {load} | {extra} |")
a = [r["mbps"] for r in rows if r["mode"] == "a"]
b = [r["mbps"] for r in rows if r["mode"] == "b"]
ma, mb = sum(a) / len(a), sum(b) / len(b)
errors = sum(r["poll"]["errors"] for r in rows if r["poll"])
print()
print(f"median (a) {statistics.median(a):.1f}, median (b) {statistics.median(b):.1f} (ratio {statistics.median(b) / statistics.median(a):.3f}); "
      f"mean (a) {ma:.1f} MB/s, mean (b) {mb:.1f} MB/s, ratio b/a {mb / ma:.3f} "
      f"(target >= 0.95: {'met' if mb / ma >= 0.95 else 'NOT met'}); poller errors: {errors}")
for r in rows:
    if r["poll"] and r["poll"].get("first_error"):
        print("first error:", r["poll"]["first_error"])
EOF
{
    echo
    echo "No job running: $CLIENTS pollers for $IDLE_SECS s each, CPU per request (ms):"
    echo
    echo "| credential | requests | errors | worker | front | poller | p50 ms | p99 ms |"
    echo "|---|---|---|---|---|---|---|---|"
    cat "$WORK/idle-rows"
} | tee -a "$REPORT"
echo "report: $REPORT"
