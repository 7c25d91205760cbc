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

"""IO gates: where a router holds or refuses the IO of its volumes.

Every request of a served volume passes its volume's gate before it runs
and again before it is acknowledged. A gate is

* open: requests pass;
* paused: requests wait (the router's ZooKeeper session is suspended, or
  the volume is being handed over), and nothing is acknowledged meanwhile;
* closed: requests fail with :class:`~ovs_daemon.engine.errors.Halted`
  (the volume was fenced, handed over or deleted). Closing is final.

A volume's gate has the router's gate as parent, so pausing the router
pauses every volume at once. Gates live on the event loop: call them from
it (a kazoo listener uses ``loop.call_soon_threadsafe``).
"""

import asyncio

from ovs_daemon.engine import errors


class IOGate:

    def __init__(self, parent=None):
        self._parent = parent
        self._open = asyncio.Event()
        self._open.set()
        self.closed_reason = None

    @property
    def is_open(self):
        return (self.closed_reason is None and self._open.is_set()
                and (self._parent is None or self._parent.is_open))

    @property
    def is_paused(self):
        return self.closed_reason is None and not self._open.is_set()

    def pause(self):
        self._open.clear()

    def resume(self):
        self._open.set()

    def close(self, reason):
        if self.closed_reason is None:
            self.closed_reason = reason
        self._open.set()  # wake the waiters: they fail now

    async def wait(self):
        """Return when requests may pass; raise Halted once closed."""
        while True:
            if self.closed_reason is not None:
                raise errors.Halted(self.closed_reason)
            if not self._open.is_set():
                await self._open.wait()
                continue
            if self._parent is not None and not self._parent.is_open:
                await self._parent.wait()
                continue
            return
