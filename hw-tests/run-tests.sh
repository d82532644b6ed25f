#!/usr/bin/env bash
# The whole test suite: unit, property and integration tests of every crate,
# the loop-device and QEMU tiers (need root), and the firmware workspace.
#
# The closing line counts passed, failed and skipped tests honestly: a test
# that cannot run its tier prints "SKIPPED: …" and returns, which libtest
# counts as passed; hw-tests/summarize.awk finds those lines in the
# --show-output log and counts them as skipped. With CI=true a skipped test
# (other than an opt-in tier such as the real drives) fails the run.
#
# The run is kept for the auditor pack (hw-tests/pack.sh) in
# $LETHE_RESULTS_DIR (default target/test-results): test.log (every test's
# output), binaries.json and firmware-binaries.json (which test binary is
# which crate and target), junit.xml, commit and summary.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${LETHE_SKIP_SETUP:-0}" = 1 ] || bash hw-tests/setup.sh

# The QEMU drive tier boots the kernel setup.sh extracted (skipped loudly without it).
QCACHE=${LETHE_QEMU_CACHE:-/var/cache/lethe-qemu}
if [ -x "$QCACHE/bb/bin/busybox" ]; then
    export LETHE_QEMU_KERNEL_ROOT=${LETHE_QEMU_KERNEL_ROOT:-$QCACHE/kroot}
    export LETHE_BUSYBOX=${LETHE_BUSYBOX:-$QCACHE/bb/bin/busybox}
fi

RESULTS=${LETHE_RESULTS_DIR:-target/test-results}
mkdir -p "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd)
LOG="$RESULTS/test.log"
rm -f "$RESULTS"/{test.log,binaries.json,firmware-binaries.json,junit.xml,commit,summary.txt}
# The commit the run tested (the pack refuses results of another commit).
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || commit="$commit+dirty"
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
# Which binary is which crate and target (already built: nothing compiles),
# then the run as JUnit XML.
cargo test --workspace --no-run --message-format=json >"$RESULTS/binaries.json" 2>/dev/null
(cd firmware && cargo test -p lethe-fw-logic --no-run --message-format=json) >"$RESULTS/firmware-binaries.json" 2>/dev/null
echo "$commit" >"$RESULTS/commit"
if ! cargo run -q --profile test -p lethe-hw-tests --bin auditor-pack -- junit --log "$LOG" \
    --binaries "$RESULTS/binaries.json" --binaries "$RESULTS/firmware-binaries.json" \
    --out "$RESULTS/junit.xml"; then
    echo "could not write $RESULTS/junit.xml" >&2
    status=1
fi
set -e
# Failures in full, then one closing line over every test binary.
awk '/^failures:$/ {f=1} f {print} /^test result:/ {f=0}' "$LOG"
ci=0
[ "${CI:-}" = true ] && ci=1
if ! awk -v ci="$ci" -f hw-tests/summarize.awk "$LOG" | tee "$RESULTS/summary.txt"; then
    echo "CI=true: a test skipped its tier; every tier must run in CI" >&2
    status=1
fi
exit "$status"
