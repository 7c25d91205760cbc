"""OVSEdgeDriver inside cinder's real in-process services (API, scheduler
and volume manager; sqlite; fake messaging), against a live vPool of
storage routers, driven through cinder's REST API as a user would.

cinder's test base class is testtools-based: `tools/test.sh` runs this
module with `python -m testtools.run` in a process of its own.
"""

import os
import sys
import tempfile
import time
import uuid

from cinder import service
from cinder.tests.functional.api import client
from cinder.tests.functional import functional_helpers
from cinder.volume import configuration
from oslo_config import cfg

from cinder.compute import nova  # noqa: F401  (registers the [nova] options)
from ovs_cinder.volume import driver as driver_mod
from tests.cinder_services import nova_stub
from ovs_daemon.devcluster import cluster as cluster_mod

GiB = 1 << 30
DRIVER = '%s.%s' % (driver_mod.__name__, driver_mod.OVSEdgeDriver.__name__)


class OVSEdgeInCinderTest(functional_helpers._FunctionalTestBase):
    _osapi_version = '3.64'

    def setUp(self):
        workdir = tempfile.mkdtemp(prefix='ovs-cinder-')
        self.nova = nova_stub.NovaStub(os.path.join(workdir, 'nova-requests.log'))
        self.addCleanup(self.nova.stop)
        self.vpool = cluster_mod.Cluster(os.path.join(workdir, 'vpool')).up(
            routers=2, sites=['a', 'b'])
        self.addCleanup(self.vpool.down)
        self.routers_api = self.vpool.client()
        super().setUp()
        self.api.create_type('ovs')

    def _get_flags(self):
        flags = super()._get_flags()
        shared = configuration.SHARED_CONF_GROUP
        flags['volume_driver'] = {'v': DRIVER, 'g': shared}
        flags['ovs_router_endpoints'] = {
            'v': [r['api'] for r in self.vpool.state['routers']], 'g': shared}
        flags['ovs_api_token_file'] = {'v': self.vpool.token_file, 'g': shared}
        flags['default_volume_type'] = {'v': 'ovs'}
        flags['token_auth_url'] = {'v': self.nova.identity_url, 'g': 'nova'}
        # cinder's tests skip the scheduler's wait by mocking eventlet.sleep;
        # on native threads it would really wait a minute.
        flags['scheduler_driver_init_wait_time'] = {'v': 1}
        return flags

    def _start_api_service(self):
        # The paste file ships in the virtualenv's etc/, not beside the package.
        cfg.CONF.api_paste_config = os.path.join(sys.prefix, 'etc', 'cinder', 'api-paste.ini')
        self.osapi = service.WSGIService('osapi_volume')
        self.osapi.start()
        self.auth_url = 'http://%s:%s/v%s' % (self.osapi.host, self.osapi.port,
                                              self.osapi_version_major)

    # -- helpers ------------------------------------------------------------------

    def _wait(self, get, resource_id, status, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            resource = get(resource_id)
            if resource['status'] == status:
                return resource
            self.assertNotIn('error', resource['status'], resource)
            self.assertLess(time.monotonic(), deadline, resource)
            time.sleep(0.2)

    def _wait_gone(self, get, resource_id, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                get(resource_id)
            except client.OpenStackApiException404:
                return
            time.sleep(0.2)
        self.fail('%s still there after %s s' % (resource_id, timeout))

    def _volume(self, **fields):
        created = self.api.post_volume({'volume': dict({'size': 1}, **fields)})
        return self._wait(self.api.get_volume, created['id'], 'available')

    def _backend(self, volume_id):
        return self.routers_api.volume('volume-%s' % volume_id)

    def _action(self, volume_id, body):
        return self.api.api_post('/volumes/%s/action' % volume_id, body)

    # -- the scenarios --------------------------------------------------------------

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
        attachment = self.api.api_post('/attachments', {'attachment': {
            'volume_uuid': volume['id'], 'instance_uuid': str(uuid.uuid4()),
            'connector': {'host': 'hv-a', 'ip': '10.0.0.1', 'initiator': None}}})['attachment']
        info = attachment['connection_info']
        self.assertEqual('ovs_edge', info['driver_volume_type'])
        self.assertEqual('hv-a', info['host'])
        self.assertEqual(['hv-a'], self._backend(volume['id'])['attachments'])
        self.assertNotIn('token', str(self.api.get_volume(volume['id'])))
        self.api.api_delete('/attachments/%s' % attachment['id'])
        deadline = time.monotonic() + 30
        while self._backend(volume['id'])['attachments'] and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual([], self._backend(volume['id'])['attachments'])
        self.assertIn('os-volume_attachments', self.nova.requests)
