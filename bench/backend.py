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

"""Benchmark: the volume engine on the s3 backend next to local, in one run
(not a test).

    .venv/bin/python -m bench.backend [--data-mib 256] [--ops 5000] [--rounds 2]

The s3 store is moto's S3 server, started here in a process of its own and
stopped by its PID, or the real store named by OVS_TEST_S3_ENDPOINT and
OVS_TEST_S3_BUCKET (see tests/unit/s3_store.py). Single-threaded calls into
the engine; each figure is measured on local, then on s3. Then fio's nbd
engine (4 KiB random read/write at queue depth 16, 1 MiB sequential write)
straight to a router on each backend, alternating (medians). Prints a table
and writes it to results/backend.md. moto keeps objects in memory and
answers on loopback: its figures show the cost of the protocol and of the
engine's request pattern, not of a real store's disks and network.
"""

import argparse
import contextlib
import os
import random
import shutil
import statistics
import tempfile
import time

from bench import engine as engine_bench
from bench import fio as fio_mod
from bench import results
from ovs_daemon.backends import base
from ovs_daemon.backends import local
from ovs_daemon.devcluster import cluster as cluster_mod
from ovs_daemon.engine import store as store_mod
from tests.unit import s3_store

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


def key(epoch):
    return base.OwnerKey.generate(epoch)


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_ms(fn, count):
    times = [timed(fn) for _ in range(count)]
    return '%.2f ms' % (statistics.median(times) * 1000)


def engine_figures(backend, data_mib, ops):
    """{figure: value} of one backend."""
    store = store_mod.VolumeStore(backend)
    figures = {}
    random.seed(1)

    vol = store.create('rand', GiB, key(1))
    holder = {}
    t = timed(lambda: holder.update(written=engine_bench.random_writes(
        vol, GiB, ops, flush_every=256)))
    figures['4 KiB random write, flush every 256'] = '%.0f IOPS' % (ops / t)
    t = timed(lambda: engine_bench.random_reads(vol, holder['written'], ops))
    figures['4 KiB random read of written blocks'] = '%.0f IOPS' % (ops / t)

    seq = store.create('seq', GiB, key(1))
    total = data_mib * MiB
    t = timed(lambda: engine_bench.sequential_writes(seq, total))
    figures['1 MiB sequential write, flush every 64 MiB'] = \
        '%.0f MiB/s' % (data_mib / t)
    t = timed(lambda: engine_bench.sequential_reads(seq, total))
    figures['1 MiB sequential read'] = '%.0f MiB/s' % (data_mib / t)

    seq.checkpoint()
    t = timed(lambda: store.open('seq', key(2)))
    figures['restart after %d MiB, all checkpointed' % data_mib] = \
        '%.1f ms' % (t * 1000)

    page = os.urandom(4 * KiB)

    def write_and_flush():
        vol.write(0, page)
        vol.flush()
    figures['flush of one 4 KiB write (container + commit), median'] = \
        median_ms(write_and_flush, 200)

    epochs = iter(range(10, 10 ** 6))
    figures['claim (takeover), median'] = median_ms(
        lambda: backend.claim('rand', key(next(epochs))), 50)

    t = timed(lambda: store.create('meta', GiB, key(1)))
    figures['create 1 GiB volume'] = '%.1f ms' % (t * 1000)
    meta = store.open('meta', key(2))
    meta.write(GiB - MiB, os.urandom(MiB))
    t = timed(lambda: meta.create_snapshot('s'))
    figures['snapshot 1 GiB volume (1 MiB written)'] = '%.1f ms' % (t * 1000)
    t = timed(lambda: store.clone('metac', 'meta', 's', key(1)))
    figures['clone 1 GiB volume'] = '%.1f ms' % (t * 1000)
    return figures


@contextlib.contextmanager
def s3_place(workdir):
    """``(place, where)``: a fresh prefix on moto's server (started here)
    or on the store OVS_TEST_S3_* names; removed afterwards."""
    place = s3_store.configured_place()
    server = None
    if place is None:
        server = s3_store.MotoServer(os.path.join(workdir, 'moto.log'))
    try:
        if server:
            server.wait_ready()
            place = server.place()
        place = place.under(s3_store.fresh_prefix())
        try:
            yield place, 'moto' if server else place.endpoint_url or 'aws'
        finally:
            s3_store.remove_prefix(place)
    finally:
        if server:
            server.stop()


def router_backend_options(place):
    """A router's [backend] section for ``place``."""
    access, secret = place.credentials or (None, None)
    options = {'backend': 's3', 's3_bucket': place.bucket, 's3_prefix': place.prefix,
               's3_endpoint_url': place.endpoint_url, 's3_region': place.region,
               's3_access_key': access, 's3_secret_key': secret}
    return {k: v for k, v in options.items() if v is not None}


def router_figures(place, args, workdir):
    """fio straight to one router on local and one on s3, alternating."""
    clusters = {'local': cluster_mod.Cluster(os.path.join(workdir, 'vpool-local')),
                's3': cluster_mod.Cluster(os.path.join(workdir, 'vpool-s3'))}
    try:
        clusters['local'].up(routers=1)
        clusters['s3'].up(routers=1,
                          options={'backend': router_backend_options(place)})
        targets = []
        for name, cluster in clusters.items():
            cluster.client().create_volume('fio', args.fio_size_mib * MiB)
            targets.append((name, cluster.nbd_uri('r1', 'fio', ttl=86400)))
        return fio_mod.alternate(targets, args.rounds, args.runtime, args.fio_size_mib,
                                 workdir)
    finally:
        for cluster in clusters.values():
            cluster.down()


def router_rows(fio_results):
    rows = []
    for workload, _ in fio_mod.WORKLOADS:
        for unit in ('iops', 'mib_s'):
            rows.append(('router, fio %s (%s)' % (workload, unit.replace('mib_s', 'MiB/s')),
                         '%.0f' % fio_mod.median(fio_results[workload, 'local'], unit),
                         '%.0f' % fio_mod.median(fio_results[workload, 's3'], unit)))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data-mib', type=int, default=256)
    parser.add_argument('--ops', type=int, default=5000)
    parser.add_argument('--rounds', type=int, default=2, help='fio rounds (medians)')
    parser.add_argument('--runtime', type=int, default=3, help='seconds per fio run')
    parser.add_argument('--fio-size-mib', type=int, default=256)
    parser.add_argument('--workdir')
    parser.add_argument('--results', default='results/backend.md')
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix='ovs-bench-', dir=args.workdir)
    try:
        local_figures = engine_figures(
            local.LocalBackend(os.path.join(workdir, 'local')),
            args.data_mib, args.ops)
        with s3_place(workdir) as (place, where):
            s3 = engine_figures(place.backend(), args.data_mib, args.ops)
        with s3_place(workdir) as (place, _):
            rows = router_rows(router_figures(place, args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    figures = [(name, value, s3[name]) for name, value in local_figures.items()] + rows
    lines = results.table(('figure', 'local', 's3 (%s)' % where), figures)
    results.publish('\n'.join(lines), args.results)


if __name__ == '__main__':
    main()
