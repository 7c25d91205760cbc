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

"""Compaction in a running router: ``ovs-admin collect`` frees overwritten
space and ``status`` shows stored beside live; a router killed with SIGKILL
in the middle of a round restarts with every block intact."""

import json
import subprocess
import time

import pytest

from tests.functional.clients import qemu_io
from tests.functional.router.test_admin import ADMIN
from tests.functional.router.test_admin import admin

pytestmark = pytest.mark.slow
MiB = 1 << 20
SIZE = 16 * MiB


def overwrite_three_blocks_in_four(uri):
    """16 MiB of pattern 1, then pattern 2 over 3 of every 4 blocks: the
    first 16 MiB of containers keep a quarter of their blocks live."""
    writes = ['write -P 2 %d 12k' % offset for offset in range(0, SIZE, 16384)]
    qemu_io(uri, 'write -P 1 0 16M', *writes, 'flush')


def check_content(uri):
    reads = ['read -P 2 %d 12k' % offset for offset in range(0, SIZE, 16384 * 16)] + \
            ['read -P 1 %d 4k' % (offset + 12288) for offset in range(0, SIZE, 16384 * 16)]
    out = qemu_io(uri, *reads)
    assert 'verification failed' not in out, out
    assert 'Pattern verification' not in out


def test_collect_frees_overwritten_space_and_status_shows_stored_and_live(make_vpool):
    vpool = make_vpool(routers=1)
    admin(vpool, 'create', 'v1', '16M')
    uri = vpool.nbd_uri('r1', 'v1')
    overwrite_three_blocks_in_four(uri)

    answer = json.loads(admin(vpool, '--json', 'collect', 'v1'))
    assert answer['containers_rewritten'] == 2
    assert answer['stored_bytes_before'] == 28 * MiB
    assert (answer['stored_bytes'], answer['live_bytes']) == (SIZE, SIZE)
    assert answer['freed_bytes'] == 12 * MiB
    assert 'v1: freed 0 B' in admin(vpool, 'collect', 'v1')

    line = [line for line in admin(vpool, 'status').splitlines() if line.startswith('v1 ')][0]
    assert '16.0 MiB / 16.0 MiB' in line
    check_content(uri)


def test_a_router_killed_during_a_round_restarts_with_every_block(make_vpool):
    # At 2 MiB/s a round reads the two sparse containers (16 MiB) for 8 s,
    # uploads their live quarter (4 MiB) and waits 2 s, then commits and
    # removes them: the kills fall while it reads, after its upload, and
    # about its commit.
    vpool = make_vpool(routers=1, options={'engine': {'compaction_mib_per_second': 2}})
    admin(vpool, 'create', 'v1', '16M')
    uri = vpool.nbd_uri('r1', 'v1')
    overwrite_three_blocks_in_four(uri)
    for delay in (2.0, 9.0, 10.0, 10.3):
        collect = subprocess.Popen([ADMIN, '--cluster', vpool.state_path, 'collect', 'v1'],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(delay)
            vpool.kill_router('r1')
        finally:
            collect.kill()
            collect.wait()
        vpool.start_router('r1')
        admin(vpool, 'acquire', 'v1')
        check_content(uri)
    assert 'freed' in admin(vpool, 'collect', 'v1')
    check_content(uri)
