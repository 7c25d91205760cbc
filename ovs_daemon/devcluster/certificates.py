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

"""A throw-away certificate authority for a development vPool and tests.

It writes PEM files under one directory, named as qemu's
``tls-creds-x509`` and libnbd's ``tls-certificates`` directories expect
them: ``ca-cert.pem``, and for a client ``client-cert.pem`` and
``client-key.pem``; other certificates are ``<name>-cert.pem`` and
``<name>-key.pem``. Every certificate may serve as a server's and as a
client's, and names its hosts (IP addresses or DNS names) as subject
alternative names. Keys are written with mode 0600.
"""

import argparse
import dataclasses
import datetime
import ipaddress
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.oid import NameOID

CA_CERT = 'ca-cert.pem'
CA_KEY = 'ca-key.pem'
VALIDITY = datetime.timedelta(days=365)


@dataclasses.dataclass(frozen=True)
class Issued:
    cert_file: str
    key_file: str


class CertificateAuthority:

    def __init__(self, directory):
        self.directory = os.path.abspath(directory)
        self.cert_file = os.path.join(self.directory, CA_CERT)
        self._key_file = os.path.join(self.directory, CA_KEY)

    def create(self, common_name='OVS Edge development CA'):
        """Make the CA's key and self-signed certificate; returns self."""
        os.makedirs(self.directory, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = _now()
        cert = (x509.CertificateBuilder()
                .subject_name(name).issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + VALIDITY)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True,
                    content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, encipher_only=False,
                    decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                               critical=False)
                .sign(key, hashes.SHA256()))
        _write_key(self._key_file, key)
        _write_cert(self.cert_file, cert)
        return self

    def issue(self, name, hosts, directory=None):
        """A certificate and key for ``hosts`` (addresses or DNS names),
        written as ``<name>-cert.pem`` and ``<name>-key.pem`` in
        ``directory`` (the CA's by default)."""
        with open(self._key_file, 'rb') as f:
            ca_key = serialization.load_pem_private_key(f.read(), password=None)
        with open(self.cert_file, 'rb') as f:
            ca_cert = x509.load_pem_x509_certificate(f.read())
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                .issuer_name(ca_cert.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + VALIDITY)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                               critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=True, key_encipherment=True, key_cert_sign=False,
                    crl_sign=False, content_commitment=False, data_encipherment=False,
                    key_agreement=True, encipher_only=False, decipher_only=False),
                    critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]),
                               critical=False)
                .add_extension(x509.SubjectAlternativeName([_general_name(h) for h in hosts]),
                               critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    ca_key.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256()))
        directory = directory or self.directory
        os.makedirs(directory, exist_ok=True)
        issued = Issued(os.path.join(directory, '%s-cert.pem' % name),
                        os.path.join(directory, '%s-key.pem' % name))
        _write_key(issued.key_file, key)
        _write_cert(issued.cert_file, cert)
        return issued

    def client_directory(self, directory, hosts=('127.0.0.1', 'localhost')):
        """A directory as qemu's ``tls-creds-x509`` (endpoint=client) and
        libnbd's ``tls-certificates`` read it: the CA and a client
        certificate. Returns its path."""
        self.issue('client', hosts, directory)
        if os.path.abspath(directory) != self.directory:
            with open(self.cert_file, 'rb') as src, open(os.path.join(directory, CA_CERT),
                                                         'wb') as dst:
                dst.write(src.read())
        return directory


def main(argv=None):
    """``python -m ovs_daemon.devcluster.certificates --dir DIR --name NAME
    --host ADDRESS...``: the CA of DIR (made if missing) issues NAME's
    certificate for those hosts, and a client directory DIR/client."""
    parser = argparse.ArgumentParser(prog='python -m ovs_daemon.devcluster.certificates')
    parser.add_argument('--dir', required=True)
    parser.add_argument('--name', required=True)
    parser.add_argument('--host', action='append', required=True)
    args = parser.parse_args(argv)
    ca = CertificateAuthority(args.dir)
    if not os.path.exists(ca.cert_file):
        ca.create()
    issued = ca.issue(args.name, args.host)
    ca.client_directory(os.path.join(ca.directory, 'client'), args.host)
    print('%s %s' % (issued.cert_file, issued.key_file))
    return 0


def _general_name(host):
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _now():
    return datetime.datetime.now(datetime.UTC)


def _write_key(path, key):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'wb') as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))


def _write_cert(path, cert):
    with open(path, 'wb') as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


if __name__ == '__main__':
    sys.exit(main())
