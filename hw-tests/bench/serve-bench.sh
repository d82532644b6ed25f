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
set -euo pipefail

SIZE_MIB=${1:-512}
IDLE_SECS=${2:-30}
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
    rm -rf "$WORK"
}
trap cleanup EXIT

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
run_jobs() {
    local t0 t1 n=$#
    t0=$(date +%s.%N)
    LOOPS=()
    for i in "$@"; do LOOPS+=("$(losetup --find --show "$WORK/d-$i.img")"); done
    while :; do
        local passed
        passed=$("$LETHE" status --json --runtime-dir "$WORK/run" | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(sum(1 for b in s["bays"] if b["state"] == "passed") if not s["running"] else -1)
for b in s["bays"]:
    if b["state"] == "failed": sys.exit("a job failed: " + str(b))')
        [ "$passed" -ge "$n" ] && break
        sleep 0.05
    done
    t1=$(date +%s.%N)
    for l in "${LOOPS[@]}"; do losetup -d "$l"; done
    LOOPS=()
    sleep 0.5
    python3 -c "print(f'{$t1 - $t0:.3f}')"
}

fio_all() { # fio writes devices $@ at once; prints MB/s (aggregate)
    LOOPS=()
    local args=()
    for i in "$@"; do
        local l
        l=$(losetup --find --show "$WORK/d-$i.img")
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

start_daemon
declare -A single
for i in 1 2 3 4; do single[$i]=$(run_jobs "$i"); done
{
    echo "| parallel wipes | daemon aggregate MB/s | sum of single daemon wipes MB/s | ratio | fio on the same devices at once MB/s | ratio |"
    echo "|---|---|---|---|---|---|"
} | tee "$REPORT"
for n in 1 2 4; do
    ids=$(seq 1 "$n")
    # shellcheck disable=SC2086
    t=$(run_jobs $ids)
    agg=$(mbps "$n" "$t")
    sum=$(for i in $ids; do mbps 1 "${single[$i]}"; done | python3 -c 'import sys; print(f"{sum(float(l) for l in sys.stdin):.1f}")')
    # shellcheck disable=SC2086
    f=$(fio_all $ids)
    python3 -c "print(f'| $n | $agg | $sum | {$agg/$sum:.2f} | $f | {$agg/$f:.2f} |')" | tee -a "$REPORT"
done

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
