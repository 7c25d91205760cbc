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

"""Benchmark: what write-through costs a multiattach volume.

    .venv/bin/python -m bench.multiattach [--rounds 3] [--runtime 5]

Real processes: ZooKeeper, one router and an edge. Two volumes of the same
size, one single-attach (write-back: the router acknowledges a write once
it is in its buffer) and one multiattach (write-through: acknowledged once
a commit to the backend covers it, concurrent writes sharing a commit).
fio's nbd engine writes 4 KiB blocks at random at queue depth 16 through
the edge to each in turn, for --rounds rounds (medians), and also at queue
depth 1. Prints a table and writes it to results/multiattach.md.
"""

import argparse
import os
import shutil
import tempfile

from bench import fio as fio_mod
from bench import results
from ovs_daemon.api import edge_client
from ovs_daemon.devcluster import cluster as cluster_mod

MiB = 1 << 20
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOADS = [('4k randwrite qd16', ['--rw=randwrite', '--bs=4k', '--iodepth=16']),
             ('4k randwrite qd1', ['--rw=randwrite', '--bs=4k', '--iodepth=1'])]
VOLUMES = [('single-attach', False), ('multiattach', True)]


def attach(cluster, edge, name, size_mib, multiattach):
    api = cluster.client()
    api.create_volume(name, size_mib * MiB, multiattach=multiattach)
    token = api.create_attachment(name, 'hv', multiattach=multiattach)['token']
    socket_path = edge.attach(name, cluster.state['vpool'], token)['socket']
    return 'nbd+unix:///%s?socket=%s' % (name, socket_path)


def measure(cluster, edge, args, workdir):
    uris = {label: attach(cluster, edge, 'bench-%s' % label, args.size_mib, multiattach)
            for label, multiattach in VOLUMES}
    return fio_mod.alternate([(label, uris[label]) for label, _ in VOLUMES], args.rounds,
                             args.runtime, args.size_mib, workdir, workloads=WORKLOADS)


def report(found, args):
    lines = ['| workload (through the edge, %d rounds of %d s) | single-attach | multiattach '
             '(write-through) | ratio |' % (args.rounds, args.runtime),
             '|---|---|---|---|']
    for workload, _ in WORKLOADS:
        single = fio_mod.median(found[workload, 'single-attach'], 'iops')
        multi = fio_mod.median(found[workload, 'multiattach'], 'iops')
        lines.append('| %s | %.0f IOPS | %.0f IOPS | %.2fx |' % (
            workload, single, multi, multi / single))
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    fio_mod.add_arguments(parser, size_mib=256)
    parser.add_argument('--results', default=os.path.join(REPO, 'results', 'multiattach.md'))
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix='multiattach-bench-')
    cluster = cluster_mod.Cluster(os.path.join(workdir, 'vpool'))
    try:
        print('starting ZooKeeper, a router and an edge ...', flush=True)
        cluster.up(routers=1)
        edge = edge_client.EdgeControlClient(cluster.add_edge('hv')['control'])
        found = measure(cluster, edge, args, workdir)
    finally:
        cluster.down()
        shutil.rmtree(workdir, ignore_errors=True)
    results.publish(report(found, args), args.results)


if __name__ == '__main__':
    main()
