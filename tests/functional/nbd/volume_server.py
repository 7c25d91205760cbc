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

"""Serve engine volumes on a local backend over NBD, for the tests.

    python -m tests.functional.nbd.volume_server --backend DIR \
        --volume NAME:SIZE [--volume ...] [--unix PATH] [--tcp HOST:PORT]

Creates the volumes that do not exist, opens the others with a new owner
key (a higher epoch than any before, as a router taking them over does),
prints "READY <tcp port or ->" once serving; stops on SIGTERM.
"""

import argparse
import asyncio

from ovs_daemon.backends import base
from ovs_daemon.backends import local
from ovs_daemon.engine import store as store_mod
from ovs_daemon.router import volume_export
from tests.functional.nbd import serving


def open_volume(store, spec):
    name, size = spec.split(':')
    if store.exists(name):
        epoch = store.backend.current_epoch(name) + 1
        return store.open(name, base.OwnerKey.generate(epoch))
    return store.create(name, int(size), base.OwnerKey.generate(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--backend', required=True)
    parser.add_argument('--volume', action='append', required=True)
    serving.add_listen_arguments(parser)
    args = parser.parse_args()
    store = store_mod.VolumeStore(local.LocalBackend(args.backend))
    exports = [volume_export.VolumeExport(open_volume(store, spec))
               for spec in args.volume]
    asyncio.run(serving.serve(serving.FixedExports(exports), args.unix,
                              args.tcp))


if __name__ == '__main__':
    main()
