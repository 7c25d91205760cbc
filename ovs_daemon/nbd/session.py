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

"""One client connection to the NBD server: handshake, then transmission.

Ordering guarantee (per connection):
- Requests reach the export in arrival order, with one relaxation: READs
  do not wait for each other. A request is passed to the export only after
  every WRITE, TRIM, WRITE_ZEROES and FLUSH received before it has
  completed, and those four never overlap each other. So writes are applied
  in the order sent (a replay of overlapping writes ends with the last
  one), a READ sees every write received before it, and a FLUSH covers
  every write received before it - more than NBD requires (only writes
  *completed* before the FLUSH arrived), at no cost for exports whose
  writes complete quickly.
- Replies are sent as requests complete, so they may be out of order.
- An export whose ``orders_requests`` is true (the edge, which forwards to
  a server that keeps this same order) gets every request at once, in
  arrival order, and must keep that order itself.

Bad input: a request with a bad magic, a WRITE announcing more than
MAX_PAYLOAD bytes (its framing can no longer be trusted) or a stream cut
mid-request ends this session only. Anything else that is invalid
(unknown command or flag, out-of-range offset, READ over MAX_PAYLOAD, a
write on a read-only export) gets an EINVAL/EPERM reply without reaching
the export; a WRITE's payload is consumed first. TRIM and WRITE_ZEROES
carry no payload, so they may exceed MAX_PAYLOAD (qemu sends them up to
2 GiB).
"""

import asyncio
import functools

from oslo_log import log as logging

from ovs_daemon.nbd import admission as admission_mod
from ovs_daemon.nbd import connection
from ovs_daemon.nbd import errors
from ovs_daemon.nbd import negotiation
from ovs_daemon.nbd import protocol

LOG = logging.getLogger(__name__)

# A client that connects and stalls must not hold a session for long.
HANDSHAKE_TIMEOUT = 10.0
# Backpressure: stop reading requests while this many are being served.
MAX_REQUESTS_IN_FLIGHT = 256
MAX_BYTES_IN_FLIGHT = 64 * 1024 * 1024

_ALLOWED_FLAGS = {
    protocol.CMD_READ: protocol.CMD_FLAG_FUA,
    protocol.CMD_WRITE: protocol.CMD_FLAG_FUA,
    protocol.CMD_FLUSH: protocol.CMD_FLAG_FUA,
    protocol.CMD_TRIM: protocol.CMD_FLAG_FUA,
    protocol.CMD_WRITE_ZEROES: (protocol.CMD_FLAG_FUA
                                | protocol.CMD_FLAG_NO_HOLE),
}


