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

"""Benchmark: what a router and an edge hold under a failing backend and
under a flood of TRIMs.

    .venv/bin/python -m bench.memory [--limit-mib 1] [--writes-mib 200]
                                     [--trims 200000]

In one process, a router's volume export (real engine, local backend) with
``max_unflushed_mib`` = --limit-mib: 1 MiB writes while every upload fails,
then TRIMs of every other 4 KiB block with a working backend, without a
flush from the client; the edge's journal with ``replay_buffer_mib`` =
--limit-mib takes the same TRIMs. Reports the unflushed bytes the volume
holds (``unflushed_bytes``, and tracemalloc's count of what the process
allocated) and when the journal asks for a flush. Prints a table and writes
it to results/memory.md.
"""

import argparse
import asyncio
import os
import shutil
import tempfile
import tracemalloc

from bench import results
from ovs_cinder.edge import journal as journal_mod
from ovs_daemon.backends import base
from ovs_daemon.engine import volume as volume_mod
from ovs_daemon.nbd import errors as nbd_errors
from ovs_daemon.nbd import protocol
from ovs_daemon.router import volume_export
from tests.unit.faulty_backend import FaultyBackend

MiB = 1 << 20


async def failing_backend(workdir, limit, writes_mib):
    backend = FaultyBackend(os.path.join(workdir, 'failing'))
    volume = volume_mod.Volume.create(backend, 'v', (writes_mib + 1) * MiB,
                                      base.OwnerKey.generate(1))
    export = volume_export.VolumeExport(volume, max_unflushed_bytes=limit)
    backend.failures_left = 10 ** 9
    failed = 0
    tracemalloc.start()
    for n in range(writes_mib):
        try:
            await export.write(n * MiB, os.urandom(MiB), fua=False)
        except nbd_errors.RequestError:
            failed += 1
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return volume.unflushed_bytes, held, failed


async def trim_flood(workdir, limit, trims):
    backend = FaultyBackend(os.path.join(workdir, 'trims'))
    volume = volume_mod.Volume.create(backend, 't', 2 * trims * 4096,
                                      base.OwnerKey.generate(1))
    export = volume_export.VolumeExport(volume, max_unflushed_bytes=limit)
    tracemalloc.start()
    for n in range(trims):
        await export.trim(2 * n * 4096, 4096, fua=False)
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return volume.unflushed_bytes, held


def journal_flood(limit, trims):
    journal = journal_mod.WriteJournal(limit)
    for n in range(trims):
        journal.append(protocol.CMD_TRIM, 2 * n * 4096, 4096, 0, None)
        if journal.full:
            return n + 1
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--limit-mib', type=int, default=1)
    parser.add_argument('--writes-mib', type=int, default=200)
    parser.add_argument('--trims', type=int, default=200000)
    parser.add_argument('--results', default='results/memory.md')
    args = parser.parse_args()
    limit = args.limit_mib * MiB
    workdir = tempfile.mkdtemp(prefix='ovs-memory-bench-')
    try:
        unflushed, held, failed = asyncio.run(
            failing_backend(workdir, limit, args.writes_mib))
        trim_unflushed, trim_held = asyncio.run(trim_flood(workdir, limit, args.trims))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    full_after = journal_flood(limit, args.trims)
    lines = ['| case (limit %d MiB) | unflushed_bytes | allocated, still held | note |'
             % args.limit_mib, '|---|---|---|---|',
             '| router: %d x 1 MiB writes, every upload failing | %.1f MiB | %.1f MiB | '
             '%d writes failed back, unapplied |' % (args.writes_mib, unflushed / MiB,
                                                   held / MiB, failed),
             '| router: %d TRIMs of every other block, no client flush | %.1f MiB | '
             '%.1f MiB | |' % (args.trims, trim_unflushed / MiB, trim_held / MiB),
             '| edge journal: %d TRIMs | | | full (the edge flushes) after %s |'
             % (args.trims, full_after if full_after else 'never')]
    results.publish('\n'.join(lines), args.results)


if __name__ == '__main__':
    main()
