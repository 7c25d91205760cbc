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

"""ovs-admin: the vPool at a glance, and the volume operations, through the
routers' control API (and the local edge for attach/detach).

Where the routers are: ``--cluster DIR/cluster.json`` (written by
``ovs-devcluster up``), or ``--endpoint URL`` (repeatable) with
``--token-file``; or the environment: OVS_CLUSTER, OVS_ENDPOINTS
(comma-separated), OVS_TOKEN_FILE, OVS_EDGE_SOCKET. Routers serving HTTPS
are verified with ``--ca-file`` (OVS_CA_FILE; the cluster's CA with
``--cluster``), and ``--cert-file``/``--key-file`` (OVS_CERT_FILE,
OVS_KEY_FILE) present a client certificate.
"""

import argparse
import json
import os
import re
import sys
import time

from ovs_daemon import tls as tls_mod
from ovs_daemon.api import client as api_client
from ovs_daemon.api import edge_client
from ovs_daemon.api import errors as api_errors
from ovs_daemon.api import token as token_mod

_UNITS = {'': 1, 'b': 1, 'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30, 't': 1 << 40}
_SIZE_RE = re.compile(r'^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$', re.IGNORECASE)


class AdminError(Exception):
    """A problem with the command line or the local setup."""


def parse_size(text):
    """'10G', '512MiB', '1.5g' or a byte count -> bytes."""
    match = _SIZE_RE.match(text)
    if not match:
        raise AdminError('bad size %r: use bytes or a number with K, M, G or T' % text)
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def format_size(size):
    for unit, factor in (('TiB', 1 << 40), ('GiB', 1 << 30), ('MiB', 1 << 20), ('KiB', 1 << 10)):
        if size >= factor:
            return '%.1f %s' % (size / factor, unit)
    return '%d B' % size


def table(headers, rows):
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows)]
    lines = ['  '.join(str(h).ljust(w) for h, w in zip(headers, widths))]
    lines += ['  '.join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows]
    return '\n'.join(line.rstrip() for line in lines)


# -- connecting ----------------------------------------------------------------

def _cluster_file(args):
    path = args.cluster or os.environ.get('OVS_CLUSTER')
    if path and os.path.isdir(path):
        path = os.path.join(path, 'cluster.json')
    return path


def make_client(args):
    path = _cluster_file(args)
    if path:
        try:
            with open(path) as f:
                cluster = json.load(f)
        except (OSError, ValueError) as exc:
            raise AdminError('cannot read %s: %s' % (path, exc)) from None
        endpoints = [r['api'] for r in cluster['routers']]
        token_file = cluster['token_file']
        tls_files = cluster.get('tls') or {}
        args.tls_dir = tls_files.get('dir')
    else:
        endpoints = args.endpoint or [e for e in os.environ.get('OVS_ENDPOINTS', '').split(',')
                                      if e]
        token_file = args.token_file or os.environ.get('OVS_TOKEN_FILE')
        tls_files = {}
    if not endpoints or not token_file:
        raise AdminError('say where the routers are: --cluster, or --endpoint and --token-file')
    try:
        token = token_mod.read_token(token_file)
        tls = tls_mod.client_tls(*(
            getattr(args, name) or os.environ.get('OVS_%s' % name.upper())
            or tls_files.get(name) for name in ('ca_file', 'cert_file', 'key_file')))
    except (token_mod.TokenError, tls_mod.TLSConfigError) as exc:
        raise AdminError(str(exc)) from None
    return api_client.ControlClient(endpoints, token, timeout=args.timeout, tls=tls)


# -- commands ------------------------------------------------------------------

