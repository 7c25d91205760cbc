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

"""Cinder volume driver for OVS Edge vPools.

Volumes live in a vPool of storage routers; this driver manages them
through the routers' control API (any router answers; the client fails
over between ``ovs_router_endpoints``). Attachments go through the edge on
each host: ``initialize_connection`` records an attachment token for
``connector['host']`` and returns ``driver_volume_type`` ``ovs_edge``
connection properties for the os-brick connector
(:mod:`ovs_cinder.brick.connector`); ``terminate_connection`` revokes it
once no other attachment of the volume uses that host (two instances of
one host share its token), and with no connector (a force detach) revokes
every token of the volume, so a host that lost its attachment can neither
read nor write.

A volume of a multiattach type is created (and attached) with
``multiattach``: the routers then acknowledge its writes only once they
are committed, which is what keeps two hosts writing one volume safe
across failovers (docs/edge.md, "Multiattach").

A backend volume is named after ``volume.name`` (which follows
``name_id``), or after ``provider_location`` for a managed volume that kept
its backend name. The driver holds no eventlet API and no state besides
its API client, so calls may run in parallel.

Example ``cinder.conf`` section::

    [ovs]
    volume_driver = ovs_cinder.volume.driver.OVSEdgeDriver
    volume_backend_name = ovs
    ovs_router_endpoints = http://10.0.0.11:8765,http://10.0.0.12:8765
    ovs_api_token_file = /etc/ovs-edge/token
    ovs_vpool = default
"""

import contextlib
import math

from cinder import exception
from cinder import interface
from cinder.i18n import _
from cinder.image import image_utils
from cinder.objects import fields
from cinder.volume import configuration
from cinder.volume import driver
from cinder.volume import volume_utils
from os_brick.initiator import connector as brick_connector
from oslo_concurrency import processutils
from oslo_config import cfg
from oslo_log import log as logging
from oslo_utils import units

from ovs_cinder.brick import connector as ovs_connector
from ovs_daemon import tls as tls_mod
from ovs_daemon.api import client as api_client
from ovs_daemon.api import errors as api_errors
from ovs_daemon.api import token as token_mod

LOG = logging.getLogger(__name__)
# cinder.common.constants has no NBD entry yet.
STORAGE_PROTOCOL = 'nbd'

ovs_opts = [
    cfg.ListOpt('ovs_router_endpoints', default=['http://127.0.0.1:8765'],
                help='Control API URLs of the vPool\'s storage routers. Any of '
                     'them answers any call; the driver fails over between '
                     'them.'),
    cfg.StrOpt('ovs_api_token_file', default='/etc/ovs-edge/token',
               help='File holding the vPool\'s control API token. Keep it '
                    'readable by the cinder user only.'),
    cfg.StrOpt('ovs_vpool', default='default',
               help='The vPool this backend stores volumes in.'),
    cfg.FloatOpt('ovs_api_timeout', default=120.0, min=1.0,
                 help='Seconds to wait for a control API call (a call that '
                      'moves a volume flushes it first).'),
    cfg.FloatOpt('ovs_api_connect_timeout', default=2.0, min=0.1,
                 help='Seconds to wait for a router to accept a connection '
                      'before trying the next endpoint.'),
    cfg.StrOpt('ovs_ssl_ca_file',
               help='PEM bundle of the CA(s) that signed the routers\' '
                    'certificates, to verify https:// ovs_router_endpoints '
                    'with. Unset: the system\'s CAs.'),
    cfg.StrOpt('ovs_ssl_cert_file',
               help='PEM certificate the driver presents to the routers '
                    '(needed when they set [ssl] require_client_cert).'),
    cfg.StrOpt('ovs_ssl_key_file',
               help='PEM private key of ovs_ssl_cert_file; mode 0600 (or 0640).'),
]

# The attachment an image copy makes on the cinder-volume host: an identity
# of its own, never the host's, which an instance on that host may hold.
IMAGE_COPY_HOST = '%s.image-copy'
# The NBD URI of a volume the edge serves on a unix socket.
IMAGE_COPY_URI = 'nbd+unix:///%s?socket=%s'

CONF = cfg.CONF
CONF.register_opts(ovs_opts, group=configuration.SHARED_CONF_GROUP)


class OVSEdgeDriverError(exception.VolumeBackendAPIException):
    message = _('OVS Edge vPool: %(data)s')


