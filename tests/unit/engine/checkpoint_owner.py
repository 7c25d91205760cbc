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

"""An owner process that stops its checkpoint at one step, for a test to
kill -9 it there (test_checkpoint.py).

    python -m tests.unit.engine.checkpoint_owner ROOT STEP

It writes and flushes one block per round on the local backend in ROOT,
with a checkpoint every ``EVERY`` records and each one waited for, until
the next is due; that one stops at STEP (one of ``STEPS``) and stays
there. It then writes and flushes one more round, which must not wait for
the checkpoint, and writes ROOT/acknowledged: the number of rounds flushed,
the slots of the older checkpoint and of the one stopped, and the last
slot committed. It never exits by itself.
"""

import json
import os
import sys
import threading

from ovs_daemon.backends import base
from ovs_daemon.backends import local
from ovs_daemon.engine import records
from ovs_daemon.engine import volume as volume_mod

BLOCK = volume_mod.BLOCK_SIZE
EVERY = 3
STEPS = ('before the upload', 'before the trim', 'during the trim',
         'before the older checkpoint goes', 'after the checkpoint')


def round_data(number):
    return b'%04d' % number * (BLOCK // 4)


class StoppingBackend(local.LocalBackend):
    """Stops the checkpoint at ``step`` once armed."""

    def __init__(self, root, step):
        super().__init__(root)
        self.step = step
        self.armed = False
        self.reached = threading.Event()

    def _stop_at(self, step):
        if self.armed and step == self.step:
            self.reached.set()
            threading.Event().wait()  # until killed

    def put(self, namespace, name, data, key, durable=True):
        checkpoint = name.startswith(records.CHECKPOINT_PREFIX)
        if checkpoint:
            self._stop_at('before the upload')
        super().put(namespace, name, data, key, durable)
        if checkpoint:
            self._stop_at('before the trim')

    def trim_log(self, namespace, upto, key):
        first = next(slot for slot, _ in self.read_log(namespace))
        super().trim_log(namespace, (first + upto) // 2, key)
        self._stop_at('during the trim')
        super().trim_log(namespace, upto, key)

    def delete(self, namespace, name, key):
        if name.startswith(records.CHECKPOINT_PREFIX):
            self._stop_at('before the older checkpoint goes')
        super().delete(namespace, name, key)


def main(root, step):
    backend = StoppingBackend(os.path.join(root, 'store'), step)
    volume = volume_mod.Volume.create(
        backend, 'v', 64 * BLOCK, base.OwnerKey.generate(1),
        tuning=volume_mod.Tuning(checkpoint_every_records=EVERY))
    rounds = 0

    def flush_a_round():
        nonlocal rounds
        volume.write(rounds * BLOCK, round_data(rounds))
        volume.flush()
        rounds += 1

    for _ in range(2 * EVERY):   # two checkpoints written whole
        flush_a_round()
        volume.wait_for_checkpoint()
    older = volume._checkpoint_slot
    backend.armed = True
    for _ in range(EVERY):       # the last finds the next checkpoint due
        flush_a_round()
    newer = volume._next_slot - 1
    if step == 'after the checkpoint':
        volume.wait_for_checkpoint()
    else:
        backend.reached.wait()
    flush_a_round()   # acknowledged while the checkpoint is stopped
    with open(os.path.join(root, 'acknowledged.tmp'), 'w') as f:
        json.dump({'rounds': rounds, 'older': older, 'newer': newer,
                   'last': volume._next_slot - 1}, f)
    os.rename(os.path.join(root, 'acknowledged.tmp'), os.path.join(root, 'acknowledged'))
    threading.Event().wait()


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
