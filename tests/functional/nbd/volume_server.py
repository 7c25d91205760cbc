"""Serve engine volumes on a local backend over NBD, for the tests.

python -m tests.functional.nbd.volume_server --backend DIR --unix PATH
    --volume NAME:SIZE [--volume ...]
Creates the volumes that do not exist, opens them with a new owner key (a
higher epoch than any before, like a router taking them over) and prints
"READY <tcp port>" once serving.
"""

import argparse
import asyncio

from ovs_daemon.backends import base
from ovs_daemon.backends import local
from ovs_daemon.engine import store as store_mod
from ovs_daemon.nbd import errors
from ovs_daemon.nbd import server as server_mod
from ovs_daemon.router import volume_export


def open_volumes(store, specs):
    volumes = {}
    for spec in specs:
        name, size = spec.split(':')
        if store.exists(name):
            epoch = store.backend.current_epoch(name) + 1
            volumes[name] = store.open(name, base.OwnerKey.generate(epoch))
        else:
            volumes[name] = store.create(name, int(size),
                                         base.OwnerKey.generate(1))
    return volumes


async def serve(args):
    store = store_mod.VolumeStore(local.LocalBackend(args.backend))
    exports = {name: volume_export.VolumeExport(vol)
               for name, vol in open_volumes(store, args.volume).items()}

    async def resolve(name):
        if name not in exports:
            raise errors.ExportRefused('no volume %s here' % name)
        return exports[name]

    server = server_mod.NBDServer(resolve)
    await server.start_unix(args.unix)
    await server.start_tcp('127.0.0.1', 0)
    print('READY %d' % server.bound_port, flush=True)
    await asyncio.Event().wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--backend', required=True)
    parser.add_argument('--unix', required=True)
    parser.add_argument('--volume', action='append', default=[])
    asyncio.run(serve(parser.parse_args()))


if __name__ == '__main__':
    main()
