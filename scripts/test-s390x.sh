#!/usr/bin/env bash
# Builds the whole test suite for s390x-unknown-linux-gnu (big-endian, the real target) with
# Debian's rustc 1.85 and runs it under qemu-user. Needs what scripts/ci-setup.sh installs.
# Extra arguments go to the test runner (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."

SYSROOT=${APLAUNCH_S390X_SYSROOT:-/opt/aplaunch/s390x-sysroot}
SSLLIB=$SYSROOT/usr/lib/s390x-linux-gnu
if [ ! -x /usr/bin/cargo ] || [ ! -d "$SYSROOT/usr/lib/rustlib/s390x-unknown-linux-gnu/lib" ] \
    || [ ! -e "$SSLLIB/libcrypto.so.3" ]; then
    echo "test-s390x: Debian's cargo/rustc 1.85, the s390x sysroot or its OpenSSL is missing; run scripts/ci-setup.sh as root" >&2
    exit 2
fi

export RUSTC=/usr/bin/rustc
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR_S390X:-target/s390x}
export CARGO_TARGET_S390X_UNKNOWN_LINUX_GNU_LINKER=s390x-linux-gnu-gcc
export CARGO_TARGET_S390X_UNKNOWN_LINUX_GNU_RUSTFLAGS="--sysroot $SYSROOT/usr"
# openssl-sys: link the s390x libssl/libcrypto from the sysroot (no pkg-config for the
# target); its header check runs s390x-linux-gnu-gcc, which also needs Debian's
# per-architecture include directory (openssl/configuration.h).
export S390X_UNKNOWN_LINUX_GNU_OPENSSL_LIB_DIR=$SSLLIB
export S390X_UNKNOWN_LINUX_GNU_OPENSSL_INCLUDE_DIR=$SYSROOT/usr/include
export CFLAGS_s390x_unknown_linux_gnu="-I$SYSROOT/usr/include/s390x-linux-gnu"
# The runner must be in the environment (not only .cargo/config): tests that spawn the
# aplaunch binary read it to run the s390x binary under qemu-user too. The library path
# lets them load libssl.so.3/libcrypto.so.3; programs they start inherit it.
export CARGO_TARGET_S390X_UNKNOWN_LINUX_GNU_RUNNER="qemu-s390x -L /usr/s390x-linux-gnu -E LD_LIBRARY_PATH=/usr/s390x-linux-gnu/lib:$SSLLIB"
# s390x programs started by s390x programs (through binfmt_misc, where registered) find
# their loader and libraries here.
export QEMU_LD_PREFIX=/usr/s390x-linux-gnu
export APLAUNCH_TEST_TARGET=s390x

/usr/bin/cargo --version
if command -v cargo-nextest >/dev/null 2>&1; then
    /usr/bin/cargo nextest run --workspace --target s390x-unknown-linux-gnu --no-fail-fast "$@"
else
    /usr/bin/cargo test --workspace --target s390x-unknown-linux-gnu --no-fail-fast "$@"
fi
