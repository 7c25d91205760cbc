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

"""Benchmark: ovs_daemon.nbd server (MemoryExport) against `nbdkit memory`.

Runs fio's nbd engine, in the same run, against:
  - our server over TCP and over a unix socket (in a subprocess),
  - nbdkit's memory plugin over TCP,
for 4 KiB random read/write at queue depth 16 and 1 MiB sequential write,
and prints a table. Not a test: numbers depend on the machine. Targets
are measured in alternation for several rounds and the median is shown,
so load from other processes hits all of them alike.

    .venv/bin/python -m bench.nbd_server [--runtime 5] [--rounds 3]
"""

import argparse
import asyncio
import os
import shutil
import signal
import sys
import tempfile

from bench import fio as fio_mod
from ovs_daemon.devcluster import sockets

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPORT = "bench"
WORKLOADS = fio_mod.WORKLOADS


def serve(args):
    """Subprocess mode: serve one MemoryExport until SIGTERM."""
    from ovs_daemon.nbd import export
    from ovs_daemon.nbd import server

    async def main():
        memory = export.MemoryExport(EXPORT, args.size_mib * 1024 * 1024)

        async def resolve(name):
            return memory
        nbd = server.NBDServer(resolve)
        await nbd.start_tcp("127.0.0.1", args.port)
        await nbd.start_unix(args.unix)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM,
                                                      stop.set)
        await stop.wait()
        await nbd.stop()
    asyncio.run(main())


def bench(args):
    workdir = tempfile.mkdtemp(prefix="nbd-bench-")
    ours_port, nbdkit_port = sockets.free_ports(2)
    unix = os.path.join(workdir, "ovs.sock")
    targets = [
        ("ovs nbd tcp", "nbd://127.0.0.1:%d/%s" % (ours_port, EXPORT)),
        ("ovs nbd unix", "nbd+unix:///%s?socket=%s" % (EXPORT, unix)),
        ("nbdkit memory tcp", "nbd://127.0.0.1:%d/" % nbdkit_port),
    ]
    ours = [sys.executable, "-m", "bench.nbd_server", "--serve",
            "--port", str(ours_port), "--unix", unix,
            "--size-mib", str(args.size_mib)]
    try:
        with fio_mod.running(ours, cwd=REPO) as ours_proc, \
                fio_mod.nbdkit_memory(nbdkit_port, args.size_mib) as nbdkit_proc:
            fio_mod.wait_for_port(ours_port, ours_proc)
            fio_mod.wait_for_port(nbdkit_port, nbdkit_proc)
            results = fio_mod.alternate(targets, args.rounds, args.runtime,
                                        args.size_mib, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(results, [t for t, _ in targets])


def print_table(results, targets):
    print("%-18s %-18s %10s %10s %10s  %s" % (
        "workload", "target", "IOPS", "MiB/s", "vs nbdkit", "IOPS by round"))
    for workload, _ in WORKLOADS:
        baseline = fio_mod.median(results[workload, "nbdkit memory tcp"],
                                  "iops")
        for target in targets:
            rounds = results[workload, target]
            iops = fio_mod.median(rounds, "iops")
            print("%-18s %-18s %10.0f %10.1f %9.2fx  %s" % (
                workload, target, iops, fio_mod.median(rounds, "mib_s"),
                iops / baseline,
                " ".join("%.0f" % r["iops"] for r in rounds)))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runtime", type=int, default=5,
                        help="seconds per fio run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=1024)
    fio_mod.serve_or_bench(parser, serve, bench)


if __name__ == "__main__":
    main()
