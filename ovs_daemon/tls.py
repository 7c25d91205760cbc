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

"""TLS of the control API and of NBD (docs/operator-guide.md, "TLS").

A router's ``[ssl]`` group names its certificate and key (served on the
control API, and on NBD after ``NBD_OPT_STARTTLS``) and the CA its peers'
certificates, and clients' when they present one, are checked against.
Clients (the edge's ``[ssl]``, the Cinder driver's ``ovs_ssl_*``,
``ovs-admin --ca-file``) name the CA that signed the routers' certificates
and optionally a certificate of their own. Every file is read when the
service starts, so a missing, unreadable or mismatched one is a start-up
error naming it, never a failure of the first connection.
"""

import dataclasses
import os
import ssl
import stat

from oslo_config import cfg

router_ssl_opts = [
    cfg.StrOpt('cert_file',
               help='PEM certificate (chain) of this router. With key_file '
                    'the control API is served over HTTPS only and NBD offers '
                    'NBD_OPT_STARTTLS. Its subject alternative names must '
                    'include the address others reach the router at '
                    '(advertise_host, or api_host and nbd_host).'),
    cfg.StrOpt('key_file',
               help='PEM private key of cert_file; mode 0600 (or 0640 for the '
                    'service\'s group), checked at start-up.'),
    cfg.StrOpt('ca_file',
               help='PEM bundle of the CA(s) that signed the routers\' '
                    'certificates. The router verifies its peers against it '
                    '(forwarded calls, handovers), and clients\' certificates '
                    'against it when they present one.'),
    cfg.BoolOpt('require_client_cert', default=False,
                help='Refuse control API and NBD TLS clients that present no '
                     'certificate signed by ca_file (the edges, the Cinder '
                     'driver, ovs-admin and the other routers then all need '
                     'one). Needs ca_file.'),
    cfg.BoolOpt('nbd_require_tls', default=False,
                help='Refuse every NBD option but NBD_OPT_STARTTLS and '
                     'NBD_OPT_ABORT until the client started TLS '
                     '(NBD_REP_ERR_TLS_REQD; a plaintext NBD_OPT_EXPORT_NAME '
                     'ends the session), so no credential or data crosses the '
                     'network in clear. Needs cert_file and key_file.'),
]

edge_ssl_opts = [
    cfg.StrOpt('ca_file',
               help='PEM bundle of the CA(s) that signed the routers\' '
                    'certificates: the edge verifies the routers of https:// '
                    'router_endpoints and, with nbd_tls, their NBD TLS against '
                    'it. Unset: the system\'s CAs verify https:// endpoints and '
                    'NBD runs in clear.'),
    cfg.StrOpt('cert_file',
               help='PEM certificate the edge presents to the routers (needed '
                    'when they set require_client_cert).'),
    cfg.StrOpt('key_file',
               help='PEM private key of cert_file; mode 0600 (or 0640).'),
    cfg.BoolOpt('nbd_tls', default=True,
                help='With ca_file set, start TLS (NBD_OPT_STARTTLS) on every '
                     'NBD connection to a router, verifying its certificate, '
                     'and never fall back to clear text. False: NBD in clear '
                     '(routers with nbd_require_tls refuse it).'),
]


class TLSConfigError(Exception):
    """A certificate, key or CA file is missing, unreadable, malformed or
    does not match; the message names the file and the option."""


