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

"""When a router dies, every volume of it attached to the edge asks another
router to take it over: those calls overlap, they do not queue behind a
few threads (each acquire waits for a router that takes volumes many at a
time)."""

import asyncio

from aiohttp import web

from tests.unit.edge.fake_router import edge
from tests.unit.edge.fake_router import FakeRouter

VOLUMES = 40


class Router(FakeRouter):
    """A router's acquire: answers once ``VOLUMES`` acquires are in flight
    (or after a while); records the most that were in flight at once."""

    routes = [('POST', '/v1/volumes/{name}/acquire', 'acquire')]

    def __init__(self):
        self.in_flight = self.most = 0
        self._all_in = asyncio.Event()

    async def acquire(self, request):
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        if self.in_flight >= VOLUMES:
            self._all_in.set()
        try:
            await asyncio.wait_for(self._all_in.wait(), 3)
        except TimeoutError:
            pass
        self.in_flight -= 1
        return web.json_response({'volume': request.match_info['name'], 'owner': 'r2',
                                  'epoch': 2, 'size': 4096, 'alive': True, 'router': None})


def test_the_takeover_requests_of_many_volumes_overlap(tmp_path):
    async def scenario():
        router = Router()
        service = edge(tmp_path, await router.start())
        roster = service.roster
        try:
            answers = await asyncio.gather(*(
                roster.call(roster.routers[0], 'acquire', 'v%02d' % i, 'failover', 'token',
                            timeout=10)
                for i in range(VOLUMES)))
        finally:
            service.executor.shutdown(wait=False)
            await router.stop()
        assert sorted(a['volume'] for a in answers) == ['v%02d' % i for i in range(VOLUMES)]
        assert router.most == VOLUMES

    asyncio.run(scenario())
