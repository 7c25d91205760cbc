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

"""The engine against a reference model: bytearrays that do the obvious.

Every step is applied to both; after every step each volume reads back
exactly as its model. A crash drops the engine's memory and reopens the
volume from the backend with a higher epoch: it must then equal the model
as of its last flush (or metadata operation, which commits too). Due
checkpoints are written by threads of their own, beside the steps; one step
holds a checkpoint's upload while the volume is written and flushed, and
may crash the owner before the upload lands.
"""

import shutil
import tempfile
import threading

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle
from hypothesis.stateful import initialize
from hypothesis.stateful import invariant
from hypothesis.stateful import precondition
from hypothesis.stateful import rule
from hypothesis.stateful import RuleBasedStateMachine
from hypothesis.stateful import run_state_machine_as_test
import pytest

from ovs_daemon.backends import base
from ovs_daemon.backends import local
from ovs_daemon.engine import compaction
from ovs_daemon.engine import errors
from ovs_daemon.engine import read_cache
from ovs_daemon.engine import records
from ovs_daemon.engine import store as store_mod
from ovs_daemon.engine import volume as volume_mod
from tests.unit import s3_store
from tests.unit.engine.test_checkpoint import finishes

BLOCK = volume_mod.BLOCK_SIZE
TUNING = volume_mod.Tuning(container_bytes=4 * BLOCK,
                           checkpoint_every_records=3,
                           checkpoint_every_bytes=1 << 20)


class Model:
    def __init__(self, data):
        self.data = bytearray(data)
        self.durable = bytes(data)
        self.snapshots = {}
        self.epoch = 1


class HeldCheckpoints:
    """A backend whose uploads of one volume's checkpoints by one owner a
    step can hold. Those of an older owner go on: a crash leaves its
    background checkpoint to run into a later step, and holding it there
    would stand for the upload that step waits for."""

    def __init__(self, backend):
        self._backend = backend
        self.held = None
        self.may_go = threading.Event()
        self.waiting = threading.Event()

    def __getattr__(self, name):
        return getattr(self._backend, name)

    def hold(self, namespace, key):
        self.may_go.clear()
        self.waiting.clear()
        self.held = namespace, key

    def release(self):
        self.held = None
        self.may_go.set()

    def put(self, namespace, name, data, key, durable=True):
        if (namespace, key) == self.held and name.startswith(records.CHECKPOINT_PREFIX):
            self.waiting.set()
            self.may_go.wait(60)
        self._backend.put(namespace, name, data, key, durable)


class LocalStore:
    """A fresh local backend for each example."""

    def open(self):
        self.root = tempfile.mkdtemp(prefix='ovs-model-')
        return local.LocalBackend(self.root)

    def close(self):
        shutil.rmtree(self.root, ignore_errors=True)


class S3Store:
    """A fresh prefix of the test session's S3 store for each example."""

    def __init__(self, place):
        self.session_place = place

    def open(self):
        self.place = self.session_place.under(s3_store.fresh_prefix())
        return self.place.backend()

    def close(self):
        s3_store.remove_prefix(self.place)


