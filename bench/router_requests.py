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

"""Benchmark: the Python cost of the router's request path, in process.

    .venv/bin/python -m bench.router_requests [--depth 16] [--requests 32000]
        [--profile]

A router's NBD session with an edge's attachment (token checked on every
request), its volume export (request metrics included) and the volume on
the local backend, in a temporary directory: 64 MiB written, flushed and
read once, so every 4 KiB read is served on the event loop from the page
cache, as in ``bench.datapath --prefill``. The session's socket is
replaced by a transport that keeps what is sent; the 4 KiB random reads,
writes and both (half each) are handed to the session ``--depth`` at a
time, as one receive. Prints the CPU time per request of each mix (the
process's, so other load on the machine matters little; the best of 5
passes); ``--profile`` prints cProfile's top entries for the mix instead.
No network and no fio: what is left is the interpreter's work per request
(and the page cache's ``preadv2``), which is what a change to the request
path should lower.
"""

import asyncio
import os
import shutil
import tempfile
import time

import uvloop

from bench import edge_requests
from ovs_daemon import compiled
from ovs_daemon.backends import base
from ovs_daemon.backends import local
from ovs_daemon.engine import volume as volume_mod
from ovs_daemon.router import metrics as metrics_mod
from ovs_daemon.router import volume_export

BLOCK = 4096
VOLUME_BYTES = 64 << 20
MIXES = {'read': 1.0, 'write': 0.0, 'randrw': 0.5}
PASSES = 5


def written_volume(root):
    """A volume whose every block is written, flushed and its containers
    opened by a read (so reads find them in the page cache)."""
    volume = volume_mod.Volume.create(local.LocalBackend(root), 'bench', VOLUME_BYTES,
                                      base.OwnerKey.generate(1))
    data = os.urandom(1 << 20)
    for offset in range(0, VOLUME_BYTES, len(data)):
        volume.write(offset, data)
    volume.flush()
    for offset in range(0, VOLUME_BYTES, BLOCK):
        volume.read(offset, BLOCK)
    return volume


class RouterPath:
    """An NBD session -> an attachment -> the volume's export."""

    def __init__(self, volume):
        self.volume = volume
        metrics = metrics_mod.RouterMetrics('bench')
        export = volume_export.VolumeExport(volume, max_unflushed_bytes=VOLUME_BYTES,
                                            observe=metrics.observe_io)
        self.sent = edge_requests.KeptTransport()
        self.session = edge_requests.serving_session(
            volume_export.AttachedExport(export, 'token', lambda: True), self.sent)
        self.requests = edge_requests.GuestRequests(VOLUME_BYTES // BLOCK)

    async def run(self, batches):
        for batch in batches:
            edge_requests.receive(self.session, batch)
            # Requests not served at once (a read of a container not
            # opened yet, in a worker thread) end in later loop turns.
            while self.session._requests_in_flight:
                await asyncio.sleep(0)
            self.sent.take()
            if self.volume.unflushed_bytes > VOLUME_BYTES // 2:
                self.volume.flush()


async def measure(args, root):
    path = RouterPath(written_volume(root))
    if args.profile:
        import cProfile
        import pstats
        batches = [path.requests.batch(args.depth, MIXES['randrw'])
                   for _ in range(args.requests // args.depth)]
        profile = cProfile.Profile()
        profile.enable()
        await path.run(batches)
        profile.disable()
        pstats.Stats(profile).sort_stats('tottime').print_stats(25)
        return
    print(compiled.summary(), flush=True)
    for mix, reads in MIXES.items():
        batches = [path.requests.batch(args.depth, reads)
                   for _ in range(args.requests // args.depth)]
        best = None
        for _ in range(PASSES):
            started = time.process_time()
            await path.run(batches)
            used = (time.process_time() - started) / len(batches) / args.depth
            best = used if best is None else min(best, used)
        print('4 KiB %s at depth %d: %.1f us of CPU per request' % (mix, args.depth, best * 1e6))


def main():
    args = edge_requests.request_path_arguments(__doc__, 32000)
    root = tempfile.mkdtemp(prefix='router-requests-')
    try:
        # The router's event loop.
        uvloop.run(measure(args, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == '__main__':
    main()
