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

apt_packages=(zookeeper nbdkit libnbd-bin qemu-utils fio nftables iproute2 procps shellcheck systemd)
commands_of_packages=(/usr/share/java/zookeeper.jar nbdkit nbdinfo qemu-io fio nft ip pgrep shellcheck systemd-analyze)

missing=()
for i in "${!apt_packages[@]}"; do
    probe=${commands_of_packages[$i]}
    if [[ $probe == /* ]]; then
        [[ -e $probe ]] || missing+=("${apt_packages[$i]}")
    else
        command -v "$probe" >/dev/null 2>&1 || missing+=("${apt_packages[$i]}")
    fi
done
if ! command -v java >/dev/null 2>&1; then
    missing+=(default-jre-headless)
fi
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing+=(python3-venv)
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