class VolumeMachine(RuleBasedStateMachine):
    volumes = Bundle('volumes')
    backing = LocalStore()
    uploads = HeldCheckpoints

    def __init__(self):
        super().__init__()
        # A read cache of 8 chunks of one block: reads evict all the time,
        # and any stale entry would show as a difference from the model.
        self.cache_dir = tempfile.mkdtemp(prefix='ovs-model-cache-')
        cache = read_cache.ReadCache(self.cache_dir, 8 * BLOCK, chunk_bytes=BLOCK,
                                     readahead_bytes=2 * BLOCK)
        self.backend = self.uploads(self.backing.open())
        self.store = store_mod.VolumeStore(self.backend, TUNING, cache)
        self.engines = {}
        self.models = {}
        self.counter = 0

    def teardown(self):
        self.backing.close()
        self.store.cache.close()
        shutil.rmtree(self.cache_dir, ignore_errors=True)

    # Not _new_name: RuleBasedStateMachine names bundle values with it, and
    # printing a failing example's steps (the replay that reports it)
    # fails if a subclass takes it over.
    def _fresh_name(self, prefix):
        self.counter += 1
        return '%s%d' % (prefix, self.counter)

    @initialize(target=volumes, blocks=st.integers(1, 12))
    def create(self, blocks):
        name = self._fresh_name('vol')
        self.engines[name] = self.store.create(
            name, blocks * BLOCK, base.OwnerKey.generate(1))
        self.models[name] = Model(bytes(blocks * BLOCK))
        return name

    @rule(target=volumes, blocks=st.integers(1, 12))
    def create_another(self, blocks):
        return self.create(blocks)

    @rule(volume=volumes, data=st.data())
    def write(self, volume, data):
        model = self.models[volume]
        size = len(model.data)
        offset = data.draw(st.integers(0, size - 1), 'offset')
        length = data.draw(st.integers(1, min(size - offset, 3 * BLOCK)),
                           'length')
        fill = data.draw(st.binary(min_size=1, max_size=7), 'fill')
        payload = (fill * (length // len(fill) + 1))[:length]
        self.engines[volume].write(offset, payload)
        model.data[offset:offset + length] = payload

    @rule(volume=volumes, data=st.data())
    def out_of_range_changes_nothing(self, volume, data):
        size = len(self.models[volume].data)
        offset = data.draw(st.integers(0, size), 'offset')
        length = data.draw(st.integers(size - offset + 1, size + 2 * BLOCK))
        engine = self.engines[volume]
        for call in (lambda: engine.write(offset, b'x' * length),
                     lambda: engine.write_zeroes(offset, length),
                     lambda: engine.read(offset, length)):
            try:
                call()
            except errors.OutOfRange:
                pass
            else:
                raise AssertionError('out-of-range request was accepted')

    @rule(volume=volumes, data=st.data(), trim=st.booleans())
    def zero(self, volume, data, trim):
        model = self.models[volume]
        size = len(model.data)
        offset = data.draw(st.integers(0, size - 1), 'offset')
        length = data.draw(st.integers(1, size - offset), 'length')
        engine = self.engines[volume]
        (engine.trim if trim else engine.write_zeroes)(offset, length)
        model.data[offset:offset + length] = bytes(length)

    @rule(volume=volumes)
    def flush(self, volume):
        self.engines[volume].flush()
        self.models[volume].durable = bytes(self.models[volume].data)

    def _committed(self, volume):
        self.models[volume].durable = bytes(self.models[volume].data)

    def wait_for_checkpoint(self, engine):
        engine.wait_for_checkpoint()

    @rule(volume=volumes)
    def snapshot(self, volume):
        name = self._fresh_name('snap')
        self.engines[volume].create_snapshot(name)
        self.models[volume].snapshots[name] = bytes(self.models[volume].data)
        self._committed(volume)

    @rule(volume=volumes, data=st.data())
    def delete_snapshot(self, volume, data):
        model = self.models[volume]
        if not model.snapshots:
            return
        name = data.draw(st.sampled_from(sorted(model.snapshots)))
        self.engines[volume].delete_snapshot(name)
        del model.snapshots[name]
        self._committed(volume)

    @rule(volume=volumes, data=st.data())
    def revert(self, volume, data):
        model = self.models[volume]
        if not model.snapshots:
            return
        name = data.draw(st.sampled_from(sorted(model.snapshots)))
        self.engines[volume].revert(name)
        model.data = bytearray(model.snapshots[name])
        self._committed(volume)

    @rule(target=volumes, volume=volumes, data=st.data())
    def clone(self, volume, data):
        model = self.models[volume]
        if not model.snapshots:
            name = self._fresh_name('snap')
            self.engines[volume].create_snapshot(name)
            model.snapshots[name] = bytes(model.data)
            self._committed(volume)
        snap = data.draw(st.sampled_from(sorted(model.snapshots)))
        grow = data.draw(st.integers(0, 3)) * BLOCK
        clone = self._fresh_name('clone')
        content = model.snapshots[snap] + bytes(grow)
        self.engines[clone] = self.store.clone(
            clone, volume, snap, base.OwnerKey.generate(1),
            size=len(content))
        self.models[clone] = Model(content)
        return clone

    @rule(volume=volumes, blocks=st.integers(1, 4))
    def extend(self, volume, blocks):
        model = self.models[volume]
        self.engines[volume].extend(len(model.data) + blocks * BLOCK)
        model.data += bytes(blocks * BLOCK)
        self._committed(volume)

    @rule(volume=volumes)
    def crash_and_restart(self, volume):
        model = self.models[volume]
        model.epoch += 1
        self.engines[volume] = self.store.open(
            volume, base.OwnerKey.generate(model.epoch))
        model.data = bytearray(model.durable)

    @rule(volume=volumes, data=st.data(), crash=st.booleans())
    def checkpoint_during_flush(self, volume, data, crash):
        engine = self.engines[volume]
        # A checkpoint an earlier commit found due may still be on its way
        # to the backend in a thread of its own: held, it would be the
        # upload this step waits for, and the checkpoint asked for here
        # would find the volume halted by its fencing, not fenced itself.
        self.wait_for_checkpoint(engine)
        self.backend.hold(volume, engine.key)
        outcome = []
        checkpointing = threading.Thread(
            target=lambda: outcome.append(_outcome_of(engine.checkpoint)))
        try:
            checkpointing.start()
            assert self.backend.waiting.wait(30)
            self._committed(volume)    # the checkpoint's commit
            self.write(volume, data)
            assert finishes(lambda: self.flush(volume)), \
                'a FLUSH waited for the checkpoint upload'
            if crash:
                self.crash_and_restart(volume)
        finally:
            self.backend.release()
            checkpointing.join(60)
        # A stale owner's checkpoint is fenced.
        assert outcome == [base.Fenced if crash else None]

    @rule(volume=volumes)
    def collect(self, volume):
        self.store.collect(self.engines[volume])
        self._committed(volume)

    @rule(volume=volumes, threshold=st.sampled_from([0.3, 0.75, 1.0]))
    def compact(self, volume, threshold):
        self.store.compact_and_collect(self.engines[volume],
                                       compaction.Policy(threshold, 0))
        self._committed(volume)
        self._holds_no_container_below(volume, threshold)

    def _holds_no_container_below(self, volume, threshold):
        """After a round, the backend holds of a volume no snapshot or
        clone needs only its committed containers, each at least
        ``threshold`` live: stored bytes at most live bytes / threshold."""
        engine = self.engines[volume]
        if engine.snapshot_objects() or self.store.dependents(volume):
            return
        bmap, committed = engine.layout()
        live = compaction.live_counts(bmap)
        for name in self.backend.list(volume, records.CONTAINER_PREFIX):
            number, epoch = records.parse_container_name(name)
            assert committed.get(number, [None])[0] == epoch, name
            assert live[number] >= threshold * committed[number][1], name

    @invariant()
    def every_volume_reads_as_its_model(self):
        for name, model in self.models.items():
            got = self.engines[name].read(0, len(model.data))
            assert got == model.data, name
            assert self.engines[name].size == len(model.data)

    @precondition(lambda self: self.models)
    @invariant()
    def snapshots_are_listed(self):
        for name, model in self.models.items():
            assert set(self.engines[name].snapshots) == set(model.snapshots)


def _outcome_of(call):
    """None, or the type of the backend error ``call`` raised."""
    try:
        call()
    except base.BackendError as exc:
        return type(exc)
    return None


# (examples, steps). An s3 step is tens of HTTP requests to moto (the
# invariant reads every volume back): fewer, shorter examples keep the
# suite fast, while the local backend runs the full count.
EXAMPLES = {'local': (200, 40), 's3': (12, 30)}


@pytest.mark.parametrize('kind', sorted(EXAMPLES))
def test_volume_model(kind, request):
    backing = LocalStore() if kind == 'local' else \
        S3Store(request.getfixturevalue('s3_place'))
    machine = type('VolumeMachineOn' + kind.title(), (VolumeMachine,),
                   {'backing': backing})
    examples, steps = EXAMPLES[kind]
    run_state_machine_as_test(machine, settings=settings(
        max_examples=examples, stateful_step_count=steps, deadline=None))


class LateCheckpoints(HeldCheckpoints):
    """Checkpoint uploads that start only once a step holds the uploads or
    waits for the checkpoint under way: a checkpoint that a commit found
    due is still on its way, in its thread, when the next step begins."""

    def __init__(self, backend):
        super().__init__(backend)
        self.may_start = threading.Event()
        self.one_on_its_way = threading.Event()

    def hold(self, *args):
        super().hold(*args)
        self.may_start.set()

    def put(self, namespace, name, data, key, durable=True):
        if name.startswith(records.CHECKPOINT_PREFIX):
            self.one_on_its_way.set()
            self.may_start.wait(60)
        super().put(namespace, name, data, key, durable)


class Draws:
    """What a step draws, given in order."""

    def __init__(self, *values):
        self._values = iter(values)

    def draw(self, strategy, label=None):
        return next(self._values)


@pytest.mark.parametrize('crash', [False, True], ids=['owner lives', 'owner crashes'])
def test_a_checkpoint_held_during_a_flush_is_the_one_the_step_asked_for(crash):
    """The checkpoint step after a commit that found a checkpoint due,
    whose upload has not started when the step begins: the step waits for
    it, then holds and checks its own checkpoint (fenced if the owner
    crashed), not the background one."""
    class LateMachine(VolumeMachine):
        backing = LocalStore()
        uploads = LateCheckpoints

        def wait_for_checkpoint(self, engine):
            self.backend.may_start.set()
            super().wait_for_checkpoint(engine)

    machine = LateMachine()
    try:
        volume = machine.create(blocks=2)
        for record in range(TUNING.checkpoint_every_records):
            machine.write(volume, Draws(0, BLOCK, b'%d' % record))
            machine.flush(volume)
        assert machine.backend.one_on_its_way.wait(30)

        machine.checkpoint_during_flush(volume, Draws(BLOCK, BLOCK, b'late'), crash)
        machine.every_volume_reads_as_its_model()
    finally:
        machine.backend.release()
        machine.teardown()


class WithAFailingStep(VolumeMachine):
    backing = LocalStore()

    @rule(volume=VolumeMachine.volumes)
    def fail(self, volume):
        raise LookupError('the failure a step found in %s' % volume)


def test_a_failing_step_is_reported_with_its_own_error():
    """Hypothesis replays a failure to print its steps; the machine's
    helpers must leave that replay alone, or every failure the model test
    finds is reported as FlakyStrategyDefinition instead of itself."""
    with pytest.raises(LookupError, match='the failure a step found'):
        run_state_machine_as_test(WithAFailingStep, settings=settings(
            max_examples=20, stateful_step_count=40, deadline=None, database=None))
