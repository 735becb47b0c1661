#!/usr/bin/env bash
# QEMU 10.0 for the real-QEMU tests, beside the host's 7.2: Debian 13 (trixie)'s
# qemu-system-s390x in a private minbase tree, /opt/aplaunch/qemu-10, nothing installed on
# the host. The binary is patched to use the tree's loader and libraries (interpreter and
# RPATH; RPATH rather than RUNPATH so that it also covers the libraries' own dependencies
# and the modules QEMU dlopens), and /opt/aplaunch/qemu-10/qemu-system-s390x is a wrapper
# that points QEMU at the tree's firmware and modules: Debian builds QEMU with absolute
# firmware and module directories (/usr/share/qemu, /usr/lib/x86_64-linux-gnu/qemu), so
# without the wrapper the 10.0 binary loads the host's 7.2 s390-ccw.img, and its
# qom-list-types (the probe) loads the host's 7.2 modules and aborts ("Only modules from
# the same build can be loaded"). `-L` comes before the built-in firmware path;
# QEMU_MODULE_DIR is searched before the built-in module directory, so the tree holds
# every module the host has (the opengl and spice module packages too; about 700 MB in
# all). Checked with strace: the binary opens nothing under the host's /usr or /lib.
# Run as root; idempotent (nothing is downloaded when the tree is complete).
# The tests pick it up with APLAUNCH_TEST_QEMU=/opt/aplaunch/qemu-10/qemu-system-s390x.
set -euo pipefail
TREE=${APLAUNCH_QEMU10_DIR:-/opt/aplaunch/qemu-10}
MIRROR=${APLAUNCH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
BIN=$TREE/usr/bin/qemu-system-s390x
LOADER=$TREE/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
LIBS=$TREE/usr/lib/x86_64-linux-gnu
MODULES=$LIBS/qemu
WRAPPER=$TREE/qemu-system-s390x
export DEBIAN_FRONTEND=noninteractive

wrapper_text() {
    printf '%s\n' '#!/bin/sh' \
        "# QEMU 10.0 from the Debian 13 tree in $TREE (scripts/setup-qemu10.sh): its firmware" \
        "# and modules from the tree, not the host's /usr/share/qemu and /usr/lib/x86_64-linux-gnu/qemu." \
        "QEMU_MODULE_DIR=\"$MODULES\" exec \"$BIN\" -L \"$TREE/usr/share/qemu\" \"\$@\""
}

ready() {
    [ -x "$WRAPPER" ] && [ -x "$BIN" ] \
        && [ "$(cat "$WRAPPER")" = "$(wrapper_text)" ] \
        && [ -f "$MODULES/ui-spice-core.so" ] && [ -f "$MODULES/ui-opengl.so" ] \
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
# The tree's own apt installs inside the tree (no /proc needed).
chroot "$TREE" apt-get update -q >/dev/null
chroot "$TREE" apt-get install -y -q --no-install-recommends \
    qemu-system-s390x qemu-system-modules-opengl qemu-system-modules-spice >/dev/null
chroot "$TREE" apt-get clean

patchelf --set-interpreter "$LOADER" "$BIN"
patchelf --force-rpath --set-rpath "$LIBS" "$BIN"

wrapper_text >"$WRAPPER"
chmod 0755 "$WRAPPER"
chmod 0755 "$TREE"

if ! ready; then
    echo "ci-setup: QEMU 10 in $TREE does not start:" >&2
    "$WRAPPER" -version >&2 || true
    exit 1
fi
echo "ci-setup: $("$WRAPPER" -version | head -n 1) in $TREE"
