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

import pytest

from ovs_daemon.api import edge_client
from ovs_daemon.devcluster import cluster as cluster_mod
from ovs_daemon.devcluster import guest as guest_mod
from tests.functional import clients

MiB = 1 << 20


@pytest.fixture
def local_vpool(tmp_path):
    """Two routers and an edge hv1 on the loopback address."""
    cluster = cluster_mod.Cluster(tmp_path / 'vpool')
    try:
        cluster.up(routers=2)
        cluster.add_edge('hv1')
        yield cluster
    finally:
        cluster.down()


@pytest.fixture
def lone_router(tmp_path):
    """One router r1 and an edge hv1 that fails IO after a 2 s failover
    timeout, on the loopback address; volume v1 attached on hv1, its first
    64 KiB written with pattern 3 and flushed. Yields the cluster and v1's
    URI at the edge."""
    cluster = cluster_mod.Cluster(tmp_path / 'vpool')
    try:
        cluster.up(routers=1)
        edge = cluster.add_edge('hv1', options={'edge': {'failover_timeout': 2.0}})
        api = cluster.client()
        api.create_volume('v1', 16 * MiB)
        token = api.create_attachment('v1', 'hv1')['token']
        uri = edge_client.EdgeControlClient(edge['control']).attach('v1', 'default', token)['uri']
        clients.qemu_io(uri, 'write -P 3 0 64k', 'flush')
        yield cluster, uri
    finally:
        cluster.down()


@pytest.fixture
def network(make_network):
    return make_network('ovsed', '10.213.203.0/24')


@pytest.fixture
def hosts(network):
    """Simulated hosts: routers r1, r2 (site a), r3 (site b); hypervisors
    hva and hvb (site a)."""
    return {name: network.add_host(name) for name in ('r1', 'r2', 'r3', 'hva', 'hvb')}


@pytest.fixture
def make_vpool(tmp_path, network, hosts):
    """make_vpool(options, edge_options) spreads a vPool over the simulated
    hosts, an edge on each hypervisor; ``options`` adds router options to
    the defaults (``{group: {option: value}}``), ``edge_options`` options of
    the edges' [edge] group. Every one is stopped by PID at the end."""
    clusters = []

    def make(options=None, edge_options=None):
        cluster = cluster_mod.Cluster(tmp_path / ('vpool%d' % len(clusters)))
        clusters.append(cluster)
        router_options = {'router': {'peer_timeout': 0.5}}
        for group, values in (options or {}).items():
            router_options.setdefault(group, {}).update(values)
        cluster.up(routers=3, sites=['a', 'a', 'b'],
                   hosts={name: hosts[name] for name in ('r1', 'r2', 'r3')},
                   zookeeper_host=network.address, options=router_options)
        # r3 (site b) listed first: the edges must still prefer their own site.
        endpoints = ','.join(reversed(cluster.router_endpoints().split(',')))
        for name in ('hva', 'hvb'):
            cluster.add_edge(name, site='a', host=hosts[name],
                             options={'edge': dict(edge_options or {},
                                                   router_endpoints=endpoints)})
        return cluster

    yield make
    for cluster in clusters:
        cluster.down()


@pytest.fixture
def vpool(make_vpool):
    """Routers r1, r2 (site a), r3 (site b), edges on hva and hvb."""
    return make_vpool()


class Hypervisor:
    """What nova and os-brick do on one host, reduced to the edge calls."""

    def __init__(self, vpool, name):
        self.vpool = vpool
        self.name = name
        self.edge = edge_client.EdgeControlClient(vpool.edge(name)['control'])

    def attach(self, volume, multiattach=None):
        token = self.vpool.client().create_attachment(volume, self.name,
                                                      multiattach=multiattach)['token']
        answer = self.edge.attach(volume, self.vpool.state['vpool'], token)
        return answer['socket']

    def guest(self, volume, socket_path, **kwargs):
        return guest_mod.GuestWriter(guest_mod.unix_connector(socket_path, volume), **kwargs)


@pytest.fixture
def hypervisors(vpool):
    return {name: Hypervisor(vpool, name) for name in ('hva', 'hvb')}
