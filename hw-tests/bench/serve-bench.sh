#!/usr/bin/env bash
# Aggregate throughput of 1, 2 and 4 parallel wipes run by `lethe serve` (one
# job per loop device, all in one `auto` bay), against the sum of the same
# devices wiped one at a time by the daemon and against fio writing all of
# them at once; then the daemon's idle RSS and CPU. Writes only to loop
# devices it creates (over files in /dev/shm).
#
# Usage: hw-tests/bench/serve-bench.sh [SIZE_MIB] [IDLE_SECS]
#   SIZE_MIB   size of each loop device (default 512)
#   IDLE_SECS  how long the idle daemon is watched (default 30)
# LETHE=path/to/lethe uses that binary instead of a release build.
# Needs root, losetup, fio, python3 and the `lethe` user (hw-tests/setup.sh).
# Each daemon job: 1 pass of random, verify sample:1 (an auto bay must
# verify); the figure is bytes written / wall time from the first attach to
# the last job's end (so it includes hot-plug, the 1 % verification and the
# certificate), which is pessimistic for the daemon.
# Prints a Markdown table; the same table goes to bench-out/serve-<date>.md.
#
# THROTTLE_MBPS=N limits every loop device to N MB/s (10^6 bytes) of writes
# and of reads, like a drive: the daemon and fio run in a cgroup whose
# blk-throttle limit (cgroup v2 io.max, or v1 blkio.throttle.*_bps_device)
# is set on each loop device's MAJ:MIN. Without it the devices are memory,
# and every wipe is bound by the CPU generating the random stream.
set -euo pipefail

SIZE_MIB=${1:-512}
IDLE_SECS=${2:-30}
THROTTLE_MBPS=${THROTTLE_MBPS:-}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT_DIR="$ROOT/bench-out"
mkdir -p "$OUT_DIR"
REPORT="$OUT_DIR/serve-$(date -u +%Y%m%dT%H%M%SZ).md"

for tool in losetup fio python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool (hw-tests/setup.sh)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "run as root (loop devices)" >&2; exit 1; }
getent passwd lethe >/dev/null || { echo "no user lethe (hw-tests/setup.sh)" >&2; exit 1; }

if [ -z "${LETHE:-}" ]; then
    cargo build --release -q -p lethe-cli --manifest-path "$ROOT/Cargo.toml"
    LETHE="${CARGO_TARGET_DIR:-$ROOT/target}/release/lethe"
fi

