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
    ovs-devcluster up --netns --zookeepers 3 --backend s3 --workdir DIR
    ovs-devcluster status --workdir DIR
    ovs-devcluster kill|stop|start|restart NAME --workdir DIR
    ovs-devcluster partition A [B] --workdir DIR      (then: heal)
    ovs-devcluster down --workdir DIR

`up` writes DIR/cluster.json (what runs where, with PIDs); `down` stops
everything it lists, by PID, even from another shell. NAME is a process as
`status` lists it (router-r1, edge-edge, zookeeper, zookeeper-2), or just a
router id (r1) or an edge name. `kill` is a crash (SIGKILL), `stop` what
systemctl stop does (SIGTERM). With `up --netns` every router and the edge
run on a simulated host of their own (a network namespace named after them);
`partition r1 r2` silently drops the traffic between two hosts, `partition
r1` all of r1's, `partition r1 zookeeper` r1's to the root namespace
(ZooKeeper, the S3 server, this shell); `heal` undoes them all. `up
--backend s3` starts moto's S3 server for the vPool (moto is a test
requirement), unless --s3-endpoint names a store (credentials: boto3's
usual environment).
"""

import argparse
import json
import signal
import sys

from ovs_daemon.devcluster import cluster as cluster_mod
from ovs_daemon.devcluster import process as process_mod


def _progress(message):
    print(message, flush=True)


def up(args):
    sites = args.sites.split(',') if args.sites else None
    cluster = cluster_mod.Cluster(args.workdir)
    s3 = None
    if args.backend == 's3':
        s3 = {'endpoint': args.s3_endpoint, 'bucket': args.s3_bucket,
              'prefix': args.s3_prefix, 'region': args.s3_region}
    elif args.s3_endpoint or args.s3_bucket:
        raise cluster_mod.ClusterError('--s3-endpoint and --s3-bucket need --backend s3')
    cluster.up(routers=args.routers, sites=sites, vpool=args.vpool, progress=_progress,
               zookeepers=args.zookeepers, s3=s3, tls=args.tls,
               netns=(args.netns_prefix, args.subnet) if args.netns else None)
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
    print('%-6s %-8s %-22s %-28s %-8s %s' % ('router', 'site', 'nbd', 'api', 'pid', 'netns'))
    for router in cluster.state['routers']:
        print('%-6s %-8s %-22s %-28s %-8d %s' % (
            router['id'], router['site'], router['nbd'], router['api'], router['pid'],
            router['netns'] or '-'))
    print('\nZooKeeper %s; backend %s; token in %s' % (
        cluster.state['zookeeper'], cluster.state['backend'], cluster.token_file))
    if cluster.tls:
        print('TLS: CA %s; client certificates (qemu tls-creds-x509, libnbd '
              'tls-certificates) in %s' % (cluster.tls['ca_file'], cluster.tls['dir']))
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
    pids = cluster.pids()
    for name, alive in cluster.status().items():
        print('%-20s %-8d %s' % (name, pids[name], 'running' if alive else 'not running'))
    for first, second in cluster.state.get('partitions', []):
        print('partitioned: %s' % (first if second is None else '%s | %s' % (first, second)))


def kill(args):
    cluster = cluster_mod.Cluster.load(args.workdir)
    cluster.kill(args.name, args.signal)
    print('sent signal %d to %s' % (args.signal, args.name))


def stop(args):
    cluster_mod.Cluster.load(args.workdir).stop(args.name)
    print('stopped %s' % args.name)


def start(args):
    pid = cluster_mod.Cluster.load(args.workdir).start(args.name)
    print('started %s, pid %d' % (args.name, pid))


def restart(args):
    pid = cluster_mod.Cluster.load(args.workdir).restart(args.name)
    print('restarted %s, pid %d' % (args.name, pid))


def partition(args):
    cluster_mod.Cluster.load(args.workdir).partition(args.first, args.second)
    print('partitioned %s' % (' from '.join([args.first, args.second]) if args.second
                              else '%s from everyone' % args.first))


def heal(args):
    healed = cluster_mod.Cluster.load(args.workdir).heal()
    print('healed %d partition(s)' % len(healed))


def parser():
    top = argparse.ArgumentParser(prog='ovs-devcluster', description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest='command', required=True)
    command = commands.add_parser('up', help='start ZooKeeper, routers and an edge')
    command.add_argument('--routers', type=int, default=3)
    command.add_argument('--sites', help='comma-separated site of each router, e.g. a,a,b')
    command.add_argument('--vpool', default='default')
    command.add_argument('--no-edge', action='store_true', help='start no edge')
    command.add_argument('--zookeepers', type=int, default=1,
                       help='ZooKeeper servers: 1, or an ensemble of 3, 5, ...')
    command.add_argument('--netns', action='store_true',
                       help='each router and the edge on a simulated host of its own')
    command.add_argument('--netns-prefix', default='ovsdc',
                       help='prefix of the namespaces, links and bridge (1-8 a-z0-9)')
    command.add_argument('--subnet', default='10.213.100.0/24',
                       help='the simulated hosts\' subnet')
    command.add_argument('--tls', action='store_true',
                         help='make a CA and certificates: the control API over HTTPS, '
                         'NBD with TLS required')
    command.add_argument('--backend', choices=('local', 's3'), default='local')
    command.add_argument('--s3-endpoint', help='an S3 store to use instead of moto\'s server')
    command.add_argument('--s3-bucket', help='its bucket (default ovs-devcluster)')
    command.add_argument('--s3-prefix', default='', help='key prefix in the bucket')
    command.add_argument('--s3-region')
    command.add_argument('--workdir', required=True)
    command.set_defaults(run=up)
    command = commands.add_parser('down', help='stop everything `up` started')
    command.add_argument('--workdir', required=True)
    command.set_defaults(run=down)
    command = commands.add_parser('status', help='which processes are running, with PIDs')
    command.add_argument('--workdir', required=True)
    command.add_argument('--json', action='store_true')
    command.set_defaults(run=status)
    for verb, run, help_text in (
            ('kill', kill, 'crash one process (SIGKILL, or --signal)'),
            ('stop', stop, 'stop one process as systemctl does (SIGTERM)'),
            ('start', start, 'start a stopped or killed process again'),
            ('restart', restart, 'stop and start one process')):
        command = commands.add_parser(verb, help=help_text)
        command.add_argument('name', help='router-r1 or r1, edge-NAME or NAME, zookeeper[-N]')
        command.add_argument('--workdir', required=True)
        if verb == 'kill':
            command.add_argument('--signal', type=int, default=signal.SIGKILL)
        command.set_defaults(run=run)
    command = commands.add_parser('partition', help='drop traffic between two simulated '
                                  'hosts, or all of one host\'s')
    command.add_argument('first')
    command.add_argument('second', nargs='?')
    command.add_argument('--workdir', required=True)
    command.set_defaults(run=partition)
    command = commands.add_parser('heal', help='undo every partition')
    command.add_argument('--workdir', required=True)
    command.set_defaults(run=heal)
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
