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

"""The routers an edge may call: those of its own configuration
(``[edge] router_endpoints``) and those the registry in ZooKeeper lists,
never addresses from a request.

The edge's credential goes to these routers only. The registry's list
(``GET /v1/routers``, asked of a configured router) gives each router's id
and site, so that failover tries routers of the edge's own site first and
the router just lost last, and it adds routers started since the edge was
configured; only routers write it. A configured router the registry does
not list (it is down) is still tried, after the others. NBD addresses come
from the routers' own answers (``locate``, ``acquire``), that is from the
registry too.
"""

import asyncio
import hashlib

from oslo_log import log as logging

from ovs_daemon.api import client as api_client
from ovs_daemon.api import errors as api_errors

LOG = logging.getLogger(__name__)


class UnknownRouter(Exception):
    """A request named a router that is not one of the edge's configured routers."""


def normalize(endpoint):
    return endpoint.strip().rstrip('/')


class Roster:

    def __init__(self, endpoints, site, token, settings, executor, tls=None, nbd_tls=None):
        """``tls``: the ClientTLS of control API calls; ``nbd_tls``: the
        SSLContext of NBD connections to the routers, or None (clear)."""
        self.endpoints = [normalize(e) for e in endpoints]
        self.site = site
        self._token = token
        self._settings = settings
        self._executor = executor
        self._tls = tls
        self.nbd_tls = nbd_tls
        self.routers = [{'id': None, 'site': None, 'api': e} for e in self.endpoints]

    def check_named(self, routers):
        """Refuse a list of routers (as an old connector sends them) that
        names an API address this edge does not know of."""
        known = {r['api'] for r in self.routers}
        for router in routers:
            api = router.get('api') if isinstance(router, dict) else None
            if not isinstance(api, str) or normalize(api) not in known:
                raise UnknownRouter(
                    'router %r is not one of this edge\'s routers ([edge] router_endpoints): '
                    'the edge calls only the routers of its own configuration' % (api,))

    def preference(self, volume=None, last=None):
        """Routers in the order to try: own site first, ``last`` (a router
        id) at the end, routers the registry did not list after the others,
        and within that an order of the volume's own (rendezvous hashing of
        the volume and router names), so the volumes of a lost router spread
        over the others instead of all landing on the first one listed."""
        return sorted(self.routers, key=lambda r: (
            r['id'] is not None and r['id'] == last, r['id'] is None, r['site'] != self.site,
            _rendezvous(volume or '', r['id'] or r['api'])))

    def client(self, router, timeout):
        return api_client.ControlClient([router['api']], self._token, timeout=timeout,
                                        connect_timeout=self._settings.connect_timeout,
                                        tls=self._tls)

    async def call(self, router, method, *args, timeout):
        client = self.client(router, timeout)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, getattr(client, method), *args)

    async def refresh(self):
        """Learn the routers, their ids and sites from the registry."""
        for router in self.preference():
            try:
                listed = await self.call(router, 'routers',
                                         timeout=self._settings.connect_timeout * 2)
            except (api_errors.ApiError, OSError) as exc:
                LOG.info('Router %s cannot list the routers: %s', router['api'], exc)
                continue
            routers = [{'id': r.get('id'), 'site': r.get('site'), 'api': normalize(r['api'])}
                       for r in listed if isinstance(r.get('api'), str)]
            listed_apis = {r['api'] for r in routers}
            self.routers = routers + [{'id': None, 'site': None, 'api': e}
                                      for e in self.endpoints if e not in listed_apis]
            return
        LOG.warning('No configured router could list the routers; trying them in the '
                    'configured order')


def _rendezvous(volume, router):
    return hashlib.sha256(('%s\0%s' % (volume, router)).encode()).digest()
