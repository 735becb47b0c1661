#!/usr/bin/env bash
# Benchmark of `aplaunch image verify` (full integrity: PLD/ALD/TLD/nep in one pass)
# against `openssl dgst -sha512` over the same file in the same run, plus peak RSS and the
# cached re-verify. The image is made by the test writer (testkit's mkseimg).
#
#   scripts/bench-image.sh            # 1 GiB image
#   SIZE=256M RUNS=3 scripts/bench-image.sh
#
# Needs: hyperfine, openssl, jq, GNU time (/usr/bin/time; Debian package `time`).
set -euo pipefail

cd "$(dirname "$0")/.."
SIZE=${SIZE:-1G}
RUNS=${RUNS:-5}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/aplaunch-bench-image.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

for tool in hyperfine openssl jq; do
    command -v "$tool" >/dev/null || { echo "bench-image: $tool is missing" >&2; exit 3; }
done
[ -x /usr/bin/time ] || { echo "bench-image: /usr/bin/time is missing (apt-get install time)" >&2; exit 3; }

cargo build --release -q -p aplaunch --bin aplaunch
cargo build --release -q -p testkit --bin mkseimg
APLAUNCH=$PWD/target/release/aplaunch
IMG=$WORK/bench-se.img
target/release/mkseimg "$IMG" "$SIZE"
BYTES=$(stat -c %s "$IMG")
export APLAUNCH_CACHE_DIR=$WORK/cache
VERIFY=("$APLAUNCH" --host-root examples/hosts/z16-se image verify)

# Both read the file from the page cache.
cat "$IMG" >/dev/null

hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$WORK/full.json" \
    -n "aplaunch image verify --no-cache" "${VERIFY[*]} --no-cache -q $IMG" \
    -n "openssl dgst -sha512" "openssl dgst -sha512 $IMG"

median() { jq -r --arg n "$1" '.results[] | select(.command == $n) | .median' "$WORK/full.json"; }
A=$(median "aplaunch image verify --no-cache")
O=$(median "openssl dgst -sha512")
user() { jq -r --arg n "$1" '.results[] | select(.command == $n) | .user' "$WORK/full.json"; }
AU=$(user "aplaunch image verify --no-cache")
OU=$(user "openssl dgst -sha512")

rss() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident set size/ {print $2}'; }
ARSS=$(rss "${VERIFY[@]}" --no-cache "$IMG")
ORSS=$(rss openssl dgst -sha512 "$IMG")

# Cached re-verify: one full verification stores the result, then the whole process
# (parse, ultravisor files, cache lookup) is timed.
"${VERIFY[@]}" -q "$IMG"
hyperfine -N --warmup 5 --runs 100 --export-json "$WORK/cached.json" \
    -n "aplaunch image verify (cached)" "${VERIFY[*]} -q $IMG"
C=$(jq -r '.results[0].median' "$WORK/cached.json")

awk -v b="$BYTES" -v a="$A" -v o="$O" -v au="$AU" -v ou="$OU" -v ar="$ARSS" -v or="$ORSS" -v c="$C" 'BEGIN {
    mib = b / 1048576
    printf "\nimage: %.0f MiB\n", mib
    printf "aplaunch image verify --no-cache: median %.3f s, %.0f MiB/s (user %.2f s), peak RSS %.1f MiB\n", a, mib / a, au, ar / 1024
    printf "openssl dgst -sha512:             median %.3f s, %.0f MiB/s (user %.2f s), peak RSS %.1f MiB\n", o, mib / o, ou, or / 1024
    printf "throughput ratio aplaunch/openssl: %.2fx (wall), %.2fx (user CPU)\n", o / a, ou / au
    printf "cached re-verify (whole process): median %.2f ms\n", c * 1000
}'
