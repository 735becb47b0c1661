#!/usr/bin/env bash
# Builds the s390-tools programs the cooperation tests run against, from the vendored
# release tarball (MIT): ap-check (mdevctl's callout for vfio_ap, with libap and libutil),
# libutil's own util_lockfile example program (lock/release for the parent PID, and
# lock-and-release for its own PID) and chzdev (zdev: AP masks and their persistent udev
# rule). Installs them into $PREFIX/bin (default
# /opt/aplaunch/s390-tools) with a stamp, so a second run with the same tarball does
# nothing. Needs gcc, make and libjson-c-dev (ci-setup.sh installs them).
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
TARBALL=${S390_TOOLS_TARBALL:-}
if [ -z "$TARBALL" ]; then
    # the vendored sources sit in shared/vendor beside (or two levels above) the checkout
    for t in "$HERE/../shared/vendor/s390-tools-2.43.0.tar.gz" \
        "$HERE/../../shared/vendor/s390-tools-2.43.0.tar.gz" \
        /work/shared/vendor/s390-tools-2.43.0.tar.gz; do
        if [ -f "$t" ]; then TARBALL=$t; break; fi
    done
fi
if [ -z "$TARBALL" ] || [ ! -f "$TARBALL" ]; then
    echo "build-s390-tools: no s390-tools-2.43.0.tar.gz (set S390_TOOLS_TARBALL)" >&2
    exit 1
fi
PREFIX=${APLAUNCH_S390_TOOLS:-/opt/aplaunch/s390-tools}
SUM=$(sha256sum "$TARBALL" | cut -d' ' -f1)
if [ "$(cat "$PREFIX/.stamp" 2>/dev/null)" = "$SUM" ] \
    && [ -x "$PREFIX/bin/ap-check" ] && [ -x "$PREFIX/bin/util_lockfile" ] \
    && [ -x "$PREFIX/bin/chzdev" ]; then
    echo "build-s390-tools: up to date in $PREFIX"
    exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$TARBALL" -C "$tmp"
src=$(echo "$tmp"/s390-tools-*)
# Only the three directories are built; their own Makefiles and flags, quietly.
make -s -C "$src/libutil" all util_lockfile_example >/dev/null
make -s -C "$src/libap" >/dev/null
make -s -C "$src/ap_tools" HAVE_JSONC=1 >/dev/null
make -s -C "$src/zdev/src" chzdev >/dev/null
mkdir -p "$PREFIX/bin"
install -m 755 "$src/ap_tools/ap-check" "$PREFIX/bin/ap-check"
install -m 755 "$src/libutil/util_lockfile_example" "$PREFIX/bin/util_lockfile"
install -m 755 "$src/zdev/src/chzdev" "$PREFIX/bin/chzdev"
echo "$SUM" >"$PREFIX/.stamp"
echo "build-s390-tools: ap-check, util_lockfile and chzdev in $PREFIX/bin"
