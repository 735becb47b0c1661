#!/usr/bin/env bash
# QEMU 10.0 for the real-QEMU tests, beside the host's 7.2: Debian 13 (trixie)'s
# qemu-system-s390x in a private minbase tree, /opt/aplaunch/qemu-10 (about 200 MB), nothing
# installed on the host. The binary is patched to use the tree's loader and libraries
# (interpreter and RPATH; RPATH rather than RUNPATH so that it also covers the libraries'
# own dependencies), and /opt/aplaunch/qemu-10/qemu-system-s390x is a wrapper that adds
# `-L <tree>/usr/share/qemu`: Debian builds QEMU with an absolute firmware path
# (/usr/share/qemu first), which QEMU searches before its relocated data directory, so
# without -L the 10.0 binary would load the host's 7.2 s390-ccw.img.
# Run as root; idempotent (nothing is downloaded when the tree is complete).
# The tests pick it up with APLAUNCH_TEST_QEMU=/opt/aplaunch/qemu-10/qemu-system-s390x.
set -euo pipefail
TREE=${APLAUNCH_QEMU10_DIR:-/opt/aplaunch/qemu-10}
MIRROR=${APLAUNCH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
BIN=$TREE/usr/bin/qemu-system-s390x
LOADER=$TREE/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
LIBS=$TREE/usr/lib/x86_64-linux-gnu
WRAPPER=$TREE/qemu-system-s390x
export DEBIAN_FRONTEND=noninteractive

ready() {
    [ -x "$WRAPPER" ] && [ -x "$BIN" ] \
        && [ "$(patchelf --print-interpreter "$BIN" 2>/dev/null)" = "$LOADER" ] \
        && "$WRAPPER" -version 2>/dev/null | grep -q '^QEMU emulator version 10\.'
}

if ready; then
    echo "ci-setup: $("$WRAPPER" -version | head -n 1) in $TREE"
    exit 0
fi

command -v debootstrap >/dev/null && command -v patchelf >/dev/null \
    || apt-get install -y -q --no-install-recommends debootstrap patchelf >/dev/null

if [ ! -x "$TREE/usr/bin/apt-get" ]; then
    rm -rf "$TREE"
    debootstrap --variant=minbase trixie "$TREE" "$MIRROR" >/dev/null
fi
# /proc is not needed by apt or dpkg here; the tree's own apt installs inside the tree.
chroot "$TREE" apt-get update -q >/dev/null
chroot "$TREE" apt-get install -y -q --no-install-recommends qemu-system-s390x >/dev/null
chroot "$TREE" apt-get clean

# The binary as the package installed it, kept for a rerun after a package upgrade.
patchelf --set-interpreter "$LOADER" "$BIN"
patchelf --force-rpath --set-rpath "$LIBS" "$BIN"

cat >"$WRAPPER" <<EOF
#!/bin/sh
# QEMU 10.0 from the Debian 13 tree in $TREE (scripts/setup-qemu10.sh): its firmware from
# the tree, not the host's /usr/share/qemu.
exec "$BIN" -L "$TREE/usr/share/qemu" "\$@"
EOF
chmod 0755 "$WRAPPER"
chmod 0755 "$TREE"

if ! ready; then
    echo "ci-setup: QEMU 10 in $TREE does not start:" >&2
    "$WRAPPER" -version >&2 || true
    exit 1
fi
echo "ci-setup: $("$WRAPPER" -version | head -n 1) in $TREE"
