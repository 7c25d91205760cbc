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

"""The control API over HTTPS on live routers: clients verify the routers
with the vPool's CA, routers verify each other (forwarded calls,
handovers) and, when they require it, their clients' certificates; the
token never crosses the wire in clear."""

import json
import subprocess
import sys

import pytest
import requests

from ovs_daemon import tls as tls_mod
from ovs_daemon.api import client as api_client
from ovs_daemon.api import errors as api_errors
from tests.functional import wire_capture
from tests.functional.clients import qemu_io

pytestmark = pytest.mark.slow
MiB = 1 << 20


def admin(vpool, *args):
    result = subprocess.run([sys.executable, '-m', 'ovs_daemon.cmd.admin', '--cluster',
                             vpool.workdir, '--json'] + list(args),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_control_api_is_https_only_and_routers_verify_each_other(make_vpool):
    vpool = make_vpool(routers=2, tls=True, options={'ssl': {'require_client_cert': True}})
    assert all(r['api'].startswith('https://') for r in vpool.state['routers'])
    api = vpool.client()
    api.create_volume('v1', 64 * MiB, router='r1')

    # A migrate asked of r2 makes r2 ask r1 for a handover: a router's call
    # to its peer, over HTTPS with its own certificate.
    vpool.client('r2').migrate('v1', 'r2')
    assert api.volume('v1')['owner'] == 'r2'
    assert [r['api'] for r in admin(vpool, 'status')['routers']] == [
        r['api'] for r in vpool.state['routers']]

    endpoints = [r['api'] for r in vpool.state['routers']]
    without_ca = api_client.ControlClient(endpoints, vpool.token, connect_timeout=2)
    with pytest.raises(api_errors.Unavailable, match='TLS: .*certificate verify failed'):
        without_ca.volumes()
    ca_only = tls_mod.ClientTLS(vpool.tls['ca_file'])
    without_certificate = api_client.ControlClient(endpoints, vpool.token, connect_timeout=2,
                                                   tls=ca_only)
    with pytest.raises(api_errors.Unavailable):
        without_certificate.volumes()
    plain = vpool.router('r1')['api'].replace('https://', 'http://')
    with pytest.raises(requests.ConnectionError):
        requests.get(plain + '/v1/volumes', timeout=5,
                     headers={'Authorization': 'Bearer %s' % vpool.token})
    assert [v['name'] for v in api.volumes()] == ['v1']


def test_a_sniffer_between_client_and_router_sees_tls_and_no_token(make_vpool):
    vpool = make_vpool(routers=1, tls=True)
    host, _, port = vpool.router('r1')['api'].rpartition('/')[2].rpartition(':')
    capture = wire_capture.WireCapture(host, int(port))
    try:
        client = api_client.ControlClient(['https://%s' % capture.address], vpool.token,
                                          tls=vpool.client_tls())
        client.create_volume('v1', 64 * MiB)
        assert client.volume('v1')['size'] == 64 * MiB
    finally:
        capture.close()
    assert capture.sent.startswith(wire_capture.TLS_HANDSHAKE_RECORD)
    assert capture.received.startswith(wire_capture.TLS_HANDSHAKE_RECORD)
    wire = bytes(capture.sent + capture.received)
    assert vpool.token.encode() not in wire
    assert b'Authorization' not in wire and b'"v1"' not in wire


def test_an_edge_attaches_and_fails_over_through_https_routers(make_vpool):
    vpool = make_vpool(routers=2, tls=True, options={'ssl': {'require_client_cert': True}})
    vpool.client().create_volume('v1', 64 * MiB, router='r1')
    vpool.add_edge('hv1')
    uri = admin(vpool, 'attach', 'v1')['uri']
    qemu_io(uri, 'write -P 0x5a 0 1M', 'flush')
    vpool.kill_router('r1')
    # The edge asks r2 (over HTTPS, with its certificate) to take the volume.
    qemu_io(uri, 'read -P 0x5a 0 1M')
    assert vpool.client('r2').volume('v1')['owner'] == 'r2'
