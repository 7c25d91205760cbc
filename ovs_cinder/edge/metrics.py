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

"""The edge's Prometheus metrics, served at ``GET /metrics`` on
``[edge] metrics_host:metrics_port`` when metrics_port is set.

Read from the attachments at each scrape (nothing is counted on the IO
path): per volume its state, owner and epoch, failovers and the pause of
the last one, and what its replay journal holds; per host the number of
attachments.
"""

from aiohttp import web
import prometheus_client as prom
from prometheus_client import core

STATES = ('connected', 'failing-over', 'revoked')


class EdgeCollector:
    """A prometheus_client collector over an EdgeService's attachments."""

    def __init__(self, service):
        self.service = service

    def collect(self):
        host = self.service.settings.host
        labels = ['vpool', 'volume']
        state = core.GaugeMetricFamily(
            'ovs_edge_volume_state', '1 for the state the volume is in (connected, '
            'failing-over, revoked), 0 for the others.', labels=labels + ['state'])
        owner = core.GaugeMetricFamily(
            'ovs_edge_volume_owner', '1 for the router the edge sends the volume\'s IO to.',
            labels=labels + ['router'])
        epoch = core.GaugeMetricFamily(
            'ovs_edge_volume_epoch', 'Ownership epoch of the router the edge uses.',
            labels=labels)
        failovers = core.CounterMetricFamily(
            'ovs_edge_volume_failovers', 'Failovers (and followed handovers) of the volume.',
            labels=labels)
        pause = core.GaugeMetricFamily(
            'ovs_edge_volume_last_pause_seconds',
            'How long the last failover held the volume\'s IO.', labels=labels)
        journal_bytes = core.GaugeMetricFamily(
            'ovs_edge_volume_journal_bytes',
            'Bytes of acknowledged writes kept for replay (since the last flush).',
            labels=labels)
        journal_entries = core.GaugeMetricFamily(
            'ovs_edge_volume_journal_entries', 'Writes kept for replay.', labels=labels)
        for (vpool, volume), attachment in sorted(self.service.attachments.items()):
            proxy = attachment.proxy
            key = [vpool, volume]
            for name in STATES:
                state.add_metric(key + [name], float(proxy.state == name))
            if proxy.upstream is not None:
                owner.add_metric(key + [proxy.upstream.router_id], 1.0)
                epoch.add_metric(key, proxy.upstream.epoch)
            failovers.add_metric(key, proxy.failovers)
            pause.add_metric(key, proxy.last_pause)
            journal_bytes.add_metric(key, proxy.journal.bytes)
            journal_entries.add_metric(key, len(proxy.journal))
        attachments = core.GaugeMetricFamily(
            'ovs_edge_attachments', 'Volumes attached on this host.', labels=['host'])
        attachments.add_metric([host], len(self.service.attachments))
        return [state, owner, epoch, failovers, pause, journal_bytes, journal_entries,
                attachments]


class MetricsServer:
    """``GET /metrics`` over HTTP for Prometheus."""

    def __init__(self, service, host, port):
        self.registry = prom.CollectorRegistry()
        self.registry.register(EdgeCollector(service))
        prom.Info('ovs_edge', 'This edge.', registry=self.registry).info(
            {'host': service.settings.host, 'site': service.settings.site})
        self.host = host
        self.port = port
        self._runner = None

    async def start(self):
        app = web.Application()
        app.add_routes([web.get('/metrics', self.metrics)])
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def metrics(self, request):
        return web.Response(body=prom.generate_latest(self.registry),
                            headers={'Content-Type': prom.CONTENT_TYPE_LATEST})

    async def stop(self):
        if self._runner is not None:
            await self._runner.cleanup()
