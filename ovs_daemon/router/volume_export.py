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

"""A volume of the engine served over NBD.

The event loop never waits on the backend: a read runs on the loop when
everything it reads is at hand (unflushed blocks, zeroes, container pages
the local backend finds in the page cache, chunks of the read cache in the
page cache, what the read cache prefetched for a sequential reader:
``Volume.read`` without ``wait``), otherwise in a worker thread,
and so do writes, TRIMs and WRITE_ZEROES that are not whole
blocks (they patch blocks they must read first); flush uploads and commits,
so it runs in a worker thread too. The session still passes the writes of a
connection to the export one at a time, in order, whichever thread applies
them. When a volume has
gathered more unflushed data than its limit (TRIMs and WRITE_ZEROES count
what their map operations hold), the router starts a flush of its own in
the background and writes go on while it uploads; past twice the limit a
write waits for it before it is applied, and fails, unapplied, if that
flush fails. That bounds what a router holds in memory for a client that
never flushes and under a failing backend, and keeps the disk and the
network busy at the same time. A failed background flush loses nothing:
its data stays unflushed and the next flush retries it.

Every request passes the volume's :class:`~ovs_daemon.router.gate.IOGate`
before it runs and again before it is acknowledged, so a router whose
ZooKeeper session is suspended acknowledges nothing until it is back.

A multiattach volume runs write-through (docs/edge.md, "Multiattach"): a
write, TRIM or WRITE_ZEROES is acknowledged only once a commit covers it.
Group commit: one commit runs at a time and covers every write applied
before it started; the writes that arrive meanwhile share the next one.
An edge's session applies its writes in the order they arrive but does not
wait for one's commit before it applies the next (:class:`AttachedExport`
keeps the order), so the writes in flight on every connection share the
commits, and each is answered once one covers it.
Such an export has no write cache, so it does not offer FLUSH: that tells
the edge to keep no acknowledged write for replay. It answers a read only
while the router holds the volume's read lease, checked after the data was
read (read_lease.py), and, taken by a steal, serves nothing until every
lease of an earlier owner has run out (:meth:`VolumeExport.hold`).

A halted volume (fenced, handed over, deleted) answers ESHUTDOWN: the edge
takes that, like a dropped connection, as the sign to ask another router.
The first such answer calls ``on_halt(reason)`` so the router stops
exporting the volume at once.
"""

import asyncio
import inspect
import time

from oslo_log import log as logging

from ovs_daemon.backends import base as backends
from ovs_daemon.engine import errors as engine_errors
from ovs_daemon.engine import volume as volume_mod
from ovs_daemon.nbd import errors as nbd_errors
from ovs_daemon.nbd import export
from ovs_daemon.nbd import protocol
from ovs_daemon.router import gate as gate_mod

LOG = logging.getLogger(__name__)

class AttachmentRevoked(Exception):
    """The session's attachment token is no longer current."""


_ERRNO_OF = (
    (AttachmentRevoked, protocol.EPERM),
    (engine_errors.Halted, protocol.ESHUTDOWN),
    (backends.Fenced, protocol.ESHUTDOWN),
    (engine_errors.OutOfRange, protocol.EINVAL),
    (engine_errors.InvalidRequest, protocol.EINVAL),
)


def _request_error(exc):
    for kind, errno_value in _ERRNO_OF:
        if isinstance(exc, kind):
            return nbd_errors.RequestError(errno_value, str(exc))
    LOG.error('IO error: %s', exc)
    return nbd_errors.RequestError(protocol.EIO, str(exc))


