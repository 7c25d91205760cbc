#!/usr/bin/env bash
#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

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

"$top/.venv/bin/ruff" check ovs_daemon ovs_cinder tests bench tools setup.py releasenotes
"$top/.venv/bin/flake8"
run_pytest --ignore=tests/unit/nova --ignore=tests/unit/cinder \
    --ignore=tests/functional/cinder --ignore=tests/cinder_services "$@" tests
run_pytest "$@" tests/unit/cinder tests/functional/cinder
run_pytest "$@" tests/unit/nova
if (($# == 0)); then
    "$top/.venv/bin/python" -m testtools.run tests.cinder_services.test_cinder_services \
        tests.cinder_services.test_evacuate
fi
