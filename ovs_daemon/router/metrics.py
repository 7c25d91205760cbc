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

"""The router's Prometheus metrics, served at ``GET /metrics``.

One registry per router (not the process-wide default) so tests can run
several routers in one process without their counters mixing.
"""

import prometheus_client as prom
from prometheus_client import core as prom_core

from ovs_daemon.backends import base as backends

# Label values known in advance: their series exist (at 0) from the start,
# so dashboards and alerts see a rate of 0, not "no data".
OPS = ('read', 'write', 'flush', 'trim', 'write_zeroes')
OWNERSHIP_KINDS = ('create', 'handover', 'steal', 'restart', 'released')
HALT_CAUSES = ('fenced', 'record_changed', 'session_lost', 'deleted', 'handed_over',
               'superseded', 'stopped')

# Buckets from 50 us (a read from memory) to 10 s (a flush under load).
LATENCY_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                   0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class _RefusalCollector:
    """``ovs_router_nbd_refusals`` from the NBD server's admission counts."""

    def __init__(self, admission):
        self._admission = admission

    def collect(self):
        family = prom_core.CounterMetricFamily(
            'ovs_router_nbd_refusals',
            'NBD clients refused or dropped before choosing an export, by reason '
            '(refused export, handshake caps, timeout, protocol error, an option '
            'before the TLS the router requires, a failed TLS handshake).',
            labels=['reason'])
        for reason, count in sorted(self._admission.refusals.items()):
            family.add_metric([reason], count)
        yield family


class RouterMetrics:

    def __init__(self, router_id, read_cache=None):
        self.registry = prom.CollectorRegistry()
        if read_cache is not None:
            self.registry.register(_ReadCacheCollector(read_cache))
        self._io_children = {}
        labels = {'router': router_id}
        self.io_requests = prom.Counter(
            'ovs_router_io_requests', 'NBD requests served, by operation.',
            ['op'], registry=self.registry).labels
        self.io_errors = prom.Counter(
            'ovs_router_io_errors', 'NBD requests answered with an error.',
            ['op'], registry=self.registry).labels
        self.io_bytes = prom.Counter(
            'ovs_router_io_bytes', 'Bytes read and written by NBD requests, by operation.',
            ['op'], registry=self.registry).labels
        self.backend_errors = prom.Counter(
            'ovs_router_backend_errors',
            'NBD requests that failed on a backend error (not counting fencing).',
            ['op'], registry=self.registry).labels
        self.io_latency = prom.Histogram(
            'ovs_router_io_latency_seconds', 'Time to serve an NBD request.',
            ['op'], buckets=LATENCY_BUCKETS, registry=self.registry).labels
        self.ownership_changes = prom.Counter(
            'ovs_router_ownership_changes',
            'Volumes this router took (create, handover, steal, restart) or '
            'released (released).', ['kind'], registry=self.registry).labels
        self.halts = prom.Counter(
            'ovs_router_volume_halts',
            'Volumes this router halted, by cause (fenced, record_changed, '
            'session_lost, deleted, ...).', ['cause'], registry=self.registry).labels
        self.served = prom.Gauge(
            'ovs_router_volumes_served', 'Volumes this router serves now.',
            registry=self.registry)
        self.zookeeper_connected = prom.Gauge(
            'ovs_router_zookeeper_connected',
            '1 while the ZooKeeper session is connected.', registry=self.registry)
        prom.Info('ovs_router', 'This router.', registry=self.registry).info(labels)
        for op in OPS:
            self._children(op)
        for kind in OWNERSHIP_KINDS:
            self.ownership_changes(kind)
        for cause in HALT_CAUSES:
            self.halts(cause)

    def watch_nbd_admission(self, admission):
        self.registry.register(_RefusalCollector(admission))

    def _children(self, op):
        children = self._io_children[op] = (
            self.io_requests(op), self.io_latency(op), self.io_errors(op),
            self.io_bytes(op), self.backend_errors(op))
        return children

    def observe_io(self, op, seconds, nbytes, error):
        # Called for every NBD request: the labelled children are looked up
        # once per operation, not at every call.
        children = self._io_children.get(op) or self._children(op)
        children[0].inc()
        children[1].observe(seconds)
        if nbytes:
            children[3].inc(nbytes)
        if error is not None:
            children[2].inc()
            if (isinstance(error, backends.BackendError)
                    and not isinstance(error, backends.Fenced)):
                children[4].inc()

    def exposition(self):
        return prom.generate_latest(self.registry), prom.CONTENT_TYPE_LATEST


class _ReadCacheCollector:
    """The read cache's counters, read at each scrape."""

    COUNTERS = (
        ('hits', 'Chunks of backend data read from the read cache.'),
        ('misses', 'Chunks of backend data the read cache did not hold.'),
        ('evictions', 'Chunks evicted from the read cache to make room.'),
        ('fetched_bytes', 'Bytes the read cache fetched from the backend '
                          '(misses and prefetch).'),
        ('prefetched_bytes', 'Bytes the read cache fetched ahead of '
                             'sequential readers.'),
    )

    def __init__(self, cache):
        self.cache = cache

    def collect(self):
        counters = dict(self.cache.counters)
        for name, text in self.COUNTERS:
            yield prom_core.CounterMetricFamily('ovs_router_read_cache_' + name, text,
                                                value=counters.get(name, 0))
        yield prom_core.GaugeMetricFamily('ovs_router_read_cache_bytes',
                                          'Bytes of backend data the read cache holds.',
                                          value=self.cache.filled_bytes())
        yield prom_core.GaugeMetricFamily('ovs_router_read_cache_capacity_bytes',
                                          'Size of the read cache.',
                                          value=self.cache.slots * self.cache.chunk)
