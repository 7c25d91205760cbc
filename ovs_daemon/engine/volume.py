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

"""One volume: a thin, log-structured block device over a fenced backend.

Writes go to the open container, an in-memory buffer of 4 KiB blocks, and
the block map points at them at once. A full container is sealed and put
into the backend at once, in the background (write_behind.py); ``flush``
seals the open one, uploads it, waits for the sealed ones still being
written, then commits one log record with the map operations since the
previous flush; only then is anything durable. A checkpoint (the whole map)
is written every so many records, so opening a volume reads the last
checkpoint and the log after it: its cost follows the log, not the size.
A due checkpoint is taken at a commit (the map, containers and log slot as
of its record) and uploaded by a thread of its own, so no FLUSH waits for
the upload; the log is then trimmed only up to the checkpoint's slot.

Snapshots, clones, revert and extend are log records too. A snapshot writes
its map as an object of its own, so clones read their parent's snapshot
without the parent's log, and a revert needs no replay.

The engine is synchronous and thread-safe: ``_lock`` guards the in-memory
state and is never held across backend uploads; ``_flush_lock`` puts commits
in order; ``_checkpoint_lock`` is held by the one checkpoint under way, from
its capture to the end of its upload, and is never waited for with
``_flush_lock`` held. A :class:`Fenced` error from the backend halts this
copy for good.
"""

import dataclasses
import threading
import time

from oslo_log import log as logging

from ovs_daemon.backends import base as backends
from ovs_daemon.engine import blockmap
from ovs_daemon.engine import errors
from ovs_daemon.engine import read_cache
from ovs_daemon.engine import records
from ovs_daemon.engine import write_behind
from ovs_daemon.engine.blockmap import UNMAPPED
from ovs_daemon.engine.blockmap import ZERO

LOG = logging.getLogger(__name__)

BLOCK_SIZE = 4096
# What one uncommitted map operation costs in memory (a list of 4 ints).
OP_BYTES = 128
MAX_SIZE = 1 << 50  # 1 PiB: locations and pages stay well inside 64 bits
_READ_ATTEMPTS = 3
_SEQUENTIAL_WINDOW = 4 << 20
_SEQUENTIAL_READS = 2


@dataclasses.dataclass
class Tuning:
    container_bytes: int = 8 << 20
    checkpoint_every_records: int = 256
    checkpoint_every_bytes: int = 64 << 20


@dataclasses.dataclass
class _Ancestor:
    """A read-only snapshot a clone reads through to."""
    namespace: str
    map: blockmap.BlockMap
    containers: dict
    blocks: int


@dataclasses.dataclass
class _Checkpoint:
    """The committed state as of log slot ``slot``, taken at a commit and
    written after it."""
    slot: int
    size: int
    map: blockmap.BlockMap
    containers: dict
    snapshots: dict


def _map_objects(snapshots):
    """The map objects of ``snapshots`` (``{name: info}``)."""
    return {records.snapshot_object(name, info) for name, info in snapshots.items()}


