#!/usr/bin/env bash
# The real-QEMU tests (probe, properties, QMP, launch, guest boot) once more, against
# QEMU 10.0 from scripts/setup-qemu10.sh, selected with APLAUNCH_TEST_QEMU (every one of
# these tests honours it; tests/real_qemu_list.rs keeps this list complete).
# Extra arguments go to the test runner.
set -euo pipefail
cd "$(dirname "$0")/.."
export APLAUNCH_TEST_QEMU=${APLAUNCH_TEST_QEMU:-/opt/aplaunch/qemu-10/qemu-system-s390x}
REAL_QEMU_TESTS="launcher:probe launcher:qemu_properties aplaunch:qmp_qemu aplaunch:qmp_powerdown
aplaunch:launch_qemu aplaunch:launch_devices_qemu aplaunch:launch_unprivileged
aplaunch:guest_boot aplaunch:hostile_tree_cli aplaunch:explain_qemu aplaunch:launch_api"
echo "real-QEMU tests against $("$APLAUNCH_TEST_QEMU" -version 2>/dev/null | head -n 1 || echo "$APLAUNCH_TEST_QEMU (missing)")"
if command -v cargo-nextest >/dev/null 2>&1; then
    filter=""
    for t in $REAL_QEMU_TESTS; do
        filter="${filter:+$filter | }(package(${t%%:*}) & binary(${t#*:}))"
    done
    cargo nextest run --workspace --no-fail-fast -E "$filter" "$@"
else
    for t in $REAL_QEMU_TESTS; do
        cargo test -p "${t%%:*}" --test "${t#*:}" --no-fail-fast "$@"
    done
fi
