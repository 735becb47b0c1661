#!/usr/bin/env bash
# Debian's s390x kernel, unpacked (not installed) into /opt/aplaunch/guest: the guest that the
# real TCG launch tests boot (tests/launch_unprivileged.rs looks for boot/vmlinuz-*).
# Idempotent: nothing is downloaded when a kernel is already there.
set -euo pipefail
GUEST=${APLAUNCH_GUEST_DIR:-/opt/aplaunch/guest}
if compgen -G "$GUEST/boot/vmlinuz-*" >/dev/null; then
    echo "ci-setup: guest kernel $(basename "$GUEST"/boot/vmlinuz-*) in $GUEST"
    exit 0
fi
# The metapackage names the current versioned image package.
PKG=$(apt-cache depends linux-image-s390x:s390x | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$PKG" ]; then
    echo "ci-setup: no linux-image-s390x:s390x in the apt sources" >&2
    exit 1
fi
tmp=$(mktemp -d)
chmod 755 "$tmp"
(cd "$tmp" && apt-get download -q "$PKG" >/dev/null 2>&1)
mkdir -p "$GUEST"
dpkg -x "$tmp"/linux-image-*_s390x.deb "$GUEST"
# the modules are not needed to see the kernel boot
rm -rf "$GUEST/lib/modules" "$tmp"
echo "ci-setup: guest kernel $(basename "$GUEST"/boot/vmlinuz-*) in $GUEST"
