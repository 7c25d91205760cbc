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

"""A test NBD server (``python -m MODULE``) in a subprocess.

The module prints "READY <tcp port>" once serving (see ``serving``). The
fixtures that use this stop it even when a test fails.
"""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))


class ServerProcess:

    def __init__(self, tmp_path, module, args):
        self.socket = str(tmp_path / "nbd.sock")
        self.argv = [sys.executable, "-m", module, "--unix", self.socket,
                     "--tcp", "127.0.0.1:0", *args]
        self.log_path = tmp_path / "server.log"
        self.proc = None
        self.start()

    def start(self):
        """Start (again, after kill) and wait until it serves."""
        self.killed = False
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(self.argv, cwd=REPO,
                                         stdout=subprocess.PIPE, stderr=log,
                                         text=True)
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
        self.proc.wait(10)
        self.proc.stdout.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
