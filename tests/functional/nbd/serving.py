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

"""What the test NBD servers share: a fixed set of exports, served on a
unix socket and/or TCP until SIGTERM, announcing "READY <tcp port or ->"."""

import asyncio
import signal

from ovs_daemon.nbd import errors
from ovs_daemon.nbd import server as server_mod


class FixedExports:
    """Serves a fixed set of exports; refuses other names."""

    def __init__(self, exports):
        self.exports = {e.name: e for e in exports}

    async def __call__(self, name):
        try:
            return self.exports[name]
        except KeyError:
            raise errors.ExportRefused("no export named %r" % name) from None

    def list_exports(self):
        return sorted(self.exports)


def add_listen_arguments(parser):
    parser.add_argument("--unix", help="unix socket path to listen on")
    parser.add_argument("--tcp", help="HOST:PORT to listen on (port 0: any)")


async def serve(resolver, unix=None, tcp=None):
    server = server_mod.NBDServer(resolver)
    port = "-"
    if unix:
        await server.start_unix(unix)
    if tcp:
        host, _, wanted = tcp.rpartition(":")
        port = (await server.start_tcp(host, int(wanted)))[1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print("READY %s" % port, flush=True)
    await stop.wait()
    await server.stop()
