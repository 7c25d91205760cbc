import pytest
from kazoo import client as kazoo_client

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
