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

"""A guest for failover tests, benchmarks and the demo: a verifying writer.

It writes 4 KiB blocks over NBD, one request at a time, each block carrying
its block number and a sequence number, alternating with reads of blocks it
wrote before (each read is checked against the last acknowledged write of
that block: invariant I2), and flushes every ``flush_every`` writes. It
records every IO error (a failover must cause none: I4) and the longest gap
between two IO completions (the pause a failover causes). ``verify`` then
reads every block written back and checks it holds its last acknowledged
write (I1).

It runs on an event loop of its own in a background thread, so a test can
kill routers while it runs. With ``reconnect_delay`` it behaves like QEMU's
NBD client with ``reconnect-delay``: a request whose connection drops is
sent again on a new connection, made within that many seconds (a restart
of the edge under it is then a pause, not an error).
"""

import asyncio
import struct
import threading
import time

from ovs_daemon.nbd import client as nbd_client
from ovs_daemon.nbd import errors as nbd_errors

BLOCK = 4096
_HEADER = struct.Struct('>8sQQ')
_MAGIC = b'OVSGUEST'


def block_content(block, seq):
    header = _HEADER.pack(_MAGIC, block, seq)
    filler = bytes([seq % 251 + 1]) * (BLOCK - _HEADER.size)
    return header + filler


def parse_block(data):
    magic, block, seq = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        return None
    return block, seq


class GuestWriter:

    # Gaps between IO completions longer than this are recorded in ``pauses``.
    PAUSE_RECORDED = 0.05

    def __init__(self, connect, blocks=1024, flush_every=64, read_every=2,
                 reconnect_delay=0.0):
        """``connect`` is a coroutine function returning an NBDClient."""
        self._connect = connect
        self.reconnect_delay = reconnect_delay
        self.reconnects = 0
        self.pauses = []           # (monotonic time the IO resumed, gap in seconds)
        self.blocks = blocks
        self.flush_every = flush_every
        self.read_every = read_every
        self.acked = {}            # block -> seq of its last acknowledged write
        self.durable = {}          # the same, as of the last completed flush
        self.attempted = {}        # block -> seq of its last write sent, acknowledged or not
        self.errors = []
        self.stale_reads = []
        self.writes = 0
        self.reads = 0
        self.flushes = 0
        self.longest_gap = 0.0
        self.longest_gap_at = None
        self._stop = threading.Event()
        self._thread = None
        self._last_completion = None
        self._nbd = None

    # -- running in the background ----------------------------------------------

    def start(self):
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout=120):
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError('the guest did not stop within %s s (IO hung)' % timeout)

    def wait_for_writes(self, count, timeout=60):
        deadline = time.monotonic() + timeout
        while self.writes < count:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise TimeoutError('the guest wrote %d of %d blocks' % (self.writes, count))
            time.sleep(0.01)

    def summary(self):
        return {'writes': self.writes, 'reads': self.reads, 'flushes': self.flushes,
                'errors': len(self.errors), 'stale_reads': len(self.stale_reads),
                'reconnects': self.reconnects, 'longest_gap_s': round(self.longest_gap, 4)}

    def longest_pause(self, since, until):
        """The longest gap between IO completions that ended in [since, until)
        (monotonic times), or 0."""
        return max([gap for at, gap in self.pauses if since <= at < until], default=0.0)

    # -- the IO loop --------------------------------------------------------------

    async def _run(self):
        self._nbd = await self._connect()
        try:
            seq = 0
            while not self._stop.is_set():
                seq += 1
                block = seq % self.blocks
                self.attempted[block] = seq
                data = block_content(block, seq)
                if await self._io(lambda nbd: nbd.write(block * BLOCK, data)):
                    self.acked[block] = seq
                    self.writes += 1
                if self.read_every and seq % self.read_every == 0 and self.acked:
                    await self._read_and_check((seq * 7919) % self.blocks)
                if seq % self.flush_every == 0:
                    await self._flush()
            await self._flush()
        finally:
            await self._nbd.close()

    async def _flush(self):
        covered = dict(self.acked)
        if await self._io(lambda nbd: nbd.flush()):
            self.flushes += 1
            self.durable = covered

    async def _read_and_check(self, block):
        expected = self.acked.get(block)
        data = await self._io(lambda nbd: nbd.read(block * BLOCK, BLOCK))
        if data is None:
            return
        self.reads += 1
        if expected is not None and parse_block(data) != (block, expected):
            self.stale_reads.append((block, expected, parse_block(data)))

    async def _io(self, request):
        """``request(nbd)`` on the current connection; True, or what it
        returned, or None after an error (recorded)."""
        while True:
            try:
                result = await request(self._nbd)
                break
            except nbd_errors.ConnectionLost as exc:
                if not self.reconnect_delay or not await self._reconnect():
                    self.errors.append('%s at %.3f' % (exc, time.monotonic()))
                    return None
            except nbd_errors.NBDError as exc:
                self.errors.append('%s at %.3f' % (exc, time.monotonic()))
                return None
        now = time.monotonic()
        if self._last_completion is not None:
            gap = now - self._last_completion
            if gap > self.PAUSE_RECORDED:
                self.pauses.append((now, gap))
            if gap > self.longest_gap:
                self.longest_gap = gap
                self.longest_gap_at = now
        self._last_completion = now
        return True if result is None else result

    async def _reconnect(self):
        """A new connection within ``reconnect_delay`` seconds; False if none."""
        deadline = time.monotonic() + self.reconnect_delay
        self._nbd.abort()
        while time.monotonic() < deadline:
            try:
                self._nbd = await self._connect()
                self.reconnects += 1
                return True
            except (TimeoutError, OSError, nbd_errors.NBDError):
                await asyncio.sleep(0.02)
        return False

    # -- checking -------------------------------------------------------------------

    def verify(self, connect=None, durable_only=False):
        """``(blocks checked, [(block, expected seq, found)...])``, read through
        a new connection (``connect``, by default the guest's own). With
        ``durable_only`` only what the last completed flush covered is
        checked, and a block may hold any write sent since (one in flight
        when the host died may have landed): what must survive the loss of
        the guest's host."""
        expected = self.durable if durable_only else self.acked

        def acceptable(block, seq, found):
            if found is None or found[0] != block:
                return False
            if durable_only:
                return seq <= found[1] <= self.attempted[block]
            return found[1] == seq

        async def check():
            nbd = await (connect or self._connect)()
            wrong = []
            try:
                for block, seq in sorted(expected.items()):
                    found = parse_block(await nbd.read(block * BLOCK, BLOCK))
                    if not acceptable(block, seq, found):
                        wrong.append((block, seq, found))
            finally:
                await nbd.close()
            return len(expected), wrong
        return asyncio.run(check())


def unix_connector(path, volume='', timeout=10.0):
    """A ``connect`` for :class:`GuestWriter` over an edge's unix socket."""
    async def connect():
        return await nbd_client.NBDClient.connect_unix(path, volume, timeout=timeout)
    return connect


def tcp_connector(address, volume, timeout=10.0):
    """A ``connect`` over TCP to ``address`` ("host:port")."""
    host, _, port = address.rpartition(':')

    async def connect():
        return await nbd_client.NBDClient.connect_tcp(host, int(port), volume, timeout=timeout)
    return connect
