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

"""The writes an edge keeps for replay after a failover.

Every WRITE, TRIM and WRITE_ZEROES goes in when it is sent, in order, with a
sequence number. A FLUSH that completes makes everything sent before it
durable at the router: those entries are forgotten, but only once the
latest send of each succeeded (a replay that failed is not durable
anywhere). After a failover the
entries left are sent again, in their order, to the new owner: they hold
every write acknowledged since the last completed FLUSH, so none of them is
lost even when the old owner died with them unflushed (invariant I1).
"""

import collections

# What an entry costs besides its payload (the entry, its reply future): a
# TRIM or WRITE_ZEROES, with no payload, counts against the limit too, so a
# flood of them makes the edge flush as the bytes of writes do.
ENTRY_BYTES = 256


class Entry:
    __slots__ = ('seq', 'command', 'offset', 'length', 'flags', 'payload', 'future',
                 'generation', 'write_through', 'acknowledged')

    def __init__(self, seq, command, offset, length, flags, payload):
        self.seq = seq
        self.command = command
        self.offset = offset
        self.length = length
        self.flags = flags
        self.payload = payload
        self.future = None
        self.generation = None
        self.write_through = False
        self.acknowledged = False

    @property
    def applied(self):
        """Whether the latest send of this entry succeeded."""
        future = self.future
        return (future is not None and future.done() and not future.cancelled()
                and future.exception() is None)


class WriteJournal:

    def __init__(self, limit_bytes):
        self.limit_bytes = limit_bytes
        self._entries = collections.deque()
        self._next_seq = 1
        self.bytes = 0

    def __len__(self):
        return len(self._entries)

    @property
    def next_seq(self):
        """The sequence number the next entry gets: a FLUSH sent now covers
        every entry below it."""
        return self._next_seq

    @property
    def full(self):
        return self.bytes >= self.limit_bytes

    def append(self, command, offset, length, flags, payload):
        entry = Entry(self._next_seq, command, offset, length, flags, payload)
        self._next_seq += 1
        self._entries.append(entry)
        self.bytes += _cost(entry)
        return entry

    def unapplied_before(self, seq):
        """The first entry below ``seq`` whose latest send did not succeed,
        or None: a FLUSH sent when ``next_seq`` was ``seq`` covers only what
        was applied."""
        for entry in self._entries:
            if entry.seq >= seq:
                return None
            if not entry.applied:
                return entry
        return None

    def forget_before(self, seq):
        """A FLUSH sent when ``next_seq`` was ``seq`` completed."""
        while self._entries and self._entries[0].seq < seq:
            entry = self._entries.popleft()
            self.bytes -= _cost(entry)

    def discard(self, entry):
        """Drop a write that failed back to the guest: it was never
        acknowledged, so a later failover must not apply it."""
        try:
            self._entries.remove(entry)
        except ValueError:
            return
        self.bytes -= _cost(entry)

    def entries(self):
        return list(self._entries)


def _cost(entry):
    return ENTRY_BYTES + (len(entry.payload) if entry.payload is not None else 0)
