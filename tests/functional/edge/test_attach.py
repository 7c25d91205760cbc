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

"""Attaching and detaching through a live edge, with real routers, and what
real NBD clients see on the edge's socket."""

import grp
import json
import os
import socket
import stat
import threading

import pytest

from ovs_daemon.api import edge_client
from ovs_daemon.devcluster import cluster as cluster_mod
from tests import unix_peer
from tests.functional.clients import qemu_io
from tests.functional.clients import run

pytestmark = pytest.mark.slow
MiB = 1 << 20


def test_attach_serves_real_clients_and_detach_is_idempotent(local_vpool, tmp_path):
    api = local_vpool.client()
    api.create_volume('v1', 64 * MiB)
    edge = edge_client.EdgeControlClient(local_vpool.edge('hv1')['control'])
    token = api.create_attachment('v1', 'hv1')['token']
    attached = edge.attach('v1', 'default', token)
    again = edge.attach('v1', 'default', token)

    assert again['socket'] == attached['socket']
    assert attached['size'] == 64 * MiB
    uri = attached['uri']
    qemu_io(uri, 'write -P 0x42 1M 2M', 'flush')
    assert 'verification failed' not in qemu_io(uri, 'read -P 0x42 1M 2M')
    info = json.loads(run('nbdinfo', '--json', uri))
    assert info['exports'][0]['export-size'] == 64 * MiB
    run('fio', '--name=verify', '--ioengine=nbd', '--uri=%s' % uri, '--rw=randwrite',
        '--bs=4k', '--iodepth=16', '--size=16M', '--verify=crc32c', '--do_verify=1',
        '--verify_fatal=1', cwd=tmp_path)
    assert [v['volume'] for v in edge.list()] == ['v1']

    api.extend_volume('v1', 128 * MiB)
    assert edge.refresh('v1', 'default') == 128 * MiB
    assert 'verification failed' not in qemu_io(uri, 'write -P 9 100M 4k', 'read -P 9 100M 4k')

    assert edge.detach('v1', 'default')['attached'] is True
    assert edge.detach('v1', 'default')['attached'] is False
    assert edge.list() == []


@pytest.mark.parametrize('request_fields, error_type', [
    ({'volume': 'v1', 'vpool': 'default', 'routers': 'r1', 'token': 't' * 24}, 'BadRequest'),
    ({'volume': 'v/1', 'vpool': 'default', 'token': 't' * 24}, 'BadRequest'),
    ({'volume': 'v1', 'vpool': 'default', 'token': ''}, 'BadRequest'),
    ({'volume': 'nope', 'vpool': 'default', 'token': 't' * 24}, 'NotFound'),
])
def test_bad_attach_requests_are_refused_and_attach_nothing(local_vpool, request_fields,
                                                           error_type):
    local_vpool.client().create_volume('v1', 16 * MiB)
    edge = edge_client.EdgeControlClient(local_vpool.edge('hv1')['control'])
    with pytest.raises(edge_client.EdgeRequestError) as error:
        edge.call('attach', **request_fields)
    assert error.value.type == error_type
    assert edge.list() == []


@pytest.mark.skipif(os.geteuid() != 0, reason='connecting as other users needs root')
def test_a_socket_group_reaches_the_volume_sockets(tmp_path):
    """QEMU runs as another user than the edge: with socket_group, a member
    of the group reaches an attached volume's socket, another user does not."""
    cluster = cluster_mod.Cluster(tmp_path / 'vpool')
    try:
        cluster.up(routers=1)
        cluster.add_edge('hv1', options={'edge': {'socket_group': 'daemon'}})
        api = cluster.client()
        api.create_volume('v1', 16 * MiB)
        edge = edge_client.EdgeControlClient(cluster.edge('hv1')['control'])
        path = edge.attach('v1', 'default', api.create_attachment('v1', 'hv1')['token'])['socket']
        # The socket_dir the test cluster made (0700) is opened the way an
        # operator's /run/ovs-edge is; the vPool directory is the edge's own.
        os.chmod(os.path.dirname(os.path.dirname(path)), 0o711)

        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
        assert os.stat(path).st_gid == grp.getgrnam('daemon').gr_gid
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o711
        assert unix_peer.exchange_as(path, 'nobody', 'daemon') == b'NBDMAGIC'
        assert unix_peer.exchange_as(path, 'nobody', 'nogroup') is None
    finally:
        cluster.down()


class Listener:
    """A TCP listener posing as a router: it records every connection and
    the bytes sent on it (a token would be among them)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.address = '127.0.0.1:%d' % self.sock.getsockname()[1]
        self.received = []
        self._running = True
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while self._running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.settimeout(1.0)
            try:
                self.received.append(conn.recv(65536))
            except OSError:
                self.received.append(b'')
            conn.close()

    def close(self):
        self._running = False
        self._thread.join()
        self.sock.close()


def test_an_attach_naming_a_foreign_router_is_refused_and_sends_it_nothing(local_vpool):
    """Any member of the socket group can send attach requests: one naming a
    router of its own must not make the edge call it (with the edge's
    credential) or connect to it."""
    api = local_vpool.client()
    api.create_volume('v1', 16 * MiB)
    token = api.create_attachment('v1', 'hv1')['token']
    edge = edge_client.EdgeControlClient(local_vpool.edge('hv1')['control'])
    foreign = Listener()
    try:
        with pytest.raises(edge_client.EdgeRequestError) as error:
            edge.call('attach', volume='v1', vpool='default', token=token,
                      routers=[{'id': 'r1', 'site': 'default', 'api': 'http://' + foreign.address,
                                'nbd': foreign.address}])
    finally:
        foreign.close()

    assert error.value.type == 'BadRequest'
    assert 'router_endpoints' in error.value.message
    assert foreign.received == []
    assert edge.list() == []
    # The configured routers still serve the same attach.
    assert edge.attach('v1', 'default', token)['size'] == 16 * MiB
