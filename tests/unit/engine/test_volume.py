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

"""Scenarios of the volume engine on the local backend."""

import os
import threading

import pytest

from ovs_daemon.backends import base
from ovs_daemon.backends import local
from ovs_daemon.engine import errors
from ovs_daemon.engine import records
from ovs_daemon.engine import store as store_mod
from ovs_daemon.engine import volume as volume_mod
from tests.unit import page_cache
from tests.unit.engine import stores
from tests.unit.faulty_backend import FaultyBackend

MiB = 1 << 20
TiB = 1 << 40


@pytest.fixture
def store(request, tmp_path):
    return stores.on_backend(request, tmp_path)


ON_EACH_BACKEND = stores.ON_EACH_BACKEND


def key(epoch):
    return base.OwnerKey.generate(epoch)


@ON_EACH_BACKEND
def test_second_owner_fences_the_first(store):
    first = store.create('v', 8 * MiB, key(1))
    first.write(0, b'a' * 4096)
    first.flush()
    first.write(4096, b'b' * 4096)

    second = store.open('v', key(2))
    first.write(8192, b'c' * 4096)
    with pytest.raises(base.Fenced):
        first.flush()
    assert first.halted
    with pytest.raises(errors.Halted):
        first.write(0, b'x')

    assert second.read(0, 3 * 4096) == b'a' * 4096 + bytes(8192)
    assert store.open('v', key(3)).read(0, 3 * 4096) == \
        b'a' * 4096 + bytes(8192)


@ON_EACH_BACKEND
def test_fenced_writer_cannot_sneak_a_commit_in(store):
    first = store.create('v', MiB, key(1))
    store.open('v', key(2))
    first.write(0, b'z' * 4096)
    with pytest.raises(base.Fenced):
        first.flush()
    assert list(store.backend.read_log('v'))[-1] == (2, None)


def test_unaligned_io(store):
    vol = store.create('v', MiB, key(1))
    vol.write(4090, b'0123456789ABCDEF')
    vol.write(1, b'x')
    assert vol.read(4088, 20) == b'\0\x000123456789ABCDEF\0\0'
    assert vol.read(0, 3) == b'\0x\0'
    vol.flush()
    vol = store.open('v', key(2))
    assert vol.read(4090, 16) == b'0123456789ABCDEF'
    vol.write_zeroes(4093, 5)
    assert vol.read(4090, 16) == b'012\0\0\0\0\x0089ABCDEF'


@pytest.mark.parametrize('offset,length', [(-1, 1), (MiB, 1), (MiB - 1, 2),
                                           (0, MiB + 1)])
def test_out_of_range_is_refused_and_changes_nothing(store, offset, length):
    vol = store.create('v', MiB, key(1))
    vol.write(MiB - 4096, b'k' * 4096)
    with pytest.raises((errors.OutOfRange, errors.InvalidRequest)):
        vol.write(offset, b'q' * length)
    with pytest.raises((errors.OutOfRange, errors.InvalidRequest)):
        vol.write_zeroes(offset, length)
    assert vol.read(MiB - 4096, 4096) == b'k' * 4096


@pytest.mark.parametrize('size', [0, -4096, 4095, 2 ** 60, '1'])
def test_bad_sizes_are_refused(store, size):
    with pytest.raises(errors.InvalidRequest):
        store.create('v', size, key(1))
    assert store.names() == []


def test_a_huge_empty_volume_costs_almost_nothing(store):
    vol = store.create('big', TiB, key(1))
    vol.write(TiB - 4096, b'e' * 4096)
    vol.create_snapshot('s1')
    clone = store.clone('c', 'big', 's1', key(1))
    assert clone.read(TiB - 4096, 4096) == b'e' * 4096
    assert vol.stats()['map_bytes'] <= 8192
    assert len(store.backend.get('big', next(iter(vol.snapshot_objects())))) < 16384


def test_whole_disk_trim_of_a_clone_stays_small(store):
    vol = store.create('p', TiB, key(1))
    vol.write(0, b'p' * 4096)
    vol.create_snapshot('s')
    clone = store.clone('c', 'p', 's', key(1))
    clone.trim(0, TiB)
    assert clone.read(0, 4096) == bytes(4096)
    assert clone.stats()['map_bytes'] < 16384


def test_metadata_is_8_bytes_per_densely_written_block(store):
    vol = store.create('v', 64 * MiB, key(1))
    for offset in range(0, 64 * MiB, MiB):
        vol.write(offset, os.urandom(MiB))
    blocks = 64 * MiB // 4096
    assert vol.stats()['map_bytes'] / blocks == 8


