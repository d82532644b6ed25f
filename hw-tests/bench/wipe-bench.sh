#!/usr/bin/env bash
# Overwrite and verify throughput of `lethe wipe` against dd and nwipe, on the
# same loop device in the same run. Writes only to loop devices it creates.
#
# Usage: hw-tests/bench/wipe-bench.sh [SIZE_MIB] [RUNS] [NWIPE_RUNS]
#   SIZE_MIB    size of each loop device (default 2048)
#   RUNS        repetitions of dd and lethe; the median is reported (default 5)
#   NWIPE_RUNS  repetitions of nwipe (default 1: Debian's nwipe 0.33 writes
#               4 KiB blocks through the page cache and takes minutes per GiB)
# Needs root, losetup, nwipe and GNU time (apt-get install nwipe time).
# Prints a Markdown table; the same table is written to bench-out/wipe-<date>.md.
set -euo pipefail

SIZE_MIB=${1:-2048}
RUNS=${2:-5}
NWIPE_RUNS=${3:-1}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT_DIR="$ROOT/bench-out"
mkdir -p "$OUT_DIR"
REPORT="$OUT_DIR/wipe-$(date -u +%Y%m%dT%H%M%SZ).md"

for tool in losetup nwipe /usr/bin/time dd; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nwipe time)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "run as root (loop devices)" >&2; exit 1; }

cargo build --release -q -p lethe-cli --manifest-path "$ROOT/Cargo.toml"
LETHE="${CARGO_TARGET_DIR:-$ROOT/target}/release/lethe"

WORK=$(mktemp -d)
LOOPS=()
cleanup() {
    for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null || true; done
    rm -rf "$WORK" "${DISK_DIR:-}"
}
trap cleanup EXIT

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# Seconds of wall time of a command (GNU time), output discarded.
secs() { /usr/bin/time -f %e -o "$WORK/t" "$@" >"$WORK/out" 2>&1 || true; cat "$WORK/t" | tail -1; }

bench_device() { # label backing-file direct-io
    local label=$1 file=$2 dio=$3
    local bytes=$((SIZE_MIB * 1048576))
    # Allocate every block first so no run pays for tmpfs/ext4 allocation.
    dd if=/dev/zero of="$file" bs=4M count=$((SIZE_MIB / 4)) status=none conv=fsync
    local loop
    loop=$(losetup --find --show --direct-io="$dio" "$file")
    LOOPS+=("$loop")
    local dd_w=() lethe_w=() nwipe_w=() dd_r=() lethe_r=() rss=()
    for _ in $(seq "$RUNS"); do
        dd_w+=("$(secs dd if=/dev/zero of="$loop" bs=4M oflag=direct)")
        local state="$WORK/state"
        rm -rf "$state"
        /usr/bin/time -f "%e %M" -o "$WORK/t" "$LETHE" --state-dir "$state" wipe "$loop" --operator-id bench \
            --pattern random --verify off --yes --json >"$WORK/lethe.json" 2>"$WORK/lethe.err" || true
        grep -q '"result":"unverified"' "$WORK/lethe.json" || { cat "$WORK/lethe.err" >&2; exit 1; }
        # GNU time adds a "Command exited with non-zero status" line first
        # (--verify off is "unverified", exit 5): the figures are on the last line.
        read -r t m < <(tail -1 "$WORK/t")
        lethe_w+=("$t"); rss+=("$m")
        dd_r+=("$(secs dd if="$loop" of=/dev/null bs=4M iflag=direct)")
        # Verify throughput: the read-back phase of a zero wipe with full verification.
        rm -rf "$state"
        "$LETHE" --state-dir "$state" wipe "$loop" --operator-id bench --pattern zero --verify full --yes --json \
            >"$WORK/v.json" 2>"$WORK/v.err" || { cat "$WORK/v.err" >&2; exit 1; }
        lethe_r+=("$(tail -1 "$WORK/v.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["verify_seconds"])')")
    done
    for _ in $(seq "$NWIPE_RUNS"); do
        nwipe_w+=("$(secs nwipe --autonuke --nogui --nowait --method=random --verify=off --noblank "$loop")")
    done
    local m_dd m_le m_nw m_ddr m_ler m_rss
    m_dd=$(printf '%s\n' "${dd_w[@]}" | median)
    m_le=$(printf '%s\n' "${lethe_w[@]}" | median)
    m_nw=$(printf '%s\n' "${nwipe_w[@]}" | median)
    m_ddr=$(printf '%s\n' "${dd_r[@]}" | median)
    m_ler=$(printf '%s\n' "${lethe_r[@]}" | median)
    m_rss=$(printf '%s\n' "${rss[@]}" | sort -g | tail -1)
    python3 - "$label" "$bytes" "$m_dd" "$m_le" "$m_nw" "$m_ddr" "$m_ler" "$m_rss" <<'PY' | tee -a "$REPORT"
import sys
label, size, dd, le, nw, ddr, ler, rss = sys.argv[1], int(sys.argv[2]), *map(float, sys.argv[3:8]), int(sys.argv[8])
mbps = lambda t: size / t / 1e6 if t > 0 else float("nan")
print(f"| {label} | write | dd zero-fill {mbps(dd):.0f} MB/s | lethe random {mbps(le):.0f} MB/s | **{dd/le:.2f}** (lethe/dd) |")
print(f"| {label} | write | nwipe random {mbps(nw):.0f} MB/s | lethe random {mbps(le):.0f} MB/s | **{nw/le:.2f}** (lethe/nwipe) |")
print(f"| {label} | verify read | dd read {mbps(ddr):.0f} MB/s | lethe verify {mbps(ler):.0f} MB/s | **{ddr/ler:.2f}** (lethe/dd) |")
print(f"| {label} | peak RSS | | lethe {rss/1024:.1f} MiB | |")
PY
    losetup -d "$loop"
}

{
    echo "# lethe wipe benchmark, $(date -u +%FT%TZ)"
    echo
    echo "size ${SIZE_MIB} MiB, median of ${RUNS} runs (nwipe: ${NWIPE_RUNS}), $(nproc) cores, $(uname -r), nwipe $(nwipe --version 2>/dev/null | head -1)"
    echo "command: hw-tests/bench/wipe-bench.sh ${SIZE_MIB} ${RUNS} ${NWIPE_RUNS}"
    echo
    echo "| backing | phase | baseline | lethe | ratio |"
    echo "|---|---|---|---|---|"
} | tee "$REPORT"

bench_device "tmpfs loop" "/dev/shm/lethe-bench-$$.img" off
rm -f "/dev/shm/lethe-bench-$$.img"
DISK_DIR=$(mktemp -d -p "${BENCH_DISK_DIR:-$ROOT/target}")
bench_device "disk loop (direct-io)" "$DISK_DIR/disk.img" on
echo
echo "report: $REPORT"
