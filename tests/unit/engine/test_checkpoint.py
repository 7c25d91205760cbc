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

"""Checkpoints are written beside commits: no FLUSH waits for one, and an
owner killed at any step of one loses no acknowledged write."""

import json
import os
import signal
import subprocess
import sys
import threading

import pytest

from ovs_daemon.backends import base
from ovs_daemon.backends import local
from ovs_daemon.engine import records
from ovs_daemon.engine import store as store_mod
from ovs_daemon.engine import volume as volume_mod
from tests.unit.engine import checkpoint_owner
from tests.unit.faulty_backend import FaultyBackend

BLOCK = volume_mod.BLOCK_SIZE
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def key(epoch):
    return base.OwnerKey.generate(epoch)


@pytest.fixture
def backend(tmp_path):
    backend = FaultyBackend(tmp_path / 'backend')
    yield backend
    backend.checkpoints_may_go.set()


def finishes(call):
    """Whether ``call``, run in a thread, returns (within a generous
    bound: it is waiting for something that never comes otherwise)."""
    done = threading.Event()
    thread = threading.Thread(target=lambda: (call(), done.set()), daemon=True)
    thread.start()
    return done.wait(30)


def slots(backend, namespace):
    return [slot for slot, _ in backend.read_log(namespace)]


def test_a_flush_never_waits_for_a_checkpoint_upload(backend):
    vol = volume_mod.Volume.create(backend, 'v', 64 * BLOCK, key(1),
                                   tuning=volume_mod.Tuning(checkpoint_every_records=2))
    vol.write(0, b'a' * BLOCK)
    vol.flush()
    backend.checkpoints_may_go.clear()

    vol.write(BLOCK, b'b' * BLOCK)
    assert finishes(vol.flush), 'the FLUSH that found a checkpoint due waited for it'
    assert backend.checkpoint_waiting.wait(30)
    covered = slots(backend, 'v')[-1]
    vol.write(2 * BLOCK, b'c' * BLOCK)
    assert finishes(vol.flush), 'a FLUSH waited for the checkpoint under way'
    vol.write(3 * BLOCK, b'd' * BLOCK)
    assert finishes(vol.flush), 'a FLUSH finding the next checkpoint due waited'
    tail = slots(backend, 'v')[-2:]
    assert backend.list('v', records.CHECKPOINT_PREFIX) == []

    backend.checkpoints_may_go.set()
    vol.wait_for_checkpoint()
    assert backend.list('v', records.CHECKPOINT_PREFIX) == [records.checkpoint_name(covered)]
    assert slots(backend, 'v') == tail
    again = volume_mod.Volume.open(backend, 'v', key(2))
    assert again.read(0, 4 * BLOCK) == b'a' * BLOCK + b'b' * BLOCK + b'c' * BLOCK + b'd' * BLOCK


def test_a_failed_checkpoint_upload_fails_no_flush_and_is_tried_again(backend):
    vol = volume_mod.Volume.create(backend, 'v', 64 * BLOCK, key(1),
                                   tuning=volume_mod.Tuning(checkpoint_every_records=2))
    backend.checkpoint_failures_left = 1
    for block in range(2):
        vol.write(block * BLOCK, b'%d' % block * BLOCK)
        vol.flush()
    vol.wait_for_checkpoint()
    assert backend.checkpoint_failures_left == 0
    assert backend.list('v', records.CHECKPOINT_PREFIX) == []

    vol.write(2 * BLOCK, b'2' * BLOCK)
    vol.flush()                  # the next commit takes it again
    vol.wait_for_checkpoint()
    assert backend.list('v', records.CHECKPOINT_PREFIX) == \
        [records.checkpoint_name(slots(backend, 'v')[-1])]
    assert volume_mod.Volume.open(backend, 'v', key(2)).read(0, 3 * BLOCK) == \
        b'0' * BLOCK + b'1' * BLOCK + b'2' * BLOCK


def test_the_collector_waits_for_the_checkpoint_under_way_not_the_flushes(backend):
    store = store_mod.VolumeStore(backend, volume_mod.Tuning(checkpoint_every_records=1))
    vol = store.create('v', 64 * BLOCK, key(1))
    for _ in range(3):
        vol.write(0, os.urandom(BLOCK))
        vol.flush()
        vol.wait_for_checkpoint()
    backend.checkpoints_may_go.clear()
    vol.write(BLOCK, b'b' * BLOCK)
    vol.flush()
    assert backend.checkpoint_waiting.wait(30)
    collected = {}
    collector = threading.Thread(target=lambda: collected.update(n=store.collect(vol)))
    collector.start()
    vol.write(2 * BLOCK, b'c' * BLOCK)
    assert finishes(vol.flush)

    backend.checkpoints_may_go.set()
    collector.join(30)
    assert collected['n'] >= 2   # the overwritten containers
    assert len(backend.list('v', records.CHECKPOINT_PREFIX)) == 1
    expected = vol.read(0, 3 * BLOCK)
    assert store.open('v', key(2)).read(0, 3 * BLOCK) == expected


@pytest.mark.slow
@pytest.mark.parametrize('step', checkpoint_owner.STEPS)
def test_an_owner_killed_at_any_step_of_a_checkpoint_loses_no_acknowledged_write(
        tmp_path, step):
    owner = subprocess.Popen([sys.executable, '-m', 'tests.unit.engine.checkpoint_owner',
                              str(tmp_path), step], cwd=REPO)
    try:
        acknowledged = tmp_path / 'acknowledged'
        for _ in range(600):
            if acknowledged.exists() or owner.poll() is not None:
                break
            threading.Event().wait(0.1)
        assert acknowledged.exists(), 'the owner never flushed beside its checkpoint'
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    owned = json.loads(acknowledged.read_text())

    backend = local.LocalBackend(tmp_path / 'store')
    checkpoints = [records.checkpoint_slot(name)
                   for name in backend.list('v', records.CHECKPOINT_PREFIX)]
    assert set(checkpoints) <= {owned['older'], owned['newer']}
    # Either the older checkpoint and the whole log after it, or the new
    # one and the log after it.
    latest = checkpoints[-1]
    assert latest == (owned['older'] if step == 'before the upload' else owned['newer'])
    assert [slot for slot in slots(backend, 'v') if slot > latest] == \
        list(range(latest + 1, owned['last'] + 1))

    again = volume_mod.Volume.open(backend, 'v', key(2))
    assert again.read(0, owned['rounds'] * BLOCK) == \
        b''.join(map(checkpoint_owner.round_data, range(owned['rounds'])))
