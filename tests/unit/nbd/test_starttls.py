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

"""NBD over TLS (NBD_OPT_STARTTLS, proto.md "TLS support") between our
server and client: FORCEDTLS refuses plaintext options with
NBD_REP_ERR_TLS_REQD, a client that asks for TLS never goes on in clear,
and a failed handshake ends that connection only."""

import contextlib
import os

import pytest

from ovs_daemon import tls as tls_mod
from ovs_daemon.devcluster import certificates
from ovs_daemon.nbd import client as client_mod
from ovs_daemon.nbd import errors
from ovs_daemon.nbd import export as export_mod
from ovs_daemon.nbd import negotiation
from ovs_daemon.nbd import protocol
from ovs_daemon.nbd import server as server_mod
from tests.unit.nbd.test_server_client import RawPeer
from tests.unit.nbd.test_server_client import Resolver
from tests.unit.nbd.test_server_client import run

MiB = 1 << 20


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp('pki')
    ca = certificates.CertificateAuthority(directory / 'ca').create()
    server = ca.issue('server', ['127.0.0.1'], str(directory / 'server'))
    client = ca.issue('client', ['127.0.0.1'], str(directory / 'client'))
    stranger = certificates.CertificateAuthority(directory / 'other-ca').create()
    return {'server': tls_mod.ServerTLS(server.cert_file, server.key_file, ca.cert_file),
            'client': tls_mod.ClientTLS(ca.cert_file, client.cert_file, client.key_file),
            'stranger': tls_mod.ClientTLS(stranger.cert_file)}


@contextlib.asynccontextmanager
async def serving(pki, required=True, offered=True):
    policy = (negotiation.TLSPolicy(pki['server'].server_context(), required)
              if offered else None)
    server = server_mod.NBDServer(Resolver(export_mod.MemoryExport('vol1', 8 * MiB)), policy)
    await server.start_tcp('127.0.0.1', 0)
    try:
        yield server
    finally:
        await server.stop()


async def connect(server, tls):
    return await client_mod.NBDClient.connect_tcp('127.0.0.1', server.bound_port, 'vol1',
                                                  timeout=5, tls=tls and tls.context())


def test_a_tls_client_reads_and_writes_through_starttls(pki):
    async def scenario():
        async with serving(pki) as srv:
            nbd = await connect(srv, pki['client'])
            assert nbd._conn.transport.get_extra_info('ssl_object') is not None
            data = os.urandom(MiB + 3)
            await nbd.write(4093, data)
            assert await nbd.read(4093, len(data)) == data
            await nbd.flush()
            await nbd.close()
    run(scenario())


def test_a_plaintext_client_gets_tls_required_for_every_option(pki):
    async def scenario():
        async with serving(pki) as srv:
            peer = await RawPeer.open(srv)
            for option, data in ((protocol.OPT_LIST, b''),
                                 (protocol.OPT_STRUCTURED_REPLY, b''),
                                 (protocol.OPT_INFO, protocol.encode_go_request('vol1')),
                                 (protocol.OPT_GO, protocol.encode_go_request('vol1'))):
                peer.option(option, data)
                assert (await peer.reply())[:2] == (option, protocol.REP_ERR_TLS_REQD)
            # NBD_OPT_EXPORT_NAME has no error reply: the session ends.
            peer.option(protocol.OPT_EXPORT_NAME, b'vol1')
            assert await peer.closed_by_server()
            with pytest.raises(errors.ExportRefused) as refused:
                await connect(srv, None)
            assert refused.value.reply_type == protocol.REP_ERR_TLS_REQD
            assert srv.admission.refusals['tls_required'] >= 5
    run(scenario())


def test_tls_offered_but_not_required_serves_both(pki):
    async def scenario():
        async with serving(pki, required=False) as srv:
            for tls in (None, pki['client']):
                nbd = await connect(srv, tls)
                await nbd.write(0, b'x' * 512)
                assert await nbd.read(0, 512) == b'x' * 512
                await nbd.close()
    run(scenario())


def test_a_client_asking_for_tls_never_goes_on_in_clear(pki):
    async def scenario():
        async with serving(pki, offered=False) as srv:
            with pytest.raises(errors.TLSFailed, match='refused NBD_OPT_STARTTLS'):
                await connect(srv, pki['client'])
            peer = await RawPeer.open(srv)
            peer.option(protocol.OPT_STARTTLS)
            assert (await peer.reply())[1] == protocol.REP_ERR_POLICY
    run(scenario())


def test_a_server_the_client_does_not_trust_is_refused_and_others_are_served(pki):
    async def scenario():
        async with serving(pki) as srv:
            with pytest.raises(errors.TLSFailed, match='certificate verify failed'):
                await connect(srv, pki['stranger'])
            nbd = await connect(srv, pki['client'])
            await nbd.write(0, b'y' * 4096)
            await nbd.close()
            assert srv.sessions() == [] or all(s.export is None for s in srv.sessions())
    run(scenario())


def test_starttls_with_data_is_invalid(pki):
    async def scenario():
        async with serving(pki) as srv:
            peer = await RawPeer.open(srv)
            peer.option(protocol.OPT_STARTTLS, b'junk')
            assert (await peer.reply())[1] == protocol.REP_ERR_INVALID
    run(scenario())
