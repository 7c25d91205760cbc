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

"""Benchmark: the engine's sequential read path through the read cache,
in this process, one thread (not a test).

    .venv/bin/python -m bench.cached_read [--mib 256]

A volume on the local backend with a read cache: --mib written in 1 MiB
writes and flushed, then read in 1 MiB reads twice: cold (the cache fills,
the prefetch included) and warm (every chunk in the cache). Prints the
table and writes it to results/cached_read.md.
"""

import argparse
import os
import shutil
import tempfile
import time

from bench import results
from ovs_daemon.backends import base
from ovs_daemon.backends import local
from ovs_daemon.devcluster import cluster as cluster_mod
from ovs_daemon.engine import read_cache
from ovs_daemon.engine import store as store_mod

MiB = 1 << 20


def read_all(volume, mib):
    start = time.monotonic()
    for offset in range(0, mib * MiB, MiB):
        volume.read(offset, MiB)
    return mib / (time.monotonic() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--mib', type=int, default=256)
    parser.add_argument('--workdir')
    parser.add_argument('--results', default='results/cached_read.md')
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix='ovs-bench-', dir=args.workdir)
    try:
        cache = read_cache.ReadCache(os.path.join(workdir, 'cache'), 2 * args.mib * MiB)
        store = store_mod.VolumeStore(local.LocalBackend(os.path.join(workdir, 'backend')),
                                      cache=cache)
        volume = store.create('v', 2 * args.mib * MiB, base.OwnerKey.generate(1))
        data = os.urandom(MiB)
        for offset in range(0, args.mib * MiB, MiB):
            volume.write(offset, data)
        volume.flush()
        cold = read_all(volume, args.mib)
        cluster_mod.Cluster.wait_until(lambda: cache.prefetches() == 0, 60,
                                       'the prefetches to end')
        warm = read_all(volume, args.mib)
        cache.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rows = [('1 MiB sequential reads of %d MiB, cold cache (local backend)' % args.mib,
             '%.0f MiB/s' % cold),
            ('the same, every chunk in the cache', '%.0f MiB/s' % warm)]
    results.publish('\n'.join(results.table(('figure', 'value'), rows)), args.results)


if __name__ == '__main__':
    main()
