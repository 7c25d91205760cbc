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


"""A restart of the edge (kill -9 or a clean stop) is invisible to a guest:
the edge serves its attachments again from its state file at the same
socket paths and QEMU's NBD client reconnects (``reconnect-delay``, what
libvirt's ``<reconnect delay='N'/>`` sets) and sends again what was in
flight. The guest is qemu-io writing 4 KiB blocks, each with its own
pattern, while the edge is killed and started again."""

import logging
import os
import re
import stat
import subprocess
import threading
import time

import pytest

from ovs_daemon.api import edge_client
from tests.functional.clients import qemu_io

pytestmark = pytest.mark.slow
LOG = logging.getLogger(__name__)
MiB = 1 << 20
BLOCKS = 400
RECONNECT_DELAY = 30


@pytest.fixture
def vpool(local_vpool):
    return local_vpool


def attach(vpool, volume):
    token = vpool.client().create_attachment(volume, 'hv1')['token']
    return edge_client.EdgeControlClient(vpool.edge('hv1')['control']).attach(
        volume, 'default', token)


def pattern(block):
    return block % 255 + 1


def reconnecting_qemu_io(socket_path, volume, commands):
    """qemu-io on the edge's socket with QEMU's NBD reconnect, as a guest."""
    options = ('driver=nbd,server.type=unix,server.path=%s,export=%s,reconnect-delay=%d'
               % (socket_path, volume, RECONNECT_DELAY))
    argv = ['qemu-io', '--image-opts', options]
    for command in commands:
        argv += ['-c', command]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def op_seconds(output):
    """Each completed request's time, from qemu-io's "N ops/sec"."""
    return [1.0 / float(rate) for rate in re.findall(r'and ([0-9.]+) ops/sec', output)]


@pytest.mark.parametrize('stop', ['kill', 'stop'])
def test_the_guest_sees_no_error_across_a_restart_of_the_edge(vpool, stop):
    vpool.client().create_volume('v1', 16 * MiB, router='r1')
    socket_path = attach(vpool, 'v1')['socket']
    state_file = os.path.join(vpool.edge('hv1')['dir'], 'attachments.json')
    assert stat.S_IMODE(os.stat(state_file).st_mode) == 0o600
    commands = []
    for block in range(BLOCKS):
        commands += ['write -P %d %d 4k' % (pattern(block), block * 4096), 'sleep 5']
    guest = reconnecting_qemu_io(socket_path, 'v1', commands)

    def restart_edge():
        time.sleep(1.0)
        old_pid = vpool.edge('hv1')['pid']
        if stop == 'kill':
            vpool.kill_edge('hv1')
        else:
            vpool.stop_edge('hv1')
        vpool.start_edge('hv1')
        assert vpool.edge('hv1')['pid'] != old_pid
    restarter = threading.Thread(target=restart_edge)
    restarter.start()
    output, _ = guest.communicate(timeout=300)
    restarter.join()

    assert guest.returncode == 0, output
    assert 'failed' not in output and 'error' not in output.lower(), output
    assert output.count('wrote 4096/4096') == BLOCKS
    listed = edge_client.EdgeControlClient(vpool.edge('hv1')['control']).list()
    assert [(v['volume'], v['socket'], v['state']) for v in listed] == [
        ('v1', socket_path, 'connected')]
    # Every acknowledged write reads back, through the restarted edge.
    reads = ['read -P %d %d 4k' % (pattern(block), block * 4096) for block in range(BLOCKS)]
    for start in range(0, BLOCKS, 100):
        out = qemu_io('nbd+unix:///v1?socket=%s' % socket_path, *reads[start:start + 100])
        assert 'verification failed' not in out and 'failed' not in out
    LOG.warning('IO pause across an edge %s and start: %.3f s', stop,
                max(op_seconds(output)))


def test_a_restarted_edge_refuses_nothing_it_did_not_have(vpool):
    """The state file lists exactly the attachments: a detach is gone after
    a restart too."""
    vpool.client().create_volume('v1', 16 * MiB)
    vpool.client().create_volume('v2', 16 * MiB)
    attach(vpool, 'v1')
    v2 = attach(vpool, 'v2')
    edge = edge_client.EdgeControlClient(vpool.edge('hv1')['control'])
    edge.detach('v1', 'default')
    vpool.kill_edge('hv1')
    vpool.start_edge('hv1')
    assert [v['volume'] for v in edge.list()] == ['v2']
    assert 'verification failed' not in qemu_io(v2['uri'], 'write -P 9 0 64k',
                                                'read -P 9 0 64k')
    assert not os.path.exists(vpool.edge('hv1')['dir'] + '/attachments.json.tmp')
