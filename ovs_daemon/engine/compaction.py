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

"""Compaction: copy the live blocks of sparsely used containers into new ones.

Under random overwrites almost every container keeps a few live blocks,
so the collector, which removes only containers nothing refers to, frees
little. The compactor commits what was written before the round, then
picks the committed containers whose live fraction fell below a threshold
(emptiest first), reads each whole, packs its live blocks into a new
container under the owner's key and commits that with OP_MOVE operations.
A move applies only where the block still maps to the copied location, so
a write made meanwhile wins, in memory and on replay alike. The old
containers are then unreferenced and the collector removes them after its
checkpoint.

Nothing is lost at any point: until the commit the new container is an
unreferenced object (removed by the collector of a later owner), after it
the old containers are merely garbage. A fenced owner's commit fails, so
its compactor changes nothing. Containers a snapshot (or a clone through
it) refers to are left alone: rewriting them would free nothing.
"""

import collections
import dataclasses
import time

from oslo_log import log as logging

from ovs_daemon.backends import base as backends
from ovs_daemon.engine import blockmap
from ovs_daemon.engine import records

LOG = logging.getLogger(__name__)
BLOCK_SIZE = 4096


@dataclasses.dataclass
class Policy:
    threshold: float = 0.5          # rewrite containers less live than this
    bytes_per_second: int = 32 << 20  # read and written; 0: unbounded


@dataclasses.dataclass
class Outcome:
    containers_rewritten: int = 0
    blocks_moved: int = 0
    bytes_read: int = 0
    bytes_written: int = 0


class Throttle:
    """Keeps a thread's backend traffic under a rate by sleeping."""

    def __init__(self, bytes_per_second, clock=time.monotonic, sleep=time.sleep):
        self.rate = bytes_per_second
        self._clock, self._sleep = clock, sleep
        self._start = clock()
        self._spent = 0

    def spend(self, nbytes):
        if not self.rate:
            return
        self._spent += nbytes
        ahead = self._spent / self.rate - (self._clock() - self._start)
        if ahead > 0:
            self._sleep(ahead)


def live_counts(bmap):
    """``{container: blocks of it the map refers to}``."""
    return collections.Counter(blockmap.container_of(loc)
                               for _, loc in bmap.locations())


def pick_victims(bmap, committed, keep, threshold):
    """Committed containers below ``threshold`` live, emptiest first; a
    container with no live block is the collector's, one in ``keep`` a
    snapshot's."""
    counts = live_counts(bmap)
    candidates = []
    for number, (_, blocks) in committed.items():
        live = counts.get(number, 0)
        if live and number not in keep and blocks and live / blocks < threshold:
            candidates.append((live / blocks, number))
    return [number for _, number in sorted(candidates)]


def compact(volume, keep, policy):
    """One compaction pass over an open volume; ``keep``: containers its
    snapshots (and the clones reading them) refer to. Returns an Outcome.
    Raises Fenced (and halts the volume) or Halted when the volume stops
    being ours meanwhile."""
    try:
        return _compact(volume, keep, policy)
    except backends.Fenced as exc:
        volume.halt('fenced: %s' % exc)
        raise


def _compact(volume, keep, policy):
    outcome = Outcome()
    # Writes not yet committed are committed first: the round's own
    # commits would otherwise make the containers they filled durable
    # without looking at how much of them is live.
    volume.flush()
    bmap, committed = volume.layout()
    victims = pick_victims(bmap, committed, keep, policy.threshold)
    if not victims:
        return outcome
    chosen = set(victims)
    live = collections.defaultdict(list)
    for block, loc in bmap.locations():
        number = blockmap.container_of(loc)
        if number in chosen:
            live[number].append((blockmap.index_of(loc), block))
    throttle = Throttle(policy.bytes_per_second)
    room = volume.tuning.container_bytes // BLOCK_SIZE
    batch = _Batch()
    for number in victims:
        name = records.container_name(number, committed[number][0])
        data = volume.backend.get(volume.namespace, name)
        throttle.spend(len(data))
        outcome.bytes_read += len(data)
        for index, block in sorted(live[number]):
            batch.add(block, blockmap.location(number, index),
                      data[index * BLOCK_SIZE:(index + 1) * BLOCK_SIZE])
            if len(batch) == room:
                _commit_batch(volume, batch, throttle, outcome)
                batch = _Batch()
        outcome.containers_rewritten += 1
    if len(batch):
        _commit_batch(volume, batch, throttle, outcome)
    LOG.info('%s: compacted %d containers, %d blocks copied',
             volume.namespace, outcome.containers_rewritten, outcome.blocks_moved)
    return outcome


class _Batch:
    """Blocks bound for one new container, with their moves."""

    def __init__(self):
        self.data = []
        self.moves = []

    def __len__(self):
        return len(self.data)

    def add(self, block, old_loc, data):
        index = len(self.data)
        self.data.append(data)
        last = self.moves[-1] if self.moves else None
        if last and last[1] + last[2] == block and last[3] + last[2] == old_loc \
                and last[4] + last[2] == index:
            last[2] += 1
        else:
            self.moves.append([records.OP_MOVE, block, 1, old_loc, index])


def _commit_batch(volume, batch, throttle, outcome):
    number = volume.new_container_number()
    name = records.container_name(number, volume.key.epoch)
    payload = b''.join(batch.data)
    first = blockmap.location(number, 0)
    moves = [[op, block, count, old, first + index]
             for op, block, count, old, index in batch.moves]
    volume.backend.put(volume.namespace, name, payload, volume.key)
    throttle.spend(len(payload))
    # Should the commit fail, the container stays: whether a failed commit
    # landed is not always known, and a later owner's collector removes it.
    volume.relocate(number, len(batch), moves)
    outcome.blocks_moved += len(batch)
    outcome.bytes_written += len(payload)
