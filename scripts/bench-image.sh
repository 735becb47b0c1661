#!/usr/bin/env bash
# Benchmark of `aplaunch image verify` (full integrity: PLD/ALD/TLD/nep in one pass)
# against `openssl dgst -sha512` over the same file in the same run, plus peak RSS and the
# cached re-verify. The image is made by the test writer (testkit's mkseimg).
#
#   scripts/bench-image.sh            # 1 GiB image
#   SIZE=256M RUNS=3 scripts/bench-image.sh
#
# Needs: python3, openssl, jq, GNU time (/usr/bin/time; Debian package `time`).
set -euo pipefail

cd "$(dirname "$0")/.."
SIZE=${SIZE:-1G}
RUNS=${RUNS:-5}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/aplaunch-bench-image.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

for tool in python3 openssl jq; do
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

# Alternated run by run (scripts/bench-interleaved.py), so load changes hit both alike.
python3 scripts/bench-interleaved.py --rounds "$RUNS" --warmup 1 --json "$WORK/full.json" \
    "aplaunch image verify --no-cache=${VERIFY[*]} --no-cache -q $IMG" \
    "openssl dgst -sha512=openssl dgst -sha512 $IMG"

median() { jq -r --arg n "$1" '.summary[] | select(.label == $n) | .median_ms / 1000' "$WORK/full.json"; }
A=$(median "aplaunch image verify --no-cache")
O=$(median "openssl dgst -sha512")
# One core's SHA-512 speed as OpenSSL measures it (16 KiB blocks, in memory).
SPEED=$(openssl speed -evp sha512 -bytes 16384 -seconds 3 2>/dev/null | awk '/^sha512/ {print $NF}' | tr -d k)

rss() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident set size/ {print $2}'; }
ARSS=$(rss "${VERIFY[@]}" --no-cache "$IMG")
ORSS=$(rss openssl dgst -sha512 "$IMG")

# Cached re-verify: one full verification stores the result, then the whole process
# (parse, ultravisor files, cache lookup) is timed.
"${VERIFY[@]}" -q "$IMG"
python3 scripts/bench-interleaved.py --rounds 100 --warmup 5 --json "$WORK/cached.json" \
    "aplaunch image verify (cached)=${VERIFY[*]} -q $IMG" >/dev/null
C=$(jq -r '.summary[0].median_ms / 1000' "$WORK/cached.json")

awk -v b="$BYTES" -v a="$A" -v o="$O" -v s="$SPEED" -v ar="$ARSS" -v or="$ORSS" -v c="$C" 'BEGIN {
    mib = b / 1048576
    printf "\nimage: %.0f MiB\n", mib
    core = s * 1000 / 1048576
    printf "aplaunch image verify --no-cache: median %.3f s, %.0f MiB/s, peak RSS %.1f MiB\n", a, mib / a, ar / 1024
    printf "openssl dgst -sha512:             median %.3f s, %.0f MiB/s, peak RSS %.1f MiB\n", o, mib / o, or / 1024
    printf "openssl speed -evp sha512 (16 KiB blocks, one core): %.0f MiB/s\n", core
    printf "aplaunch verify / one core SHA-512: %.2fx; / openssl dgst: %.2fx (ratio of medians)\n", (mib / a) / core, o / a
    printf "cached re-verify (whole process): median %.2f ms\n", c * 1000
}'
