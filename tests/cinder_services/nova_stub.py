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

"""A stand-in for keystone and nova's API, for cinder's attachment deletion.

cinder asks nova whether a server still uses a volume before it deletes an
attachment that a user (not a service) asks to delete. No nova runs here;
this answers as a nova that no longer knows the server would (404), which
is what cinder sees after an evacuate.
"""

from http import server
import json
import subprocess
import sys


class _Handler(server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _reply(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _base(self):
        return 'http://%s:%d' % self.server.server_address[:2]

    def do_GET(self):
        self.server.requests.append(('GET', self.path))
        if self.path.rstrip('/') in ('/identity/v3', '/identity'):
            return self._reply(200, {'version': {
                'id': 'v3.14', 'status': 'stable', 'updated': '2020-01-01T00:00:00Z',
                'links': [{'rel': 'self', 'href': self._base() + '/identity/v3/'}],
                'media-types': [{'base': 'application/json',
                                 'type': 'application/vnd.openstack.identity-v3+json'}]}})
        if self.path.rstrip('/') in ('/compute/v2.1', '/compute'):
            return self._reply(200, {'version': {
                'id': 'v2.1', 'status': 'CURRENT', 'version': '2.95', 'min_version': '2.1',
                'updated': '2013-07-23T11:33:21Z',
                'links': [{'rel': 'self', 'href': self._base() + '/compute/v2.1/'}]}})
        return self._reply(404, {'itemNotFound': {'code': 404,
                                                  'message': 'Instance could not be found.'}})

    def do_POST(self):
        length = int(self.headers.get('Content-Length') or 0)
        self.rfile.read(length)
        self.server.requests.append(('POST', self.path))
        if self.path.startswith('/identity/v3/auth/tokens'):
            return self._reply(201, {'token': {
                'methods': ['token'], 'expires_at': '2099-01-01T00:00:00.000000Z',
                'issued_at': '2020-01-01T00:00:00.000000Z',
                'user': {'id': 'u', 'name': 'u', 'domain': {'id': 'default', 'name': 'Default'}},
                'project': {'id': 'p', 'name': 'p',
                            'domain': {'id': 'default', 'name': 'Default'}},
                'roles': [{'id': 'r', 'name': 'admin'}],
                'catalog': [{'type': 'compute', 'name': 'nova', 'id': 'c', 'endpoints': [
                    {'id': 'e', 'interface': 'public', 'region': 'RegionOne',
                     'region_id': 'RegionOne', 'url': self._base() + '/compute/v2.1'}]}]}},
                headers=[('X-Subject-Token', 'stub-token')])
        return self._reply(404, {})


class NovaStub:
    """Runs in a process of its own: the test process is monkey-patched by
    eventlet (cinder's in-process API needs it), which this server avoids."""

    def __init__(self, log_path):
        self.log_path = log_path
        self.process = subprocess.Popen([sys.executable, '-m', __name__, log_path],
                                        stdout=subprocess.PIPE, text=True)
        self.port = int(self.process.stdout.readline())

    @property
    def identity_url(self):
        return 'http://127.0.0.1:%d/identity/v3' % self.port

    @property
    def requests(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        self.process.terminate()
        self.process.wait(10)
        self.process.stdout.close()


def main():
    httpd = server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    httpd.requests = _RequestLog(sys.argv[1])
    print(httpd.server_address[1], flush=True)
    httpd.serve_forever()


class _RequestLog:
    def __init__(self, path):
        self.path = path

    def append(self, request):
        with open(self.path, 'a') as f:
            f.write('%s %s\n' % request)


if __name__ == '__main__':
    main()
