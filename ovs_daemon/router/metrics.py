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

import bisect
import itertools

import prometheus_client as prom
from prometheus_client import core as prom_core
from prometheus_client import utils as prom_utils

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
        self._io = {op: _IOStats() for op in OPS}
        self.registry.register(_IOCollector(self._io))
        labels = {'router': router_id}
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
        for kind in OWNERSHIP_KINDS:
            self.ownership_changes(kind)
        for cause in HALT_CAUSES:
            self.halts(cause)

    def watch_nbd_admission(self, admission):
        self.registry.register(_RefusalCollector(admission))

    def observe_io(self, op, seconds, nbytes, error):
        # Called for every NBD request, on the event loop: plain counts,
        # turned into metric families at each scrape (_IOCollector).
        stats = self._io.get(op)
        if stats is None:
            stats = self._io[op] = _IOStats()
        stats.count(seconds, nbytes, error)

    def exposition(self):
        return prom.generate_latest(self.registry), prom.CONTENT_TYPE_LATEST


class _IOStats:
    """One operation's counts; ``buckets[i]`` counts latencies up to
    ``LATENCY_BUCKETS[i]`` (and above the one before), the last one the rest."""

    __slots__ = ('requests', 'errors', 'bytes', 'backend_errors', 'latency_sum', 'buckets')

    def __init__(self):
        self.requests = self.errors = self.bytes = self.backend_errors = 0
        self.latency_sum = 0.0
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)

    def count(self, seconds, nbytes, error):
        """One request that took ``seconds``, moved ``nbytes`` and failed
        with ``error`` (or None)."""
        self.requests += 1
        self.latency_sum += seconds
        self.buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.bytes += nbytes
        if error is not None:
            self.errors += 1
            if (isinstance(error, backends.BackendError)
                    and not isinstance(error, backends.Fenced)):
                self.backend_errors += 1


class _IOCollector:
    """The per-operation NBD request metrics, from :class:`_IOStats`."""

    COUNTERS = (
        ('ovs_router_io_requests', 'NBD requests served, by operation.', 'requests'),
        ('ovs_router_io_errors', 'NBD requests answered with an error.', 'errors'),
        ('ovs_router_io_bytes', 'Bytes read and written by NBD requests, by operation.',
         'bytes'),
        ('ovs_router_backend_errors',
         'NBD requests that failed on a backend error (not counting fencing).',
         'backend_errors'),
    )

    def __init__(self, stats):
        self._stats = stats

    def collect(self):
        stats = sorted(self._stats.items())
        for name, text, field in self.COUNTERS:
            family = prom_core.CounterMetricFamily(name, text, labels=['op'])
            for op, counts in stats:
                family.add_metric([op], getattr(counts, field))
            yield family
        family = prom_core.HistogramMetricFamily(
            'ovs_router_io_latency_seconds', 'Time to serve an NBD request.', labels=['op'])
        for op, counts in stats:
            cumulative = list(itertools.accumulate(counts.buckets))
            bounds = [prom_utils.floatToGoString(b) for b in LATENCY_BUCKETS] + ['+Inf']
            family.add_metric([op], list(zip(bounds, cumulative)), counts.latency_sum)
        yield family


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
        yield prom_core.GaugeMetricFamily('ovs_router_read_cache_prefetches',
                                          'Prefetches under way (at most '
                                          'read_cache_prefetch_requests).',
                                          value=self.cache.prefetches())
