#!/usr/bin/env bash
# The main job: a local vPool (ZooKeeper, three routers in two sites, an edge),
# a volume attached through the edge under a verifying writer, a planned
# migrate and a kill -9 of the owner; prints the IO pauses and the verification.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$top/tools/bootstrap.sh"
cd "$top"
exec "$top/.venv/bin/ovs-vpool-demo" "$@"
