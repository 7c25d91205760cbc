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

"""Which router the edge asks to take a volume over, as the routers'
answers to ``locate`` tell it."""

import asyncio

from aiohttp import web
import pytest

from ovs_cinder.edge import locator as locator_mod
from ovs_daemon.api import errors as api_errors
from tests.unit.edge.fake_router import edge
from tests.unit.edge.fake_router import FakeRouter


class Router(FakeRouter):
    """A router whose ``locate`` answers that it has no ZooKeeper session,
    and whose ``acquire`` would succeed (its session came back between)."""

    routes = [('GET', '/v1/volumes/{name}/locate', 'locate'),
              ('POST', '/v1/volumes/{name}/acquire', 'acquire')]

    def __init__(self):
        self.acquires = 0

    async def locate(self, request):
        error = api_errors.NoZooKeeperSession('router r1 cannot locate volume %s: its '
                                              'ZooKeeper session is suspended'
                                              % request.match_info['name'])
        return web.json_response(
            {'error': {'code': error.status, 'type': error.type, 'message': str(error)}},
            status=error.status)

    async def acquire(self, request):
        self.acquires += 1
        return web.json_response({'volume': request.match_info['name'], 'owner': 'r1',
                                  'epoch': 2, 'size': 4096, 'alive': True, 'router': None})


def test_no_router_is_asked_to_take_over_while_none_has_a_zookeeper_session(tmp_path):
    async def scenario():
        router = Router()
        service = edge(tmp_path, await router.start())
        locator = locator_mod.Locator('v1', service.roster, 'token', service.settings)
        try:
            with pytest.raises(locator_mod.NoRouter, match='has a ZooKeeper session'):
                await locator.find()
        finally:
            service.executor.shutdown(wait=False)
            await router.stop()
        assert router.acquires == 0

    asyncio.run(scenario())
