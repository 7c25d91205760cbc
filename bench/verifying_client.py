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

"""A verifying NBD client: several connections to one export, several
requests in flight on each, writes, reads and FLUSHes (and FUA writes) in a
seeded random mix, FLUSH and FUA only where the export offers them, every
request recorded in an :class:`~bench.io_history.History`.

Built on the project's asyncio NBD client and nothing else of the project:
it talks to the edge's socket as QEMU would. Its writes of one block never
overlap each other (a guest's page cache does not either), so each client's
versions of a block are in write order; two clients (two hosts on a
multiattach volume) do write the same blocks at the same time.

It runs on an event loop of its own in a background thread, so the caller
can inject faults meanwhile.
"""

import asyncio
import random
import threading

from bench import io_history
from ovs_daemon.nbd import client as nbd_client
from ovs_daemon.nbd import protocol

BLOCK = io_history.BLOCK
# A request that takes this long is hung, not paused: the campaign fails.
REQUEST_LIMIT = 180.0
# After an error a worker waits this long: a volume failing every request
# at once must not flood the history.
ERROR_BACKOFF = 0.1


class ClientError(Exception):
    """The client could not connect or its IO hung."""


class VerifyingClient:

    def __init__(self, client_id, socket_path, export, history, blocks, seed,
                 connections=2, depth=4, read_share=0.4, flush_share=0.03, fua_share=0.02):
        self.client_id = client_id
        self.socket_path = socket_path
        self.export = export
        self.history = history
        self.blocks = blocks
        self.connections = connections
        self.depth = depth
        self.read_share = read_share
        self.flush_share = flush_share
        self.fua_share = fua_share
        self._rng = random.Random(seed)
        self._versions = iter(range(1, 1 << 62))
        self._writing = set()
        self._stop = None
        self._loop = None
        self._thread = None
        self._ready = threading.Event()
        self._clients = []
        self._extra = set()
        self.crash = None
        self.completed = 0

    # -- running in the background ------------------------------------------------

    def start(self, timeout=30.0):
        self._thread = threading.Thread(target=self._main, daemon=True,
                                        name='verifier-%d' % self.client_id)
        self._thread.start()
        if not self._ready.wait(timeout) or self.crash:
            raise ClientError('client %d did not start: %s' % (self.client_id, self.crash))
        return self

    def stop(self, timeout=REQUEST_LIMIT + 30):
        """Let every request in flight end, then close the connections."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise ClientError('client %d did not stop within %.0f s' % (self.client_id, timeout))
        if self.crash:
            raise ClientError('client %d crashed: %s' % (self.client_id, self.crash))

    @property
    def alive(self):
        return self._thread is not None and self._thread.is_alive()

    def _main(self):
        try:
            asyncio.run(self._run())
        except BaseException as exc:   # reported by start() or stop()
            self.crash = '%s: %s' % (type(exc).__name__, exc)
            self._ready.set()

    async def _run(self):
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._clients = [await self.connect() for _ in range(self.connections)]
        self._honour(self._clients[0].transmission_flags)
        self._ready.set()
        try:
            await asyncio.gather(*(self._worker(nbd) for nbd in self._clients
                                   for _ in range(self.depth)))
            await asyncio.gather(*list(self._extra))
        finally:
            for nbd in self._clients:
                nbd.abort()

    async def connect(self):
        return await nbd_client.NBDClient.connect_unix(self.socket_path, self.export,
                                                       timeout=30)

    # -- the workload -----------------------------------------------------------

    async def _worker(self, nbd):
        while not self._stop.is_set():
            draw = self._rng.random()
            if draw < self.flush_share:
                await self._flush(nbd)
            elif draw < self.flush_share + self.read_share:
                await self._read(nbd, self._rng.randrange(self.blocks))
            else:
                block = self._free_block()
                if block is None:
                    await asyncio.sleep(0)
                    continue
                self._writing.add(block)
                try:
                    await self._write(nbd, block, self._rng.random() < self.fua_share)
                finally:
                    self._writing.discard(block)

    def _free_block(self):
        for _ in range(8):
            block = self._rng.randrange(self.blocks)
            if block not in self._writing:
                return block
        return None

    async def _write(self, nbd, block, fua):
        if await recorded_write(nbd, self.history, self.client_id, block,
                                next(self._versions), fua):
            self.completed += 1
        else:
            await asyncio.sleep(ERROR_BACKOFF)

    async def _read(self, nbd, block):
        if await recorded_read(nbd, self.history, self.client_id, block) is not None:
            self.completed += 1
        else:
            await asyncio.sleep(ERROR_BACKOFF)

    async def _flush(self, nbd):
        sent = self.history.now()
        try:
            await _bounded(nbd.submit(protocol.CMD_FLUSH, 0, 0))
        except Exception as exc:
            self.history.failed(self.client_id, 'flush', self.history.now(), _describe(exc))
            await asyncio.sleep(ERROR_BACKOFF)
            return
        self.history.flushed(self.client_id, sent, self.history.now())
        self.completed += 1

    # -- reading everything back ----------------------------------------------

    def _honour(self, flags):
        """Send no FLUSH or FUA where the export does not offer them (an
        export without a write cache, e.g. a write-through volume)."""
        if not flags & protocol.FLAG_SEND_FLUSH:
            self.flush_share = 0.0
        if not flags & protocol.FLAG_SEND_FUA:
            self.fua_share = 0.0

    @property
    def flushes(self):
        """Whether the export offers FLUSH."""
        return bool(self._clients[0].transmission_flags & protocol.FLAG_SEND_FLUSH)

    def send_flush(self):
        """Send a FLUSH now, besides the workload's, so one is surely in
        flight (e.g. while the owner is stopped); its outcome is recorded."""
        def send():
            task = self._loop.create_task(self._flush(self._clients[0]))
            self._extra.add(task)
            task.add_done_callback(self._extra.discard)
        self._loop.call_soon_threadsafe(send)


async def recorded_write(nbd, history, writer, block, version, fua=False):
    """Write ``block`` with the payload of ``(writer, version)``, recorded in
    ``history``; True if it was acknowledged."""
    data = io_history.payload(block, writer, version)
    write = history.write_sent(block, writer, version, history.now())
    try:
        await _bounded(nbd.submit(protocol.CMD_WRITE, block * BLOCK, BLOCK,
                                  protocol.CMD_FLAG_FUA if fua else 0, data))
    except Exception as exc:
        history.write_ended(write, history.now(), ok=False)
        history.failed(writer, 'write block %d' % block, write.ended, _describe(exc))
        return False
    history.write_ended(write, history.now(), ok=True)
    return True


async def recorded_read(nbd, history, reader, block, final=False):
    """Read ``block``, recorded in ``history`` (``final``: as part of a
    read-back with nothing in flight); the read's record, None if it failed."""
    read = history.read_sent(block, reader, history.now(), final)
    try:
        data = await _bounded(nbd.submit(protocol.CMD_READ, block * BLOCK, BLOCK))
    except Exception as exc:
        history.failed(reader, '%s block %d' % ('read-back of' if final else 'read', block),
                       history.now(), _describe(exc))
        return None
    history.read_ended(read, history.now(), data)
    return read


def read_back(socket_path, export, history, client_id, blocks, depth=16):
    """Read every block once (nothing else in flight), recorded as final reads."""
    async def run():
        nbd = await nbd_client.NBDClient.connect_unix(socket_path, export, timeout=60)
        try:
            pending = set()
            for block in range(blocks):
                if len(pending) >= depth:
                    _, pending = await asyncio.wait(pending,
                                                    return_when=asyncio.FIRST_COMPLETED)
                pending.add(asyncio.ensure_future(
                    recorded_read(nbd, history, client_id, block, final=True)))
            await asyncio.gather(*pending)
        finally:
            nbd.abort()
    asyncio.run(run())


async def _bounded(future):
    try:
        return await asyncio.wait_for(future, REQUEST_LIMIT)
    except TimeoutError:
        raise ClientError('no reply within %.0f s' % REQUEST_LIMIT) from None


def _describe(exc):
    return '%s: %s' % (type(exc).__name__, exc)
