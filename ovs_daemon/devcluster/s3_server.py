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

"""moto's S3 server, with each mutating request applied atomically.

    python -m ovs_daemon.devcluster.s3_server --port PORT

The s3 backend's tests and ``ovs-devcluster up --backend s3`` run it; moto
is a test requirement (test-requirements.txt), not one of the daemon's.

moto checks If-None-Match / If-Match and then stores the object in two
steps, without a lock, on a threaded server: two racing conditional writes
could in principle both pass the check. A real store makes them atomic.
This runs moto's own WSGI application on werkzeug's threaded server, as
``python -m moto.server`` does, but serialises the requests that change
something (reads still run in parallel), so the tests exercise the
backend against the store semantics it is written for. A request's body
is read before it waits for its turn: a client stopped in the middle of an
upload (a hung router) must not hold up everyone else's writes, which a
real store does not.
"""

import argparse
import io
import threading

from moto.moto_server import werkzeug_app
from werkzeug import serving
from werkzeug import wsgi

_READS = {'GET', 'HEAD', 'OPTIONS'}


class SerialisedWrites:
    """WSGI middleware: one mutating request at a time."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get('REQUEST_METHOD') in _READS:
            return self.app(environ, start_response)
        body = wsgi.get_input_stream(environ).read()
        environ['wsgi.input'] = io.BytesIO(body)
        environ['CONTENT_LENGTH'] = str(len(body))
        with self.lock:
            # The whole response is built under the lock: moto's responses
            # are bytes, not streams.
            return list(self.app(environ, start_response))


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, required=True)
    args = parser.parse_args(argv)
    app = werkzeug_app.DomainDispatcherApplication(
        werkzeug_app.create_backend_app)
    serving.run_simple(args.host, args.port, SerialisedWrites(app),
                       threaded=True,
                       request_handler=werkzeug_app.MotoRequestHandler)


if __name__ == '__main__':
    main()
