#!/usr/bin/env bash
# Builds the C genprotimg of s390-tools 2.35.0 (the builder s390-tools releases up to 2.35
# ship) from the vendored release tarball (MIT), with its stage3a/stage3b boot loaders
# cross-compiled for s390x, into $PREFIX (default /opt/aplaunch/genprotimg-2.35: bin/ and
# share/), with a stamp so a second run with the same tarball does nothing. With OUTDIR,
# then makes a few SE image variants there from the test host-key documents (see the end).
# Needs gcc, make, gcc-s390x-linux-gnu, libglib2.0-dev, libssl-dev and libcurl4-openssl-dev
# (ci-setup.sh installs them).
#
# pvimg (Rust, s390-tools 2.36+) is not built here: `cargo build --release -p pvimg` in the
# tarball's rust/ workspace fetches ~200 crates and takes many minutes on a small machine;
# the real pvimg 2.43 images in pv/tests/assets/real-se-images/ cover that builder.
#
# Usage: scripts/make-real-images.sh [OUTDIR]
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
TARBALL=${GENPROTIMG_TARBALL:-}
if [ -z "$TARBALL" ]; then
    for t in "$HERE/../shared/vendor/s390-tools-2.35.0.tar.gz" \
        "$HERE/../../shared/vendor/s390-tools-2.35.0.tar.gz" \
        /work/shared/vendor/s390-tools-2.35.0.tar.gz; do
        if [ -f "$t" ]; then TARBALL=$t; break; fi
    done
fi
if [ -z "$TARBALL" ] || [ ! -f "$TARBALL" ]; then
    echo "make-real-images: no s390-tools-2.35.0.tar.gz (set GENPROTIMG_TARBALL)" >&2
    exit 1
fi
PREFIX=${APLAUNCH_GENPROTIMG:-/opt/aplaunch/genprotimg-2.35}
SUM=$(sha256sum "$TARBALL" | cut -d' ' -f1)
tmp=
work=
trap 'rm -rf ${tmp:+"$tmp"} ${work:+"$work"}' EXIT
if [ "$(cat "$PREFIX/.stamp" 2>/dev/null)" = "$SUM" ] && [ -x "$PREFIX/bin/genprotimg" ] \
    && [ -f "$PREFIX/share/stage3a.bin" ] && [ -f "$PREFIX/share/stage3b_reloc.bin" ]; then
    echo "make-real-images: genprotimg up to date in $PREFIX"
else
    tmp=$(mktemp -d)
    tar -xzf "$TARBALL" -C "$tmp"
    src=$(echo "$tmp"/s390-tools-*)
    # The boot loaders are s390x code; genprotimg itself runs here and reads them from
    # its compiled-in data directory.
    make -s -C "$src/genprotimg/boot" HOST_ARCH=s390x CROSS_COMPILE=s390x-linux-gnu- >/dev/null
    make -s -C "$src/libutil" >/dev/null
    make -s -C "$src/genprotimg/src" PKGDATADIR="$PREFIX/share" >/dev/null
    mkdir -p "$PREFIX/bin" "$PREFIX/share"
    install -m 644 "$src/genprotimg/boot/stage3a.bin" "$src/genprotimg/boot/stage3b_reloc.bin" "$PREFIX/share/"
    install -m 755 "$src/genprotimg/src/genprotimg" "$PREFIX/bin/genprotimg"
    echo "$SUM" >"$PREFIX/.stamp"
    echo "make-real-images: genprotimg 2.35.0 in $PREFIX/bin"
fi

[ $# -ge 1 ] || exit 0
OUT=$1
mkdir -p "$OUT"
ASSETS=$HERE/pv/tests/assets
work=$(mktemp -d)
# Dummy kernel, initrd and parmfile: genprotimg encrypts whatever it is given.
head -c $((3 * 1024 * 1024 + 123)) /dev/urandom >"$work/kernel"
head -c $((512 * 1024)) /dev/urandom >"$work/initrd"
echo "root=/dev/vda console=ttysclp0" >"$work/parmfile"
gpi() {
    local name=$1
    shift
    "$PREFIX/bin/genprotimg" --no-verify -k "$ASSETS/host.pem.crt" -o "$OUT/$name.img" "$@" 2>/dev/null
}
gpi gpi235-big -i "$work/kernel" -r "$work/initrd" -p "$work/parmfile"
gpi gpi235-kernel-only -i "$work/kernel"
gpi gpi235-backup-keys -k "$ASSETS/real-se-images/host2.pem.crt" -i "$work/kernel" -p "$work/parmfile" --x-pcf 0xe2
echo "make-real-images: $(ls "$OUT" | wc -l) images in $OUT"
