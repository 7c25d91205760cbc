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

"""Free ports and reachability probes, optionally inside a network namespace."""

import contextlib
import socket

from ovs_daemon.devcluster import nsenter


def _bind_ephemeral(host, count):
    # Hold every socket open until all are bound so the kernel hands out
    # distinct ports; they are released (and may be taken by someone else:
    # callers retry a start that fails) as soon as this returns.
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(sock.getsockname()[1])
        return ports


def free_ports(count, host='127.0.0.1', netns=None):
    """Return ``count`` distinct TCP ports that were free on ``host`` just now."""
    return nsenter.run_in_netns(netns, _bind_ephemeral, host, count)


def free_port(host='127.0.0.1', netns=None):
    return free_ports(1, host, netns)[0]


def _connects(host, port, timeout):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def can_connect(host, port, timeout=1.0, netns=None):
    """True if a TCP connection to ``host:port`` succeeds from ``netns``."""
    return nsenter.run_in_netns(netns, _connects, host, port, timeout)


def _exchange(host, port, payload, timeout):
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(payload)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b''.join(chunks)


def request(host, port, payload, timeout=2.0, netns=None):
    """Send ``payload`` and return everything the peer answers before closing."""
    return nsenter.run_in_netns(netns, _exchange, host, port, payload, timeout)
