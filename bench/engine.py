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

"""Benchmark of the volume engine on the local backend (not a test).

Prints a table and writes it to results/engine.md:
  .venv/bin/python -m bench.engine [--data-mib 1024] [--workdir DIR]
"""

import argparse
import os
import random
import shutil
import tempfile
import time

from bench import results
from ovs_daemon.backends import base
from ovs_daemon.backends import local
from ovs_daemon.engine import store as store_mod
from ovs_daemon.engine import volume as volume_mod

KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40


def key(epoch):
    return base.OwnerKey.generate(epoch)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def random_writes(vol, span, count, flush_every):
    payload = os.urandom(4 * KiB)
    blocks = span // (4 * KiB)
    written = set()
    for i in range(count):
        block = random.randrange(blocks)
        written.add(block)
        vol.write(block * 4 * KiB, payload)
        if i % flush_every == flush_every - 1:
            vol.flush()
    vol.flush()
    return written


def random_reads(vol, written, count):
    blocks = sorted(written)
    for _ in range(count):
        vol.read(random.choice(blocks) * 4 * KiB, 4 * KiB)


def sequential_writes(vol, total, flush_every_mib=64):
    payload = os.urandom(MiB)
    for i in range(total // MiB):
        vol.write(i * MiB, payload)
        if i % flush_every_mib == flush_every_mib - 1:
            vol.flush()
    vol.flush()


def sequential_reads(vol, total):
    for i in range(total // MiB):
        vol.read(i * MiB, MiB)


def run(workdir, data_mib):
    store = store_mod.VolumeStore(local.LocalBackend(workdir))
    rows = []
    random.seed(1)

    vol = store.create('rand', GiB, key(1))
    n = 50000
    t, written = timed(lambda: random_writes(vol, GiB, n, flush_every=256))
    rows.append(('4 KiB random write, flush every 256', '%.0f IOPS' % (n / t)))
    t, _ = timed(lambda: random_reads(vol, written, n))
    rows.append(('4 KiB random read of written blocks', '%.0f IOPS' % (n / t)))

    seq = store.create('seq', max(GiB, data_mib * MiB), key(1))
    total = data_mib * MiB
    t, _ = timed(lambda: sequential_writes(seq, total))
    rows.append(('1 MiB sequential write, flush every 64 MiB',
                 '%.0f MiB/s' % (data_mib / t)))
    t, _ = timed(lambda: sequential_reads(seq, total))
    rows.append(('1 MiB sequential read', '%.0f MiB/s' % (data_mib / t)))
    stats = seq.stats()
    rows.append(('block map per written 4 KiB block (dense)',
                 '%.1f bytes' % (stats['map_bytes'] / (total / 4096))))
    rows.append(('block map per written 4 KiB block (%d random in 1 GiB)'
                 % len(written), '%.1f bytes' % (vol.stats()['map_bytes'] /
                                                 len(written))))

    seq.checkpoint()
    t, reopened = timed(lambda: store.open('seq', key(2)))
    rows.append(('restart after %d MiB written, all checkpointed' % data_mib,
                 '%.1f ms' % (t * 1000)))
    tuning = volume_mod.Tuning(checkpoint_every_records=10 ** 9,
                               checkpoint_every_bytes=1 << 62)
    logged = store_mod.VolumeStore(store.backend, tuning)
    reopened = logged.open('seq', key(3))
    t, _ = timed(lambda: sequential_writes(reopened, total,
                                           flush_every_mib=1))
    t, _ = timed(lambda: logged.open('seq', key(4)))
    rows.append(('restart after %d MiB written since the checkpoint '
                 '(%d records)' % (data_mib, data_mib), '%.1f ms' % (t * 1000)))

    for size, label in ((GiB, '1 GiB'), (TiB, '1 TiB')):
        name = 'meta%d' % (size // GiB)
        t, big = timed(lambda: store.create(name, size, key(1)))
        rows.append(('create %s volume' % label, '%.1f ms' % (t * 1000)))
        big.write(size - MiB, os.urandom(MiB))
        t, _ = timed(lambda: big.create_snapshot('s'))
        rows.append(('snapshot %s volume' % label, '%.1f ms' % (t * 1000)))
        t, _ = timed(lambda: store.clone(name + 'c', name, 's', key(1)))
        rows.append(('clone %s volume' % label, '%.1f ms' % (t * 1000)))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data-mib', type=int, default=1024)
    parser.add_argument('--workdir')
    parser.add_argument('--results', default='results/engine.md')
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix='ovs-bench-', dir=args.workdir)
    try:
        rows = run(workdir, args.data_mib)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results.publish('\n'.join(results.table(('figure', 'value'), rows)), args.results)


if __name__ == '__main__':
    main()
