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

"""Benchmark: IO through the edge, and its pause across failures.

    .venv/bin/python -m bench.edge [--rounds 3] [--runtime 5]

Real processes on simulated hosts (network namespaces; run as root):
ZooKeeper, routers r1 r2 (site a) and r3 (site b), and an edge on host hv
(site a). A guest writes and reads 4 KiB blocks at queue depth 1 through
the edge; the IO pause is the longest gap between two completions, for
  - kill -9 of the owner,
  - a silent partition between the edge and the owner (packets dropped),
  - a planned migrate to another router,
  - a hung owner (SIGSTOP: its kernel still accepts connections) while the
    guest flushes every second request,
  - the owner cut off from ZooKeeper and the other routers (not the edge),
  - ZooKeeper killed and started again 2 s later (the pause counted from
    ZooKeeper serving again), also with the owner killed meanwhile,
  - an attach again of the volume with a new token (no owner change),
each --rounds times (a fresh volume per round). Then fio's nbd engine runs
4 KiB random read/write at queue depth 16 and 1 MiB sequential write
through the edge, alternating with `nbdkit memory` over TCP in the same
run (medians of --rounds), as a ratio. Prints a table and writes it to
results/edge.md. Targets: docs/design.md, "Performance targets".
"""

import argparse
import os
import shutil
import statistics
import tempfile
import threading
import time

from bench import fio as fio_mod
from bench import results
from ovs_daemon.api import edge_client
from ovs_daemon.devcluster import cluster as cluster_mod
from ovs_daemon.devcluster import guest as guest_mod
from ovs_daemon.devcluster import netns
from ovs_daemon.devcluster import sockets
from ovs_daemon.devcluster import zookeeper as zookeeper_mod

MiB = 1 << 20
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = {'kill -9 of the owner': 0.25, 'silent partition edge to owner': 1.5,
           'planned migrate': 0.1, 'hung owner (SIGSTOP), FLUSH every 2nd request': 2.5,
           'owner cut from ZooKeeper and the other routers': 2.5,
           'ZooKeeper down 2 s and back': 1.0,
           'ZooKeeper down 2 s and back, owner killed meanwhile': 1.0,
           'attach again with a new token': 0.1}
# Pauses that count from ZooKeeper serving again, not from the fault.
FROM_ZOOKEEPER_BACK = ('ZooKeeper down 2 s and back',
                       'ZooKeeper down 2 s and back, owner killed meanwhile')
ZOOKEEPER_DOWN = 2.0
# How often, and how long each time, the bench asks a starting ZooKeeper
# whether it serves: the moment it does is known to about this much.
SERVING_POLL = 0.01
SERVING_ANSWER = 0.1


