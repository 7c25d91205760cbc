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

"""Benchmark: many volumes on one vPool (not a test).

    .venv/bin/python -m bench.scale [--volumes 250,500,1000] [--idle-seconds 10]

ZooKeeper and three routers on the local backend, one edge, all on this
machine; a fresh cluster for each number of volumes given. In order:

1. create the volumes through r1's API (placed on the least loaded
   router): time per create, first and last tenth (a create that reads
   every record grows with the volumes there are);
2. idle, no edge: memory (RSS) and CPU of the routers per volume served,
   ZooKeeper's watches and znodes per volume;
3. one collection round of a few idle volumes of r1 (what each volume
   costs the collector every collect_interval);
4. every volume moved to r1 (handovers, eight at a time), then kill -9 of
   r1 owning all of them and a start again, no edge attached: how long
   until r1 serves every volume again, and how much of that went to
   waiting for its previous ZooKeeper session to expire; then the volumes
   spread over the three routers again (a third each);
5. attach every volume through one edge: time per attach, first and last
   tenth; the edge's memory per volume; CPU of the edge and the routers
   and ZooKeeper's packets while every volume is idle;
6. kill -9 of the router owning the most volumes (a third): from the kill,
   a 4 KiB read of each of its volumes through the edge, all at once: when
   the first, the median and the last completed. Every read waits for its
   volume's failover, so the last is when every volume serves again and
   the longest pause of any one volume.

Prints a table for each number of volumes and, with several, one of the
figures per volume side by side (a figure that grows worse than linearly
grows along its row); writes them all to results/scale.md.
"""

import argparse
import asyncio
import collections
import concurrent.futures
import os
import shutil
import statistics
import tempfile
import time

from bench import results
from ovs_daemon.api import edge_client
from ovs_daemon.devcluster import cluster as cluster_mod
from ovs_daemon.devcluster import metrics_page
from ovs_daemon.devcluster import process as process_mod
from ovs_daemon.devcluster import zookeeper
from ovs_daemon.nbd import client as nbd_client

MiB = 1 << 20
TICKS = os.sysconf('SC_CLK_TCK')


