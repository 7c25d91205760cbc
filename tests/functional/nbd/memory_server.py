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

"""Serve MemoryExports over NBD, for tests and benchmarks.

    python -m tests.functional.nbd.memory_server --export NAME:SIZE \
        [--unix PATH] [--tcp HOST:PORT]

Prints one line "READY <tcp port or ->" once listening; stops on SIGTERM.
"""

import argparse
import asyncio
import sys

from ovs_daemon.nbd import export as export_mod
from tests.functional.nbd import serving


def parse_export(text):
    name, _, size = text.rpartition(":")
    return export_mod.MemoryExport(name, int(size))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--export", type=parse_export, action="append",
                        required=True)
    serving.add_listen_arguments(parser)
    args = parser.parse_args(argv)
    asyncio.run(serving.serve(serving.FixedExports(args.export), args.unix,
                              args.tcp))


if __name__ == "__main__":
    sys.exit(main())
