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

"""The read cache: reads of committed data come from the local disk after
the first, stay right across epochs, handovers and a volume made anew under
the same name, survive a restart, and a torn slot is a miss."""

import concurrent.futures
import os
import threading

import pytest

from ovs_daemon.backends import base
from ovs_daemon.backends import crc32
from ovs_daemon.backends import local
from ovs_daemon.devcluster import cluster as cluster_mod
from ovs_daemon.engine import read_cache
from ovs_daemon.engine import records
from ovs_daemon.engine import store as store_mod
from ovs_daemon.engine import volume as volume_mod
from ovs_daemon.router import metrics
from tests.unit import page_cache

KiB, MiB = 1 << 10, 1 << 20


def key(epoch):
    return base.OwnerKey.generate(epoch)


@pytest.fixture
def backend(s3_test_place):
    return s3_test_place.backend()


def cached_store(backend, path, size=4 * MiB, **kwargs):
    return store_mod.VolumeStore(backend, cache=read_cache.ReadCache(str(path), size, **kwargs))


def volume_written(store, nbytes):
    """Volume 'v' (8 MiB) with ``nbytes`` of random data flushed at its
    start; returns it and the data."""
    vol = store.create('v', 8 * MiB, key(1))
    data = os.urandom(nbytes)
    vol.write(0, data)
    vol.flush()
    return vol, data


def fetched(store):
    return store.cache.counters['fetched_bytes']


def prefetches_reported(cache):
    """Prefetches under way, as a router's metrics report them."""
    registry = metrics.RouterMetrics('r1', read_cache=cache).registry
    return registry.get_sample_value('ovs_router_read_cache_prefetches')


def prefetches_done(cache):
    cluster_mod.Cluster.wait_until(lambda: prefetches_reported(cache) == 0, 30,
                                   'the prefetches to end')


def test_a_second_read_comes_from_the_cache(backend, tmp_path):
    store = cached_store(backend, tmp_path)
    vol, data = volume_written(store, 256 * KiB)
    assert vol.read(4096, 4096) == data[4096:8192]
    before = fetched(store)
    assert before >= 4096
    assert vol.read(4096, 4096) == data[4096:8192]
    assert vol.read(0, 8192) == data[:8192]
    assert fetched(store) == before
    assert store.cache.counters['hits'] >= 2


def test_no_entry_is_stale_across_epochs_or_a_volume_made_anew(backend, tmp_path):
    store = cached_store(backend, tmp_path)
    vol = store.create('v', MiB, key(1))
    vol.write(0, b'a' * 4096)
    vol.flush()
    assert vol.read(0, 4096) == b'a' * 4096
    vol = store.open('v', key(2))           # a handover: same cache, new owner
    assert vol.read(0, 4096) == b'a' * 4096
    vol.write(0, b'b' * 4096)
    vol.flush()
    assert store.open('v', key(3)).read(0, 4096) == b'b' * 4096

    vol.halt('deleted')
    backend.delete_namespace('v')
    again = store.create('v', MiB, key(1))  # same name, same epoch, same container number
    again.write(0, b'c' * 4096)
    again.flush()
    assert store.open('v', key(2)).read(0, 4096) == b'c' * 4096


def test_a_restarted_router_finds_its_cache_warm(backend, tmp_path):
    store = cached_store(backend, tmp_path)
    vol, data = volume_written(store, MiB)
    assert vol.read(0, MiB) == data
    store.cache.close()

    restarted = cached_store(backend, tmp_path)
    assert restarted.open('v', key(2)).read(0, MiB) == data
    assert fetched(restarted) == 0


def test_a_torn_slot_is_a_miss_not_wrong_data(backend, tmp_path):
    store = cached_store(backend, tmp_path)
    vol, data = volume_written(store, 64 * KiB)
    assert vol.read(0, 64 * KiB) == data
    store.cache.close()
    # A crash in the middle of slot writes: the data is not what the
    # headers say.
    size = os.path.getsize(tmp_path / 'data')
    with open(tmp_path / 'data', 'r+b') as f:
        f.write(b'\xff' * size)

    restarted = cached_store(backend, tmp_path)
    assert restarted.open('v', key(2)).read(0, 64 * KiB) == data
    assert fetched(restarted) == 64 * KiB


