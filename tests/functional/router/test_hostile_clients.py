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

"""Hostile clients of a router's NBD port, none with a credential:
thousands of idle connections and clients looping over options for
exports that are not there leave the router's memory and log bounded and
its volumes served to everybody else."""

import os
import socket
import struct

import pytest
import requests

from ovs_daemon.devcluster import metrics_page
from ovs_daemon.devcluster import process as process_mod
from ovs_daemon.nbd import protocol
from tests.functional.clients import qemu_io

pytestmark = pytest.mark.slow
MiB = 1 << 20
IDLE_CONNECTIONS = 3000
LOOPING_CONNECTIONS = 40
OPTIONS_EACH = 100


def connect_from(source, port):
    sock = socket.create_connection(('127.0.0.1', port), timeout=10,
                                    source_address=(source, 0))
    sock.setblocking(False)
    return sock


def option_loop(name):
    info = protocol.encode_option(protocol.OPT_INFO, protocol.encode_go_request(name))
    return struct.pack('>I', protocol.FLAG_C_FIXED_NEWSTYLE) + info * OPTIONS_EACH


def test_idle_and_option_looping_clients_leave_the_router_bounded_and_serving(vpool):
    router = vpool.router('r1')
    port = int(router['nbd'].rsplit(':', 1)[1])
    api = vpool.client()
    api.create_volume('v1', 16 * MiB, router='r1')
    uri = vpool.nbd_uri('r1', 'v1')
    qemu_io(uri, 'write -P 0x3c 0 1M', 'flush')
    rss_before = process_mod.rss_bytes(router['pid'])
    log_before = os.path.getsize(router['log'])

    held = [connect_from('127.0.0.2', port) for _ in range(IDLE_CONNECTIONS)]
    looping = []
    for n in range(LOOPING_CONNECTIONS):
        sock = socket.create_connection(('127.0.0.1', port), timeout=10,
                                        source_address=('127.0.0.%d' % (3 + n % 50), 0))
        sock.settimeout(10)
        try:
            sock.sendall(option_loop('x' * 4000 + str(n)))
        except OSError:
            pass   # dropped after its options bound: what we want
        looping.append(sock)
    try:
        # Everybody else is served meanwhile: same host, another address.
        out = qemu_io(uri, 'read -P 0x3c 0 1M', 'write -P 0x5a 1M 64k', 'flush')
        assert 'verification failed' not in out
        rss_during = process_mod.rss_bytes(router['pid'])
        refused = _refusals(vpool)
    finally:
        for sock in held + looping:
            sock.close()

    assert rss_during - rss_before < 64 * MiB, (rss_before, rss_during)
    assert os.path.getsize(router['log']) - log_before < 256 * 1024
    assert refused.get('too_many_from_peer', 0) >= IDLE_CONNECTIONS - 64, refused
    assert refused.get('protocol_error', 0) + refused.get('too_many_from_peer', 0) > 0
    assert 'verification failed' not in qemu_io(vpool.nbd_uri('r1', 'v1'),
                                                'read -P 0x3c 0 1M', 'read -P 0x5a 1M 64k')


def _refusals(vpool):
    text = requests.get(vpool.router('r1')['api'] + '/metrics', timeout=10,
                        headers={'Authorization': 'Bearer %s' % vpool.token}).text
    return {dict(labels)['reason']: count
            for (name, labels), count in metrics_page.samples(text).items()
            if name == 'ovs_router_nbd_refusals_total'}
