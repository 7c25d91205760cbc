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

"""The edge's control socket: root-only, JSON lines, and bad requests get a
clear error while the connection and the server keep working."""

import asyncio
import grp
import json
import os
import shutil
import socket
import stat
import tempfile
import threading

import pytest

from ovs_cinder.edge import control
from ovs_daemon.api import edge_client
from ovs_daemon.api import errors as api_errors
from tests import unix_peer


class ServerThread:
    def __init__(self, path, handler, gid=None):
        self.loop = asyncio.new_event_loop()
        self.server = control.ControlServer(path, handler, gid)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)

    def stop(self):
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def edge_socket(tmp_path):
    async def handler(request):
        if request['op'] == 'status':
            return {'host': 'hv1'}
        if request['op'] == 'boom':
            raise RuntimeError('kaboom')
        raise api_errors.NotFound('no volume %s' % request.get('volume'))
    path = str(tmp_path / 'run' / 'control.sock')
    server = ServerThread(path, handler)
    yield path
    server.stop()


def exchange(path, *lines):
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(path)
        answers = sock.makefile('rb')
        result = []
        for line in lines:
            sock.sendall(line + b'\n')
            result.append(json.loads(answers.readline()))
        return result


def test_the_socket_is_for_root_only(edge_socket):
    assert stat.S_IMODE(os.stat(edge_socket).st_mode) == 0o600


def test_bad_requests_get_errors_and_the_connection_keeps_working(edge_socket):
    answers = exchange(edge_socket, b'{not json', b'[1]', b'{"no": "op"}',
                       b'{"op": "boom"}', b'{"op": "detach", "volume": "v9"}',
                       b'{"op": "status"}')
    assert [a['ok'] for a in answers] == [False] * 5 + [True]
    assert [a['error']['type'] for a in answers[:5]] == [
        'BadRequest', 'BadRequest', 'BadRequest', 'InternalError', 'NotFound']
    assert 'kaboom' in answers[3]['error']['message']
    assert answers[5]['host'] == 'hv1'


def test_client_raises_distinct_errors(edge_socket, tmp_path):
    client = edge_client.EdgeControlClient(edge_socket, timeout=5)
    assert client.status()['host'] == 'hv1'
    with pytest.raises(edge_client.EdgeRequestError) as error:
        client.detach('v9', 'default')
    assert error.value.type == 'NotFound'
    with pytest.raises(edge_client.EdgeUnavailable):
        edge_client.EdgeControlClient(str(tmp_path / 'nothing.sock')).status()


@pytest.mark.skipif(os.geteuid() != 0, reason='changing a socket\'s group and '
                    'connecting as other users needs root')
def test_a_socket_group_opens_the_socket_to_that_group_only():
    # Not under pytest's tmp_path: its parents are 0700, so no other user
    # could reach the socket whatever its mode.
    top = tempfile.mkdtemp(prefix='ovs-edge-group-')
    try:
        os.chmod(top, 0o711)
        path = os.path.join(top, 'run', 'control.sock')

        async def handler(request):
            return {'host': 'hv1'}
        server = ServerThread(path, handler, gid=control.group_id('daemon'))
        try:
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
            assert os.stat(path).st_gid == grp.getgrnam('daemon').gr_gid
            assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o711
            status = b'{"op": "status"}\n'
            answer = unix_peer.exchange_as(path, 'nobody', 'daemon', status, 1 << 16)
            assert json.loads(answer)['ok'] is True
            assert unix_peer.exchange_as(path, 'nobody', 'nogroup', status) is None
        finally:
            server.stop()
    finally:
        shutil.rmtree(top)


def test_socket_groups_by_name_or_number():
    assert control.group_id('daemon') == grp.getgrnam('daemon').gr_gid
    assert control.group_id('4242') == 4242
    with pytest.raises(ValueError, match='no group'):
        control.group_id('no-such-group-here')


@pytest.mark.parametrize('gid, mode', [(None, 0o700), (4242, 0o711)])
def test_socket_directories_get_their_mode_whatever_the_umask(tmp_path, gid, mode):
    old_umask = os.umask(0o077)
    try:
        control.make_directories(str(tmp_path / 'run' / 'volumes' / 'default'), gid)
    finally:
        os.umask(old_umask)
    for directory in ('run', 'run/volumes', 'run/volumes/default'):
        assert stat.S_IMODE((tmp_path / directory).stat().st_mode) == mode, directory
    # An existing directory is the operator's: left as it is.
    (tmp_path / 'run').chmod(0o750)
    control.make_directories(str(tmp_path / 'run' / 'volumes' / 'other'), gid)
    assert stat.S_IMODE((tmp_path / 'run').stat().st_mode) == 0o750