def vpool_status(client):
    """Routers (with each one's own health), volumes (with their owner's
    state) and the vPool's totals, as the status table shows them."""
    routers = client.routers()
    volumes = client.volumes()
    halted, space = {}, {}
    for router in routers:
        try:
            one = client.for_endpoint(router['api'], timeout=3)
            health = one.health()
            router.update(state='up', zookeeper=health['zookeeper'],
                          serves=len(health['served']), halted=len(health['halted']))
            halted.update(health['halted'])
            space.update(one.space())
        except api_errors.ApiError:
            router.update(state='unreachable', zookeeper=None, serves=None, halted=None)
    states = {r['id']: r['state'] for r in routers}
    for volume in volumes:
        volume['owner_state'] = (states.get(volume['owner'], 'dead') if volume['owner']
                                 else None)
        volume['halted'] = halted.get(volume['name'])
        used = space.get(volume['name'], {})
        volume['stored_bytes'] = used.get('stored_bytes')
        volume['live_bytes'] = used.get('live_bytes')
    return {'routers': routers, 'volumes': volumes, 'vpool': client.stats()}


def status(client, args):
    answer = vpool_status(client)
    if args.json:
        return answer
    router_rows = [(r['id'], r.get('site') or '-', r['nbd'], r['api'],
                    'up, ZooKeeper %s' % r['zookeeper'] if r['state'] == 'up' else r['state'],
                    '-' if r['serves'] is None else r['serves'],
                    '-' if r['halted'] is None else r['halted'])
                   for r in answer['routers']]
    lines = ['Routers', table(('id', 'site', 'nbd', 'api', 'state', 'serves', 'halted'),
                              router_rows), '', 'Volumes']
    volume_rows = []
    for v in answer['volumes']:
        owner = v['owner'] or '-'
        if v['owner_state'] in ('dead', 'unreachable'):
            owner += ' (%s)' % v['owner_state']
        parent = '%(volume)s@%(snapshot)s' % v['parent'] if v['parent'] else '-'
        volume_rows.append((v['name'], format_size(v['size']), owner, v['epoch'],
                            ','.join(v['attachments']) or '-', v['halted'] or '-',
                            _stored_and_live(v), parent))
    lines.append(table(('name', 'size', 'owner', 'epoch', 'attached to', 'halted',
                        'stored / live', 'parent'),
                       volume_rows) if volume_rows else '(none)')
    stats = answer['vpool']
    served = [v for v in answer['volumes'] if v['live_bytes'] is not None]
    lines += ['', 'vPool: %d volumes, %s provisioned, %s stored%s%s' % (
        stats['volumes'], format_size(stats['provisioned_bytes']),
        format_size(stats['used_bytes']),
        ' (%s live data in the volumes served)' % format_size(
            sum(v['live_bytes'] for v in served)) if served else '',
        ', %s free of %s' % (format_size(stats['free_bytes']),
                             format_size(stats['capacity_bytes']))
        if stats.get('capacity_bytes') else '')]
    return '\n'.join(lines)


def _stored_and_live(volume):
    """A volume's stored bytes beside its live data: what compaction keeps
    near 1 (volumes not served by a live router show '-')."""
    if volume['live_bytes'] is None:
        return '-'
    return '%s / %s' % (format_size(volume['stored_bytes']), format_size(volume['live_bytes']))


def collected(answer):
    return ('%(volume)s: freed %(freed)s (stored %(before)s -> %(after)s, live data '
            '%(live)s); %(rewritten)d containers rewritten, %(removed)d objects removed'
            % {'volume': answer['volume'], 'freed': format_size(answer['freed_bytes']),
               'before': format_size(answer['stored_bytes_before']),
               'after': format_size(answer['stored_bytes']),
               'live': format_size(answer['live_bytes']),
               'rewritten': answer['containers_rewritten'],
               'removed': answer['objects_removed']})


def _edge(args):
    path = args.edge_socket or os.environ.get('OVS_EDGE_SOCKET')
    cluster_file = _cluster_file(args)
    if not path and cluster_file:
        with open(cluster_file) as f:
            path = json.load(f).get('edge', {}).get('control')
    if not path:
        path = '/run/ovs-edge/control.sock'
    return edge_client.EdgeControlClient(path)


