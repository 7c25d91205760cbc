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

"""Byte plumbing shared by server sessions and the client.

NBD traffic is a handshake of small exact-size messages, then a stream of
fixed-size headers each optionally followed by a payload. FramedConnection
receives into one reusable buffer (asyncio.BufferedProtocol: no bytes
object per recv), copies a payload once into its own bytearray, and
receives the rest of a large payload straight into that bytearray. Sends
made in one loop iteration are coalesced into one syscall, which matters
at queue depth 16 and above; sends made while a connection handles what it
received (the replies a server computes at once, the requests a proxy
forwards, on any connection) go out when that handling ends, in the same
loop iteration, rather than one iteration later.
"""

import asyncio
import socket
import ssl
import threading

from ovs_daemon.nbd import errors

RECV_BUFFER_SIZE = 256 * 1024
# The buffer is small until a receive fills it: during the handshake (an
# unauthenticated client may never finish it; it holds the largest
# handshake message) and on a connection that carries little (an idle
# volume's, of which an edge or a router may hold a thousand).
HANDSHAKE_BUFFER_SIZE = 16 * 1024
# Compact the receive buffer once less than this is free at its end, so
# each recv can still take a useful amount.
MIN_RECV_ROOM = 64 * 1024
MAX_HANDSHAKE_BACKLOG = HANDSHAKE_BUFFER_SIZE // 2
# A TLS handshake takes a few round trips; the session's own handshake
# timeout bounds it further on the server.
TLS_HANDSHAKE_TIMEOUT = 10.0
# Parts at least this large are written on their own rather than joined,
# to avoid copying them.
JOIN_LIMIT = 64 * 1024


class _ReceiveBatch(threading.local):
    """The connections with sends queued while one connection handles
    received bytes (None outside that): they are flushed when it returns.
    Per thread, since each event loop runs in its own."""

    connections = None


_batch = _ReceiveBatch()


