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

"""A volume served over NBD: the router's own flush when a client writes a
lot without flushing (real engine, local backend with faults injected)."""

import asyncio
import concurrent.futures
import contextlib
import errno
import threading

import pytest

from ovs_daemon.backends import base
from ovs_daemon.backends import s3
from ovs_daemon.engine import read_cache
from ovs_daemon.engine import records
from ovs_daemon.engine import store as store_mod
from ovs_daemon.engine import volume as volume_mod
from ovs_daemon.nbd import client as nbd_client
from ovs_daemon.nbd import errors as nbd_errors
from ovs_daemon.nbd import server as nbd_server
from ovs_daemon.router import gate as gate_mod
from ovs_daemon.router import volume_export
from tests.unit import faulty_backend
from tests.unit import page_cache

MiB = 1 << 20
LIMIT = 1 * MiB
TUNING = volume_mod.Tuning(container_bytes=256 << 10)


@pytest.fixture
def backend(tmp_path):
    return faulty_backend.FaultyBackend(tmp_path / 'store')


@pytest.fixture
def volume(backend):
    return volume_mod.Volume.create(backend, 'v1', 16 * MiB, base.OwnerKey.generate(1),
                                    tuning=TUNING)


def pattern(n):
    return bytes([n % 251 + 1]) * MiB


async def write_mib(export, first, count):
    for n in range(first, first + count):
        await export.write(n * MiB, pattern(n), fua=False)


def test_writes_past_the_limit_start_a_flush_of_the_routers_own(backend, volume):
    async def scenario():
        export = volume_export.VolumeExport(volume, max_unflushed_bytes=LIMIT)
        await write_mib(export, 0, 3)
        for _ in range(100):
            if volume.unflushed_bytes <= LIMIT:
                break
            await asyncio.sleep(0.05)
    asyncio.run(scenario())

    assert volume.unflushed_bytes <= LIMIT
    reopened = volume_mod.Volume.open(backend, 'v1', base.OwnerKey.generate(2))
    assert reopened.read(0, MiB) == pattern(0)


def test_writes_go_on_while_the_flush_uploads_and_wait_past_twice_the_limit(backend,
                                                                          volume):
    async def scenario():
        export = volume_export.VolumeExport(volume, max_unflushed_bytes=LIMIT)
        backend.uploads_may_go.clear()
        # 2 MiB: past the limit, a flush starts and is held in its upload.
        await asyncio.wait_for(write_mib(export, 0, 2), timeout=5)
        # Past twice the limit the next write waits for that flush.
        blocked = asyncio.ensure_future(write_mib(export, 2, 1))
        await asyncio.sleep(0.3)
        waited = not blocked.done()
        backend.uploads_may_go.set()
        await asyncio.wait_for(blocked, timeout=10)
        return waited
    assert asyncio.run(scenario())
    assert volume.read(2 * MiB, MiB) == pattern(2)


def test_a_failed_background_flush_loses_nothing(backend, volume):
    async def scenario():
        export = volume_export.VolumeExport(volume, max_unflushed_bytes=LIMIT)
        backend.failures_left = 1
        await write_mib(export, 0, 2)
        await asyncio.sleep(0.2)
        await export.flush()
    asyncio.run(scenario())

    assert backend.failures_left == 0     # the background flush did fail once
    reopened = volume_mod.Volume.open(backend, 'v1', base.OwnerKey.generate(2))
    for n in range(2):
        assert reopened.read(n * MiB, MiB) == pattern(n)


@pytest.mark.parametrize('held', ['read', 'unaligned write'])
def test_a_slow_backend_read_stalls_no_other_volume(backend, volume, held):
    other = volume_mod.Volume.create(backend, 'v2', 16 * MiB, base.OwnerKey.generate(1),
                                     tuning=TUNING)

    async def scenario():
        slow = volume_export.VolumeExport(volume)
        fast = volume_export.VolumeExport(other)
        await slow.write(0, pattern(1), fua=True)   # committed: read back from the backend
        backend.ranged_reads_may_go.clear()
        if held == 'read':
            waiting = asyncio.ensure_future(slow.read(4096, 4096))
        else:
            waiting = asyncio.ensure_future(slow.write(4096 + 100, b'x' * 10, fua=False))
        assert await asyncio.to_thread(backend.ranged_read_waiting.wait, 10)
        await fast.write(0, pattern(2)[:65536], fua=False)
        assert await fast.read(0, 65536) == pattern(2)[:65536]
        served_while_held = not waiting.done()
        backend.ranged_reads_may_go.set()
        await waiting
        return served_while_held

    assert asyncio.run(scenario())
    if held == 'unaligned write':
        expected = pattern(1)[:100] + b'x' * 10 + pattern(1)[:4096 - 110]
        assert volume.read(4096, 4096) == expected


