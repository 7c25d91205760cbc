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

"""A guest read in flight when the edge loses its router is sent again to
the router found next and answered with its data."""

import asyncio

from ovs_cinder.edge import volume_proxy
from ovs_daemon.nbd import export as export_mod
from ovs_daemon.nbd import protocol
from ovs_daemon.nbd import server as server_mod
from tests import awaiting
from tests.unit.edge import test_flush_order as edge_rig

MiB = 1 << 20
BLOCK = 4096


class HoldsReads(export_mod.MemoryExport):
    """Answers a READ only once ``release`` is set."""

    def __init__(self, name, size):
        super().__init__(name, size)
        self.release = asyncio.Event()
        self.reads = 0

    async def read(self, offset, length):
        self.reads += 1
        await self.release.wait()
        return await super().read(offset, length)


def test_a_read_in_flight_at_a_lost_connection_is_answered_by_the_next_router():
    async def scenario():
        upstream = HoldsReads('v1', 16 * MiB)
        server = server_mod.NBDServer(lambda name: edge_rig._resolved(upstream))
        await server.start_tcp('127.0.0.1', 0)
        proxy = volume_proxy.VolumeProxy(edge_rig.OneRouter(server.bound_port),
                                         edge_rig.edge_settings())
        answers = []

        def submit(command, offset, length, payload):
            answered = asyncio.get_running_loop().create_future()
            proxy.serve_now(command, 0, offset, length, payload,
                            lambda error, data: answered.set_result((error, data)))
            answers.append(answered)
            return answered
        try:
            await proxy.connect()
            written = submit(protocol.CMD_WRITE, BLOCK, BLOCK, bytearray(b'w') * BLOCK)
            assert await asyncio.wait_for(written, 10) == (None, None)
            read = submit(protocol.CMD_READ, BLOCK, BLOCK, None)
            await awaiting.until(lambda: upstream.reads == 1)

            first = proxy.upstream
            first.nbd.abort()
            await awaiting.until(lambda: proxy.upstream not in (None, first))
            upstream.release.set()
            error, data = await asyncio.wait_for(read, 10)
            assert error is None
            assert bytes(data) == b'w' * BLOCK
            assert proxy.failovers == 1
            assert upstream.reads >= 2
        finally:
            upstream.release.set()
            await proxy.detach()
            await server.stop()
    asyncio.run(asyncio.wait_for(scenario(), 30))
