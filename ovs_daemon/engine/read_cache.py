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

"""A read cache of backend data on the router's local disk.

It holds fixed chunks of data objects. Data objects are immutable and their
names are unique to the volume's incarnation (its creation time, so a volume
deleted and created again under the same name shares no entry) and to the
writer's epoch, so an entry is never stale and needs no invalidation: a
cache survives restarts and handovers, and a new owner fills it as it reads.

Two files: ``data`` (slots of one chunk each) and ``index`` (a header per
slot: the chunk's key, its length, a CRC of key and data, and a sequence
number for recency). A slot is written data first, header second; a read
checks the CRC, so a slot torn by a crash, or reused while read, is a miss,
never wrong data. Eviction takes the least recently used slot. A miss that
continues a sequential read fetches ``readahead`` bytes of the object in one
request, and chunks fetched by one reader are waited for, not fetched again,
by others.
"""

import collections
import os
import struct
import threading
import zlib

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

_HEADER = struct.Struct('<4sQIIH')
_HEADER_BYTES = 512
_MAGIC = b'OVRC'


class ReadCache:

    def __init__(self, path, size_bytes, chunk_bytes=64 << 10, readahead_bytes=8 << 20):
        self.chunk = chunk_bytes
        self.readahead = readahead_bytes
        self.slots = max(1, size_bytes // chunk_bytes)
        os.makedirs(path, exist_ok=True)
        self._data = os.open(os.path.join(path, 'data'), os.O_RDWR | os.O_CREAT, 0o600)
        self._headers = os.open(os.path.join(path, 'index'), os.O_RDWR | os.O_CREAT, 0o600)
        os.ftruncate(self._data, self.slots * chunk_bytes)
        os.ftruncate(self._headers, self.slots * _HEADER_BYTES)
        self._lock = threading.Lock()
        self._index = collections.OrderedDict()   # key -> (slot, length, crc)
        self._free = []
        self._inflight = {}                      # key -> Event
        self._seq = 0
        self.counters = collections.Counter()
        self._load()

    def _load(self):
        raw = os.pread(self._headers, self.slots * _HEADER_BYTES, 0)
        found = []
        for slot in range(self.slots):
            header = raw[slot * _HEADER_BYTES:(slot + 1) * _HEADER_BYTES]
            magic, seq, length, crc, keylen = _HEADER.unpack_from(header)
            if magic != _MAGIC or keylen > _HEADER_BYTES - _HEADER.size:
                self._free.append(slot)
                continue
            key = header[_HEADER.size:_HEADER.size + keylen]
            found.append((seq, key, slot, length, crc))
        for seq, key, slot, length, crc in sorted(found):
            if key in self._index:
                self._free.append(self._index.pop(key)[0])
            self._index[key] = (slot, length, crc)
            self._seq = seq
        LOG.info('Read cache: %d of %d chunks of %d KiB filled', len(self._index), self.slots,
                 self.chunk >> 10)

    def close(self):
        os.close(self._data)
        os.close(self._headers)

    def filled_bytes(self):
        with self._lock:
            return sum(length for _, length, _ in self._index.values())

    # -- reading -----------------------------------------------------------------

    def read(self, obj, size, offset, length, fetch, sequential=False):
        """``length`` bytes at ``offset`` of the immutable object ``obj``
        (bytes: its unique key) of ``size`` bytes; ``fetch(offset, length)``
        reads it from the backend."""
        first, last = offset // self.chunk, (offset + length - 1) // self.chunk
        chunks = {}
        missing = []
        for number in range(first, last + 1):
            data = self._lookup(_key(obj, number))
            if data is None:
                missing.append(number)
            else:
                chunks[number] = data
        with self._lock:
            self.counters['hits'] += len(chunks)
            self.counters['misses'] += len(missing)
        if missing:
            chunks.update(self._fill(obj, size, missing, fetch, sequential))
        joined = b''.join(chunks[n] for n in range(first, last + 1))
        skip = offset - first * self.chunk
        return joined[skip:skip + length]

    def _lookup(self, key):
        with self._lock:
            entry = self._index.get(key)
            if entry is None:
                return None
            self._index.move_to_end(key)
        slot, length, crc = entry
        data = os.pread(self._data, length, slot * self.chunk)
        if len(data) != length or zlib.crc32(data, zlib.crc32(key)) != crc:
            self._drop(key, entry)
            return None
        return data

    def _drop(self, key, entry):
        """Forget a torn entry, unless its slot went to another key meanwhile."""
        with self._lock:
            if self._index.get(key) == entry:
                del self._index[key]
                self._free.append(entry[0])

    def _fill(self, obj, size, missing, fetch, sequential):
        """Fetch the missing chunks (and, on a sequential read, those of
        the readahead after them), store them, return the missing ones."""
        last_chunk = (size - 1) // self.chunk
        end = missing[-1]
        if sequential:
            end = min(last_chunk, end + self.readahead // self.chunk)
        wanted = range(missing[0], end + 1)
        mine, theirs = self._claim([_key(obj, n) for n in wanted])
        got = {}
        try:
            runs = _runs([n for n in wanted if _key(obj, n) in mine])
            for start, stop in runs:
                offset = start * self.chunk
                data = fetch(offset, min(size, (stop + 1) * self.chunk) - offset)
                with self._lock:
                    self.counters['fetched_bytes'] += len(data)
                for n in range(start, stop + 1):
                    piece = data[(n - start) * self.chunk:(n - start + 1) * self.chunk]
                    self._store(_key(obj, n), piece)
                    got[n] = piece
        finally:
            self._release(mine)
        result = {n: got[n] for n in missing if n in got}
        for n in missing:
            if n not in result:
                key = _key(obj, n)
                theirs.get(key, _DONE).wait(30)
                data = self._lookup(key)
                if data is None:    # their fetch failed, or the slot went
                    data = fetch(n * self.chunk, min(size, (n + 1) * self.chunk) - n * self.chunk)
                result[n] = data
        return result

    def _claim(self, keys):
        """Keys this reader fetches, and events of those others fetch."""
        mine, theirs = set(), {}
        with self._lock:
            for key in keys:
                if key in self._index:
                    continue
                event = self._inflight.get(key)
                if event is None:
                    self._inflight[key] = threading.Event()
                    mine.add(key)
                else:
                    theirs[key] = event
        return mine, theirs

    def _release(self, keys):
        with self._lock:
            for key in keys:
                self._inflight.pop(key).set()

    def _store(self, key, data):
        with self._lock:
            if key in self._index:
                return
            if self._free:
                slot = self._free.pop()
            else:
                _, (slot, _, _) = self._index.popitem(last=False)
                self.counters['evictions'] += 1
            self._seq += 1
            seq = self._seq
        crc = zlib.crc32(data, zlib.crc32(key))
        os.pwrite(self._data, data, slot * self.chunk)
        header = _HEADER.pack(_MAGIC, seq, len(data), crc, len(key)) + key
        os.pwrite(self._headers, header.ljust(_HEADER_BYTES, b'\0'), slot * _HEADER_BYTES)
        with self._lock:
            self._index[key] = (slot, len(data), crc)


class _Done:
    @staticmethod
    def wait(timeout=None):
        return True


_DONE = _Done()


def _key(obj, number):
    return b'%s#%d' % (obj, number)


def _runs(numbers):
    """Consecutive runs of sorted ``numbers`` as ``(first, last)``."""
    runs = []
    for n in numbers:
        if runs and runs[-1][1] == n - 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return runs