class Bench:

    def __init__(self, cluster, network, hosts, edge):
        self.cluster = cluster
        self.network = network
        self.hosts = hosts
        self.api = cluster.client()
        self.edge = edge_client.EdgeControlClient(edge['control'])
        self.count = 0
        self.zookeeper_back = None

    def attach(self, size, router='r1'):
        self.count += 1
        name = 'bench%d' % self.count
        self.api.create_volume(name, size, router=router)
        token = self.api.create_attachment(name, 'hv')['token']
        answer = self.edge.attach(name, self.cluster.state['vpool'], token)
        return name, answer['socket']

    def pause(self, event, undo, **guest_options):
        """The guest's longest gap across ``event``; for an event that
        brings ZooKeeper back, the part of it after ZooKeeper serves."""
        name, socket_path = self.attach(64 * MiB)
        guest = guest_mod.GuestWriter(guest_mod.unix_connector(socket_path, name),
                                      **guest_options).start()
        self.zookeeper_back = None
        try:
            guest.wait_for_writes(2000)
            guest.longest_gap = 0.0
            owner = self.api.locate(name)['owner']
            event(name, owner)
            guest.wait_for_writes(guest.writes + 3000, timeout=120)
        finally:
            guest.stop()
            undo(name, owner)
        if guest.errors or guest.stale_reads:
            raise RuntimeError('the guest saw errors: %s' % guest.summary())
        if self.zookeeper_back is not None:
            return guest.longest_gap_at - self.zookeeper_back
        return guest.longest_gap

    def kill_owner(self, name, owner):
        self.cluster.kill_router(owner)

    def restart(self, name, owner):
        self.cluster.start_router(owner)
        self.registered_again(name, owner)

    def partition(self, name, owner):
        self.hosts['hv'].block(self.hosts[owner])

    def heal(self, name, owner):
        self.hosts['hv'].unblock(self.hosts[owner])

    def migrate(self, name, owner):
        self.api.migrate(name, 'r2' if owner != 'r2' else 'r1')

    def nothing(self, name, owner):
        pass

    def hang_owner(self, name, owner):
        self.cluster.pause_router(owner)

    def wake_owner(self, name, owner):
        self.cluster.resume_router(owner)
        self.registered_again(name, owner)

    def registered_again(self, name, owner):
        """The next round creates its volume on r1: wait until every router
        is registered again."""
        self.cluster.wait_for_registration()

    def others(self, owner):
        return [r for r in self.cluster.router_ids() if r != owner]

    def cut_owner(self, name, owner):
        for other in self.others(owner):
            self.hosts[owner].block(self.hosts[other])
        self.hosts[owner].block_address(self.network.address)
        # The owner serves on until it misses ZooKeeper's answers and holds
        # IO: the round lasts until another router serves the volume, or
        # a fast guest would be done before the cut had any effect.
        api = self.cluster.client(self.others(owner)[0])
        self.cluster.wait_until(lambda: api.locate(name)['owner'] not in (owner, None),
                                timeout=60, what='another router serving %s' % name)

    def reconnect_owner(self, name, owner):
        for other in self.others(owner):
            self.hosts[owner].unblock(self.hosts[other])
        self.hosts[owner].unblock_address(self.network.address)
        self.registered_again(name, owner)

    def zookeeper_down_and_back(self, name, owner, kill_owner=False):
        [zookeeper] = [n for n in self.cluster.process_names() if 'zookeeper' in n]
        self.cluster.kill(zookeeper)
        if kill_owner:
            self.cluster.kill_router(owner)
        time.sleep(ZOOKEEPER_DOWN)
        # The guest's pause started with the outage (the routers hold IO
        # while suspended): what counts is when its IO resumed after
        # ZooKeeper served again. cluster.start returns later than that (it
        # polls, and an answer ZooKeeper leaves hanging while it starts
        # costs it seconds), so a thread of its own watches for it.
        watch = ServingWatch(self.cluster.state['zookeeper'])
        try:
            self.cluster.start(zookeeper)
        finally:
            self.zookeeper_back = watch.wait()

    def zookeeper_and_owner_down(self, name, owner):
        self.zookeeper_down_and_back(name, owner, kill_owner=True)

    def attach_again(self, name, owner):
        token = self.api.create_attachment(name, 'hv')['token']
        self.edge.attach(name, self.cluster.state['vpool'], token)

    def same_owner(self, name, owner):
        location = self.api.locate(name)
        if location['owner'] != owner or location['epoch'] != 1:
            raise RuntimeError('attach again moved %s to %s at epoch %d'
                               % (name, location['owner'], location['epoch']))


class ServingWatch(threading.Thread):
    """The monotonic time a starting ZooKeeper first says it serves."""

    def __init__(self, address):
        super().__init__(daemon=True)
        self.host, _, port = address.rpartition(':')
        self.port = int(port)
        self.serving_at = None
        self._given_up = threading.Event()
        self.start()

    def run(self):
        while not self._given_up.is_set():
            try:
                answer = zookeeper_mod.four_letter_word(self.host, self.port, 'srvr',
                                                        timeout=SERVING_ANSWER)
            except OSError:
                answer = ''
            if 'Mode: ' in answer:
                self.serving_at = time.monotonic()
                return
            time.sleep(SERVING_POLL)

    def wait(self, timeout=60):
        self.join(timeout)
        self._given_up.set()
        if self.serving_at is None:
            raise RuntimeError('ZooKeeper at %s:%d did not say it serves'
                               % (self.host, self.port))
        return self.serving_at


def run_fio(bench, args, workdir):
    name, socket_path = bench.attach(args.size_mib * MiB)
    port = sockets.free_port()
    targets = [('edge (unix) -> router', 'nbd+unix:///%s?socket=%s' % (name, socket_path)),
               ('nbdkit memory tcp', 'nbd://127.0.0.1:%d/' % port)]
    with fio_mod.nbdkit_memory(port, args.size_mib) as nbdkit:
        fio_mod.wait_for_port(port, nbdkit)
        return fio_mod.alternate(targets, args.rounds, args.runtime, args.size_mib, workdir)


