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

"""asyncio NBD server: listeners and the registry of sessions.

The server knows nothing about volumes: `resolve_export(name)` returns the
Export to serve (or raises errors.ExportRefused, whose message reaches the
client). If the resolver has a `list_exports()` method (plain or async),
NBD_OPT_LIST is answered with it; otherwise it is refused by policy.
Per-connection ordering guarantees are described in session.py.
"""

import asyncio
import errno
import os
import socket
import stat

from oslo_log import log as logging

from ovs_daemon.nbd import admission as admission_mod
from ovs_daemon.nbd import session as session_mod

LOG = logging.getLogger(__name__)
# Connections the kernel queues before accept: a burst of clients (an edge
# reconnecting its volumes after a failover) must not see SYNs dropped.
LISTEN_BACKLOG = 1024


class NBDServer:

    def __init__(self, resolve_export, tls=None, ready=None):
        """``tls``: a negotiation.TLSPolicy to offer NBD_OPT_STARTTLS with
        (and require it), or None. ``ready``: a coroutine function awaited
        before a new connection is greeted (a router holding IO greets no
        one, see session.py), or None."""
        self._resolve_export = resolve_export
        self._tls = tls
        self._ready = ready
        self._listeners = []
        self._unix_paths = []
        self._sessions = set()
        self.admission = admission_mod.Admission()

    async def start_tcp(self, host, port=0):
        """Listen on TCP; port 0 picks a free one (see bound_port)."""
        listener = await asyncio.get_running_loop().create_server(
            self._new_session, host, port, reuse_address=True, backlog=LISTEN_BACKLOG)
        self._listeners.append(listener)
        LOG.info("NBD server listening on %s", self._describe(listener))
        return listener.sockets[0].getsockname()[:2]

    async def start_unix(self, path):
        """Listen on a unix socket only our user may connect to (0600)."""
        _remove_stale_socket(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
            # Before listen(): nobody can connect while the mode is wider.
            os.chmod(path, 0o600)
        except BaseException:
            sock.close()
            raise
        listener = await asyncio.get_running_loop().create_unix_server(
            self._new_session, sock=sock)
        self._listeners.append(listener)
        self._unix_paths.append(path)
        LOG.info("NBD server listening on %s", path)
        return path

    @property
    def addresses(self):
        """("tcp", host, port) or ("unix", path) for every listener."""
        result = []
        for listener in self._listeners:
            for sock in listener.sockets:
                if sock.family == socket.AF_UNIX:
                    result.append(("unix", sock.getsockname()))
                else:
                    result.append(("tcp",) + sock.getsockname()[:2])
        return result

    @property
    def bound_port(self):
        """Port of the first TCP listener, or None."""
        for address in self.addresses:
            if address[0] == "tcp":
                return address[2]
        return None

    def sessions(self):
        """Open sessions; export_name is None while still in the handshake."""
        return list(self._sessions)

    async def disconnect_export(self, name):
        """Close every session of one export and return how many.

        When this returns no request of those sessions is running or will
        reach the export, so the caller can flush and hand the volume over.
        The resolver must already refuse the export, or clients reconnect.
        """
        return await self.disconnect_sessions(
            lambda export: export.name == name)

    async def disconnect_sessions(self, predicate):
        """Close the sessions whose export object satisfies ``predicate``
        (sessions still in the handshake are left alone); returns how many."""
        victims = [s for s in self._sessions
                   if s.export is not None and predicate(s.export)]
        await asyncio.gather(*(s.close() for s in victims))
        if victims:
            LOG.info("Disconnected %d session(s): %s", len(victims),
                     ", ".join(sorted({repr(s.export_name) for s in victims})))
        return len(victims)

    async def stop(self):
        """Stop listening, then close every session."""
        for listener in self._listeners:
            listener.close()
        for listener in self._listeners:
            await listener.wait_closed()
        self._listeners = []
        for path in self._unix_paths:
            _unlink_quietly(path)
        self._unix_paths = []
        await asyncio.gather(*(s.close() for s in list(self._sessions)))

    def _new_session(self):
        new = session_mod.ServerSession(self._resolve_export,
                                        self._sessions.discard, self.admission, self._tls,
                                        self._ready)
        self._sessions.add(new)
        return new

    @staticmethod
    def _describe(listener):
        return ", ".join(str(s.getsockname()) for s in listener.sockets)


def _remove_stale_socket(path):
    """A socket file left by a killed process would make bind() fail."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError("%s exists and is not a socket" % path)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)
        return
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, "another server listens on %s" % path)


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
