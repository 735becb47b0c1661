#!/usr/bin/env bash
# QMP benchmarks against one real qemu-system-s390x (TCG, stopped with -S), in one run:
#  1. per call, a fresh process each time: `aplaunch --json qmp list` against an equivalent
#     Python script on the `qemu.qmp` package from PyPI (installed into a venv here);
#  2. in process: one qom-list round trip of aplaunch's QMP client against a minimal
#     raw-socket client (examples/qmp_roundtrip.rs).
# Needs: qemu-system-s390x (qemu-system-misc), python3 with venv; network for pip
# on the first run. Prints medians and ratios (recorded in BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
QEMU=${QEMU:-qemu-system-s390x}
for tool in "$QEMU" python3; do
    command -v "$tool" >/dev/null || { echo "bench-qmp: $tool is missing (apt-get install qemu-system-misc python3-venv)" >&2; exit 2; }
done
cargo build --release -q --bin aplaunch --example qmp_roundtrip

venv=target/bench-qmp-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import qemu.qmp' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q qemu.qmp
fi
pyver=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("qemu.qmp"))')

tmp=$(mktemp -d)
qemu_pid=
cleanup() { [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

# The Python equivalent of `aplaunch --json qmp list`: same QMP conversation, same JSON.
cat >"$tmp/list.py" <<'PY'
import asyncio, json, sys
from qemu.qmp import QMPClient, ExecuteError

async def main(sock):
    qmp = QMPClient("bench")
    await qmp.connect(sock)
    devices = []
    for container in ("/machine/peripheral", "/machine/peripheral-anon"):
        try:
            children = await qmp.execute("qom-list", {"path": container})
        except ExecuteError:
            children = []
        for child in children:
            if child["type"] != "child<vfio-ap>":
                continue
            path = f"{container}/{child['name']}"
            try:
                sysfsdev = await qmp.execute("qom-get", {"path": path, "property": "sysfsdev"})
            except ExecuteError:
                sysfsdev = None
            devices.append({"id": child["name"], "qom_path": path, "sysfsdev": sysfsdev})
    info = qmp.greeting.QMP.version["qemu"]
    await qmp.disconnect()
    print(json.dumps({"ok": True, "qemu": f"{info['major']}.{info['minor']}.{info['micro']}", "devices": devices}, indent=2))

asyncio.run(main(sys.argv[1]))
PY

sock="$tmp/qmp.sock"
"$QEMU" -machine s390-ccw-virtio,accel=tcg -nodefaults -display none -S \
    -qmp "unix:$sock,server=on,wait=off" >/dev/null 2>&1 &
qemu_pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
[ -S "$sock" ] || { echo "bench-qmp: QEMU did not create $sock" >&2; exit 3; }

# Both must agree before they are timed.
target/release/aplaunch --json qmp list --qmp "$sock" >"$tmp/a.json"
"$venv/bin/python" "$tmp/list.py" "$sock" >"$tmp/p.json"
python3 - "$tmp/a.json" "$tmp/p.json" <<'PY'
import json, sys
a, p = (json.load(open(f)) for f in sys.argv[1:])
assert a["ok"] and p["ok"] and a["qemu"] == p["qemu"] and len(a["devices"]) == len(p["devices"]), (a, p)
PY

# Alternated run by run (scripts/bench-interleaved.py), so load changes hit both alike.
python3 scripts/bench-interleaved.py --rounds "${ROUNDS:-100}" --warmup 10 --json "$tmp/cli.json" \
    "aplaunch qmp list=target/release/aplaunch --json qmp list --qmp $sock" \
    "python qemu.qmp=$venv/bin/python $tmp/list.py $sock"

rt=$(target/release/examples/qmp_roundtrip "$sock" 20000)

echo "QEMU: $("$QEMU" --version | head -n 1); qemu.qmp $pyver; $(nproc) cores"
python3 - "$tmp/cli.json" "$rt" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["summary"]
a, p = r[0]["median_ms"], r[1]["median_ms"]
print(f"per-call ratio of medians: aplaunch is {p / a:.1f}x faster")
rt = json.loads(sys.argv[2])
print(f"in-process qom-list round trip ({rt['iterations']} calls): client median {rt['client_median_us']:.1f} us, raw socket median {rt['raw_median_us']:.1f} us")
print(f"client / raw: {rt['client_over_raw']:.3f} ({(rt['client_over_raw'] - 1) * 100:+.1f}%)")
PY