class HeldS3Backend(s3.S3Backend):
    """moto's S3, where a read of a data object of the volumes named in
    ``held`` waits until ``reads_may_go`` is set."""

    held = frozenset()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reads_may_go = threading.Event()
        self.read_waiting = threading.Event()

    def get_with_crc32s(self, namespace, name, offset, length, piece):
        if namespace in self.held and name.startswith(records.CONTAINER_PREFIX):
            faulty_backend.wait_while_held(self.reads_may_go, self.read_waiting, 30)
        return super().get_with_crc32s(namespace, name, offset, length, piece)


def test_a_slow_s3_read_stalls_no_other_volume_served_from_the_read_cache(
        s3_test_place, tmp_path):
    backend = HeldS3Backend(s3_test_place.settings())
    store = store_mod.VolumeStore(backend, tuning=TUNING, cache=read_cache.ReadCache(
        str(tmp_path / 'cache'), 4 * MiB, readahead_bytes=0))
    slow_volume = store.create('v1', 16 * MiB, base.OwnerKey.generate(1))
    fast_volume = store.create('v2', 16 * MiB, base.OwnerKey.generate(1))

    async def scenario():
        slow = volume_export.VolumeExport(slow_volume)
        fast = volume_export.VolumeExport(fast_volume)
        await slow.write(0, pattern(1), fua=True)
        await fast.write(0, pattern(2), fua=True)
        assert await fast.read(0, 4096) == pattern(2)[:4096]   # now in the read cache
        backend.held = frozenset(['v1'])
        waiting = asyncio.ensure_future(slow.read(4096, 4096))
        assert await asyncio.to_thread(backend.read_waiting.wait, 10)
        async with nbd_session(fast) as nbd:
            from_cache = await nbd.read(8192, 4096)
            await nbd.write(MiB, b'f' * 4096)
            from_memory = await nbd.read(MiB, 4096)
        served_while_held = not waiting.done()
        backend.reads_may_go.set()
        return served_while_held, from_cache, from_memory, await waiting

    served_while_held, from_cache, from_memory, slow_read = asyncio.run(scenario())
    assert served_while_held
    assert from_cache == pattern(2)[:4096]
    assert from_memory == b'f' * 4096
    assert slow_read == pattern(1)[:4096]


def test_a_failing_backend_holds_the_routers_memory_and_a_failed_write_is_not_applied(
        backend, volume):
    async def scenario():
        export = volume_export.VolumeExport(volume, max_unflushed_bytes=LIMIT)
        backend.failures_left = 10 ** 6          # every upload fails
        failed = []
        for n in range(8):
            try:
                await export.write(n * MiB, pattern(n), fua=False)
            except nbd_errors.RequestError:
                failed.append(n)
        return failed

    failed = asyncio.run(scenario())
    assert failed
    assert volume.unflushed_bytes <= 2 * LIMIT + MiB      # one write past the bound at most
    for n in failed:
        assert volume.read(n * MiB, MiB) == bytes(MiB)


