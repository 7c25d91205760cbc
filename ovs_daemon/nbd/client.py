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

"""asyncio NBD client: fixed newstyle, NBD_OPT_GO, pipelined requests.

Any number of requests may be in flight; each waits on its own future,
found by the reply's handle. When the connection drops - reset, EOF or a
reply that breaks the protocol - every request in flight fails at once
with ConnectionLost, which is what the edge's failover keys on. Connecting
may also raise OSError or TimeoutError (unreachable), ExportRefused
(the server would not serve the export; its message says why) and, when
TLS is asked for, TLSFailed: the client then starts TLS with
NBD_OPT_STARTTLS before any other option and never goes on in clear.
"""

import asyncio
import functools
import itertools

from oslo_log import log as logging

from ovs_daemon.nbd import connection
from ovs_daemon.nbd import errors
from ovs_daemon.nbd import protocol

LOG = logging.getLogger(__name__)
# protocol.encode_request and decode_simple_reply, without their call: once
# per request.
_pack_request = protocol.REQUEST.pack
_unpack_reply = protocol.SIMPLE_REPLY.unpack_from

DEFAULT_CONNECT_TIMEOUT = 10.0
MAX_OPTION_REPLY_LENGTH = 64 * 1024


class NBDClient:
    """A connection to one export. Create with connect_tcp/connect_unix."""

    def __init__(self, conn, export_name):
        self._conn = conn
        self.export_name = export_name

    @classmethod
    async def connect_tcp(cls, host, port, export_name,
                          timeout=DEFAULT_CONNECT_TIMEOUT, tls=None):
        """``tls``: an SSLContext verifying the server, whose certificate
        must name ``host``; None: no TLS."""
        loop = asyncio.get_running_loop()
        return await cls._connect(
            lambda: loop.create_connection(_ClientConnection, host, port),
            export_name, timeout, tls, host)

    @classmethod
    async def connect_unix(cls, path, export_name,
                           timeout=DEFAULT_CONNECT_TIMEOUT):
        loop = asyncio.get_running_loop()
        return await cls._connect(
            lambda: loop.create_unix_connection(_ClientConnection, path),
            export_name, timeout)

    @classmethod
    async def _connect(cls, open_connection, export_name, timeout, tls=None,
                       server_hostname=None):
        async def connect_and_negotiate():
            _, conn = await open_connection()
            try:
                await conn.negotiate(export_name, tls, server_hostname)
            except BaseException:
                conn.transport.abort()
                raise
            return conn
        conn = await asyncio.wait_for(connect_and_negotiate(), timeout)
        return cls(conn, export_name)

    # -- export properties --------------------------------------------

    @property
    def size(self):
        return self._conn.size

    @property
    def transmission_flags(self):
        return self._conn.transmission_flags

    @property
    def read_only(self):
        return bool(self._conn.transmission_flags & protocol.FLAG_READ_ONLY)

    @property
    def can_multi_conn(self):
        return bool(self._conn.transmission_flags
                    & protocol.FLAG_CAN_MULTI_CONN)

    @property
    def block_sizes(self):
        """(minimum, preferred, maximum) as announced by the server."""
        return self._conn.block_sizes

    @property
    def in_flight(self):
        return len(self._conn.pending)

    @property
    def closed(self):
        return self._conn.lost

    # -- IO -----------------------------------------------------------

    async def read(self, offset, length):
        """Return `length` bytes at `offset` as a bytearray."""
        self._check_payload_length(length)
        return await self._conn.request(protocol.CMD_READ, offset, length)

    async def write(self, offset, data, fua=False):
        """Write a bytes-like object; do not modify it until this returns."""
        self._check_payload_length(len(data))
        await self._conn.request(protocol.CMD_WRITE, offset, len(data),
                                 _fua(fua), data)

    async def flush(self):
        await self._conn.request(protocol.CMD_FLUSH, 0, 0)

    async def trim(self, offset, length, fua=False):
        await self._conn.request(protocol.CMD_TRIM, offset, length, _fua(fua))

    async def write_zeroes(self, offset, length, fua=False, no_hole=False):
        flags = _fua(fua) | (protocol.CMD_FLAG_NO_HOLE if no_hole else 0)
        await self._conn.request(protocol.CMD_WRITE_ZEROES, offset, length,
                                 flags)

    def submit(self, command, offset, length, flags=0, payload=None,
               callback=None):
        """Send a request now; return the future of its reply.

        For callers that must keep the order of their requests: the
        request is on the wire, after every earlier one, when this returns.
        A READ's future yields its data; others yield None. ``callback``,
        if given, is called with the future as soon as it is done (while
        the reply is parsed, or now if the connection is already lost),
        rather than in a later loop iteration as a done callback would be.
        """
        if ((payload is not None or command == protocol.CMD_READ)
                and length > self._conn.block_sizes[2]):
            self._check_payload_length(length)
        return self._conn.request(command, offset, length, flags, payload,
                                  callback)

    # -- closing ------------------------------------------------------

    async def close(self):
        """Soft disconnect: let requests in flight finish, send DISC."""
        await asyncio.gather(*self._conn.pending_futures(),
                             return_exceptions=True)
        self._conn.disconnect()
        await self._conn.wait_lost()

    def abort(self):
        """Hard disconnect now; requests in flight fail with ConnectionLost."""
        self._conn.transport.abort()

    async def wait_closed(self):
        """Return once the connection is gone, whoever closed it."""
        await self._conn.wait_lost()

    def _check_payload_length(self, length):
        maximum = self._conn.block_sizes[2]
        if length > maximum:
            raise ValueError("request of %d bytes exceeds the server's "
                             "maximum of %d" % (length, maximum))


