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

"""One timer for the upstream checks of every attached volume.

A volume with requests in flight (busy) is checked at every tick, a tenth
of the IO timeout (:meth:`~.volume_proxy.VolumeProxy.check_upstream`), so
an IO unanswered for ``io_timeout`` fails over in time. An idle volume has
no IO to time out; it only needs its keepalive, once per
``keepalive_interval``: the idle volumes are checked in turn, a share of
them at each tick, so each is checked once per ``keepalive_interval`` and
their keepalives spread over it instead of coming all at once. A volume
becomes busy when it sends a request with none in flight
(:meth:`Watchdog.busy`) and is checked at every tick from the next one
on, so a router lost while the volume idled holds its next IO at most
``io_timeout``.

A sleeping task per volume woke the event loop twenty times a second for
each of them; checking every volume at every tick cost the edge a fifth of
a core at a thousand idle volumes. One task per event loop and interval.
"""

import asyncio
import collections
import math
import time
import weakref

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

_watchdogs = weakref.WeakKeyDictionary()    # event loop -> {(interval, idle): Watchdog}


def shared(interval, idle_interval):
    """The watchdog of the running event loop that ticks every ``interval``
    and checks each idle volume once per ``idle_interval``."""
    by_interval = _watchdogs.setdefault(asyncio.get_running_loop(), {})
    watchdog = by_interval.get((interval, idle_interval))
    if watchdog is None:
        watchdog = by_interval[interval, idle_interval] = Watchdog(interval, idle_interval)
    return watchdog


class Watchdog:

    def __init__(self, interval, idle_interval):
        self.interval = interval
        self.idle_interval = max(interval, idle_interval)
        self._volumes = {}                  # insertion-ordered set
        self._busy = set()
        self._turn = collections.deque()    # idle volumes still to check this round
        self._task = None

    def __len__(self):
        return len(self._volumes)

    def watch(self, volume):
        """Check ``volume`` from now on: ``volume.check_upstream(now)`` at
        every tick while ``volume.busy``, once per idle interval otherwise."""
        self._volumes[volume] = None
        if volume.busy:
            self._busy.add(volume)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._tick())

    def unwatch(self, volume):
        self._volumes.pop(volume, None)
        self._busy.discard(volume)

    def busy(self, volume):
        """``volume`` sent a request: check it at every tick until it is
        idle again."""
        if volume in self._volumes:
            self._busy.add(volume)

    async def _tick(self):
        try:
            while self._volumes:
                await asyncio.sleep(self.interval)
                now = time.monotonic()
                for volume in list(self._busy):
                    self._check(volume, now)
                    if not volume.busy:
                        self._busy.discard(volume)
                for volume in self._idle_share():
                    if volume not in self._busy:
                        self._check(volume, now)
        finally:
            self._task = None

    def _idle_share(self):
        """The volumes whose turn it is: enough that each comes once per
        idle interval."""
        share = min(len(self._volumes),
                    math.ceil(len(self._volumes) * self.interval / self.idle_interval))
        volumes = []
        while len(volumes) < share:
            if not self._turn:
                self._turn.extend(self._volumes)
            volume = self._turn.popleft()
            if volume in self._volumes:
                volumes.append(volume)
        return volumes

    def _check(self, volume, now):
        try:
            volume.check_upstream(now)
        except Exception:
            LOG.exception('Checking the upstream of volume %s failed',
                          getattr(volume, 'name', volume))
