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

"""The volumes of one backend: create, clone, open, delete, and collect.

A volume is the namespace of the same name. Deleting a volume that clones
still read through marks it deleted; the collector removes it once its last
dependent is gone. The collector also removes what no map refers to any
more: containers overwritten or written by a fenced owner, deleted
snapshots, superseded checkpoints. Before it, compaction (compaction.py)
copies the live blocks of sparsely used containers into new ones, so that
the old ones become unreferenced too.
"""

import collections
import threading

from oslo_log import log as logging

from ovs_daemon.backends import base as backends
from ovs_daemon.engine import compaction
from ovs_daemon.engine import errors
from ovs_daemon.engine import records
from ovs_daemon.engine import volume as volume_mod

LOG = logging.getLogger(__name__)


class VolumeStore:

    def __init__(self, backend, tuning=None, cache=None):
        self.backend = backend
        self.tuning = tuning
        self.cache = cache
        self._rounds = collections.defaultdict(threading.Lock)

    def create(self, name, size, key):
        return volume_mod.Volume.create(self.backend, name, size, key,
                                        tuning=self.tuning, cache=self.cache)

    def clone(self, name, parent, snapshot, key, size=None):
        """A copy-on-write clone of ``parent`` at ``snapshot``; ``size``
        may be larger than the snapshot.

        Only of a committed snapshot of a volume that is not deleted; and
        checked again once the clone's metadata is written (the collector
        and a delete look for clones after they remove a snapshot or mark
        a volume deleted): a clone that lost that race is removed again."""
        info = self.committed_snapshot(parent, snapshot)
        map_object = records.snapshot_object(snapshot, info)
        if size is None:
            size = info['size']
        volume = volume_mod.Volume.create(
            self.backend, name, size, key,
            parent={'namespace': parent, 'snapshot': snapshot, 'object': map_object},
            tuning=self.tuning, cache=self.cache)
        try:
            again = records.snapshot_object(snapshot, self.committed_snapshot(parent, snapshot))
            if again != map_object:
                raise errors.SnapshotNotFound('snapshot %s of volume %s was made again '
                                              'while it was cloned' % (snapshot, parent))
        except (errors.VolumeNotFound, errors.SnapshotNotFound):
            volume.halt('its parent snapshot went while it was cloned')
            self.backend.delete_namespace(name)
            raise
        return volume

    def committed_snapshot(self, name, snapshot):
        """The committed record ``{'created', 'size', 'object'?}`` of
        ``snapshot`` of volume ``name``, read from the backend (no owner
        needed). SnapshotNotFound for one deleted, or whose commit failed;
        VolumeNotFound if the volume is gone or deleted."""
        if not self.exists(name):
            raise errors.VolumeNotFound('volume %s does not exist' % name)
        info = self._committed_snapshots(name).get(snapshot)
        if info is None:
            raise errors.SnapshotNotFound('snapshot %s of volume %s does not exist'
                                          % (snapshot, name))
        return info

    def _committed_snapshots(self, name):
        """The snapshots of the last checkpoint, updated by the log after
        it. An owner trims the log only after writing a newer checkpoint:
        read again if one appeared meanwhile."""
        while True:
            checkpoints = self.backend.list(name, records.CHECKPOINT_PREFIX)
            snapshots, after = {}, 0
            if checkpoints:
                try:
                    state = records.decode_map_state(
                        self.backend.get(name, checkpoints[-1]), with_map=False)
                except backends.NotFound:
                    continue  # replaced by a newer one meanwhile
                snapshots = dict(state.get('snapshots', {}))
                after = records.checkpoint_slot(checkpoints[-1])
            for _, raw in self.backend.read_log(name, after=after):
                if raw is not None:
                    _, ops = records.decode_commit(raw)
                    _apply_snapshot_ops(snapshots, ops)
            if self.backend.list(name, records.CHECKPOINT_PREFIX)[-1:] == checkpoints[-1:]:
                return snapshots

    def open(self, name, key):
        if not self.exists(name):
            raise errors.VolumeNotFound('volume %s does not exist' % name)
        return volume_mod.Volume.open(self.backend, name, key,
                                      tuning=self.tuning, cache=self.cache)

    def exists(self, name):
        return self.backend.namespace_exists(name) and \
            not self._is_deleted(name)

    def _is_deleted(self, name):
        return bool(self.backend.list(name, records.DELETED_MARK))

    def names(self):
        return [n for n in self.backend.list_namespaces()
                if not self._is_deleted(n)]

    def meta(self, name):
        try:
            return records.unpack(self.backend.get(name, records.META))
        except backends.NotFound:
            raise errors.VolumeNotFound('volume %s has no metadata' % name)

    def snapshot_size(self, name, snapshot):
        return self.committed_snapshot(name, snapshot)['size']

    def dependents(self, name):
        """``{clone: snapshot map object}`` for the clones that read
        through ``name``."""
        found = {}
        for other in self.backend.list_namespaces():
            try:
                parent = self.meta(other).get('parent')
            except errors.VolumeNotFound:
                continue
            if parent and parent['namespace'] == name:
                found[other] = records.snapshot_object(parent['snapshot'], parent)
        return found

    def _clones_need(self, volume):
        """The map objects of deleted snapshots of the open ``volume`` that
        clones read. Only a deleted snapshot's map object still in the
        backend can be one, so a volume without such an object is answered
        without reading every other volume's metadata."""
        if not volume.stale_snapshot_objects():
            return set()
        return set(self.dependents(volume.namespace).values())

    def delete(self, name, volume):
        """Delete the volume; ``volume`` is its open copy (the caller owns
        it), which is halted. Space is freed now, or once no clone needs
        it."""
        volume.halt('deleted')
        # A checkpoint under way would write into the namespace being removed.
        volume.wait_for_checkpoint()
        self._delete(name, volume.key)

    def delete_unopened(self, name, key, parent=None):
        """Delete a volume nobody serves, whatever state a crash left it in
        (no metadata, marked deleted, its namespace already gone): ``key``,
        of an epoch above every earlier owner's, claims it first, which
        fences them all. ``parent`` is the volume's parent snapshot as the
        registry knows it (``{'volume', 'snapshot'}``), for when the
        namespace went but its deleted parent did not. Idempotent."""
        if self.backend.namespace_exists(name):
            self.backend.claim(name, key)
            self._delete(name, key)
        elif parent:
            self._remove_if_unneeded(parent['volume'])

    def _delete(self, name, key):
        # Marked before the dependents are looked at: a clone being created
        # writes its metadata before it checks that its parent is not
        # deleted, so one of the two sees the other.
        self.backend.put(name, records.DELETED_MARK, b'', key)
        if self.dependents(name):
            LOG.info('volume %s deleted; kept for its clones', name)
            return
        self._remove(name)

    def _remove(self, name):
        try:
            parent = self.meta(name).get('parent')
        except errors.VolumeNotFound:
            parent = None  # a create that died before its metadata
        self.backend.delete_namespace(name)
        LOG.info('volume %s removed from the backend', name)
        if parent:
            self._remove_if_unneeded(parent['namespace'])

    def _remove_if_unneeded(self, name):
        """Remove ``name`` if it is deleted and no clone needs it now."""
        if self.backend.namespace_exists(name) and self._is_deleted(name) \
                and not self.dependents(name):
            self._remove(name)

    def collect(self, volume):
        """Remove the objects of an open volume that nothing refers to.

        Returns the number of objects removed. Runs beside IO: it reads the
        state under the volume's locks and deletes with the volume's key,
        so a collector of a fenced copy removes nothing.
        """
        # A snapshot made after the checkpoint refers to containers the
        # checkpoint's map refers to, or to newer ones: none is removed.
        referenced, committed, snapshots = volume.checkpoint()
        referenced |= self._snapshot_containers(
            volume.namespace, snapshots | self._clones_need(volume))
        removed = 0
        for name in self.backend.list(volume.namespace,
                                      records.CONTAINER_PREFIX):
            number, epoch = records.parse_container_name(name)
            current = committed.get(number)
            if number in referenced and current and current[0] == epoch:
                continue
            if epoch == volume.key.epoch and number not in committed:
                continue  # being written, or committed since the checkpoint
            self.backend.delete(volume.namespace, name, volume.key)
            removed += 1
        removed += volume.remove_stale_snapshot_objects(
            lambda: self.dependents(volume.namespace).values())
        volume.forget_containers(set(committed) - referenced)
        return removed

    def _snapshot_containers(self, namespace, map_objects):
        """The containers the snapshot maps ``map_objects`` refer to."""
        referenced = set()
        for map_object in map_objects:
            try:
                raw = self.backend.get(namespace, map_object)
            except backends.NotFound:
                continue  # deleted meanwhile
            referenced |= records.decode_map_state(raw)['map'].containers()
        return referenced

    def compact_and_collect(self, volume, policy):
        """One round: compaction, then the collector. Returns what it did
        and the space before and after. Rounds of one volume run one at a
        time."""
        with self._rounds[volume.namespace]:
            before = volume.stats()['stored_bytes']
            snapshots = volume.snapshot_objects() | self._clones_need(volume)
            keep = self._snapshot_containers(volume.namespace, snapshots)
            outcome = compaction.compact(volume, keep, policy)
            removed = self.collect(volume)
            after = volume.stats()
        return {'containers_rewritten': outcome.containers_rewritten,
                'bytes_copied': outcome.bytes_written,
                'objects_removed': removed,
                'stored_bytes_before': before,
                'stored_bytes': after['stored_bytes'],
                'live_bytes': after['live_bytes'],
                'freed_bytes': max(0, before - after['stored_bytes'])}

    def collect_deleted(self):
        """Remove deleted volumes that no clone needs any more: a parent
        whose last clone went, also when that delete was interrupted."""
        removed = []
        for name in self.backend.list_namespaces():
            try:
                if self._is_deleted(name) and not self.dependents(name):
                    self._remove(name)
                    removed.append(name)
            except (backends.NotFound, errors.VolumeNotFound):
                continue  # removed meanwhile by another router
        return removed


def _apply_snapshot_ops(snapshots, ops):
    for op in ops:
        if op[0] == records.OP_SNAPSHOT:
            name, info = records.snapshot_of(op)
            snapshots[name] = info
        elif op[0] == records.OP_DELETE_SNAPSHOT:
            snapshots.pop(op[1], None)
