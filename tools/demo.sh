#!/usr/bin/env bash
# The main job: builds a volume store on the local backend, writes, snapshots,
# clones, restarts from the backend and prints what it measured.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$top/tools/bootstrap.sh"
cd "$top"
exec "$top/.venv/bin/ovs-volume-demo" "$@"