class VolumeExport(export.Export):
    """``observe(op, seconds, nbytes, error)``, if given, is told of every
    request: its size in bytes and the exception it failed with, or None."""

    def __init__(self, volume, executor=None, max_unflushed_bytes=64 << 20,
                 gate=None, on_halt=None, observe=None, write_through=False,
                 read_lease=None):
        self.volume = volume
        self.name = volume.namespace
        self.gate = gate or gate_mod.IOGate()
        self.write_through = write_through
        self.read_lease = read_lease
        self._hold = None
        self._executor = executor
        self._max_unflushed = max_unflushed_bytes
        self._on_halt = on_halt
        self._observe = observe
        self._background_flush = None
        self._applied = 0
        self._committed = 0
        self._commit = None

    @property
    def size(self):
        return self.volume.size

    @property
    def write_cache(self):
        return not self.write_through

    async def _run(self, op, fn, *args, in_thread=False, nbytes=0, admitted=None):
        """Run one request; ``admitted()``, if given, says whether the
        session may still use the volume: asked after the last wait, right
        before the request touches the volume."""
        started = time.perf_counter()
        try:
            if self._hold is not None:
                await asyncio.shield(self._hold)
            if not self.gate.is_open:
                await self.gate.wait()
            if admitted is not None and not admitted():
                raise AttachmentRevoked('the attachment token of volume %s was revoked'
                                        % self.name)
            if in_thread:
                result = await self._in_thread(fn, *args)
            else:
                result = fn(*args)
                if inspect.isawaitable(result):
                    result = await result
            if not self.gate.is_open:
                await self.gate.wait()
        except Exception as exc:
            raise self._failed(op, started, nbytes, exc) from exc
        self._report(op, started, nbytes, None)
        return result

    def _failed(self, op, started, nbytes, exc):
        """The RequestError a request that raised ``exc`` answers with."""
        self._report(op, started, nbytes, exc)
        error = _request_error(exc)
        if error.errno == protocol.ESHUTDOWN and self._on_halt:
            self._on_halt(self.volume.halted or str(exc))
        return error

    def serve_now(self, command, flags, offset, length, payload, reply, admitted=None):
        """Without a task, what :meth:`_run` would do on the loop with no
        wait: a READ of data at hand, a WRITE of whole blocks without FUA
        while the volume is under its limit, on a volume with an open gate
        and a current token. Everything else goes the coroutine way."""
        if not self.gate.is_open or self.write_through or (
                admitted is not None and not admitted()):
            return False
        started = time.perf_counter()
        if command == protocol.CMD_READ:
            try:
                data = self.volume.read(offset, length, wait=False)
            except Exception as exc:
                reply(self._failed('read', started, length, exc), None)
                return True
            if data is None:
                return False
            self._report('read', started, length, None)
            reply(None, data)
            return True
        if command != protocol.CMD_WRITE or flags & protocol.CMD_FLAG_FUA \
                or not _aligned(offset, length):
            return False
        unflushed = self.volume.unflushed_bytes
        if unflushed >= 2 * self._max_unflushed:
            return False
        try:
            self.volume.write(offset, payload)
        except Exception as exc:
            reply(self._failed('write', started, length, exc), None)
            return True
        self._report('write', started, length, None)
        self._applied += 1
        # What the write can have added, at most (a block overwritten in
        # the open container adds nothing): no second count of the volume's
        # buffers per write.
        if unflushed + length + volume_mod.OP_BYTES > self._max_unflushed:
            self._start_background_flush()
        reply(None, None)
        return True

    async def _in_thread(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def hold(self, seconds):
        """Serve nothing for ``seconds``: a volume taken by a steal waits out
        the read lease of the owner it was taken from."""
        self._hold = asyncio.ensure_future(asyncio.sleep(seconds))
        self._hold.add_done_callback(self._hold_done)

    def _hold_done(self, hold):
        if self._hold is hold:
            self._hold = None

    async def until_served(self):
        """Return once a :meth:`hold` is over."""
        if self._hold is not None:
            await asyncio.shield(self._hold)

    async def _read(self, offset, length):
        while True:
            data = self.volume.read(offset, length, wait=False)
            if data is None:
                data = await self._in_thread(self.volume.read, offset, length)
            if not self.write_through or self.read_lease.valid:
                return data
            await self._lease_renewed()

    async def _lease_renewed(self):
        """Wait for the read lease (the volume may halt meanwhile: then the
        gate raises)."""
        if not self.gate.is_open:
            await self.gate.wait()
        await self.read_lease.renewed(self.read_lease.duration)

    def _report(self, op, started, nbytes, error):
        if self._observe:
            self._observe(op, time.perf_counter() - started, nbytes, error)

    async def read(self, offset, length, admitted=None):
        return await self._run('read', self._read, offset, length, nbytes=length,
                               admitted=admitted)

    async def write(self, offset, data, fua, admitted=None):
        await self.settle(await self.apply_write(offset, data, admitted), fua)

    async def trim(self, offset, length, fua, admitted=None):
        await self.settle(await self.apply_trim(offset, length, admitted), fua)

    async def write_zeroes(self, offset, length, fua, may_trim, admitted=None):
        await self.settle(await self.apply_write_zeroes(offset, length, admitted), fua)

    async def apply_write(self, offset, data, admitted=None):
        """Apply a write; returns its number for :meth:`settle`."""
        return await self._apply('write', self.volume.write, offset, data, nbytes=len(data),
                                 in_thread=not _aligned(offset, len(data)), admitted=admitted)

    async def apply_trim(self, offset, length, admitted=None):
        return await self._apply('trim', self.volume.trim, offset, length,
                                 in_thread=not _aligned(offset, length), admitted=admitted)

    async def apply_write_zeroes(self, offset, length, admitted=None):
        return await self._apply('write_zeroes', self.volume.write_zeroes, offset, length,
                                 in_thread=not _aligned(offset, length), admitted=admitted)

    async def _apply(self, op, fn, *args, **kwargs):
        await self._admit()
        await self._run(op, fn, *args, **kwargs)
        self._applied += 1
        return self._applied

    async def flush(self):
        if self.write_through:
            await self._commit_applied(self._applied)
        else:
            await self._flush_volume()

    async def _flush_volume(self):
        await self._run('flush', self.volume.flush, in_thread=True)

    async def _commit_applied(self, target):
        """Return once the writes applied up to number ``target`` are
        committed (group commit)."""
        while self._committed < target:
            if self._commit is None or self._commit.done():
                self._commit = asyncio.ensure_future(self._commit_once())
            await asyncio.shield(self._commit)

    async def _commit_once(self):
        covered = self._applied
        await self._flush_volume()
        self._committed = max(self._committed, covered)

    async def settle(self, applied, fua):
        """Return when the write applied as number ``applied`` may be
        acknowledged: write-through, once a commit covers it."""
        if self.write_through:
            await self._commit_applied(applied)
            return
        if fua:
            await self.flush()
            return
        if self.volume.unflushed_bytes > self._max_unflushed:
            self._start_background_flush()

    async def _admit(self):
        """Before a write is applied: while the volume holds twice its limit
        unflushed or more, wait for the router's own flush. A flush that
        fails (a failing backend) fails the write, which is not applied:
        what a router holds stays bounded whatever the backend does."""
        while self.volume.unflushed_bytes >= 2 * self._max_unflushed:
            await asyncio.shield(self._start_background_flush())

    def _start_background_flush(self):
        if self._background_flush is None or self._background_flush.done():
            self._background_flush = asyncio.ensure_future(self._flush_volume())
            self._background_flush.add_done_callback(self._background_flush_done)
        return self._background_flush

    def _background_flush_done(self, task):
        if not task.cancelled() and task.exception() is not None:
            LOG.warning('%s: background flush failed, the next flush retries: %s',
                        self.name, task.exception())


def _aligned(offset, length):
    """A request of whole blocks: it patches no block it must read first."""
    return not (offset | length) % volume_mod.BLOCK_SIZE


class _SessionOrder:
    """The order of one session's requests on a write-through volume: its
    writes, TRIMs, WRITE_ZEROES and FLUSHes are applied one at a time, in
    the order they arrived, and a read waits until every one that arrived
    before it is applied; none waits for another's commit."""

    def __init__(self):
        self._applied = None

    def take_turn(self):
        """``(previous, mine)``: the turn of the ordered request that arrived
        last so far, and this one's, to be set once it is applied (call it
        before any await)."""
        previous = self._applied
        self._applied = asyncio.get_running_loop().create_future()
        return previous, self._applied

    @property
    def last(self):
        return self._applied


async def _after(turn):
    if turn is not None and not turn.done():
        # Shielded: a cancelled waiter must not cancel the others' turn.
        await asyncio.shield(turn)


def _end_turn(turn):
    if not turn.done():
        turn.set_result(None)


class AttachedExport(export.Export):
    """One edge session's view of a volume: the volume's export, plus the
    attachment token the session presented, so that revoking the token can
    end exactly the sessions that use it. ``admitted()`` says whether the
    token is still current: every request asks it right before it touches
    the volume, after any wait (a request held by a paused gate while the
    token was revoked must not land).

    On a write-through volume the session keeps its own order
    (``orders_requests``, :class:`_SessionOrder`) so that its writes wait
    for their commits together; the mode is the one the session began with
    (a change of mode ends the volume's sessions).

    ``on_open(self)``, if given, is awaited once a session chose this
    export, before the session reads its first request."""

    def __init__(self, volume_export, token, admitted, on_open=None):
        self._export = volume_export
        self.name = volume_export.name
        self.token = token
        self._admitted = admitted
        self._on_open = on_open
        self.orders_requests = volume_export.write_through
        self._order = _SessionOrder()

    @property
    def size(self):
        return self._export.size

    @property
    def write_cache(self):
        return self._export.write_cache

    async def open(self):
        if self._on_open is not None:
            await self._on_open(self)

    async def read(self, offset, length):
        if self.orders_requests:
            await _after(self._order.last)
        return await self._export.read(offset, length, admitted=self._admitted)

    def serve_now(self, command, flags, offset, length, payload, reply):
        return self._export.serve_now(command, flags, offset, length, payload, reply,
                                      admitted=self._admitted)

    async def write(self, offset, data, fua):
        if not self.orders_requests:
            return await self._export.write(offset, data, fua, admitted=self._admitted)
        await self._in_turn(self._export.apply_write, offset, data, self._admitted)

    async def flush(self):
        if self.orders_requests:
            previous, mine = self._order.take_turn()
            try:
                await _after(previous)
            finally:
                _end_turn(mine)
        await self._export.flush()

    async def trim(self, offset, length, fua):
        if not self.orders_requests:
            return await self._export.trim(offset, length, fua, admitted=self._admitted)
        await self._in_turn(self._export.apply_trim, offset, length, self._admitted)

    async def write_zeroes(self, offset, length, fua, may_trim):
        if not self.orders_requests:
            return await self._export.write_zeroes(offset, length, fua, may_trim,
                                                   admitted=self._admitted)
        await self._in_turn(self._export.apply_write_zeroes, offset, length, self._admitted)

    async def _in_turn(self, apply, *args):
        """Apply in this session's order, then wait for the commit."""
        previous, mine = self._order.take_turn()
        try:
            await _after(previous)
            applied = await apply(*args)
        finally:
            _end_turn(mine)
        await self._export.settle(applied, True)
