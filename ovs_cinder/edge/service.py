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

"""The edge service: attached volumes, each served on its own NBD unix
socket, and the control socket that attaches and detaches them."""

import asyncio
import concurrent.futures
import os
import signal

from oslo_log import log as logging

from ovs_cinder.edge import control
from ovs_cinder.edge import locator as locator_mod
from ovs_cinder.edge import metrics as metrics_mod
from ovs_cinder.edge import roster as roster_mod
from ovs_cinder.edge import state as state_mod
from ovs_cinder.edge import volume_proxy
from ovs_daemon import sd_notify
from ovs_daemon import tls as tls_mod
from ovs_daemon.api import errors as api_errors
from ovs_daemon.api import token as token_mod
from ovs_daemon.backends import base as backends
from ovs_daemon.nbd import errors as nbd_errors
from ovs_daemon.nbd import server as nbd_server_mod

LOG = logging.getLogger(__name__)
# sun_path of struct sockaddr_un on Linux, with its terminating NUL.
MAX_UNIX_PATH = 108


class StartupError(Exception):
    """The edge cannot start: bad configuration or an unreadable token."""


class Attachment:
    """One attached volume: its proxy and the NBD server on its socket."""

    def __init__(self, vpool, proxy, server, socket_path, token):
        self.vpool = vpool
        self.proxy = proxy
        self.server = server
        self.socket_path = socket_path
        self.token = token

    def record(self):
        """What the state file keeps to serve this attachment again."""
        return {'vpool': self.vpool, 'volume': self.proxy.name, 'socket': self.socket_path,
                'token': self.token, 'size': self.proxy.size}

    def describe(self):
        upstream = self.proxy.upstream
        return {'volume': self.proxy.name, 'vpool': self.vpool, 'socket': self.socket_path,
                'uri': 'nbd+unix:///%s?socket=%s' % (self.proxy.name, self.socket_path),
                'size': self.proxy.size, 'state': self.proxy.state,
                'router': upstream.router_id if upstream else None,
                'epoch': upstream.epoch if upstream else None}


