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

"""ovs-vpool-demo: a local vPool under IO through a failover, with what it measured.

Starts ZooKeeper, three storage routers in two sites (r1, r2 in site a; r3
in site b) and an edge in site a; creates a volume, attaches it through the
edge and runs a verifying guest writer (4 KiB writes and reads at queue
depth 1, a flush every 64 writes). Then, under that IO: a planned migrate
to r3, and a kill -9 of the owner. Prints the longest IO pause of each,
that the guest saw no error and no stale read, and that every block it
wrote reads back as last acknowledged. Everything runs under --workdir and
is stopped (by PID) at the end, unless --keep.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

from ovs_daemon.api import edge_client
from ovs_daemon.cmd import admin
from ovs_daemon.devcluster import cluster as cluster_mod
from ovs_daemon.devcluster import guest as guest_mod

MiB = 1 << 20


def say(message):
    print(message, flush=True)


def under_io(guest, what, event, writes_after):
    """Run ``event`` while the guest writes; return the longest IO pause."""
    guest.longest_gap = 0.0
    before = guest.writes
    started = time.monotonic()
    event()
    guest.wait_for_writes(guest.writes + writes_after, timeout=120)
    say('  %s: done in %.3f s; the guest wrote %d blocks meanwhile; longest IO pause %.3f s'
        % (what, time.monotonic() - started, guest.writes - before, guest.longest_gap))
    return guest.longest_gap


def run(workdir, seconds):
    cluster = cluster_mod.Cluster(os.path.join(workdir, 'vpool'))
    results = []
    try:
        say('Starting the vPool (ZooKeeper, routers r1 r2 in site a, r3 in site b) ...')
        cluster.up(routers=3, sites=['a', 'a', 'b'], progress=lambda m: say('  ' + m))
        edge = cluster.add_edge('hv1', site='a')
        say('  edge hv1 (site a) serving its control socket at %s' % edge['control'])
        api = cluster.client()
        record = api.create_volume('demo', 256 * MiB, router='r1')
        say('Created volume demo: 256 MiB, owner %s, epoch %d' % (record['owner'],
                                                                    record['epoch']))
        token = api.create_attachment('demo', 'hv1')['token']
        attached = edge_client.EdgeControlClient(edge['control']).attach(
            'demo', cluster.state['vpool'], token)
        say('Attached through the edge: %s' % attached['uri'])

        guest = guest_mod.GuestWriter(guest_mod.unix_connector(attached['socket'], 'demo'),
                                      blocks=8192).start()
        guest.wait_for_writes(2000)
        say('Guest writing and verifying through the edge ...')
        time.sleep(seconds)
        results.append(('planned migrate r1 -> r3', under_io(
            guest, 'planned migrate to r3', lambda: api.migrate('demo', 'r3'), 2000)))
        owner = api.locate('demo')['owner']
        results.append(('kill -9 of the owner (%s)' % owner, under_io(
            guest, 'kill -9 of %s' % owner, lambda: cluster.kill_router(owner), 2000)))
        time.sleep(seconds)
        guest.stop()
        checked, wrong = guest.verify()
        say('')
        say(admin.status(api, argparse.Namespace(json=False)))
        say('')
        summary = guest.summary()
        say('%-36s %s' % ('event', 'longest IO pause'))
        for what, pause in results:
            say('%-36s %.3f s' % (what, pause))
        say('')
        say('guest: %(writes)d writes, %(reads)d reads checked, %(flushes)d flushes, '
            '%(errors)d IO errors, %(stale_reads)d stale reads' % summary)
        say('verify: %d blocks read back, %d wrong' % (checked, len(wrong)))
        ok = not wrong and not guest.errors and not guest.stale_reads
        say('RESULT: %s' % ('every acknowledged write verified, no IO error' if ok
                            else 'FAILED: %s' % (wrong[:5] or guest.errors[:5]
                                                 or guest.stale_reads[:5])))
        return 0 if ok else 1
    finally:
        cluster.down()


def main(argv=None):
    parser = argparse.ArgumentParser(prog='ovs-vpool-demo', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--workdir', help='where the vPool lives (default: a temporary '
                                          'directory, removed afterwards)')
    parser.add_argument('--seconds', type=float, default=3.0,
                        help='IO before and after the failures')
    parser.add_argument('--keep', action='store_true', help='keep the work directory')
    args = parser.parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix='ovs-vpool-demo-')
    try:
        return run(workdir, args.seconds)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