WORK=$(mktemp -d /dev/shm/lethe-serve-bench-XXXXXX)
chmod 755 "$WORK"
LOOPS=()
DAEMON=
cleanup() {
    [ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null || true
    for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null || true; done
    throttle_cleanup
    rm -rf "$WORK"
}
trap cleanup EXIT

# THROTTLE_MBPS: drive-like loop devices (hw-tests/bench/throttle.sh).
. "$(dirname "$0")/throttle.sh"
throttle_loops lethe-serve-bench

cat >"$WORK/lethe.toml" <<EOF
[site]
operator_id = "bench"
[[bay]]
name = "bench"
match = ["loop:$WORK/d-*.img"]
policy = "auto"
pattern = "random"
verify = "sample:1"
EOF

for i in 1 2 3 4; do
    dd if=/dev/zero of="$WORK/d-$i.img" bs=4M count=$((SIZE_MIB / 4)) status=none
done

start_daemon() {
    rm -rf "$WORK/state" "$WORK/run"
    "$LETHE" --state-dir "$WORK/state" serve --config "$WORK/lethe.toml" \
        --runtime-dir "$WORK/run" 2>"$WORK/serve.log" &
    DAEMON=$!
    for _ in $(seq 100); do
        "$LETHE" status --json --runtime-dir "$WORK/run" >/dev/null 2>&1 && return
        sleep 0.1
    done
    cat "$WORK/serve.log" >&2; exit 1
}
stop_daemon() { kill "$DAEMON"; wait "$DAEMON" || true; DAEMON=; }

# Attach devices $@ (indexes), wait until every job passed; print seconds.
# One python process attaches and polls `lethe status` every 10 ms: a
# shell loop starting python for each poll adds 0.1-0.3 s per run on a
# loaded 2-vCPU machine, 2-6 % of a 5 s run, charged to the daemon.
run_jobs() {
    python3 - "$LETHE" "$WORK" "$MAX_LOOP" "$THROTTLE_MBPS" "$@" <<'PY'
import json, subprocess, sys, time
lethe, work, max_loop, throttle = sys.argv[1:5]
ids = sys.argv[5:]
t0 = time.time()
loops = []
try:
    for i in ids:
        loops.append(subprocess.check_output(
            ["losetup", "--find", "--show", f"{work}/d-{i}.img"]).decode().strip())
    if throttle and any(int(l.removeprefix("/dev/loop")) > int(max_loop) for l in loops):
        sys.exit(f"not throttled: {loops}")
    while True:
        s = json.loads(subprocess.check_output(
            [lethe, "status", "--json", "--runtime-dir", f"{work}/run"]))
        for b in s["bays"]:
            if b["state"] == "failed":
                sys.exit("a job failed: " + str(b))
        if not s["running"] and sum(b["state"] == "passed" for b in s["bays"]) >= len(ids):
            break
        time.sleep(0.01)
    t1 = time.time()
finally:
    for l in loops:
        subprocess.call(["losetup", "-d", l])
print(f"{t1 - t0:.3f}")
PY
    sleep 0.5
}

fio_all() { # fio writes devices $@ at once; prints MB/s (aggregate)
    LOOPS=()
    local args=()
    for i in "$@"; do
        local l
        l=$(losetup --find --show "$WORK/d-$i.img")
        check_throttled "$l"
        LOOPS+=("$l")
        args+=(--name="d$i" --filename="$l")
    done
    fio --output-format=json --rw=write --bs=4M --direct=1 --ioengine=libaio \
        --iodepth=4 --size="${SIZE_MIB}M" --group_reporting "${args[@]}" >"$WORK/fio.json"
    for l in "${LOOPS[@]}"; do losetup -d "$l"; done
    LOOPS=()
    python3 -c "import json; j=json.load(open('$WORK/fio.json')); print(f\"{j['jobs'][0]['write']['bw_bytes']/1e6:.1f}\")"
}

mbps() { python3 -c "print(f'{$1 * $SIZE_MIB * 1048576 / $2 / 1e6:.1f}')"; }

load0=$(cut -d' ' -f1-3 /proc/loadavg)
# fio first, with no daemon running: an auto bay would start wiping the
# devices fio writes (and fail the job when fio detaches them).
declare -A fio
for n in 1 2 4; do
    # shellcheck disable=SC2086
    fio[$n]=$(fio_all $(seq 1 "$n"))
done
start_daemon
declare -A single
for i in 1 2 3 4; do single[$i]=$(run_jobs "$i"); done
{
    echo "devices: ${SIZE_MIB} MiB each, ${THROTTLE_MBPS:-no} MB/s limit per device; load average before: $load0"
    echo
    echo "| parallel wipes | daemon aggregate MB/s | sum of single daemon wipes MB/s | ratio | fio on the same devices at once MB/s | ratio |"
    echo "|---|---|---|---|---|---|"
} | tee "$REPORT"
for n in 1 2 4; do
    ids=$(seq 1 "$n")
    # shellcheck disable=SC2086
    t=$(run_jobs $ids)
    agg=$(mbps "$n" "$t")
    sum=$(for i in $ids; do mbps 1 "${single[$i]}"; done | python3 -c 'import sys; print(f"{sum(float(l) for l in sys.stdin):.1f}")')
    f=${fio[$n]}
    python3 -c "print(f'| $n | $agg | $sum | {$agg/$sum:.2f} | $f | {$agg/$f:.2f} |')" | tee -a "$REPORT"
done

echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$REPORT"

# Idle: no drive, no job; RSS and CPU of the worker and its front.
sleep 2
front=$(cat /proc/"$DAEMON"/task/*/children | tr ' ' '\n' | grep -m1 .)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
w0=$(cpu "$DAEMON"); f0=$(cpu "$front")
sleep "$IDLE_SECS"
w1=$(cpu "$DAEMON"); f1=$(cpu "$front")
hz=$(getconf CLK_TCK)
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
{
    echo
    echo "| idle ${IDLE_SECS} s | RSS KiB | CPU % |"
    echo "|---|---|---|"
    python3 -c "print(f'| worker | $(rss "$DAEMON") | {($w1-$w0)/$hz/$IDLE_SECS*100:.2f} |')"
    python3 -c "print(f'| front | $(rss "$front") | {($f1-$f0)/$hz/$IDLE_SECS*100:.2f} |')"
} | tee -a "$REPORT"
stop_daemon
echo "report: $REPORT"
