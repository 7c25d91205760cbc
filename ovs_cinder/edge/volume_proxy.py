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

"""One attached volume at the edge: the NBD export its client (QEMU) sees,
forwarding every request to the volume's router and failing over.

Order: the export sets ``orders_requests``, so the edge's NBD session hands
it every request as it arrives; each is sent upstream, on the one
connection to the router, within the call that received it. The router
keeps that order. Nothing here awaits between receiving a request and
sending it, which is what keeps writes in order without serialising them.

Failover (docs/edge.md): a request that fails because the connection is
lost, times out, or is answered ESHUTDOWN marks the upstream lost. One
failover task then finds the new owner (:class:`~.locator.Locator`),
replays the journal of writes since the last completed FLUSH in order,
and installs the new upstream; the requests waiting are sent again (a
journalled write is not: the replay sent it). Any other error answer
(EINVAL, ENOSPC, ...) is the guest's to see; for a replayed write the
guest already saw succeed, it means the new upstream lost it: that
upstream is lost too, and the next one gets the replay. A FLUSH forgets a
write only once its latest send succeeded.

Multiattach (docs/edge.md): a router that offers no FLUSH acknowledges a
write only once it is committed, so the journal keeps a write only while
it is in flight there: no acknowledged write is ever replayed over a later
one of another host.
"""

import asyncio
import functools
import time

from oslo_log import log as logging

from ovs_cinder.edge import journal as journal_mod
from ovs_cinder.edge import locator as locator_mod
from ovs_cinder.edge import watchdog as watchdog_mod
from ovs_daemon.nbd import errors as nbd_errors
from ovs_daemon.nbd import export
from ovs_daemon.nbd import protocol

LOG = logging.getLogger(__name__)
KEEPALIVE_BYTES = 4096
GREETING = protocol.NBDMAGIC.to_bytes(8, 'big')


class FailoverFailed(Exception):
    """No router took the volume over within the failover timeout."""


