#!/usr/bin/env bash
# The auditor pack for the current version and commit (docs/auditor-pack.md):
# documents as one PDF and an HTML folder, test results by safeguard, the
# benchmark summary, a CycloneDX SBOM, dependencies with licences, changes
# since the previous version, and a MANIFEST of SHA-256 sums signed with the
# release key. Checked with `lethe verify-pack` before this script ends.
#
#   sudo hw-tests/pack.sh                        # runs the whole test suite first
#   hw-tests/pack.sh --results target/test-results   # reuse a run of run-tests.sh (CI)
#
# Options: --results DIR (a run-tests.sh results folder of this commit),
# --out DIR (default target/auditor-pack), --previous DIR|git:REV|auto|none
# (default auto: the newest v* tag before HEAD).
# The release key: LETHE_RELEASE_KEY=/path/release.key (64 hex digits, mode
# 0600) and LETHE_RELEASE_PUB=/path/release.pub to check against; without
# them a throw-away key signs the pack, and the pack says so.
set -euo pipefail
cd "$(dirname "$0")/.."
results="" out="target/auditor-pack" previous="auto"
while [ $# -gt 0 ]; do
    case "$1" in
        --results) results=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --previous) previous=$2; shift 2 ;;
        *) echo "pack.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ "${LETHE_SKIP_SETUP:-0}" = 1 ] || bash hw-tests/setup.sh

status=0
if [ -z "$results" ]; then
    results=${LETHE_RESULTS_DIR:-target/test-results}
    LETHE_SKIP_SETUP=1 LETHE_RESULTS_DIR="$results" bash hw-tests/run-tests.sh || status=$?
fi

cargo build -q -p lethe-cli
mkdir -p "$out"
cargo run -q --profile test -p lethe-hw-tests --bin auditor-pack -- build \
    --results "$results" --out "$out" --previous "$previous"
dir=$(ls -1td "$out"/lethe-auditor-pack-* | head -1)
[ -n "$dir" ] || { echo "pack.sh: no pack was written in $out" >&2; exit 1; }

# The pack must verify: against the configured release public key, or (a
# throw-away key) against the key the pack names.
key=${LETHE_RELEASE_PUB:-$dir/release.pub}
target/debug/lethe verify-pack "$dir" --key "$key"
echo "auditor pack: $dir (PDF: $dir/lethe-auditor-pack.pdf, HTML: $dir/html/index.html)"
exit "$status"
