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

Each volume's upstream is checked every tenth of the IO timeout
(:meth:`~.volume_proxy.VolumeProxy.check_upstream`). A sleeping task per
volume woke the event loop that often for each of them, twenty times a
second by default: a thousand idle volumes kept a core busy with wake-ups
alone. One task per event loop and interval checks them all at each tick.
"""

import asyncio
import time
import weakref

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

_watchdogs = weakref.WeakKeyDictionary()    # event loop -> {interval: Watchdog}


def shared(interval):
    """The watchdog of the running event loop that ticks every ``interval``."""
    by_interval = _watchdogs.setdefault(asyncio.get_running_loop(), {})
    watchdog = by_interval.get(interval)
    if watchdog is None:
        watchdog = by_interval[interval] = Watchdog(interval)
    return watchdog


class Watchdog:

    def __init__(self, interval):
        self.interval = interval
        self._volumes = set()
        self._task = None

    def __len__(self):
        return len(self._volumes)

    def watch(self, volume):
        """Call ``volume.check_upstream(now)`` at every tick from now on."""
        self._volumes.add(volume)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._tick())

    def unwatch(self, volume):
        self._volumes.discard(volume)

    async def _tick(self):
        try:
            while self._volumes:
                await asyncio.sleep(self.interval)
                now = time.monotonic()
                for volume in list(self._volumes):
                    try:
                        volume.check_upstream(now)
                    except Exception:
                        LOG.exception('Checking the upstream of volume %s failed',
                                      getattr(volume, 'name', volume))
        finally:
            self._task = None
