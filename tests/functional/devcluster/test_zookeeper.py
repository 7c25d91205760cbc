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

import os
import socket
import threading

from kazoo import protocol
from kazoo import retry
import pytest

from ovs_daemon.devcluster import process
from ovs_daemon.devcluster import sockets
from ovs_daemon.devcluster import zookeeper

pytestmark = pytest.mark.slow


def test_standalone_serves_kazoo_and_stop_leaves_nothing(tmp_path, stop_afterwards,
                                                          kazoo_clients):
    zk = stop_afterwards(zookeeper.ZooKeeperServer(str(tmp_path)).start())
    assert zk.mode() == 'standalone'

    client = kazoo_clients(zk.hosts, timeout=2.0)
    client.create('/devcluster/probe', b'payload', makepath=True)
    assert client.get('/devcluster/probe')[0] == b'payload'
    # The server accepted a 2 s session instead of raising it to its minimum.
    assert 'to=2000' in zk.four_letter_word('cons')

    client.stop()
    zk.stop()
    assert not os.path.exists('/proc/%d' % zk.process.pid)
    assert not sockets.can_connect(zk.host, zk.port)


def test_taken_port_is_reported_with_the_log(tmp_path, stop_afterwards):
    with socket.socket() as squatter:
        squatter.bind(('127.0.0.1', 0))
        squatter.listen()
        zk = zookeeper.ZooKeeperServer(str(tmp_path), port=squatter.getsockname()[1])
        stop_afterwards(zk)

        with pytest.raises(process.ProcessExitedError) as raised:
            zk.start()

    assert 'Address already in use' in str(raised.value)
    assert not zk.is_alive()


def test_ensemble_client_survives_losing_the_leader(tmp_path, stop_afterwards,
                                                     kazoo_clients):
    ensemble = stop_afterwards(zookeeper.ZooKeeperEnsemble(str(tmp_path)).start())
    old_leader = ensemble.leader()
    assert old_leader is not None
    assert sorted(m.mode() for m in ensemble.members) == ['follower', 'follower', 'leader']
    assert len(ensemble.hosts.split(',')) == 3

    client = kazoo_clients(ensemble.hosts)
    session_id = client.client_id[0]
    client.create('/devcluster/counter', b'1', makepath=True)
    reconnected = threading.Event()
    client.add_listener(
        lambda state: reconnected.set() if state == protocol.states.KazooState.CONNECTED
        else None)

    ensemble.kill_member(old_leader)
    new_leader = ensemble.wait_for_quorum(timeout=30)

    assert new_leader != old_leader
    assert not ensemble.members[old_leader].is_alive()
    assert reconnected.wait(timeout=30)
    retry.KazooRetry(max_tries=-1, deadline=30)(client.set, '/devcluster/counter', b'2')
    assert client.get('/devcluster/counter')[0] == b'2'
    assert client.client_id[0] == session_id

    ensemble.start_member(old_leader)
    assert ensemble.members[old_leader].mode() == 'follower'
