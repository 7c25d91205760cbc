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

"""The nova libvirt volume driver for ovs_edge, against nova's own libvirt
config classes. No libvirt daemon runs here: the host object only answers
"no encryption secret" for the volume."""

from lxml import etree
import nova.conf
from nova.virt.libvirt import driver as libvirt_driver

from ovs_cinder.brick import connector as ovs_connector
from ovs_cinder.nova import volume

SOCKET = '/run/ovs-edge/volumes/default/volume-1.sock'


class HostWithoutSecrets:
    def find_secret(self, usage_type, usage_id):
        return None


def connection_info():
    return {'driver_volume_type': 'ovs_edge', 'serial': 'c2f1b7d0-1111-2222-3333-444455556666',
            'data': {'volume': 'volume-1', 'vpool': 'default', 'device_path': SOCKET,
                     'token': 'secret-token-value', 'routers': []}}


def test_the_disk_is_an_nbd_network_disk_over_the_edge_socket():
    driver = volume.LibvirtOVSEdgeVolumeDriver(HostWithoutSecrets())
    conf = driver.get_config(connection_info(), {'dev': 'vdb', 'bus': 'virtio', 'type': 'disk'})
    disk = etree.fromstring(conf.to_xml())
    assert disk.get('type') == 'network'
    source = disk.find('source')
    assert (source.get('protocol'), source.get('name')) == ('nbd', 'volume-1')
    host = source.find('host')
    assert host.attrib == {'transport': 'unix', 'socket': SOCKET}
    # QEMU reconnects to the socket across a restart of the edge.
    assert source.find('reconnect').attrib == {'delay': '60'}
    assert disk.find('target').attrib == {'dev': 'vdb', 'bus': 'virtio'}
    assert disk.find('driver').get('type') == 'raw'
    assert disk.find('serial').text == 'c2f1b7d0-1111-2222-3333-444455556666'
    assert b'secret-token-value' not in etree.tostring(disk)


def test_registration_is_idempotent_and_names_this_driver():
    volume.register()
    volume.register()
    assert libvirt_driver.VOLUME_DRIVERS['ovs_edge'] == volume.CLASS_PATH
    assert ovs_connector.CLASS_PATH in ovs_connector.brick_connector.unix_connector_list
    assert ovs_connector.brick_connector.unix_connector_list.count(
        ovs_connector.CLASS_PATH) == 1


def test_the_edge_is_where_nova_conf_says(tmp_path):
    # nova.conf's [ovs_edge], registered in nova's own configuration.
    nova_conf = nova.conf.CONF
    assert nova_conf.ovs_edge.control_socket == '/run/ovs-edge/control.sock'
    nova_conf.set_override('control_socket', str(tmp_path / 'edge.sock'), group='ovs_edge')
    try:
        driver = volume.LibvirtOVSEdgeVolumeDriver(HostWithoutSecrets())
        assert driver.connector.edge.path == str(tmp_path / 'edge.sock')
    finally:
        nova_conf.clear_override('control_socket', group='ovs_edge')


def test_reconnect_delay_follows_the_option_and_zero_leaves_it_out():
    driver = volume.LibvirtOVSEdgeVolumeDriver(HostWithoutSecrets())
    conf = ovs_connector.CONF
    disk_info = {'dev': 'vdb', 'bus': 'virtio', 'type': 'disk'}
    try:
        conf.set_override('reconnect_delay', 5, group='ovs_edge')
        source = etree.fromstring(driver.get_config(connection_info(), disk_info).to_xml()
                                  ).find('source')
        assert source.find('reconnect').get('delay') == '5'
        conf.set_override('reconnect_delay', 0, group='ovs_edge')
        source = etree.fromstring(driver.get_config(connection_info(), disk_info).to_xml()
                                  ).find('source')
        assert source.find('reconnect') is None
    finally:
        conf.clear_override('reconnect_delay', group='ovs_edge')