class ServerSession(connection.FramedConnection):
    """asyncio protocol for one accepted connection."""

    header_size = protocol.REQUEST.size

    def __init__(self, resolver, on_closed, admission=None, tls=None, ready=None):
        super().__init__()
        self._tls = tls
        self._ready = ready
        self.export = None
        self.peer = None
        self._resolver = resolver
        self._on_closed = on_closed
        self._admission = admission or admission_mod.Admission()
        self._handshake = None
        self._barrier = None
        self._idle = None
        self._requests_in_flight = 0
        self._bytes_in_flight = 0
        self._writing_paused = False
        self._closing = False
        self._teardown = None

    @property
    def export_name(self):
        return None if self.export is None else self.export.name

    def __repr__(self):
        return "<ServerSession export=%r peer=%r>" % (self.export_name,
                                                      self.peer)

    async def close(self):
        """End the session; returns once the export has been released.

        Requests not yet passed to the export are dropped unanswered; those
        already running are waited for, so nothing reaches the export after
        this returns.
        """
        if not self.transport.is_closing():
            self.transport.abort()
        await asyncio.shield(self._start_teardown())

    # -- connection events --------------------------------------------

    def connection_made(self, transport):
        super().connection_made(transport)
        self.peer = transport.get_extra_info("peername") or "unix"
        host = self.peer[0] if isinstance(self.peer, tuple) else self.peer
        if not self._admission.admit(host):
            self._handshake = self._loop.create_future()
            self._handshake.set_result(None)
            self.transport.abort()
            return
        self._handshake = self._loop.create_task(self._negotiate_admitted(host))

    def connection_lost(self, exc):
        super().connection_lost(exc)
        self._start_teardown()

    def pause_writing(self):
        self._writing_paused = True
        self._apply_backpressure()

    def resume_writing(self):
        self._writing_paused = False
        self._apply_backpressure()

    async def _negotiate_admitted(self, host):
        try:
            await self._negotiate()
        finally:
            self._admission.done(host)

    async def _negotiate(self):
        try:
            chosen = await asyncio.wait_for(self._negotiate_when_ready(), HANDSHAKE_TIMEOUT)
        except errors.ConnectionLost:
            return
        except errors.TLSFailed as exc:
            self._admission.refuse("tls_failed", "NBD client %s: %s", self.peer, exc)
            return
        except TimeoutError:
            self._admission.refuse(
                "handshake_timeout", "NBD client %s did not finish the handshake in %ss",
                self.peer, HANDSHAKE_TIMEOUT)
            self.transport.abort()
            return
        except errors.ProtocolError as exc:
            self._admission.refuse("protocol_error", "Dropping NBD client %s in handshake: %s",
                                   self.peer, exc)
            self.close_after_sends()
            return
        except Exception:
            LOG.exception("NBD handshake with %s failed", self.peer)
            self.transport.abort()
            return
        if chosen is not None and not self._closing:
            await self._open(chosen.export)
        if chosen is None or self._closing:
            if chosen is not None:
                await chosen.export.close()
            self.close_after_sends()
            return
        self.export = chosen.export
        LOG.debug("NBD client %s attached to export %r", self.peer,
                  self.export.name)
        self.start_framing()

    async def _open(self, export):
        try:
            await export.open()
        except Exception:
            LOG.exception("Export %r could not be opened for %s", export.name, self.peer)
            self._closing = True

    async def _negotiate_when_ready(self):
        if self._ready is not None:
            # The greeting is what tells a client probing the server that it
            # serves: none is sent while the server would hold every request.
            await self._ready()
        return await negotiation.negotiate(self, self._resolver, self._admission, self._tls)

    def _start_teardown(self):
        if self._teardown is None:
            self._closing = True
            self._teardown = self._loop.create_task(self._release())
        return self._teardown

    async def _release(self):
        if not self._handshake.done():
            self._handshake.cancel()
        await asyncio.gather(self._handshake, return_exceptions=True)
        await self._wait_idle()
        try:
            if self.export is not None:
                await self.export.close()
        finally:
            self._on_closed(self)

    # -- transmission -------------------------------------------------

    def header_received(self, buf, pos):
        magic, flags, command, handle, offset, length = (
            protocol.decode_request(buf, pos))
        if magic != protocol.REQUEST_MAGIC:
            LOG.warning("Bad request magic 0x%x from %s, disconnecting",
                        magic, self.peer)
            self._drop()
            return
        if command == protocol.CMD_WRITE:
            if length > protocol.MAX_PAYLOAD:
                LOG.warning("WRITE of %d bytes from %s exceeds the limit, "
                            "disconnecting", length, self.peer)
                self.send(protocol.encode_simple_reply(handle,
                                                       protocol.EINVAL))
                self._drop()
                return
            self.expect_payload(length, functools.partial(
                self._submit, command, flags, handle, offset, length))
        elif command == protocol.CMD_DISC:
            self.stop_receiving()
            self._loop.create_task(self._disconnect_when_idle())
        else:
            self._submit(command, flags, handle, offset, length, None)

    def _drop(self):
        self.stop_receiving()
        self.close_after_sends()

    async def _disconnect_when_idle(self):
        await self._wait_idle()
        self.close_after_sends()

    def _submit(self, command, flags, handle, offset, length, payload):
        error = self._validate(command, flags, offset, length)
        if error:
            self.send(protocol.encode_simple_reply(handle, error))
            return
        cost = length if command in (protocol.CMD_READ,
                                     protocol.CMD_WRITE) else 0
        barrier = None if self.export.orders_requests else self._barrier
        if ((barrier is None or barrier.done()) and not self._closing
                and self._serve_now(command, flags, handle, offset, length,
                                    payload, cost)):
            return
        self._requests_in_flight += 1
        self._bytes_in_flight += cost
        self._apply_backpressure()
        if command == protocol.CMD_READ:
            coro = self._serve_read(barrier, handle, offset, length)
        else:
            coro = self._serve_ordered(barrier, command, flags, handle,
                                       offset, length, payload)
        task = self._loop.create_task(self._accounted(coro, cost))
        if command != protocol.CMD_READ:
            self._barrier = task

    def _serve_now(self, command, flags, handle, offset, length, payload,
                   cost):
        """The export's fast path (Export.serve_now): no task for a request
        it can serve at once or by a callback. False if it declined."""
        self._requests_in_flight += 1
        self._bytes_in_flight += cost
        reply = functools.partial(self._served, handle, command, length, cost)
        try:
            accepted = self.export.serve_now(command, flags, offset, length,
                                             payload, reply)
        except Exception as exc:
            reply(exc, None)
            return True
        if not accepted:
            self._requests_in_flight -= 1
            self._bytes_in_flight -= cost
            return False
        if self._requests_in_flight:
            self._apply_backpressure()
        return True

    def _request_done(self, cost):
        """A request is done: give back its share of the in-flight bounds."""
        self._requests_in_flight -= 1
        self._bytes_in_flight -= cost
        if not self._requests_in_flight and self._idle is not None:
            self._idle.set_result(None)
            self._idle = None
        self._apply_backpressure()

    def _served(self, handle, command, length, cost, error, data):
        self._request_done(cost)
        if error is None and command == protocol.CMD_READ and len(data) != length:
            error = errors.RequestError(
                protocol.EIO, "export returned %d bytes for a read of %d"
                % (len(data), length))
        if error is not None:
            self.send(protocol.encode_simple_reply(handle, self._errno(error)))
        elif command == protocol.CMD_READ:
            self.send(protocol.encode_simple_reply(handle), data)
        else:
            self.send(protocol.encode_simple_reply(handle))

    def _validate(self, command, flags, offset, length):
        """Return the errno to refuse a request with, or 0."""
        allowed = _ALLOWED_FLAGS.get(command)
        if allowed is None or flags & ~allowed:
            return protocol.EINVAL
        if command == protocol.CMD_FLUSH:
            return 0
        if command != protocol.CMD_READ and self.export.read_only:
            return protocol.EPERM
        if command == protocol.CMD_READ and length > protocol.MAX_PAYLOAD:
            return protocol.EINVAL
        if offset + length > self.export.size:
            return protocol.EINVAL
        return 0

    async def _accounted(self, coro, cost):
        # Bookkeeping inside the task rather than in a done callback saves
        # a loop callback per request.
        try:
            await coro
        finally:
            self._request_done(cost)

    async def _wait_idle(self):
        while self._requests_in_flight:
            if self._idle is None:
                self._idle = self._loop.create_future()
            await asyncio.shield(self._idle)

    def _apply_backpressure(self):
        if (self._writing_paused
                or self._requests_in_flight >= MAX_REQUESTS_IN_FLIGHT
                or self._bytes_in_flight >= MAX_BYTES_IN_FLIGHT):
            self.pause_receiving()
        else:
            self.resume_receiving()

    async def _serve_read(self, barrier, handle, offset, length):
        if barrier is not None and not barrier.done():
            await barrier
        if self._closing:
            return
        try:
            data = await self.export.read(offset, length)
            if len(data) != length:
                raise errors.RequestError(
                    protocol.EIO, "export returned %d bytes for a read of %d"
                    % (len(data), length))
        except Exception as exc:
            self.send(protocol.encode_simple_reply(handle, self._errno(exc)))
        else:
            self.send(protocol.encode_simple_reply(handle), data)

    async def _serve_ordered(self, barrier, command, flags, handle, offset,
                             length, payload):
        if barrier is not None and not barrier.done():
            await barrier
        if self._closing:
            return
        fua = bool(flags & protocol.CMD_FLAG_FUA)
        try:
            if command == protocol.CMD_WRITE:
                await self.export.write(offset, payload, fua)
            elif command == protocol.CMD_FLUSH:
                await self.export.flush()
            elif command == protocol.CMD_TRIM:
                await self.export.trim(offset, length, fua)
            else:
                await self.export.write_zeroes(
                    offset, length, fua,
                    not flags & protocol.CMD_FLAG_NO_HOLE)
        except Exception as exc:
            self.send(protocol.encode_simple_reply(handle, self._errno(exc)))
        else:
            self.send(protocol.encode_simple_reply(handle))

    def _errno(self, exc):
        if isinstance(exc, errors.RequestError):
            return exc.errno
        LOG.error("Export %r failed a request: %r", self.export_name, exc,
                  exc_info=exc)
        return protocol.EIO
