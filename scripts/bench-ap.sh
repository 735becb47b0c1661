#!/usr/bin/env bash
# `aplaunch ap list --json` and `aplaunch ap check` on a large generated AP host
# (16 adapters x 85 domains = 1360 queues, 64 mdevs with autostart definitions) and on the
# same host doubled (32 x 85 = 2720 queues, 128 mdevs): medians and growth.
# Needs: hyperfine, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in hyperfine python3; do
    command -v "$tool" >/dev/null || { echo "bench-ap: $tool is missing (apt-get install hyperfine)" >&2; exit 2; }
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
hyperfine -N --warmup 10 --min-runs 100 -i --export-json "$out/ap.json" \
    "$bin --host-root $out/host ap list --json" \
    "$bin --host-root $out/host ap check" \
    "$bin --host-root $out/host2x ap list --json" \
    "$bin --host-root $out/host2x ap check" >&2
python3 - "$out/ap.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
names = ["ap list --json", "ap check", "ap list --json (2x)", "ap check (2x)"]
for n, x in zip(names, r):
    print(f"{n:22} median {x['median']*1e3:6.2f} ms  mean {x['mean']*1e3:6.2f}  min {x['min']*1e3:6.2f}  user {x['user']*1e3:6.2f}  system {x['system']*1e3:6.2f}")
print(f"growth when the host doubles (2x queues, 2x mdevs): ap list {r[2]['median']/r[0]['median']:.2f}x, ap check {r[3]['median']/r[1]['median']:.2f}x")
PY
