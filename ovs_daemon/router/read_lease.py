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

"""Read leases: when an owner of a multiattach volume may serve reads.

An owner cut from ZooKeeper and from the other routers, but still reached
by one host, does not know that another router stole its volume; it would
serve that host's reads from a block map that misses what the other hosts
wrote through the new owner since. So the owner of a write-through volume
serves a read only while it holds the volume's read lease
(docs/design.md, "Read leases"):

* It renews the lease by reading the volume's record from ZooKeeper: a
  read sent at ``t`` (its own clock) that shows it as the owner at its
  epoch gives a lease until ``t + duration``. ZooKeeper answered after
  ``t``, so no other router had taken the volume before ``t``.
* Every other router that takes the volume by a steal, or by a restart
  of the router named in the record, serves nothing before ``duration``
  (plus a margin for clocks that run at different rates) has passed since
  its take was written: by then every lease of an earlier owner has run
  out. A router that hands over a volume it took that way releases it only
  once that time has passed too.

A read is checked after its data was read and before it is answered: the
answer then holds every write another router could have acknowledged
before the check. Clocks are never compared between hosts, only durations;
the holder measures on a clock that keeps counting while the host is
suspended (CLOCK_BOOTTIME), the router that waits on one that may only
make it wait longer.
"""

import asyncio
import time

# How much faster one host's clock may run than another's: NTP slews by at
# most 500 ppm, this is twenty times that.
CLOCK_RATE_MARGIN = 0.01
# How many times a lease is renewed in its duration: a ZooKeeper read may
# be late by that fraction of it before reads wait.
RENEWALS_PER_LEASE = 4


def lease_clock():
    """Seconds on a clock that counts while the host is suspended."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def taker_wait(duration):
    """How long a router that took a volume by a steal waits before it
    serves: every lease of an earlier owner has run out by then."""
    return duration * (1 + CLOCK_RATE_MARGIN)


class ReadLease:
    """The read lease of one volume served here."""

    def __init__(self, duration, clock=lease_clock):
        self.duration = duration
        self._clock = clock
        self._expires = float('-inf')
        self._renewed = None

    @property
    def valid(self):
        return self._clock() < self._expires

    def renew(self, sent_at):
        """ZooKeeper showed this router as the owner, answering a read
        sent at ``sent_at`` (on this lease's clock)."""
        self._expires = max(self._expires, sent_at + self.duration)
        if self._renewed is not None and not self._renewed.done():
            self._renewed.set_result(None)
        self._renewed = None

    async def renewed(self, timeout):
        """Return at the next renewal, or after ``timeout`` seconds."""
        if self._renewed is None:
            self._renewed = asyncio.get_running_loop().create_future()
        await asyncio.wait({self._renewed}, timeout=timeout)
