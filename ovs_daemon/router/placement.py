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

"""Where a new volume goes: the live router serving the fewest volumes.

Each router's load is what it serves, as it answers its health check
within ``peer_timeout`` (this router counts its own): a few calls per
create, however many volumes there are, where counting the owners of every
volume record read them all for each create. A router that does not answer
in time (hung, cut off) gets no new volume. Drained routers are passed over
while any other is live. Only when no router answers is the registry's
count used.
"""

import asyncio

from ovs_daemon.api import errors


async def least_loaded_router(own, registry, peers, run):
    """``(id, info)`` of the router to place a new volume on: its registry
    info as read for placing (None if no router is live, or if it
    registered only after that read). ``run`` runs a blocking registry
    call off the event loop."""
    live = await run(registry.routers)
    drained = await run(registry.drained_routers)
    candidates = {router_id: info for router_id, info in live.items()
                  if router_id not in drained} or live
    loads = await asyncio.gather(*(
        _load(own, peers, router_id, info) for router_id, info in candidates.items()))
    known = {router_id: load for router_id, load in zip(candidates, loads) if load is not None}
    if not known:
        router_id = await run(registry.least_loaded_router)
        return router_id, live.get(router_id)
    router_id = min(known, key=lambda router_id: (known[router_id], router_id))
    return router_id, live[router_id]


async def _load(own, peers, router_id, info):
    """How many volumes the router serves, or None if it does not say in time."""
    if router_id == own.router_id:
        return own.served_count()
    try:
        answer = await peers.health(info['api'])
    except errors.PeerUnreachable:
        return None
    count = answer.get('served_count')
    return count if isinstance(count, int) else None
