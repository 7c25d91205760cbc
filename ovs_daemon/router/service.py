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

"""The storage router: one process serving a vPool's volumes.

It puts together the registry in ZooKeeper, the volume store on the
backend, the NBD data plane, the control API and the ownership state
machine (ownership.py), and runs them on one asyncio event loop until
SIGTERM. Start-up order matters: the router listens first, then registers
(peers only find it once it can answer), then takes back the volumes the
registry says it owns.
"""

import asyncio
import concurrent.futures
import signal
import time

from aiohttp import web
from kazoo import client as kazoo_client
from kazoo import handlers
from kazoo import retry as kazoo_retry
from oslo_log import log as logging

from ovs_daemon import opts
from ovs_daemon import sd_notify
from ovs_daemon import tls as tls_mod
from ovs_daemon.api import token as token_mod
from ovs_daemon.backends import base as backends
from ovs_daemon.engine import store as store_mod
from ovs_daemon.nbd import negotiation
from ovs_daemon.nbd import server as nbd_server_mod
from ovs_daemon.router import api as api_mod
from ovs_daemon.router import background
from ovs_daemon.router import drain as drain_mod
from ovs_daemon.router import metrics as metrics_mod
from ovs_daemon.router import ownership as ownership_mod
from ovs_daemon.router import peers as peers_mod
from ovs_daemon.router import registry as registry_mod
from ovs_daemon.router import session_credentials
from ovs_daemon.router import zookeeper_handler

LOG = logging.getLogger(__name__)


class StartupError(Exception):
    """The router cannot start: bad configuration, ZooKeeper unreachable."""


