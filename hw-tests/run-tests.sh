#!/usr/bin/env bash
# The whole test suite: unit, property and integration tests of every crate,
# the loop-device and QEMU tiers (need root), and the firmware workspace.
#
# The closing line counts passed, failed and skipped tests honestly: a test
# that cannot run its tier prints "SKIPPED: …" and returns, which libtest
# counts as passed; hw-tests/summarize.awk finds those lines in the
# --show-output log and counts them as skipped. With CI=true a skipped test
# (other than an opt-in tier such as the real drives) fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${LETHE_SKIP_SETUP:-0}" = 1 ] || bash hw-tests/setup.sh

# The QEMU drive tier boots the kernel setup.sh extracted (skipped loudly without it).
QCACHE=${LETHE_QEMU_CACHE:-/var/cache/lethe-qemu}
if [ -x "$QCACHE/bb/bin/busybox" ]; then
    export LETHE_QEMU_KERNEL_ROOT=${LETHE_QEMU_KERNEL_ROOT:-$QCACHE/kroot}
    export LETHE_BUSYBOX=${LETHE_BUSYBOX:-$QCACHE/bb/bin/busybox}
fi

LOG="${TMPDIR:-/tmp}/lethe-test.log"
# The terminal sees the usual progress lines; the log keeps every test's output.
progress() { grep --line-buffered -E '^(test |     Running|   Doc-tests|test result|error)'; }

# A failing test must not stop the script before the firmware tests and the
# summary line: collect the status instead of letting `set -e` exit.
set +e
cargo test --workspace --no-fail-fast -- --show-output 2>&1 | tee "$LOG" | progress
status=${PIPESTATUS[0]}
# The firmware logic runs its host tests in its own workspace (the board
# image itself is built and booted in QEMU by hw-tests/tests/firmware_qemu.rs).
(cd firmware && cargo test -p lethe-fw-logic --no-fail-fast -- --show-output) 2>&1 | tee -a "$LOG" | progress
[ "${PIPESTATUS[0]}" = 0 ] || status=1
set -e
# Failures in full, then one closing line over every test binary.
awk '/^failures:$/ {f=1} f {print} /^test result:/ {f=0}' "$LOG"
ci=0
[ "${CI:-}" = true ] && ci=1
if ! awk -v ci="$ci" -f hw-tests/summarize.awk "$LOG"; then
    echo "CI=true: a test skipped its tier; every tier must run in CI" >&2
    status=1
fi
exit "$status"
