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

"""ovs-devcluster: a local vPool (ZooKeeper, routers, an edge) in the background.

    ovs-devcluster up --routers 3 --sites a,a,b --workdir DIR
    ovs-devcluster status --workdir DIR
    ovs-devcluster down --workdir DIR

`up` writes DIR/cluster.json (what runs where, with PIDs); `down` stops
everything it lists, by PID, even from another shell.
"""

import argparse
import json
import sys

from ovs_daemon.devcluster import cluster as cluster_mod
from ovs_daemon.devcluster import process as process_mod


def _progress(message):
    print(message, flush=True)


def up(args):
    sites = args.sites.split(',') if args.sites else None
    cluster = cluster_mod.Cluster(args.workdir)
    cluster.up(routers=args.routers, sites=sites, vpool=args.vpool, progress=_progress)
    if not args.no_edge:
        _progress('starting edge ...')
        try:
            edge = cluster.add_edge('edge', site=(sites or ['default'])[0])
        except BaseException:
            # Half a cluster would only be in the way of the next `up`.
            cluster.down()
            raise
        _progress('edge serving its control socket at %s' % edge['control'])
    print()
    print('%-6s %-8s %-22s %-28s %s' % ('router', 'site', 'nbd', 'api', 'pid'))
    for router in cluster.state['routers']:
        print('%-6s %-8s %-22s %-28s %d' % (router['id'], router['site'], router['nbd'],
                                             router['api'], router['pid']))
    print('\nZooKeeper %s; token in %s' % (cluster.state['zookeeper'], cluster.token_file))
    print('cluster description: %s' % cluster.state_path)


def down(args):
    try:
        cluster = cluster_mod.Cluster.load(args.workdir)
    except cluster_mod.NoClusterError as exc:
        print('nothing to stop: %s' % exc)
        return
    stopped = cluster.down()
    for name in stopped:
        print('stopped %s' % name)
    if not stopped:
        print('nothing of the cluster in %s was still running' % cluster.workdir)


def status(args):
    cluster = cluster_mod.Cluster.load(args.workdir)
    if args.json:
        print(json.dumps(cluster.status(), indent=2, sort_keys=True))
        return
    for name, alive in sorted(cluster.status().items()):
        print('%-20s %s' % (name, 'running' if alive else 'not running'))


def parser():
    top = argparse.ArgumentParser(prog='ovs-devcluster', description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest='command', required=True)
    start = commands.add_parser('up', help='start ZooKeeper, routers and an edge')
    start.add_argument('--routers', type=int, default=3)
    start.add_argument('--sites', help='comma-separated site of each router, e.g. a,a,b')
    start.add_argument('--vpool', default='default')
    start.add_argument('--no-edge', action='store_true', help='start no edge')
    start.add_argument('--workdir', required=True)
    start.set_defaults(run=up)
    stop = commands.add_parser('down', help='stop everything `up` started')
    stop.add_argument('--workdir', required=True)
    stop.set_defaults(run=down)
    show = commands.add_parser('status', help='which processes are running')
    show.add_argument('--workdir', required=True)
    show.add_argument('--json', action='store_true')
    show.set_defaults(run=status)
    return top


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except (cluster_mod.ClusterError, process_mod.ProcessError, OSError) as exc:
        print('ovs-devcluster: error: %s' % exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # `up` has stopped what it started already.
        print('ovs-devcluster: interrupted', file=sys.stderr)
        return 130
    return 0


if __name__ == '__main__':
    sys.exit(main())
