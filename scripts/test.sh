#!/usr/bin/env bash
# The test command: the whole workspace's tests (doc tests, then every unit and end-to-end
# test with cargo-nextest when installed, else cargo test).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --doc -q
if command -v cargo-nextest >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast "$@"
else
    cargo test --workspace --no-fail-fast "$@"
fi
