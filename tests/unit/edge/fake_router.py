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

"""A router's control API that answers as a test scripts it, and an edge
service configured to call it."""

from aiohttp import web
from oslo_config import cfg

from ovs_cinder.edge import opts
from ovs_cinder.edge import service as service_mod


class FakeRouter:
    """Serves the handlers a subclass lists in ``routes`` (method, path,
    name of the handler) on a free port of 127.0.0.1."""

    routes = ()

    async def start(self):
        app = web.Application()
        for method, path, handler in self.routes:
            app.router.add_route(method, path, getattr(self, handler))
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, '127.0.0.1', 0).start()
        return 'http://127.0.0.1:%d' % self._runner.addresses[0][1]

    async def stop(self):
        await self._runner.cleanup()


def edge(tmp_path, endpoint):
    """An edge service whose only router is ``endpoint``."""
    (tmp_path / 'token').write_text('edge-token\n')
    (tmp_path / 'token').chmod(0o600)
    config = tmp_path / 'ovs-edge.conf'
    config.write_text('[edge]\nrouter_endpoints = %s\ntoken_file = %s\ncontrol_socket = %s\n'
                      'socket_dir = %s\nstate_dir = %s\n'
                      % (endpoint, tmp_path / 'token', tmp_path / 'control.sock',
                         tmp_path / 'volumes', tmp_path / 'state'))
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf(['--config-file', str(config)])
    return service_mod.EdgeService(conf)
