"""Benchmark: ovs_daemon.nbd server (MemoryExport) against `nbdkit memory`.

Runs fio's nbd engine, in the same run, against:
  - our server over TCP and over a unix socket (in a subprocess),
  - nbdkit's memory plugin over TCP,
for 4 KiB random read/write at queue depth 16 and 1 MiB sequential write,
and prints a table. Not a test: numbers depend on the machine. Targets
are measured in alternation for several rounds and the median is shown,
so load from other processes hits all of them alike.

    .venv/bin/python bench/nbd_server.py [--runtime 5] [--rounds 3]
"""

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPORT = "bench"

WORKLOADS = [
    ("4k randrw qd16", ["--rw=randrw", "--bs=4k", "--iodepth=16"]),
    ("1M seq write qd4", ["--rw=write", "--bs=1M", "--iodepth=4"]),
]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port, proc, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        time.sleep(0.05)
    raise RuntimeError("server did not listen on %d" % port)


@contextlib.contextmanager
def running(args):
    proc = subprocess.Popen(args, cwd=REPO)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def fio(uri, options, runtime, size_mib, workdir):
    args = ["fio", "--name=bench", "--ioengine=nbd", "--uri=%s" % uri,
            "--size=%dM" % size_mib, "--time_based",
            "--runtime=%d" % runtime, "--ramp_time=1",
            "--output-format=json"] + options
    result = subprocess.run(args, capture_output=True, text=True,
                            check=True, cwd=workdir)
    # The nbd engine prints a line of its own before the JSON.
    report = result.stdout[result.stdout.index("{"):]
    job = json.loads(report)["jobs"][0]
    return {"iops": job["read"]["iops"] + job["write"]["iops"],
            "mib_s": (job["read"]["bw"] + job["write"]["bw"]) / 1024}


def serve(args):
    """Subprocess mode: serve one MemoryExport until SIGTERM."""
    sys.path.insert(0, REPO)
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
    ours_port, nbdkit_port = free_port(), free_port()
    unix = os.path.join(workdir, "ovs.sock")
    targets = [
        ("ovs nbd tcp", "nbd://127.0.0.1:%d/%s" % (ours_port, EXPORT)),
        ("ovs nbd unix", "nbd+unix:///%s?socket=%s" % (EXPORT, unix)),
        ("nbdkit memory tcp", "nbd://127.0.0.1:%d/" % nbdkit_port),
    ]
    ours = [sys.executable, os.path.abspath(__file__), "--serve",
            "--port", str(ours_port), "--unix", unix,
            "--size-mib", str(args.size_mib)]
    nbdkit = ["nbdkit", "-f", "-p", str(nbdkit_port), "memory",
              "%dM" % args.size_mib]
    results = {}
    try:
        with running(ours) as ours_proc, running(nbdkit) as nbdkit_proc:
            wait_for_port(ours_port, ours_proc)
            wait_for_port(nbdkit_port, nbdkit_proc)
            for _ in range(args.rounds):
                for workload, options in WORKLOADS:
                    for target, uri in targets:
                        results.setdefault((workload, target), []).append(
                            fio(uri, options, args.runtime, args.size_mib,
                                workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(results, [t for t, _ in targets])


def print_table(results, targets):
    print("%-18s %-18s %10s %10s %10s  %s" % (
        "workload", "target", "IOPS", "MiB/s", "vs nbdkit", "IOPS by round"))
    for workload, _ in WORKLOADS:
        baseline = _median(results[workload, "nbdkit memory tcp"], "iops")
        for target in targets:
            rounds = results[workload, target]
            iops = _median(rounds, "iops")
            print("%-18s %-18s %10.0f %10.1f %9.2fx  %s" % (
                workload, target, iops, _median(rounds, "mib_s"),
                iops / baseline,
                " ".join("%.0f" % r["iops"] for r in rounds)))


def _median(rounds, key):
    return statistics.median(r[key] for r in rounds)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runtime", type=int, default=5,
                        help="seconds per fio run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--serve", action="store_true",
                        help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--unix", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args)
    else:
        bench(args)


if __name__ == "__main__":
    main()
