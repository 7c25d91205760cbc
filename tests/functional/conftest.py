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

from kazoo import client as kazoo_client
import pytest

from ovs_daemon.devcluster import netns


@pytest.fixture
def kazoo_clients():
    """connect(hosts, timeout) starts a KazooClient with its own session;
    every client is closed at the end, even if the test fails."""
    clients = []

    def connect(hosts, timeout=10.0):
        client = kazoo_client.KazooClient(hosts=hosts, timeout=timeout)
        clients.append(client)
        client.start(timeout=15)
        return client

    yield connect
    for client in clients:
        client.stop()
        client.close()


@pytest.fixture
def make_network():
    """make_network(prefix, subnet) builds simulated hosts' network (each
    suite its own prefix and subnet); all are torn down at the end."""
    networks = []

    def make(prefix, subnet):
        networks.append(netns.Network(prefix=prefix, subnet=subnet))
        return networks[-1]

    yield make
    for network in networks:
        network.destroy()