def test_a_flood_of_trims_counts_against_the_limit(backend):
    big = volume_mod.Volume.create(backend, 'big', 256 * MiB, base.OwnerKey.generate(1),
                                   tuning=TUNING)

    async def scenario():
        export = volume_export.VolumeExport(big, max_unflushed_bytes=LIMIT)
        await export.write(0, bytes([7]) * 8 * MiB, fua=True)
        # Every other block: no two TRIMs can be merged into one operation.
        for block in range(0, 4 * LIMIT // volume_mod.OP_BYTES, 2):
            await export.trim(block * 4096, 4096, fua=False)
        await asyncio.sleep(0.5)

    asyncio.run(scenario())
    assert big.unflushed_bytes <= 2 * LIMIT
    # The router committed TRIMs by itself: a new owner sees them.
    reopened = volume_mod.Volume.open(backend, 'big', base.OwnerKey.generate(2))
    assert reopened.read(0, 4096) == bytes(4096)
    assert reopened.read(4096, 4096) == bytes([7]) * 4096


@contextlib.asynccontextmanager
async def nbd_session(export):
    """A real NBD server serving ``export`` and a client connected to it."""
    async def resolve(name):
        return export
    server = nbd_server.NBDServer(resolve)
    await server.start_tcp('127.0.0.1', 0)
    nbd = await nbd_client.NBDClient.connect_tcp('127.0.0.1', server.bound_port, 'v1')
    try:
        yield nbd
    finally:
        nbd.abort()
        await server.stop()


def test_a_read_of_flushed_data_in_the_page_cache_needs_no_worker_thread(tmp_path, volume):
    """A read of committed data whose pages the page cache holds is served on
    the event loop, with the same bytes as the worker's; a read of a
    container the backend has not opened yet waits for the worker (here busy
    until released); once the pages are evicted a read still returns the
    right bytes."""
    workers = concurrent.futures.ThreadPoolExecutor(1)
    release = threading.Event()
    data = pattern(3)[:256 << 10] + pattern(4)[:256 << 10]   # two containers

    async def scenario():
        export = volume_export.VolumeExport(volume, executor=workers)
        async with nbd_session(export) as nbd:
            await nbd.write(0, data, fua=True)
            from_worker = await nbd.read(4096, 8192)    # opens the first container
            workers.submit(release.wait, 30)
            at_once = await asyncio.wait_for(nbd.read(4096, 8192), timeout=5)
            unopened = asyncio.ensure_future(nbd.read(300 << 10, 4096))
            await asyncio.sleep(0.3)
            waited_for_worker = not unopened.done()
            release.set()
            await unopened
            page_cache.evict(tmp_path / 'store' / 'v1')
            evicted = await asyncio.wait_for(nbd.read(8192, 4096), timeout=5)
            return from_worker, at_once, waited_for_worker, unopened.result(), evicted

    try:
        from_worker, at_once, waited_for_worker, unopened, evicted = asyncio.run(scenario())
    finally:
        release.set()
        workers.shutdown()
    assert at_once == from_worker == data[4096:12288]
    assert waited_for_worker
    assert unopened == data[300 << 10:(300 << 10) + 4096]
    assert evicted == data[8192:12288]


def test_requests_served_at_once_are_observed_and_read_back(volume):
    seen = []

    async def scenario():
        export = volume_export.VolumeExport(
            volume, observe=lambda op, seconds, nbytes, error: seen.append((op, nbytes, error)))
        async with nbd_session(export) as nbd:
            await nbd.write(8192, b'a' * 4096)
            return await nbd.read(8192, 4096)
    assert asyncio.run(scenario()) == b'a' * 4096
    assert seen == [('write', 4096, None), ('read', 4096, None)]


def test_a_paused_gate_holds_a_write_that_would_be_served_at_once(volume):
    async def scenario():
        gate = gate_mod.IOGate()
        export = volume_export.VolumeExport(volume, gate=gate)
        async with nbd_session(export) as nbd:
            gate.pause()
            write = asyncio.ensure_future(nbd.write(0, b'b' * 4096))
            await asyncio.sleep(0.2)
            held = not write.done()
            gate.resume()
            await asyncio.wait_for(write, timeout=5)
            return held, await nbd.read(0, 4096)
    held, data = asyncio.run(scenario())
    assert held
    assert data == b'b' * 4096


def test_a_revoked_token_refuses_a_write_that_would_be_served_at_once(volume):
    current = {'token': True}

    async def scenario():
        attached = volume_export.AttachedExport(
            volume_export.VolumeExport(volume), 'token', lambda: current['token'])
        async with nbd_session(attached) as nbd:
            await nbd.write(0, b'c' * 4096)
            current['token'] = False
            with pytest.raises(nbd_errors.RemoteIOError) as refused:
                await nbd.write(0, b'd' * 4096)
            return refused.value.errno
    assert asyncio.run(scenario()) == errno.EPERM
    assert volume.read(0, 4096) == b'c' * 4096


def test_a_halted_volume_answers_eshutdown_at_once_and_tells_the_router(volume):
    halts = []

    async def scenario():
        export = volume_export.VolumeExport(volume, on_halt=halts.append)
        async with nbd_session(export) as nbd:
            await nbd.write(0, b'e' * 4096)
            volume.halt('handed over')
            with pytest.raises(nbd_errors.RemoteIOError) as halted:
                await nbd.read(0, 4096)
            return halted.value.errno
    assert asyncio.run(scenario()) == errno.ESHUTDOWN
    assert halts == ['handed over']


def test_a_failed_put_of_a_sealed_container_fails_the_next_flush_with_eio(backend, volume):
    container = TUNING.container_bytes

    async def scenario():
        export = volume_export.VolumeExport(volume)
        async with nbd_session(export) as nbd:
            backend.failures_left = 1
            await nbd.write(0, pattern(1)[:container])
            await nbd.write(container, pattern(2)[:4096])   # seals the first container
            for _ in range(200):
                if not backend.failures_left:
                    break
                await asyncio.sleep(0.05)
            put_before_the_flush = not backend.failures_left
            with pytest.raises(nbd_errors.RemoteIOError) as failed:
                await nbd.flush()
            await nbd.flush()
            return put_before_the_flush, failed.value.errno
    assert asyncio.run(scenario()) == (True, errno.EIO)
    reopened = volume_mod.Volume.open(backend, 'v1', base.OwnerKey.generate(2))
    assert reopened.read(0, container + 4096) == pattern(1)[:container] + pattern(2)[:4096]
