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

"""What nova-compute does on one hypervisor, as a command run inside that
host's network namespace: the os-brick calls nova makes, and a guest.

    hypervisor.py EDGE_SOCKET COMMAND ARGS...

    properties HOST IP         connector properties (JSON out)
    connect                    cinder's attachment on stdin, device out
    disconnect [--force]       {"attachment", "device_info"} on stdin
    guest SOCKET VOLUME DIR    a verifying guest writer until DIR/stop
    verify SOCKET VOLUME DIR   check the guest's writes (DIR/guest.json)
    attached                   the volumes this host's edge has attached

EDGE_SOCKET is this host's edge, set as ``[ovs_edge] control_socket`` as
nova.conf sets it for nova-compute. Run it in a process of its own: the test process is
eventlet-patched, the guest is asyncio, and nova's modules (which turn
cinder's attachment into the connection info os-brick gets) register options
that clash with cinder's.
"""

import json
import os
import sys
import time

from nova.volume import cinder as nova_cinder
from os_brick.initiator import connector as brick_connector
import os_brick.privileged
from oslo_config import cfg

from ovs_cinder.brick import connector as ovs_connector
from ovs_daemon.api import edge_client
from ovs_daemon.devcluster import guest as guest_mod


def _set_up_os_brick():
    # As root here: privileged calls run in this process, no privsep daemon.
    os_brick.privileged.default.set_client_mode(False)
    ovs_connector.register()


def _connector():
    _set_up_os_brick()
    return brick_connector.InitiatorConnector.factory(ovs_connector.PROTOCOL, None)


def properties(host, ip):
    _set_up_os_brick()
    return brick_connector.get_connector_properties(None, ip, False, False, host=host)


def _connection_properties(attachment):
    """What nova hands os-brick for cinder's attachment record."""
    return nova_cinder._translate_attachment_ref(attachment)['connection_info']['data']


def connect():
    return _connector().connect_volume(_connection_properties(json.load(sys.stdin)))


def disconnect(force=False):
    request = json.load(sys.stdin)
    _connector().disconnect_volume(_connection_properties(request['attachment']),
                                   request['device_info'], force=force)
    return {'ok': True}


def guest(socket_path, volume, directory):
    """Write until ``directory/stop`` appears, then record what was
    acknowledged and sent in ``directory/guest.json``."""
    writer = guest_mod.GuestWriter(guest_mod.unix_connector(socket_path, volume),
                                   flush_every=32).start()
    stop = os.path.join(directory, 'stop')
    while not os.path.exists(stop):
        time.sleep(0.05)
        with open(os.path.join(directory, 'writes'), 'w') as f:
            f.write(str(writer.writes))
    writer.stop()
    state = {'acked': writer.acked, 'attempted': writer.attempted,
             'summary': writer.summary(), 'errors': writer.errors}
    with open(os.path.join(directory, 'guest.json'), 'w') as f:
        json.dump(state, f)
    return state['summary']


def verify(socket_path, volume, directory):
    """Every acknowledged block holds its last acknowledged write, or a
    later one that was sent but never acknowledged (in flight when the host
    was cut off)."""
    with open(os.path.join(directory, 'guest.json')) as f:
        state = json.load(f)
    writer = guest_mod.GuestWriter(guest_mod.unix_connector(socket_path, volume))
    # Checked as durable writes are: the routers held every acknowledged
    # write, only the guest's host was lost.
    writer.durable = {int(b): seq for b, seq in state['acked'].items()}
    writer.attempted = {int(b): seq for b, seq in state['attempted'].items()}
    checked, wrong = writer.verify(durable_only=True)
    return {'checked': checked, 'wrong': wrong}


def attached():
    return [v['volume'] for v in
            edge_client.EdgeControlClient(cfg.CONF.ovs_edge.control_socket).list()]


def main(argv):
    cfg.CONF.set_override('control_socket', argv[1], group='ovs_edge')
    command, args = argv[2], argv[3:]
    if command == 'properties':
        result = properties(*args)
    elif command == 'connect':
        result = connect()
    elif command == 'disconnect':
        result = disconnect(force='--force' in args)
    elif command == 'guest':
        result = guest(*args)
    elif command == 'verify':
        result = verify(*args)
    elif command == 'attached':
        result = attached()
    else:
        raise SystemExit('unknown command %r' % command)
    json.dump(result, sys.stdout)


if __name__ == '__main__':
    main(sys.argv)
