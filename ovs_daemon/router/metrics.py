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

# Buckets from 50 us (a read from memory) to 10 s (a flush under load).
LATENCY_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                   0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class RouterMetrics:

    def __init__(self, router_id):
        self.registry = prom.CollectorRegistry()
        self._io_children = {}
        labels = {'router': router_id}
        self.io_requests = prom.Counter(
            'ovs_router_io_requests', 'NBD requests served, by operation.',
            ['op'], registry=self.registry).labels
        self.io_errors = prom.Counter(
            'ovs_router_io_errors', 'NBD requests answered with an error.',
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
            'session_lost, deleted).', ['cause'], registry=self.registry).labels
        self.served = prom.Gauge(
            'ovs_router_volumes_served', 'Volumes this router serves now.',
            registry=self.registry)
        self.zookeeper_connected = prom.Gauge(
            'ovs_router_zookeeper_connected',
            '1 while the ZooKeeper session is connected.', registry=self.registry)
        prom.Info('ovs_router', 'This router.', registry=self.registry).info(labels)

    def observe_io(self, op, seconds, failed):
        # Called for every NBD request: the labelled children are looked up
        # once per operation, not at every call.
        children = self._io_children.get(op)
        if children is None:
            children = self._io_children[op] = (
                self.io_requests(op), self.io_latency(op), self.io_errors(op))
        children[0].inc()
        children[1].observe(seconds)
        if failed:
            children[2].inc()

    def exposition(self):
        return prom.generate_latest(self.registry), prom.CONTENT_TYPE_LATEST
