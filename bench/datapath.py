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

"""Benchmark: the data path against C peers, every target in one run.

    .venv/bin/python -m bench.datapath [--rounds 3] [--runtime 5] [--no-s3]
        [--row seq-write ...] [--prefill] [--profile]

fio's nbd engine runs each row against each target in turn, for --rounds
rounds (medians), so load from elsewhere hits them alike:

targets
  - ``nbdkit memory`` (C, one hop, keeps nothing);
  - ``nbdkit nbd`` in front of another ``nbdkit memory`` (C, two hops: the
    shape of edge -> router);
  - ``nbdkit file`` on a file of this disk (C, one hop, durable at FLUSH);
  - a router with the local backend on this disk (one hop), and an edge in
    front of it (two hops);
  - the same two on the s3 backend (moto's server), unless --no-s3.
rows
  - 4 KiB random read/write at queue depth 16 (IOPS);
  - 1 MiB sequential write at queue depth 4 with a FLUSH every 64 writes
    (MiB/s);
  - 4 KiB random read/write at queue depth 1: read completion latency,
    p50 and p99.

``--prefill`` first writes every target whole (1 MiB writes, a FLUSH at the
end), so that the 4 KiB reads find flushed data from the first round on (a
router reads it from its backend, not from the blocks it holds unflushed);
without it, they do once the 1 MiB row has run.

Prints each figure with its ratio to the peer the targets in
docs/design.md ("Performance targets") name, next to that target; then
what the servers behind each target used in each row, from /proc: CPU
(cores busy, and CPU time per request) and the bytes they sent to the disk
per byte fio wrote. ``--profile`` then runs each row once more on each of
our targets under ``perf record``, and prints each process's top libraries
and functions by own time. Writes it all to results/datapath.md. Real processes: ZooKeeper, a
router and an edge per backend (no simulated network). Not a test: the
figures depend on the machine; compare ratios of one run.
"""

import argparse
import contextlib
import os
import shutil
import tempfile

from bench import fio as fio_mod
from bench import multiattach
from bench import perf_profile
from bench import results
from ovs_daemon import compiled
from ovs_daemon.api import edge_client
from ovs_daemon.devcluster import cluster as cluster_mod
from ovs_daemon.devcluster import sockets

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MiB = 1 << 20

RANDRW_QD16 = '4 KiB randrw QD16'
SEQ_WRITE = '1 MiB seq write QD4, FLUSH every 64 MiB'
RANDRW_QD1 = '4 KiB randrw QD1'
WORKLOADS = [
    (RANDRW_QD16, ['--rw=randrw', '--bs=4k', '--iodepth=16']),
    (SEQ_WRITE, ['--rw=write', '--bs=1M', '--iodepth=4', '--fsync=64']),
    (RANDRW_QD1, ['--rw=randrw', '--bs=4k', '--iodepth=1']),
]
# What --row calls each row.
ROW_NAMES = {'randrw-qd16': RANDRW_QD16, 'seq-write': SEQ_WRITE, 'randrw-qd1': RANDRW_QD1}

MEMORY = 'nbdkit memory'
CHAIN = 'nbdkit nbd -> nbdkit memory'
FILE = 'nbdkit file'
# The figure each row is judged by: (result key, unit, higher is better).
FIGURES = {RANDRW_QD16: [('iops', 'IOPS', True)],
           SEQ_WRITE: [('mib_s', 'MiB/s', True)],
           RANDRW_QD1: [('read_p50_us', 'us read p50', False),
                        ('read_p99_us', 'us read p99', False)]}
# (row, kind of target, result key) -> [(peer, target ratio)], from
# docs/design.md; a kind is 'router' (one hop) or 'edge' (two hops).
GOALS = {
    (RANDRW_QD16, 'router', 'iops'): [(MEMORY, 0.6)],
    (RANDRW_QD16, 'edge', 'iops'): [(MEMORY, 0.35), (CHAIN, 1.3)],
    (SEQ_WRITE, 'router', 'mib_s'): [(FILE, 0.9)],
    (SEQ_WRITE, 'edge', 'mib_s'): [(FILE, 0.8)],
    (RANDRW_QD1, 'edge', 'read_p50_us'): [(CHAIN, 1.3)],
    (RANDRW_QD1, 'edge', 'read_p99_us'): [(CHAIN, 1.6)],
}


