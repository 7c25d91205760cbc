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

"""Simulated hosts for partition tests: one network namespace per host.

Every host hangs off a Linux bridge in the root namespace through a veth pair;
the bridge carries the subnet's first address, so services in the root
namespace (ZooKeeper, the test itself) are reachable from every host.

Partitions drop IP packets and nothing else: no RST, no ICMP, and ARP keeps
working, so a peer only notices by timeout, as with a failed switch port.
Taking a link down instead is not silent: after the ARP timeout the cut-off
host gets "No route to host" for new connections.  Drops happen on the
receiving side of each link (ingress), so no sender's stack ever sees a local
error either.

Every name made here starts with the network's prefix, so the leftovers of a
crashed run can be found and removed by :func:`cleanup_stale`.
"""

import ipaddress
import json
import os
import re
import signal
import subprocess

from oslo_log import log as logging

from ovs_daemon.devcluster import process as process_mod

LOG = logging.getLogger(__name__)

# Interface names are limited to 15 characters: PREFIX-br and PREFIX-vNNN.
_PREFIX_RE = re.compile(r'^[a-z][a-z0-9]{0,7}$')
_HOST_NAME_RE = re.compile(r'^[a-z0-9][a-z0-9-]*$')
HOST_INTERFACE = 'eth0'
DUMP_ATTEMPTS = 5


class SubnetInUse(RuntimeError):
    """The network's subnet is already routed through another interface."""


