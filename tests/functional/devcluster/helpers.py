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

"""Tiny client and server programs that tests run inside simulated hosts,
and a look at processes that does not rely on the code under test."""

import sys

# Prints OK and what the server answered, or the exception's class name, so a
# timeout (silent drop) can be told from a refusal.  argv: address, port,
# timeout, what to send first.
CONNECT_PROBE = '''
import socket, sys
address, port, timeout, payload = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
try:
    with socket.create_connection((address, port), timeout=timeout) as s:
        s.sendall(payload.encode())
        print('OK', s.recv(16).decode())
except OSError as exc:
    print(type(exc).__name__)
'''

# Answers every connection with "hello" and closes it; argv is the port.
HELLO_SERVER = '''
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', int(sys.argv[1])))
s.listen()
while True:
    c, _ = s.accept()
    c.sendall(b'hello')
    c.close()
'''


def probe(host, address, port, send='', timeout=2.0):
    """Connect from ``host``, send ``send`` and return the CONNECT_PROBE verdict."""
    result = host.exec([sys.executable, '-c', CONNECT_PROBE, address, str(port), str(timeout),
                        send], timeout=timeout + 10)
    return result.stdout.strip()


def alive(pid):
    """True while ``pid`` runs; a zombie (exited, not yet reaped) is dead."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(') ', 1)[1][0] not in 'ZX'
    except FileNotFoundError:
        return False
