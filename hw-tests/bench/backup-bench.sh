#!/usr/bin/env bash
# Backup benchmark: lethe against restic and borgbackup (Debian packages) on
# the same deterministic dataset, in one run:
#   first backup, second backup (5 % changed), full restore, repository size,
#   peak RSS. Prints a markdown table with ratios (peer / lethe).
# Usage: sudo hw-tests/bench/backup-bench.sh [MIB=2048] [WORKDIR=/var/tmp/lethe-bbench]
set -euo pipefail
cd "$(dirname "$0")/../.."
MIB=${1:-2048}
W=${2:-/var/tmp/lethe-bbench}
command -v restic >/dev/null && command -v borg >/dev/null || {
    echo "needs restic and borgbackup: apt-get install restic borgbackup" >&2; exit 1; }
cargo build -q --release -p lethe-cli --bin lethe
cargo build -q --release -p lethe-hw-tests --example backup_dataset
LETHE=$PWD/target/release/lethe
GEN=$PWD/target/release/examples/backup_dataset
rm -rf "$W"; mkdir -p "$W"
DATA=$W/data
"$GEN" create "$DATA" "$MIB"
export RESTIC_PASSWORD=bench BORG_PASSPHRASE=bench LETHE_PASSWORD=bench
export RESTIC_CACHE_DIR=$W/restic-cache BORG_BASE_DIR=$W/borg-base
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
sync

# t NAME CMD...: wall seconds and peak RSS (KiB) into $W/NAME.
t() {
    local name=$1; shift
    sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
    /usr/bin/time -f "%e %M" -o "$W/$name" "$@" >"$W/$name.out" 2>&1 || {
        echo "FAILED: $name"; cat "$W/$name.out"; exit 1; }
}
# All three back up the same $DATA, then its second generation.
$LETHE backup --repo "$W/lethe-repo" init >/dev/null
restic -q init --repo "$W/restic-repo" >/dev/null
borg init -e repokey-blake2 "$W/borg-repo" >/dev/null

t lethe1  $LETHE backup --repo "$W/lethe-repo" run "$DATA"
t restic1 restic --repo "$W/restic-repo" backup --compression auto "$DATA"
t borg1   borg create --compression zstd,3 "$W/borg-repo::g1" "$DATA"

"$GEN" mutate "$DATA"
t lethe2  $LETHE backup --repo "$W/lethe-repo" run "$DATA"
t restic2 restic --repo "$W/restic-repo" backup --compression auto "$DATA"
t borg2   borg create --compression zstd,3 "$W/borg-repo::g2" "$DATA"

mkdir -p "$W/r-lethe" "$W/r-restic" "$W/r-borg"
t lethe3  $LETHE backup --repo "$W/lethe-repo" restore latest --target "$W/r-lethe"
t restic3 restic --repo "$W/restic-repo" restore latest --target "$W/r-restic"
t borg3   sh -c "cd '$W/r-borg' && borg extract '$W/borg-repo::g2'"
# Every restore must equal the source.
diff -r "$DATA" "$W/r-lethe/$(basename "$DATA")" >/dev/null || { echo "RESTORE MISMATCH: lethe"; exit 1; }
diff -r "$DATA" "$W/r-restic$DATA" >/dev/null || { echo "RESTORE MISMATCH: restic"; exit 1; }
diff -r "$DATA" "$W/r-borg$DATA" >/dev/null || { echo "RESTORE MISMATCH: borg"; exit 1; }

size() { du -sb "$1" | cut -f1; }
field() { cut -d' ' -f"$2" "$W/$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
echo
echo "dataset: $(size "$DATA") bytes after the second generation ($MIB MiB generated); $(nproc) cores"
echo
echo "| step | lethe | restic | borg | restic/lethe | borg/lethe |"
echo "|---|---|---|---|---|---|"
for s in 1 2 3; do
    name=$( [ $s = 1 ] && echo "first backup (s)" || { [ $s = 2 ] && echo "second backup (s)" || echo "full restore (s)"; } )
    l=$(field lethe$s 1); r=$(field restic$s 1); b=$(field borg$s 1)
    echo "| $name | $l | $r | $b | $(ratio "$r" "$l") | $(ratio "$b" "$l") |"
done
for s in 1 2 3; do
    l=$(field lethe$s 2); r=$(field restic$s 2); b=$(field borg$s 2)
    echo "| peak RSS step $s (MiB) | $((l/1024)) | $((r/1024)) | $((b/1024)) | $(ratio "$r" "$l") | $(ratio "$b" "$l") |"
done
l=$(size "$W/lethe-repo"); r=$(size "$W/restic-repo"); b=$(size "$W/borg-repo")
echo "| repository size (MiB) | $((l>>20)) | $((r>>20)) | $((b>>20)) | $(ratio "$r" "$l") | $(ratio "$b" "$l") |"
