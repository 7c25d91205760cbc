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

"""A multiattach volume (write-through) written straight to its router over
one NBD connection with many writes in flight: they wait for commits
together, and overlapping ones land in the order they were sent."""

import asyncio

import pytest

from ovs_daemon.devcluster import metrics_page
from ovs_daemon.nbd import client as nbd_client
from ovs_daemon.nbd import protocol

pytestmark = pytest.mark.slow
MiB = 1 << 20
BLOCK = 4096
BLOCKS = 8
VERSIONS = 4


def content(block, version):
    return bytes([block * VERSIONS + version + 1]) * BLOCK


def commits(api):
    """Commits the router ran for write-through volumes: its FLUSH requests
    (the client sends none: a write-through export does not offer FLUSH)."""
    return metrics_page.counted(metrics_page.samples(api.metrics()),
                                'ovs_router_io_requests_total', op='flush')


def test_writes_in_flight_on_one_connection_share_commits_and_land_in_order(vpool):
    api = vpool.client()
    api.create_volume('v1', 16 * MiB, router='r1', multiattach=True)
    token = api.create_attachment('v1', 'hv', multiattach=True)['token']
    host, _, port = vpool.router('r1')['nbd'].rpartition(':')
    router = vpool.client('r1')
    before = commits(router)

    async def scenario():
        nbd = await nbd_client.NBDClient.connect_tcp(host, int(port), 'v1/%s' % token)
        # Every block written VERSIONS times, all in flight at once, in order.
        replies = [nbd.submit(protocol.CMD_WRITE, block * BLOCK, BLOCK, 0,
                              content(block, version))
                   for version in range(VERSIONS) for block in range(BLOCKS)]
        await asyncio.gather(*replies)
        found = [bytes(await nbd.read(block * BLOCK, BLOCK)) for block in range(BLOCKS)]
        await nbd.close()
        return found

    found = asyncio.run(scenario())
    assert found == [content(block, VERSIONS - 1) for block in range(BLOCKS)]
    committed = commits(router) - before
    assert 1 <= committed <= BLOCKS * VERSIONS // 2, committed
