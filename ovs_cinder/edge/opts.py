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

"""Options of the edge (``oslo-config-generator --namespace ovs_edge``)."""

import socket

from oslo_config import cfg

from ovs_daemon import tls

edge_opts = [
    cfg.StrOpt('host', default=socket.gethostname(),
               sample_default='<current_hostname>',
               help='This host\'s name, as Cinder knows it (connector["host"]).'),
    cfg.StrOpt('site', default='default',
               help='Failure domain of this host: the edge fails over to '
                    'routers of its own site first.'),
    cfg.StrOpt('control_socket', default='/run/ovs-edge/control.sock',
               help='Unix socket of the edge\'s control interface (attach, '
                    'detach, list). Created with mode 0600 (the edge\'s user '
                    'only) unless socket_group is set.'),
    cfg.StrOpt('socket_dir', default='/run/ovs-edge/volumes',
               help='Directory of the NBD unix sockets of attached volumes: '
                    '<socket_dir>/<vpool>/<volume>.sock.'),
    cfg.StrOpt('state_dir', default='/var/lib/ovs-edge/edge',
               help='Directory of the edge\'s state file (attachments.json, '
                    'mode 0600: it holds attachment tokens). A restarted edge '
                    'serves the attachments it lists again, at the same socket '
                    'paths.'),
    cfg.StrOpt('socket_group',
               help='Group (name or number) given access to the control socket '
                    'and the volumes\' NBD sockets, which then get mode 0660, '
                    'and the directories the edge creates for them mode 0711 '
                    '(traversable, not listable). Put the users of nova-compute, '
                    'cinder-volume and the hypervisor\'s QEMU processes in it '
                    '(libvirt-qemu on Debian and Ubuntu). Unset: sockets are '
                    'for the edge\'s user only (0600).'),
    cfg.ListOpt('router_endpoints', required=True,
                help='Control API URLs of the vPool\'s storage routers '
                     '(https://host:port with [ssl], or http://host:port). '
                     'The edge calls these, and the routers they list from '
                     'the registry in ZooKeeper, and no other address: it '
                     'never takes routers from an attach request, so its '
                     'credential goes nowhere else.'),
    cfg.StrOpt('token_file', required=True,
               help='File holding the edge credential (the routers\' '
                    'edge_token_file): it lets the edge list the routers, '
                    'locate volumes and acquire them in failover mode, nothing '
                    'else. Read at start. Keep it readable by root only.'),
    cfg.FloatOpt('io_timeout', default=1.0, min=0.05,
                 help='Seconds a read or write may wait for the router before '
                      'the edge fails over to another router.'),
    cfg.FloatOpt('flush_timeout', default=30.0, min=0.1,
                 help='Seconds a flush may wait for its answer, counted from '
                      'its send, before the edge fails over (a flush uploads '
                      'up to replay_buffer_mib). Past io_timeout without an '
                      'answer the edge probes the router once per io_timeout: '
                      'one that does not send its NBD greeting on a new '
                      'connection within connect_timeout (dead, or hung) is '
                      'failed over at once.'),
    cfg.FloatOpt('keepalive_interval', default=5.0, min=0.05,
                 help='A volume with no IO for this long reads one block '
                      'from its router, so a silent loss of an idle volume '
                      'is noticed within twice keepalive_interval + '
                      'io_timeout (idle volumes are checked in turn, spread '
                      'over this interval). It costs an idle volume no pause: '
                      'IO sent to a volume that idled is timed from its send, '
                      'so a router lost meanwhile holds it at most io_timeout.'),
    cfg.FloatOpt('failover_timeout', default=60.0, min=0.1,
                 help='Seconds IO waits for some router to take the volume over '
                      'before it fails with EIO.'),
    cfg.FloatOpt('handover_grace', default=1.0, min=0.0,
                 help='Seconds the edge only follows the registry after a router '
                      'halted the volume under it (a planned migrate or a steal '
                      'under way) before it asks a router to take the volume.'),
    cfg.FloatOpt('reattach_grace', default=2.0, min=0.0,
                 help='Seconds the edge keeps trying after a router refused its '
                      'attachment token, in case an attach again of the volume '
                      'with a new token is on its way; then the attachment is '
                      'revoked and every request fails with EIO.'),
    cfg.FloatOpt('connect_timeout', default=0.5, min=0.05,
                 help='Seconds to connect to a router (control API or NBD) '
                      'before trying the next one.'),
    cfg.FloatOpt('acquire_timeout', default=30.0, min=1.0,
                 help='Seconds a router may take to acquire a volume (a '
                      'handover flushes the old owner first).'),
    cfg.IntOpt('control_threads', default=64, min=1,
               help='Calls to the routers\' control API the edge makes at once '
                    '(each waits in a thread): when a router dies, every one of '
                    'its volumes attached here asks another router to take it '
                    'over, and these calls overlap up to this many.'),
    cfg.HostAddressOpt('metrics_host', default='127.0.0.1',
                       help='Address of the Prometheus metrics endpoint '
                            '(GET /metrics, no token: bind it where only '
                            'the monitoring can reach it).'),
    cfg.PortOpt('metrics_port',
                help='TCP port of the Prometheus metrics endpoint (0: any free '
                     'port). Unset: no endpoint.'),
    cfg.IntOpt('replay_buffer_mib', default=32, min=1,
               help='Writes acknowledged since the last flush that the edge '
                    'keeps for replay after a failover. When full, the edge '
                    'flushes by itself. Keep it below the routers\' '
                    'max_unflushed_mib.'),
]


def register_opts(conf):
    conf.register_opts(edge_opts, group='edge')
    conf.register_opts(tls.edge_ssl_opts, group='ssl')


def list_opts():
    return [('edge', edge_opts), ('ssl', tls.edge_ssl_opts)]
