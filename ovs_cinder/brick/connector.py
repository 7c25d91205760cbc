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

"""os-brick connector for ``driver_volume_type`` ``ovs_edge``.

A volume is attached by asking the host's edge (``ovs-edge``) over its
control socket; the edge exports it as NBD on a unix socket of its own,
which is the "device" this connector hands to nova (a network disk,
protocol nbd) or to cinder-volume (image copy through qemu-img).

Connection properties, from the Cinder driver's ``initialize_connection``::

    {"vpool": "default", "volume": "volume-<id>", "token": "<attachment token>",
     "host": "<the host the attachment is for>"}

The edge calls the routers of its own configuration only; a ``routers``
list that older drivers put in the properties is not passed on.

Device info returned by ``connect_volume``::

    {"type": "nbd", "path": "<edge socket>", "uri": "nbd+unix:///...", "volume": ...}

Where the edge is: ``[ovs_edge] control_socket`` of the process's
configuration (nova.conf, cinder.conf; :mod:`ovs_cinder.brick.opts`, which
this module registers); the host's site comes from the edge itself
(``[ovs_edge] site`` overrides it).

os-brick has no plugin hook: :func:`register` adds the connector to its
factory and to the connector list used by ``get_connector_properties``;
call it once in the process (nova-compute, cinder-volume) before use.
This module uses plain sockets: no eventlet API.
"""

from os_brick import exception
from os_brick import initiator
from os_brick import utils
from os_brick.i18n import _
from os_brick.initiator import connector as brick_connector
from os_brick.initiator.connectors import base
from oslo_config import cfg
from oslo_log import log as logging

from ovs_cinder.brick import opts
from ovs_daemon.api import edge_client

LOG = logging.getLogger(__name__)

PROTOCOL = 'OVS_EDGE'
DRIVER_VOLUME_TYPE = 'ovs_edge'
CLASS_PATH = 'ovs_cinder.brick.connector.OVSEdgeConnector'

CONF = cfg.CONF
opts.register_opts(CONF)


class OVSEdgeError(exception.BrickException):
    message = _('OVS edge: %(reason)s')


class OVSEdgeConnector(base.BaseLinuxConnector):
    """Attaches volumes through the host's OVS edge."""

    def __init__(self, root_helper, driver=None, *args, **kwargs):
        super().__init__(root_helper, driver, *args, **kwargs)
        self.edge = edge_client.EdgeControlClient(CONF.ovs_edge.control_socket)

    @staticmethod
    def get_connector_properties(root_helper, *args, **kwargs):
        """``ovs_edge_socket`` and ``ovs_edge_site`` of this host."""
        path = CONF.ovs_edge.control_socket
        site = CONF.ovs_edge.site
        if site is None:
            try:
                site = edge_client.EdgeControlClient(path, timeout=5).status()['site']
            except edge_client.EdgeError as exc:
                LOG.warning('OVS edge not reachable at %s: %s', path, exc)
        properties = {'ovs_edge_socket': path}
        if site is not None:
            properties['ovs_edge_site'] = site
        return properties

    def get_search_path(self):
        return None

    def get_volume_paths(self, connection_properties):
        attached = self._attached(connection_properties)
        return [attached['socket']] if attached else []

    def get_all_available_volumes(self, connection_properties=None):
        try:
            return [v['socket'] for v in self.edge.list()]
        except edge_client.EdgeError:
            return []

    def check_valid_device(self, path, run_as_root=True):
        try:
            return any(v['socket'] == path and v['state'] == 'connected'
                       for v in self.edge.list())
        except edge_client.EdgeError:
            return False

    @utils.trace
    @utils.connect_volume_prepare_result
    @base.synchronized('ovs_edge')
    def connect_volume(self, connection_properties):
        volume, vpool = _volume_of(connection_properties)
        try:
            answer = self.edge.attach(volume, vpool, connection_properties['token'])
        except KeyError as exc:
            raise OVSEdgeError(reason=_('connection properties lack %s') % exc) from None
        except edge_client.EdgeError as exc:
            raise OVSEdgeError(reason=_('cannot attach %(volume)s: %(error)s')
                               % {'volume': volume, 'error': exc}) from exc
        LOG.info('Attached %s through the OVS edge at %s', volume, answer['socket'])
        return {'type': 'nbd', 'path': answer['socket'], 'uri': answer['uri'],
                'volume': volume, 'vpool': vpool}

    @utils.trace
    @base.synchronized('ovs_edge')
    @utils.connect_volume_undo_prepare_result(unlink_after=True)
    def disconnect_volume(self, connection_properties, device_info, force=False,
                          ignore_errors=False):
        """Detach from this host's edge; succeeds when nothing is attached.

        It never calls a router: after an evacuate, nova calls it on the
        source host with the destination's connection properties, and all
        it may do is drop this host's own (already revoked) attachment.
        """
        volume, vpool = _volume_of(connection_properties)
        try:
            answer = self.edge.detach(volume, vpool)
        except edge_client.EdgeUnavailable as exc:
            # No edge running: nothing is attached here.
            LOG.warning('OVS edge unavailable while detaching %s: %s', volume, exc)
            return
        except edge_client.EdgeError as exc:
            if force or ignore_errors:
                LOG.warning('Ignoring failed detach of %s: %s', volume, exc)
                return
            raise OVSEdgeError(reason=_('cannot detach %(volume)s: %(error)s')
                               % {'volume': volume, 'error': exc}) from exc
        LOG.info('Detached %s from the OVS edge (was attached: %s)', volume, answer['attached'])

    @utils.trace
    @utils.connect_volume_undo_prepare_result
    def extend_volume(self, connection_properties):
        volume, vpool = _volume_of(connection_properties)
        try:
            return self.edge.refresh(volume, vpool)
        except edge_client.EdgeError as exc:
            raise OVSEdgeError(reason=_('cannot extend %(volume)s: %(error)s')
                               % {'volume': volume, 'error': exc}) from exc

    def _attached(self, connection_properties):
        volume, vpool = _volume_of(connection_properties)
        try:
            volumes = self.edge.list()
        except edge_client.EdgeError:
            return None
        for attached in volumes:
            if (attached['volume'], attached['vpool']) == (volume, vpool):
                return attached
        return None


def _volume_of(connection_properties):
    try:
        return connection_properties['volume'], connection_properties.get('vpool', 'default')
    except (KeyError, TypeError):
        raise OVSEdgeError(reason=_('connection properties name no volume')) from None


def register():
    """Make ``InitiatorConnector.factory('OVS_EDGE', ...)`` build this
    connector and ``get_connector_properties`` ask it. Idempotent."""
    setattr(initiator, PROTOCOL, PROTOCOL)
    for arch in (None, initiator.S390X, initiator.PPC64):
        brick_connector.get_connector_mapping(arch)[PROTOCOL] = CLASS_PATH
    if CLASS_PATH not in brick_connector.unix_connector_list:
        brick_connector.unix_connector_list.append(CLASS_PATH)
