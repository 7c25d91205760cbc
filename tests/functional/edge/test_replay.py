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

"""A replayed write that fails at the new owner is not forgotten: the edge
fails over again, and a FLUSH completes only once every write it covers
was applied by the router it completed at."""

import asyncio
import os
import shutil

import pytest

from ovs_daemon.engine import records
from ovs_daemon.nbd import client as nbd_client

pytestmark = pytest.mark.slow
MiB = 1 << 20


def hide_containers(vpool, volume, hideout):
    """Move the volume's data objects out of the backend: reading them
    fails. Returns the directory to move them back to."""
    containers = os.path.join(vpool.state['backend'], volume, records.CONTAINER_PREFIX)
    os.makedirs(hideout)
    hidden = os.listdir(containers)
    assert hidden
    for name in hidden:
        shutil.move(os.path.join(containers, name), hideout)
    return containers


def test_a_replayed_write_the_new_owner_fails_is_replayed_again(vpool, hypervisors, tmp_path):
    vpool.client().create_volume('v1', 16 * MiB, router='r1')
    socket_path = hypervisors['hva'].attach('v1')
    old, new = b'o' * 4096, b'n' * 512

    async def scenario():
        nbd = await nbd_client.NBDClient.connect_unix(socket_path, 'v1')
        await nbd.write(0, old)
        await nbd.flush()
        # Acknowledged, kept in the edge's journal only: patching part of a
        # block, its replay reads the rest of the block from the backend.
        await nbd.write(512, new)
        hideout = tmp_path / 'hidden'
        containers = hide_containers(vpool, 'v1', hideout)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, vpool.kill_router, 'r1')
        flush = asyncio.ensure_future(nbd.flush())
        await asyncio.sleep(3.0)
        for name in os.listdir(hideout):
            shutil.move(os.path.join(hideout, name), containers)
        await asyncio.wait_for(flush, 60)
        data = bytes(await nbd.read(0, 4096))
        await nbd.close()
        return data

    data = asyncio.run(scenario())
    assert data == old[:512] + new + old[1024:]
