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

"""Hosts writing the same blocks of one volume, and what they may read.

Every write carries ``(block, writer, version)`` in its first bytes. The
model keeps, per block, when each write was sent and when its
acknowledgement came back (one clock: every writer runs in this process).
A value read is acceptable when it is a write sent before the read
completed that no later write had superseded when the read was sent: no
write of the block was both sent after it was acknowledged and itself
acknowledged before the read was sent. After the IO stops, that is "the
last write acknowledged" of each block, in the order of acknowledgement.
"""

import asyncio
import dataclasses
import random
import struct
import time

from ovs_daemon.nbd import client as nbd_client

BLOCK = 4096
_HEADER = struct.Struct('>8sQ16sQ')
_MAGIC = b'SHARED01'


def content(block, writer, version):
    return _HEADER.pack(_MAGIC, block, writer.encode(), version).ljust(BLOCK, b'\xa5')


def parse(data):
    """``(writer, version)`` of a block's content, None for zeroes."""
    if not any(data):
        return None
    magic, _, writer, version = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        return ('garbage', 0)
    return writer.rstrip(b'\0').decode(), version


@dataclasses.dataclass
class Write:
    writer: str
    version: int
    sent: float
    acked: float = float('inf')


class SharedBlocks:

    def __init__(self, blocks):
        self.blocks = blocks
        self.writes = {block: {} for block in range(blocks)}
        self.reads = []
        self.errors = []

    def acceptable(self, block, found, read_sent, read_done):
        writes = self.writes[block].values()
        if found is None:
            return not any(w.acked < read_sent for w in writes)
        write = self.writes[block].get(found)
        if write is None or write.sent >= read_done:
            return False
        return not any(w.sent > write.acked and w.acked < read_sent for w in writes)

    def stale_reads(self):
        return [(block, found) for block, found, sent, done in self.reads
                if not self.acceptable(block, found, sent, done)]

    def last_acknowledged(self, block):
        writes = [w for w in self.writes[block].values() if w.acked < float('inf')]
        return max(writes, key=lambda w: w.acked) if writes else None


class Host:
    """One host's NBD connection to the volume, through its edge."""

    def __init__(self, name, socket_path, volume, model):
        self.name = name
        self.socket_path = socket_path
        self.volume = volume
        self.model = model
        self.version = 0
        self.nbd = None

    async def connect(self):
        self.nbd = await nbd_client.NBDClient.connect_unix(self.socket_path, self.volume)

    async def close(self):
        await self.nbd.close()

    async def write(self, block):
        self.version += 1
        write = Write(self.name, self.version, time.monotonic())
        self.model.writes[block][(self.name, self.version)] = write
        try:
            await self.nbd.write(block * BLOCK, content(block, self.name, self.version))
        except Exception as exc:
            self.model.errors.append((self.name, 'write', block, repr(exc)))
            return
        write.acked = time.monotonic()

    async def read(self, block):
        sent = time.monotonic()
        try:
            data = await self.nbd.read(block * BLOCK, BLOCK)
        except Exception as exc:
            self.model.errors.append((self.name, 'read', block, repr(exc)))
            return None
        found = parse(bytes(data))
        self.model.reads.append((block, found, sent, time.monotonic()))
        return found

    async def write_all(self, blocks, depth=16):
        queue = list(blocks)

        async def worker():
            while queue:
                await self.write(queue.pop())
        await asyncio.gather(*(worker() for _ in range(depth)))

    async def random_io(self, until, depth=8, seed=None):
        rng = random.Random(seed)

        async def worker():
            while not until.is_set():
                block = rng.randrange(self.model.blocks)
                if rng.random() < 0.7:
                    await self.write(block)
                else:
                    await self.read(block)
        await asyncio.gather(*(worker() for _ in range(depth)))

    async def read_all(self):
        return [await self.read(block) for block in range(self.model.blocks)]
