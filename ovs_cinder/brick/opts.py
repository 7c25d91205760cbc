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

"""Options of the os-brick connector and the nova volume driver
(``oslo-config-generator --namespace ovs_brick``), in the ``[ovs_edge]``
group of nova.conf (nova-compute) and cinder.conf (cinder-volume,
cinder-backup): where this host's edge is."""

from oslo_config import cfg

GROUP = 'ovs_edge'

connector_opts = [
    cfg.StrOpt('control_socket', default='/run/ovs-edge/control.sock',
               help='Control socket of the edge on this host (the edge\'s '
                    '[edge] control_socket): volumes are attached through it.'),
    cfg.IntOpt('reconnect_delay', default=60, min=0,
               help='Seconds QEMU keeps a guest\'s IO waiting for the edge\'s '
                    'socket when its connection drops (an edge restart or '
                    'crash), reconnecting meanwhile: libvirt\'s <reconnect '
                    'delay="N"/> on the disk\'s NBD source, written by the '
                    'nova volume driver. Keep it above the time the edge '
                    'takes to start. 0: no reconnect; IO fails at once.'),
    cfg.StrOpt('site',
               help='Failure domain of this host, reported to Cinder in the '
                    'connector properties. Unset: the edge tells it (its '
                    '[edge] site); set it to report a site while the edge is '
                    'down.'),
]


def register_opts(conf):
    conf.register_opts(connector_opts, group=GROUP)


def list_opts():
    return [(GROUP, connector_opts)]
