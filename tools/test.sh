#!/usr/bin/env bash
# Runs the whole test suite: unit tests, the backend conformance suite, the
# engine's property tests and the system tests that start real processes.
# Pass pytest arguments to narrow it, e.g. `tools/test.sh -m "not slow"`.
#
# Four processes: nova and cinder register clashing options in oslo.config's
# global CONF, so the nova driver's tests run apart; after cinder's image
# code has run in a process (it starts eventlet's hub and thread pool there)
# the s3 backend's fault-injection tests hang, so cinder's driver tests run
# apart too; and cinder's in-process services need an
# eventlet-patched process and cinder's testtools base class, so they run
# under testtools, only in a full run (no arguments).
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$top/tools/bootstrap.sh"
cd "$top"

# pytest in a process of its own; a marker that selects nothing there
# (pytest's exit status 5) is not a failure.
run_pytest() {
    local status=0
    "$top/.venv/bin/python" -m pytest -p no:cacheprovider "$@" || status=$?
    ((status == 0 || status == 5)) || exit "$status"
}

"$top/.venv/bin/ruff" check ovs_daemon ovs_cinder tests bench
run_pytest --ignore=tests/unit/nova --ignore=tests/unit/cinder \
    --ignore=tests/functional/cinder --ignore=tests/cinder_services "$@" tests
run_pytest "$@" tests/unit/cinder tests/functional/cinder
run_pytest "$@" tests/unit/nova
if (($# == 0)); then
    "$top/.venv/bin/python" -m testtools.run tests.cinder_services.test_cinder_services \
        tests.cinder_services.test_evacuate
fi
