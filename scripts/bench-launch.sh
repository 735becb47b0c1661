#!/usr/bin/env bash
# Launch overhead: with a warm probe cache (and a verified image), the whole-process time of
# `aplaunch --mdev U --pv-image IMG --qemu <fake qemu that exits at once>` (every check, the
# command line, exec) against running the fake qemu directly with the same argv, in one
# run, alternated run by run (scripts/bench-interleaved.py). Then the cold probe cost: a dry run with --no-cache against the real
# qemu-system-s390x versus the same dry run with the probe cached.
# Needs: python3; qemu-system-s390x for the cold probe part.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in python3; do
    command -v "$tool" >/dev/null || { echo "bench-launch: $tool is missing (apt-get install python3)" >&2; exit 2; }
done
cargo build --release -q
cargo build --release -q -p testkit --bin fake-qemu
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export APLAUNCH_CACHE_DIR="$out/cache"
host=examples/hosts/z16-se
uuid=62177883-f1bb-47f0-914d-32a22e3a8804
image=examples/images/demo-se.img
if [ ! -f "$image" ]; then
    image="$out/se.img"
    printf 'stand-in SE image\n' >"$image"
fi
fake=$PWD/target/release/fake-qemu
launch=(target/release/aplaunch --host-root "$host" --exec-on-host-root --mdev "$uuid" --pv-image "$image"
        --qemu "$fake" --qmp "$out/q.sock")
# Warm the probe cache and the image verification cache, and fail early if it would refuse.
"${launch[@]}" -q
argv=$("${launch[@]}" --json --dry-run)
direct=$(python3 -c 'import json,shlex,sys; print(shlex.join(json.loads(sys.argv[1])))' "$argv")
q() { python3 -c 'import shlex,sys; print(shlex.join(sys.argv[1:]))' "$@"; }
python3 scripts/bench-interleaved.py --rounds 300 --warmup 20 --json "$out/launch.json" \
    "aplaunch launch=$(q "${launch[@]}")" "fake qemu alone=$direct" >&2

cold=""
if command -v qemu-system-s390x >/dev/null; then
    dry=(target/release/aplaunch --host-root "$host" --mdev "$uuid" --pv-image "$image"
         --qemu "$(command -v qemu-system-s390x)" --dry-run --force -q)
    "${dry[@]}" >/dev/null
    python3 scripts/bench-interleaved.py --rounds 30 --warmup 3 --json "$out/probe.json" \
        "cold probe=$(q "${dry[@]}" --no-cache)" "cached probe=$(q "${dry[@]}")" >&2
    cold="$out/probe.json"
fi
python3 - "$out/launch.json" "$cold" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["summary"]
a, d = r[0]["median_ms"], r[1]["median_ms"]
print(f"aplaunch launch (exec into the fake qemu) median: {a:.2f} ms (min {r[0]['min_ms']:.2f})")
print(f"fake qemu alone median: {d:.2f} ms (min {r[1]['min_ms']:.2f})")
print(f"launch overhead: {a - d:.2f} ms (target: under 5 ms)")
if sys.argv[2]:
    p = json.load(open(sys.argv[2]))["summary"]
    c, w = p[0]["median_ms"], p[1]["median_ms"]
    print(f"dry run, probe not cached (--no-cache, real QEMU) median: {c:.2f} ms")
    print(f"dry run, probe cached median: {w:.2f} ms")
    print(f"cold probe cost: {c - w:.2f} ms")
PY