def _blocks(nbytes):
    return -(-nbytes // BLOCK_SIZE)


class Volume:
    """Use :meth:`create` or :meth:`open`, not the constructor."""

    def __init__(self, backend, namespace, key, tuning=None, cache=None):
        self.backend = backend
        self.cache = cache
        self._incarnations = {}       # namespace -> its creation time
        self._read_end = None
        self._near_reads = 0          # reads in a row near the one before
        self._prefetched_end = None   # where the prefetch asked for stops
        self.namespace = namespace
        self.key = key
        self.tuning = tuning or Tuning()
        self.size = 0
        self.map = blockmap.BlockMap()
        self.snapshots = {}
        self.parent = None
        self._ancestors = []
        self._containers = {}         # committed: number -> [epoch, blocks]
        self._buffers = {}            # uncommitted: number -> bytearray
        self._open_container = None
        self._next_container = 1
        self._ops = []
        self._next_slot = 1
        self._checkpoint_slot = 0
        # Snapshot map object -> slot of the last REVERT record naming it:
        # replaying that record reads the object, so it stays until a
        # checkpoint covers the slot.
        self._reverted_from = {}
        self._records_since_checkpoint = 0
        self._bytes_since_checkpoint = 0
        self._checkpoint_failed = False
        self._halted = None
        self._lock = threading.RLock()
        self._flush_lock = threading.Lock()
        self._write_behind = write_behind.WriteBehind(self._put_container, namespace)
        self._checkpoint_lock = threading.Lock()

    def __repr__(self):
        return 'Volume(%s, epoch %d)' % (self.namespace, self.key.epoch)

    # Creating and opening

    @classmethod
    def create(cls, backend, namespace, size, key, parent=None, tuning=None, cache=None):
        """Create a volume, or a clone when ``parent`` is
        ``{'namespace': ..., 'snapshot': ...}``."""
        _check_size(size)
        if backend.namespace_exists(namespace):
            raise errors.VolumeExists('volume %s exists' % namespace)
        volume = cls(backend, namespace, key, tuning, cache)
        ancestors = volume._load_ancestors(parent) if parent else []
        if ancestors and size < ancestors[0].blocks * BLOCK_SIZE:
            raise errors.InvalidRequest(
                'a clone cannot be smaller than its snapshot (%d bytes)'
                % (ancestors[0].blocks * BLOCK_SIZE))
        backend.create_namespace(namespace)
        slot = backend.claim(namespace, key)
        created = time.time()
        backend.put(namespace, records.META, records.pack(
            {'size': size, 'parent': parent, 'created': created}), key)
        volume._incarnations[namespace] = created
        volume.size, volume.parent, volume._ancestors = size, parent, ancestors
        volume._next_slot = slot + 1
        return volume

    @classmethod
    def open(cls, backend, namespace, key, tuning=None, cache=None):
        """Take the volume over with ``key`` (a higher epoch than any
        before) and rebuild its last committed state."""
        if not backend.namespace_exists(namespace):
            raise errors.VolumeNotFound('volume %s does not exist' % namespace)
        claim_slot = backend.claim(namespace, key)
        volume = cls(backend, namespace, key, tuning, cache)
        volume._restore(claim_slot)
        return volume

    def _load_ancestors(self, parent):
        chain = []
        while parent:
            ns, snap = parent['namespace'], parent['snapshot']
            try:
                state = records.decode_map_state(self.backend.get(
                    ns, records.snapshot_object(snap, parent)))
                meta = records.unpack(self.backend.get(ns, records.META))
            except backends.NotFound:
                raise errors.SnapshotNotFound('snapshot %s of volume %s does '
                                              'not exist' % (snap, ns))
            chain.append(_Ancestor(ns, state['map'], state['containers'],
                                   _blocks(state['size'])))
            self._incarnations[ns] = meta.get('created')
            parent = meta['parent']
        return chain

    def _restore(self, claim_slot):
        meta = records.unpack(self.backend.get(self.namespace, records.META))
        self.size, self.parent = meta['size'], meta['parent']
        self._incarnations[self.namespace] = meta.get('created')
        self._ancestors = self._load_ancestors(self.parent)
        checkpoints = self.backend.list(self.namespace,
                                        records.CHECKPOINT_PREFIX)
        if checkpoints:
            state = records.decode_map_state(
                self.backend.get(self.namespace, checkpoints[-1]))
            self.size, self.map = state['size'], state['map']
            self._containers = state['containers']
            self.snapshots = state['snapshots']
            self._checkpoint_slot = records.checkpoint_slot(checkpoints[-1])
        replayed = 0
        for slot, raw in self.backend.read_log(self.namespace,
                                               after=self._checkpoint_slot):
            if slot >= claim_slot:
                break
            if raw is not None:
                self._replay(slot, raw)
                replayed += 1
        self._records_since_checkpoint = replayed
        self._next_slot = claim_slot + 1
        self._next_container = max(self._containers, default=0) + 1
        LOG.info('volume %s opened at epoch %d: checkpoint slot %d, %d log '
                 'records replayed', self.namespace, self.key.epoch,
                 self._checkpoint_slot, replayed)

    def _replay(self, slot, raw):
        containers, ops = records.decode_commit(raw)
        self._containers.update(containers)
        for op in ops:
            self._apply(op, slot)

    def _apply(self, op, slot):
        code = op[0]
        if code == records.OP_WRITE:
            self.map.set_run(op[1], op[2], op[3])
        elif code == records.OP_FILL:
            self.map.fill(op[1], op[2], op[3])
        elif code == records.OP_RESIZE:
            self.size = op[1]
        elif code == records.OP_SNAPSHOT:
            name, info = records.snapshot_of(op)
            self.snapshots[name] = info
        elif code == records.OP_DELETE_SNAPSHOT:
            self.snapshots.pop(op[1], None)
        elif code == records.OP_MOVE:
            self._move(op[1], op[2], op[3], op[4])
        elif code == records.OP_REVERT:
            self._reverted_from[records.snapshot_object(
                op[1], self.snapshots.get(op[1]))] = slot
            state = self._read_snapshot(op[1])
            self.map, self.size = state['map'], state['size']
        else:
            raise errors.VolumeError('%s: unknown log operation %r'
                                     % (self.namespace, code))

    def _move(self, block, count, old, new):
        # Only where the block still holds what the compactor copied: a
        # write since then is newer than the copy.
        for i in range(count):
            if self.map.get(block + i) == old + i:
                self.map.set(block + i, new + i)

    # Checks

    def _check_live(self):
        if self._halted:
            raise errors.Halted('volume %s is halted: %s'
                                % (self.namespace, self._halted))

    def _check_range(self, offset, length):
        if not isinstance(offset, int) or not isinstance(length, int) \
                or offset < 0 or length < 0:
            raise errors.InvalidRequest('offset and length must be '
                                        'non-negative integers')
        if offset + length > self.size:
            raise errors.OutOfRange(
                'request of %d bytes at offset %d is beyond the end of volume '
                '%s (%d bytes)' % (length, offset, self.namespace, self.size))

    @property
    def halted(self):
        return self._halted

    def halt(self, reason):
        """Stop serving for good; unflushed writes are dropped."""
        with self._lock:
            if not self._halted:
                LOG.warning('volume %s halted at epoch %d: %s',
                            self.namespace, self.key.epoch, reason)
                self._halted = reason
                self._write_behind.drop(self._buffers)
                self._buffers.clear()
                self._ops = []

    # Reads

    def read(self, offset, length, wait=True):
        """The bytes at ``offset``. Without ``wait``, None instead of waiting
        for the backend: such a read returns what memory holds and what the
        backend or the read cache has at hand (``get_at_once``, a file's
        pages in the page cache, what the read cache prefetched), so an
        event loop may make it; the caller then reads again where waiting
        does no harm. Maybe a memoryview rather than bytes."""
        first = offset // BLOCK_SIZE
        fetch = self._fetch if wait else self._fetch_at_once
        for attempt in range(_READ_ATTEMPTS):
            with self._lock:
                self._check_live()
                self._check_range(offset, length)
                plan = self._plan_read(first, _blocks(offset + length) - first)
            # Reads queued several deep complete out of order: near the
            # last one's end counts. Sequential takes two such reads in a
            # row: one random read in many lands near the last by chance,
            # and planning a readahead costs more than a cached read.
            near = self._read_end is not None and \
                abs(offset - self._read_end) <= _SEQUENTIAL_WINDOW
            sequential = near and self._near_reads + 1 >= _SEQUENTIAL_READS
            if self.cache is not None:
                self._prefetch(offset + length, sequential)
            try:
                if len(plan) == 1:
                    # One piece, as it is: maybe a view of what the read
                    # cache prefetched, sent without a copy.
                    data = fetch(plan[0])
                    if data is None:
                        return None
                else:
                    pieces = [fetch(piece) for piece in plan]
                    if not wait and None in pieces:
                        return None
                    data = b''.join(pieces)
                self._read_end = offset + length
                self._near_reads = self._near_reads + 1 if near else 0
                break
            except backends.NotFound:
                # Between the plan and the fetch the compactor moved the
                # blocks and the collector removed their old container:
                # the map points at the copies now.
                if attempt + 1 == _READ_ATTEMPTS:
                    raise
        skip = offset - first * BLOCK_SIZE
        if not skip and len(data) == length:
            return data     # whole blocks: no copy
        return data[skip:skip + length]

    def _locate(self, block):
        loc = self.map.get(block)
        if loc != UNMAPPED:
            return self.namespace, self._containers, loc
        for ancestor in self._ancestors:
            if block >= ancestor.blocks:
                break
            loc = ancestor.map.get(block)
            if loc != UNMAPPED:
                return ancestor.namespace, ancestor.containers, loc
        return None, None, ZERO

    def _plan_read(self, first, count):
        """Runs of blocks to fetch: ``(bytes,)`` from memory,
        ``(zero_blocks,)`` or ``(namespace, object, index, blocks)``."""
        plan = []
        # The last run of a data object and its container: a block that
        # continues it costs no lookup and no name (sequential reads and
        # the prefetch plan thousands of blocks of a few containers).
        run = run_namespace = run_number = None
        block, end = first, first + count
        while block < end:
            loc = self.map.get(block)
            own = loc != UNMAPPED
            if own:
                namespace, containers = self.namespace, self._containers
            else:
                namespace, containers, loc = self._locate(block)
            block += 1
            if loc == ZERO:
                if plan and isinstance(plan[-1], int):
                    plan[-1] += 1
                else:
                    plan.append(1)
                continue
            number = blockmap.container_of(loc)
            index = blockmap.index_of(loc)
            if run is not None and plan[-1] is run and run_number == number \
                    and run_namespace == namespace and run[2] + run[3] == index:
                run[3] += 1
                continue
            buffer = self._buffers.get(number) \
                if namespace == self.namespace else None
            if buffer is not None:
                plan.append(bytes(buffer[index * BLOCK_SIZE:
                                         (index + 1) * BLOCK_SIZE]))
                continue
            epoch, blocks = containers[number]
            run = [namespace, records.container_name(number, epoch), index, 1, blocks]
            run_namespace, run_number = namespace, number
            plan.append(run)
            if own and block < end:
                # The blocks after it in this volume's map that continue
                # it: a page at a time.
                more = self.map.consecutive(block, loc + 1,
                                            min(end - block, blocks - index - 1))
                run[3] += more
                block += more
        return plan

    def _fetch(self, piece):
        if isinstance(piece, int):
            return bytes(piece * BLOCK_SIZE)
        if isinstance(piece, bytes):
            return piece
        namespace, name, index, count, blocks = piece
        if self.cache is None:
            return self.backend.get(namespace, name, index * BLOCK_SIZE, count * BLOCK_SIZE)
        obj, size, fetch = self._cached_object(namespace, name, blocks)
        return self.cache.read(obj, size, index * BLOCK_SIZE, count * BLOCK_SIZE, fetch)

    def _fetch_at_once(self, piece):
        """A piece's bytes if they are at hand, else None."""
        if not isinstance(piece, list):
            return self._fetch(piece)
        namespace, name, index, count, blocks = piece
        if self.cache is None:
            return self.backend.get_at_once(namespace, name, index * BLOCK_SIZE,
                                            count * BLOCK_SIZE)
        obj, size, _ = self._cached_object(namespace, name, blocks)
        return self.cache.read_at_once(obj, size, index * BLOCK_SIZE, count * BLOCK_SIZE)

    def _cached_object(self, namespace, name, blocks):
        """The read cache's key of a data object, its size, and how to
        fetch a range of it."""
        obj = ('%s\0%r\0%s' % (namespace, self._incarnations.get(namespace), name)).encode()
        return obj, blocks * BLOCK_SIZE, lambda offset, length: self.backend.get_with_crc32s(
            namespace, name, offset, length, self.cache.chunk)

    def _prefetch(self, end, sequential):
        """Ask the read cache for the data after a sequential reader's
        ``end``, up to its readahead ahead, in requests of at least one
        ``PREFETCH_REQUEST_BYTES`` (or up to the end of the volume)."""
        if not sequential:
            self._prefetched_end = None
            return
        start = max(end, self._prefetched_end or 0)
        stop = min(self.size, end + self.cache.readahead)
        if stop - start < min(read_cache.PREFETCH_REQUEST_BYTES, self.cache.readahead) \
                and stop < self.size or start >= stop:
            return
        first = start // BLOCK_SIZE
        with self._lock:
            if self._halted:
                return
            plan = self._plan_read(first, _blocks(stop) - first)
            self._to_object_end(plan, first, _blocks(stop))
        block = first
        for piece in plan:
            if isinstance(piece, list):
                namespace, name, index, count, blocks = piece
                obj, size, fetch = self._cached_object(namespace, name, blocks)
                if not self.cache.prefetch(obj, size, index * BLOCK_SIZE,
                                           count * BLOCK_SIZE, fetch):
                    break   # enough under way: the next read asks again
                block += count
            else:
                block += piece if isinstance(piece, int) else 1
        self._prefetched_end = block * BLOCK_SIZE

    def _to_object_end(self, plan, first, end):
        """Under ``_lock``: the last run of the plan of blocks ``first`` to
        ``end``, if it stops inside its data object, goes on to the
        object's end as far as the volume's next blocks continue it (and
        at most as far again as the plan goes). The next prefetch then
        starts where an object starts: one GET for each object, not one
        for each part of it on either side of the window's end."""
        last = plan[-1] if plan else None
        if not isinstance(last, list) or last[0] != self.namespace:
            return
        _, _, index, count, blocks = last
        rest = blocks - index - count
        if rest > end - first:
            return
        rest = min(rest, _blocks(self.size) - end)
        loc = self.map.get(end - 1)
        if rest > 0 and loc != UNMAPPED:
            last[3] += self.map.consecutive(end, loc + 1, rest)

    # Writes

    def write(self, offset, data):
        """An unaligned write patches the blocks at its edges. Those that
        must be read from the backend are read without ``_lock`` held (a
        GET may take seconds; reads and writes of this volume go on), and
        the write is applied only if the edges are still where they were
        read from; otherwise they are read again."""
        length = len(data)
        first = offset // BLOCK_SIZE
        head = offset - first * BLOCK_SIZE
        count = _blocks(offset + length) - first
        fetched, moved = None, 0
        while True:
            with self._lock:
                self._check_live()
                self._check_range(offset, length)
                if not length:
                    return
                if head == 0 and length % BLOCK_SIZE == 0:
                    self._write_blocks(first, memoryview(data))
                    return
                plans = self._plan_edges(first, count)
                if fetched is not None and fetched[0] == plans \
                        or not any(map(_touches_backend, plans)):
                    edges = fetched[1] if fetched else self._fetch_edges(plans)
                    aligned = bytearray(_join_edges(edges, count))
                    aligned[head:head + length] = data
                    self._write_blocks(first, memoryview(aligned))
                    return
            try:
                fetched = plans, self._fetch_edges(plans)
            except backends.NotFound:
                # The compactor moved the edge blocks and the collector
                # removed their container meanwhile: plan them again.
                moved += 1
                if moved == _READ_ATTEMPTS:
                    raise
                fetched = None

    def _plan_edges(self, first, count):
        """Read plans of the blocks ``first`` and ``first + count - 1``:
        what an unaligned write patches."""
        if count == 1:
            return [self._plan_read(first, 1)]
        return [self._plan_read(first, 1), self._plan_read(first + count - 1, 1)]

    def _fetch_edges(self, plans):
        return [b''.join(map(self._fetch, plan)) for plan in plans]

    def _write_blocks(self, block, data):
        count = len(data) // BLOCK_SIZE
        done = 0
        while done < count:
            number, buffer = self._open_buffer()
            loc = self.map.get(block + done)
            if blockmap.container_of(loc) == number and loc > ZERO:
                index = blockmap.index_of(loc)
                buffer[index * BLOCK_SIZE:(index + 1) * BLOCK_SIZE] = \
                    data[done * BLOCK_SIZE:(done + 1) * BLOCK_SIZE]
                done += 1
                continue
            room = self.tuning.container_bytes // BLOCK_SIZE - \
                len(buffer) // BLOCK_SIZE
            run = min(count - done, room)
            index = len(buffer) // BLOCK_SIZE
            buffer += data[done * BLOCK_SIZE:(done + run) * BLOCK_SIZE]
            first_loc = blockmap.location(number, index)
            self.map.set_run(block + done, run, first_loc)
            self._record_write(block + done, run, first_loc)
            done += run

    def _open_buffer(self):
        """The open container, sealing a full one (and handing it to the
        write-behind) and opening the next."""
        number = self._open_container
        if number is not None:
            buffer = self._buffers[number]
            if len(buffer) < self.tuning.container_bytes:
                return number, buffer
            self._write_behind.submit(number, buffer)
        number = self._next_container
        self._next_container += 1
        self._open_container = number
        self._buffers[number] = bytearray()
        return number, self._buffers[number]

    def _record_write(self, block, count, first_loc):
        last = self._ops[-1] if self._ops else None
        if last and last[0] == records.OP_WRITE \
                and last[1] + last[2] == block and last[3] + last[2] == \
                first_loc:
            last[2] += count
        else:
            self._ops.append([records.OP_WRITE, block, count, first_loc])

    def trim(self, offset, length):
        """Discard a range; it reads as zeroes afterwards."""
        self.write_zeroes(offset, length)

    def write_zeroes(self, offset, length):
        with self._lock:
            self._check_live()
            self._check_range(offset, length)
        first = _blocks(offset)
        end = (offset + length) // BLOCK_SIZE
        # Partial blocks at the edges are writes of zeroes, each made
        # without the lock held while it reads the backend.
        if end <= first:
            self.write(offset, bytes(length))
            return
        if offset < first * BLOCK_SIZE:
            self.write(offset, bytes(first * BLOCK_SIZE - offset))
        if offset + length > end * BLOCK_SIZE:
            self.write(end * BLOCK_SIZE,
                       bytes(offset + length - end * BLOCK_SIZE))
        with self._lock:
            self._check_live()
            value = ZERO if self._ancestors else UNMAPPED
            self.map.fill(first, end - first, value)
            last = self._ops[-1] if self._ops else None
            if last and last[0] == records.OP_FILL and last[3] == value \
                    and last[1] + last[2] == first:
                last[2] += end - first
            else:
                self._ops.append([records.OP_FILL, first, end - first, value])

    @property
    def unflushed_bytes(self):
        """What the uncommitted state holds in memory: the open and sealed
        containers' data and the map operations no record holds yet (a
        TRIM or WRITE_ZEROES costs one, so a flood of them counts too)."""
        with self._lock:
            return self._unflushed_bytes()

    def _unflushed_bytes(self):
        held = len(self._ops) * OP_BYTES
        for buffer in self._buffers.values():
            held += len(buffer)
        return held

    # Commits

    def flush(self):
        """Return once every write so far is committed to the backend."""
        with self._flush_lock:
            self._commit()

    def _commit(self, extra_ops=(), before_record=None, checkpoint=False,
                uploaded=None):
        """Upload the sealed containers and commit one record. Called with
        ``_flush_lock`` held. ``before_record(map_copy)`` runs after the
        seal, before the record, with the map as of the seal. ``uploaded``:
        ``{number: [epoch, blocks]}`` of containers already in the backend
        that the record adds too.

        A checkpoint follows a commit of writes alone: forced by
        ``checkpoint`` (the caller holds ``_checkpoint_lock`` and writes
        it), or due, then written by a thread of its own unless another
        checkpoint is under way (a later commit takes it then). Its map is
        copied at the seal, because writes go on while containers upload
        and the live map soon holds writes no record covers. Returns the
        forced checkpoint, or None.
        """
        background = False
        with self._lock:
            self._check_live()
            if not self._ops and not extra_ops:
                # Nothing uncommitted: the live map is the committed state.
                frozen = self.map.copy() if checkpoint else None
                containers = None
            else:
                self._open_container = None
                containers = dict(self._buffers)
                ops, self._ops = self._ops, []
                checkpoint = checkpoint and not extra_ops
                background = not extra_ops and not checkpoint and self._checkpoint_due() \
                    and self._checkpoint_lock.acquire(blocking=False)
                frozen = self.map.copy() \
                    if before_record or checkpoint or background else None
        if containers is not None:
            try:
                record = self._upload_and_record(containers, ops, extra_ops, before_record,
                                                 frozen, uploaded or {})
            except BaseException:
                if background:
                    self._checkpoint_lock.release()
                raise
            self._records_since_checkpoint += 1
            self._bytes_since_checkpoint += len(record)
        if not (checkpoint or background):
            return None
        taken = self._take_checkpoint(frozen)
        if checkpoint:
            return taken
        writer = threading.Thread(target=self._write_checkpoint_in_background, args=(taken,),
                                  name='checkpoint %s' % self.namespace, daemon=True)
        try:
            writer.start()
        except RuntimeError:
            # No thread to be had: the record is committed all the same.
            self._checkpoint_failed = True
            self._checkpoint_lock.release()
            LOG.exception('%s: no thread to write a checkpoint', self.namespace)
        return None

    def _upload_and_record(self, containers, ops, extra_ops, before_record, frozen,
                           uploaded):
        try:
            # Newest first: the one sealed by this commit is put here while
            # the write-behind finishes the older ones.
            for number in sorted(containers, reverse=True):
                if not self._write_behind.written(number):
                    self._put_container(number, containers[number])
            added = dict(uploaded)
            for number, data in containers.items():
                added[number] = [self.key.epoch, len(data) // BLOCK_SIZE]
            if before_record:
                before_record(frozen, added)
            record = records.encode_commit(added, ops + list(extra_ops))
            self._append_record(record)
        except backends.Fenced as exc:
            self.halt('fenced: %s' % exc)
            raise
        except Exception:
            with self._lock:
                self._ops[:0] = ops
            raise
        with self._lock:
            self._containers.update(added)
            for number in containers:
                self._buffers.pop(number, None)
            for op in extra_ops:
                self._apply(op, self._next_slot - 1)
        return record

    def _put_container(self, number, data):
        """Put a sealed container; the commit that names it makes it
        durable, with the others."""
        self.backend.put(self.namespace, records.container_name(number, self.key.epoch),
                         data, self.key, durable=False)

    def _checkpoint_due(self):
        return (self._checkpoint_failed
                or self._records_since_checkpoint + 1 >= self.tuning.checkpoint_every_records
                or self._bytes_since_checkpoint >= self.tuning.checkpoint_every_bytes)

    def _append_record(self, record):
        slot = self._next_slot
        try:
            self.backend.append_log(self.namespace, slot, record, self.key)
        except backends.Fenced:
            raise
        except backends.BackendError:
            # The outcome is unknown: only what the slot holds now tells.
            if not self._slot_holds(slot, record):
                raise
            LOG.warning('%s: commit of slot %d reported an error but is '
                        'in place', self.namespace, slot)
            self._check_still_owner(slot)
        self._next_slot = slot + 1

    def _check_still_owner(self, slot):
        """The check a backend makes after a commit it saw through, for a
        commit found in place by reading it back: a claim that came
        between may have trimmed the slot before the put landed, and then
        no owner will ever read it."""
        current = self.backend.current_epoch(self.namespace)
        if current != self.key.epoch:
            raise backends.Fenced('%s: claimed at epoch %d while slot %d was '
                                  'committed; the new owner may not have it'
                                  % (self.namespace, current, slot))

    def _slot_holds(self, slot, record):
        for found, raw in self.backend.read_log(self.namespace,
                                                after=slot - 1):
            return found == slot and raw == record
        return False

    def _take_checkpoint(self, committed_map):
        """The state as of the last record (``committed_map``: the map as
        of its seal). Called with ``_flush_lock`` and ``_checkpoint_lock``
        held: the records committed from now on count towards the next."""
        with self._lock:
            taken = _Checkpoint(self._next_slot - 1, self.size, committed_map,
                                dict(self._containers), dict(self.snapshots))
        self._records_since_checkpoint = 0
        self._bytes_since_checkpoint = 0
        self._checkpoint_failed = False
        return taken

    def _write_checkpoint(self, taken):
        """Upload ``taken``, then drop the log up to its slot and the older
        checkpoints. Called with ``_checkpoint_lock`` held, not
        ``_flush_lock``: commits go on meanwhile, into slots after
        ``taken.slot``, which the trim leaves alone. Killed at any point,
        the volume opens from the old checkpoint and the whole log, or from
        this one and the log after it."""
        with self._lock:
            self._check_live()
        # Encoded without the lock: the committed map shares its pages
        # copy-on-write with the live one, which IO goes on changing.
        state = records.encode_map_state(taken.size, taken.map, taken.containers,
                                         snapshots=taken.snapshots)
        try:
            self.backend.put(self.namespace, records.checkpoint_name(taken.slot),
                             state, self.key)
            self.backend.trim_log(self.namespace, taken.slot, self.key)
            for old in self.backend.list(self.namespace,
                                         records.CHECKPOINT_PREFIX):
                if records.checkpoint_slot(old) < taken.slot:
                    self.backend.delete(self.namespace, old, self.key)
        except backends.Fenced as exc:
            self.halt('fenced: %s' % exc)
            raise
        except Exception:
            self._checkpoint_failed = True  # the next commit tries again
            raise
        self._checkpoint_slot = taken.slot

    def _write_checkpoint_in_background(self, taken):
        try:
            self._write_checkpoint(taken)
        except errors.Halted:
            pass  # handed over, deleted or fenced: the next owner checkpoints
        except Exception:
            LOG.exception('%s: checkpoint at slot %d failed; the log is kept '
                          'whole', self.namespace, taken.slot)
        finally:
            self._checkpoint_lock.release()

    def wait_for_checkpoint(self):
        """Return once no checkpoint of this copy is being written."""
        with self._checkpoint_lock:
            pass

    def checkpoint(self):
        """Commit and checkpoint; returns what the committed state holds:
        ``(containers its map refers to, {container: [epoch, blocks]} of
        every committed container, the snapshots' map objects)``, all as
        of one moment, once the checkpoint is written. Containers committed
        later are numbered higher. Commits go on while it uploads."""
        with self._checkpoint_lock:
            with self._flush_lock:
                taken = self._commit(checkpoint=True)
            self._write_checkpoint(taken)
        return taken.map.containers(), dict(taken.containers), _map_objects(taken.snapshots)

    # Compaction: the compactor copies live blocks into new containers.

    def layout(self):
        """``(map copy, {container: [epoch, blocks]} committed)`` as of one
        moment."""
        with self._lock:
            return self.map.copy(), dict(self._containers)

    def new_container_number(self):
        with self._lock:
            number = self._next_container
            self._next_container += 1
            return number

    def relocate(self, number, blocks, moves):
        """Commit container ``number`` of ``blocks`` blocks, already
        uploaded under this key, and ``moves``: OP_MOVE operations from the
        blocks' old locations to their copies in it."""
        with self._flush_lock:
            self._commit(moves, uploaded={number: [self.key.epoch, blocks]})

    # Metadata operations: each commits everything written before it.

    def extend(self, new_size):
        _check_size(new_size)
        with self._flush_lock:
            if new_size < self.size:
                raise errors.InvalidRequest(
                    'volume %s is %d bytes: it can grow, not shrink to %d'
                    % (self.namespace, self.size, new_size))
            self._commit([[records.OP_RESIZE, new_size]])

    def create_snapshot(self, name):
        backends.check_name('snapshot', name)
        with self._flush_lock:
            if name in self.snapshots:
                raise errors.SnapshotExists('snapshot %s of volume %s exists'
                                            % (name, self.namespace))
            created = time.time()
            size = self.size
            map_object = records.new_snapshot_object(name, self.key.epoch)

            def write_snapshot(frozen, added):
                containers = dict(self._containers)
                containers.update(added)
                used = frozen.containers()
                self.backend.put(
                    self.namespace, map_object,
                    records.encode_map_state(
                        size, frozen, {n: containers[n] for n in used}),
                    self.key)

            self._commit([[records.OP_SNAPSHOT, name, created, size, map_object]],
                         before_record=write_snapshot)

    def delete_snapshot(self, name):
        with self._flush_lock:
            self._require_snapshot(name)
            self._commit([[records.OP_DELETE_SNAPSHOT, name]])

    def revert(self, name):
        """Make the volume what it was at snapshot ``name``; writes since
        are discarded."""
        with self._flush_lock:
            self._require_snapshot(name)
            self._commit()
            # Held across the commit so that no write lands between the
            # record and the map it replaces.
            with self._lock:
                discarded = self._ops, dict(self._buffers), self._open_container
                self._ops = []
                self._buffers.clear()
                self._open_container = None
                try:
                    self._commit([[records.OP_REVERT, name]])
                except Exception:
                    # Not reverted: the map still points into these.
                    if not self._halted:
                        self._ops, buffers, self._open_container = discarded
                        self._buffers.update(buffers)
                    raise
                self._write_behind.drop(discarded[1])

    def _require_snapshot(self, name):
        if name not in self.snapshots:
            raise errors.SnapshotNotFound('snapshot %s of volume %s does not '
                                          'exist' % (name, self.namespace))

    def _read_snapshot(self, name):
        try:
            return records.decode_map_state(self.backend.get(
                self.namespace, records.snapshot_object(name, self.snapshots.get(name))))
        except backends.NotFound:
            raise errors.SnapshotNotFound('snapshot %s of volume %s has no '
                                          'map object' % (name,
                                                          self.namespace))

    # Facts

    def snapshot_objects(self):
        """The map objects of the committed snapshots."""
        with self._lock:
            return _map_objects(self.snapshots)

    def remove_stale_snapshot_objects(self, clones_need):
        """Delete the map objects of snapshots that are gone (or whose
        commit failed), except those ``clones_need()`` names. Returns how
        many. Under ``_flush_lock``: no snapshot is created or deleted
        meanwhile, and a clone being created, which checks that its
        snapshot is committed after writing its metadata, is either seen
        by ``clones_need()`` or finds its snapshot gone. The object of a
        snapshot that a REVERT record after the last written checkpoint
        names is kept too: an owner opening the volume replays that record
        from it."""
        removed = 0
        with self._flush_lock:
            stale = self.stale_snapshot_objects()
            keep = set(clones_need()) | self._objects_the_log_reads() \
                if stale else set()
            for name in stale:
                if name not in keep:
                    self.backend.delete(self.namespace, name, self.key)
                    removed += 1
        return removed

    def _objects_the_log_reads(self):
        """The snapshot map objects that replaying the log after the
        last written checkpoint reads."""
        with self._lock:
            covered = self._checkpoint_slot
            self._reverted_from = {name: slot for name, slot in self._reverted_from.items()
                                   if slot > covered}
            return set(self._reverted_from)

    def stale_snapshot_objects(self):
        """Snapshot map objects in the backend that no committed snapshot
        names: of snapshots deleted (kept while a clone reads them) or
        whose commit failed or is under way. Listed before the snapshots
        are looked at, so an object of a snapshot deleted meanwhile is in
        the answer."""
        listed = [name for prefix in records.SNAPSHOT_PREFIXES
                  for name in self.backend.list(self.namespace, prefix)]
        committed = self.snapshot_objects()
        return [name for name in listed if name not in committed]

    def forget_containers(self, numbers):
        """The collector removed these containers."""
        with self._lock:
            for number in numbers:
                self._containers.pop(number, None)

    def stats(self):
        with self._lock:
            stored = sum(blocks for _, blocks in self._containers.values())
            return {'size': self.size,
                    'epoch': self.key.epoch,
                    'snapshots': len(self.snapshots),
                    'stored_bytes': stored * BLOCK_SIZE,
                    'live_bytes': self.map.mapped_blocks() * BLOCK_SIZE,
                    'unflushed_bytes': self._unflushed_bytes(),
                    'map_bytes': self.map.memory_bytes(),
                    'halted': self._halted}


def _touches_backend(plan):
    """Whether a read plan has pieces to fetch from the backend."""
    return any(isinstance(piece, list) for piece in plan)


def _join_edges(edges, count):
    """The edge blocks of an unaligned write with zeroes between."""
    if count == 1:
        return edges[0]
    return edges[0] + bytes((count - 2) * BLOCK_SIZE) + edges[1]


def _check_size(size):
    if not isinstance(size, int) or size <= 0 or size % BLOCK_SIZE \
            or size > MAX_SIZE:
        raise errors.InvalidRequest(
            'volume size must be a positive multiple of %d bytes up to %d, '
            'got %r' % (BLOCK_SIZE, MAX_SIZE, size))