def test_restart_replays_only_the_log_after_the_checkpoint(store, caplog):
    tuning = volume_mod.Tuning(checkpoint_every_records=10)
    store.tuning = tuning
    vol = store.create('v', 16 * MiB, key(1))
    for i in range(25):
        vol.write(i * 4096, b'%04d' % i * 1024)
        vol.flush()
        vol.wait_for_checkpoint()
    reopened = store.open('v', key(2))
    assert reopened._records_since_checkpoint == 5
    assert reopened.read(24 * 4096, 4) == b'0024'
    assert len(list(store.backend.read_log('v'))) <= 7


def test_clone_reads_through_and_writes_copy_on_write(store):
    parent = store.create('p', 4 * MiB, key(1))
    parent.write(0, b'P' * 8192)
    parent.create_snapshot('s')
    parent.write(0, b'Q' * 4096)
    clone = store.clone('c', 'p', 's', key(1), size=8 * MiB)
    clone.write(4096, b'C' * 4096)
    assert clone.read(0, 8192) == b'P' * 4096 + b'C' * 4096
    assert parent.read(0, 8192) == b'Q' * 4096 + b'P' * 4096
    assert clone.read(6 * MiB, 10) == bytes(10)
    clone.create_snapshot('cs')
    grandchild = store.clone('g', 'c', 'cs', key(1))
    assert grandchild.read(0, 8192) == b'P' * 4096 + b'C' * 4096


def test_deleted_parent_is_kept_until_its_last_clone_goes(store):
    parent = store.create('p', MiB, key(1))
    parent.write(0, b'P' * 4096)
    parent.create_snapshot('s')
    clone = store.clone('c', 'p', 's', key(1))
    parent.delete_snapshot('s')
    store.collect(parent)
    store.delete('p', parent)
    assert store.names() == ['c']
    assert store.collect_deleted() == []
    clone = store.open('c', key(2))
    assert clone.read(0, 4096) == b'P' * 4096
    store.delete('c', clone)
    assert store.backend.list_namespaces() == []


@ON_EACH_BACKEND
def test_collector_removes_overwritten_and_fenced_containers(store):
    vol = store.create('v', MiB, key(1))
    for _ in range(3):
        vol.write(0, os.urandom(4096))
        vol.flush()
    stale = vol
    vol = store.open('v', key(2))
    stale.write(8192, b's' * 4096)
    with pytest.raises(base.Fenced):
        stale.flush()
    expected = vol.read(0, 12288)
    assert len(store.backend.list('v', records.CONTAINER_PREFIX)) == 3
    assert store.collect(vol) >= 2
    assert len(store.backend.list('v', records.CONTAINER_PREFIX)) == 1
    assert store.open('v', key(3)).read(0, 12288) == expected


def test_snapshot_revert_and_extend(store):
    vol = store.create('v', MiB, key(1))
    vol.write(0, b'1' * 4096)
    vol.create_snapshot('one')
    vol.extend(2 * MiB)
    vol.write(MiB, b'2' * 4096)
    vol.write(0, b'3' * 4096)
    with pytest.raises(errors.InvalidRequest):
        vol.extend(MiB)
    with pytest.raises(errors.SnapshotExists):
        vol.create_snapshot('one')
    vol.revert('one')
    assert vol.size == MiB
    assert vol.read(0, 4096) == b'1' * 4096
    vol = store.open('v', key(2))
    assert (vol.size, vol.read(0, 4096)) == (MiB, b'1' * 4096)
    with pytest.raises(errors.SnapshotNotFound):
        vol.revert('nope')


# Writes go on while a commit uploads: what a checkpoint or the collector
# takes for the committed state must be the state as of the seal.

@pytest.fixture
def faulty_store(tmp_path):
    return store_mod.VolumeStore(FaultyBackend(tmp_path / 'backend'))


def run_while_uploads_are_held(backend, commit, meanwhile):
    """Run ``commit`` in a thread, hold its uploads, run ``meanwhile``."""
    backend.uploads_may_go.clear()
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(result=commit()))
    thread.start()
    assert backend.upload_waiting.wait(10)
    meanwhile()
    backend.uploads_may_go.set()
    thread.join(10)
    return outcome.get('result')


