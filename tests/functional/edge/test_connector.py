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

"""The os-brick connector against a live edge and routers, called the way
nova and cinder call it."""

import os
import subprocess
import sys

from os_brick import exception as brick_exception
from os_brick.initiator import connector as brick_connector
import os_brick.privileged
from oslo_config import cfg
import pytest

from ovs_cinder.brick import connector as ovs_connector
from ovs_daemon.devcluster import cluster as cluster_mod
from tests.functional.clients import qemu_io

pytestmark = pytest.mark.slow
MiB = 1 << 20


@pytest.fixture
def edge_host(tmp_path):
    """Routers, and this host's edge in site a, known to os-brick."""
    cluster = cluster_mod.Cluster(tmp_path / 'vpool')
    try:
        cluster.up(routers=2, sites=['a', 'b'])
        edge = cluster.add_edge('hv1', site='a')
        cfg.CONF.set_override('control_socket', edge['control'], group='ovs_edge')
        os_brick.privileged.default.set_client_mode(False)
        ovs_connector.register()
        yield cluster
    finally:
        cfg.CONF.clear_override('control_socket', group='ovs_edge')
        cluster.down()


def connection_properties(cluster, volume, host):
    token = cluster.client().create_attachment(volume, host)['token']
    return {'vpool': 'default', 'volume': volume, 'token': token, 'host': host}


def test_connector_properties_name_the_edge_and_its_site(edge_host):
    props = brick_connector.get_connector_properties(None, '10.0.0.1', False, False,
                                                     host='hv1')
    assert props['ovs_edge_socket'] == edge_host.edge('hv1')['control']
    assert props['ovs_edge_site'] == 'a'
    assert props['host'] == 'hv1'


def test_connect_extend_disconnect_through_the_factory(edge_host):
    edge_host.client().create_volume('volume-1', 64 * MiB)
    connector = brick_connector.InitiatorConnector.factory('OVS_EDGE', None)
    properties = connection_properties(edge_host, 'volume-1', 'hv1')

    device = connector.connect_volume(properties)

    assert device['type'] == 'nbd' and device['path'].endswith('volume-1.sock')
    assert connector.get_volume_paths(properties) == [device['path']]
    assert connector.check_valid_device(device['path'])
    qemu_io(device['uri'], 'write -P 0x61 0 1M', 'flush')
    edge_host.client().extend_volume('volume-1', 128 * MiB)
    assert connector.extend_volume(properties) == 128 * MiB
    connector.disconnect_volume(properties, device)
    connector.disconnect_volume(properties, device)
    assert connector.get_volume_paths(properties) == []
    assert not connector.check_valid_device(device['path'])


def test_disconnect_after_evacuate_with_the_destinations_properties_is_harmless(edge_host):
    """nova on the recovered source host: force disconnect with the
    destination's connection info drops only the local, revoked attachment."""
    api = edge_host.client()
    api.create_volume('volume-1', 64 * MiB)
    connector = brick_connector.InitiatorConnector.factory('OVS_EDGE', None)
    source = connection_properties(edge_host, 'volume-1', 'hv1')
    connector.connect_volume(source)
    api.delete_attachment('volume-1', 'hv1')
    destination = connection_properties(edge_host, 'volume-1', 'hv2')
    record = api.volume('volume-1')

    connector.disconnect_volume(destination, None, force=True)

    assert connector.get_volume_paths(destination) == []
    after = api.volume('volume-1')
    assert after['attachments'] == ['hv2']
    assert (after['owner'], after['epoch']) == (record['owner'], record['epoch'])


def test_without_an_edge_connect_fails_clearly_and_disconnect_succeeds(tmp_path):
    ovs_connector.register()
    cfg.CONF.set_override('control_socket', str(tmp_path / 'no-edge.sock'), group='ovs_edge')
    try:
        connector = brick_connector.InitiatorConnector.factory('OVS_EDGE', None)
    finally:
        cfg.CONF.clear_override('control_socket', group='ovs_edge')
    properties = {'vpool': 'default', 'volume': 'volume-1', 'token': 't' * 24, 'routers': []}
    with pytest.raises(brick_exception.BrickException, match='no edge listens'):
        connector.connect_volume(properties)
    connector.disconnect_volume(properties, None)
    connector.disconnect_volume(properties, None, force=True)


def test_our_modules_import_no_eventlet_of_their_own():
    """os-brick itself imports eventlet (through oslo.privsep); the
    connector, the edge client and the nova driver add no eventlet import."""
    code = ('import sys\n'
            'import os_brick.initiator.connector, os_brick.initiator.connectors.base\n'
            'before = set(sys.modules)\n'
            'import ovs_cinder.brick.connector, ovs_daemon.api.edge_client\n'
            'print(sorted(m for m in set(sys.modules) - before if "eventlet" in m))\n')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == '[]'
    root = os.path.dirname(os.path.dirname(ovs_connector.__file__))
    for directory in ('brick', 'edge', 'nova'):
        for name in os.listdir(os.path.join(root, directory)):
            if name.endswith('.py'):
                with open(os.path.join(root, directory, name)) as f:
                    assert 'import eventlet' not in f.read(), name