def report(pauses, fio_results):
    lines = ['| IO pause (QD1 4 KiB write+read loop) | median | max | target |',
             '|---|---|---|---|']
    for what, values in pauses.items():
        since = ' (after ZooKeeper serves)' if what in FROM_ZOOKEEPER_BACK else ''
        lines.append('| %s%s (%d rounds) | %.3f s | %.3f s | < %.2f s |' % (
            what, since, len(values), statistics.median(values), max(values), TARGETS[what]))
    if fio_results is None:
        return '\n'.join(lines)
    lines += ['', '| workload | through the edge | nbdkit memory | ratio | target |',
              '|---|---|---|---|---|']
    for workload, _ in fio_mod.WORKLOADS:
        ours = fio_results[workload, 'edge (unix) -> router']
        base = fio_results[workload, 'nbdkit memory tcp']
        key, unit = ('iops', 'IOPS') if '4k' in workload else ('mib_s', 'MiB/s')
        lines.append('| %s | %.0f %s | %.0f %s | %.2fx | >= 0.5x |' % (
            workload, fio_mod.median(ours, key), unit, fio_mod.median(base, key), unit,
            fio_mod.median(ours, key) / fio_mod.median(base, key)))
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    fio_mod.add_arguments(parser, size_mib=1024)
    parser.add_argument('--results', default=os.path.join(REPO, 'results', 'edge.md'))
    parser.add_argument('--faults-only', action='store_true',
                        help='measure the pauses, not the fio workloads')
    parser.add_argument('--only', action='append', default=[], metavar='WORDS',
                        help='measure only the faults whose name contains WORDS '
                             '(repeatable; e.g. --only hung --only ZooKeeper)')
    parser.add_argument('--keep', action='store_true',
                        help='keep the work directory with every process\'s log')
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix='edge-bench-')
    network = netns.Network(prefix='ovsbe', subnet='10.213.210.0/24')
    cluster = cluster_mod.Cluster(os.path.join(workdir, 'vpool'))
    try:
        hosts = {name: network.add_host(name) for name in ('r1', 'r2', 'r3', 'hv')}
        print('starting ZooKeeper, routers and an edge on simulated hosts ...', flush=True)
        cluster.up(routers=3, sites=['a', 'a', 'b'],
                   hosts={name: hosts[name] for name in ('r1', 'r2', 'r3')},
                   zookeeper_host=network.address, options={'router': {'peer_timeout': 0.5}})
        bench = Bench(cluster, network, hosts,
                      cluster.add_edge('hv', site='a', host=hosts['hv']))
        pauses = {}
        for what, event, undo, guest_options in (
                ('kill -9 of the owner', bench.kill_owner, bench.restart, {}),
                ('silent partition edge to owner', bench.partition, bench.heal, {}),
                ('planned migrate', bench.migrate, bench.nothing, {}),
                ('hung owner (SIGSTOP), FLUSH every 2nd request', bench.hang_owner,
                 bench.wake_owner, {'flush_every': 2}),
                ('owner cut from ZooKeeper and the other routers', bench.cut_owner,
                 bench.reconnect_owner, {}),
                ('ZooKeeper down 2 s and back', bench.zookeeper_down_and_back,
                 bench.registered_again, {}),
                ('ZooKeeper down 2 s and back, owner killed meanwhile',
                 bench.zookeeper_and_owner_down, bench.restart, {}),
                ('attach again with a new token', bench.attach_again, bench.same_owner, {})):
            if args.only and not any(words in what for words in args.only):
                continue
            for round_ in range(args.rounds):
                pauses.setdefault(what, []).append(bench.pause(event, undo, **guest_options))
                print('  %s, round %d: %.3f s' % (what, round_ + 1, pauses[what][-1]),
                      flush=True)
        fio_results = None
        if not args.faults_only:
            print('fio through the edge and against nbdkit memory ...', flush=True)
            fio_results = run_fio(bench, args, workdir)
    finally:
        cluster.down()
        network.destroy()
        if args.keep:
            print('logs kept in %s' % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    text = report(pauses, fio_results)
    results.publish(text, args.results)


if __name__ == '__main__':
    main()