@contextlib.contextmanager
def c_peers(size_mib, workdir):
    """The three C targets, serving; yields ``([(name, uri)], {name: PIDs
    of its servers})``."""
    names = (MEMORY, 'chained', CHAIN, FILE)
    ports = dict(zip(names, sockets.free_ports(len(names))))
    image = os.path.join(workdir, 'nbdkit-file.img')
    with open(image, 'wb') as f:
        f.truncate(size_mib * MiB)
    with contextlib.ExitStack() as stack:
        servers = {
            MEMORY: stack.enter_context(fio_mod.nbdkit_memory(ports[MEMORY], size_mib)),
            'chained': stack.enter_context(fio_mod.nbdkit_memory(ports['chained'], size_mib)),
            FILE: stack.enter_context(fio_mod.nbdkit(ports[FILE], 'file', image)),
        }
        fio_mod.wait_for_port(ports['chained'], servers['chained'])
        servers[CHAIN] = stack.enter_context(fio_mod.nbdkit(
            ports[CHAIN], 'nbd', 'hostname=127.0.0.1', 'port=%d' % ports['chained']))
        for name, server in servers.items():
            fio_mod.wait_for_port(ports[name], server)
        pids = {name: [server.pid] for name, server in servers.items()}
        pids[CHAIN].append(servers['chained'].pid)
        yield ([(name, 'nbd://127.0.0.1:%d/' % ports[name]) for name in (MEMORY, CHAIN, FILE)],
               {name: pids[name] for name in (MEMORY, CHAIN, FILE)})


def start_cluster(workdir, backend, stack):
    """ZooKeeper, one router (the collector every 10 s, so overwritten
    containers go while fio writes) and an edge; returns ``(cluster,
    edge control client)``."""
    cluster = cluster_mod.Cluster(os.path.join(workdir, 'vpool-%s' % backend))
    stack.callback(cluster.down)
    cluster.up(routers=1, s3={} if backend == 's3' else None,
               options={'router': {'collect_interval': 10}})
    edge = edge_client.EdgeControlClient(cluster.add_edge('hv')['control'])
    return cluster, edge


def ovs_targets(cluster, edge, backend, size_mib):
    """``([(name, uri)], {name: PIDs of its servers})``: a volume straight on
    the router, another through the edge."""
    router_volume = 'datapath-router'
    cluster.client().create_volume(router_volume, size_mib * MiB)
    router, through_edge = 'router (%s)' % backend, 'edge -> router (%s)' % backend
    router_pid = cluster.router('r1')['pid']
    return ([(router, cluster.nbd_uri('r1', router_volume, ttl=86400)),
             (through_edge, multiattach.attach(cluster, edge, 'datapath-edge', size_mib, False))],
            {router: [router_pid], through_edge: [cluster.edge('hv')['pid'], router_pid]})


def kind_of(target):
    if target.startswith('edge'):
        return 'edge'
    if target.startswith('router'):
        return 'router'
    return None


def report(found, targets, workloads, args):
    lines = ['fio nbd engine, %d rounds of %d s, medians, targets alternating '
             '(`python -m bench.datapath --rounds %d --runtime %d%s%s`)'
             % (args.rounds, args.runtime, args.rounds, args.runtime,
                ' --no-s3' if args.no_s3 else '',
                ''.join(' --row %s' % row for row in args.row or ())
                + (' --prefill' if args.prefill else '')),
             '', '| row | target | figure | ratio (goal) |', '|---|---|---|---|']
    for row, _ in workloads:
        for target in targets:
            for key, unit, _ in FIGURES[row]:
                value = fio_mod.median(found[row, target], key)
                ratios = []
                for peer, goal in GOALS.get((row, kind_of(target), key), []):
                    ratio = value / fio_mod.median(found[row, peer], key)
                    met = ratio >= goal if key in ('iops', 'mib_s') else ratio <= goal
                    ratios.append('%.2fx %s (%s %.2fx: %s)' % (
                        ratio, peer, '>=' if key in ('iops', 'mib_s') else '<=', goal,
                        'met' if met else 'NOT met'))
                lines.append('| %s | %s | %.0f %s | %s |' % (
                    row, target, value, unit, '; '.join(ratios)))
    return '\n'.join(lines)