def _run(argv, input=None, check=True):
    result = subprocess.run(argv, input=input, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError('%s failed (%d): %s' % (' '.join(argv), result.returncode,
                                                   result.stderr.strip()))
    return result


def _in_netns(netns, argv):
    return ['ip', 'netns', 'exec', netns] + list(argv) if netns else list(argv)


def _nft(script, netns=None):
    _run(_in_netns(netns, ['nft', '-f', '-']), input=script)


def _nft_tables(netns=None):
    output = _run(_in_netns(netns, ['nft', '-j', 'list', 'tables'])).stdout
    return [(item['table']['family'], item['table']['name'])
            for item in json.loads(output)['nftables'] if 'table' in item]


def _ingress_drop_table(table, device):
    # netdev ingress sees frames before the IP stack; matching only IPv4/IPv6
    # leaves ARP alone, so neighbours never become unreachable.
    return '''table netdev %s {
  chain drop_ip {
    type filter hook ingress device "%s" priority 0;
    meta protocol { ip, ip6 } drop
  }
}
''' % (table, device)


def _kill_netns_processes(netns):
    # Only processes this module's users started live in these namespaces; a
    # namespace with a process left in it outlives `ip netns del`.
    result = _run(['ip', 'netns', 'pids', netns], check=False)
    for pid in result.stdout.split():
        LOG.warning('Killing leftover pid %s in namespace %s', pid, netns)
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass


def _link_names():
    # A dump that races with vanishing links may come back incomplete;
    # iproute2 then warns on stderr, and the dump is simply taken again.
    for _ in range(DUMP_ATTEMPTS):
        result = _run(['ip', '-j', 'link', 'show'], check=False)
        if result.returncode == 0 and 'Dump was interrupted' not in result.stderr:
            break
    else:
        raise RuntimeError('ip link show: %s' % result.stderr.strip())
    return [link['ifname'] for link in json.loads(result.stdout)]


def _netns_names():
    output = _run(['ip', '-j', 'netns', 'list']).stdout
    return [entry['name'] for entry in json.loads(output or '[]')]


def cleanup_stale(prefix):
    """Remove namespaces, links and root nftables tables named with ``prefix``."""
    for family, table in _nft_tables():
        if table.startswith(prefix + '_'):
            LOG.info('Removing stale nftables table %s %s', family, table)
            _run(['nft', 'delete', 'table', family, table], check=False)
    namespaces = [name for name in _netns_names() if name.startswith(prefix + '-')]
    for netns in namespaces:
        _kill_netns_processes(netns)
    # Links go before namespaces: deleting the root end of a veth removes the
    # pair at once, whereas a deleted namespace takes its veths down later,
    # asynchronously, possibly under the next run's feet.  The bridge goes
    # once no port is left on it.
    links = [name for name in _link_names() if name.startswith(prefix + '-')]
    for link in sorted(links, key=lambda name: name.endswith('-br')):
        LOG.info('Removing stale link %s', link)
        _run(['ip', 'link', 'del', link], check=False)
    for netns in namespaces:
        LOG.info('Removing stale network namespace %s', netns)
        _run(['ip', 'netns', 'del', netns], check=False)


class Host:
    """A simulated host: a network namespace with one address on the bridge."""

    def __init__(self, network, name, netns, address, veth):
        self.network = network
        self.name = netns
        self.address = address
        self.veth = veth

    def __repr__(self):
        return '<Host %s %s>' % (self.name, self.address)

    def exec(self, argv, timeout=30.0, check=True, input=None):
        """Run ``argv`` to completion in this host; returns CompletedProcess (text)."""
        return subprocess.run(_in_netns(self.name, argv), input=input, timeout=timeout,
                              check=check, capture_output=True, text=True)

    def start(self, name, argv, workdir, env=None):
        """Start a background :class:`~process.Process` in this host."""
        return process_mod.Process.start(name, argv, workdir, env=env, netns=self.name)

    @property
    def _isolation_table(self):
        return '%s_isolate_%s' % (self.network.prefix, self.veth.rsplit('-', 1)[1])

    def isolate(self):
        """Silently drop all IP traffic to and from this host (loopback excepted)."""
        LOG.info('Isolating %s', self)
        # Traffic into the host, dropped inside its namespace ...
        _nft(_ingress_drop_table(self._isolation_table, HOST_INTERFACE), self.name)
        # ... and traffic out of it, dropped where it enters the root namespace.
        _nft(_ingress_drop_table(self._isolation_table, self.veth))

    def heal(self):
        """Undo :meth:`isolate`."""
        LOG.info('Healing %s', self)
        _run(_in_netns(self.name, ['nft', 'delete', 'table', 'netdev',
                                   self._isolation_table]))
        _run(['nft', 'delete', 'table', 'netdev', self._isolation_table])

    def _set_blocked(self, verb, address):
        _run(_in_netns(self.name, [
            'nft', verb, 'element', 'inet', self.network.partition_table, 'blocked_peers',
            '{ %s }' % address]))

    def block(self, other):
        """Silently drop traffic between this host and ``other`` only."""
        LOG.info('Blocking traffic between %s and %s', self, other)
        # Each side drops what arrives from the other, so both directions are
        # cut while both hosts keep reaching everyone else.
        self._set_blocked('add', other.address)
        other._set_blocked('add', self.address)

    def block_address(self, address):
        """Silently drop what arrives from ``address`` (e.g. the bridge's own
        address, where services of the root namespace such as ZooKeeper
        answer from); this host's packets still leave, unanswered."""
        LOG.info('Blocking traffic from %s into %s', address, self)
        self._set_blocked('add', address)

    def unblock_address(self, address):
        LOG.info('Unblocking traffic from %s into %s', address, self)
        self._set_blocked('delete', address)

    def unblock(self, other):
        LOG.info('Unblocking traffic between %s and %s', self, other)
        self._set_blocked('delete', other.address)
        other._set_blocked('delete', self.address)


class Network:
    """A bridge in the root namespace with hosts attached; see the module doc."""

    def __init__(self, prefix='ovst', subnet='10.213.0.0/24', create=True):
        if not _PREFIX_RE.match(prefix):
            raise ValueError('prefix must be 1-8 lowercase letters/digits: %r' % prefix)
        self.prefix = prefix
        self.subnet = ipaddress.ip_network(subnet)
        self.bridge = '%s-br' % prefix
        self.partition_table = '%s_partition' % prefix
        self.hosts = {}
        self._free_addresses = self.subnet.hosts()
        self.address = str(next(self._free_addresses))
        if create:
            cleanup_stale(prefix)
            self._create_bridge()

    def describe(self):
        """What :meth:`attach` needs to find this network again, JSON-ready."""
        return {'prefix': self.prefix, 'subnet': str(self.subnet),
                'hosts': {name: {'netns': host.name, 'address': host.address,
                                 'veth': host.veth}
                          for name, host in self.hosts.items()}}

    @classmethod
    def attach(cls, record):
        """The network another process built and described with
        :meth:`describe`; nothing is created or removed."""
        network = cls(record['prefix'], record['subnet'], create=False)
        for name, host in record['hosts'].items():
            network.hosts[name] = Host(network, name, host['netns'], host['address'],
                                       host['veth'])
        used = {host.address for host in network.hosts.values()}
        network._free_addresses = (address for address in network.subnet.hosts()
                                   if str(address) not in used | {network.address})
        return network

    def _refuse_subnet_in_use(self):
        # Two bridges on one subnet make the root namespace route the hosts'
        # replies out of the wrong one: every connection then times out,
        # which looks like a partition nobody made.
        routes = json.loads(_run(['ip', '-j', '-4', 'route', 'show']).stdout or '[]')
        for route in routes:
            if route['dst'] == 'default':
                continue
            if ipaddress.ip_network(route['dst'], strict=False).overlaps(self.subnet):
                raise SubnetInUse(
                    'subnet %s overlaps %s, already routed through %s (a network another '
                    'run left behind? remove it, e.g. with `ip link del %s`)'
                    % (self.subnet, route['dst'], route.get('dev'), route.get('dev')))

    def _create_bridge(self):
        self._refuse_subnet_in_use()
        _run(['ip', 'link', 'add', self.bridge, 'type', 'bridge'])
        _run(['ip', 'addr', 'add', '%s/%d' % (self.address, self.subnet.prefixlen),
              'dev', self.bridge])
        _run(['ip', 'link', 'set', self.bridge, 'up'])
        LOG.info('Created bridge %s with %s/%d', self.bridge, self.address,
                 self.subnet.prefixlen)

    def add_host(self, name):
        """Create a namespace PREFIX-NAME wired to the bridge; returns its Host."""
        if not _HOST_NAME_RE.match(name) or name in self.hosts:
            raise ValueError('invalid or duplicate host name %r' % name)
        netns = '%s-%s' % (self.prefix, name)
        veth = '%s-v%d' % (self.prefix, len(self.hosts))
        address = str(next(self._free_addresses))
        _run(['ip', 'netns', 'add', netns])
        _run(['ip', 'link', 'add', veth, 'type', 'veth', 'peer', 'name', HOST_INTERFACE,
              'netns', netns])
        _run(['ip', 'link', 'set', veth, 'master', self.bridge, 'up'])
        _run(['ip', '-n', netns, 'addr', 'add', '%s/%d' % (address, self.subnet.prefixlen),
              'dev', HOST_INTERFACE])
        _run(['ip', '-n', netns, 'link', 'set', HOST_INTERFACE, 'up'])
        _run(['ip', '-n', netns, 'link', 'set', 'lo', 'up'])
        # The set starts empty: block() fills it.
        _nft('''table inet %s {
  set blocked_peers {
    type ipv4_addr
  }
  chain drop_blocked {
    type filter hook input priority 0;
    ip saddr @blocked_peers drop
  }
}
''' % self.partition_table, netns)
        host = Host(self, name, netns, address, veth)
        self.hosts[name] = host
        LOG.info('Added %s', host)
        return host

    def destroy(self):
        """Remove every namespace, veth, nftables table and the bridge."""
        cleanup_stale(self.prefix)
        self.hosts.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.destroy()