def attach(client, args):
    """Attach through the local edge, as the os-brick connector does."""
    edge = _edge(args)
    try:
        host = edge.status()['host']
        token = client.create_attachment(args.volume, host)['token']
        answer = edge.attach(args.volume, args.vpool, token)
    except edge_client.EdgeError as exc:
        raise AdminError('edge: %s' % exc) from None
    return answer if args.json else answer['uri']


def detach(client, args):
    edge = _edge(args)
    try:
        host = edge.status()['host']
        answer = edge.detach(args.volume, args.vpool)
    except edge_client.EdgeError as exc:
        raise AdminError('edge: %s' % exc) from None
    client.delete_attachment(args.volume, host)
    return answer if args.json else 'detached %s%s' % (
        args.volume, '' if answer['attached'] else ' (it was not attached here)')


def create_attachment(client, args):
    """An attachment for ``host`` without an edge, for tools and tests:
    its token and the NBD export name a session of that host presents."""
    answer = _with_export(client, args, client.create_attachment(args.volume, args.host))
    if args.json:
        return answer
    return 'attachment of %s for %s: token %s\nNBD export %s%s' % (
        args.volume, args.host, answer['token'], answer['export'],
        ', at the owner: %s' % answer['uri'] if answer['uri'] else '')


def create_credential(client, args):
    """A short-lived credential for an operator's NBD sessions (qemu-img,
    nbdcopy): no attachment is recorded, guests' sessions are untouched."""
    answer = _with_export(client, args, client.create_credential(args.volume, args.ttl))
    if args.json:
        return answer
    return 'NBD export %s (valid until %s)%s' % (
        answer['export'], time.strftime('%Y-%m-%d %H:%M:%S UTC',
                                        time.gmtime(answer['expires'])),
        '\nat the owner: %s' % answer['uri'] if answer['uri'] else '')


def _with_export(client, args, answer):
    """``answer`` with the export name and NBD URI that present its token:
    libnbd's ``nbds://`` when the routers are verified with a CA (with the
    cluster's client certificates when it has them)."""
    volume = args.volume
    answer['export'] = '%s/%s' % (volume, answer['token'])
    location = client.locate(volume)
    answer['uri'] = None
    if location['router']:
        scheme = 'nbds' if client.tls.ca_file else 'nbd'
        answer['uri'] = '%s://%s/%s' % (scheme, location['router']['nbd'], answer['export'])
        if getattr(args, 'tls_dir', None):
            answer['uri'] += '?tls-certificates=%s' % args.tls_dir
    return answer


def migrate(client, args):
    """A planned handover; a failure is one line with the volume's state."""
    try:
        return client.migrate(args.volume, args.router)
    except api_errors.ApiError as exc:
        reason = exc.message
    raise AdminError('migrate of %s to %s failed: %s; %s'
                     % (args.volume, args.router, reason, _where(client, args.volume)))


def _where(client, volume):
    """What state ``volume`` is in now, in words."""
    try:
        location = client.locate(volume)
    except api_errors.ApiError as exc:
        return 'its state is unknown (%s)' % exc.message
    if location['owner'] is None:
        return '%s has no owner' % volume
    if location['alive']:
        return '%s is served by %s, epoch %d' % (volume, location['owner'],
                                                 location['epoch'])
    return ('%s is owned by %s, which is not running: the next IO through an edge, or '
            '`ovs-admin acquire --failover %s`, moves it to a live router'
            % (volume, location['owner'], volume))


def _drain_lines(answer):
    lines = ['router %s drained%s: %d volume(s) moved, %d left' % (
        answer['router'], '' if answer['running'] else ' (not running)',
        len(answer['moved']), len(answer['left']))]
    lines += ['  %s -> %s' % item for item in sorted(answer['moved'].items())]
    lines += ['  %s stays: %s' % item for item in sorted(answer['left'].items())]
    return '\n'.join(lines)