class VolumeProxy(export.Export):

    orders_requests = True

    def __init__(self, locator, settings):
        self.name = locator.volume
        self.locator = locator
        self.settings = settings
        self.journal = journal_mod.WriteJournal(settings.replay_buffer_mib << 20)
        self.upstream = None
        self.generation = 0
        self.revoked = None
        self.failovers = 0
        self.last_pause = 0.0
        self._size = 0
        self._halted = set()
        self._failover = None
        self._auto_flush = None
        self._last_reply = time.monotonic()
        self._last_send = self._last_reply
        self._flushes_sent = {}
        self._watchdog = None
        self._keepalive_read = None
        self._probe = None
        self._last_probe = 0.0
        self._closed = False

    # -- life cycle -------------------------------------------------------------

    async def connect(self):
        """First connection, at attach: errors go to the caller."""
        self._install(await self.locator.find(), replay=False)
        self._start_watchdog()

    async def reconnect(self):
        """Connect again after a restart of the edge: a volume no router
        serves now is not an error here; its IO fails over as after a loss."""
        try:
            self._install(await self.locator.find(), replay=False)
        except Exception as exc:
            LOG.warning('Volume %s: no router serves it yet (%s); its IO waits for one',
                        self.name, exc)
        self._start_watchdog()

    def _start_watchdog(self):
        settings = self.settings
        self._watchdog = watchdog_mod.shared(
            min(settings.io_timeout, settings.keepalive_interval) / 10,
            settings.keepalive_interval)
        self._watchdog.watch(self)

    async def close(self):
        """Called by the NBD server for each session that ends: nothing to do;
        the service calls :meth:`detach`."""

    async def detach(self):
        """Flush what the journal holds and drop the upstream."""
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.unwatch(self)
        if self.upstream is not None and len(self.journal) and not self.revoked:
            try:
                await self.flush()
            except Exception as exc:
                LOG.error('Volume %s: final flush at detach failed: %s', self.name, exc)
        if self._failover is not None:
            self._failover.cancel()
        if self.upstream is not None:
            self.upstream.nbd.abort()
            self.upstream = None

    @property
    def size(self):
        return self._size

    @property
    def busy(self):
        """Whether requests are in flight to the upstream (the watchdog
        checks such a volume at every tick)."""
        upstream = self.upstream
        return upstream is not None and bool(upstream.nbd.in_flight)

    @property
    def state(self):
        if self.revoked:
            return 'revoked'
        if self.upstream is None:
            return 'failing-over'
        return 'connected'

    def set_size(self, size):
        self._size = max(self._size, size)

    # -- the export -------------------------------------------------------------

    async def read(self, offset, length):
        return await self._request(protocol.CMD_READ, offset, length)

    async def write(self, offset, data, fua):
        # The session hands over a payload of its own: kept as it is.
        await self._journalled(protocol.CMD_WRITE, offset, len(data), _fua(fua), data)

    async def trim(self, offset, length, fua):
        await self._journalled(protocol.CMD_TRIM, offset, length, _fua(fua), None)

    async def write_zeroes(self, offset, length, fua, may_trim):
        flags = _fua(fua) | (0 if may_trim else protocol.CMD_FLAG_NO_HOLE)
        await self._journalled(protocol.CMD_WRITE_ZEROES, offset, length, flags, None)

    async def flush(self):
        covered, key = self.journal.next_seq, object()
        generation, future = self._send_flush(key)
        await self._flushed(covered, key, generation, future)

    def _send_flush(self, key):
        # flush_timeout counts from this send, to this upstream.
        self._flushes_sent[key] = time.monotonic()
        return self._send(protocol.CMD_FLUSH, 0, 0, 0, None)

    async def _flushed(self, covered, key, generation, future):
        """The rest of a FLUSH sent as ``(generation, future)`` when the
        journal's ``next_seq`` was ``covered``: it completes once every
        write it covers is applied."""
        send = functools.partial(self._send_flush, key)
        try:
            while True:
                await self._complete(future, generation, resend=send)
                unapplied = self.journal.unapplied_before(covered)
                if unapplied is None:
                    break
                if (unapplied.generation == self.generation and unapplied.future is not None
                        and not unapplied.future.done()):
                    # NBD lets a server answer a FLUSH before writes sent
                    # ahead of it (a write-through router wakes the FLUSH
                    # before the writes its commit covered): their replies
                    # are on their way.
                    await asyncio.wait([unapplied.future])
                    continue
                # Its send failed: that write is being failed over (its
                # replay goes first) or failed back to the guest. Flush
                # again, behind it.
                generation, future = send()
        finally:
            del self._flushes_sent[key]
        self.journal.forget_before(covered)

    # -- the session's fast path ------------------------------------------------

    def serve_now(self, command, flags, offset, length, payload, reply):
        """Every request is sent here, in arrival order, without a task: a
        reply that succeeds (the usual case) answers the guest from the
        parsing of the router's reply; anything else goes on in a task the
        way the coroutine methods would have gone on."""
        if command == protocol.CMD_READ:
            self._read_now(offset, length, reply)
        elif command == protocol.CMD_FLUSH:
            self._flush_now(reply)
        else:
            if command == protocol.CMD_WRITE_ZEROES:
                flags &= protocol.CMD_FLAG_FUA | protocol.CMD_FLAG_NO_HOLE
            else:
                flags &= protocol.CMD_FLAG_FUA
            self._journalled_now(command, offset, length, flags, payload, reply)
        return True

    def _read_now(self, offset, length, reply):
        def replied(future):
            if _succeeded(future):
                self._last_reply = time.monotonic()
                reply(None, future.result())
            else:
                self._read_later(future, generation, offset, length, reply)
        # The callback may run within _send (a connection already lost).
        generation = self.generation
        _, future = self._send(protocol.CMD_READ, offset, length, 0, None, replied)
        if future is None:
            self._read_later(None, generation, offset, length, reply)

    def _read_later(self, future, generation, offset, length, reply):
        """A read whose reply was not a success goes on in a task."""
        _finish_later(self._complete(future, generation, resend=functools.partial(
            self._send, protocol.CMD_READ, offset, length, 0, None)), reply)

    def _journalled_now(self, command, offset, length, flags, payload, reply):
        def replied(future):
            if _succeeded(future):
                self._last_reply = time.monotonic()
                self._acknowledged(entry)
                reply(None, None)
            else:
                _finish_later(self._acknowledge(entry, future, generation), reply)
        entry = self._append(command, offset, length, flags, payload)
        generation = self.generation
        self._send_entry(entry, replied)
        if entry.future is None:
            _finish_later(self._acknowledge(entry, None, generation), reply)

    def _flush_now(self, reply):
        covered, key = self.journal.next_seq, object()

        def replied(future):
            if _succeeded(future) and self.journal.unapplied_before(covered) is None:
                self._last_reply = time.monotonic()
                del self._flushes_sent[key]
                self.journal.forget_before(covered)
                reply(None, None)
            else:
                _finish_later(self._flushed(covered, key, generation, future), reply)
        self._flushes_sent[key] = time.monotonic()
        generation = self.generation
        _, future = self._send(protocol.CMD_FLUSH, 0, 0, 0, None, replied)
        if future is None:
            _finish_later(self._flushed(covered, key, generation, None), reply)

    # -- requests ---------------------------------------------------------------

    async def _journalled(self, command, offset, length, flags, payload):
        entry = self._append(command, offset, length, flags, payload)
        self._send_entry(entry)
        await self._acknowledge(entry, entry.future, entry.generation)

    def _append(self, command, offset, length, flags, payload):
        if self.journal.full and self._auto_flush is None:
            # Its completion frees the journal; the guest's writes go on meanwhile.
            self._auto_flush = asyncio.ensure_future(self._flush_for_room())
        return self.journal.append(command, offset, length, flags, payload)

    async def _acknowledge(self, entry, future, generation):
        """Wait for the reply to a journalled request sent as ``(generation,
        future)``, failing over as often as needed."""
        try:
            await self._complete(future, generation, resend=None, entry=entry)
        except nbd_errors.RequestError:
            # The guest sees this write fail: it must not be replayed.
            self.journal.discard(entry)
            raise
        self._acknowledged(entry)

    def _acknowledged(self, entry):
        entry.acknowledged = True
        if entry.write_through:
            # Committed before it was acknowledged: nothing to replay.
            self.journal.discard(entry)

    async def _flush_for_room(self):
        try:
            await self.flush()
        except nbd_errors.RequestError as exc:
            LOG.warning('Volume %s: flush to make room in the journal failed: %s',
                        self.name, exc)
        finally:
            self._auto_flush = None

    async def _request(self, command, offset, length):
        def resend():
            return self._send(command, offset, length, 0, None)
        generation, future = resend()
        return await self._complete(future, generation, resend=resend)

    def _send_entry(self, entry, callback=None):
        entry.write_through = self.upstream is not None and self.upstream.write_through
        entry.generation, entry.future = self._send(
            entry.command, entry.offset, entry.length, entry.flags, entry.payload, callback)

    def _send(self, command, offset, length, flags, payload, callback=None):
        """Put a request on the wire now: ``(generation, reply future)``, or
        ``(generation, None)`` while there is no upstream (``callback``,
        then not called, is NBDClient.submit's)."""
        upstream = self.upstream
        if upstream is None:
            return self.generation, None
        if not upstream.nbd.in_flight:
            # The silence the watchdog measures starts now, not at the last
            # reply, and it checks this volume at every tick from now on.
            self._last_send = time.monotonic()
            if self._watchdog is not None:
                self._watchdog.busy(self)
        return self.generation, upstream.nbd.submit(command, offset, length, flags, payload,
                                                    callback)

    async def _complete(self, future, generation, resend, entry=None):
        """Wait for a reply, failing over as often as needed. A reply that
        does not come is the watchdog's business (see :meth:`check_upstream`)."""
        while True:
            if future is None:
                try:
                    await self._wait_for_upstream()
                except nbd_errors.RequestError:
                    if entry is not None:
                        self.journal.discard(entry)
                    raise
                if entry is not None:
                    generation, future = entry.generation, entry.future
                else:
                    generation, future = resend()
                continue
            try:
                result = await future
                self._last_reply = time.monotonic()
                return result
            except nbd_errors.RemoteIOError as exc:
                if exc.errno != protocol.ESHUTDOWN:
                    raise nbd_errors.RequestError(exc.errno, str(exc)) from exc
                self._lost(generation, 'the router halted the volume', halted=True)
            except nbd_errors.ConnectionLost as exc:
                self._lost(generation, str(exc))
            future = None

    async def _wait_for_upstream(self):
        if self.revoked:
            raise nbd_errors.RequestError(protocol.EIO, self.revoked)
        if self.upstream is not None:
            return
        if self._failover is None or self._failover.done():
            self._start_failover(None)
        try:
            await asyncio.shield(self._failover)
        except (FailoverFailed, locator_mod.AttachmentRevoked) as exc:
            raise nbd_errors.RequestError(protocol.EIO, str(exc)) from exc

    # -- failover ---------------------------------------------------------------

    def _lost(self, generation, reason, halted=False):
        if generation != self.generation or self.upstream is None:
            return  # already being replaced
        lost = self.upstream
        if halted:
            self._halted.add((lost.router_id, lost.epoch))
        LOG.warning('Volume %s: lost router %s (epoch %d): %s', self.name, lost.router_id,
                    lost.epoch, reason)
        self.upstream = None
        lost.nbd.abort()
        self._start_failover(lost, halted)

    def _start_failover(self, lost, halted=False):
        self._failover = asyncio.ensure_future(self._fail_over(lost, halted))

    async def _fail_over(self, lost, halted=False):
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self.settings.failover_timeout
        # A router that halted the volume is usually handing it over: follow
        # the registry for a while before asking anyone to take it.
        follow_until = started + (self.settings.handover_grace if halted else 0)
        delay = 0.02
        while True:
            try:
                # One find may wait acquire_timeout for each router it asks:
                # it ends at the deadline all the same.
                upstream = await asyncio.wait_for(
                    self.locator.find(lost=lost, halted=self._halted,
                                      follow_only=loop.time() < follow_until),
                    deadline - loop.time())
                break
            except locator_mod.AttachmentRevoked as exc:
                if self._new_token_may_come(exc, started):
                    await asyncio.sleep(delay)
                    continue
                self.revoked = str(exc)
                LOG.error('Volume %s: %s', self.name, exc)
                raise
            except Exception as exc:
                if loop.time() + delay > deadline:
                    LOG.error('Volume %s: no router took it over in %.1f s: %s', self.name,
                              loop.time() - started, str(exc) or type(exc).__name__)
                    raise FailoverFailed('no router took volume %s over within %.1f s'
                                         % (self.name, self.settings.failover_timeout)) from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.25)
        replayed = self._install(upstream, replay=True)
        self.failovers += 1
        self.last_pause = loop.time() - started
        LOG.warning('Volume %s: failed over from %s to %s (epoch %d) in %.3f s, replayed '
                    '%d writes', self.name, lost.router_id if lost else None,
                    upstream.router_id, upstream.epoch, self.last_pause, replayed)

    def _new_token_may_come(self, refused, started):
        """Whether a refused attachment token may be one an attach again
        just replaced: the new one is then tried, for ``reattach_grace``."""
        if refused.token != self.locator.attachment_token:
            return True
        if asyncio.get_running_loop().time() - started < self.settings.reattach_grace:
            LOG.warning('Volume %s: %s; waiting up to %.1f s for a new attachment token',
                        self.name, refused, self.settings.reattach_grace)
            return True
        return False

    def _install(self, upstream, replay):
        """Make ``upstream`` current; with ``replay``, send the journal to it
        first, so the requests waiting go after every write they followed."""
        self.generation += 1
        self.upstream = upstream
        self._last_reply = time.monotonic()
        for key in self._flushes_sent:
            # Those waiting are sent again to this upstream: their clock restarts.
            self._flushes_sent[key] = self._last_reply
        self.set_size(upstream.nbd.size)
        if not replay:
            return 0
        entries = self.journal.entries()
        for entry in entries:
            self._send_entry(entry)
            if entry.future is not None:
                entry.future.add_done_callback(
                    functools.partial(self._replayed, entry, self.generation))
        return len(entries)

    def _replayed(self, entry, generation, future):
        """A replayed write the guest already saw succeed must succeed again;
        if it does not, this upstream lost it: fail over again (the journal
        keeps it for the next replay)."""
        if not entry.acknowledged or future.cancelled() or future.exception() is None:
            return
        exc = future.exception()
        halted = (isinstance(exc, nbd_errors.RemoteIOError)
                  and exc.errno == protocol.ESHUTDOWN)
        self._lost(generation, 'the replay of write %d failed: %s' % (entry.seq, exc),
                   halted=halted)

    def check_upstream(self, now):
        """The watchdog of the upstream, every tenth of the IO timeout
        while requests are in flight, once per ``keepalive_interval`` while
        idle (one timer for all volumes: watchdog.py).

        Requests in flight with no reply for ``io_timeout`` mean a silent
        loss: the upstream is dropped, which fails them over. A FLUSH may
        take longer and holds back the replies after it, so while one is in
        flight a silence past ``io_timeout`` only sends a probe (see
        :meth:`_probe_router`), once per ``io_timeout``; a FLUSH unanswered
        ``flush_timeout`` after its send is a loss whatever the probes say.
        An upstream idle for ``keepalive_interval`` gets a one-block read,
        so a silent loss is noticed without guest IO too. One timestamp per
        reply replaces a timer per request.
        """
        settings = self.settings
        upstream = self.upstream
        if self._closed or upstream is None:
            return
        silent = now - max(self._last_reply, self._last_send)
        oldest_flush = min(self._flushes_sent.values(), default=None)
        if oldest_flush is not None and now - oldest_flush > settings.flush_timeout:
            self._lost(self.generation, 'no flush answer within %.2f s'
                       % settings.flush_timeout)
        elif not upstream.nbd.in_flight:
            if silent > settings.keepalive_interval and self._keepalive_read is None:
                self._keepalive_read = asyncio.ensure_future(self._keep_alive())
        elif silent > settings.io_timeout:
            if oldest_flush is None:
                self._lost(self.generation, 'no answer within %.2f s' % settings.io_timeout)
            elif self._probe is None and now - self._last_probe > settings.io_timeout:
                self._last_probe = now
                self._probe = asyncio.ensure_future(
                    self._probe_router(upstream, self.generation))

    async def _probe_router(self, upstream, generation):
        """Tell a router busy with a flush from a lost or hung one: it must
        send its NBD greeting on a new connection within ``connect_timeout``.
        A TCP connect alone proves nothing: the kernel accepts it for a
        stopped process too."""
        host, _, port = upstream.router['nbd'].rpartition(':')
        writer = None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, int(port)), self.settings.connect_timeout)
            greeting = await asyncio.wait_for(reader.readexactly(8),
                                              self.settings.connect_timeout)
            if greeting != GREETING:
                raise OSError('no NBD greeting: %r' % greeting)
        except (TimeoutError, OSError, EOFError) as exc:
            self._lost(generation, 'router unresponsive during a flush: %s'
                       % (str(exc) or type(exc).__name__))
        finally:
            if writer is not None:
                writer.close()
            self._probe = None

    async def _keep_alive(self):
        try:
            await self.read(0, min(KEEPALIVE_BYTES, self._size))
        except nbd_errors.RequestError as exc:
            LOG.warning('Volume %s: keepalive failed: %s', self.name, exc)
        finally:
            self._keepalive_read = None


def _fua(fua):
    return protocol.CMD_FLAG_FUA if fua else 0


def _succeeded(future):
    return not future.cancelled() and future.exception() is None


def _finish_later(coro, reply):
    """Go on with a request in a task; its outcome goes to ``reply``."""
    asyncio.ensure_future(coro).add_done_callback(functools.partial(_reply_with, reply))


def _reply_with(reply, task):
    if task.cancelled():
        LOG.error('A request was cancelled before its reply: it fails with EIO')
        reply(nbd_errors.RequestError(protocol.EIO, 'the request was cancelled'), None)
    elif task.exception() is not None:
        reply(task.exception(), None)
    else:
        reply(None, task.result())
