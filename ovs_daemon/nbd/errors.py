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

"""Exceptions of the NBD package.

They are distinct so the edge can tell a refused export (go elsewhere), a
lost connection (fail over at once) and an IO error reported by the router
(pass it to the guest) apart.
"""

import errno
import os

from ovs_daemon.nbd import protocol


class NBDError(Exception):
    """Base of every NBD error."""


class ProtocolError(NBDError):
    """The peer sent something the protocol does not allow."""


class ExportRefused(NBDError):
    """An export cannot be served here.

    Raised by a server's resolver; the message is sent to the client in the
    NBD_REP_ERR_* reply (e.g. where the volume lives now). Raised by the
    client with the server's message when NBD_OPT_GO is refused.
    """

    def __init__(self, message, reply_type=protocol.REP_ERR_UNKNOWN):
        super().__init__(message)
        self.message = message
        self.reply_type = reply_type


class RemoteIOError(NBDError):
    """The server answered a request with an error."""

    def __init__(self, errno_value, message=None):
        super().__init__(message or "NBD server replied %s" % _errno_name(
            errno_value))
        self.errno = errno_value


class TLSFailed(NBDError):
    """TLS could not be started on the connection: the peer refused
    NBD_OPT_STARTTLS, or the TLS handshake failed (an untrusted or
    misnamed certificate, no client certificate where one is required)."""


class ConnectionLost(NBDError):
    """The connection to the server dropped; the request's outcome is unknown."""


class RequestError(NBDError):
    """Raised by an export to answer a request with a particular NBD errno."""

    def __init__(self, errno_value, message=None):
        if errno_value not in protocol.WIRE_ERRNOS:
            raise ValueError("errno %r cannot be sent over NBD" % errno_value)
        super().__init__(message or _errno_name(errno_value))
        self.errno = errno_value


def _errno_name(value):
    return "%s (%s)" % (errno.errorcode.get(value, str(value)),
                        os.strerror(value))
