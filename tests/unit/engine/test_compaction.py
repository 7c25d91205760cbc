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

"""Compaction: space comes back under random overwrites, and nothing is
lost by a write racing it, a fenced owner running it, or a crash anywhere in
it."""

import os
import random
import threading

import pytest

from ovs_daemon.backends import base
from ovs_daemon.backends import local
from ovs_daemon.engine import compaction
from ovs_daemon.engine import records
from ovs_daemon.engine import store as store_mod
from ovs_daemon.engine import volume as volume_mod
from tests.unit.engine import stores
from tests.unit.faulty_backend import FaultyBackend

BLOCK = volume_mod.BLOCK_SIZE
TUNING = volume_mod.Tuning(container_bytes=16 * BLOCK)
EAGER = compaction.Policy(threshold=0.5, bytes_per_second=0)


def key(epoch):
    return base.OwnerKey.generate(epoch)


@pytest.fixture
def store(request, tmp_path):
    return stores.on_backend(request, tmp_path, TUNING)


ON_EACH_BACKEND = stores.ON_EACH_BACKEND


def overwrite_randomly(vol, model, writes, seed=7, flush_every=16):
    rnd = random.Random(seed)
    blocks = len(model) // BLOCK
    for i in range(writes):
        block = rnd.randrange(blocks)
        data = os.urandom(BLOCK)
        vol.write(block * BLOCK, data)
        model[block * BLOCK:(block + 1) * BLOCK] = data
        if i % flush_every == flush_every - 1:
            vol.flush()
    vol.flush()


def stored_bytes(store, name):
    return sum(len(store.backend.get(name, n))
               for n in store.backend.list(name, records.CONTAINER_PREFIX))


