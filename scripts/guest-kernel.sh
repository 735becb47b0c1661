#!/usr/bin/env bash
# The guest the real TCG launch tests boot, unpacked (nothing installed) into
# /opt/aplaunch/guest: Debian's s390x kernel (boot/vmlinuz-*), the virtio modules a guest
# needs to see aplaunch's devices (modules/*.ko: Debian builds virtio-blk, -net, -console
# and -rng as modules; virtio_ccw itself is built in), and busybox-static:s390x
# (bin/busybox), from which the tests build their initramfs (tests/guest_boot.rs).
# Idempotent: nothing is downloaded when everything is there.
set -euo pipefail
GUEST=${APLAUNCH_GUEST_DIR:-/opt/aplaunch/guest}
# Load order: virtio_net needs net_failover, which needs failover.
MODULES="net/core/failover.ko drivers/net/net_failover.ko drivers/net/virtio_net.ko
drivers/block/virtio_blk.ko drivers/char/virtio_console.ko drivers/char/hw_random/virtio-rng.ko"
complete() {
    compgen -G "$GUEST/boot/vmlinuz-*" >/dev/null || return 1
    [ -x "$GUEST/bin/busybox" ] || return 1
    for m in $MODULES; do
        [ -f "$GUEST/modules/$(basename "$m")" ] || return 1
    done
}
if complete; then
    echo "ci-setup: guest kernel $(basename "$GUEST"/boot/vmlinuz-*) with its virtio modules and busybox in $GUEST"
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
(cd "$tmp" && apt-get download -q "$PKG" busybox-static:s390x >/dev/null 2>&1)
rm -rf "$GUEST"
mkdir -p "$GUEST/modules" "$GUEST/bin"
dpkg -x "$tmp"/linux-image-*_s390x.deb "$tmp/kernel"
dpkg -x "$tmp"/busybox-static_*_s390x.deb "$tmp/busybox"
cp -a "$tmp/kernel/boot" "$GUEST/"
for m in $MODULES; do
    cp "$tmp"/kernel/lib/modules/*/kernel/"$m" "$GUEST/modules/"
done
cp "$tmp/busybox/bin/busybox" "$GUEST/bin/busybox"
chmod -R a+rX "$GUEST"
rm -rf "$tmp"
complete
echo "ci-setup: guest kernel $(basename "$GUEST"/boot/vmlinuz-*) with its virtio modules and busybox in $GUEST"
