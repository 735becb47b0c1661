#!/usr/bin/env bash
# Whole-process wall time of `aplaunch check` on the example host against libvirt's
# `virt-host-validate qemu` on the same machine, in the same run (hyperfine, no shell).
# Needs: hyperfine, libvirt-clients (virt-host-validate), python3.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in hyperfine virt-host-validate python3; do
    command -v "$tool" >/dev/null || { echo "bench-check: $tool is missing (apt-get install hyperfine libvirt-clients)" >&2; exit 2; }
done
cargo build --release -q
out=$(mktemp -d)
hyperfine -N --warmup 20 --min-runs 200 -i --export-json "$out/check.json" \
    "target/release/aplaunch --host-root examples/hosts/z16-se check" \
    "virt-host-validate qemu" >&2
python3 - "$out/check.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
a, v = r[0]["median"] * 1e3, r[1]["median"] * 1e3
print(f"aplaunch check median: {a:.2f} ms (mean {r[0]['mean']*1e3:.2f}, min {r[0]['min']*1e3:.2f})")
print(f"virt-host-validate qemu median: {v:.2f} ms (mean {r[1]['mean']*1e3:.2f}, min {r[1]['min']*1e3:.2f})")
print(f"ratio: aplaunch is {v / a:.1f}x faster")
PY
rm -rf "$out"
