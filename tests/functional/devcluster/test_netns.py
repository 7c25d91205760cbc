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

import json
import os
import subprocess
import sys

import pytest

from ovs_daemon.devcluster import netns
from ovs_daemon.devcluster import process
from ovs_daemon.devcluster import sockets
from ovs_daemon.devcluster import zookeeper
from tests.functional.devcluster import helpers

pytestmark = pytest.mark.slow

PORT = 7000
STALE_PREFIX = 'ovsfs'
STALE_SUBNET = '10.213.201.0/24'
PYTHON = os.path.realpath(sys.executable)


@pytest.fixture
def hello_server(network, tmp_path, stop_afterwards):
    """Host 'b' of three, serving "hello" on PORT."""
    for name in ('a', 'b', 'c'):
        network.add_host(name)
    server = network.hosts['b']
    running = stop_afterwards(server.start(
        'hello', [sys.executable, '-c', helpers.HELLO_SERVER, str(PORT)], str(tmp_path)))
    running.wait_for_port(server.address, PORT, timeout=10)
    return server


def test_hosts_exchange_tcp_traffic(network, hello_server):
    assert helpers.probe(network.hosts['a'], hello_server.address, PORT) == 'OK hello'


def test_process_in_host_has_its_own_pid_and_dies_on_stop(network, tmp_path):
    host = network.add_host('a')
    sleeper = process.Process.start(
        'sleeper', [sys.executable, '-c', 'import time; time.sleep(600)'], str(tmp_path),
        netns=host.name)
    try:
        sleeper.wait_until(lambda: _executable(sleeper.pid) == PYTHON, timeout=10,
                           what='python rather than ip')
        # `ip netns exec` exec'd the command: the recorded PID is the real one.
        assert (os.stat('/proc/%d/ns/net' % sleeper.pid).st_ino
                == os.stat(os.path.join('/run/netns', host.name)).st_ino)
    finally:
        sleeper.stop()
    assert not os.path.exists('/proc/%d' % sleeper.pid)
    assert _netns_pids(host.name) == []


def test_block_drops_silently_between_two_hosts_only(network, hello_server):
    a, c = network.hosts['a'], network.hosts['c']

    a.block(hello_server)
    assert helpers.probe(a, hello_server.address, PORT) == 'TimeoutError'
    assert helpers.probe(c, hello_server.address, PORT) == 'OK hello'
    # A closed port would answer with a RST if anything got through.
    assert helpers.probe(hello_server, a.address, PORT) == 'TimeoutError'
    assert helpers.probe(a, network.address, 9) == 'ConnectionRefusedError'

    a.unblock(hello_server)
    assert helpers.probe(a, hello_server.address, PORT) == 'OK hello'


def test_isolate_drops_everything_silently_until_heal(network, hello_server):
    a = network.hosts['a']

    hello_server.isolate()
    assert helpers.probe(a, hello_server.address, PORT) == 'TimeoutError'
    assert helpers.probe(hello_server, network.address, 9) == 'TimeoutError'
    assert helpers.probe(hello_server, '127.0.0.1', PORT) == 'OK hello'
    assert not sockets.can_connect(hello_server.address, PORT, timeout=1.0)

    hello_server.heal()
    assert helpers.probe(a, hello_server.address, PORT) == 'OK hello'


def test_zookeeper_on_bridge_serves_hosts(network, tmp_path, stop_afterwards):
    host = network.add_host('a')
    zk = stop_afterwards(zookeeper.ZooKeeperServer(str(tmp_path), host=network.address).start())

    assert helpers.probe(host, network.address, zk.port, send='ruok') == 'OK imok'
    assert zookeeper.four_letter_word(network.address, zk.port, 'ruok',
                                      netns=host.name) == 'imok'
    host.isolate()
    assert helpers.probe(host, network.address, zk.port, send='ruok') == 'TimeoutError'


def test_leftovers_of_a_crashed_run_are_removed(tmp_path):
    if os.geteuid() != 0:
        pytest.skip('network namespaces need root')
    crashed = netns.Network(STALE_PREFIX, STALE_SUBNET)
    host = crashed.add_host('a')
    host.isolate()
    orphan = host.start('orphan', [sys.executable, '-c', 'import time; time.sleep(600)'],
                        str(tmp_path))
    try:
        # A new run with the same prefix starts over instead of failing.
        with netns.Network(STALE_PREFIX, STALE_SUBNET) as again:
            again.add_host('a')
            assert not orphan.is_alive()
        assert not any(name.startswith(STALE_PREFIX) for name in _names_in_use())
    finally:
        orphan.stop()
        netns.cleanup_stale(STALE_PREFIX)


def test_a_subnet_another_network_routes_is_refused_and_that_network_still_works(
        tmp_path, stop_afterwards):
    if os.geteuid() != 0:
        pytest.skip('network namespaces need root')
    with netns.Network(STALE_PREFIX, STALE_SUBNET) as first:
        host = first.add_host('a')
        zk = stop_afterwards(zookeeper.ZooKeeperServer(str(tmp_path),
                                                       host=first.address).start())
        with pytest.raises(netns.SubnetInUse, match='already routed through %s-br'
                           % STALE_PREFIX):
            netns.Network(STALE_PREFIX + 'x', STALE_SUBNET)
        assert not any(name.startswith(STALE_PREFIX + 'x') for name in _names_in_use())
        assert helpers.probe(host, first.address, zk.port, send='ruok') == 'OK imok'



def _executable(pid):
    return os.path.realpath('/proc/%d/exe' % pid)


def _netns_pids(name):
    return subprocess.run(['ip', 'netns', 'pids', name], capture_output=True, text=True,
                          check=True).stdout.split()


def _names_in_use():
    links = json.loads(subprocess.run(['ip', '-j', 'link', 'show'], capture_output=True,
                                      check=True).stdout)
    namespaces = json.loads(subprocess.run(['ip', '-j', 'netns', 'list'], capture_output=True,
                                           check=True).stdout or '[]')
    tables = json.loads(subprocess.run(['nft', '-j', 'list', 'tables'], capture_output=True,
                                       check=True).stdout)['nftables']
    return ([link['ifname'] for link in links] + [ns['name'] for ns in namespaces]
            + [item['table']['name'] for item in tables if 'table' in item])
