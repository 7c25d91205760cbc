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

"""What a verifying block client sent and saw, and the check of every read
against what was acknowledged.

Every write carries a 4 KiB payload that names its block, its writer and a
version unique to that writer, with a filler derived from the three, so a
read tells exactly which write it returns, and a torn or misplaced block
shows. The history keeps, for each request, when it was sent and when it
ended (acknowledged or failed).

The check is the register rule of linearizability, per block. A read sent at
time ``s`` that returns write W is stale if some write W' was known to have
taken effect before ``s`` and began after W ended: W' acknowledged before
``s``, or W' returned by a read that ended before ``s``. So a read may
return the last write acknowledged before it was sent, or any write in
flight meanwhile, never anything older; a block no write was acknowledged
for may read as zeros. Writes that failed may or may not have taken effect,
but never after a later acknowledged write. The same rule applied to the
read-back at the end, when nothing is in flight, finds lost writes.
"""

import bisect
import collections
import hashlib
import math
import struct
import time

BLOCK = 4096
_MAGIC = b'OVSNEMES'
_HEADER = struct.Struct('>8sIQQ')
ZEROES = bytes(BLOCK)

STALE_READ = 'stale read'
LOST_WRITE = 'lost write'
CORRUPT = 'corrupt block'
UNKNOWN = 'unknown write'
FROM_THE_FUTURE = 'read before written'

Violation = collections.namedtuple('Violation', 'kind block read detail')


class Corrupt(ValueError):
    """A block holds neither zeros nor an intact payload of its own."""


def payload(block, writer, version):
    """The 4 KiB a write of ``block`` by ``writer`` at ``version`` carries."""
    header = _HEADER.pack(_MAGIC, writer, block, version)
    filler = hashlib.blake2b(header, digest_size=16).digest()
    return header + filler * ((BLOCK - len(header)) // len(filler)) + filler[
        :(BLOCK - len(header)) % len(filler)]


def decode(block, data):
    """``(writer, version)`` of the write ``data`` came from; None for zeros.

    Raises Corrupt for anything else: a torn block, another block's payload,
    garbage.
    """
    data = bytes(data)
    if data == ZEROES:
        return None
    if len(data) != BLOCK or not data.startswith(_MAGIC):
        raise Corrupt('block %d holds no payload (starts %r)' % (block, data[:24]))
    _, writer, stored_block, version = _HEADER.unpack_from(data)
    if stored_block != block:
        raise Corrupt('block %d holds the payload of block %d (writer %d version %d)'
                      % (block, stored_block, writer, version))
    if data != payload(block, writer, version):
        raise Corrupt('block %d is torn: header of writer %d version %d, filler differs'
                      % (block, writer, version))
    return writer, version


class Write:
    __slots__ = ('block', 'writer', 'version', 'sent', 'ended', 'ok')

    def __init__(self, block, writer, version, sent):
        self.block = block
        self.writer = writer
        self.version = version
        self.sent = sent
        self.ended = math.inf     # still in flight
        self.ok = False

    @property
    def key(self):
        return self.writer, self.version

    def __repr__(self):
        return '<write block %d w%d v%d sent %.3f %s %.3f>' % (
            self.block, self.writer, self.version, self.sent,
            'acked' if self.ok else 'ended', self.ended)


class Read:
    __slots__ = ('block', 'reader', 'sent', 'ended', 'value', 'error', 'final')

    def __init__(self, block, reader, sent, final=False):
        self.block = block
        self.reader = reader
        self.sent = sent
        self.ended = math.inf
        self.value = None         # (writer, version), None for zeros
        self.error = None         # set when the block was corrupt
        self.final = final        # part of a read-back with nothing in flight

    def __repr__(self):
        return '<%s block %d by %s sent %.3f ended %.3f: %s>' % (
            'read-back' if self.final else 'read', self.block, self.reader, self.sent, self.ended,
            self.error or ('w%d v%d' % self.value if self.value else 'zeros'))


