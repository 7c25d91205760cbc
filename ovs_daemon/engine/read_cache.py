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
number for recency). A slot is written data first, header second. A slot
found at start may be torn by a crash: its CRC is checked at its first
read, which is a miss if it does not match, never wrong data. A slot this
process wrote needs no CRC check: a read checks instead that the entry it
read is still the slot's after the read (a slot is taken from the index
before it is written again), so a slot reused while read is a miss too.
A read of part of a checked chunk reads only that part. Eviction takes the
least recently used slot. Chunks being fetched by one reader are waited
for, not fetched again, by others. Consecutive chunks fetched together go
to consecutive free slots where there are, and are written with one call.

Prefetch: the volume asks for the ``readahead`` bytes after a sequential
reader (:meth:`ReadCache.prefetch`); they are fetched in the background by
ranged GETs of at most ``PREFETCH_REQUEST_BYTES``, at most
``prefetch_requests`` at a time for the whole router (more are refused, and
asked for again by the next read), so the store streams several objects
ahead of the reader while it reads. What the prefetch fetched is also kept
in memory until the reader has read it (at most :attr:`ReadCache.fresh_limit`
bytes for the whole router, the oldest dropped first), so the reader does
not read back from the disk what was written there a moment before, nor
wait for that write: readers waiting for a prefetch get its chunks as soon
as its GET is in, and the chunks are written to the disk after, behind the
reader. While every slot is being written, what else is read stays
uncached.
"""

import collections
import concurrent.futures
import os
import struct
import threading
import typing
import zlib

from oslo_log import log as logging

from ovs_daemon.backends import crc32
from ovs_daemon.backends import page_cache

LOG = logging.getLogger(__name__)

# One prefetch GET fetches at most this much (a container, by default).
PREFETCH_REQUEST_BYTES = 8 << 20
_HEADER = struct.Struct('<4sQIIH')
_HEADER_BYTES = 512
_MAGIC = b'OVRC'
_IOV_MAX = min(1024, os.sysconf('SC_IOV_MAX'))


class ReadCache:

    def __init__(self, path, size_bytes, chunk_bytes=64 << 10, readahead_bytes=32 << 20,
                 prefetch_requests=4):
        self.chunk = chunk_bytes
        self.readahead = readahead_bytes
        self.prefetch_requests = prefetch_requests
        # What one sequential reader has ahead of it, and what is under way.
        self.fresh_limit = readahead_bytes + prefetch_requests * PREFETCH_REQUEST_BYTES
        self.slots = max(1, size_bytes // chunk_bytes)
        os.makedirs(path, exist_ok=True)
        self._data = os.open(os.path.join(path, 'data'), os.O_RDWR | os.O_CREAT, 0o600)
        self._headers = os.open(os.path.join(path, 'index'), os.O_RDWR | os.O_CREAT, 0o600)
        os.ftruncate(self._data, self.slots * chunk_bytes)
        os.ftruncate(self._headers, self.slots * _HEADER_BYTES)
        self._lock = threading.Lock()
        self._index = collections.OrderedDict()   # key -> _Entry
        self._free = []                          # popped from the end: lowest first
        # key -> (run, offset, length): a prefetched chunk not read yet, at
        # ``offset`` in the run of chunks one GET fetched.
        self._fresh = collections.OrderedDict()
        self._fresh_bytes = 0
        self._inflight = {}                      # key -> _Latch
        self._seq = 0
        self._prefetching = 0
        # A thread per GET under way, and as many writing what theirs
        # fetched to the disk.
        self._prefetcher = concurrent.futures.ThreadPoolExecutor(
            2 * max(1, prefetch_requests), thread_name_prefix='read-cache-prefetch')
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
                self._free.append(self._index.pop(key).slot)
            self._index[key] = _Entry(slot, length, crc, False)
            self._seq = seq
        self._free.sort(reverse=True)
        LOG.info('Read cache: %d of %d chunks of %d KiB filled', len(self._index), self.slots,
                 self.chunk >> 10)

    def close(self):
        self._prefetcher.shutdown(wait=True, cancel_futures=True)
        os.close(self._data)
        os.close(self._headers)

    def filled_bytes(self):
        with self._lock:
            return sum(entry.length for entry in self._index.values())

    # -- reading -----------------------------------------------------------------

    def read(self, obj, size, offset, length, fetch):
        """``length`` bytes at ``offset`` of the immutable object ``obj``
        (bytes: its unique key) of ``size`` bytes; ``fetch(offset, length)``
        reads it from the backend: the bytes and the CRC-32 of each
        ``chunk`` bytes of them (``Backend.get_with_crc32s``)."""
        first, last = offset // self.chunk, (offset + length - 1) // self.chunk
        pieces = {}
        missing = {}
        for number in range(first, last + 1):
            span = self._span(number, offset, length)
            data = self._lookup(_key(obj, number), *span)
            if data is None:
                missing[number] = span
            else:
                pieces[number] = data
        with self._lock:
            self.counters['hits'] += len(pieces)
            self.counters['misses'] += len(missing)
        if missing:
            pieces.update(self._fill(obj, size, missing, fetch))
        return b''.join(pieces[n] for n in range(first, last + 1))

    def read_at_once(self, obj, size, offset, length):
        """What :meth:`read` returns, if every chunk of it is in memory
        (prefetched, not read yet) or cached and in the page cache; else
        None, having waited for nothing (no disk, no fetch, no other
        reader's fetch)."""
        data = self._read_memory(obj, offset, length)
        if data is not None:
            return data
        first, last = offset // self.chunk, (offset + length - 1) // self.chunk
        chunks = []
        for number in range(first, last + 1):
            data = self._lookup(_key(obj, number), *self._span(number, offset, length),
                                wait=False)
            if data is None:
                return None
            chunks.append(data)
        with self._lock:
            self.counters['hits'] += len(chunks)
        return b''.join(chunks)

    def _read_memory(self, obj, offset, length):
        """What :meth:`read` returns, if every chunk it covers is in memory
        (prefetched and not read yet); else None, and nothing changes. A
        memoryview, not a copy, when the chunks came with one GET."""
        if not self._fresh:
            return None
        first, last = offset // self.chunk, (offset + length - 1) // self.chunk
        keys = [_key(obj, n) for n in range(first, last + 1)]
        with self._lock:
            found = [self._fresh.get(key) for key in keys]
            if None in found:
                return None
            run, begin = found[0][0], found[0][1] + offset - first * self.chunk
            for number, key, fresh in zip(range(first, last + 1), keys, found):
                self._take_fresh(key, fresh, self._span(number, offset, length)[1])
            self.counters['hits'] += len(found)
        if all(fresh[0] is run for fresh in found):
            return run[begin:begin + length]
        return b''.join(run[at + start:at + stop] for (run, at, _), (start, stop) in zip(
            found, (self._span(n, offset, length) for n in range(first, last + 1))))

    def _take_fresh(self, key, fresh, stop):
        """Under ``_lock``: a read of a chunk in memory up to ``stop``; the
        memory is given up once a read covers the chunk's end."""
        if stop >= fresh[2]:
            del self._fresh[key]
            self._fresh_bytes -= fresh[2]
        if key in self._index:
            self._index.move_to_end(key)

    def _span(self, number, offset, length):
        """The part of chunk ``number`` a read of ``length`` at ``offset``
        covers, as ``(start, stop)`` within the chunk."""
        base = number * self.chunk
        return max(offset, base) - base, min(offset + length, base + self.chunk) - base

    def _lookup(self, key, start, stop, wait=True):
        """Bytes ``start:stop`` of a cached chunk, or None if it is not
        cached (or, unless ``wait``, not in memory or the page cache)."""
        with self._lock:
            fresh = self._fresh.get(key)
            if fresh is not None:
                self._take_fresh(key, fresh, stop)
                run, at, _ = fresh
                return run[at + start:at + stop]
            entry = self._index.get(key)
            if entry is None:
                return None
            self._index.move_to_end(key)
        if stop > entry.length:
            data = None
        elif entry.checked:
            data = self._pread(stop - start, entry.slot * self.chunk + start, wait)
            if data is None and not wait:
                return None
            if data is not None and len(data) != stop - start:
                data = None
        else:
            data = self._checked(key, entry, wait)
            if data is _NOT_AT_HAND:
                return None
            data = data and data[start:stop]
        with self._lock:
            if self._index.get(key) is not entry:
                return None     # the slot was taken for another chunk meanwhile
            if data is None:
                del self._index[key]
                self._free.append(entry.slot)
            elif not entry.checked:
                self._index[key] = entry._replace(checked=True)
        return data

    def _pread(self, length, offset, wait):
        if wait:
            return os.pread(self._data, length, offset)
        return page_cache.read_if_cached(self._data, length, offset)

    def _checked(self, key, entry, wait=True):
        """The whole chunk of an entry found at start, if its CRC matches
        (a crash may have torn it); unless ``wait``, _NOT_AT_HAND if it is
        not in the page cache."""
        data = self._pread(entry.length, entry.slot * self.chunk, wait)
        if data is None:
            return _NOT_AT_HAND
        with self._lock:
            self.counters['checked'] += 1
        if len(data) != entry.length or zlib.crc32(data, zlib.crc32(key)) != entry.crc:
            return None
        return data

    def _fill(self, obj, size, missing, fetch):
        """Fetch the missing chunks (``{number: span}``; those another
        reader fetches: wait for them), store them, return their spans."""
        mine, theirs = self._claim([_key(obj, n) for n in missing])
        try:
            got = self._fetch_runs(obj, size, [n for n in missing if _key(obj, n) in mine],
                                   fetch)
        finally:
            self._release(mine)
        result = {}
        for n, (start, stop) in missing.items():
            if n in got:
                result[n] = got[n][start:stop]
                continue
            key = _key(obj, n)
            theirs.get(key, _DONE).wait(30)
            data = self._lookup(key, start, stop)
            if data is None:    # their fetch failed, or the slot went
                data = fetch(n * self.chunk + start, stop - start)[0]
            result[n] = data
        return result

    def _fetch_runs(self, obj, size, numbers, fetch):
        """Fetch chunks ``numbers`` (sorted), a GET per run of consecutive
        ones, store them, return them."""
        got = {}
        for _, chunks, crcs in self._get_runs(size, numbers, fetch, size):
            self._store(obj, chunks, crcs)
            got.update(chunks)
        return got

    def _get_runs(self, size, numbers, fetch, request_bytes):
        """Yield, for each run of consecutive chunks ``numbers`` (sorted)
        of at most ``request_bytes``, what one GET fetched (a memoryview),
        its chunks, ``{number: slice of it}`` in order, and their CRCs,
        ``{number: CRC-32}``."""
        per_request = max(1, request_bytes // self.chunk)
        for start, stop in _runs(numbers, per_request):
            offset = start * self.chunk
            data, crcs = fetch(offset, min(size, (stop + 1) * self.chunk) - offset)
            data = memoryview(data)
            with self._lock:
                self.counters['fetched_bytes'] += len(data)
            run = range(start, stop + 1)
            yield data, {n: data[(n - start) * self.chunk:(n - start + 1) * self.chunk]
                         for n in run}, dict(zip(run, crcs))

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
        keys = {n: _key(obj, n) for n in range(first, last + 1)}
        mine, _ = self._claim(keys.values())
        numbers = [n for n, key in keys.items() if key in mine]
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
        """Fetch the chunks; readers take each GET's chunks from memory as
        soon as it is in, and only then are they written to the cache's
        disk (its writes may wait behind other writers' dirty pages), the
        GET's place among the ``prefetch_requests`` given to the next."""
        fetched = []
        try:
            for run, chunks, crcs in self._get_runs(size, numbers, fetch,
                                                    PREFETCH_REQUEST_BYTES):
                with self._lock:
                    self.counters['prefetched_bytes'] += len(run)
                    self._keep_fresh(obj, chunks, run)
                ready = {_key(obj, n) for n in chunks}
                self._release(ready)
                keys = keys - ready
                fetched.append((chunks, crcs))
        except Exception as exc:
            # A reader that needs these chunks fetches them itself.
            LOG.debug('Prefetch of %r failed: %s', obj, exc)
        finally:
            self._release(keys)
            self._prefetch_done()
        for chunks, crcs in fetched:
            self._store(obj, chunks, crcs)

    def _prefetch_done(self):
        with self._lock:
            self._prefetching -= 1

    def prefetches(self):
        """How many prefetches are under way."""
        with self._lock:
            return self._prefetching

    def _claim(self, keys):
        """Keys this reader fetches, and latches of those others fetch."""
        mine, theirs = set(), {}
        with self._lock:
            for key in keys:
                if key in self._index or key in self._fresh:
                    continue
                event = self._inflight.get(key)
                if event is None:
                    self._inflight[key] = _Latch()
                    mine.add(key)
                else:
                    theirs[key] = event
        return mine, theirs

    def _release(self, keys):
        with self._lock:
            for key in keys:
                self._inflight.pop(key).set()

    # -- storing -----------------------------------------------------------------

    def _store(self, obj, chunks, crcs):
        """Write ``{number: data}`` of ``obj``, whose CRC-32s are
        ``{number: CRC-32}``, to slots (taken from the free ones, or the
        least recently used), a call per run of consecutive slots."""
        placed = []
        with self._lock:
            for number, data in chunks.items():
                key = _key(obj, number)
                if key in self._index or len(key) > _HEADER_BYTES - _HEADER.size:
                    continue
                slot = self._take_slot()
                if slot is None:
                    break   # every slot is being written: the rest stays uncached
                self._seq += 1
                placed.append((slot, self._seq, key, data, crcs[number]))
        entries = []
        for run in _slot_runs(placed):
            headers = []
            for slot, seq, key, data, data_crc in run:
                # The CRC of key and data, as zlib.crc32(data, crc32(key)).
                crc = crc32.combine(zlib.crc32(key), data_crc, len(data))
                headers.append(_HEADER.pack(_MAGIC, seq, len(data), crc, len(key))
                               + key.ljust(_HEADER_BYTES - _HEADER.size, b'\0'))
                entries.append((key, _Entry(slot, len(data), crc, True)))
            first_slot = run[0][0]
            _write(self._data, [item[3] for item in run], first_slot * self.chunk)
            os.pwrite(self._headers, b''.join(headers), first_slot * _HEADER_BYTES)
        with self._lock:
            for key, entry in entries:
                if key in self._index:
                    # Fetched and stored again meanwhile (its prefetch
                    # was read from memory before this store).
                    self._free.append(entry.slot)
                else:
                    self._index[key] = entry

    def _take_slot(self):
        """A slot to write, taken out of the index (under ``_lock``), or
        None while every slot is being written."""
        if self._free:
            return self._free.pop()
        if not self._index:
            return None
        _, entry = self._index.popitem(last=False)
        self.counters['evictions'] += 1
        return entry.slot

    def _keep_fresh(self, obj, chunks, run):
        """Under ``_lock``: keep prefetched chunks (slices of ``run``, in
        order) in memory for the reader, dropping the oldest past
        ``fresh_limit``."""
        at = 0
        for number, data in chunks.items():
            key = _key(obj, number)
            if key not in self._fresh:
                self._fresh[key] = (run, at, len(data))
                self._fresh_bytes += len(data)
            at += len(data)
        while self._fresh_bytes > self.fresh_limit:
            _, (_, _, length) = self._fresh.popitem(last=False)
            self._fresh_bytes -= length


class _Entry(typing.NamedTuple):
    slot: int
    length: int
    crc: int
    checked: bool       # written by this process, or its CRC was checked


class _Latch:
    """Set once, waited for by any number of threads: what a
    threading.Event does here, for a lock's cost (a prefetch claims
    hundreds of chunks on the event loop, an Event each cost more than the
    rest of the claim)."""

    __slots__ = ('_lock',)

    def __init__(self):
        self._lock = threading.Lock()
        self._lock.acquire()

    def set(self):
        self._lock.release()

    def wait(self, timeout):
        if not self._lock.acquire(timeout=timeout):
            return False
        self._lock.release()    # for the next waiter
        return True


class _Done:
    @staticmethod
    def wait(timeout=None):
        return True


_DONE = _Done()
_NOT_AT_HAND = object()


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


def _slot_runs(placed):
    """``placed`` (``(slot, ...)`` tuples, in chunk order) split into runs
    of consecutive slots."""
    runs = []
    for item in placed:
        if runs and runs[-1][-1][0] + 1 == item[0]:
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


def _write(fd, pieces, offset):
    """Write ``pieces`` one after the other at ``offset``, without joining
    them first."""
    for first in range(0, len(pieces), _IOV_MAX):
        batch = pieces[first:first + _IOV_MAX]
        written = os.pwritev(fd, batch, offset)
        expected = sum(map(len, batch))
        if written != expected:     # a short write: the rest, joined
            os.pwrite(fd, b''.join(batch)[written:], offset + written)
        offset += expected
