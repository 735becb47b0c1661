#!/usr/bin/env bash
# Installs what the test suites need on a fresh Debian 12 machine (run as root):
# real QEMU for the QMP and command-line tests, and the s390x route: Debian's rustc 1.85
# (the MSRV) with the s390x standard library in a private sysroot, the s390x cross linker
# and qemu-user to run the big-endian test binaries; the system OpenSSL (libssl-dev, which
# the `openssl` crate links for SHA-2) for the host and, in the same private sysroot, for
# s390x; and the AP cooperation peers: Debian's mdevctl and s390-tools' ap-check and
# util_lockfile (scripts/build-s390-tools.sh); and the C genprotimg 2.35 for the SE image
# tests (scripts/make-real-images.sh); Debian 13's QEMU 10.0 in a private tree
# (scripts/setup-qemu10.sh).
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

# QEMU 7.2 from bookworm, all its packages at one version: a machine image may come with a
# newer qemu-utils (a backport) that Breaks bookworm's qemu-system-common, so pin the
# version and allow apt to step qemu-utils down to it.
QV=$(apt-cache policy qemu-system-misc | awk '/Candidate:/ {print $2}')
apt-get install -y -q --no-install-recommends --allow-downgrades \
    "rustc-web=$V" "cargo-web=$V" "libstd-rust-web-dev=$V" \
    gcc-s390x-linux-gnu libc6-dev-s390x-cross "qemu-user=$QV" \
    "qemu-system-misc=$QV" "qemu-system-common=$QV" "qemu-utils=$QV" "qemu-block-extra=$QV" \
    openssl ca-certificates libssl-dev pkg-config \
    gcc make libjson-c-dev mdevctl libglib2.0-dev libcurl4-openssl-dev >/dev/null

# The s390-tools peers of the AP cooperation tests (ap-check, util_lockfile), built from the
# vendored release tarball into /opt/aplaunch/s390-tools.
bash "$(dirname "$0")/build-s390-tools.sh"

# The C genprotimg 2.35 (with its s390x boot loaders) for the SE image tests, built from the
# vendored release tarball into /opt/aplaunch/genprotimg-2.35.
bash "$(dirname "$0")/make-real-images.sh"

# Debian's s390x kernel for the real TCG launch (QEMU sandboxed and unprivileged) tests.
bash "$(dirname "$0")/guest-kernel.sh"

# QEMU 10.0 beside 7.2, from a private Debian 13 tree in /opt/aplaunch/qemu-10: the
# real-QEMU tests run a second time against it (APLAUNCH_TEST_QEMU, see .ci/run).
bash "$(dirname "$0")/setup-qemu10.sh"

if [ ! -d "$SYSROOT/usr/lib/rustlib/s390x-unknown-linux-gnu/lib" ]; then
    tmp=$(mktemp -d)
    chmod 755 "$tmp"
    (cd "$tmp" && apt-get download -q "libstd-rust-web-dev:s390x=$V" >/dev/null 2>&1)
    mkdir -p "$SYSROOT"
    dpkg -x "$tmp"/libstd-rust-web-dev_*_s390x.deb "$SYSROOT"
    rm -rf "$tmp"
fi
echo "ci-setup: s390x sysroot at $SYSROOT"

# OpenSSL for s390x, also unpacked into the private sysroot rather than installed as
# libssl-dev:s390x: that package is Multi-Arch "same", so it must have exactly the host's
# libssl-dev version, and bookworm-security (which updates the amd64 one) carries no s390x
# builds, so apt would refuse or downgrade the host's OpenSSL. The headers, libssl.so and
# libcrypto.so (for linking) and the .so.3 files (for running under qemu-user) end up in
# $SYSROOT/usr/include{,/s390x-linux-gnu} and $SYSROOT/usr/lib/s390x-linux-gnu;
# scripts/test-s390x.sh points openssl-sys and the runner there.
SSLV=$(apt-cache policy libssl-dev:s390x | awk '/Candidate:/ {print $2}')
if [ -z "$SSLV" ] || [ "$SSLV" = "(none)" ]; then
    echo "ci-setup: no libssl-dev:s390x in the apt sources" >&2
    exit 1
fi
STAMP=$SYSROOT/.openssl-version
if [ "$(cat "$STAMP" 2>/dev/null)" != "$SSLV" ] \
    || [ ! -e "$SYSROOT/usr/lib/s390x-linux-gnu/libcrypto.so.3" ]; then
    tmp=$(mktemp -d)
    chmod 755 "$tmp"
    (cd "$tmp" && apt-get download -q "libssl-dev:s390x=$SSLV" "libssl3:s390x=$SSLV" >/dev/null 2>&1)
    mkdir -p "$SYSROOT"
    dpkg -x "$tmp"/libssl3_*_s390x.deb "$SYSROOT"
    dpkg -x "$tmp"/libssl-dev_*_s390x.deb "$SYSROOT"
    rm -rf "$tmp"
    echo "$SSLV" >"$STAMP"
fi
echo "ci-setup: s390x OpenSSL $SSLV in $SYSROOT/usr/lib/s390x-linux-gnu"
