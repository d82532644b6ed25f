#!/usr/bin/env bash
# Quick start: set up this machine, build lethe, create a 256 MiB + 4 KiB loop
# device over a temporary file, wipe it with a verified random overwrite, and
# check the signed certificate offline. Touches nothing but that loop device.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root: loop devices need it (from a root shell: $0; or: sudo $0)" >&2; exit 1; }
# Under sudo, root's PATH (secure_path) usually lacks the invoking account's
# rustup toolchain: use it from that account's home when root has none.
if ! command -v cargo >/dev/null && [ -n "${SUDO_USER:-}" ]; then
    home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
    if [ -x "$home/.cargo/bin/cargo" ]; then
        export PATH="$home/.cargo/bin:$PATH" RUSTUP_HOME="$home/.rustup" CARGO_HOME="$home/.cargo"
    fi
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup first (https://rustup.rs)" >&2; exit 1; }
bash hw-tests/setup.sh
cargo build --release -q -p lethe-cli
LETHE="${CARGO_TARGET_DIR:-$PWD/target}/release/lethe"

WORK=$(mktemp -d)
IMG="$WORK/retired-drive.img"
LOOP=""
cleanup() { [ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

# A "retired drive" with something on it.
truncate -s $((256 * 1024 * 1024 + 4096)) "$IMG"
printf 'PATIENT RECORD 0001: Jane Doe, DOB 1970-01-01\n' | dd of="$IMG" conv=notrunc status=none
LOOP=$(losetup --find --show "$IMG")
STATE="${LETHE_STATE_DIR:-$WORK/state}"

echo "== drives"
"$LETHE" drives
echo "== wipe $LOOP"
"$LETHE" --state-dir "$STATE" wipe "$LOOP" --yes --operator-id demo --operator-name "Demo Technician" \
    --asset-tag DEMO-0001 --destination reuse --blank
CERT=$(ls -t "$STATE"/certificates/*.json | head -1)
echo "== verify $CERT"
"$LETHE" cert verify "$CERT" --key "$STATE/keys/appliance.pub"
if grep -q "PATIENT RECORD" "$IMG"; then echo "data still present!" >&2; exit 1; fi
echo "== the backing file holds no trace of the old data; certificate and PDF:"
ls -l "$STATE"/certificates/
[ -n "${LETHE_STATE_DIR:-}" ] || { mkdir -p ./demo-output && cp "$STATE"/certificates/* ./demo-output/ && echo "copied to ./demo-output/"; }
