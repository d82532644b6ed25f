# Sourced by the benchmarks: THROTTLE_MBPS=N makes loop devices drive-like.
#
# throttle_loops NAME: when THROTTLE_MBPS is set, limit loop0..loop31
# (created here if missing, so that whichever one `losetup --find` hands
# out is limited before a daemon's first write: an auto bay starts writing
# as soon as the device appears) to THROTTLE_MBPS MB/s (10^6 bytes) of
# writes and of reads, with blk-throttle (cgroup v2 io.max, or v1
# blkio.throttle.*_bps_device) in a cgroup named NAME-PID that this shell,
# and so everything it starts, runs in. The limit is per device and per
# cgroup: other users' devices and processes are not affected; it stays
# with a device across detach and re-attach.
# throttle_cleanup: leave and remove the cgroup (call it from the EXIT trap).
# check_throttled DEV: fail unless DEV is one of the limited devices.

MAX_LOOP=31
CG=
CG_ROOT=

throttle_loops() {
    [ -n "${THROTTLE_MBPS:-}" ] || return 0
    python3 - "$MAX_LOOP" <<'PY'
import fcntl, os, sys
LOOP_CTL_ADD = 0x4C80
fd = os.open("/dev/loop-control", os.O_RDWR)
for n in range(int(sys.argv[1]) + 1):
    if not os.path.exists(f"/sys/block/loop{n}"):
        fcntl.ioctl(fd, LOOP_CTL_ADD, n)
PY
    local bps=$((THROTTLE_MBPS * 1000000)) n
    if grep -qw io /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
        CG_ROOT=/sys/fs/cgroup
        grep -qw io "$CG_ROOT/cgroup.subtree_control" || echo +io >"$CG_ROOT/cgroup.subtree_control"
        CG="$CG_ROOT/$1-$$"
        mkdir "$CG"
        for n in $(seq 0 "$MAX_LOOP"); do
            echo "$(cat /sys/block/loop$n/dev) rbps=$bps wbps=$bps" >"$CG/io.max"
        done
    elif [ -f /sys/fs/cgroup/blkio/blkio.throttle.write_bps_device ]; then
        CG_ROOT=/sys/fs/cgroup/blkio
        CG="$CG_ROOT/$1-$$"
        mkdir "$CG"
        for n in $(seq 0 "$MAX_LOOP"); do
            echo "$(cat /sys/block/loop$n/dev) $bps" >"$CG/blkio.throttle.write_bps_device"
            echo "$(cat /sys/block/loop$n/dev) $bps" >"$CG/blkio.throttle.read_bps_device"
        done
    else
        echo "THROTTLE_MBPS: neither cgroup v2 io nor v1 blkio throttling here" >&2
        exit 1
    fi
    echo $$ >"$CG/cgroup.procs"
}

throttle_cleanup() {
    if [ -n "$CG" ]; then
        echo $$ >"$CG_ROOT/cgroup.procs"
        rmdir "$CG" 2>/dev/null || true
    fi
}

check_throttled() {
    [ -z "${THROTTLE_MBPS:-}" ] && return
    local n=${1#/dev/loop}
    [ "$n" -le "$MAX_LOOP" ] || { echo "$1 is not throttled (above loop$MAX_LOOP)" >&2; exit 1; }
}