@ON_EACH_BACKEND
def test_ten_times_the_volume_in_random_writes_stores_at_most_1_5x_live(store):
    size = 64 * BLOCK
    vol = store.create('v', size, key(1))
    model = bytearray(size)
    vol.write(0, bytes(model))      # every block live
    for _ in range(10):
        overwrite_randomly(vol, model, size // BLOCK, seed=len(model) + _)
        store.compact_and_collect(vol, EAGER)

    assert stored_bytes(store, 'v') <= 1.5 * size
    assert vol.read(0, size) == model
    assert store.open('v', key(2)).read(0, size) == model


def test_without_compaction_the_same_writes_keep_far_more(store):
    size = 64 * BLOCK
    vol = store.create('v', size, key(1))
    model = bytearray(size)
    vol.write(0, bytes(model))
    for _ in range(10):
        overwrite_randomly(vol, model, size // BLOCK, seed=len(model) + _)
        store.collect(vol)
    assert stored_bytes(store, 'v') > 2 * size


def test_round_reports_what_it_freed(store):
    size = 64 * BLOCK
    vol = store.create('v', size, key(1))
    model = bytearray(size)
    overwrite_randomly(vol, model, 4 * size // BLOCK)
    round_ = store.compact_and_collect(vol, EAGER)
    assert round_['containers_rewritten'] > 0
    assert round_['freed_bytes'] == round_['stored_bytes_before'] - round_['stored_bytes'] > 0
    assert round_['stored_bytes'] == stored_bytes(store, 'v')
    assert round_['live_bytes'] == len([i for i in range(0, size, BLOCK)
                                        if model[i:i + BLOCK] != bytes(BLOCK)]) * BLOCK


@ON_EACH_BACKEND
def test_a_round_leaves_no_container_below_the_threshold_of_writes_not_yet_flushed(store):
    # Two containers filled and one block of each left live, all before
    # any FLUSH: the round's own commits make them durable, and they are
    # as rewritable as those committed before it.
    vol = store.create('v', 64 * BLOCK, key(1))
    vol.write(0, b'a' * 32 * BLOCK)
    vol.write(0, b'b' * 15 * BLOCK)
    vol.write(16 * BLOCK, b'c' * 15 * BLOCK)
    store.compact_and_collect(vol, EAGER)

    bmap, committed = vol.layout()
    live = compaction.live_counts(bmap)
    for name in store.backend.list('v', records.CONTAINER_PREFIX):
        number, _ = records.parse_container_name(name)
        assert live[number] >= EAGER.threshold * committed[number][1], name
    expected = b'b' * 15 * BLOCK + b'a' * BLOCK + b'c' * 15 * BLOCK + b'a' * BLOCK
    assert vol.read(0, 32 * BLOCK) == expected
    assert store.open('v', key(2)).read(0, 32 * BLOCK) == expected


def one_live_block_in_container_1(tmp_path):
    """A store on a FaultyBackend and its volume 'v', whose first container
    keeps one live block, the 16th (b'a'), the rest overwritten (b'b')."""
    store = store_mod.VolumeStore(FaultyBackend(tmp_path / 'backend'), TUNING)
    vol = store.create('v', 64 * BLOCK, key(1))
    vol.write(0, b'a' * 16 * BLOCK)
    vol.write(0, b'b' * 15 * BLOCK)
    vol.flush()
    return store, vol


def test_a_write_made_while_compaction_uploads_wins(tmp_path):
    store, vol = one_live_block_in_container_1(tmp_path)
    store.backend.uploads_may_go.clear()
    thread = threading.Thread(target=store.compact_and_collect, args=(vol, EAGER))
    thread.start()
    assert store.backend.upload_waiting.wait(10)
    vol.write(15 * BLOCK, b'c' * BLOCK)   # the block being copied
    store.backend.uploads_may_go.set()
    thread.join(10)

    assert vol.read(15 * BLOCK, BLOCK) == b'c' * BLOCK
    vol.flush()
    assert store.open('v', key(2)).read(0, 16 * BLOCK) == b'b' * 15 * BLOCK + b'c' * BLOCK


def test_a_read_planned_before_a_round_reads_the_moved_copy(tmp_path):
    store, vol = one_live_block_in_container_1(tmp_path)
    store.backend.ranged_reads_may_go.clear()
    got = {}
    reader = threading.Thread(target=lambda: got.update(data=vol.read(15 * BLOCK, BLOCK)))
    reader.start()
    assert store.backend.ranged_read_waiting.wait(10)

    round_ = store.compact_and_collect(vol, EAGER)   # moves the block, removes container 1
    store.backend.ranged_reads_may_go.set()
    reader.join(10)

    assert round_['containers_rewritten'] == 1
    assert got['data'] == b'a' * BLOCK


@ON_EACH_BACKEND
def test_a_fenced_owners_compactor_changes_nothing(store):
    size = 64 * BLOCK
    first = store.create('v', size, key(1))
    model = bytearray(size)
    overwrite_randomly(first, model, 4 * size // BLOCK)
    second = store.open('v', key(2))
    before = store.backend.list('v')

    with pytest.raises(base.Fenced):
        store.compact_and_collect(first, EAGER)

    assert first.halted
    # A data object may have landed (an object store cannot refuse it), but
    # nothing refers to it, and the owner's collector removes it.
    assert [n for n in store.backend.list('v') if n not in before
            and not n.startswith(records.CONTAINER_PREFIX)] == []
    assert second.read(0, size) == model
    store.collect(second)
    assert set(store.backend.list('v', records.CONTAINER_PREFIX)) <= set(before)
    assert store.open('v', key(3)).read(0, size) == model


def test_containers_of_snapshots_and_clones_are_kept(store):
    size = 64 * BLOCK
    vol = store.create('v', size, key(1))
    model = bytearray(size)
    overwrite_randomly(vol, model, size // BLOCK)
    vol.create_snapshot('s')
    at_snapshot = bytes(model)
    clone = store.clone('c', 'v', 's', key(1))
    overwrite_randomly(vol, model, 3 * size // BLOCK, seed=99)
    vol.delete_snapshot('s')        # the clone still reads it

    store.compact_and_collect(vol, compaction.Policy(threshold=1.0, bytes_per_second=0))

    assert vol.read(0, size) == model
    assert clone.read(0, size) == at_snapshot
    assert store.open('c', key(2)).read(0, size) == at_snapshot
    assert store.open('v', key(2)).read(0, size) == model


class MetadataCountingBackend(local.LocalBackend):
    """Counts reads of volumes' metadata objects."""

    def __init__(self, path):
        super().__init__(path)
        self.metadata_reads = 0

    def get(self, namespace, name, *args):
        if name == records.META:
            self.metadata_reads += 1
        return super().get(namespace, name, *args)


def test_only_a_volume_with_a_deleted_snapshot_looks_for_clones_in_a_round(tmp_path):
    """Clones are found by reading every volume's metadata: done for each
    volume in each round, a router of 1,000 volumes read a million objects
    a round. Only a deleted snapshot's map object still in the backend can
    be what a clone reads, so a volume without one skips the search; one
    with one still keeps what its clone reads."""
    backend = MetadataCountingBackend(tmp_path / 'backend')
    store = store_mod.VolumeStore(backend, TUNING)
    size = 64 * BLOCK
    volumes = [store.create('v%d' % i, size, key(1)) for i in range(12)]
    for vol in volumes:
        overwrite_randomly(vol, bytearray(size), 2 * size // BLOCK)
    volumes[0].create_snapshot('kept')
    for vol in volumes:
        store.compact_and_collect(vol, EAGER)
    assert backend.metadata_reads == 0

    parent = volumes[1]
    model = bytearray(parent.read(0, size))
    parent.create_snapshot('s')
    at_snapshot = bytes(model)
    clone = store.clone('c', 'v1', 's', key(1))
    overwrite_randomly(parent, model, 3 * size // BLOCK, seed=5)
    parent.delete_snapshot('s')
    store.compact_and_collect(parent, compaction.Policy(threshold=1.0, bytes_per_second=0))
    assert backend.metadata_reads > 0
    assert clone.read(0, size) == at_snapshot
    assert store.open('c', key(2)).read(0, size) == at_snapshot
    assert parent.read(0, size) == model


class Crash(Exception):
    """The process died here."""


class CrashingBackend(local.LocalBackend):
    """Dies at the n-th mutating call (put, log append, delete, trim)."""

    def __init__(self, path):
        super().__init__(path)
        self.calls_left = None

    def _step(self):
        if self.calls_left is not None:
            if self.calls_left == 0:
                raise Crash()
            self.calls_left -= 1

    def put(self, *args, **kwargs):
        self._step()
        return super().put(*args, **kwargs)

    def append_log(self, *args):
        self._step()
        return super().append_log(*args)

    def delete(self, *args):
        self._step()
        return super().delete(*args)

    def trim_log(self, *args):
        self._step()
        return super().trim_log(*args)


def test_a_crash_at_each_step_of_a_round_loses_nothing(tmp_path):
    size = 64 * BLOCK
    step = 0
    while True:
        backend = CrashingBackend(tmp_path / ('b%d' % step))
        store = store_mod.VolumeStore(backend, TUNING)
        vol = store.create('v', size, key(1))
        model = bytearray(size)
        overwrite_randomly(vol, model, 3 * size // BLOCK)
        backend.calls_left = step
        try:
            store.compact_and_collect(vol, EAGER)
            finished = True
        except Crash:
            finished = False
        backend.calls_left = None

        again = store.open('v', key(2))
        assert again.read(0, size) == model, 'crash at mutating call %d' % step
        store.compact_and_collect(again, EAGER)
        assert store.open('v', key(3)).read(0, size) == model
        if finished:
            break
        step += 1
    assert step > 10     # the round had that many steps to crash in


def test_throttle_keeps_to_its_rate():
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds
    throttle = compaction.Throttle(1000, clock=lambda: now[0], sleep=sleep)
    for _ in range(10):
        throttle.spend(500)
    assert now[0] == pytest.approx(5.0)
