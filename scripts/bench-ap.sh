#!/usr/bin/env bash
# `aplaunch ap list --json` and `aplaunch ap check` on a large generated AP host
# (16 adapters x 85 domains = 1360 queues, 64 mdevs with autostart definitions) and on the
# same host doubled (32 x 85 = 2720 queues, 128 mdevs): medians and growth.
# Needs: python3.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in python3; do
    command -v "$tool" >/dev/null || { echo "bench-ap: $tool is missing (apt-get install python3)" >&2; exit 2; }
done
cargo build --release -q --bin aplaunch -p aplaunch
cargo build --release -q --bin gen-ap-host -p testkit
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
target/release/gen-ap-host "$out/host" 16 85 64 >&2
target/release/gen-ap-host "$out/host2x" 32 85 128 >&2
bin=target/release/aplaunch
for h in host host2x; do
    # the checks must pass (mdev-free skips: the tree's VFIO nodes are plain files)
    "$bin" --host-root "$out/$h" ap check >/dev/null
done
python3 scripts/bench-interleaved.py --rounds 100 --warmup 10 --ok-exit 0 --ok-exit 1 --json "$out/ap.json" \
    "ap list --json=$bin --host-root $out/host ap list --json" \
    "ap check=$bin --host-root $out/host ap check" \
    "ap list --json (2x)=$bin --host-root $out/host2x ap list --json" \
    "ap check (2x)=$bin --host-root $out/host2x ap check" >&2
python3 - "$out/ap.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["summary"]
print(f"growth when the host doubles (2x queues, 2x mdevs): ap list {r[2]['median_ms']/r[0]['median_ms']:.2f}x, ap check {r[3]['median_ms']/r[1]['median_ms']:.2f}x (ratio of medians)")
PY
