#!/usr/bin/env bash
# Runs the whole test suite: unit tests, the backend conformance suite, the
# engine's property tests and the system tests that start real processes.
# Pass pytest arguments to narrow it, e.g. `tools/test.sh -m "not slow"`.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$top/tools/bootstrap.sh"
cd "$top"
"$top/.venv/bin/ruff" check ovs_daemon tests bench
exec "$top/.venv/bin/python" -m pytest -p no:cacheprovider "$@" tests
