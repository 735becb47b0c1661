#!/usr/bin/env bash
# Installs what the test suites need on a fresh Debian 12 machine (run as root):
# real QEMU for the QMP and command-line tests, and the s390x route: Debian's rustc 1.85
# (the MSRV) with the s390x standard library in a private sysroot, the s390x cross linker
# and qemu-user to run the big-endian test binaries.
set -euo pipefail

SYSROOT=${APLAUNCH_S390X_SYSROOT:-/opt/aplaunch/s390x-sysroot}
export DEBIAN_FRONTEND=noninteractive

if ! dpkg --print-foreign-architectures | grep -qx s390x; then
    dpkg --add-architecture s390x
fi
apt-get update -q

# Debian's Rust for s390x exists at one version; the host compiler must match it exactly.
V=$(apt-cache policy libstd-rust-web-dev:s390x | awk '/Candidate:/ {print $2}')
if [ -z "$V" ] || [ "$V" = "(none)" ]; then
    echo "ci-setup: no libstd-rust-web-dev:s390x in the apt sources" >&2
    exit 1
fi
echo "ci-setup: Debian Rust for s390x is $V"

apt-get install -y -q --no-install-recommends \
    "rustc-web=$V" "cargo-web=$V" "libstd-rust-web-dev=$V" \
    gcc-s390x-linux-gnu libc6-dev-s390x-cross qemu-user \
    qemu-system-misc qemu-utils openssl ca-certificates >/dev/null

if [ ! -d "$SYSROOT/usr/lib/rustlib/s390x-unknown-linux-gnu/lib" ]; then
    tmp=$(mktemp -d)
    chmod 755 "$tmp"
    (cd "$tmp" && apt-get download -q "libstd-rust-web-dev:s390x=$V" >/dev/null 2>&1)
    mkdir -p "$SYSROOT"
    dpkg -x "$tmp"/libstd-rust-web-dev_*_s390x.deb "$SYSROOT"
    rm -rf "$tmp"
fi
echo "ci-setup: s390x sysroot at $SYSROOT"
