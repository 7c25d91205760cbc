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

"""NBD lets a server answer a FLUSH before the writes sent ahead of it (a
write-through router does, when one commit wakes the FLUSH before the
writes it covered). The edge completes such a FLUSH once those writes'
replies are in, instead of failing it."""

import asyncio

from oslo_config import cfg
import pytest

from ovs_cinder.edge import locator as locator_mod
from ovs_cinder.edge import opts
from ovs_cinder.edge import volume_proxy
from ovs_daemon.nbd import client as nbd_client
from ovs_daemon.nbd import export as export_mod
from ovs_daemon.nbd import protocol
from ovs_daemon.nbd import server as server_mod
from tests import awaiting

MiB = 1 << 20
BLOCK = 4096


class RepliesToWritesLate(export_mod.MemoryExport):
    """Applies a write at once but answers it only once ``release`` is set;
    answers a FLUSH at once. Requests run side by side, as a write-through
    router runs them."""

    orders_requests = True

    def __init__(self, name, size):
        super().__init__(name, size)
        self.release = asyncio.Event()
        self.flushes = 0

    async def write(self, offset, data, fua):
        await super().write(offset, data, fua)
        await self.release.wait()

    async def flush(self):
        self.flushes += 1


class OneRouter:
    """The edge's view of a vPool whose only router is the server above."""

    def __init__(self, port):
        self.volume = 'v1'
        self.port = port

    async def find(self, lost=None, halted=(), follow_only=False):
        nbd = await nbd_client.NBDClient.connect_tcp('127.0.0.1', self.port, self.volume)
        return locator_mod.Upstream(nbd, {'id': 'r1', 'nbd': '127.0.0.1:%d' % self.port},
                                    1, 'token')


def edge_settings():
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    return conf.edge


def through_the_coroutines(proxy):
    """The guest's requests as the coroutine methods take them."""
    def write(n):
        return asyncio.ensure_future(proxy.write(n * BLOCK, bytes([n + 1]) * BLOCK, False))
    return write, lambda: asyncio.ensure_future(proxy.flush())


def through_the_fast_path(proxy):
    """The guest's requests as the edge's NBD sessions hand them over
    (``serve_now``, answered by a callback)."""
    def submit(command, offset, length, payload):
        answered = asyncio.get_running_loop().create_future()

        def reply(error, data):
            if error is None:
                answered.set_result(data)
            else:
                answered.set_exception(error)
        proxy.serve_now(command, 0, offset, length, payload, reply)
        return answered

    def write(n):
        return submit(protocol.CMD_WRITE, n * BLOCK, BLOCK, bytearray([n + 1]) * BLOCK)
    return write, lambda: submit(protocol.CMD_FLUSH, 0, 0, None)


@pytest.mark.parametrize('guest', [through_the_coroutines, through_the_fast_path])
def test_a_flush_answered_before_the_writes_ahead_of_it_waits_for_their_replies(guest):
    async def scenario():
        upstream = RepliesToWritesLate('v1', 16 * MiB)
        server = server_mod.NBDServer(lambda name: _resolved(upstream))
        await server.start_tcp('127.0.0.1', 0)
        proxy = volume_proxy.VolumeProxy(OneRouter(server.bound_port), edge_settings())
        try:
            await proxy.connect()
            write, flush = guest(proxy)
            writes = [write(n) for n in range(4)]
            await asyncio.sleep(0)
            flushed = flush()
            await awaiting.until(lambda: upstream.flushes == 1)
            await asyncio.sleep(0.1)
            assert not flushed.done(), 'the FLUSH completed before the writes it covers'

            upstream.release.set()
            await asyncio.wait_for(asyncio.gather(*writes), 10)
            await asyncio.wait_for(flushed, 10)
            assert len(proxy.journal) == 0
            assert proxy.failovers == 0
        finally:
            upstream.release.set()
            await proxy.detach()
            await server.stop()
    asyncio.run(asyncio.wait_for(scenario(), 30))


async def _resolved(export):
    return export
