#!/usr/bin/env bash
# The whole test suite: unit, property and integration tests of every crate,
# the loop-device tier (needs root), and the firmware workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${LETHE_SKIP_SETUP:-0}" = 1 ] || bash hw-tests/setup.sh

cargo test --workspace --no-fail-fast 2>&1 | tee "${TMPDIR:-/tmp}/lethe-test.log"
status=${PIPESTATUS[0]}
if [ -f firmware/Cargo.toml ]; then
    (cd firmware && bash ./test.sh) || status=1
fi
# One closing line over every test binary, for humans and CI.
awk '/^test result:/ {p+=$4; f+=$6; i+=$8} END {printf "workspace: %d passed, %d failed, %d skipped\n", p, f, i}' \
    "${TMPDIR:-/tmp}/lethe-test.log"
exit "$status"
