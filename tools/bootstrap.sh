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

# Prepares a Debian machine (as root) for the demo and the tests: the system
# packages the data path and the tests use, a virtualenv in .venv, and this
# project installed into it. Safe to run again: it skips what is already there.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${OVS_VENV:-$top/.venv}

# Each Debian package the tests, the benchmarks and the daemons use, with the
# command or file that shows it is there.
packages=(
    zookeeper:/usr/share/java/zookeeper.jar  # ovs-devcluster's ZooKeeper
    default-jre-headless:java                 # ... and the JVM it runs in
    nbdkit:nbdkit                             # the benchmarks' C peers
    libnbd-bin:nbdinfo                        # nbdinfo, nbdcopy
    qemu-utils:qemu-io                        # qemu-io, qemu-img; the driver's image copies
    fio:fio                                   # fio's nbd engine
    nftables:nft                              # partitions between simulated hosts
    iproute2:ip                               # simulated hosts (ip netns)
    shellcheck:shellcheck                     # the DevStack plugin's test
    systemd:systemd-analyze                   # the systemd units' test
    git:git                                   # pbr's version
    openssl:openssl                           # the DevStack plugin makes a token with it
    strace:strace                             # the local backend's durability test
    e2fsprogs:chattr                          # the interrupted-delete tests
    gcc:gcc                                   # the compiled data path (Cython's C)
    linux-perf:perf                           # bench.datapath --profile
)

missing=()
for entry in "${packages[@]}"; do
    package=${entry%%:*}
    probe=${entry#*:}
    if [[ $probe == /* ]]; then
        [[ -e $probe ]] || missing+=("$package")
    else
        command -v "$probe" >/dev/null 2>&1 || missing+=("$package")
    fi
done
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing+=(python3-venv)
fi
if ! python3 -c 'import os, sysconfig
assert os.path.exists(os.path.join(sysconfig.get_path("include"), "Python.h"))' 2>/dev/null; then
    missing+=(python3-dev)
fi
if ((${#missing[@]})); then
    echo "bootstrap: installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [[ ! -x $venv/bin/python ]]; then
    echo "bootstrap: creating virtualenv $venv"
    python3 -m venv "$venv"
fi
stamp=$venv/.ovs-installed
if [[ ! -f $stamp || $top/setup.cfg -nt $stamp || $top/constraints.txt -nt $stamp \
      || $top/test-requirements.txt -nt $stamp || $top/requirements.txt -nt $stamp \
      || $top/pyproject.toml -nt $stamp ]]; then
    echo "bootstrap: installing Python packages into $venv"
    # Metadata left in the tree by an install before pbr would shadow the
    # installed package's (its entry points, its version).
    rm -rf "$top/ovs_edge.egg-info"
    "$venv/bin/pip" install -q --upgrade pip
    "$venv/bin/pip" install -q -c "$top/constraints.txt" \
        -r "$top/requirements.txt" -r "$top/test-requirements.txt" -e "$top"
    touch "$stamp"
fi
"$venv/bin/python" "$top/tools/build_extensions.py"
