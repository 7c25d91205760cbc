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

"""TLS on live routers: the control API over HTTPS (clients verify the
routers with the vPool's CA, routers verify each other in forwarded calls
and handovers and, when they require it, their clients' certificates) and
NBD over TLS (NBD_OPT_STARTTLS, required): the standard clients (libnbd's
nbdinfo, qemu-img, qemu-io) read and write a router's export over it, a
plaintext or untrusting client is refused, and neither credentials nor
data cross the wire in clear."""

import asyncio
import json
import os
import subprocess
import sys

import pytest
import requests

from ovs_daemon import tls as tls_mod
from ovs_daemon.api import client as api_client
from ovs_daemon.api import errors as api_errors
from ovs_daemon.devcluster import certificates
from ovs_daemon.nbd import client as nbd_client
from ovs_daemon.nbd import protocol
from tests.functional import wire_capture
from tests.functional.clients import qemu_io
from tests.functional.clients import run

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
    # What DevStack waits for the routers with: the edge credential may list
    # them, over HTTPS with the CA and a client certificate given on the
    # command line.
    listed = subprocess.run(
        [sys.executable, '-m', 'ovs_daemon.cmd.admin', '--json', '--endpoint',
         vpool.router('r1')['api'], '--token-file', vpool.edge_token_file,
         '--ca-file', vpool.tls['ca_file'], '--cert-file', vpool.tls['cert_file'],
         '--key-file', vpool.tls['key_file'], 'routers'],
        capture_output=True, text=True, timeout=60)
    assert sorted(r['id'] for r in json.loads(listed.stdout)) == ['r1', 'r2'], listed.stderr

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


def test_an_edge_attaches_and_fails_over_through_tls_routers(make_vpool):
    """Control calls over HTTPS, NBD with STARTTLS (the routers require it)."""
    vpool = make_vpool(routers=2, tls=True, options={'ssl': {'require_client_cert': True}})
    vpool.client().create_volume('v1', 64 * MiB, router='r1')
    vpool.add_edge('hv1')
    uri = admin(vpool, 'attach', 'v1')['uri']
    qemu_io(uri, 'write -P 0x5a 0 1M', 'flush')
    vpool.kill_router('r1')
    # The edge asks r2 (over HTTPS, with its certificate) to take the volume.
    qemu_io(uri, 'read -P 0x5a 0 1M')
    assert vpool.client('r2').volume('v1')['owner'] == 'r2'


def qemu_tls_args(vpool, export, directory=None):
    """qemu's options for an NBD export of r1 over TLS."""
    host, _, port = vpool.router('r1')['nbd'].rpartition(':')
    return ['--object', 'tls-creds-x509,id=tls0,endpoint=client,dir=%s'
            % (directory or vpool.tls['dir']), '--image-opts',
            'driver=raw,file.driver=nbd,file.server.type=inet,file.server.host=%s,'
            'file.server.port=%s,file.export=%s,file.tls-creds=tls0' % (host, port, export)]


def test_standard_clients_use_a_router_export_over_tls_and_plaintext_is_refused(
        make_vpool, tmp_path):
    vpool = make_vpool(routers=1, tls=True)
    vpool.client().create_volume('v1', 64 * MiB)
    export = vpool.session_export('v1')

    written = run('qemu-io', *qemu_tls_args(vpool, export),
                  '-c', 'write -P 0x6b 1M 1M', '-c', 'flush')
    assert 'wrote 1048576/1048576' in written
    assert 'virtual size: 64 MiB' in run('qemu-img', 'info', *qemu_tls_args(vpool, export))
    assert 'read 1048576/1048576' in run('qemu-io', *qemu_tls_args(vpool, export),
                                         '-c', 'read -P 0x6b 1M 1M')
    info = run('nbdinfo', vpool.nbd_uri('r1', 'v1'))
    assert 'export-size: 67108864' in info and 'TLS' in info

    plaintext = vpool.nbd_uri('r1', 'v1').replace('nbds://', 'nbd://').partition('?')[0]
    refused = run('nbdinfo', plaintext, expect_ok=False)
    assert 'without TLS' in refused
    # A client whose CA did not sign the router's certificate refuses it.
    certificates.CertificateAuthority(tmp_path / 'stranger').create()
    untrusting = run('qemu-img', 'info', *qemu_tls_args(vpool, export, tmp_path / 'stranger'),
                     expect_ok=False)
    assert 'certificate' in untrusting.lower()
    assert 'read 1048576/1048576' in run('qemu-io', *qemu_tls_args(vpool, export),
                                         '-c', 'read -P 0x6b 1M 1M')


def test_a_client_without_a_certificate_is_refused_where_one_is_required(make_vpool,
                                                                          tmp_path):
    vpool = make_vpool(routers=1, tls=True, options={'ssl': {'require_client_cert': True}})
    vpool.client().create_volume('v1', 64 * MiB)
    export = vpool.session_export('v1')
    ca_only = tmp_path / 'ca-only'
    ca_only.mkdir()
    (ca_only / 'ca-cert.pem').write_bytes(open(vpool.tls['ca_file'], 'rb').read())
    run('qemu-img', 'info', *qemu_tls_args(vpool, export, ca_only), expect_ok=False)
    assert 'virtual size: 64 MiB' in run('qemu-img', 'info', *qemu_tls_args(vpool, export))


def test_a_sniffer_on_an_nbd_session_sees_neither_credential_nor_data(make_vpool):
    vpool = make_vpool(routers=1, tls=True)
    # A name long enough that ciphertext does not hold it by chance (a
    # three-byte one turned up in about one run in a hundred).
    volume = 'volume-seen-by-nobody'
    vpool.client().create_volume(volume, 64 * MiB)
    export = vpool.session_export(volume)
    host, _, port = vpool.router('r1')['nbd'].rpartition(':')
    capture = wire_capture.WireCapture(host, int(port))
    data = os.urandom(64 << 10)

    async def session():
        nbd = await nbd_client.NBDClient.connect_tcp(
            '127.0.0.1', capture.port, export, tls=vpool.client_tls().context())
        await nbd.write(0, data)
        await nbd.flush()
        assert await nbd.read(0, len(data)) == data
        await nbd.close()
    try:
        asyncio.run(asyncio.wait_for(session(), 30))
    finally:
        capture.close()
    wire = bytes(capture.sent + capture.received)
    credential = export.partition('/')[2].encode()
    assert credential not in wire and volume.encode() not in wire
    assert data[:64] not in wire
    # Client flags, then NBD_OPT_STARTTLS, then nothing but TLS records.
    assert capture.sent[4:20] == protocol.encode_option(protocol.OPT_STARTTLS)
    assert capture.sent[20:22] == wire_capture.TLS_HANDSHAKE_RECORD
