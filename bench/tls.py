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

"""Benchmark: what TLS costs on the data path.

    flock /tmp/ovs-slow.lock .venv/bin/python -m bench.tls [--rounds 3] [--runtime 5]

One router on the local backend with a certificate that offers NBD TLS
without requiring it, so clear and TLS sessions reach the same router and
backend in the same run; fio's nbd engine (libnbd: ``nbd://`` and
``nbds://``, with the certificates where libnbd looks without a
``tls-certificates`` parameter, which fio's URIs may not carry:
``$HOME/.pki/libnbd``) runs 4 KiB random read/write at queue
depth 16 and 1 MiB sequential write at queue depth 4:
  - straight at the router, in clear and over TLS;
  - through two edges (fio on their unix sockets), one connecting to the
    router in clear, one with NBD_OPT_STARTTLS.
Targets alternate for --rounds rounds (medians). Prints a table and writes
it to results/tls.md. Not a test: compare the ratios of one run.
"""

import argparse
import contextlib
import os
import shutil
import tempfile

from bench import fio as fio_mod
from bench import results
from ovs_daemon.api import edge_client
from ovs_daemon.devcluster import cluster as cluster_mod

MiB = 1 << 20
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAIRS = [('router, clear', 'router, TLS'), ('edge -> router, clear', 'edge -> router, TLS')]


def attach(cluster, edge_name, volume, size_mib):
    """A new volume attached through edge ``edge_name``; its NBD URI there."""
    api = cluster.client()
    api.create_volume(volume, size_mib * MiB)
    token = api.create_attachment(volume, edge_name)['token']
    edge = edge_client.EdgeControlClient(cluster.edge(edge_name)['control'])
    socket_path = edge.attach(volume, cluster.state['vpool'], token)['socket']
    return 'nbd+unix:///%s?socket=%s' % (volume, socket_path)


def use_certificates(cluster, workdir):
    """Give libnbd (in fio) the cluster's client certificates in
    ``$HOME/.pki/libnbd``, HOME being a directory of this run."""
    home = os.path.join(workdir, 'home')
    os.makedirs(os.path.join(home, '.pki'))
    os.symlink(cluster.tls['dir'], os.path.join(home, '.pki', 'libnbd'))
    os.environ['HOME'] = home


def targets(cluster, size_mib):
    api = cluster.client()
    api.create_volume('direct', size_mib * MiB)
    tls_uri = cluster.nbd_uri('r1', 'direct', ttl=86400).partition('?')[0]
    clear_uri = tls_uri.replace('nbds://', 'nbd://')
    cluster.add_edge('clear', options={'ssl': {'nbd_tls': False}})
    cluster.add_edge('tls')
    return [('router, clear', clear_uri), ('router, TLS', tls_uri),
            ('edge -> router, clear', attach(cluster, 'clear', 'via-clear', size_mib)),
            ('edge -> router, TLS', attach(cluster, 'tls', 'via-tls', size_mib))]


def report(found, args):
    lines = ['fio nbd engine, %d rounds of %d s, medians, targets alternating '
             '(`python -m bench.tls --rounds %d --runtime %d --size-mib %d`)'
             % (args.rounds, args.runtime, args.rounds, args.runtime, args.size_mib), '',
             '| workload | path | clear | TLS | TLS / clear |', '|---|---|---|---|---|']
    for workload, _ in fio_mod.WORKLOADS:
        key, unit = ('iops', 'IOPS') if '4k' in workload else ('mib_s', 'MiB/s')
        for clear, tls in PAIRS:
            ours, base = (fio_mod.median(found[workload, tls], key),
                          fio_mod.median(found[workload, clear], key))
            lines.append('| %s | %s | %.0f %s | %.0f %s | %.2fx |' % (
                workload, clear.rpartition(',')[0], base, unit, ours, unit, ours / base))
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    fio_mod.add_arguments(parser, size_mib=1024)
    parser.add_argument('--results', default=os.path.join(REPO, 'results', 'tls.md'))
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix='tls-bench-')
    try:
        with contextlib.ExitStack() as stack:
            print('starting ZooKeeper, a router with TLS offered and two edges ...', flush=True)
            cluster = cluster_mod.Cluster(os.path.join(workdir, 'vpool'))
            stack.callback(cluster.down)
            cluster.up(routers=1, tls=True, options={'ssl': {'nbd_require_tls': False}})
            use_certificates(cluster, workdir)
            found_targets = targets(cluster, args.size_mib)
            print('fio: %s' % ', '.join(name for name, _ in found_targets), flush=True)
            found = fio_mod.alternate(found_targets, args.rounds, args.runtime, args.size_mib,
                                      workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results.publish(report(found, args), args.results)


if __name__ == '__main__':
    main()