class EdgeService:

    def __init__(self, conf):
        self.settings = conf.edge
        try:
            self._api_token = token_mod.read_token(conf.edge.token_file)
        except token_mod.TokenError as exc:
            raise StartupError(str(exc)) from exc
        try:
            self._gid = (None if conf.edge.socket_group is None
                         else control.group_id(conf.edge.socket_group))
        except ValueError as exc:
            raise StartupError('[edge] socket_group: %s' % exc) from None
        self.executor = concurrent.futures.ThreadPoolExecutor(
            conf.edge.control_threads, thread_name_prefix='edge-control')
        if not conf.edge.router_endpoints:
            raise StartupError('[edge] router_endpoints must list the control API URLs of '
                               'the vPool\'s routers')
        try:
            self.tls = tls_mod.client_tls(conf.ssl.ca_file, conf.ssl.cert_file,
                                          conf.ssl.key_file)
        except tls_mod.TLSConfigError as exc:
            raise StartupError('[ssl] %s' % exc) from None
        nbd_tls = self.tls.context() if conf.ssl.ca_file and conf.ssl.nbd_tls else None
        self.roster = roster_mod.Roster(conf.edge.router_endpoints, conf.edge.site,
                                        self._api_token, conf.edge, self.executor, self.tls,
                                        nbd_tls)
        self.attachments = {}
        self.control = control.ControlServer(conf.edge.control_socket, self.handle,
                                            self._gid)
        self._locks = {}
        self.metrics = None
        if conf.edge.metrics_port is not None:
            self.metrics = metrics_mod.MetricsServer(self, conf.edge.metrics_host,
                                                     conf.edge.metrics_port)

    # -- control requests ---------------------------------------------------

    async def handle(self, request):
        op = request['op']
        handler = {'attach': self.attach, 'detach': self.detach, 'list': self.list,
                   'refresh': self.refresh, 'status': self.status}.get(op)
        if handler is None:
            raise api_errors.BadRequest('unknown op %r' % op)
        return await handler(request)

    async def status(self, request):
        return {'host': self.settings.host, 'site': self.settings.site,
                'volumes': len(self.attachments)}

    async def list(self, request):
        return {'volumes': [a.describe() for _, a in sorted(self.attachments.items())]}

    async def attach(self, request):
        vpool, volume = _key(request)
        self._check_routers(request)
        token = request.get('token')
        if not isinstance(token, str) or not token:
            raise api_errors.BadRequest('"token" (the attachment token) is required')
        async with self._lock(vpool, volume):
            existing = self.attachments.get((vpool, volume))
            if existing is not None:
                existing.token = existing.proxy.locator.attachment_token = token
                self._save_state()
                return existing.describe()
            await self.roster.refresh()
            attachment = await self._attach(vpool, volume, token)
            self.attachments[vpool, volume] = attachment
            self._save_state()
            LOG.info('Attached volume %s of vPool %s at %s', volume, vpool,
                     attachment.socket_path)
            return attachment.describe()

    def _check_routers(self, request):
        """The edge takes its routers from its configuration: a request that
        names others (an older connector passes the driver's list) is
        refused before anything is sent anywhere."""
        routers = request.get('routers')
        if routers is None:
            return
        if not isinstance(routers, list):
            raise api_errors.BadRequest('"routers", if given, must be a list')
        try:
            self.roster.check_named(routers)
        except roster_mod.UnknownRouter as exc:
            raise api_errors.BadRequest(str(exc)) from None

    async def _attach(self, vpool, volume, token):
        proxy = self._proxy(volume, token)
        try:
            await proxy.connect()
        except api_errors.NotFound as exc:
            raise api_errors.NotFound(str(exc)) from exc
        except locator_mod.AttachmentRevoked as exc:
            raise control.Refused(str(exc)) from exc
        except locator_mod.NoRouter as exc:
            raise api_errors.Unavailable(str(exc)) from exc
        path = os.path.join(self.settings.socket_dir, vpool, '%s.sock' % volume)
        if len(path.encode()) >= MAX_UNIX_PATH:
            await proxy.detach()
            raise api_errors.ApiError('the socket path %s is longer than a unix socket '
                                      'allows (%d bytes): shorten [edge] socket_dir'
                                      % (path, MAX_UNIX_PATH - 1), error_type='InternalError')
        return await self._serve(vpool, proxy, path, token)

    def _proxy(self, volume, token):
        locator = locator_mod.Locator(volume, self.roster, token, self.settings)
        return volume_proxy.VolumeProxy(locator, self.settings)

    async def _serve(self, vpool, proxy, path, token):
        """Listen on ``path`` for ``proxy``'s volume; returns the Attachment."""
        volume = proxy.name
        control.make_directories(os.path.dirname(path), self._gid)

        async def resolve(name):
            if name not in ('', volume):
                raise nbd_errors.ExportRefused('this socket serves volume %s only' % volume)
            return proxy
        server = nbd_server_mod.NBDServer(resolve)
        try:
            await server.start_unix(path)
            control.share_socket(path, self._gid)
        except Exception:
            await server.stop()
            await proxy.detach()
            raise
        return Attachment(vpool, proxy, server, path, token)

    async def detach(self, request):
        vpool, volume = _key(request)
        async with self._lock(vpool, volume):
            attachment = self.attachments.pop((vpool, volume), None)
            if attachment is None:
                return {'attached': False}
            self._save_state()
            await _close(attachment)
            LOG.info('Detached volume %s of vPool %s', volume, vpool)
            return {'attached': True}

    async def refresh(self, request):
        vpool, volume = _key(request)
        attachment = self.attachments.get((vpool, volume))
        if attachment is None:
            raise api_errors.NotFound('volume %s of vPool %s is not attached here'
                                      % (volume, vpool))
        failures = []
        for router in self.roster.preference():
            try:
                location = await self.roster.call(router, 'locate', volume,
                                                  timeout=self.settings.acquire_timeout)
                break
            except api_errors.NotFound:
                raise
            except (api_errors.ApiError, OSError) as exc:
                failures.append('%s: %s' % (router['api'], exc))
        else:
            raise api_errors.Unavailable('no router could locate volume %s: %s'
                                         % (volume, '; '.join(failures)))
        attachment.proxy.set_size(location['size'])
        return {'size': attachment.proxy.size}

    def _save_state(self):
        try:
            state_mod.save(self.settings.state_dir,
                           [a.record() for _, a in sorted(self.attachments.items())])
        except state_mod.StateFileError as exc:
            # The attachment itself works; only a restart would lose it.
            LOG.error('%s: a restart of this edge would not serve the attachments again',
                      exc)

    async def restore(self):
        """Serve again the attachments of the state file, at their sockets.

        A volume whose routers cannot be reached now still gets its socket:
        its IO waits for a router as during a failover.
        """
        try:
            records = state_mod.load(self.settings.state_dir)
        except state_mod.StateFileError as exc:
            raise StartupError(str(exc)) from exc
        if records:
            await self.roster.refresh()
        for record in records:
            vpool, volume = record['vpool'], record['volume']
            proxy = self._proxy(volume, record['token'])
            # The size QEMU knows, even while no router answers.
            proxy.set_size(record['size'])
            await proxy.reconnect()
            self.attachments[vpool, volume] = await self._serve(
                vpool, proxy, record['socket'], record['token'])
            LOG.info('Serving volume %s of vPool %s again at %s (%s)', volume, vpool,
                     record['socket'], proxy.state)

    def _lock(self, vpool, volume):
        return self._locks.setdefault((vpool, volume), asyncio.Lock())

    # -- life cycle ---------------------------------------------------------

    async def run_until_signalled(self):
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        if self.metrics is not None:
            await self.metrics.start()
            LOG.info('Prometheus metrics on http://%s:%d/metrics', self.metrics.host,
                     self.metrics.port)
        await self.restore()
        # Last: the control socket appearing tells that the edge is ready.
        await self.control.start()
        # The control socket listens: nova-compute and cinder-volume, ordered
        # after this unit, may attach.
        sd_notify.ready()
        await stopping.wait()
        sd_notify.stopping()
        await self.stop()

    async def stop(self):
        """Flush and close every attachment; the state file keeps them for
        the next start."""
        await self.control.stop()
        if self.metrics is not None:
            await self.metrics.stop()
        for key in list(self.attachments):
            await _close(self.attachments.pop(key))
        self.executor.shutdown(wait=False)


async def _close(attachment):
    await attachment.server.stop()
    await attachment.proxy.detach()


def _key(request):
    vpool, volume = request.get('vpool'), request.get('volume')
    for kind, value in (('vpool', vpool), ('volume', volume)):
        if not isinstance(value, str):
            raise api_errors.BadRequest('"%s" is required' % kind)
        try:
            backends.check_name(kind, value)
        except backends.InvalidName as exc:
            raise api_errors.BadRequest(str(exc)) from None
    return vpool, volume

