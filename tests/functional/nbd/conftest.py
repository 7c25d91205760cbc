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

import asyncio
import threading

import pytest

from ovs_daemon.nbd import export as export_mod
from ovs_daemon.nbd import server as server_mod
from tests.functional.nbd import server_process
from tests.functional.nbd import serving

EXPORT_SIZE = 16 * 1024 * 1024


@pytest.fixture
def nbd_process(tmp_path):
    server = server_process.ServerProcess(
        tmp_path, "tests.functional.nbd.memory_server",
        ["--export", "vol1:%d" % EXPORT_SIZE,
         "--export", "vol2:%d" % EXPORT_SIZE])
    try:
        yield server
    finally:
        server.stop()
    # A clean exit on SIGTERM: the server shut its sessions down.
    assert server.killed or server.proc.returncode == 0, server.read_log()


class ThreadedServer:
    """An NBDServer on its own event loop in a background thread."""

    def __init__(self, exports):
        self.exports = {e.name: e for e in exports}
        self.loop = asyncio.new_event_loop()
        self.server = server_mod.NBDServer(
            serving.FixedExports(exports))
        self.thread = threading.Thread(target=self.loop.run_forever,
                                       daemon=True)
        self.thread.start()
        self.call(self.server.start_tcp("127.0.0.1", 0))
        self.port = self.server.bound_port

    def call(self, coro, timeout=30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(
            timeout)

    def session_count(self):
        async def count():
            return len(self.server.sessions())
        return self.call(count())

    def kill(self):
        self.killed = True
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        try:
            self.call(self.server.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


@pytest.fixture
def threaded_server():
    server = ThreadedServer([export_mod.MemoryExport("vol1", 1024 * 1024)])
    try:
        yield server
    finally:
        server.stop()
