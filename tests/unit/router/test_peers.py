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

"""Health checks of peer routers: how many requests a router sends to a
peer when many volumes' failovers or handovers ask about it at once."""

import asyncio
import types

from aiohttp import web
import pytest

from ovs_daemon.api import errors
from ovs_daemon.router import peers as peers_mod

PEER_TIMEOUT = 0.3


def make_peers():
    return peers_mod.Peers('r2', types.SimpleNamespace(current='token'), PEER_TIMEOUT, 5.0)


class HungPeer:
    """A router whose process hangs: its kernel accepts connections, nothing
    answers. Counts the connections made to it."""

    def __init__(self):
        self.connections = 0
        self._held = []

    async def start(self):
        self._server = await asyncio.start_server(self._accept, '127.0.0.1', 0)
        return 'http://127.0.0.1:%d' % self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader, writer):
        self.connections += 1
        self._held.append(writer)

    async def stop(self):
        for writer in self._held:
            writer.close()
        self._server.close()
        await self._server.wait_closed()


class AnsweringPeer:
    """A live router's health check: records the query of each request."""

    def __init__(self, served):
        self.queries = []
        self._served = served

    async def start(self):
        async def health(request):
            self.queries.append(dict(request.query))
            answer = {'router': 'r1', 'served_count': len(self._served), 'halted': {}}
            if request.query.get('served') != 'count':
                answer['served'] = self._served
            return web.json_response(answer)

        app = web.Application()
        app.router.add_get('/v1/health', health)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, '127.0.0.1', 0)
        await site.start()
        return 'http://127.0.0.1:%d' % self._runner.addresses[0][1]

    async def stop(self):
        await self._runner.cleanup()


async def check_many(peers, api, count):
    results = await asyncio.gather(*(peers.check_alive(api) for _ in range(count)),
                                   return_exceptions=True)
    return [type(r) for r in results]


def test_the_failovers_of_many_volumes_check_a_hung_peer_once():
    """A router owning many volumes hangs: every volume's failover acquire
    asks whether it answers. One health check answers them all, and the
    answer (unreachable) holds for peer_timeout, not one check per volume."""
    async def scenario():
        peer = HungPeer()
        api = await peer.start()
        peers = make_peers()
        try:
            assert await check_many(peers, api, 50) == [errors.PeerUnreachable] * 50
            assert peer.connections == 1
            assert await check_many(peers, api, 10) == [errors.PeerUnreachable] * 10
            assert peer.connections == 1
            await asyncio.sleep(PEER_TIMEOUT * 1.5)
            assert await check_many(peers, api, 10) == [errors.PeerUnreachable] * 10
            assert peer.connections == 2
        finally:
            await peers.close()
            await peer.stop()

    asyncio.run(scenario())


def test_a_peer_that_answers_is_checked_again_and_counts_its_volumes():
    """A successful check is not remembered (the next handover checks
    again), and it asks for the count of the peer's volumes, not their
    names: 1,000 names per check would make moving N volumes cost N^2."""
    async def scenario():
        peer = AnsweringPeer(['v%03d' % i for i in range(100)])
        api = await peer.start()
        peers = make_peers()
        try:
            await peers.check_alive(api)
            await peers.check_alive(api)
            assert (await peers.health(api))['served_count'] == 100
            assert peer.queries == [{'served': 'count'}] * 3
        finally:
            await peers.close()
            await peer.stop()

    asyncio.run(scenario())


def test_a_dead_peer_is_unreachable():
    async def scenario():
        peer = AnsweringPeer([])
        api = await peer.start()
        await peer.stop()
        peers = make_peers()
        try:
            with pytest.raises(errors.PeerUnreachable):
                await peers.check_alive(api)
        finally:
            await peers.close()

    asyncio.run(scenario())
