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

"""systemd's readiness protocol (sd_notify(3)) for ``Type=notify`` units.

A daemon tells the service manager it is ready once it serves, and that it
is stopping when it begins to shut down, by a datagram to the socket named
by the ``NOTIFY_SOCKET`` environment variable that systemd sets. Without
it (not started by systemd) nothing is sent.
"""

import os
import socket

from oslo_log import log as logging

LOG = logging.getLogger(__name__)


def notify(state):
    """Send ``state`` (e.g. ``READY=1``); whether a service manager listens."""
    address = os.environ.get('NOTIFY_SOCKET')
    if not address:
        return False
    if address.startswith('@'):
        # An abstract socket.
        address = '\0' + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        LOG.warning('Cannot notify the service manager at %s: %s', address, exc)
        return False
    return True


def ready():
    return notify('READY=1')


def stopping():
    return notify('STOPPING=1')