def _volume_line(record):
    return '%s: %s, owner %s, epoch %d' % (record['name'], format_size(record['size']),
                                           record['owner'] or '-', record['epoch'])


def _source(text):
    volume, _, snapshot = text.partition('@')
    return {'volume': volume, 'snapshot': snapshot} if snapshot else {'volume': volume}


def run_command(client, args):
    """The answer of one subcommand: a string, or a JSON-able object with --json."""
    command = args.command
    if command == 'status':
        return status(client, args)
    if command == 'routers':
        routers = client.routers()
        return routers if args.json else table(
            ('id', 'site', 'nbd', 'api'), [(r['id'], r.get('site') or '-', r['nbd'], r['api'])
                                           for r in routers])
    if command == 'list':
        volumes = client.volumes()
        return volumes if args.json else '\n'.join(_volume_line(v) for v in volumes)
    if command == 'show':
        record = client.volume(args.volume)
        return record if args.json else json.dumps(record, indent=2, sort_keys=True)
    if command == 'create':
        size = parse_size(args.size)
        source = _source(args.source) if args.source else None
        record = client.create_volume(args.volume, size, router=args.router, source=source)
        return record if args.json else 'created ' + _volume_line(record)
    if command == 'clone':
        size = parse_size(args.size) if args.size else None
        record = client.create_volume(args.name, size, source=_source(args.source))
        return record if args.json else 'created ' + _volume_line(record)
    if command == 'delete':
        client.delete_volume(args.volume)
        return {'deleted': args.volume} if args.json else 'deleted %s' % args.volume
    if command == 'collect':
        answer = dict(client.collect(args.volume), volume=args.volume)
        return answer if args.json else collected(answer)
    if command == 'extend':
        record = client.extend_volume(args.volume, parse_size(args.size))
        return record if args.json else 'extended ' + _volume_line(record)
    if command == 'snapshot':
        snapshot = client.create_snapshot(args.volume, args.snapshot)
        return snapshot if args.json else 'snapshot %s@%s taken' % (args.volume, args.snapshot)
    if command == 'snapshots':
        snapshots = client.snapshots(args.volume)
        return snapshots if args.json else table(
            ('name', 'size'), [(s['name'], format_size(s['size'])) for s in snapshots])
    if command == 'delete-snapshot':
        client.delete_snapshot(args.volume, args.snapshot)
        return 'deleted snapshot %s@%s' % (args.volume, args.snapshot)
    if command == 'revert':
        record = client.revert(args.volume, args.snapshot)
        return record if args.json else 'reverted %s to %s' % (args.volume, args.snapshot)
    if command == 'attach':
        return attach(client, args)
    if command == 'detach':
        return detach(client, args)
    if command == 'drain':
        answer = client.drain(args.router, args.drain_timeout)
        return answer if args.json else _drain_lines(answer)
    if command == 'undrain':
        client.undrain(args.router)
        return ({'router': args.router} if args.json
                else 'router %s takes volumes again' % args.router)
    if command == 'attachment-create':
        return create_attachment(client, args)
    if command == 'credential':
        return create_credential(client, args)
    if command == 'attachment-delete':
        client.delete_attachment(args.volume, args.host)
        return ({'volume': args.volume, 'host': args.host} if args.json
                else 'removed the attachment of %s for %s' % (args.volume, args.host))
    if command in ('migrate', 'locate', 'acquire'):
        if command == 'migrate':
            location = migrate(client, args)
        elif command == 'locate':
            location = client.locate(args.volume)
        else:
            location = client.acquire(args.volume, 'failover' if args.failover else 'normal')
        return location if args.json else '%s: owner %s, epoch %d%s' % (
            args.volume, location['owner'] or '-', location['epoch'],
            ', NBD %s' % location['router']['nbd'] if location['router'] else ' (not alive)')
    raise AdminError('unknown command %s' % command)


