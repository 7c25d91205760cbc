"""Serve MemoryExports over NBD, for tests and benchmarks.

    python -m tests.functional.nbd.memory_server --export NAME:SIZE \
        [--unix PATH] [--tcp HOST:PORT]

Prints one line "READY <tcp port or ->" once listening; stops on SIGTERM.
"""

import argparse
import asyncio
import signal
import sys

from ovs_daemon.nbd import errors
from ovs_daemon.nbd import export as export_mod
from ovs_daemon.nbd import server as server_mod


class MemoryResolver:
    """Serves a fixed set of MemoryExports; refuses other names."""

    def __init__(self, exports):
        self.exports = {e.name: e for e in exports}

    async def __call__(self, name):
        try:
            return self.exports[name]
        except KeyError:
            raise errors.ExportRefused("no export named %r" % name) from None

    def list_exports(self):
        return sorted(self.exports)


def parse_export(text):
    name, _, size = text.rpartition(":")
    return export_mod.MemoryExport(name, int(size))


async def serve(args):
    server = server_mod.NBDServer(MemoryResolver(args.export))
    port = "-"
    if args.unix:
        await server.start_unix(args.unix)
    if args.tcp:
        host, _, wanted = args.tcp.rpartition(":")
        port = (await server.start_tcp(host, int(wanted)))[1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print("READY %s" % port, flush=True)
    await stop.wait()
    await server.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--export", type=parse_export, action="append",
                        required=True)
    parser.add_argument("--unix")
    parser.add_argument("--tcp")
    asyncio.run(serve(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
