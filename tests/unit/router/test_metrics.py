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


"""The router's per-request NBD metrics, as a scrape shows them."""

from ovs_daemon.backends import base as backends
from ovs_daemon.devcluster import metrics_page
from ovs_daemon.router import metrics as metrics_mod

value = metrics_page.value


def scrape(metrics):
    return metrics_page.samples(metrics.exposition()[0])


def test_requests_are_counted_by_operation_with_their_latency_bytes_and_errors():
    metrics = metrics_mod.RouterMetrics('r1')
    metrics.observe_io('read', 0.00005, 4096, None)
    metrics.observe_io('read', 0.0003, 4096, None)
    metrics.observe_io('write', 20.0, 8192, backends.BackendError('disk gone'))
    metrics.observe_io('write', 0.001, 4096, backends.Fenced('not the owner'))
    found = scrape(metrics)

    assert value(found, 'ovs_router_io_requests_total', op='read') == 2
    assert value(found, 'ovs_router_io_bytes_total', op='read') == 8192
    assert value(found, 'ovs_router_io_errors_total', op='write') == 2
    assert value(found, 'ovs_router_backend_errors_total', op='write') == 1
    assert value(found, 'ovs_router_io_requests_total', op='flush') == 0

    def read_bucket(le):
        return value(found, 'ovs_router_io_latency_seconds_bucket', le=le, op='read')
    # A bucket counts what took up to its bound, the bound included.
    assert (read_bucket('5e-05'), read_bucket('0.00025'), read_bucket('0.0005'),
            read_bucket('+Inf')) == (1, 1, 2, 2)
    assert value(found, 'ovs_router_io_latency_seconds_bucket', le='10.0', op='write') == 1
    assert value(found, 'ovs_router_io_latency_seconds_bucket', le='+Inf', op='write') == 2
    assert value(found, 'ovs_router_io_latency_seconds_count', op='write') == 2
    assert value(found, 'ovs_router_io_latency_seconds_sum', op='write') == 20.001
