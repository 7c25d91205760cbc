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

"""Image copies through the edge on the cinder-volume host: an image into
a volume, and a volume into an image, with qemu-img on the NBD URI.

Glance does not run here: the image service is an in-memory one."""

import io
import subprocess

from cinder.tests.unit import fake_volume
from os_brick.initiator import connector as brick_connector
from oslo_config import cfg
import pytest

from ovs_cinder.brick import connector as ovs_connector
from tests import cinder_objects
from tests.functional.cinder.image_service import MemoryImageService
from tests.functional.clients import qemu_io
from tests.functional.clients import run

pytestmark = pytest.mark.slow
MiB = 1 << 20


@pytest.fixture
def edge_driver(ovs_driver, vpool):
    # Tests run as root: no sudo, no privsep daemons.
    import cinder.privsep
    import os_brick.privileged
    os_brick.privileged.default.set_client_mode(False)
    cinder.privsep.sys_admin_pctxt.set_client_mode(False)
    edge = vpool.add_edge('cinder-host', site='a')
    cfg.CONF.set_override('control_socket', edge['control'], group='ovs_edge')
    cfg.CONF.set_override('host', 'cinder-host')
    yield ovs_driver
    cfg.CONF.clear_override('host')
    cfg.CONF.clear_override('control_socket', group='ovs_edge')


def test_a_qcow2_image_into_a_volume_and_the_volume_into_an_image(edge_driver, vpool,
                                                                  context, tmp_path):
    source = tmp_path / 'cirros.qcow2'
    subprocess.run(['qemu-img', 'create', '-f', 'qcow2', str(source), '64M'], check=True,
                   capture_output=True)
    run('qemu-io', '-f', 'qcow2', '-c', 'write -P 0x6b 1M 2M', str(source))
    images = MemoryImageService()
    image_id = images.add(source, 'qcow2')
    vol = cinder_objects.volume(context)
    vol.volume_type = fake_volume.fake_volume_type_obj(context, extra_specs={})
    vol.glance_metadata = {}   # no database here: nothing to look up
    edge_driver.create_volume(vol)

    edge_driver.copy_image_to_volume(context, vol, images, image_id)

    token = vpool.client().create_attachment(vol.name, 'checker')['token']
    uri = 'nbd://%s/%s/%s' % (vpool.router('r1')['nbd'] if vpool.client().locate(
        vol.name)['owner'] == 'r1' else vpool.router('r2')['nbd'], vol.name, token)
    assert 'verification failed' not in qemu_io(uri, 'read -P 0x6b 1M 2M', 'read -P 0 0 1M')
    assert vpool.client().volume(vol.name)['attachments'] == ['checker']

    upload = images.add(source, 'raw')
    images.images[upload].update({'disk_format': 'raw', 'status': 'queued'})
    edge_driver.copy_volume_to_image(context, vol, images,
                                     {'id': upload, 'disk_format': 'raw',
                                      'container_format': 'bare'})
    uploaded = tmp_path / 'uploaded.raw'
    uploaded.write_bytes(images.data[upload])
    assert uploaded.stat().st_size == 1 << 30
    assert 'verification failed' not in qemu_io(str(uploaded), 'read -P 0x6b 1M 2M')
    assert io.BytesIO(images.data[upload]).read(MiB) == bytes(MiB)


def test_uploading_an_in_use_volume_leaves_the_instances_attachment_alone(
        edge_driver, vpool, context, tmp_path):
    """cinder-volume and nova share the host's edge (an all-in-one host):
    the instance's token and its edge attachment outlive the image copy."""
    vol = cinder_objects.volume(context)
    vol.volume_type = fake_volume.fake_volume_type_obj(context, extra_specs={})
    vol.glance_metadata = {}
    edge_driver.create_volume(vol)
    instance = edge_driver.initialize_connection(vol, {'host': 'cinder-host'})
    connector = brick_connector.InitiatorConnector.factory(ovs_connector.PROTOCOL, None)
    device = connector.connect_volume(instance['data'])
    qemu_io(device['uri'], 'write -P 0x3d 0 1M')

    images = MemoryImageService()
    source = tmp_path / 'placeholder.raw'
    source.write_bytes(b'')
    image_id = images.add(source, 'raw')
    images.images[image_id].update({'disk_format': 'raw', 'status': 'queued'})
    edge_driver.copy_volume_to_image(context, vol, images,
                                     {'id': image_id, 'disk_format': 'raw',
                                      'container_format': 'bare'})

    assert io.BytesIO(images.data[image_id]).read(MiB) == b'\x3d' * MiB
    assert vpool.client().volume(vol.name)['attachments'] == ['cinder-host']
    assert connector.get_volume_paths(instance['data']) == [device['path']]
    out = qemu_io(device['uri'], 'write -P 0x3e 1M 4k', 'read -P 0x3d 0 1M')
    assert 'verification failed' not in out
