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
never wrong data. Eviction takes the least recently used slot. Chunks being fetched by one
reader are waited for, not fetched again, by others.

Prefetch: the volume asks for the ``readahead`` bytes after a sequential
reader (:meth:`ReadCache.prefetch`); they are fetched in the background by
ranged GETs of at most ``PREFETCH_REQUEST_BYTES``, at most
``prefetch_requests`` at a time for the whole router (more are refused, and
asked for again by the next read), so the store streams several objects
ahead of the reader while it reads.
"""

import collections
import concurrent.futures
import os
import struct
import threading
import zlib

from oslo_log import log as logging

from ovs_daemon.backends import page_cache

LOG = logging.getLogger(__name__)

# One prefetch GET fetches at most this much (a container, by default).
PREFETCH_REQUEST_BYTES = 8 << 20
_HEADER = struct.Struct('<4sQIIH')
_HEADER_BYTES = 512
_MAGIC = b'OVRC'


class ReadCache:

    def __init__(self, path, size_bytes, chunk_bytes=64 << 10, readahead_bytes=32 << 20,
                 prefetch_requests=4):
        self.chunk = chunk_bytes
        self.readahead = readahead_bytes
        self.prefetch_requests = prefetch_requests
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
        self._prefetching = 0
        self._prefetcher = concurrent.futures.ThreadPoolExecutor(
            max(1, prefetch_requests), thread_name_prefix='read-cache-prefetch')
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
        self._prefetcher.shutdown(wait=True, cancel_futures=True)
        os.close(self._data)
        os.close(self._headers)

    def filled_bytes(self):
        with self._lock:
            return sum(length for _, length, _ in self._index.values())

    # -- reading -----------------------------------------------------------------

    def read(self, obj, size, offset, length, fetch):
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
            chunks.update(self._fill(obj, size, missing, fetch))
        joined = b''.join(chunks[n] for n in range(first, last + 1))
        skip = offset - first * self.chunk
        return joined[skip:skip + length]

    def read_at_once(self, obj, size, offset, length):
        """What :meth:`read` returns, if every chunk of it is cached and in
        the page cache; else None, having waited for nothing (no disk, no
        fetch, no other reader's fetch)."""
        first, last = offset // self.chunk, (offset + length - 1) // self.chunk
        chunks = []
        for number in range(first, last + 1):
            data = self._lookup(_key(obj, number), wait=False)
            if data is None:
                return None
            chunks.append(data)
        with self._lock:
            self.counters['hits'] += len(chunks)
        skip = offset - first * self.chunk
        return b''.join(chunks)[skip:skip + length]

    def _lookup(self, key, wait=True):
        """A chunk's data, or None if it is not cached (or, unless ``wait``,
        not in the page cache)."""
        with self._lock:
            entry = self._index.get(key)
            if entry is None:
                return None
            self._index.move_to_end(key)
        slot, length, crc = entry
        if wait:
            data = os.pread(self._data, length, slot * self.chunk)
        else:
            data = page_cache.read_if_cached(self._data, length, slot * self.chunk)
            if data is None:
                return None
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

    def _fill(self, obj, size, missing, fetch):
        """Fetch the missing chunks (those another reader fetches: wait for
        them), store them, return them."""
        mine, theirs = self._claim([_key(obj, n) for n in missing])
        try:
            got = self._fetch_runs(obj, size, [n for n in missing if _key(obj, n) in mine],
                                   fetch)
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

    def _fetch_runs(self, obj, size, numbers, fetch, request_bytes=None):
        """Fetch chunks ``numbers`` (sorted), a GET per run of consecutive
        ones (of at most ``request_bytes``), store them, return them."""
        got = {}
        per_request = max(1, (request_bytes or size) // self.chunk)
        for start, stop in _runs(numbers, per_request):
            offset = start * self.chunk
            data = fetch(offset, min(size, (stop + 1) * self.chunk) - offset)
            with self._lock:
                self.counters['fetched_bytes'] += len(data)
            for n in range(start, stop + 1):
                piece = data[(n - start) * self.chunk:(n - start + 1) * self.chunk]
                self._store(_key(obj, n), piece)
                got[n] = piece
        return got

    # -- prefetch ----------------------------------------------------------------

    def prefetch(self, obj, size, offset, length, fetch):
        """Fetch ``length`` bytes at ``offset`` of ``obj`` in the background
        (what is cached or being fetched already is left alone). Returns
        False, and fetches nothing, while ``prefetch_requests`` prefetches
        are under way."""
        first, last = offset // self.chunk, (offset + length - 1) // self.chunk
        with self._lock:
            if self._prefetching >= self.prefetch_requests:
                return False
            self._prefetching += 1
        mine, _ = self._claim([_key(obj, n) for n in range(first, last + 1)])
        numbers = [n for n in range(first, last + 1) if _key(obj, n) in mine]
        if not numbers:
            self._prefetch_done()
            return True
        try:
            self._prefetcher.submit(self._prefetch, obj, size, numbers, mine, fetch)
        except RuntimeError:    # closed
            self._release(mine)
            self._prefetch_done()
        return True

    def _prefetch(self, obj, size, numbers, keys, fetch):
        try:
            got = self._fetch_runs(obj, size, numbers, fetch, PREFETCH_REQUEST_BYTES)
            with self._lock:
                self.counters['prefetched_bytes'] += sum(map(len, got.values()))
        except Exception as exc:
            # A reader that needs these chunks fetches them itself.
            LOG.debug('Prefetch of %r failed: %s', obj, exc)
        finally:
            self._release(keys)
            self._prefetch_done()

    def _prefetch_done(self):
        with self._lock:
            self._prefetching -= 1

    def prefetches(self):
        """How many prefetches are under way."""
        with self._lock:
            return self._prefetching

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


def _runs(numbers, longest):
    """Consecutive runs of sorted ``numbers`` as ``(first, last)``, each of
    at most ``longest`` numbers."""
    runs = []
    for n in numbers:
        if runs and runs[-1][1] == n - 1 and n - runs[-1][0] < longest:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return runs
