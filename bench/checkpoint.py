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

"""Benchmark: the longest IO gap during a checkpoint and during a collector
round, by data written.

    .venv/bin/python -m bench.checkpoint [--gib 1 10 40] [--workdir DIR]

A volume on the local backend is given the state N GiB written leaves in
memory, simulated (the disk of a test machine is short): its block map and
container table are filled as N GiB of sequential writes in 8 MiB
containers would leave them, without the data. Then one thread writes and
reads 4 KiB blocks in a loop while another takes a checkpoint
(``Volume.checkpoint``: commit, copy the map, encode it, upload it, trim
the log), then a collector round (``VolumeStore.compact_and_collect``:
the space figures before and after, compaction, the checkpoint and the
collector). The gap is the longest time between two IO completions while
either runs; the same loop without either gives the noise floor. Then one
thread writes a 4 KiB block and FLUSHes in a loop while a checkpoint falls
due at one of those FLUSHes and is written (as a guest's FLUSH meets one):
the longest FLUSH from the moment it falls due until it is written, and
the longest over as long a time without one. Prints a table and writes it
to results/checkpoint.md. Target (docs/design.md, "Performance targets"):
the gap flat in the data written; a FLUSH never waits for a checkpoint.
"""

import argparse
import os
import shutil
import tempfile
import threading
import time

from bench import results
from ovs_daemon.backends import base
from ovs_daemon.backends import local
from ovs_daemon.engine import blockmap
from ovs_daemon.engine import compaction
from ovs_daemon.engine import store as store_mod
from ovs_daemon.engine import volume as volume_mod

GiB = 1 << 30
BLOCK = volume_mod.BLOCK_SIZE
SPARE_BLOCKS = 4096
NEVER = 1 << 62


def simulate_written(volume, gib):
    """Map ``gib`` GiB as written and committed in 8 MiB containers."""
    per_container = volume.tuning.container_bytes // BLOCK
    containers = gib * GiB // volume.tuning.container_bytes
    for number in range(1, containers + 1):
        volume.map.set_run((number - 1) * per_container, per_container,
                           blockmap.location(number, 0))
        volume._containers[number] = [volume.key.epoch, per_container]
    volume._next_container = containers + 1


class _TimedLoop(threading.Thread):
    """Runs :meth:`step` on 4 KiB blocks past the simulated data until
    stopped, keeping the longest time a step measured."""

    def __init__(self, volume, first_block):
        super().__init__(daemon=True)
        self.volume = volume
        self.first_block = first_block
        self.stopping = threading.Event()
        self.longest = 0.0
        self.count = 0

    def run(self):
        payload = os.urandom(BLOCK)
        while not self.stopping.is_set():
            offset = (self.first_block + self.count % SPARE_BLOCKS) * BLOCK
            self.longest = max(self.longest, self.step(offset, payload))
            self.count += 1


class IOLoop(_TimedLoop):
    """A 4 KiB write and read, timed together: the gaps between IO
    completions."""

    def step(self, offset, payload):
        started = time.perf_counter()
        self.volume.write(offset, payload)
        self.volume.read(offset, BLOCK)
        return time.perf_counter() - started


class FlushLoop(_TimedLoop):
    """A 4 KiB write and a FLUSH, the FLUSH timed."""

    def step(self, offset, payload):
        self.volume.write(offset, payload)
        started = time.perf_counter()
        self.volume.flush()
        return time.perf_counter() - started


def longest_during(loop_class, volume, first_block, during):
    """Run ``during()`` while a ``loop_class`` loop runs; returns the
    longest step the loop timed meanwhile and how long ``during`` took."""
    loop = loop_class(volume, first_block)
    loop.start()
    time.sleep(0.2)
    loop.longest = 0.0
    started = time.perf_counter()
    during()
    took = time.perf_counter() - started
    loop.stopping.set()
    loop.join()
    return loop.longest, took


def due_checkpoint(volume):
    """Make a checkpoint due at the next commit; return once it is
    written."""
    written = volume._checkpoint_slot
    volume.tuning.checkpoint_every_records = 1
    while volume._checkpoint_slot == written:
        time.sleep(0.001)
    volume.tuning.checkpoint_every_records = NEVER
    volume.wait_for_checkpoint()  # one a FLUSH took meanwhile


def measure(workdir, gib):
    backend = local.LocalBackend(os.path.join(workdir, 'store%d' % gib))
    # Checkpoints only when the bench asks for one.
    tuning = volume_mod.Tuning(checkpoint_every_records=NEVER, checkpoint_every_bytes=NEVER)
    volume = volume_mod.Volume.create(backend, 'v%d' % gib, (gib + 1) * GiB,
                                      base.OwnerKey.generate(1), tuning=tuning)
    simulate_written(volume, gib)
    first_block = gib * GiB // BLOCK
    volume.checkpoint()          # the first one, outside the measure
    noise, _ = longest_during(IOLoop, volume, first_block, lambda: time.sleep(1.0))
    gap, took = longest_during(IOLoop, volume, first_block, volume.checkpoint)
    store = store_mod.VolumeStore(backend)
    round_gap, round_took = longest_during(
        IOLoop, volume, first_block,
        lambda: store.compact_and_collect(volume, compaction.Policy(bytes_per_second=0)))
    flush, due_took = longest_during(FlushLoop, volume, first_block + SPARE_BLOCKS,
                                     lambda: due_checkpoint(volume))
    flush_noise, _ = longest_during(FlushLoop, volume, first_block + SPARE_BLOCKS,
                                    lambda: time.sleep(due_took))
    return {'gib': gib, 'gap': gap, 'noise': noise, 'checkpoint': took,
            'round_gap': round_gap, 'round': round_took,
            'flush': flush, 'due_checkpoint': due_took, 'flush_noise': flush_noise,
            'map_mib': volume.map.memory_bytes() / (1 << 20)}


def report(rows):
    header = ('data written (simulated)', 'block map', 'checkpoint took',
              'longest IO gap during it', 'collector round took', 'longest IO gap during it',
              'longest IO gap, neither', 'due checkpoint took',
              'longest FLUSH during a checkpoint', 'longest FLUSH, no checkpoint')
    return '\n'.join(results.table(header, [(
        '%d GiB' % row['gib'], '%.0f MiB' % row['map_mib'],
        '%.0f ms' % (row['checkpoint'] * 1000), '%.1f ms' % (row['gap'] * 1000),
        '%.0f ms' % (row['round'] * 1000), '%.1f ms' % (row['round_gap'] * 1000),
        '%.1f ms' % (row['noise'] * 1000), '%.0f ms' % (row['due_checkpoint'] * 1000),
        '%.1f ms' % (row['flush'] * 1000), '%.1f ms' % (row['flush_noise'] * 1000))
        for row in rows]))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--gib', type=int, nargs='+', default=[1, 10, 40])
    parser.add_argument('--workdir')
    parser.add_argument('--results', default='results/checkpoint.md')
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix='ovs-checkpoint-bench-', dir=args.workdir)
    try:
        rows = []
        for gib in args.gib:
            rows.append(measure(workdir, gib))
            print('  %d GiB: gap %.1f ms, collector round %.1f ms, longest FLUSH during a '
                  'checkpoint %.1f ms' % (gib, rows[-1]['gap'] * 1000,
                                          rows[-1]['round_gap'] * 1000,
                                          rows[-1]['flush'] * 1000), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results.publish(report(rows), args.results)


if __name__ == '__main__':
    main()