class RouterService:

    def __init__(self, conf):
        self.conf = conf
        router = conf.router
        self.router_id = router.id
        self.site = router.site
        self.vpool = router.vpool
        try:
            self.admin_tokens = token_mod.TokenFile(router.token_file)
            self.edge_tokens = (token_mod.TokenFile(router.edge_token_file)
                                if router.edge_token_file else None)
        except token_mod.TokenError as exc:
            raise StartupError(str(exc)) from exc
        try:
            self.tls = tls_mod.server_tls(conf.ssl)
        except tls_mod.TLSConfigError as exc:
            raise StartupError(str(exc)) from exc
        if router.read_lease >= conf.zookeeper.session_timeout:
            raise StartupError('[router] read_lease (%.1f s) must be shorter than [zookeeper] '
                               'session_timeout (%.1f s)' % (router.read_lease,
                                                             conf.zookeeper.session_timeout))
        self.session_credentials = session_credentials.SessionCredentials(
            self.vpool, self.admin_tokens)
        self.executor = concurrent.futures.ThreadPoolExecutor(
            router.io_threads, thread_name_prefix='router-io')
        try:
            backend = opts.make_backend(conf)
        except backends.BackendError as exc:
            raise StartupError('backend %s: %s' % (conf.backend.backend, exc)) from exc
        self.read_cache = opts.make_read_cache(conf)
        self.store = store_mod.VolumeStore(backend, opts.make_tuning(conf), self.read_cache)
        self.compaction = opts.make_compaction_policy(conf)
        self.collector = background.low_priority_executor('router-collect')
        self.metrics = metrics_mod.RouterMetrics(self.router_id, self.read_cache)
        handler = zookeeper_handler.HandshakeHandler()
        # kazoo's default back-off grows to an hour: after a long outage the
        # router would reconnect long after ZooKeeper serves again.
        reconnect = kazoo_retry.KazooRetry(max_tries=-1, delay=0.05, backoff=2,
                                           max_delay=conf.zookeeper.reconnect_max_delay,
                                           sleep_func=handler.sleep_func)
        self.zk = kazoo_client.KazooClient(
            hosts=conf.zookeeper.hosts, timeout=conf.zookeeper.session_timeout,
            handler=handler, connection_retry=reconnect)
        self.registry = registry_mod.Registry(self.zk, self.vpool)
        self.peers = peers_mod.Peers(self.router_id, self.admin_tokens, router.peer_timeout,
                                     router.forward_timeout, self._peer_tls(conf.ssl))
        self.nbd_server = nbd_server_mod.NBDServer(self._resolve_export, self._nbd_tls(),
                                                   ready=self._serving_io)
        self.metrics.watch_nbd_admission(self.nbd_server.admission)
        self.ownership = ownership_mod.Ownership(
            self.router_id, self.registry, self.store, self.peers, self.nbd_server,
            self.metrics, self.executor, router.max_unflushed_mib << 20,
            router.handover_timeout, conf.zookeeper.session_timeout, router.read_lease)
        self.drainer = drain_mod.Drainer(self.router_id, self.site, self.registry,
                                         self.ownership, self.peers)
        self._runner = None
        self._stopping = None
        self._background = []

    def _peer_tls(self, group):
        """How this router verifies its peers: with its own TLS settings, or,
        serving in clear itself, with the CA alone (peers may serve HTTPS
        while a vPool turns TLS on router by router)."""
        if self.tls is not None:
            return self.tls.peer_tls()
        try:
            return tls_mod.client_tls(group.ca_file)
        except tls_mod.TLSConfigError as exc:
            raise StartupError(str(exc)) from exc

    def _nbd_tls(self):
        if self.tls is None:
            return None
        return negotiation.TLSPolicy(self.tls.server_context(), self.tls.nbd_require_tls)

    async def _serving_io(self):
        """Until this router serves IO again (its ZooKeeper session is
        suspended): an edge whose FLUSH waits here probes with a new
        connection, and the greeting it gets none of fails it over."""
        await self.ownership.router_gate.wait()

    async def _resolve_export(self, export_name):
        """Every session presents a credential after the volume's name: an
        attachment token, or an operator's short-lived credential."""
        name, _, credential = export_name.partition('/')
        if self.session_credentials.admits(name, credential):
            return await self.ownership.resolve_export(name, None)
        return await self.ownership.resolve_export(name, credential)

    # -- life cycle -------------------------------------------------------------

    async def start(self):
        router = self.conf.router
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.executor, self._connect_zookeeper)
        self.ownership.start()
        nbd_host, nbd_port = await self.nbd_server.start_tcp(router.nbd_host, router.nbd_port)
        self._runner = web.AppRunner(api_mod.ControlAPI(self).application(
                                         self.admin_tokens, self.edge_tokens),
                                     access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, router.api_host, router.api_port,
                           ssl_context=self.tls and self.tls.server_context())
        await site.start()
        api_port = site._server.sockets[0].getsockname()[1]
        advertise = router.advertise_host
        info = {
            'id': self.router_id,
            'site': self.site,
            'nbd': '%s:%d' % (advertise or nbd_host, nbd_port),
            'api': '%s://%s:%d' % ('https' if self.tls else 'http',
                                   advertise or router.api_host, api_port),
        }
        await loop.run_in_executor(self.executor, self._register, info)
        LOG.info('Router %s of vPool %s serving NBD on %s and the API on %s', self.router_id,
                 self.vpool, info['nbd'], info['api'])
        self._background.append(loop.create_task(self.ownership.adopt_owned_volumes()))
        self._background.append(loop.create_task(self._collect_forever()))
        return info

    def _connect_zookeeper(self):
        try:
            self.zk.start(timeout=self.conf.zookeeper.connect_timeout)
        except handlers.threading.KazooTimeoutError:
            self.zk.close()
            raise StartupError('cannot reach ZooKeeper at %s within %.0f s'
                               % (self.conf.zookeeper.hosts,
                                  self.conf.zookeeper.connect_timeout)) from None
        self.registry.ensure_paths()
        # The session listener only hears of later changes.
        self.metrics.zookeeper_connected.set(1)
        self.ownership.draining = self.router_id in self.registry.drained_routers()

    def _register(self, info):
        # After a kill -9 and a quick restart the previous session's node
        # lingers until ZooKeeper expires it.
        deadline = time.monotonic() + 2 * self.conf.zookeeper.session_timeout + 5
        while True:
            try:
                self.registry.register_router(info)
                break
            except registry_mod.RouterIdInUse as exc:
                if time.monotonic() > deadline:
                    raise StartupError(str(exc)) from exc
                LOG.warning('%s; waiting for it to expire', exc)
                time.sleep(0.5)
        self.registry.install_session_listener()

    async def _collect_forever(self):
        while True:
            await asyncio.sleep(self.conf.router.collect_interval)
            await self.collect()

    async def collect(self):
        """One garbage collection round over the volumes served here, then
        over the deleted volumes of the vPool that no clone needs any more
        (left by a delete that was interrupted)."""
        freed = 0
        for name in self.ownership.served_names():
            served = self.ownership.served(name)
            if served is None:
                continue
            try:
                freed += (await self.collect_volume(served))['freed_bytes']
            except Exception as exc:
                LOG.warning('Collecting volume %s failed: %s', name, exc)
        if freed:
            LOG.info('Collector freed %d bytes', freed)
        try:
            gone = await self.ownership.blocking(self.store.collect_deleted)
        except Exception as exc:
            LOG.warning('Collecting deleted volumes failed: %s', exc)
        else:
            if gone:
                LOG.info('Collector removed deleted volumes no clone needs: %s',
                         ', '.join(gone))
        return freed

    async def collect_volume(self, served):
        """One round of compaction and collection of a volume served here,
        in the collector's own low-priority thread; returns what it did."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.collector, self.store.compact_and_collect, served.volume, self.compaction)

    async def run_until_signalled(self):
        self._stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        await self.start()
        # Registered in ZooKeeper and serving: units ordered after this one
        # may start.
        sd_notify.ready()
        await self._stopping.wait()
        sd_notify.stopping()
        if self.conf.router.drain_timeout > 0:
            await self.drainer.drain(self.conf.router.drain_timeout)
        await self.stop()

    async def stop(self):
        LOG.info('Router %s stopping', self.router_id)
        for task in self._background:
            task.cancel()
        await self.ownership.stop()
        await self.nbd_server.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        await self.peers.close()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.executor, self._close_zookeeper)
        self.executor.shutdown(wait=False)
        self.collector.shutdown(wait=False)

    def _close_zookeeper(self):
        self.registry.remove_session_listener()
        self.zk.stop()
        self.zk.close()
