#!/usr/bin/env bash
# A short run of every cargo-fuzz target (fuzz/fuzz_targets/*.rs) when a nightly toolchain
# is available; prints why it skips otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${FUZZ_SECONDS:-20}
if [ ! -d fuzz/fuzz_targets ]; then
    echo "fuzz smoke: no fuzz targets"
    exit 0
fi
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "fuzz smoke: skipped, no nightly toolchain"
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo +nightly install cargo-fuzz --locked -q
fi
for target in fuzz/fuzz_targets/*.rs; do
    name=$(basename "$target" .rs)
    echo "fuzz smoke: $name for ${SECONDS_PER_TARGET}s"
    cargo +nightly fuzz run "$name" -- -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 2>&1 | tail -n 4
    [ "${PIPESTATUS[0]}" -eq 0 ] || exit 1
done
