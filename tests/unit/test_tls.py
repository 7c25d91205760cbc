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

"""TLS settings: what loads, and the start-up errors that name the file."""

import os
import ssl

from oslo_config import cfg
import pytest

from ovs_cinder.cmd import edge as edge_cmd
from ovs_daemon import opts
from ovs_daemon import tls
from ovs_daemon.cmd import router as router_cmd
from ovs_daemon.devcluster import certificates


@pytest.fixture
def ca(tmp_path):
    return certificates.CertificateAuthority(tmp_path / 'ca').create()


@pytest.fixture
def router_cert(ca, tmp_path):
    return ca.issue('router', ['127.0.0.1', 'localhost'], str(tmp_path / 'router'))


def ssl_group(**values):
    conf = cfg.ConfigOpts()
    conf.register_opts(tls.router_ssl_opts, group='ssl')
    conf([], default_config_files=[])
    for name, value in values.items():
        conf.set_override(name, value, group='ssl')
    return conf.ssl


def test_no_certificate_means_no_tls():
    assert tls.server_tls(ssl_group()) is None


def test_a_router_certificate_gives_a_server_context_verifying_clients_with_the_ca(
        ca, router_cert):
    settings = tls.server_tls(ssl_group(cert_file=router_cert.cert_file,
                                        key_file=router_cert.key_file, ca_file=ca.cert_file,
                                        require_client_cert=True))
    context = settings.server_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    peer = settings.peer_tls()
    assert (peer.ca_file, peer.cert_file) == (ca.cert_file, router_cert.cert_file)


@pytest.mark.parametrize('values, complaint', [
    ({'cert_file': 'CERT'}, 'needs both cert_file and key_file'),
    ({'key_file': 'KEY'}, 'needs both cert_file and key_file'),
    ({'nbd_require_tls': True}, 'nbd_require_tls needs cert_file and key_file'),
    ({'cert_file': 'CERT', 'key_file': 'KEY', 'require_client_cert': True},
     'require_client_cert needs ca_file'),
])
def test_an_incomplete_setting_is_refused(values, complaint, router_cert):
    values = {k: {'CERT': router_cert.cert_file, 'KEY': router_cert.key_file}.get(v, v)
              for k, v in values.items()}
    with pytest.raises(tls.TLSConfigError, match=complaint):
        tls.server_tls(ssl_group(**values))


def test_a_missing_certificate_is_named(router_cert, tmp_path):
    missing = str(tmp_path / 'nowhere.pem')
    with pytest.raises(tls.TLSConfigError,
                       match='cannot read cert_file %s: No such file' % missing):
        tls.server_tls(ssl_group(cert_file=missing, key_file=router_cert.key_file))


def test_a_key_of_another_certificate_is_named(ca, router_cert, tmp_path):
    other = ca.issue('other', ['127.0.0.1'], str(tmp_path / 'other'))
    with pytest.raises(tls.TLSConfigError, match='the key_file %s is not the key of the '
                       'certificate in cert_file %s' % (other.key_file, router_cert.cert_file)):
        tls.server_tls(ssl_group(cert_file=router_cert.cert_file, key_file=other.key_file))


def test_a_key_open_to_others_is_refused(router_cert):
    os.chmod(router_cert.key_file, 0o644)
    with pytest.raises(tls.TLSConfigError, match='has mode 0644'):
        tls.server_tls(ssl_group(cert_file=router_cert.cert_file,
                                 key_file=router_cert.key_file))


def test_a_ca_file_that_is_no_certificate_is_named(router_cert, tmp_path):
    garbage = tmp_path / 'ca.pem'
    garbage.write_text('not a certificate\n')
    with pytest.raises(tls.TLSConfigError, match='cannot load ca_file %s' % garbage):
        tls.client_tls(str(garbage))
    with pytest.raises(tls.TLSConfigError, match='cannot load ca_file %s' % garbage):
        tls.server_tls(ssl_group(cert_file=router_cert.cert_file,
                                 key_file=router_cert.key_file, ca_file=str(garbage)))


def test_a_client_certificate_needs_its_key(router_cert):
    with pytest.raises(tls.TLSConfigError, match='needs both cert_file and key_file'):
        tls.client_tls(cert_file=router_cert.cert_file)


def test_the_router_does_not_start_with_a_bad_key_and_says_which(router_cert, tmp_path,
                                                                 capsys):
    token = tmp_path / 'token'
    token.write_text('secret\n')
    token.chmod(0o600)
    config = tmp_path / 'ovs-router.conf'
    config.write_text('[router]\nid = r1\ntoken_file = %s\n[ssl]\ncert_file = %s\n'
                      'key_file = %s\n' % (token, router_cert.cert_file, tmp_path / 'no-key'))
    assert router_cmd.main(['--config-file', str(config)]) == 1
    assert 'cannot read key_file %s' % (tmp_path / 'no-key') in capsys.readouterr().err


def test_the_ssl_group_is_in_the_router_sample():
    groups = dict(opts.list_opts())
    assert [o.name for o in groups['ssl']] == ['cert_file', 'key_file', 'ca_file',
                                               'require_client_cert', 'nbd_require_tls']


def test_the_edge_does_not_start_with_a_missing_ca_and_says_which(tmp_path, capsys):
    token = tmp_path / 'edge-token'
    token.write_text('secret\n')
    token.chmod(0o600)
    config = tmp_path / 'ovs-edge.conf'
    config.write_text('[edge]\nrouter_endpoints = https://127.0.0.1:8765\ntoken_file = %s\n'
                      'control_socket = %s\n[ssl]\nca_file = %s\n'
                      % (token, tmp_path / 'control.sock', tmp_path / 'no-ca.pem'))
    assert edge_cmd.main(['--config-file', str(config)]) == 1
    assert '[ssl] cannot read ca_file %s' % (tmp_path / 'no-ca.pem') in capsys.readouterr().err
    assert not (tmp_path / 'control.sock').exists()
