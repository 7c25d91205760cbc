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


"""A rolling upgrade under a verifying guest's IO, as the operator's guide
("Restarting or upgrading") does it:

    .venv/bin/python -m bench.rolling_upgrade [--results results/rolling_upgrade.md]

On real processes (a ZooKeeper ensemble of 3, routers r1, r2 of site a and
r3 of site b, an edge of site a): a guest writes and reads 4 KiB blocks of
a volume through the edge, reconnecting as QEMU does (reconnect-delay),
while each router in turn is stopped with SIGTERM (it hands its volumes to
its peers) and started again, then the edge is stopped and started (it
serves its attachments again from its state file), then each ZooKeeper
member is restarted. After each step the guest writes some more. Then
every acknowledged write is read back. Prints the longest IO pause of each
step and writes the table to --results. tests/functional/bench runs it and
checks that the guest saw no IO error and lost no write.
"""

import argparse
import os
import shutil
import tempfile
import time

from bench import results
from ovs_daemon.api import edge_client
from ovs_daemon.devcluster import cluster as cluster_mod
from ovs_daemon.devcluster import guest as guest_mod

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MiB = 1 << 20
RECONNECT_DELAY = 30.0
ROUTERS = ('r1', 'r2', 'r3')
ZOOKEEPERS = ('zookeeper-1', 'zookeeper-2', 'zookeeper-3')


def start_vpool(workdir):
    cluster = cluster_mod.Cluster(workdir)
    cluster.up(routers=3, sites=['a', 'a', 'b'], zookeepers=3,
               options={'router': {'peer_timeout': 0.5}})
    cluster.add_edge('hv1', site='a')
    return cluster


def attach(cluster, volume):
    token = cluster.client().create_attachment(volume, 'hv1')['token']
    return edge_client.EdgeControlClient(cluster.edge('hv1')['control']).attach(
        volume, cluster.state['vpool'], token)['socket']


def restart(cluster, name):
    """Stop a process as systemd does (SIGTERM) and start it again."""
    cluster.stop(name)
    cluster.start(name)


def steps():
    """(what, process name) in the order of the operator's guide."""
    return ([('router %s' % r, r) for r in ROUTERS] + [('edge', 'hv1')]
            + [('ZooKeeper member %s' % z[-1], z) for z in ZOOKEEPERS])


def rolling_upgrade(cluster, guest, writes_between=300, say=print):
    """Restart every process one after the other under ``guest``'s IO;
    returns ``[(what, seconds the step took, longest IO pause)]``."""
    guest.wait_for_writes(writes_between)
    timeline = []
    for what, name in steps():
        say('restarting %s ...' % what)
        began = time.monotonic()
        restart(cluster, name)
        ended = time.monotonic()
        guest.wait_for_writes(guest.writes + writes_between, timeout=120)
        timeline.append((what, began, ended))
    done = time.monotonic()
    return [(what, ended - began,
             guest.longest_pause(began, timeline[i + 1][1] if i + 1 < len(timeline) else done))
            for i, (what, began, ended) in enumerate(timeline)]


def run(workdir, say=print):
    """The whole run; returns (report text, guest, per-step figures, final
    owner record of the guest's volume)."""
    cluster = start_vpool(workdir)
    try:
        api = cluster.client()
        api.create_volume('v1', 64 * MiB, router='r1')
        api.create_volume('v2', 64 * MiB, router='r2')
        socket_path = attach(cluster, 'v1')
        guest = guest_mod.GuestWriter(guest_mod.unix_connector(socket_path, 'v1'),
                                      reconnect_delay=RECONNECT_DELAY)
        guest.start()
        try:
            figures = rolling_upgrade(cluster, guest, say=say)
        finally:
            guest.stop()
        checked, wrong = guest.verify()
        record = api.volume('v1')
    finally:
        cluster.down()
    return report(guest, figures, checked, wrong), guest, figures, (checked, wrong), record


def report(guest, figures, checked, wrong):
    lines = ['Rolling upgrade under a verifying guest (4 KiB writes and reads through the '
             'edge, QD1, reconnecting like QEMU), one step after the other:', '',
             '| step | restart took | longest IO pause |', '|---|---|---|']
    lines += ['| %s | %.2f s | %.3f s |' % figure for figure in figures]
    lines += ['', 'guest: %d writes, %d reads, %d flushes, %d reconnects, %d IO errors, '
              '%d stale reads; %d blocks read back, %d wrong'
              % (guest.writes, guest.reads, guest.flushes, guest.reconnects,
                 len(guest.errors), len(guest.stale_reads), checked, len(wrong))]
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--results',
                        default=os.path.join(REPO, 'results', 'rolling_upgrade.md'))
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix='rolling-upgrade-')
    try:
        text = run(os.path.join(workdir, 'vpool'))[0]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results.publish(text, args.results)


if __name__ == '__main__':
    main()