class History:
    """Every write and read of one campaign, from any number of clients;
    times are seconds since the history began (:meth:`now`)."""

    def __init__(self):
        self._origin = time.monotonic()
        self.writes = {}          # (writer, version) -> Write
        self.reads = []
        self.flushes = []         # (client, sent, ended) of completed FLUSHes
        self.failures = []        # (client, what, when, error) of failed requests

    def now(self):
        return time.monotonic() - self._origin

    def write_sent(self, block, writer, version, when):
        write = Write(block, writer, version, when)
        self.writes[write.key] = write
        return write

    @staticmethod
    def write_ended(write, when, ok):
        write.ended = when
        write.ok = ok

    def read_sent(self, block, reader, when, final=False):
        read = Read(block, reader, when, final)
        self.reads.append(read)
        return read

    @staticmethod
    def read_ended(read, when, data):
        read.ended = when
        try:
            read.value = decode(read.block, data)
        except Corrupt as exc:
            read.error = str(exc)

    def flushed(self, client, sent, ended):
        self.flushes.append((client, sent, ended))

    def failed(self, client, what, when, error):
        self.failures.append((client, what, when, error))


class _Floor:
    """Per block: the latest start of a write known to have taken effect,
    as a function of time (acknowledgements and observations before it)."""

    def __init__(self):
        self._events = []         # (time it became known, start of that write)

    def add(self, when, write_sent):
        self._events.append((when, write_sent))

    def freeze(self):
        self._events.sort()
        self._times = [when for when, _ in self._events]
        self._max_start = []
        latest = -math.inf
        for _, start in self._events:
            latest = max(latest, start)
            self._max_start.append(latest)

    def at(self, when):
        """Latest start among the writes known before ``when``; None if none."""
        index = bisect.bisect_left(self._times, when)
        return self._max_start[index - 1] if index else None


def check(history):
    """Every violation of the rule in the module doc, reads in sent order."""
    floors = collections.defaultdict(_Floor)
    for write in list(history.writes.values()):
        if write.ok:
            floors[write.block].add(write.ended, write.sent)
    for read in history.reads:
        write = history.writes.get(read.value) if read.value else None
        if write is not None and write.block == read.block and write.sent <= read.ended:
            floors[read.block].add(read.ended, write.sent)
    for floor in floors.values():
        floor.freeze()
    violations = []
    for read in sorted(history.reads, key=lambda r: r.sent):
        violation = _check_read(history, floors.get(read.block), read)
        if violation is not None:
            violations.append(violation)
    return violations


def _check_read(history, floor, read):
    if read.error is not None:
        return Violation(CORRUPT, read.block, read, read.error)
    if read.ended == math.inf:
        return None
    known = floor.at(read.sent) if floor is not None else None
    overwritten = LOST_WRITE if read.final else STALE_READ
    if read.value is None:
        if known is not None:
            return Violation(overwritten, read.block, read,
                             'read zeros after a write of the block had taken effect')
        return None
    write = history.writes.get(read.value)
    if write is None or write.block != read.block:
        return Violation(UNKNOWN, read.block, read,
                         'writer %d never wrote version %d to this block' % read.value)
    if write.sent > read.ended:
        return Violation(FROM_THE_FUTURE, read.block, read,
                         'returned %r, sent after the read ended' % write)
    if known is not None and write.ended < known:
        newer = _newest_known(history, read)
        return Violation(overwritten, read.block, read,
                         'returned %r, overwritten before the read was sent by %r'
                         % (write, newer))
    return None


def _newest_known(history, read):
    """The acknowledged write of the read's block that ended last before it
    was sent (for the report)."""
    candidates = [w for w in history.writes.values()
                  if w.block == read.block and w.ok and w.ended < read.sent]
    return max(candidates, key=lambda w: w.ended, default=None)


def completions(history, client=None):
    """Sorted end times of the requests of one client (or of all), the
    read-back excluded."""
    def mine(who):
        return client is None or who == client
    times = [w.ended for w in history.writes.values() if mine(w.writer)]
    times += [r.ended for r in history.reads if not r.final and mine(r.reader)]
    times += [ended for who, _, ended in history.flushes if mine(who)]
    return sorted(t for t in times if t != math.inf)