def report_use(found, targets, workloads):
    """What each target's servers used in each row (medians of the rounds)."""
    rows = []
    for row, _ in workloads:
        for target in targets:
            rounds = found[row, target]
            written = ('%.2f' % fio_mod.median(rounds, 'written_per_byte')
                       if 'written_per_byte' in rounds[0] else '')
            rows.append((row, target, '%.2f' % fio_mod.median(rounds, 'cores'),
                         '%.0f us' % fio_mod.median(rounds, 'cpu_us_per_io'), written))
    return '\n'.join(
        ['What the servers of each target used (their processes together; medians):', '']
        + results.table(('row', 'target', 'CPU, cores', 'CPU per request',
                         'bytes to disk per byte written'), rows))


def profile(targets, servers, workloads, args, workdir):
    """One more fio run of each row on each of our targets, under perf:
    where each of its processes spent its CPU."""
    lines = ['Where our servers spend their CPU (one more %d s run of each row, '
             'perf at %d Hz, own time):' % (args.runtime, perf_profile.FREQUENCY)]
    for row, options in workloads:
        for target, uri in targets:
            kind = kind_of(target)
            if kind is None:
                continue
            roles = ('edge', 'router') if kind == 'edge' else ('router',)
            recordings = {role: os.path.join(workdir, '%s.perf' % role) for role in roles}
            with contextlib.ExitStack() as stack:
                for role, pid in zip(roles, servers[target]):
                    stack.enter_context(perf_profile.recording([pid], recordings[role]))
                fio_mod.fio(uri, options, args.runtime, args.size_mib, workdir)
            for role, recording in recordings.items():
                lines += ['', '%s, %s: the %s' % (row, target, role), '']
                lines += results.table(('library', 'share'), [
                    (name, '%.1f %%' % share)
                    for share, name in perf_profile.top(recording, 'dso')])
                lines += ['']
                lines += results.table(('library and function', 'share'), [
                    (name, '%.1f %%' % share)
                    for share, name in perf_profile.top(recording, 'dso,sym', limit=12)])
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    fio_mod.add_arguments(parser, size_mib=1024)
    parser.add_argument('--no-s3', action='store_true', help='leave out the s3 targets')
    parser.add_argument('--prefill', action='store_true',
                        help='write every target whole, flushed, before the rounds')
    parser.add_argument('--row', action='append', choices=sorted(ROW_NAMES),
                        help='run only this row (repeat for several); all rows by default')
    parser.add_argument('--profile', action='store_true',
                        help='after the rounds, profile our servers with perf in each row')
    parser.add_argument('--results', default=os.path.join(REPO, 'results', 'datapath.md'))
    args = parser.parse_args()
    rows = {ROW_NAMES[row] for row in args.row} if args.row else set(ROW_NAMES.values())
    workloads = [(row, options) for row, options in WORKLOADS if row in rows]
    workdir = tempfile.mkdtemp(prefix='datapath-bench-')
    try:
        with contextlib.ExitStack() as stack:
            print(compiled.summary(), flush=True)
            print('starting nbdkit, ZooKeeper, routers and edges ...', flush=True)
            targets, servers = stack.enter_context(c_peers(args.size_mib, workdir))
            for backend in ('local',) if args.no_s3 else ('local', 's3'):
                cluster, edge = start_cluster(workdir, backend, stack)
                ours, their_servers = ovs_targets(cluster, edge, backend, args.size_mib)
                targets += ours
                servers.update(their_servers)
            if args.prefill:
                print('filling every target ...', flush=True)
                for _, uri in targets:
                    fio_mod.fill(uri, args.size_mib, workdir)
            print('fio: %s' % ', '.join(name for name, _ in targets), flush=True)
            found = fio_mod.alternate(targets, args.rounds, args.runtime, args.size_mib,
                                      workdir, workloads=workloads, servers=servers)
            names = [name for name, _ in targets]
            text = '\n\n'.join([report(found, names, workloads, args),
                                 report_use(found, names, workloads)])
            if args.profile:
                print('profiling ...', flush=True)
                text += '\n\n' + profile(targets, servers, workloads, args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results.publish(text, args.results)


if __name__ == '__main__':
    main()
