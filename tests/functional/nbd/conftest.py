import asyncio
import os
import subprocess
import sys
import threading

import pytest

from ovs_daemon.nbd import export as export_mod
from ovs_daemon.nbd import server as server_mod
from tests.functional.nbd import memory_server

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
EXPORT_SIZE = 16 * 1024 * 1024


class ServerProcess:
    """memory_server.py in a subprocess, stopped even if a test fails."""

    def __init__(self, tmp_path, exports):
        self.socket = str(tmp_path / "nbd.sock")
        args = [sys.executable, "-m", "tests.functional.nbd.memory_server",
                "--unix", self.socket, "--tcp", "127.0.0.1:0"]
        for name, size in exports:
            args += ["--export", "%s:%d" % (name, size)]
        self.killed = False
        self.log_path = tmp_path / "server.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("READY"):
            self.stop()
            raise RuntimeError("server did not start: %r\n%s"
                               % (line, self.read_log()))
        self.port = int(line.split()[1])

    def unix_uri(self, name):
        return "nbd+unix:///%s?socket=%s" % (name, self.socket)

    def tcp_uri(self, name):
        return "nbd://127.0.0.1:%d/%s" % (self.port, name)

    def read_log(self):
        return self.log_path.read_text()

    def kill(self):
        self.killed = True
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()


@pytest.fixture
def nbd_process(tmp_path):
    server = ServerProcess(tmp_path, [("vol1", EXPORT_SIZE),
                                      ("vol2", EXPORT_SIZE)])
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
            memory_server.MemoryResolver(exports))
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