def cpu_seconds(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rpartition(')')[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def zk_stats(cluster):
    host, _, port = cluster.state['zookeeper'].split(',')[0].rpartition(':')
    text = zookeeper.four_letter_word(host, int(port), 'mntr')
    stats = {}
    for line in text.splitlines():
        key, _, value = line.partition('\t')
        try:
            stats[key] = float(value)
        except ValueError:
            continue
    return stats


def served_count(cluster, router_id):
    return int(metrics_page.value(metrics_page.samples(cluster.client(router_id).metrics()),
                                  'ovs_router_volumes_served'))


def tenths(durations):
    tenth = max(1, len(durations) // 10)
    return statistics.median(durations[:tenth]), statistics.median(durations[-tenth:])


def timed_each(names, action):
    durations = []
    for name in names:
        start = time.monotonic()
        action(name)
        durations.append(time.monotonic() - start)
    return durations


def pids(cluster):
    return {rid: cluster.router(rid)['pid'] for rid in cluster.router_ids()}


def cpu_while_idle(pid_by_name, cluster, seconds):
    """CPU share of each process and ZooKeeper packets a second over ``seconds``."""
    before = {name: cpu_seconds(pid) for name, pid in pid_by_name.items()}
    zk_before = zk_stats(cluster)
    time.sleep(seconds)
    zk_after = zk_stats(cluster)
    cpu = {name: (cpu_seconds(pid) - before[name]) / seconds
           for name, pid in pid_by_name.items()}
    packets = (zk_after['zk_packets_received'] - zk_before['zk_packets_received']) / seconds
    return cpu, packets


def owners(cluster):
    return {record['name']: record['owner'] for record in cluster.client().volumes()}


def started_at(cluster, router_id):
    """When the registered ``router_id`` started (its ZooKeeper node), or None."""
    for info in cluster.client().routers():
        if info['id'] == router_id:
            return info['started']
    return None


def restart_router(cluster, router_id, owned):
    before = started_at(cluster, router_id)
    cluster.kill_router(router_id)
    start = time.monotonic()
    cluster.start_router(router_id)
    api_up = time.monotonic()
    registered = None
    while True:
        if registered is None and started_at(cluster, router_id) not in (None, before):
            registered = time.monotonic()
        if registered is not None and served_count(cluster, router_id) >= owned:
            break
        if time.monotonic() - start > 600:
            raise RuntimeError('router %s did not take back its %d volumes in 600 s'
                               % (router_id, owned))
        time.sleep(0.05)
    done = time.monotonic()
    return api_up - start, registered - start, done - registered


async def read_each(sockets):
    """Seconds from now until a 4 KiB read of each volume completed."""
    start = time.monotonic()

    async def one(name, path):
        client = await nbd_client.NBDClient.connect_unix(path, name, timeout=120)
        try:
            await asyncio.wait_for(client.read(0, 4096), 120)
        finally:
            await client.close()
        return time.monotonic() - start

    return sorted(await asyncio.gather(*(one(n, p) for n, p in sockets.items())))


def move_all(cluster, moves, threads=8):
    """Migrate each ``(volume, router)`` of ``moves``, ``threads`` at a time;
    returns the seconds it took."""
    clients = {rid: cluster.client(rid, timeout=120) for rid in cluster.router_ids()}
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda move: clients[move[1]].migrate(*move), moves))
    return time.monotonic() - start


class Figures:
    """The rows of one run: ``(figure, value, per volume, short name)``;
    the per-volume cell is what the table across runs compares, under the
    short name."""

    def __init__(self):
        self.rows = []

    def add(self, figure, value, per_volume='', short=None):
        self.rows.append((figure, value, per_volume, short or figure))
        print('%s: %s%s' % (figure, value, ' [%s]' % per_volume if per_volume else ''),
              flush=True)


def load_of(cluster):
    owner = owners(cluster)
    return owner, {rid: sum(1 for o in owner.values() if o == rid)
                   for rid in cluster.router_ids()}


def run(count, args, figures):
    workdir = tempfile.mkdtemp(prefix='ovs-bench-', dir=args.workdir)
    cluster = cluster_mod.Cluster(os.path.join(workdir, 'vpool'))
    names = ['v%05d' % i for i in range(count)]
    add = figures.add
    started = time.monotonic()
    try:
        cluster.up(routers=3)
        api = cluster.client()
        rss_empty = {rid: process_mod.rss_bytes(pid) for rid, pid in pids(cluster).items()}
        zk_empty = zk_stats(cluster)

        created = timed_each(names, lambda n: api.create_volume(n, args.size_mib * MiB))
        first, last = tenths(created)
        add('create the volumes one after the other (placed on the least loaded router)',
            '%.1f s; per create: first tenth %.1f ms, last tenth %.1f ms'
            % (sum(created), first * 1000, last * 1000),
            '%.1f ms' % (sum(created) * 1000 / count), 'create')

        owner, load = load_of(cluster)
        rss = {rid: process_mod.rss_bytes(pid) for rid, pid in pids(cluster).items()}
        add('router memory per idle volume served, no edge (RSS growth / volumes)',
            ', '.join('%s %.1f KiB (%d volumes)' % (rid, (rss[rid] - rss_empty[rid]) / load[rid]
                                                    / 1024, load[rid])
                      for rid in sorted(load) if load[rid]),
            '%.1f KiB' % (sum(rss[rid] - rss_empty[rid] for rid in load) / count / 1024),
            'router memory per idle volume, no edge (the three)')
        zk = zk_stats(cluster)
        add('ZooKeeper per volume: watches, znodes, approx. data bytes',
            '%.2f, %.2f, %.0f' % ((zk['zk_watch_count'] - zk_empty['zk_watch_count']) / count,
                                  (zk['zk_znode_count'] - zk_empty['zk_znode_count']) / count,
                                  (zk['zk_approximate_data_size']
                                   - zk_empty['zk_approximate_data_size']) / count))
        cpu, packets = cpu_while_idle(pids(cluster), cluster, args.idle_seconds)
        add('idle, no edge: router CPU, ZooKeeper packets received',
            '%s; %.1f packets/s' % (', '.join('%s %.1f %%' % (rid, 100 * cpu[rid])
                                               for rid in sorted(cpu)), packets),
            '%.3f ms CPU/s' % (sum(cpu.values()) * 1000 / count),
            'idle routers\' CPU, no edge (the three)')

        sample = [n for n in names if owner[n] == 'r1'][:args.collect_sample]
        collected = timed_each(sample, api.collect)
        per = statistics.median(collected)
        add('one collection round of an idle volume (`ovs-admin collect`), median of %d'
            % len(sample), '%.1f ms; all %d of r1: %.1f s'
            % (per * 1000, load['r1'], per * load['r1']), '%.1f ms' % (per * 1000),
            'collection round of an idle volume')

        moves = [(n, 'r1') for n in names if owner[n] != 'r1']
        moved = move_all(cluster, moves)
        add('move volumes to r1 (migrate: a handover each, eight at a time)',
            '%d in %.1f s' % (len(moves), moved), '%.1f ms' % (moved * 1000 / len(moves)),
            'migrate (handover), eight at a time')
        api_up, registered, adopted = restart_router(cluster, 'r1', count)
        add('kill -9 and start of r1 owning every volume (no edge): API up, registered '
            '(the old session expired), then all served',
            'API up %.1f s, registered %.1f s after the start, all %d volumes served %.2f s '
            'later' % (api_up, registered, count, adopted),
            '%.1f ms' % (adopted * 1000 / count),
            'restart of a router owning every volume: all served again after it registered')
        move_all(cluster, [(n, 'r%d' % (1 + i % 3)) for i, n in enumerate(names) if i % 3])

        edge = cluster.add_edge('edge')
        control = edge_client.EdgeControlClient(edge['control'], timeout=120)
        edge_pid = cluster.edge('edge')['pid']
        rss_edge_empty = process_mod.rss_bytes(edge_pid)
        rss_unattached = sum(process_mod.rss_bytes(pid) for pid in pids(cluster).values())
        sockets = {}

        def attach(name):
            token = api.create_attachment(name, 'hv')['token']
            sockets[name] = control.attach(name, cluster.state['vpool'], token)['socket']

        attached = timed_each(names, attach)
        first, last = tenths(attached)
        add('attach every volume through one edge, one after the other',
            '%.1f s; per attach: first tenth %.1f ms, last tenth %.1f ms'
            % (sum(attached), first * 1000, last * 1000),
            '%.1f ms' % (sum(attached) * 1000 / count), 'attach through the edge')
        edge_growth = (process_mod.rss_bytes(edge_pid) - rss_edge_empty) / count / 1024
        add('edge memory per attached idle volume (RSS growth / volumes)',
            '%.1f KiB' % edge_growth, '%.1f KiB' % edge_growth,
            'edge memory per attached idle volume')
        routers_growth = (sum(process_mod.rss_bytes(pid) for pid in pids(cluster).values())
                          - rss_unattached) / count / 1024
        add('routers\' memory per attached idle volume (RSS growth of the three / volumes)',
            '%.1f KiB' % routers_growth, '%.1f KiB' % routers_growth,
            'routers\' memory per attached idle volume (the three)')
        processes = dict(pids(cluster), edge=edge_pid)
        cpu, packets = cpu_while_idle(processes, cluster, args.idle_seconds)
        add('idle, every volume attached: CPU, ZooKeeper packets received',
            '%s; %.1f packets/s' % (', '.join('%s %.1f %%' % (name, 100 * cpu[name])
                                               for name in sorted(cpu)), packets),
            '%.3f ms CPU/s' % (sum(cpu.values()) * 1000 / count),
            'idle CPU, every volume attached (edge and routers)')

        owner, load = load_of(cluster)
        victim = max(load, key=load.get)
        victims = {n: sockets[n] for n in names if owner[n] == victim}
        cluster.kill_router(victim)
        done = asyncio.run(read_each(victims))
        add('kill -9 of the router owning a third: a read of each of its volumes through '
            'the edge completed, first / median / last (= every volume serves again, the '
            'longest pause)',
            '%s owning %d: %.2f / %.2f / %.2f s after the kill'
            % (victim, len(victims), done[0], statistics.median(done), done[-1]),
            '%.1f ms' % (done[-1] * 1000 / len(victims)),
            'kill -9 of a router owning a third: every volume served again (the longest pause) '
            '/ its volumes')
        after = owners(cluster)
        add('where its volumes went', ', '.join(
            '%s %d' % (rid, sum(1 for n in victims if after[n] == rid))
            for rid in sorted(load) if rid != victim))
    except KeyboardInterrupt:
        add('stopped', 'interrupted (time limit) after %.0f s, during the step after the '
            'last row' % (time.monotonic() - started))
        raise
    finally:
        cluster.down()
        if args.keep:
            print('logs kept in %s' % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--volumes', default='1000',
                        help='numbers of volumes, comma-separated: a run for each')
    parser.add_argument('--size-mib', type=int, default=1024)
    parser.add_argument('--idle-seconds', type=float, default=10.0)
    parser.add_argument('--collect-sample', type=int, default=20,
                        help='volumes whose collection round is timed')
    parser.add_argument('--workdir')
    parser.add_argument('--keep', action='store_true',
                        help='keep the logs of the routers and the edge (in --workdir)')
    parser.add_argument('--results', default='results/scale.md')
    args = parser.parse_args()
    counts = [int(c) for c in args.volumes.split(',')]
    runs = {}
    try:
        for count in counts:
            runs[count] = Figures()
            run(count, args, runs[count])
    except KeyboardInterrupt:
        pass
    lines = []
    for count, figures in runs.items():
        lines += results.table(('figure (%d volumes)' % count, 'value'),
                               [row[:2] for row in figures.rows]) + ['']
    if len(runs) > 1:
        per_volume = collections.OrderedDict()
        for count, figures in runs.items():
            for _, _, cell, short in figures.rows:
                if cell:
                    per_volume.setdefault(short, {})[count] = cell
        lines += results.table(
            ('per volume',) + tuple('%d volumes' % count for count in runs),
            [(figure,) + tuple(cells.get(count, '') for count in runs)
             for figure, cells in per_volume.items()])
    results.publish('\n'.join(lines), args.results)


if __name__ == '__main__':
    main()
