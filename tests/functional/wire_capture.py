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

"""A TCP relay that keeps every byte it forwards: what a sniffer on the
network between a client and a router would see."""

import socket
import threading

# A TLS record of type handshake (22), version 3.x: how every TLS
# connection's first bytes look.
TLS_HANDSHAKE_RECORD = b'\x16\x03'


class WireCapture:

    def __init__(self, target_host, target_port):
        self._target = (target_host, target_port)
        self._listener = socket.create_server(('127.0.0.1', 0))
        self.port = self._listener.getsockname()[1]
        self.sent = bytearray()
        self.received = bytearray()
        self._lock = threading.Lock()
        self._threads = []
        self._sockets = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self):
        return '127.0.0.1:%d' % self.port

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._target)
            self._sockets += [client, server]
            for source, sink, record in ((client, server, self.sent),
                                         (server, client, self.received)):
                thread = threading.Thread(target=self._pump, args=(source, sink, record),
                                          daemon=True)
                thread.start()
                self._threads.append(thread)

    def _pump(self, source, sink, record):
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b''
            if not data:
                try:
                    sink.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            with self._lock:
                record += data
            try:
                sink.sendall(data)
            except OSError:
                return

    def close(self):
        self._listener.close()
        for sock in self._sockets:
            sock.close()
        for thread in self._threads:
            thread.join(5)