def parser():
    top = argparse.ArgumentParser(prog='ovs-admin', description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument('--cluster', help='cluster.json (or its directory)')
    top.add_argument('--endpoint', action='append', help='a router\'s control API URL')
    top.add_argument('--token-file', help='file holding the control API token')
    top.add_argument('--ca-file', help='CA certificate(s) to verify HTTPS routers with')
    top.add_argument('--cert-file', help='client certificate to present to the routers')
    top.add_argument('--key-file', help='key of --cert-file')
    top.add_argument('--timeout', type=float, default=60.0)
    top.add_argument('--json', action='store_true', help='print JSON, not tables')
    commands = top.add_subparsers(dest='command', required=True)

    def command(name, help_text, *arguments):
        sub = commands.add_parser(name, help=help_text)
        for names, options in arguments:
            sub.add_argument(*names, **options)
        return sub

    volume = (('volume',), {})
    command('status', 'routers, volumes and owners at a glance')
    command('routers', 'the routers the registry lists (the edge credential may ask this)')
    command('list', 'volumes')
    command('show', 'a volume\'s record', volume)
    command('create', 'create a volume', volume, (('size',), {'help': 'e.g. 10G'}),
            (('--router',), {'help': 'place it on this router'}),
            (('--from',), {'dest': 'source', 'help': 'clone VOLUME[@SNAPSHOT]'}))
    command('clone', 'clone a volume or snapshot', (('source',), {'help': 'VOLUME[@SNAPSHOT]'}),
            (('name',), {}), (('--size',), {}))
    command('delete', 'delete a volume', volume)
    command('extend', 'grow a volume', volume, (('size',), {}))
    command('collect', 'compact and collect a volume now; prints what it freed', volume)
    command('snapshot', 'take a snapshot', volume, (('snapshot',), {}))
    command('snapshots', 'list snapshots', volume)
    command('delete-snapshot', 'delete a snapshot', volume, (('snapshot',), {}))
    command('revert', 'revert a volume to a snapshot', volume, (('snapshot',), {}))
    command('migrate', 'move a volume to a router (planned handover)', volume,
            (('router',), {}))
    command('locate', 'where a volume is served', volume)
    edge_options = ((('--edge-socket',), {'help': 'the local edge\'s control socket'}),
                    (('--vpool',), {'default': 'default'}))
    command('attach', 'attach through the local edge; prints the NBD URI', volume,
            *edge_options)
    command('detach', 'detach from the local edge and revoke its attachment', volume,
            *edge_options)
    command('drain', 'move every volume off a router that keeps running, and keep '
            'placement away from it', (('router',), {}),
            (('--drain-timeout',), {'type': float, 'help': 'seconds (default: the '
                                    'router\'s drain_timeout, or 30)'}))
    command('undrain', 'let placement use a drained router again', (('router',), {}))
    command('attachment-create', 'record an attachment for a host without its edge; '
            'prints its token and NBD export name', volume, (('host',), {}))
    command('attachment-delete', 'revoke a host\'s attachment', volume, (('host',), {}))
    command('credential', 'a short-lived credential for NBD sessions of a volume (tools); '
            'prints its export name and NBD URI', volume,
            (('--ttl',), {'type': int, 'help': 'seconds it admits new sessions (default 600)'}))
    command('acquire', 'make the router answering the owner', volume,
            (('--failover',), {'action': 'store_true', 'help': 'steal from an unreachable owner'}))
    return top


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        answer = run_command(make_client(args), args)
    except (AdminError, api_errors.ApiError) as exc:
        print('ovs-admin: error: %s' % exc, file=sys.stderr)
        return 1
    if args.json and not isinstance(answer, str):
        print(json.dumps(answer, indent=2, sort_keys=True))
    else:
        print(answer)
    return 0


if __name__ == '__main__':
    sys.exit(main())
