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

"""Hosts writing the same blocks of one volume, each through its own edge,
every request recorded in one :class:`~bench.io_history.History`, whose
check finds a read of a write overwritten before the read was sent, and a
read-back that does not hold the last acknowledged write."""

import asyncio
import random

from bench import verifying_client
from ovs_daemon.nbd import client as nbd_client


class Host:
    """One host's NBD connection to the volume, through its edge; its
    writes carry ``writer`` in their payload."""

    def __init__(self, writer, socket_path, volume, blocks):
        self.writer = writer
        self.socket_path = socket_path
        self.volume = volume
        self.blocks = blocks
        self.history = None
        self.version = 0
        self.nbd = None

    async def connect(self, history):
        self.history = history
        self.nbd = await nbd_client.NBDClient.connect_unix(self.socket_path, self.volume)

    async def close(self):
        await self.nbd.close()

    async def write(self, block):
        self.version += 1
        await verifying_client.recorded_write(self.nbd, self.history, self.writer, block,
                                              self.version)

    async def read(self, block, final=False):
        """``(writer, version)`` of the write read; None for zeros, a
        corrupt block or a failed read (all recorded)."""
        read = await verifying_client.recorded_read(self.nbd, self.history, self.writer,
                                                    block, final)
        return read and read.value

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
                block = rng.randrange(self.blocks)
                if rng.random() < 0.7:
                    await self.write(block)
                else:
                    await self.read(block)
        await asyncio.gather(*(worker() for _ in range(depth)))

    async def read_back(self):
        """Read every block once, nothing else in flight."""
        return [await self.read(block, final=True) for block in range(self.blocks)]
