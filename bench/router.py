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

"""Benchmark: storage routers of a local vPool.

    .venv/bin/python -m bench.router [--runtime 5] [--rounds 3] [--steal-gib 1]

Measures, on real processes (ZooKeeper, two routers, the local backend):
  - planned handover: time of a `migrate` call moving a volume between the
    two routers with 16 MiB unflushed, and until the new owner serves a read;
  - steal after a kill -9: with --steal-gib GiB written since the last
    checkpoint (checkpoints are pushed out of the way), from SIGKILL of the
    owner until the other router serves a read, split into the failover
    `acquire` call and the first read;
  - fio's nbd engine, 4 KiB random read/write at queue depth 16 and 1 MiB
    sequential write, directly against a router and against `nbdkit memory`
    in the same run, alternating for --rounds rounds (medians), as a ratio.
Prints a table and writes it to results/router.md. Not a test: figures
depend on the machine; compare ratios from one run.
"""

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time

from bench import fio as fio_mod
from bench import results
from ovs_daemon.devcluster import cluster as cluster_mod
from ovs_daemon.devcluster import sockets
from ovs_daemon.nbd import client as nbd_client

MiB = 1 << 20
GiB = 1 << 30
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


async def _connect(cluster, router_id, volume):
    host, _, port = cluster.router(router_id)['nbd'].rpartition(':')
    return await nbd_client.NBDClient.connect_tcp(host, int(port),
                                                  cluster.session_export(volume), timeout=30)


def write_sequential(cluster, router_id, volume, size, flush_every=64 * MiB, flush_at_end=True):
    async def write():
        nbd = await _connect(cluster, router_id, volume)
        chunk = os.urandom(MiB)
        for offset in range(0, size, MiB):
            await nbd.write(offset, chunk)
            if (offset + MiB) % flush_every == 0 and (flush_at_end or offset + MiB < size):
                await nbd.flush()
        await nbd.close()
    asyncio.run(write())


def first_read(cluster, router_id, volume):
    async def read():
        nbd = await _connect(cluster, router_id, volume)
        await nbd.read(0, 4096)
        await nbd.close()
    asyncio.run(read())


def bench_handover(cluster, rounds):
    api = cluster.client()
    api.create_volume('handover', GiB, router='r1')
    calls, served = [], []
    owner = 'r1'
    for _ in range(rounds):
        write_sequential(cluster, owner, 'handover', 16 * MiB, flush_at_end=False)
        target = 'r2' if owner == 'r1' else 'r1'
        started = time.perf_counter()
        api.migrate('handover', target)
        calls.append(time.perf_counter() - started)
        first_read(cluster, target, 'handover')
        served.append(time.perf_counter() - started)
        owner = target
    return calls, served


def bench_steal(cluster, gib):
    api = cluster.client()
    api.create_volume('steal', gib * GiB + GiB, router='r1')
    started = time.perf_counter()
    # Flushed every 64 MiB: 16 log records per GiB, none checkpointed.
    write_sequential(cluster, 'r1', 'steal', gib * GiB)
    written = time.perf_counter() - started
    cluster.kill_router('r1')
    killed = time.perf_counter()
    location = cluster.client('r2').acquire('steal', 'failover')
    acquired = time.perf_counter()
    first_read(cluster, 'r2', 'steal')
    done = time.perf_counter()
    assert location['owner'] == 'r2'
    return {'write_s': written, 'acquire_s': acquired - killed, 'served_s': done - killed,
            'epoch': location['epoch']}


def bench_fio(cluster, args, workdir):
    api = cluster.client()
    api.create_volume('fio', args.size_mib * MiB, router='r2')
    nbdkit_port = sockets.free_port()
    targets = [('router r2', cluster.nbd_uri('r2', 'fio', ttl=86400)),
               ('nbdkit memory', 'nbd://127.0.0.1:%d/' % nbdkit_port)]
    with fio_mod.nbdkit_memory(nbdkit_port, args.size_mib) as nbdkit:
        fio_mod.wait_for_port(nbdkit_port, nbdkit)
        return fio_mod.alternate(targets, args.rounds, args.runtime, args.size_mib, workdir)


def report(handover, steal, fio_results, args):
    calls, served = handover
    rows = [
        ('planned handover, migrate call (16 MiB unflushed), median / max of %d'
         % len(calls), '%.1f / %.1f ms' % (1000 * statistics.median(calls), 1000 * max(calls))),
        ('planned handover until the new owner serves a read, median / max',
         '%.1f / %.1f ms' % (1000 * statistics.median(served), 1000 * max(served))),
        ('steal after kill -9, %d GiB since the last checkpoint: failover acquire'
         % args.steal_gib, '%.1f ms' % (1000 * steal['acquire_s'])),
        ('steal after kill -9: until the new owner serves a read',
         '%.1f ms (epoch %d)' % (1000 * steal['served_s'], steal['epoch'])),
    ]
    lines = results.table(('figure', 'value'), rows)
    lines += ['', '| workload | router IOPS | router MiB/s | nbdkit memory IOPS | '
              'nbdkit MiB/s | ratio |', '|---|---|---|---|---|---|']
    for workload, _ in fio_mod.WORKLOADS:
        ours, base = fio_results[workload, 'router r2'], fio_results[workload, 'nbdkit memory']
        lines.append('| %s | %.0f | %.1f | %.0f | %.1f | %.2fx |' % (
            workload, fio_mod.median(ours, 'iops'), fio_mod.median(ours, 'mib_s'),
            fio_mod.median(base, 'iops'), fio_mod.median(base, 'mib_s'),
            fio_mod.median(ours, 'iops') / fio_mod.median(base, 'iops')))
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--runtime', type=int, default=5, help='seconds per fio run')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--size-mib', type=int, default=1024, help='fio target size')
    parser.add_argument('--handovers', type=int, default=10)
    parser.add_argument('--steal-gib', type=int, default=1)
    parser.add_argument('--results', default=os.path.join(REPO, 'results', 'router.md'))
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix='router-bench-')
    cluster = cluster_mod.Cluster(os.path.join(workdir, 'vpool'))
    try:
        print('starting ZooKeeper and 2 routers ...', flush=True)
        cluster.up(routers=2, options={'engine': {'checkpoint_every_mib': 1 << 20,
                                                  'checkpoint_every_records': 1 << 20}})
        print('fio against a router and nbdkit memory ...', flush=True)
        fio_results = bench_fio(cluster, args, workdir)
        print('planned handovers ...', flush=True)
        handover = bench_handover(cluster, args.handovers)
        print('writing %d GiB, then kill -9 of the owner and steal ...' % args.steal_gib,
              flush=True)
        steal = bench_steal(cluster, args.steal_gib)
    finally:
        cluster.down()
        shutil.rmtree(workdir, ignore_errors=True)
    text = report(handover, steal, fio_results, args)
    results.publish(text, args.results)


if __name__ == '__main__':
    main()
