import pytest
from kazoo import client as kazoo_client


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
