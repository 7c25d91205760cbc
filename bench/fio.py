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

"""fio's nbd engine and nbdkit, as the benchmarks run them (shared by
bench/nbd_server.py, bench/router.py and bench/edge.py)."""

import argparse
import contextlib
import json
import signal
import statistics
import subprocess
import time

from bench import process_use
from ovs_daemon.devcluster import sockets

WORKLOADS = [
    ("4k randrw qd16", ["--rw=randrw", "--bs=4k", "--iodepth=16"]),
    ("1M seq write qd4", ["--rw=write", "--bs=1M", "--iodepth=4"]),
]


def wait_for_port(port, proc, timeout=10):
    deadline = time.monotonic() + timeout
    while not sockets.can_connect("127.0.0.1", port):
        if proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        if time.monotonic() > deadline:
            raise RuntimeError("server did not listen on %d" % port)
        time.sleep(0.05)


@contextlib.contextmanager
def running(args, cwd=None):
    proc = subprocess.Popen(args, cwd=cwd)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_job(uri, size_mib, options, workdir, name="bench"):
    """Run one fio job of the nbd engine over the first ``size_mib`` MiB of
    ``uri``; returns the job's part of fio's JSON report."""
    args = ["fio", "--name=%s" % name, "--ioengine=nbd", "--uri=%s" % uri,
            "--size=%dM" % size_mib, "--output-format=json"] + options
    result = subprocess.run(args, capture_output=True, text=True, cwd=workdir)
    if result.returncode != 0:
        raise RuntimeError('fio failed (%d) on %s:\n%s%s' % (
            result.returncode, uri, result.stdout[-2000:], result.stderr[-2000:]))
    # The nbd engine prints a line of its own before the JSON.
    report = result.stdout[result.stdout.index("{"):]
    return json.loads(report)["jobs"][0]


def mib_s(job):
    """Read and written MiB/s of a job's report."""
    return (job["read"]["bw"] + job["write"]["bw"]) / 1024


def fio(uri, options, runtime, size_mib, workdir, servers=()):
    """One timed fio run; with the PIDs of the ``servers`` behind ``uri``,
    the result also says what they used (:func:`server_use`)."""
    with process_use.measured(servers) as use:
        job = run_job(uri, size_mib, ["--time_based", "--runtime=%d" % runtime,
                                      "--ramp_time=1"] + options, workdir)
    found = {"iops": job["read"]["iops"] + job["write"]["iops"], "mib_s": mib_s(job)}
    if servers:
        found.update(server_use(job, use))
    percentiles = job["read"].get("clat_ns", {}).get("percentile", {})
    for name, key in (("read_p50_us", "50.000000"), ("read_p99_us", "99.000000")):
        if key in percentiles:
            found[name] = percentiles[key] / 1000
    return found


def server_use(job, use):
    """What the servers used per unit of the job's work, as rates over the
    run (fio's ramp-up included, at the same pace): ``cores`` (CPU seconds
    per second), ``cpu_us_per_io`` and, for a job that wrote,
    ``written_per_byte`` (bytes the servers sent to the disk per byte the
    job wrote)."""
    iops = job["read"]["iops"] + job["write"]["iops"]
    found = {"cores": use.cores,
             "cpu_us_per_io": use.cores / iops * 1e6 if iops else 0.0}
    written_per_second = job["write"]["bw"] * 1024
    if written_per_second:
        found["written_per_byte"] = use.written_per_second / written_per_second
    return found


def fill(uri, size_mib, workdir):
    """Write the whole target once, 1 MiB at a time, with a FLUSH at the end."""
    run_job(uri, size_mib, ["--rw=write", "--bs=1M", "--iodepth=4", "--end_fsync=1"],
            workdir, name="fill")


def nbdkit(port, plugin, *params):
    """``nbdkit PLUGIN PARAMS`` on 127.0.0.1:port, as a context manager."""
    return running(["nbdkit", "-f", "-i", "127.0.0.1", "-p", str(port), plugin]
                   + list(params))


def nbdkit_memory(port, size_mib):
    """``nbdkit memory`` on 127.0.0.1:port, as a context manager (the baseline)."""
    return nbdkit(port, "memory", "%dM" % size_mib)


def add_arguments(parser, size_mib):
    """The options of a benchmark that alternates fio over targets."""
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runtime", type=int, default=5, help="seconds per fio run")
    parser.add_argument("--size-mib", type=int, default=size_mib, help="fio target size")


def serve_or_bench(parser, serve, bench):
    """The main of a benchmark that runs its own server in a subprocess of
    itself (``--serve``, its ``--port`` and ``--unix`` socket, hidden):
    ``serve(args)`` there, ``bench(args)`` otherwise."""
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--unix", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args)
    else:
        bench(args)


def median(rounds, key):
    return statistics.median(r[key] for r in rounds)


def alternate(targets, rounds, runtime, size_mib, workdir, workloads=WORKLOADS,
              servers=None):
    """Run every ``(workload, fio options)`` against every ``(name, uri)``
    target in turn, for ``rounds`` rounds, so load from elsewhere hits them
    alike; returns ``{(workload, name): [result per round]}``. A result has
    ``iops`` and ``mib_s``, and ``read_p50_us``/``read_p99_us`` (completion
    latency) when the workload reads; for a target ``servers`` names the
    PIDs of, what they used (:func:`server_use`)."""
    servers = servers or {}
    results = {}
    for _ in range(rounds):
        for workload, options in workloads:
            for target, uri in targets:
                results.setdefault((workload, target), []).append(
                    fio(uri, options, runtime, size_mib, workdir, servers.get(target, ())))
    return results
