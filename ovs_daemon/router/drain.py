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

"""Moving every volume off a router: on SIGTERM before it exits, and for
maintenance (``ovs-admin drain``) while it keeps running.

Each volume is handed to a live peer by a planned migration (the peer
asks this router for a handover: flush, release, take), so the edges follow
it with a handover's pause instead of stealing it once the router is gone.
Peers of this router's site come first and the volumes are spread over
them by load; drained peers are skipped. A drained router takes no volume
from others (see Ownership.draining) and placement passes it over
(Registry.least_loaded_router) until it is undrained.
"""

import asyncio
import collections

from oslo_log import log as logging

from ovs_daemon.api import errors

LOG = logging.getLogger(__name__)

# Handovers at a time: each pauses only its own volume, but flushes compete
# for the backend.
CONCURRENT_HANDOVERS = 4


def plan(volumes, peers, site, load):
    """``{volume: [peer ids, best first]}``: peers of ``site`` before the
    others, the least loaded (``load``: volumes each owns, counting those
    planned so far) first, ties by id."""
    load = collections.Counter({peer: load.get(peer, 0) for peer in peers})
    choices = {}
    for volume in volumes:
        order = sorted(peers, key=lambda peer: (peers[peer].get('site') != site,
                                                load[peer], peer))
        if order:
            load[order[0]] += 1
        choices[volume] = order
    return choices


class Drainer:

    def __init__(self, router_id, site, registry, ownership, peers):
        self.router_id = router_id
        self.site = site
        self.registry = registry
        self.ownership = ownership
        self.peers = peers

    async def drain(self, timeout):
        """Hand every volume served here to a peer within ``timeout``
        seconds; returns ``{'moved': {volume: router}, 'left': {volume:
        why}}``. From now on this router takes no volume of others."""
        self.ownership.draining = True
        names = self.ownership.served_names()
        moved, left = {}, {}
        if not names:
            return {'moved': moved, 'left': left}
        routers = await self.ownership.blocking(self.registry.routers)
        drained = await self.ownership.blocking(self.registry.drained_routers)
        peers = {router_id: info for router_id, info in routers.items()
                 if router_id != self.router_id and router_id not in drained}
        load = collections.Counter(
            record.get('owner') for record in
            (await self.ownership.blocking(self.registry.volumes)).values())
        choices = plan(names, peers, self.site, load)
        LOG.warning('Draining router %s: handing %d volume(s) to %s within %.1f s',
                    self.router_id, len(names), ', '.join(sorted(peers)) or 'nobody', timeout)
        limit = asyncio.Semaphore(CONCURRENT_HANDOVERS)

        async def move(name):
            async with limit:
                await self._move(name, [(peer, peers[peer]) for peer in choices[name]],
                                 moved, left, timeout)

        tasks = {asyncio.ensure_future(move(name)): name for name in names}
        _, late = await asyncio.wait(tasks, timeout=timeout)
        for task in late:
            task.cancel()
            left[tasks[task]] = 'not handed over within the drain time (%.1f s)' % timeout
        if late:
            await asyncio.wait(late)
        LOG.warning('Router %s drained: %d volume(s) handed over, %d left%s', self.router_id,
                    len(moved), len(left), ''.join('; %s: %s' % item for item in left.items()))
        return {'moved': moved, 'left': left}

    async def _move(self, name, candidates, moved, left, timeout):
        reasons = []
        for peer, info in candidates:
            try:
                status, answer = await self.peers.call(
                    info['api'], 'POST', '/v1/volumes/%s/migrate' % name, {'router': peer},
                    timeout=timeout)
            except errors.PeerUnreachable as exc:
                reasons.append(str(exc))
                continue
            if status == 200:
                moved[name] = peer
                return
            error = answer.get('error', {}) if isinstance(answer, dict) else {}
            reasons.append('%s: %s' % (peer, error.get('message', answer)))
            if self.ownership.served(name) is None:
                # Released or halted meanwhile: nothing left here to hand over.
                left[name] = 'no longer served here: %s' % reasons[-1]
                return
        left[name] = '; '.join(reasons) or 'no live peer to take it'
