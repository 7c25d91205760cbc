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

"""systemd readiness (Type=notify units): the router says READY=1 only once
it is registered in ZooKeeper and serving, the edge only once its control
socket answers, each STOPPING=1 when SIGTERM stops it. Real daemons with a
NOTIFY_SOCKET of the test's own, as systemd starts them."""

import os
import signal
import socket
import subprocess

import pytest

from ovs_daemon.api import edge_client
from ovs_daemon.devcluster import cluster as cluster_mod

pytestmark = pytest.mark.slow


@pytest.fixture
def vpool(tmp_path):
    cluster = cluster_mod.Cluster(tmp_path / 'vpool')
    try:
        yield cluster.up(routers=1)
    finally:
        cluster.down()


@pytest.fixture
def notify_socket(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / 'notify.sock'))
    sock.settimeout(60)
    yield sock
    sock.close()


def start_daemon(program, config, notify_socket):
    env = dict(os.environ, NOTIFY_SOCKET=notify_socket.getsockname())
    return subprocess.Popen([os.path.join(cluster_mod.BIN_DIR, program), '--config-file',
                             config], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_daemon(process):
    if process.poll() is None:
        process.kill()
        process.wait(30)


def test_the_router_is_ready_once_registered_and_serving(vpool, notify_socket):
    router = vpool.router('r1')
    vpool.stop_router('r1')
    process = start_daemon('ovs-router', router['config'], notify_socket)
    try:
        assert notify_socket.recv(4096) == b'READY=1'
        assert [r['id'] for r in vpool.client().routers()] == ['r1']
        assert vpool.client('r1').health()
        process.send_signal(signal.SIGTERM)
        assert notify_socket.recv(4096) == b'STOPPING=1'
        assert process.wait(120) == 0
    finally:
        stop_daemon(process)


def test_the_edge_is_ready_once_its_control_socket_answers(vpool, notify_socket):
    edge = vpool.add_edge('hv1', site='a')
    vpool.stop_edge('hv1')
    process = start_daemon('ovs-edge', edge['config'], notify_socket)
    try:
        assert notify_socket.recv(4096) == b'READY=1'
        assert edge_client.EdgeControlClient(edge['control'], timeout=5).status()[
            'host'] == 'hv1'
        process.send_signal(signal.SIGTERM)
        assert notify_socket.recv(4096) == b'STOPPING=1'
        assert process.wait(60) == 0
    finally:
        stop_daemon(process)
