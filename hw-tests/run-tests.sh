#!/usr/bin/env bash
# The whole test suite: unit, property and integration tests of every crate,
# the loop-device tier (needs root), and the firmware workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${LETHE_SKIP_SETUP:-0}" = 1 ] || bash hw-tests/setup.sh

# The QEMU drive tier boots the kernel setup.sh extracted (skipped loudly without it).
QCACHE=${LETHE_QEMU_CACHE:-/var/cache/lethe-qemu}
if [ -x "$QCACHE/bb/bin/busybox" ]; then
    export LETHE_QEMU_KERNEL_ROOT=${LETHE_QEMU_KERNEL_ROOT:-$QCACHE/kroot}
    export LETHE_BUSYBOX=${LETHE_BUSYBOX:-$QCACHE/bb/bin/busybox}
fi

# A failing test must not stop the script before the firmware tests and the
# summary line: collect the status instead of letting `set -e` exit.
set +e
cargo test --workspace --no-fail-fast 2>&1 | tee "${TMPDIR:-/tmp}/lethe-test.log"
status=${PIPESTATUS[0]}
# The firmware logic runs its host tests in its own workspace (the board
# image itself is built and booted in QEMU by hw-tests/tests/firmware_qemu.rs).
(cd firmware && cargo test -p lethe-fw-logic --no-fail-fast) 2>&1 | tee -a "${TMPDIR:-/tmp}/lethe-test.log"
[ "${PIPESTATUS[0]}" = 0 ] || status=1
# One closing line over every test binary, for humans and CI.
awk '/^test result:/ {p+=$4; f+=$6; i+=$8} END {printf "workspace: %d passed, %d failed, %d skipped\n", p, f, i}' \
    "${TMPDIR:-/tmp}/lethe-test.log"
exit "$status"
