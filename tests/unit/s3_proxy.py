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

"""A small HTTP proxy in front of an S3 server that injects faults.

It forwards every request to the upstream server as it is, unless a
:class:`Fault` matches it: then it answers an error instead of forwarding
(the request was not applied), forwards and answers an error anyway or
drops the connection (applied, but the client cannot know: an unknown
outcome), or strips the conditional headers (a store that ignores them).
Every request is recorded, so a test can see what the client sent.
"""

import dataclasses
import http.client
import http.server
import threading

_CONDITIONS = ('If-None-Match', 'If-Match')


@dataclasses.dataclass
class Fault:
    """``action``: 'fail_before', 'fail_after', 'drop_after',
    'strip_conditions', 'corrupt' (the reply's last byte changed) or
    'pass' (forward as it is). Matches requests of
    ``method`` whose path contains ``path`` and, with ``header``, only
    those carrying that conditional header (strip_conditions then strips
    that one only). ``times`` matches at most (None:
    forever). ``hook()``, if given, runs first: another client's request
    that lands while this one is held."""

    action: str
    method: str = 'PUT'
    path: str = ''
    header: str = None
    times: int = 1
    status: int = 500
    code: str = 'InternalError'
    hook: object = None

    def matches(self, method, path, headers):
        if self.times == 0 or method != self.method or self.path not in path:
            return False
        return self.header is None or self.header in headers


@dataclasses.dataclass
class Seen:
    method: str
    path: str
    conditions: dict
    status: int


class FaultProxy:

    def __init__(self, upstream_host, upstream_port):
        self.upstream = (upstream_host, upstream_port)
        self.faults = []
        self.seen = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args):
                pass

            def _handle(self):
                proxy.handle(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                      Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = 'http://127.0.0.1:%d' % self.port
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(10)

    def add(self, fault):
        with self._lock:
            self.faults.append(fault)
        return fault

    def _take_fault(self, method, path, headers):
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path, headers):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    def handle(self, request):
        method, path = request.command, request.path
        length = int(request.headers.get('Content-Length') or 0)
        body = request.rfile.read(length) if length else b''
        headers = {k: v for k, v in request.headers.items()}
        fault = self._take_fault(method, path, headers)
        action = fault.action if fault else None
        if fault and fault.hook:
            fault.hook()
        status = None
        if action == 'strip_conditions':
            stripped = (fault.header,) if fault.header else _CONDITIONS
            headers = {k: v for k, v in headers.items()
                       if k.title() not in stripped}
        if action != 'fail_before':
            status, reply_headers, reply = self._forward(method, path,
                                                         headers, body)
        if action == 'corrupt':
            reply = reply[:-1] + bytes([reply[-1] ^ 0xff])
        if action in ('fail_before', 'fail_after'):
            status = fault.status
            reply = ('<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s'
                     '</Code><Message>injected</Message></Error>'
                     % fault.code).encode()
            reply_headers = {'Content-Type': 'application/xml'}
        with self._lock:
            self.seen.append(Seen(method, path,
                                  {k: v for k, v in headers.items()
                                   if k.title() in _CONDITIONS},
                                  -1 if action == 'drop_after' else status))
        if action == 'drop_after':
            request.close_connection = True
            return
        request.send_response(status)
        length = len(reply)
        for name, value in reply_headers.items():
            if name.lower() == 'content-length' and method == 'HEAD':
                length = value  # a HEAD answers the object's length
            elif name.lower() not in ('content-length', 'transfer-encoding',
                                      'connection'):
                request.send_header(name, value)
        request.send_header('Content-Length', str(length))
        request.end_headers()
        if method != 'HEAD':
            request.wfile.write(reply)

    def _forward(self, method, path, headers, body):
        connection = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), \
                response.read()
        finally:
            connection.close()
