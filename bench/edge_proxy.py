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

"""Benchmark: the edge's own cost per request, against a C proxy.

    .venv/bin/python -m bench.edge_proxy [--rounds 2] [--runtime 4]

Two proxies in front of the same kind of server, fio's nbd engine
alternating between them:
  - the edge's volume proxy (its NBD session on a unix socket, the journal,
    its NBD client), in a process of its own set up as the edge's is, in
    front of ``nbdkit memory``;
  - ``nbdkit nbd`` in front of another ``nbdkit memory``.
No router, no ZooKeeper: the upstream answers at C speed, so what differs
is the proxies. Besides fio's figures each row gives the proxy process's
CPU time per request (its utime + stime over the fio run divided by the
requests fio completed), which load from elsewhere changes far less than
IOPS or latency. Writes the table to results/edge_proxy.md.
"""

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time

from bench import fio as fio_mod
from bench import results
from ovs_daemon.devcluster import sockets

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOLUME = 'bench'
EDGE = 'edge volume proxy -> nbdkit memory'
CHAIN = 'nbdkit nbd -> nbdkit memory'
WORKLOADS = [
    ('4 KiB randrw QD16', ['--rw=randrw', '--bs=4k', '--iodepth=16']),
    ('4 KiB randrw QD1', ['--rw=randrw', '--bs=4k', '--iodepth=1']),
    ('1 MiB seq write QD4, FLUSH every 64 MiB',
     ['--rw=write', '--bs=1M', '--iodepth=4', '--fsync=64']),
]


def serve(args):
    """Subprocess mode: a volume proxy in front of 127.0.0.1:port on a
    unix socket, until SIGTERM."""
    from oslo_config import cfg
    import uvloop

    from ovs_cinder.edge import locator as locator_mod
    from ovs_cinder.edge import opts
    from ovs_cinder.edge import process_memory
    from ovs_cinder.edge import volume_proxy
    from ovs_daemon.nbd import client as nbd_client
    from ovs_daemon.nbd import server as server_mod

    class OneServer:
        """The locator of a volume that one NBD server serves."""
        volume = VOLUME
        attachment_token = None

        async def find(self, lost=None, halted=(), follow_only=False):
            nbd = await nbd_client.NBDClient.connect_tcp('127.0.0.1', args.port, '')
            return locator_mod.Upstream(
                nbd, {'id': 'nbdkit', 'nbd': '127.0.0.1:%d' % args.port}, 1, None)

    async def main():
        proxy = volume_proxy.VolumeProxy(OneServer(), conf.edge)
        await proxy.connect()

        async def resolve(name):
            return proxy
        server = server_mod.NBDServer(resolve)
        await server.start_unix(args.unix)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await server.stop()
        await proxy.detach()

    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    # As ovs-edge sets itself up (ovs_cinder/cmd/edge.py).
    process_memory.retain_freed_payloads(conf.edge.replay_buffer_mib)
    process_memory.freeze_start_up_objects()
    uvloop.run(main())


def cpu_seconds(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def measure(uri, pid, options, args, workdir):
    """One fio run: its figures and the proxy's CPU time per request."""
    before = cpu_seconds(pid)
    job = fio_mod.run_job(uri, args.size_mib, ['--time_based', '--runtime=%d' % args.runtime]
                          + options, workdir)
    used = cpu_seconds(pid) - before
    requests = job['read']['total_ios'] + job['write']['total_ios']
    percentiles = job['read'].get('clat_ns', {}).get('percentile', {})
    return {'iops': job['read']['iops'] + job['write']['iops'], 'mib_s': fio_mod.mib_s(job),
            'p50': percentiles.get('50.000000', 0) / 1000,
            'p99': percentiles.get('99.000000', 0) / 1000,
            'cpu_us': used / max(requests, 1) * 1e6}


def wait_for_socket(path, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError('the edge proxy did not listen on %s' % path)
        time.sleep(0.05)


@contextlib.contextmanager
def proxies(args, workdir):
    """Both proxies serving; yields ``{name: (uri, proxy pid)}``."""
    upstream, chained, chain = sockets.free_ports(3)
    unix = os.path.join(workdir, 'edge.sock')
    edge = [sys.executable, '-m', 'bench.edge_proxy', '--serve', '--port', str(upstream),
            '--unix', unix]
    with contextlib.ExitStack() as stack:
        for port in (upstream, chained):
            fio_mod.wait_for_port(port, stack.enter_context(
                fio_mod.nbdkit_memory(port, args.size_mib)))
        chain_proc = stack.enter_context(fio_mod.nbdkit(
            chain, 'nbd', 'hostname=127.0.0.1', 'port=%d' % chained))
        fio_mod.wait_for_port(chain, chain_proc)
        edge_proc = stack.enter_context(fio_mod.running(edge, cwd=REPO))
        wait_for_socket(unix, edge_proc)
        yield {EDGE: ('nbd+unix:///%s?socket=%s' % (VOLUME, unix), edge_proc.pid),
               CHAIN: ('nbd://127.0.0.1:%d/' % chain, chain_proc.pid)}


def report(found, args):
    lines = ['fio nbd engine, %d rounds of %d s, medians, targets alternating '
             '(`python -m bench.edge_proxy --rounds %d --runtime %d`)'
             % (args.rounds, args.runtime, args.rounds, args.runtime), '']
    rows = []
    for workload, _ in WORKLOADS:
        for target in (CHAIN, EDGE):
            runs = found[workload, target]
            latency = ('%.0f / %.0f us' % (fio_mod.median(runs, 'p50'),
                                           fio_mod.median(runs, 'p99'))
                       if fio_mod.median(runs, 'p50') else '-')
            rows.append((workload, target, '%.0f IOPS, %.0f MiB/s' % (
                fio_mod.median(runs, 'iops'), fio_mod.median(runs, 'mib_s')),
                latency, '%.1f us' % fio_mod.median(runs, 'cpu_us')))
    return '\n'.join(lines + results.table(
        ('row', 'proxy', 'figure', 'read p50 / p99', 'proxy CPU per request'), rows))


def bench(args):
    workdir = tempfile.mkdtemp(prefix='edge-proxy-bench-')
    found = {}
    try:
        with proxies(args, workdir) as targets:
            for _ in range(args.rounds):
                for workload, options in WORKLOADS:
                    for target, (uri, pid) in targets.items():
                        found.setdefault((workload, target), []).append(
                            measure(uri, pid, options, args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results.publish(report(found, args), args.results)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    fio_mod.add_arguments(parser, size_mib=256)
    parser.add_argument('--results', default=os.path.join(REPO, 'results', 'edge_proxy.md'))
    fio_mod.serve_or_bench(parser, serve, bench)


if __name__ == '__main__':
    main()
