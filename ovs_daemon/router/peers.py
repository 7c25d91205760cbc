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

"""Calls from one router to another: forwarding and handover requests.

A peer that cannot be connected to within ``peer_timeout`` (refused, no
route, silent), or does not answer its health check within it (hung),
raises :class:`~ovs_daemon.api.errors.PeerUnreachable`; that is what
makes a failover acquire steal rather than wait. Once connected, a call may
take up to its own timeout (a handover flushes).
"""


import asyncio
import functools

import aiohttp
from oslo_log import log as logging

from ovs_daemon import tls as tls_mod
from ovs_daemon.api import errors

LOG = logging.getLogger(__name__)
FORWARDED_BY = 'X-OVS-Forwarded-By'


class Peers:

    def __init__(self, router_id, tokens, peer_timeout, forward_timeout, tls=None):
        self.router_id = router_id
        self._ssl = (tls or tls_mod.ClientTLS()).context()
        self._tokens = tokens
        self.peer_timeout = peer_timeout
        self.forward_timeout = forward_timeout
        self._session = None
        # api -> the health check under way, or failed within peer_timeout
        self._checks = {}

    def _http(self):
        if self._session is None:
            # Handovers must not wait behind forwarded calls to the same peer.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, force_close=True, ssl=self._ssl))
        return self._session

    async def close(self):
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(self, api, method, path, body=None, timeout=None, query=None):
        """``(status, json or text)`` of one call to the router at ``api``."""
        timeout = aiohttp.ClientTimeout(total=timeout or self.forward_timeout,
                                        sock_connect=self.peer_timeout)
        headers = {'Authorization': 'Bearer %s' % self._tokens.current,
                   FORWARDED_BY: self.router_id}
        try:
            async with self._http().request(method, api + path, json=body, params=query,
                                            headers=headers, timeout=timeout) as answer:
                if answer.content_type == 'application/json':
                    return answer.status, await answer.json()
                return answer.status, await answer.read()
        except (TimeoutError, aiohttp.ClientConnectionError) as exc:
            raise errors.PeerUnreachable('router at %s did not answer %s %s: %s'
                                         % (api, method, path, _describe(exc))) from exc

    async def health(self, api):
        """The health answer of the router at ``api`` (its served volumes
        counted, not listed) within ``peer_timeout``; PeerUnreachable if
        it does not give one."""
        status, answer = await self.call(api, 'GET', '/v1/health', timeout=self.peer_timeout,
                                         query={'served': 'count'})
        if status != 200 or not isinstance(answer, dict):
            raise errors.PeerUnreachable('router at %s answered its health check with %d: %s'
                                         % (api, status, answer))
        return answer

    async def check_alive(self, api):
        """Raise PeerUnreachable unless the router at ``api`` answers its
        health check within ``peer_timeout``.

        The checks of one peer asked while one is under way wait for that
        one, and a peer found unreachable stays so for ``peer_timeout``
        (as old as a check that waited its full time): when a router dies,
        the failover of each of its volumes asks, and one check answers
        them all instead of one each."""
        check = self._checks.get(api)
        if check is None:
            check = asyncio.ensure_future(self.health(api))
            self._checks[api] = check
            check.add_done_callback(functools.partial(self._check_done, api))
        await asyncio.shield(check)

    def _check_done(self, api, check):
        if check.cancelled() or check.exception() is None:
            self._checks.pop(api, None)
            return
        asyncio.get_running_loop().call_later(self.peer_timeout, self._forget_check, api, check)

    def _forget_check(self, api, check):
        if self._checks.get(api) is check:
            del self._checks[api]

    async def request_handover(self, api, volume, epoch, timeout):
        """Ask the owner at ``api`` to flush and release ``volume``."""
        status, answer = await self.call(
            api, 'POST', '/v1/volumes/%s/handover' % volume,
            {'to': self.router_id, 'epoch': epoch}, timeout=timeout)
        if status != 200:
            error = answer.get('error', {}) if isinstance(answer, dict) else {}
            raise errors.PeerError(status, error.get('type'),
                                   'handover of %s refused by %s: %s'
                                   % (volume, api, error.get('message', answer)))
        return answer


def _describe(exc):
    return str(exc) or type(exc).__name__