def set_nodelay(transport):
    """Disable Nagle: small replies must not wait for an ACK."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Framing:
    """FramedConnection's work. A base of its own so that, compiled, it is
    a C type with typed attributes (connection.pxd): the first base of such
    a type must be one, and asyncio.BufferedProtocol, which tells the event
    loop to use get_buffer() and buffer_updated(), is not."""

    header_size = 0

    def __init__(self):
        self.transport = None
        self._loop = asyncio.get_running_loop()
        self._buf = bytearray(HANDSHAKE_BUFFER_SIZE)
        self._view = memoryview(self._buf)
        self._start = 0
        self._end = 0
        self._framing = False
        self._receiving_paused = False
        self._receiving_stopped = False
        self._waiter = None
        self._lost = False
        self._payload = None
        self._payload_view = None
        self._payload_pos = 0
        self._payload_callback = None
        self._receiving_direct = False
        self._out = []
        self._send_scheduled = False

    # -- asyncio.BufferedProtocol -------------------------------------

    def connection_made(self, transport):
        self.transport = transport
        set_nodelay(transport)

    def get_buffer(self, sizehint):
        if self._payload is not None and self._start == self._end:
            self._receiving_direct = True
            return self._payload_view[self._payload_pos:]
        self._receiving_direct = False
        if self._end == len(self._buf) < RECV_BUFFER_SIZE and self._framing:
            self._grow()
        if self._start == self._end:
            self._start = self._end = 0
        elif len(self._buf) - self._end < MIN_RECV_ROOM:
            self._compact()
        return self._view[self._end:]

    def buffer_updated(self, nbytes):
        if _batch.connections is not None:
            self._received(nbytes)
            return
        _batch.connections = pending = []
        try:
            self._received(nbytes)
        finally:
            _batch.connections = None
            for conn in pending:
                conn._flush_sends()

    def _received(self, nbytes):
        if self._receiving_direct:
            self._payload_pos += nbytes
            if self._payload_pos == len(self._payload):
                self._complete_payload()
            if self._framing:
                self._parse()
            return
        self._end += nbytes
        if self._framing:
            self._parse()
            return
        if self._end - self._start > MAX_HANDSHAKE_BACKLOG:
            # A client may send its first requests (megabytes of writes)
            # right after our last handshake reply, before framing starts:
            # read no more until the handshake has consumed what it needs.
            self.pause_receiving()
        self._wake_reader()

    def eof_received(self):
        return False  # close our side too; NBD has no half-open use

    def connection_lost(self, exc):
        self._lost = True
        self._wake_reader()

    # -- handshake phase ----------------------------------------------

    async def read_exactly(self, n):
        if n > len(self._buf):
            raise errors.ProtocolError("message of %d bytes is too long" % n)
        while self._end - self._start < n:
            if self._lost:
                raise errors.ConnectionLost("connection closed by peer")
            if len(self._buf) - self._start < n:
                self._compact()
            self._waiter = self._loop.create_future()
            await self._waiter
        data = bytes(self._view[self._start:self._start + n])
        self._start += n
        if self._receiving_paused and self._end - self._start <= MAX_HANDSHAKE_BACKLOG:
            self._receiving_paused = False
            self.transport.resume_reading()
        return data

    def _wake_reader(self):
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def start_tls(self, context, server_side, server_hostname=None):
        """Upgrade the connection to TLS, right after NBD_OPT_STARTTLS was
        acknowledged; every later byte goes through TLS, so nothing may be
        buffered from before. TLSFailed if the handshake fails (the
        connection is then closed)."""
        if self._end != self._start:
            raise errors.ProtocolError("%d bytes arrived between NBD_OPT_STARTTLS and the "
                                       "TLS handshake" % (self._end - self._start))
        self._flush_sends()
        try:
            self.transport = await self._loop.start_tls(
                self.transport, self, context, server_side=server_side,
                server_hostname=server_hostname, ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT)
        except (ssl.SSLError, OSError, ConnectionError) as exc:
            # A failed handshake never reaches this protocol's
            # connection_lost: end the connection here.
            self.transport.abort()
            if not self._lost:
                self.connection_lost(exc)
            raise errors.TLSFailed("TLS handshake failed: %s" % (exc,)) from None

    # -- framing phase ------------------------------------------------

    def start_framing(self):
        self._framing = True
        if self._receiving_paused:
            self.resume_receiving()
        else:
            self._parse()

    def expect_payload(self, length, callback):
        """Deliver the next `length` bytes as a bytearray to callback."""
        if length == 0:
            callback(bytearray())
            return
        self._payload = bytearray(length)
        self._payload_view = memoryview(self._payload)
        self._payload_pos = 0
        self._payload_callback = callback

    def header_received(self, buf, pos):
        """Handle the header at buf[pos:pos + header_size]."""
        raise NotImplementedError

    def stop_receiving(self):
        """Ignore everything the peer sends from now on."""
        self._receiving_stopped = True
        if not self._lost:
            self.transport.pause_reading()

    def pause_receiving(self):
        """Stop parsing and reading until resume_receiving(): backpressure."""
        if not self._receiving_paused:
            self._receiving_paused = True
            self.transport.pause_reading()

    def resume_receiving(self):
        if (self._receiving_paused and not self._lost
                and not self._receiving_stopped):
            self._receiving_paused = False
            self.transport.resume_reading()
            self._parse()

    def _parse(self):
        size = self.header_size
        while not (self._receiving_paused or self._receiving_stopped
                   or self._lost):
            if self._payload is not None:
                if not self._fill_payload():
                    return
                continue
            if self._end - self._start < size:
                return
            pos = self._start
            self._start += size
            self.header_received(self._buf, pos)

    def _fill_payload(self):
        """Move buffered bytes into the payload; True once it is complete."""
        take = min(self._end - self._start,
                   len(self._payload) - self._payload_pos)
        if take:
            self._payload_view[self._payload_pos:self._payload_pos + take] = (
                self._view[self._start:self._start + take])
            self._payload_pos += take
            self._start += take
        if self._payload_pos < len(self._payload):
            return False
        self._complete_payload()
        return True

    def _complete_payload(self):
        payload, callback = self._payload, self._payload_callback
        self._payload = self._payload_view = self._payload_callback = None
        self._receiving_direct = False
        callback(payload)

    def _grow(self):
        """The last receive filled the buffer: a busy connection gets the
        large one, for good."""
        pending = self._end - self._start
        buf = bytearray(RECV_BUFFER_SIZE)
        buf[:pending] = self._view[self._start:self._end]
        self._buf, self._view = buf, memoryview(buf)
        self._start, self._end = 0, pending

    def _compact(self):
        pending = self._end - self._start
        self._buf[:pending] = self._buf[self._start:self._end]
        self._start, self._end = 0, pending

    # -- sending ------------------------------------------------------

    def send(self, *parts):
        """Queue parts for sending at the end of this loop iteration, or of
        the handling of received bytes under way."""
        self._out.extend(parts)
        if not self._send_scheduled:
            self._send_scheduled = True
            pending = _batch.connections
            if pending is not None:
                pending.append(self)
            else:
                self._loop.call_soon(self._flush_sends)

    def close_after_sends(self):
        """Close once everything queued so far has been handed to the socket."""
        self._flush_sends()
        self.transport.close()

    def _flush_sends(self):
        self._send_scheduled = False
        out, self._out = self._out, []
        if self._lost or self.transport.is_closing():
            return
        small = []
        for part in out:
            if len(part) < JOIN_LIMIT:
                small.append(part)
                continue
            if small:
                self.transport.write(b"".join(small))
                small = []
            self.transport.write(part)
        if small:
            self.transport.write(small[0] if len(small) == 1
                                 else b"".join(small))


class FramedConnection(_Framing, asyncio.BufferedProtocol):
    """Receive side in two phases, plus a coalescing send.

    Handshake phase: a coroutine calls read_exactly(). Framing phase (after
    start_framing()): every `header_size` bytes go to header_received(),
    which may call expect_payload() to have the next bytes delivered as one
    bytearray to a callback.
    """
