#!/usr/bin/env bash
# Runs the whole test suite: unit tests, the backend conformance suite, the
# engine's property tests and the system tests that start real processes.
# Pass pytest arguments to narrow it, e.g. `tools/test.sh -m "not slow"`.
#
# nova and cinder both register options of the same name in oslo.config's
# global CONF, so the nova driver's tests run in a pytest process of their own.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$top/tools/bootstrap.sh"
cd "$top"
"$top/.venv/bin/ruff" check ovs_daemon ovs_cinder tests bench
"$top/.venv/bin/python" -m pytest -p no:cacheprovider --ignore=tests/unit/nova "$@" tests
exec "$top/.venv/bin/python" -m pytest -p no:cacheprovider "$@" tests/unit/nova