def test_a_checkpoint_holds_no_write_made_during_its_commit(faulty_store):
    store = store_mod.VolumeStore(faulty_store.backend,
                                  volume_mod.Tuning(checkpoint_every_records=1))
    vol = store.create('v', 8 * MiB, key(1))
    vol.write(0, b'a' * 4096)

    run_while_uploads_are_held(store.backend, vol.flush,
                               lambda: vol.write(4096, b'b' * 4096))

    # The owner dies before flushing again: the next one sees the first
    # write, and the second (never committed) reads as zeroes, not an error.
    again = store.open('v', key(2))
    assert again.read(0, 8192) == b'a' * 4096 + bytes(4096)


def test_the_collector_keeps_what_the_committed_state_refers_to(faulty_store):
    vol = faulty_store.create('v', 8 * MiB, key(1))
    vol.write(0, b'a' * 4096)
    vol.flush()
    vol.write(4096, b'b' * 4096)     # something for the collector's commit

    run_while_uploads_are_held(faulty_store.backend, lambda: faulty_store.collect(vol),
                               lambda: vol.write(0, b'c' * 4096))

    again = faulty_store.open('v', key(2))
    assert again.read(0, 8192) == b'a' * 4096 + b'b' * 4096


def test_a_revert_whose_record_fails_while_writes_go_on_keeps_the_volume_readable(
        faulty_store):
    backend = faulty_store.backend
    vol = faulty_store.create('v', MiB, key(1))
    vol.write(0, b'A' * 4096)
    vol.create_snapshot('s')
    vol.write(0, b'B' * 4096)
    failed = []

    def revert():
        try:
            vol.revert('s')
        except base.BackendError as exc:
            failed.append(exc)

    def write_then_fail_the_revert_record():
        vol.write(4096, b'C' * 4096)  # between the revert's two commits
        backend.commits_before_failure = 1
    run_while_uploads_are_held(backend, revert, write_then_fail_the_revert_record)

    assert failed, 'the revert should have failed'
    assert vol.read(0, 8192) == b'B' * 4096 + b'C' * 4096
    vol.flush()
    assert faulty_store.open('v', key(2)).read(0, 8192) == b'B' * 4096 + b'C' * 4096


# Snapshots and the clones that read them

@ON_EACH_BACKEND
def test_a_snapshot_made_again_under_its_name_leaves_the_clone_of_the_old_one_alone(store):
    parent = store.create('p', MiB, key(1))
    parent.write(0, b'A' * 4096)
    parent.create_snapshot('s')
    clone = store.clone('c', 'p', 's', key(1))
    parent.write(0, b'B' * 4096)
    parent.delete_snapshot('s')
    store.collect(parent)
    parent.create_snapshot('s')
    store.collect(parent)
    assert clone.read(0, 4096) == b'A' * 4096
    assert store.open('c', key(2)).read(0, 4096) == b'A' * 4096
    assert store.clone('d', 'p', 's', key(1)).read(0, 4096) == b'B' * 4096


def test_a_clone_needs_a_committed_snapshot(faulty_store):
    parent = faulty_store.create('p', MiB, key(1))
    parent.write(0, b'A' * 4096)
    parent.create_snapshot('deleted')
    parent.delete_snapshot('deleted')          # its object is not collected yet
    faulty_store.backend.commits_before_failure = 0
    with pytest.raises(base.BackendError):
        parent.create_snapshot('failed')       # its object was written
    for snapshot in ('deleted', 'failed'):
        with pytest.raises(errors.SnapshotNotFound):
            faulty_store.clone('c', 'p', snapshot, key(1))
    assert faulty_store.names() == ['p']


def test_the_collector_and_a_clone_being_created_do_not_cross(tmp_path):
    owner = store_mod.VolumeStore(local.LocalBackend(tmp_path / 'backend'))
    cloner = store_mod.VolumeStore(FaultyBackend(tmp_path / 'backend'))
    parent = owner.create('p', MiB, key(1))
    parent.write(0, b'A' * 4096)
    parent.create_snapshot('s')
    outcome = {}

    def clone():
        try:
            outcome['clone'] = cloner.clone('c', 'p', 's', key(1))
        except errors.SnapshotNotFound as exc:
            outcome['refused'] = exc

    def snapshot_deleted_and_collected():
        parent.delete_snapshot('s')
        owner.collect(parent)
    # The clone's metadata upload waits while the snapshot goes.
    run_while_uploads_are_held(cloner.backend, clone, snapshot_deleted_and_collected)

    assert 'refused' in outcome
    assert owner.names() == ['p']


