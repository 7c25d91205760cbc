"""OVSEdgeDriver inside cinder's real in-process services against a live
vPool: the volume life cycle, manage, and attachments with a connector."""

import time
import uuid

from tests.cinder_services import base

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
