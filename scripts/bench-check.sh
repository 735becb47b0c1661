#!/usr/bin/env bash
# Start-up and `aplaunch check`, whole process, alternated run by run in one run
# (scripts/bench-interleaved.py): /bin/true (the spawn itself), `aplaunch --version`,
# `aplaunch check` on the example host, and libvirt's `virt-host-validate qemu` on this
# machine (it exits 1 here: no KVM on the build machine; its work is the same).
# BASELINE=path/to/another/aplaunch adds that binary's --version and check, for A/B.
# Needs: python3, libvirt-clients (virt-host-validate). ROUNDS (default 300).
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in virt-host-validate python3; do
    command -v "$tool" >/dev/null || { echo "bench-check: $tool is missing (apt-get install libvirt-clients python3)" >&2; exit 2; }
done
cargo build --release -q --bin aplaunch
bin=target/release/aplaunch
host="--host-root examples/hosts/z16-se check"
set -- "true=/bin/true" "aplaunch --version=$bin --version" "aplaunch check=$bin $host"
if [ -n "${BASELINE:-}" ]; then
    set -- "$@" "baseline --version=$BASELINE --version" "baseline check=$BASELINE $host"
fi
python3 scripts/bench-interleaved.py --rounds "${ROUNDS:-300}" --warmup 20 --ok-exit 0 --ok-exit 1 \
    "$@" "virt-host-validate qemu=virt-host-validate qemu"
echo "shared libraries of $bin: $(ldd "$bin" | awk '{print $1}' | tr '\n' ' ')"