@interface.volumedriver
class OVSEdgeDriver(driver.VolumeDriver):
    """Volumes of an OVS Edge vPool, attached through each host's edge.

    Version history:

    .. code-block:: none

        1.0.0 - Initial driver: volumes, snapshots, clones, extend, revert,
                manage/unmanage, attachment tokens
    """

    VERSION = '1.0.0'
    CI_WIKI_NAME = 'OVS_Edge_CI'

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.configuration.append_config_values(ovs_opts)
        self._client = None

    @staticmethod
    def get_driver_options():
        return ovs_opts

    # -- setup ------------------------------------------------------------------

    def do_setup(self, context):
        conf = self.configuration
        try:
            token = token_mod.read_token(conf.ovs_api_token_file)
        except token_mod.TokenError as exc:
            raise OVSEdgeDriverError(
                data=_('no credential for the routers: %s') % exc) from None
        try:
            tls = tls_mod.client_tls(conf.ovs_ssl_ca_file, conf.ovs_ssl_cert_file,
                                     conf.ovs_ssl_key_file)
        except tls_mod.TLSConfigError as exc:
            raise OVSEdgeDriverError(
                data=_('cannot verify the routers: %s') % exc) from None
        self._client = api_client.ControlClient(
            conf.ovs_router_endpoints, token, timeout=conf.ovs_api_timeout,
            connect_timeout=conf.ovs_api_connect_timeout, tls=tls)
        # Image copies attach volumes in this process through os-brick, with
        # the edge of [ovs_edge] control_socket.
        ovs_connector.register()

    def check_for_setup_error(self):
        self._call(_('reach the vPool\'s routers'), self._client.health)

    def _call(self, action, fn, *args, **kwargs):
        """Run an API call; its errors become errors an operator can act on."""
        try:
            return fn(*args, **kwargs)
        except api_errors.ApiError as exc:
            raise self._driver_error(action, exc) from None

    def _driver_error(self, action, exc):
        if isinstance(exc, api_errors.Unauthorized):
            return OVSEdgeDriverError(
                data=_('cannot %(action)s: the routers refuse the token in %(file)s '
                       '(%(error)s)') % {'action': action, 'error': exc,
                                         'file': self.configuration.ovs_api_token_file})
        return OVSEdgeDriverError(data=_('cannot %(action)s: %(error)s')
                                  % {'action': action, 'error': exc})

    # -- names ----------------------------------------------------------------

    @staticmethod
    def _name(volume):
        return volume.provider_location or volume.name

    @staticmethod
    def _size(gib):
        return int(gib) * units.Gi

    # -- volumes --------------------------------------------------------------

    @staticmethod
    def _multiattach(volume):
        return bool(volume.get('multiattach'))

    def create_volume(self, volume):
        name = self._name(volume)
        self._call(_('create volume %s') % name, self._client.create_volume, name,
                   self._size(volume.size), multiattach=self._multiattach(volume))

    def delete_volume(self, volume):
        name = self._name(volume)
        try:
            self._client.delete_volume(name)
        except api_errors.NotFound:
            LOG.info('Volume %s is already gone from the vPool', name)
        except api_errors.ApiError as exc:
            raise self._driver_error(_('delete volume %s') % name, exc) from None

    def create_volume_from_snapshot(self, volume, snapshot):
        name = self._name(volume)
        source = {'volume': self._name(snapshot.volume), 'snapshot': snapshot.name}
        self._call(_('create volume %(volume)s from snapshot %(snapshot)s')
                   % {'volume': name, 'snapshot': snapshot.name},
                   self._client.create_volume, name, self._size(volume.size), source=source,
                   multiattach=self._multiattach(volume))

    def create_cloned_volume(self, volume, src_vref):
        name = self._name(volume)
        source = {'volume': self._name(src_vref)}
        self._call(_('clone volume %(source)s into %(volume)s')
                   % {'source': source['volume'], 'volume': name},
                   self._client.create_volume, name, self._size(volume.size), source=source,
                   multiattach=self._multiattach(volume))

    def extend_volume(self, volume, new_size):
        name = self._name(volume)
        self._call(_('extend volume %s') % name, self._client.extend_volume, name,
                   self._size(new_size))

    def revert_to_snapshot(self, context, volume, snapshot):
        name = self._name(volume)
        self._call(_('revert volume %(volume)s to %(snapshot)s')
                   % {'volume': name, 'snapshot': snapshot.name}, self._client.revert,
                   name, snapshot.name)
        # Cinder keeps the volume's size across a revert.
        if volume.size > snapshot.volume_size:
            self.extend_volume(volume, volume.size)

    # -- snapshots --------------------------------------------------------------

    def create_snapshot(self, snapshot):
        name = self._name(snapshot.volume)
        self._call(_('snapshot volume %s') % name, self._client.create_snapshot, name,
                   snapshot.name)

    def delete_snapshot(self, snapshot):
        name = self._name(snapshot.volume)
        try:
            self._client.delete_snapshot(name, snapshot.name)
        except api_errors.NotFound:
            LOG.info('Snapshot %s of %s is already gone', snapshot.name, name)
        except api_errors.ApiError as exc:
            raise self._driver_error(_('delete snapshot %(snapshot)s of %(volume)s')
                                     % {'snapshot': snapshot.name, 'volume': name},
                                     exc) from None

    # -- attachments ----------------------------------------------------------

    def create_export(self, context, volume, connector):
        pass

    def ensure_export(self, context, volume):
        pass

    def remove_export(self, context, volume):
        pass

    def initialize_connection(self, volume, connector, initiator_data=None):
        name = self._name(volume)
        host = (connector or {}).get('host')
        if not host:
            raise exception.InvalidConnectorException(missing='host')
        token = self._call(_('attach volume %(volume)s to %(host)s')
                           % {'volume': name, 'host': host},
                           self._client.create_attachment, name, host,
                           multiattach=self._multiattach(volume))['token']
        return {
            'driver_volume_type': ovs_connector.DRIVER_VOLUME_TYPE,
            'data': {
                'vpool': self.configuration.ovs_vpool,
                'volume': name,
                'name': name,
                'host': host,
                'token': token,
                'discard': True,
            },
        }

    def terminate_connection(self, volume, connector, **kwargs):
        """Revoke the host's token, unless another attachment of the volume
        still uses that host; returns whether the connection is shared
        (cinder then keeps the export)."""
        name = self._name(volume)
        if connector is not None and self._attached_elsewhere_on(volume, connector['host']):
            LOG.info('Volume %s stays attached to %s for another instance: its attachment '
                     'token is kept', name, connector['host'])
            return True
        try:
            if connector is None:
                self._client.delete_attachments(name)
            else:
                self._client.delete_attachment(name, connector['host'])
        except api_errors.NotFound:
            LOG.info('Volume %s is gone: no attachment to revoke', name)
        except api_errors.ApiError as exc:
            raise self._driver_error(_('revoke the attachment of %s') % name,
                                     exc) from None
        return False

    @staticmethod
    def _attached_elsewhere_on(volume, host):
        """Whether more than one live attachment of ``volume`` is on ``host``:
        the one being terminated is still listed as attached when cinder
        calls terminate_connection."""
        on_host = [a for a in volume.volume_attachment or ()
                   if a.attach_status == fields.VolumeAttachStatus.ATTACHED
                   and host in (a.attached_host, (a.connector or {}).get('host'))]
        return len(on_host) > 1

    # -- images ---------------------------------------------------------------------

    def copy_image_to_volume(self, context, volume, image_service, image_id,
                             disable_sparse=False):
        with self._attached_here(volume) as uri:
            image_utils.fetch_to_raw(context, image_service, image_id, uri,
                                     self.configuration.volume_dd_blocksize, size=volume.size,
                                     run_as_root=False, disable_sparse=disable_sparse)

    def copy_volume_to_image(self, context, volume, image_service, image_meta):
        # cinder reads a raw upload as a file: copy the volume to a sparse
        # raw file first (qemu-img reads the NBD URI).
        with image_utils.temporary_file(prefix='ovs_upload_') as copy:
            with self._attached_here(volume) as uri:
                # Not image_utils.convert_image: its format check opens the
                # source as a file.
                processutils.execute('qemu-img', 'convert', '-f', 'raw', '-O', 'raw', uri,
                                     copy)
            volume_utils.upload_volume(context, image_service, image_meta, copy, volume,
                                       run_as_root=False, compress=True)

    @contextlib.contextmanager
    def _attached_here(self, volume):
        """The volume attached through this host's edge, as an NBD URI.

        qemu-img reads and writes NBD URIs itself; the base class would hand
        it the socket's path as if it were a block device. An instance's
        attachment on this host (cinder-volume and nova sharing one edge) is
        left alone: the copy goes through it, without a token of its own
        (the edge holds one attachment per volume, and a second token would
        replace the instance's), and nothing is detached afterwards.
        Otherwise the copy attaches under an identity of its own, so that it
        never replaces or revokes the host's attachment token.
        """
        connector = brick_connector.InitiatorConnector.factory(ovs_connector.PROTOCOL, None)
        name = self._name(volume)
        in_use = connector.get_volume_paths({'volume': name,
                                             'vpool': self.configuration.ovs_vpool})
        if in_use:
            LOG.info('Volume %s is attached on this host: the image copy goes through that '
                     'attachment', name)
            yield IMAGE_COPY_URI % (name, in_use[0])
            return
        properties = volume_utils.brick_get_connector_properties(False, False)
        properties['host'] = IMAGE_COPY_HOST % properties['host']
        connection = self.initialize_connection(volume, properties)
        try:
            device = connector.connect_volume(connection['data'])
            try:
                yield device['uri']
            finally:
                connector.disconnect_volume(connection['data'], device, force=True)
        finally:
            self.terminate_connection(volume, properties)

    # -- manage -----------------------------------------------------------------

    def _existing(self, existing_ref):
        name = (existing_ref or {}).get('source-name')
        if not name:
            raise exception.ManageExistingInvalidReference(
                existing_ref=existing_ref, reason=_('source-name is required'))
        try:
            return self._client.volume(name)
        except api_errors.NotFound:
            raise exception.ManageExistingInvalidReference(
                existing_ref=existing_ref,
                reason=_('no volume %(volume)s in vPool %(vpool)s')
                % {'volume': name, 'vpool': self.configuration.ovs_vpool})
        except api_errors.ApiError as exc:
            raise self._driver_error(_('look up volume %s') % name, exc) from None

    def manage_existing(self, volume, existing_ref):
        record = self._existing(existing_ref)
        return {'provider_location': record['name']}

    def manage_existing_get_size(self, volume, existing_ref):
        return int(math.ceil(self._existing(existing_ref)['size'] / units.Gi))

    def unmanage(self, volume):
        LOG.info('Volume %s is left in the vPool, unmanaged', self._name(volume))

    def get_manageable_volumes(self, cinder_volumes, marker, limit, offset, sort_keys,
                               sort_dirs):
        managed = {v.get('provider_location') or v.get('name') for v in cinder_volumes}
        ids = {v['id'] for v in cinder_volumes}
        entries = []
        for record in self._call(_('list volumes'), self._client.volumes):
            cinder_id = volume_utils.extract_id_from_volume_name(record['name'])
            known = record['name'] in managed or cinder_id in ids
            entries.append({
                'reference': {'source-name': record['name']},
                'size': int(math.ceil(record['size'] / units.Gi)),
                'cinder_id': cinder_id if known else None,
                'safe_to_manage': not known and not record['attachments'],
                'reason_not_safe': ('already managed' if known else
                                    'attached' if record['attachments'] else None),
                'extra_info': None,
            })
        return volume_utils.paginate_entries_list(entries, marker, limit, offset, sort_keys,
                                                  sort_dirs)

    # -- stats ------------------------------------------------------------------

    def _update_volume_stats(self):
        stats = self._call(_('read the vPool\'s capacity'), self._client.stats)
        capacity = stats.get('capacity_bytes')
        pool = {
            'pool_name': self.configuration.ovs_vpool,
            'total_capacity_gb': round(capacity / units.Gi, 2) if capacity else 'unknown',
            'free_capacity_gb': (round(stats['free_bytes'] / units.Gi, 2)
                                 if capacity else 'unknown'),
            'provisioned_capacity_gb': round(stats['provisioned_bytes'] / units.Gi, 2),
            'reserved_percentage': self.configuration.reserved_percentage,
            'max_over_subscription_ratio': volume_utils.get_max_over_subscription_ratio(
                self.configuration.max_over_subscription_ratio, supports_auto=False),
            'thin_provisioning_support': True,
            'thick_provisioning_support': False,
            'multiattach': True,
            'QoS_support': False,
        }
        self._stats = {
            'volume_backend_name': (self.configuration.safe_get('volume_backend_name')
                                    or 'ovs_edge'),
            'vendor_name': 'OVS Edge',
            'driver_version': self.VERSION,
            'storage_protocol': STORAGE_PROTOCOL,
            'sparse_copy_volume': True,
            'pools': [pool],
        }


def list_opts():
    """For oslo-config-generator (namespace ``ovs_cinder``): the options go in
    the backend's section of cinder.conf, or in [backend_defaults]."""
    return [(configuration.SHARED_CONF_GROUP, ovs_opts)]
