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

"""Benchmark: reads through a router on s3 with its read cache, next to
local, in one run (not a test).

    .venv/bin/python -m bench.s3_cache [--working-set-mib 256] [--cold-mib 1024]

Two one-router vPools, one on the local backend and one on s3 (moto's
server, or the store OVS_TEST_S3_* names) whose router has a read cache of
--cache-mib. 4 KiB random reads (fio's nbd engine, QD16) of a --working-set-mib
volume, written and flushed first: on s3 once cold, then with the working
set in the cache (after one sequential pass), alternating with local for
--rounds rounds (medians). Then a cold sequential read (1 MiB, QD4) of a
--cold-mib volume on s3, beside the store's own GET bandwidth: whole
container objects read with the same number of GETs in flight, and the
CPU time the router and moto's server (when it runs here) spent during
that read (user + system, from /proc). Prints the table and writes it to
results/s3_cache.md.
"""

import argparse
import concurrent.futures
import os
import shutil
import tempfile
import time

from bench import backend as backend_bench
from bench import fio as fio_mod
from bench import results
from ovs_daemon.devcluster import cluster as cluster_mod
from ovs_daemon.engine import records

MiB = 1 << 20
RANDREAD = ['--rw=randread', '--bs=4k', '--iodepth=16']


def fio_once(uri, options, size_mib, workdir):
    """One pass of fio over the volume (no time limit); returns MiB/s."""
    return fio_mod.mib_s(fio_mod.run_job(uri, size_mib, options, workdir, name='once'))


def write_volume(cluster, name, size_mib, workdir):
    cluster.client().create_volume(name, size_mib * MiB)
    uri = cluster.nbd_uri('r1', name)
    fio_once(uri, ['--rw=write', '--bs=1M', '--iodepth=4', '--end_fsync=1'], size_mib, workdir)
    return uri


def cpu_seconds(pid):
    """User and system CPU seconds process ``pid`` has used so far."""
    with open('/proc/%d/stat' % pid) as stat:
        fields = stat.read().rsplit(')', 1)[1].split()
    tick = os.sysconf('SC_CLK_TCK')
    return int(fields[11]) / tick, int(fields[12]) / tick


def moto_server_pid():
    """The pid of moto's server if this process started it, else None."""
    for entry in os.listdir('/proc'):
        try:
            with open('/proc/%s/stat' % entry) as stat:
                parent = int(stat.read().rsplit(')', 1)[1].split()[1])
            with open('/proc/%s/cmdline' % entry, 'rb') as cmdline:
                command = cmdline.read()
        except (OSError, ValueError):
            continue
        if parent == os.getpid() and b'ovs_daemon.devcluster.s3_server' in command:
            return int(entry)
    return None


def cpu_during(pids, fn, *args):
    """``fn(*args)`` and the ``(user, system)`` seconds each of ``pids``
    (None: left out) used meanwhile."""
    pids = [pid for pid in pids if pid]
    before = [cpu_seconds(pid) for pid in pids]
    result = fn(*args)
    used = [tuple(b - a for a, b in zip(start, cpu_seconds(pid)))
            for pid, start in zip(pids, before)]
    return result, used


def get_bandwidth(backend, namespace, in_flight):
    """MiB/s of whole-object GETs of the volume's containers."""
    names = backend.list(namespace, records.CONTAINER_PREFIX)
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(in_flight) as pool:
        total = sum(pool.map(lambda n: len(backend.get(namespace, n)), names))
    return total / MiB / (time.monotonic() - start)


def random_reads(local, s3, args, workdir):
    """4 KiB random reads on s3 cold, then cached, beside local."""
    size = args.working_set_mib
    targets = [('local', write_volume(local, 'ws', size, workdir)),
               ('s3', write_volume(s3, 'ws', size, workdir))]
    cold = fio_mod.fio(targets[1][1], RANDREAD, args.runtime, size, workdir)
    fio_once(targets[1][1], ['--rw=read', '--bs=1M', '--iodepth=4'], size, workdir)
    warm = {'local': [], 's3': []}
    for _ in range(args.rounds):
        for name, uri in targets:
            warm[name].append(fio_mod.fio(uri, RANDREAD, args.runtime, size, workdir))
    local_iops = fio_mod.median(warm['local'], 'iops')
    s3_iops = fio_mod.median(warm['s3'], 'iops')
    return [
        ('4 KiB random read QD16, %d MiB working set, local' % size,
         '%.0f IOPS' % local_iops),
        ('the same on s3, cold cache', '%.0f IOPS' % cold['iops']),
        ('the same on s3, working set in the cache', '%.0f IOPS (%.2fx local)'
         % (s3_iops, s3_iops / local_iops)),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--working-set-mib', type=int, default=256)
    parser.add_argument('--cold-mib', type=int, default=1024)
    parser.add_argument('--cache-mib', type=int, default=2048)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--runtime', type=int, default=5, help='seconds per fio run')
    parser.add_argument('--cold-only', action='store_true',
                        help='only the cold sequential read and the GET bandwidth')
    parser.add_argument('--workdir')
    parser.add_argument('--results', default='results/s3_cache.md')
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix='ovs-bench-', dir=args.workdir)
    rows = []
    local = cluster_mod.Cluster(os.path.join(workdir, 'vpool-local'))
    s3 = cluster_mod.Cluster(os.path.join(workdir, 'vpool-s3'))
    try:
        with backend_bench.s3_place(workdir) as (place, where):
            if not args.cold_only:
                local.up(routers=1)
            s3.up(routers=1, options={
                'backend': backend_bench.router_backend_options(place),
                'engine': {'read_cache_path': os.path.join(workdir, 'cache'),
                           'read_cache_mib': args.cache_mib}})
            if not args.cold_only:
                rows += random_reads(local, s3, args, workdir)
            uri = write_volume(s3, 'cold', args.cold_mib, workdir)
            s3.client().collect('cold')   # nothing of it in the cache, all committed
            seq, cpu = cpu_during(
                [s3.router('r1')['process']['pid'], moto_server_pid()], fio_once,
                uri, ['--rw=read', '--bs=1M', '--iodepth=4'], args.cold_mib, workdir)
            backend = place.backend()
            one = get_bandwidth(backend, 'cold', 1)
            four = get_bandwidth(backend, 'cold', 4)
            rows += [
                ('s3: cold sequential read of %d MiB through the router, 1 MiB QD4'
                 % args.cold_mib, '%.0f MiB/s (%.2fx one GET stream, %.2fx four)'
                 % (seq, seq / one, seq / four)),
                ("s3 (%s): the store's own GET bandwidth, whole 8 MiB objects, 1 / 4 in flight"
                 % where, '%.0f / %.0f MiB/s' % (one, four)),
                ('CPU during the cold read (user + system): the router%s'
                 % (' / moto' if len(cpu) > 1 else ''),
                 ' / '.join('%.2f + %.2f s' % used for used in cpu)),
            ]
            metrics = s3.client().metrics()
            if isinstance(metrics, bytes):
                metrics = metrics.decode()
            rows.append(('s3 router read cache counters', ', '.join(
                line for line in metrics.splitlines()
                if line.startswith('ovs_router_read_cache_') and 'created' not in line)))
    finally:
        for cluster in (local, s3):
            cluster.down()
        shutil.rmtree(workdir, ignore_errors=True)
    results.publish('\n'.join(results.table(('figure', 'value'), rows)), args.results)


if __name__ == '__main__':
    main()
