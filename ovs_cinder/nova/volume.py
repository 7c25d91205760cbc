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

"""nova libvirt volume driver for ``driver_volume_type`` ``ovs_edge``.

The guest's disk is a libvirt network disk, protocol nbd, over the host
edge's unix socket for the volume::

    <disk type="network" device="disk">
      <driver name="qemu" type="raw" cache="none"/>
      <source protocol="nbd" name="volume-...">
        <host transport="unix" socket="/run/ovs-edge/volumes/default/volume-....sock"/>
        <reconnect delay="60"/>
      </source>
      ...

``<reconnect>`` (``[ovs_edge] reconnect_delay``) makes QEMU reconnect to the
socket when the edge restarts, holding the guest's IO meanwhile and sending
again what was in flight, so a restart of the edge is a pause, not an IO
error (docs/edge.md, "Restarting the edge").

nova has no plugin hook for volume drivers: :func:`register` adds this one
to the libvirt driver's table (and the connector to os-brick's factory);
nova-compute must call it at start (the DevStack plugin does).
"""

from nova.virt.libvirt import config as vconfig
from nova.virt.libvirt import driver as libvirt_driver
from nova.virt.libvirt.volume import volume as libvirt_volume
from os_brick.initiator import connector as brick_connector
from oslo_log import log as logging

from ovs_cinder.brick import connector as ovs_connector
from ovs_cinder.brick import opts as brick_opts

LOG = logging.getLogger(__name__)
CLASS_PATH = 'ovs_cinder.nova.volume.LibvirtOVSEdgeVolumeDriver'


class LibvirtConfigGuestUnixNBDDisk(vconfig.LibvirtConfigGuestDisk):
    """A network disk whose NBD server is a unix socket: nova's disk config
    only writes TCP hosts (name and port)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.source_socket = None
        self.reconnect_delay = None

    def format_dom(self):
        dev = super().format_dom()
        source = dev.find('source')
        if self.source_socket is not None and source is not None:
            host = source.makeelement('host', {'transport': 'unix',
                                               'socket': self.source_socket})
            source.append(host)
            if self.reconnect_delay:
                source.append(source.makeelement(
                    'reconnect', {'delay': str(self.reconnect_delay)}))
        return dev


class LibvirtOVSEdgeVolumeDriver(libvirt_volume.LibvirtBaseVolumeDriver):
    """Volumes attached through the host's OVS edge, as NBD network disks."""

    def __init__(self, host):
        super().__init__(host, is_block_dev=False)
        ovs_connector.register()
        self.connector = brick_connector.InitiatorConnector.factory(
            ovs_connector.PROTOCOL, root_helper=None)

    def get_config(self, connection_info, disk_info):
        base = super().get_config(connection_info, disk_info)
        conf = LibvirtConfigGuestUnixNBDDisk()
        # The base class fills in target, serial, cache, QoS...: keep them all.
        conf.__dict__.update({k: v for k, v in base.__dict__.items() if k != 'root_name'})
        data = connection_info['data']
        conf.source_type = 'network'
        conf.source_protocol = 'nbd'
        conf.source_name = data['volume']
        conf.source_socket = data['device_path']
        conf.reconnect_delay = ovs_connector.CONF[brick_opts.GROUP].reconnect_delay
        conf.driver_format = 'raw'
        return conf

    def connect_volume(self, connection_info, instance):
        device_info = self.connector.connect_volume(connection_info['data'])
        connection_info['data']['device_path'] = device_info['path']
        LOG.debug('Volume %s attached through the OVS edge at %s',
                  connection_info['data']['volume'], device_info['path'])

    def disconnect_volume(self, connection_info, instance, force=False):
        self.connector.disconnect_volume(connection_info['data'], None, force=force)
        super().disconnect_volume(connection_info, instance, force=force)

    def extend_volume(self, connection_info, instance, requested_size):
        return self.connector.extend_volume(connection_info['data'])


def register():
    """Add the ``ovs_edge`` driver to nova's libvirt volume drivers. Idempotent."""
    ovs_connector.register()
    libvirt_driver.VOLUME_DRIVERS[ovs_connector.DRIVER_VOLUME_TYPE] = CLASS_PATH
