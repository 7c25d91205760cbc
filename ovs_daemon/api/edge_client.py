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

"""The client of an edge's control socket (docs/edge.md): JSON lines over a
unix socket, with the standard library only, so nova-compute and
cinder-volume can use it (no eventlet, no threads)."""

import json
import socket


class EdgeError(Exception):
    """Base of the errors of this client."""


class EdgeUnavailable(EdgeError):
    """The edge is not running here (no socket, or nobody listening)."""


class EdgeRequestError(EdgeError):
    """The edge answered with an error; ``type`` as docs/edge.md lists them."""

    def __init__(self, error_type, message):
        super().__init__('%s: %s' % (error_type, message))
        self.type = error_type
        self.message = message


class EdgeControlClient:

    def __init__(self, path, timeout=60.0):
        self.path = path
        self.timeout = timeout

    def __repr__(self):
        return 'EdgeControlClient(%r)' % self.path

    def call(self, op, **fields):
        request = dict(fields, op=op)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            try:
                sock.connect(self.path)
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                raise EdgeUnavailable('no edge listens on %s: %s' % (self.path, exc)) from None
            sock.sendall((json.dumps(request) + '\n').encode())
            with sock.makefile('rb') as answers:
                line = answers.readline()
        except TimeoutError:
            raise EdgeUnavailable('the edge at %s did not answer %s within %.0f s'
                                  % (self.path, op, self.timeout)) from None
        finally:
            sock.close()
        if not line:
            raise EdgeUnavailable('the edge at %s closed the connection' % self.path)
        answer = json.loads(line)
        if not answer.get('ok'):
            error = answer.get('error', {})
            raise EdgeRequestError(error.get('type', 'Error'), error.get('message', ''))
        return answer

    def attach(self, volume, vpool, token):
        return self.call('attach', volume=volume, vpool=vpool, token=token)

    def detach(self, volume, vpool):
        return self.call('detach', volume=volume, vpool=vpool)

    def list(self):
        return self.call('list')['volumes']

    def refresh(self, volume, vpool):
        return self.call('refresh', volume=volume, vpool=vpool)['size']

    def status(self):
        return self.call('status')