def _fua(fua):
    return protocol.CMD_FLAG_FUA if fua else 0


class _ClientConnection(connection.FramedConnection):
    header_size = protocol.SIMPLE_REPLY.size

    def __init__(self):
        super().__init__()
        self.size = None
        self.transmission_flags = 0
        self.block_sizes = (protocol.MIN_BLOCK_SIZE,
                            protocol.PREFERRED_BLOCK_SIZE,
                            protocol.MAX_PAYLOAD)
        self.pending = {}
        self._handles = itertools.count(1)
        self._lost_waiter = self._loop.create_future()

    @property
    def lost(self):
        return self._lost

    # -- handshake ----------------------------------------------------

    async def negotiate(self, export_name, tls=None, server_hostname=None):
        try:
            server_flags = protocol.decode_greeting(
                await self.read_exactly(protocol.SERVER_GREETING.size))
        except ValueError as exc:
            raise errors.ProtocolError(str(exc)) from None
        if not server_flags & protocol.FLAG_FIXED_NEWSTYLE:
            raise errors.ProtocolError("server lacks fixed newstyle")
        client_flags = protocol.FLAG_C_FIXED_NEWSTYLE | (
            server_flags & protocol.FLAG_NO_ZEROES)
        self.send(protocol.CLIENT_FLAGS.pack(client_flags))
        if tls is not None:
            await self._start_tls(tls, server_hostname)
        # Asking for NBD_INFO_BLOCK_SIZE promises to honour the limits;
        # write() and read() enforce the maximum.
        self.send(protocol.encode_option(
            protocol.OPT_GO, protocol.encode_go_request(
                export_name, [protocol.INFO_BLOCK_SIZE])))
        while not await self._read_go_reply():
            pass
        if self.size is None:
            raise errors.ProtocolError("server sent no NBD_INFO_EXPORT")
        self.start_framing()

    async def _start_tls(self, context, server_hostname):
        # The first option, so that no other crosses the network in clear.
        self.send(protocol.encode_option(protocol.OPT_STARTTLS))
        reply_type, data = await self._read_option_reply(protocol.OPT_STARTTLS)
        if reply_type != protocol.REP_ACK:
            raise errors.TLSFailed("the server refused NBD_OPT_STARTTLS (reply type 0x%x): %s"
                                   % (reply_type, data.decode("utf-8", "replace")))
        await self.start_tls(context, server_side=False, server_hostname=server_hostname)

    async def _read_option_reply(self, expected):
        """(reply_type, data) of one reply to option ``expected``."""
        header = await self.read_exactly(protocol.OPTION_REPLY_HEADER.size)
        try:
            option, reply_type, length = (
                protocol.decode_option_reply_header(header))
        except ValueError as exc:
            raise errors.ProtocolError(str(exc)) from None
        if option != expected or length > MAX_OPTION_REPLY_LENGTH:
            raise errors.ProtocolError(
                "unexpected reply to option %d: option %d, %d bytes"
                % (expected, option, length))
        return reply_type, await self.read_exactly(length)

    async def _read_go_reply(self):
        """Handle one reply to NBD_OPT_GO; True once it was the final ACK."""
        reply_type, data = await self._read_option_reply(protocol.OPT_GO)
        if protocol.is_error_reply(reply_type):
            raise errors.ExportRefused(
                data.decode("utf-8", "replace")
                or "export refused (reply type 0x%x)" % reply_type,
                reply_type)
        if reply_type == protocol.REP_INFO:
            self._store_info(data)
        elif reply_type != protocol.REP_ACK:
            raise errors.ProtocolError("unexpected reply type %d to "
                                       "NBD_OPT_GO" % reply_type)
        return reply_type == protocol.REP_ACK

    def _store_info(self, data):
        try:
            info_type, value = protocol.decode_info(data)
        except ValueError as exc:
            raise errors.ProtocolError(str(exc)) from None
        if info_type == protocol.INFO_EXPORT:
            self.size, self.transmission_flags = value
        elif info_type == protocol.INFO_BLOCK_SIZE:
            self.block_sizes = value

    # -- transmission -------------------------------------------------

    def request(self, command, offset, length, flags=0, payload=None,
                callback=None):
        """Send a request; return the future of its reply (see
        NBDClient.submit for ``callback``)."""
        future = self._loop.create_future()
        if self._lost:
            future.set_exception(errors.ConnectionLost("connection is closed"))
            if callback is not None:
                callback(future)
            return future
        handle = next(self._handles)
        self.pending[handle] = (future, command, length, callback)
        header = _pack_request(protocol.REQUEST_MAGIC, flags, command, handle,
                               offset, length)
        if payload is None:
            self.send(header)
        else:
            self.send(header, payload)
        return future

    def pending_futures(self):
        return [entry[0] for entry in self.pending.values()]

    def disconnect(self):
        if not self._lost:
            self.send(protocol.encode_request(protocol.CMD_DISC,
                                              next(self._handles)))
            self.close_after_sends()

    async def wait_lost(self):
        await asyncio.shield(self._lost_waiter)

    def header_received(self, buf, pos):
        magic, error, handle = _unpack_reply(buf, pos)
        entry = self.pending.get(handle)
        if magic != protocol.SIMPLE_REPLY_MAGIC or entry is None:
            LOG.error("Bad reply from NBD server %s (magic 0x%x, handle %d),"
                      " dropping the connection",
                      self.transport.get_extra_info("peername"), magic,
                      handle)
            self.stop_receiving()
            self.transport.abort()
            return
        future, command, length, callback = entry
        if command == protocol.CMD_READ and not error:
            # Stays pending until its data is in: a drop fails it too.
            self.expect_payload(length,
                                functools.partial(self._read_done, handle))
            return
        del self.pending[handle]
        if error:
            _set_exception(future, errors.RemoteIOError(error))
        else:
            _set_result(future, None)
        if callback is not None:
            callback(future)

    def _read_done(self, handle, data):
        future, _, _, callback = self.pending.pop(handle)
        _set_result(future, data)
        if callback is not None:
            callback(future)

    def connection_lost(self, exc):
        super().connection_lost(exc)
        pending, self.pending = self.pending, {}
        reason = "connection to NBD server lost%s" % (
            ": %s" % exc if exc else "")
        for future, _, _, callback in pending.values():
            _set_exception(future, errors.ConnectionLost(reason))
            if callback is not None:
                callback(future)
        _set_result(self._lost_waiter, None)


def _set_result(future, value):
    if not future.done():
        future.set_result(value)


def _set_exception(future, exc):
    if not future.done():
        future.set_exception(exc)
