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

"""Benchmark: space after random overwrites, with compaction and without
(not a test).

    .venv/bin/python -m bench.space [--size-mib 128] [--times 10]

For each backend (local, and s3 on moto's server or the store OVS_TEST_S3_*
names), a one-router vPool whose collector runs every --interval seconds
gets a volume of --size-mib, filled once, then --times its size in random
4 KiB writes from fio's nbd engine (a flush every 256 writes, no block
skipped or favoured). Then ``ovs-admin collect`` runs one round. The table
shows what the backend holds (the sizes of the volume's container objects)
against the live data, before and after that last round, and the same
writes on local with compaction off (``compaction_threshold = 0``).
Prints the table and writes it to results/space.md.
"""

import argparse
import os
import shutil
import tempfile
import time

from bench import backend as backend_bench
from bench import fio as fio_mod
from bench import results
from ovs_daemon.backends import base as backends
from ovs_daemon.backends import local
from ovs_daemon.devcluster import cluster as cluster_mod
from ovs_daemon.engine import records

MiB = 1 << 20
COLUMNS = ('local', 'off', 's3')


def fio_random_writes(uri, size_mib, times, workdir):
    """Fill the volume, then ``times`` its size in random 4 KiB writes."""
    for options in (['--rw=write', '--bs=1M'],
                    ['--rw=randwrite', '--bs=4k', '--norandommap', '--randrepeat=0',
                     '--io_size=%dM' % (size_mib * times), '--fsync=256']):
        fio_mod.run_job(uri, size_mib, ['--iodepth=16'] + options, workdir, name='space')


def stored_in_backend(backend, name):
    """Bytes of the volume's container objects, as the backend holds them."""
    total = 0
    for obj in backend.list(name, records.CONTAINER_PREFIX):
        try:
            total += len(backend.get(name, obj))
        except backends.NotFound:
            pass    # removed by a collection round since the listing
    return total


def measure(cluster, backend, args, workdir):
    client = cluster.client()
    client.create_volume('vol', args.size_mib * MiB)
    uri = cluster.nbd_uri('r1', 'vol', ttl=86400)
    start = time.monotonic()
    fio_random_writes(uri, args.size_mib, args.times, workdir)
    written = time.monotonic() - start
    stats = client.volume_stats('vol')
    before = stored_in_backend(backend, 'vol')
    start = time.monotonic()
    answer = client.collect('vol')
    round_time = time.monotonic() - start
    after = stored_in_backend(backend, 'vol')
    live = answer['live_bytes']
    return {'written in': '%.0f s' % written,
            'live data': '%.0f MiB' % (live / MiB),
            'stored after the writes (background rounds only)':
                '%.0f MiB (%.2fx live)' % (before / MiB, before / live),
            'stored after `ovs-admin collect`': '%.0f MiB (%.2fx live)' % (after / MiB,
                                                                           after / live),
            'last round': '%.1f s, %.0f MiB copied, %.0f MiB freed' % (
                round_time, answer['bytes_copied'] / MiB, answer['freed_bytes'] / MiB),
            'engine stored_bytes before the last round': '%.0f MiB' % (
                stats['stored_bytes'] / MiB)}


def run_one(name, options, backend, args, workdir):
    """The figures of one vPool; ``backend``: None for the vPool's local
    backend."""
    cluster = cluster_mod.Cluster(os.path.join(workdir, 'vpool-' + name))
    router_options = {'router': {'collect_interval': args.interval},
                      'engine': {'compaction_mib_per_second': args.mib_per_second}}
    for group, values in options.items():
        router_options.setdefault(group, {}).update(values)
    try:
        cluster.up(routers=1, options=router_options)
        if backend is None:
            backend = local.LocalBackend(cluster.state['backend'])
        return measure(cluster, backend, args, workdir)
    finally:
        cluster.down()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size-mib', type=int, default=128)
    parser.add_argument('--times', type=int, default=10)
    parser.add_argument('--interval', type=float, default=10.0,
                        help="the routers' collect_interval, seconds")
    parser.add_argument('--mib-per-second', type=int, default=32,
                        help='compaction_mib_per_second')
    parser.add_argument('--column', action='append', choices=COLUMNS,
                        help='measure only these columns (repeat; default: all)')
    parser.add_argument('--workdir')
    parser.add_argument('--results', default='results/space.md')
    args = parser.parse_args()
    wanted = args.column or COLUMNS
    workdir = tempfile.mkdtemp(prefix='ovs-bench-', dir=args.workdir)
    columns = {}
    try:
        if 'local' in wanted:
            columns['local'] = run_one('local', {}, None, args, workdir)
        if 'off' in wanted:
            columns['local, compaction off'] = run_one(
                'off', {'engine': {'compaction_threshold': 0}}, None, args, workdir)
        if 's3' in wanted:
            with backend_bench.s3_place(workdir) as (place, where):
                columns['s3 (%s)' % where] = run_one(
                    's3', {'backend': backend_bench.router_backend_options(place)},
                    place.backend(), args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    names = list(columns)
    lines = ['%d MiB volume, %dx its size in random 4 KiB writes (fio, flush every 256), '
             'collector every %.0f s, compaction threshold 0.5 at %d MiB/s'
             % (args.size_mib, args.times, args.interval, args.mib_per_second), '']
    lines += results.table(['figure'] + names, [[figure] + [columns[n][figure] for n in names]
                                                for figure in columns[names[0]]])
    results.publish('\n'.join(lines), args.results)


if __name__ == '__main__':
    main()