@dataclasses.dataclass(frozen=True)
class ClientTLS:
    """What a client of the routers verifies them with and presents.

    ``ca_file`` None: the system's CAs (for https:// endpoints only).
    """
    ca_file: str = None
    cert_file: str = None
    key_file: str = None

    @property
    def requests_verify(self):
        """``verify=`` of a requests call."""
        return self.ca_file or True

    @property
    def requests_cert(self):
        """``cert=`` of a requests call, or None."""
        return (self.cert_file, self.key_file) if self.cert_file else None

    def context(self):
        """An SSLContext verifying the server's certificate and name."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.ca_file:
            _load_ca(context, self.ca_file, 'ca_file')
        if self.cert_file:
            _load_chain(context, self.cert_file, self.key_file)
        return context

    def check(self):
        """Raise TLSConfigError unless every file named loads."""
        if bool(self.cert_file) != bool(self.key_file):
            raise TLSConfigError('a client certificate needs both cert_file and key_file '
                                 '(got cert_file=%s, key_file=%s)'
                                 % (self.cert_file, self.key_file))
        self.context()
        return self


@dataclasses.dataclass(frozen=True)
class ServerTLS:
    """A router's TLS: contexts for its listeners and its calls to peers."""
    cert_file: str
    key_file: str
    ca_file: str = None
    require_client_cert: bool = False
    nbd_require_tls: bool = False

    def server_context(self):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        _load_chain(context, self.cert_file, self.key_file)
        if self.ca_file:
            _load_ca(context, self.ca_file, 'ca_file')
            context.verify_mode = (ssl.CERT_REQUIRED if self.require_client_cert
                                   else ssl.CERT_OPTIONAL)
        return context

    def peer_tls(self):
        """How this router calls its peers: verifying them with ca_file,
        presenting its own certificate."""
        return ClientTLS(self.ca_file, self.cert_file, self.key_file)


def server_tls(group):
    """The ServerTLS of a router's ``[ssl]`` group, or None when it has no
    certificate; TLSConfigError for an incomplete or unloadable setting."""
    if not group.cert_file and not group.key_file:
        if group.nbd_require_tls:
            raise TLSConfigError('[ssl] nbd_require_tls needs cert_file and key_file')
        if group.require_client_cert:
            raise TLSConfigError('[ssl] require_client_cert needs cert_file, key_file '
                                 'and ca_file')
        return None
    if not group.cert_file or not group.key_file:
        raise TLSConfigError('[ssl] needs both cert_file and key_file (got cert_file=%s, '
                             'key_file=%s)' % (group.cert_file, group.key_file))
    if group.require_client_cert and not group.ca_file:
        raise TLSConfigError('[ssl] require_client_cert needs ca_file to verify the '
                             'clients\' certificates with')
    settings = ServerTLS(group.cert_file, group.key_file, group.ca_file,
                         group.require_client_cert, group.nbd_require_tls)
    settings.server_context()
    settings.peer_tls().context()
    return settings


def client_tls(ca_file=None, cert_file=None, key_file=None):
    """A checked ClientTLS of the files given."""
    return ClientTLS(ca_file or None, cert_file or None, key_file or None).check()


def _readable(path, option):
    try:
        with open(path, 'rb') as f:
            f.read(1)
    except OSError as exc:
        raise TLSConfigError('cannot read %s %s: %s' % (option, path, exc.strerror)) from None


def _check_key_mode(path):
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o027:
        raise TLSConfigError('the key_file %s has mode %04o: it must be readable by its '
                             'owner (and at most its group) only, and writable by its '
                             'owner only (chmod 600 or 640)' % (path, mode))


def _load_chain(context, cert_file, key_file):
    _readable(cert_file, 'cert_file')
    _readable(key_file, 'key_file')
    _check_key_mode(key_file)
    try:
        context.load_cert_chain(cert_file, key_file)
    except ssl.SSLError as exc:
        if 'KEY_VALUES_MISMATCH' in str(exc) or 'key values mismatch' in str(exc):
            raise TLSConfigError('the key_file %s is not the key of the certificate in '
                                 'cert_file %s' % (key_file, cert_file)) from None
        raise TLSConfigError('cannot load cert_file %s with key_file %s (PEM certificate '
                             'and key expected): %s' % (cert_file, key_file, exc)) from None


def _load_ca(context, ca_file, option):
    _readable(ca_file, option)
    try:
        context.load_verify_locations(cafile=ca_file)
    except ssl.SSLError as exc:
        raise TLSConfigError('cannot load %s %s (PEM CA certificates expected): %s'
                             % (option, ca_file, exc)) from None
