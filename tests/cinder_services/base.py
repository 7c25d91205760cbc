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

"""cinder's real in-process services (API, scheduler and volume manager;
sqlite; fake messaging) with OVSEdgeDriver against a live vPool of storage
routers, driven through cinder's REST API as a user (or nova) would.

cinder's test base class is testtools-based: `tools/test.sh` runs these
modules with `python -m testtools.run` in a process of their own.
"""

import os
import sys
import tempfile
import time

from cinder import service
from cinder.compute import nova  # noqa: F401  (registers the [nova] options)
from cinder.image import glance  # imported first, it runs into a circular import
from cinder.tests.functional import functional_helpers
from cinder.tests.functional.api import client
from cinder.volume import configuration
import fixtures
from oslo_config import cfg

from ovs_cinder.volume import driver as driver_mod
from ovs_daemon.devcluster import cluster as cluster_mod
from tests.cinder_services import nova_stub
from tests.functional.cinder import image_service

GiB = 1 << 30
DRIVER = '%s.%s' % (driver_mod.__name__, driver_mod.OVSEdgeDriver.__name__)


class CinderServicesTestBase(functional_helpers._FunctionalTestBase):
    _osapi_version = '3.64'

    def setUp(self):
        workdir = tempfile.mkdtemp(prefix='ovs-cinder-')
        self.nova = nova_stub.NovaStub(os.path.join(workdir, 'nova-requests.log'))
        self.addCleanup(self.nova.stop)
        self.vpool = cluster_mod.Cluster(os.path.join(workdir, 'vpool'))
        self.start_vpool(self.vpool, workdir)
        self.routers_api = self.vpool.client()
        # Before the services start: cinder's volume API takes its image
        # service when it is built.
        self.images = image_service.MemoryImageService()
        self.useFixture(fixtures.MockPatchObject(
            glance, 'get_default_image_service', lambda: self.images))
        self.useFixture(fixtures.MockPatchObject(
            glance, 'get_remote_image_service', lambda context, href: (self.images, href)))
        super().setUp()
        self.api.create_type('ovs')

    def start_vpool(self, vpool, workdir):
        """Start ``vpool``, its clean-up registered first."""
        self.addCleanup(vpool.down)
        vpool.up(routers=2, sites=['a', 'b'])

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

    # -- attachments, in nova's order --------------------------------------------

    def _attachment_create(self, volume_id, instance_uuid, connector=None):
        body = {'volume_uuid': volume_id, 'instance_uuid': instance_uuid}
        if connector is not None:
            body['connector'] = connector
        return self.api.api_post('/attachments', {'attachment': body})['attachment']

    def _attachment_update(self, attachment_id, connector):
        return self.api.api_put('/attachments/%s' % attachment_id,
                                {'attachment': {'connector': connector}})['attachment']

    def _attachment_complete(self, attachment_id):
        self.api.api_post('/attachments/%s/action' % attachment_id, {'os-complete': None},
                          check_response_status=[204])

    def _attachment_delete(self, attachment_id):
        self.api.api_delete('/attachments/%s' % attachment_id)
