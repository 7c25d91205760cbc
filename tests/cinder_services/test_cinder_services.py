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

"""OVSEdgeDriver inside cinder's real in-process services against a live
vPool: the volume life cycle, manage, and attachments with a connector."""

import os
import subprocess
import time
import uuid

import cinder.privsep
import os_brick.privileged
from oslo_config import cfg

from tests.cinder_services import base
from tests.functional.clients import qemu_io
from tests.functional.clients import run

GiB = base.GiB


class OVSEdgeInCinderTest(base.CinderServicesTestBase):

    def test_volume_life_cycle(self):
        volume = self._volume(size=1)
        self.assertEqual(1 * GiB, self._backend(volume['id'])['size'])

        snapshot = self.api.post_snapshot({'snapshot': {'volume_id': volume['id']}})
        snapshot = self._wait(self.api.get_snapshot, snapshot['id'], 'available')
        from_snapshot = self._volume(size=2, snapshot_id=snapshot['id'])
        self.assertEqual({'volume': 'volume-%s' % volume['id'],
                          'snapshot': 'snapshot-%s' % snapshot['id']},
                         self._backend(from_snapshot['id'])['parent'])
        self.assertEqual(2 * GiB, self._backend(from_snapshot['id'])['size'])
        clone = self._volume(size=1, source_volid=volume['id'])
        self.assertEqual('volume-%s' % volume['id'],
                         self._backend(clone['id'])['parent']['volume'])

        # cinder reverts only to the latest snapshot, at the snapshot's size.
        self._action(volume['id'], {'revert': {'snapshot_id': snapshot['id']}})
        self._wait(self.api.get_volume, volume['id'], 'available')
        self.assertEqual(1 * GiB, self._backend(volume['id'])['size'])

        self._action(volume['id'], {'os-extend': {'new_size': 3}})
        self._wait(self.api.get_volume, volume['id'], 'available')
        self.assertEqual(3 * GiB, self._backend(volume['id'])['size'])

        for doomed in (from_snapshot, clone):
            self.api.delete_volume(doomed['id'])
        self.api.delete_snapshot(snapshot['id'])
        self._wait_gone(self.api.get_snapshot, snapshot['id'])
        self.api.delete_volume(volume['id'])
        deadline = time.monotonic() + 60
        while self.routers_api.volumes() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual([], self.routers_api.volumes())

    def test_manage_an_existing_volume(self):
        self.routers_api.create_volume('legacy', 2 * GiB)
        backend_host = self.api.api_get('/scheduler-stats/get_pools')['pools'][0]['name']
        managed = self.api.post_manage_volume(host=backend_host,
                                              ref={'source-name': 'legacy'})
        managed = self._wait(self.api.get_volume, managed['volume']['id'], 'available')
        self.assertEqual(2, managed['size'])
        self._action(managed['id'], {'os-extend': {'new_size': 3}})
        self._wait(self.api.get_volume, managed['id'], 'available')
        self.assertEqual(3 * GiB, self.routers_api.volume('legacy')['size'])

    def test_attachments_with_a_connector_issue_and_revoke_tokens(self):
        volume = self._volume()
        attachment = self._attachment_create(
            volume['id'], str(uuid.uuid4()),
            connector={'host': 'hv-a', 'ip': '10.0.0.1', 'initiator': None})
        info = attachment['connection_info']
        self.assertEqual('ovs_edge', info['driver_volume_type'])
        self.assertEqual('hv-a', info['host'])
        self.assertEqual(['hv-a'], self._backend(volume['id'])['attachments'])
        self.assertNotIn('token', str(self.api.get_volume(volume['id'])))
        self._attachment_delete(attachment['id'])
        deadline = time.monotonic() + 30
        while self._backend(volume['id'])['attachments'] and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual([], self._backend(volume['id'])['attachments'])
        self.assertIn('os-volume_attachments', self.nova.requests)

    def test_a_volume_from_an_image_and_its_upload_to_an_image(self):
        """Both copies go through the edge on the cinder-volume host."""
        edge = self.vpool.add_edge('cinder-host', site='a')
        cfg.CONF.set_override('control_socket', edge['control'], group='ovs_edge')
        self.addCleanup(cfg.CONF.clear_override, 'control_socket', group='ovs_edge')
        # As root here: no sudo, no privsep daemons.
        os_brick.privileged.default.set_client_mode(False)
        cinder.privsep.sys_admin_pctxt.set_client_mode(False)
        source = os.path.join(self.vpool.workdir, 'cirros.qcow2')
        subprocess.run(['qemu-img', 'create', '-f', 'qcow2', source, '64M'], check=True,
                       capture_output=True)
        run('qemu-io', '-f', 'qcow2', '-c', 'write -P 0x6b 1M 2M', source)
        image_id = self.images.add(source, 'qcow2')

        volume = self._volume(size=1, imageRef=image_id)

        name = 'volume-%s' % volume['id']
        token = self.routers_api.create_attachment(name, 'checker')['token']
        owner = self.vpool.router(self.routers_api.locate(name)['owner'])
        uri = 'nbd://%s/%s/%s' % (owner['nbd'], name, token)
        out = qemu_io(uri, 'read -P 0x6b 1M 2M', 'read -P 0 0 1M')
        self.assertNotIn('verification failed', out)
        self.routers_api.delete_attachment(name, 'checker')
        self.assertEqual([], self._backend(volume['id'])['attachments'])   # the copy's too

        upload = self._action(volume['id'], {'os-volume_upload_image': {
            'image_name': 'copy', 'disk_format': 'qcow2', 'container_format': 'bare'}})
        uploaded_id = upload['os-volume_upload_image']['image_id']
        self._wait(self.api.get_volume, volume['id'], 'available')
        self.assertEqual('active', self.images.show(None, uploaded_id)['status'])
        uploaded = os.path.join(self.vpool.workdir, 'uploaded.qcow2')
        with open(uploaded, 'wb') as f:
            f.write(self.images.data[uploaded_id])
        out = run('qemu-io', '-f', 'qcow2', '-c', 'read -P 0x6b 1M 2M', '-c', 'read -P 0 0 1M',
                  uploaded)
        self.assertNotIn('verification failed', out)
        self.assertEqual([], self._backend(volume['id'])['attachments'])