def test_the_cache_keeps_to_its_size_evicting_the_least_recent(backend, tmp_path):
    store = cached_store(backend, tmp_path, size=256 * KiB, readahead_bytes=0)
    vol, data = volume_written(store, MiB)
    for offset in range(0, MiB, 64 * KiB):
        assert vol.read(offset, 4096) == data[offset:offset + 4096]
    assert store.cache.counters['evictions'] == 12
    assert store.cache.filled_bytes() == 256 * KiB
    assert os.path.getsize(tmp_path / 'data') == 256 * KiB
    before = fetched(store)
    assert vol.read(MiB - 64 * KiB, 4096) == data[-64 * KiB:-60 * KiB]   # recent: a hit
    assert fetched(store) == before
    assert vol.read(0, 4096) == data[:4096]                             # evicted: a miss
    assert fetched(store) == before + 64 * KiB


def test_a_sequential_read_fetches_ahead(backend, tmp_path):
    store = cached_store(backend, tmp_path, readahead_bytes=512 * KiB)
    vol, data = volume_written(store, 2 * MiB)
    assert vol.read(0, 64 * KiB) == data[:64 * KiB]
    assert vol.read(64 * KiB, 64 * KiB) == data[64 * KiB:128 * KiB]
    assert fetched(store) == 128 * KiB     # not sequential yet
    assert vol.read(128 * KiB, 64 * KiB) == data[128 * KiB:192 * KiB]
    prefetches_done(store.cache)
    assert fetched(store) == (3 * 64 + 512) * KiB
    misses = store.cache.counters['misses']
    for offset in range(192 * KiB, 704 * KiB, 64 * KiB):
        assert vol.read(offset, 64 * KiB) == data[offset:offset + 64 * KiB]
    assert store.cache.counters['misses'] == misses


def test_a_random_read_that_lands_near_the_last_one_fetches_nothing_ahead(backend, tmp_path):
    """One random read in many starts near where the one before ended;
    only a second such read in a row counts as sequential and prefetches
    (planning a readahead costs far more than a cached 4 KiB read)."""
    store = cached_store(backend, tmp_path, readahead_bytes=512 * KiB)
    vol, data = volume_written(store, 4 * MiB)
    here = 3584 * KiB     # within the 4 MiB of the read before
    assert vol.read(0, 4 * KiB) == data[:4 * KiB]
    assert vol.read(7 * MiB, 4 * KiB) == bytes(4 * KiB)
    assert vol.read(here, 4 * KiB) == data[here:here + 4 * KiB]
    prefetches_done(store.cache)
    assert store.cache.counters['prefetched_bytes'] == 0
    assert vol.read(here + 4 * KiB, 4 * KiB) == data[here + 4 * KiB:here + 8 * KiB]
    prefetches_done(store.cache)
    assert store.cache.counters['prefetched_bytes'] > 0


def test_a_sequential_reader_is_prefetched_ahead_across_objects(backend, tmp_path):
    """Prefetch follows the volume's map, not one object: data written in
    256 KiB containers is fetched one container after the other ahead of
    a sequential reader, so its reads find it cached."""
    cache = read_cache.ReadCache(str(tmp_path), 8 * MiB, readahead_bytes=1 * MiB,
                                 prefetch_requests=8)
    store = store_mod.VolumeStore(backend, volume_mod.Tuning(container_bytes=256 * KiB), cache)
    vol, data = volume_written(store, 2 * MiB)
    assert len(backend.list('v', records.CONTAINER_PREFIX)) >= 8
    assert vol.read(0, 64 * KiB) == data[:64 * KiB]
    assert vol.read(64 * KiB, 64 * KiB) == data[64 * KiB:128 * KiB]
    assert vol.read(128 * KiB, 64 * KiB) == data[128 * KiB:192 * KiB]
    prefetches_done(cache)
    # The 1 MiB of readahead, and the rest of the container it ends in.
    assert cache.counters['prefetched_bytes'] == 1 * MiB + 64 * KiB
    misses = cache.counters['misses']
    for offset in range(192 * KiB, 1216 * KiB, 64 * KiB):
        assert vol.read(offset, 64 * KiB) == data[offset:offset + 64 * KiB]
    assert cache.counters['misses'] == misses
    # Read to the end, past what the prefetch asked for first: all there.
    for offset in range(1216 * KiB, 2 * MiB, 64 * KiB):
        assert vol.read(offset, 64 * KiB) == data[offset:offset + 64 * KiB]
    prefetches_done(cache)
    assert fetched(store) < 2 * MiB + 256 * KiB