def test_snapshots_and_clones_made_before_map_objects_were_named_per_snapshot_still_read(
        store):
    parent = store.create('p', MiB, key(1))
    parent.write(0, b'A' * 4096)
    # What older code wrote: the map at snap/<name>, a record without it,
    # and a clone whose metadata names the snapshot only.
    parent._commit([[records.OP_SNAPSHOT, 's', 0.0, MiB]], before_record=lambda frozen, added:
                   store.backend.put('p', records.SNAPSHOT_PREFIX + 's', records.encode_map_state(
                       MiB, frozen, dict(added)), parent.key))
    volume_mod.Volume.create(store.backend, 'c', MiB, key(1),
                             parent={'namespace': 'p', 'snapshot': 's'})
    parent.write(0, b'B' * 4096)
    parent = store.open('p', key(2))
    parent.delete_snapshot('s')
    store.collect(parent)
    assert store.open('c', key(2)).read(0, 4096) == b'A' * 4096
    store.delete('c', store.open('c', key(3)))
    store.collect(parent)
    assert store.backend.list('p', records.SNAPSHOT_PREFIX) == []


def test_a_read_that_need_not_wait_gives_what_the_page_cache_holds_and_nothing_else(
        tmp_path):
    """Without ``wait`` a read of flushed data on the local backend comes
    from the page cache (the same bytes as a waiting read); once the pages
    are evicted it returns None instead of waiting for the disk."""
    backend = local.LocalBackend(tmp_path / 'store')
    vol = volume_mod.Volume.create(backend, 'v', 1 << 20, key(1))
    data = os.urandom(64 << 10)
    vol.write(0, data)
    vol.flush()
    assert vol.read(4096, 8192) == data[4096:12288]    # opens the container

    assert vol.read(4096, 8192, wait=False) == data[4096:12288]
    assert vol.read(100, 5000, wait=False) == data[100:5100]
    assert vol.read(512 << 10, 4096, wait=False) == bytes(4096)   # never written

    page_cache.evict(tmp_path / 'store' / 'v')
    assert vol.read(4096, 8192, wait=False) is None
    assert vol.read(4096, 8192) == data[4096:12288]


class _BackendWithAHookOnTheContainerListing(local.LocalBackend):
    """Runs ``on_container_listing`` once, when the collector lists the
    containers: after its checkpoint, before it removes stale snapshot
    objects."""

    on_container_listing = None

    def list(self, namespace, prefix=''):
        if self.on_container_listing and prefix == records.CONTAINER_PREFIX:
            hook, self.on_container_listing = self.on_container_listing, None
            hook()
        return super().list(namespace, prefix)


def test_a_snapshot_reverted_to_and_deleted_during_a_collection_leaves_the_volume_openable(
        tmp_path):
    store = store_mod.VolumeStore(_BackendWithAHookOnTheContainerListing(tmp_path / 'b'))
    vol = store.create('v', MiB, key(1))
    vol.write(0, b'Y' * 4096)
    vol.create_snapshot('y')
    vol.write(0, b'Z' * 4096)

    def revert_to_y_then_delete_it():
        vol.revert('y')
        vol.delete_snapshot('y')
    store.backend.on_container_listing = revert_to_y_then_delete_it
    store.collect(vol)

    # The REVERT record is in the log after the collector's checkpoint: a
    # new owner replays it and needs y's map object.
    again = store.open('v', key(2))
    assert again.read(0, 4096) == b'Y' * 4096
    assert 'y' not in again.snapshots

    store.collect(again)    # its checkpoint covers the REVERT: y's object goes
    assert store.backend.list('v', records.SNAPSHOT_PREFIXES[0]) == []
    assert store.open('v', key(3)).read(0, 4096) == b'Y' * 4096


@ON_EACH_BACKEND
def test_bytes_a_read_returned_do_not_change_when_the_blocks_are_written_again(store):
    """A read of whole blocks hands out what it fetched without a copy: it
    must be the caller's own, whether the blocks were unflushed (written
    again in place, in the open container), flushed, or zeroes."""
    volume = store.create('v', MiB, key(1))
    volume.write(0, b'a' * 8192)
    unflushed = volume.read(0, 4096)
    volume.write(0, b'b' * 4096)
    volume.flush()
    flushed = volume.read(0, 8192)
    never_written = volume.read(65536, 4096)
    volume.write(0, b'c' * 8192)
    volume.write(65536, b'd' * 4096)
    volume.flush()
    assert bytes(unflushed) == b'a' * 4096
    assert bytes(flushed) == b'b' * 4096 + b'a' * 4096
    assert bytes(never_written) == bytes(4096)