class GetRecordingBackend(local.LocalBackend):
    """The local backend, recording each ranged read: ``(name, offset,
    length)``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gets = []

    def get(self, namespace, name, offset=0, length=None):
        if length is not None:
            self.gets.append((name, offset, length))
        return super().get(namespace, name, offset, length)


def test_a_sequential_reader_is_prefetched_a_whole_object_a_get(tmp_path):
    """The prefetch windows move with the reader, not with the objects:
    a window that ends inside an object goes on to its end, so the next
    starts at an object's start, and each object after the reader's first
    reads comes in one GET, not in two parts."""
    backend = GetRecordingBackend(str(tmp_path / 'backend'))
    cache = read_cache.ReadCache(str(tmp_path / 'cache'), 8 * MiB, readahead_bytes=1 * MiB,
                                 prefetch_requests=8)
    store = store_mod.VolumeStore(backend, volume_mod.Tuning(container_bytes=256 * KiB), cache)
    vol, data = volume_written(store, 4 * MiB)
    for offset in range(0, 4 * MiB, 64 * KiB):
        assert vol.read(offset, 64 * KiB) == data[offset:offset + 64 * KiB]
        prefetches_done(cache)
    # The reader's own three reads before it counts as sequential, and the
    # rest of the object the first window starts in; then whole objects.
    first = backend.gets[0][0]
    parts = sorted(get for get in backend.gets if get[1:] != (0, 256 * KiB))
    assert parts == [(first, n * 64 * KiB, 64 * KiB) for n in range(4)]
    assert sorted(backend.gets) == parts + sorted(
        (name, 0, 256 * KiB) for name in backend.list('v', records.CONTAINER_PREFIX)
        if name != first)


def test_prefetch_is_bounded_and_a_reader_waits_for_it_instead_of_fetching_again(tmp_path):
    cache = read_cache.ReadCache(str(tmp_path), 4 * MiB, prefetch_requests=2)
    release = threading.Event()
    gets = []

    def fetch(offset, length):
        gets.append((offset, length))
        release.wait(30)
        return with_crc32s(b''.join(bytes([n]) * (64 * KiB) for n in range(
            offset // (64 * KiB), (offset + length) // (64 * KiB))))

    assert cache.prefetch(b'a', 256 * KiB, 0, 128 * KiB, fetch)
    assert cache.prefetch(b'b', 256 * KiB, 0, 64 * KiB, fetch)
    assert not cache.prefetch(b'c', 256 * KiB, 0, 64 * KiB, fetch)
    assert prefetches_reported(cache) == 2
    readers = concurrent.futures.ThreadPoolExecutor(3)
    waiting = [readers.submit(cache.read, b'a', 256 * KiB, 64 * KiB, 4 * KiB, fetch)
               for _ in range(3)]
    cluster_mod.Cluster.wait_until(lambda: cache.counters['misses'] == 3, 10,
                                   'the readers to wait')
    release.set()
    assert [reader.result(30) for reader in waiting] == [b'\1' * (4 * KiB)] * 3
    prefetches_done(cache)
    assert sorted(gets) == [(0, 64 * KiB), (0, 128 * KiB)]
    assert cache.prefetch(b'c', 256 * KiB, 0, 64 * KiB, fetch)
    prefetches_done(cache)
    cache.close()


def test_a_read_that_need_not_wait_is_served_from_cached_chunks_only(backend, tmp_path):
    """Without ``wait`` a read on s3 returns what the read cache holds (in
    the page cache), the same bytes as a waiting read, and None, fetching
    nothing, for a chunk the cache does not hold or whose pages are evicted."""
    store = cached_store(backend, tmp_path / 'cache', chunk_bytes=64 * KiB, readahead_bytes=0)
    vol, data = volume_written(store, 256 * KiB)
    assert vol.read(4096, 4096) == data[4096:8192]     # caches chunk 0
    before = fetched(store)

    assert vol.read(4096, 8192, wait=False) == data[4096:12288]
    assert vol.read(200 * KiB, 4096, wait=False) is None     # chunk 3: not cached
    assert fetched(store) == before

    page_cache.evict(tmp_path / 'cache')
    assert vol.read(4096, 4096, wait=False) is None
    assert vol.read(4096, 4096) == data[4096:8192]


def test_a_chunk_is_checked_once_after_a_restart_and_never_when_written_here(backend, tmp_path):
    """A slot found at start may be torn: its CRC is checked at its first
    read only; a slot this process wrote is read without a check."""
    store = cached_store(backend, tmp_path)
    vol, data = volume_written(store, 128 * KiB)
    for _ in range(3):
        assert vol.read(0, 128 * KiB) == data
        assert vol.read(4 * KiB, 4 * KiB) == data[4 * KiB:8 * KiB]
    assert store.cache.counters['checked'] == 0
    store.cache.close()

    restarted = cached_store(backend, tmp_path)
    vol = restarted.open('v', key(2))
    for _ in range(3):
        assert vol.read(0, 128 * KiB) == data
        assert vol.read(68 * KiB, 4 * KiB) == data[68 * KiB:72 * KiB]
    assert restarted.cache.counters['checked'] == 2
    assert fetched(restarted) == 0


def test_a_sequential_reader_gets_prefetched_chunks_from_memory(backend, tmp_path):
    """What the prefetch fetched is handed to the reader from memory, not
    read back from the cache's disk: with the disk copy spoilt (which a
    read from the disk would find and fetch again), the reader gets the
    right data and nothing is fetched again."""
    store = cached_store(backend, tmp_path, readahead_bytes=512 * KiB)
    vol, data = volume_written(store, 2 * MiB)
    assert vol.read(0, 64 * KiB) == data[:64 * KiB]
    assert vol.read(64 * KiB, 64 * KiB) == data[64 * KiB:128 * KiB]
    assert vol.read(128 * KiB, 64 * KiB) == data[128 * KiB:192 * KiB]
    prefetches_done(store.cache)
    before = fetched(store)
    size = os.path.getsize(tmp_path / 'data')
    with open(tmp_path / 'data', 'r+b') as f:
        f.write(b'\xff' * size)
    # Up to where the next prefetch would start.
    for offset in range(192 * KiB, 640 * KiB, 64 * KiB):
        assert vol.read(offset, 64 * KiB) == data[offset:offset + 64 * KiB]
    assert fetched(store) == before


def test_a_read_of_prefetched_data_need_not_wait(backend, tmp_path):
    """A read without ``wait`` (the router's event loop) is served from
    what the prefetch fetched for a sequential reader, kept in memory:
    even with the cache file's pages evicted from the page cache it needs
    no disk; a chunk only on the disk then needs a wait."""
    store = cached_store(backend, tmp_path, readahead_bytes=512 * KiB)
    vol, data = volume_written(store, 2 * MiB)
    assert vol.read(0, 64 * KiB, wait=False) is None
    assert vol.read(0, 64 * KiB) == data[:64 * KiB]
    assert vol.read(64 * KiB, 64 * KiB) == data[64 * KiB:128 * KiB]
    assert vol.read(128 * KiB, 64 * KiB) == data[128 * KiB:192 * KiB]
    prefetches_done(store.cache)
    page_cache.evict(tmp_path)
    for offset in range(192 * KiB, 640 * KiB, 64 * KiB):
        assert vol.read(offset, 64 * KiB, wait=False) == data[offset:offset + 64 * KiB]
    assert vol.read(0, 64 * KiB, wait=False) is None      # on the disk only


@pytest.fixture
def held_disk_writes(monkeypatch):
    """Writes of chunks to the cache's data file wait until the event is
    set (a slow or busy disk)."""
    go = threading.Event()
    write = read_cache._write

    def held(*args):
        go.wait(30)
        return write(*args)

    monkeypatch.setattr(read_cache, '_write', held)
    yield go
    go.set()


def test_a_reader_waiting_for_a_prefetch_gets_it_before_it_is_on_the_disk(tmp_path,
                                                                           held_disk_writes):
    """A reader waiting for chunks a prefetch fetches takes them from
    memory as soon as the GET is in, not once they are written to the
    cache's disk; they are written there after."""
    cache = read_cache.ReadCache(str(tmp_path), 4 * MiB)
    data = os.urandom(256 * KiB)
    get_may_end = threading.Event()

    def fetch(offset, length):
        get_may_end.wait(30)
        return with_crc32s(data[offset:offset + length])

    assert cache.prefetch(b'a', len(data), 0, len(data), fetch)
    reader = concurrent.futures.ThreadPoolExecutor(1).submit(
        cache.read, b'a', len(data), 64 * KiB, 4 * KiB, fetch)
    cluster_mod.Cluster.wait_until(lambda: cache.counters['misses'] == 1, 10,
                                   'the reader to miss')
    get_may_end.set()
    assert reader.result(10) == data[64 * KiB:68 * KiB]
    assert cache.filled_bytes() == 0
    held_disk_writes.set()
    cache.close()

    restarted = read_cache.ReadCache(str(tmp_path), 4 * MiB)
    assert restarted.filled_bytes() == len(data)
    restarted.close()


def test_a_chunk_fetched_again_before_its_prefetch_is_written_keeps_one_slot(tmp_path,
                                                                            held_disk_writes):
    """A prefetched chunk read from memory and read again before the
    prefetch wrote it is fetched again; of the two copies written, one
    keeps a slot and the other's slot is free again: the cache still holds
    its size of other data."""
    cache = read_cache.ReadCache(str(tmp_path), 512 * KiB, readahead_bytes=0)
    first, second = os.urandom(256 * KiB), os.urandom(512 * KiB)
    assert cache.prefetch(b'a', len(first), 0, len(first),
                          ranged(first))
    prefetches_done(cache)
    assert cache.read(b'a', len(first), 0, len(first), not_fetched) == first
    again = concurrent.futures.ThreadPoolExecutor(1).submit(
        cache.read, b'a', len(first), 0, len(first),
        ranged(first))
    cluster_mod.Cluster.wait_until(lambda: cache.counters['misses'] == 4, 10,
                                   'the second read to miss')
    held_disk_writes.set()
    assert again.result(10) == first

    def holds_all_of_second():
        cache.read(b'b', len(second), 0, len(second),
                   ranged(second))
        try:
            return cache.read(b'b', len(second), 0, len(second), not_fetched) == second
        except NotFetched:
            return False

    cluster_mod.Cluster.wait_until(holds_all_of_second, 10, 'the cache to hold 512 KiB of b')
    cache.close()


def with_crc32s(data):
    """What a backend's get_with_crc32s returns for ``data``."""
    return data, crc32.of_pieces(data, 64 * KiB)


def ranged(data):
    """A read cache's fetch of ranges of ``data``."""
    return lambda offset, length: with_crc32s(data[offset:offset + length])


class NotFetched(Exception):
    pass


def not_fetched(offset, length):
    raise NotFetched('fetched %d bytes at %d' % (length, offset))


def test_a_read_while_every_slot_is_being_written_is_served_uncached(tmp_path,
                                                                    held_disk_writes):
    """With every slot of the cache taken by writes under way, a read of
    other data is served from the backend and left out of the cache."""
    cache = read_cache.ReadCache(str(tmp_path), 256 * KiB, readahead_bytes=0)
    first, second = os.urandom(256 * KiB), os.urandom(256 * KiB)
    assert cache.prefetch(b'a', len(first), 0, len(first),
                          ranged(first))
    prefetches_done(cache)
    assert cache.read(b'b', len(second), 0, len(second),
                      ranged(second)) == second
    held_disk_writes.set()
    cache.close()
