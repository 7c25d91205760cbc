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


"""The Prometheus metrics of the routers and the edge, scraped from real
processes, and the Grafana dashboard shipped in etc/grafana: every metric
the dashboard queries is exported."""

import json
import os
import re

import pytest
import requests

from ovs_daemon.devcluster import metrics_page
from tests.functional.clients import qemu_io

pytestmark = pytest.mark.slow
MiB = 1 << 20
DASHBOARD = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'etc', 'grafana',
                         'ovs-vpool-dashboard.json')


def scrape(url, token=None):
    """``{(sample name, frozenset of labels): value}`` of one /metrics page."""
    headers = {'Authorization': 'Bearer %s' % token} if token else {}
    answer = requests.get(url, headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    return metrics_page.samples(answer.text)


value = metrics_page.value


def dashboard_metrics():
    with open(DASHBOARD) as f:
        dashboard = json.load(f)
    exprs = [target['expr'] for panel in dashboard['panels'] for target in panel['targets']]
    assert exprs
    return {name for expr in exprs for name in re.findall(r'\b(ovs_[a-z_]+)\b', expr)}


def test_the_edge_exports_its_volumes_and_the_dashboard_finds_every_metric(vpool,
                                                                          hypervisors):
    api = vpool.client()
    api.create_volume('v1', 64 * MiB, router='r1')
    hva = hypervisors['hva']
    uri = 'nbd+unix:///v1?socket=%s' % hva.attach('v1')
    qemu_io(uri, 'write -P 1 0 1M', 'flush')
    edge_url = vpool.edge('hva')['metrics']

    edge = scrape(edge_url)
    assert value(edge, 'ovs_edge_attachments', host='hva') == 1
    assert value(edge, 'ovs_edge_volume_state', vpool='default', volume='v1',
                 state='connected') == 1
    assert value(edge, 'ovs_edge_volume_owner', vpool='default', volume='v1',
                 router='r1') == 1
    assert value(edge, 'ovs_edge_volume_failovers_total', vpool='default', volume='v1') == 0

    api.migrate('v1', 'r2')
    qemu_io(uri, 'write -P 2 0 64k', 'read -P 2 0 64k')
    vpool.wait_until(lambda: value(scrape(edge_url), 'ovs_edge_volume_failovers_total',
                                   vpool='default', volume='v1') == 1,
                     timeout=10, what='the edge counting the followed handover')
    edge = scrape(edge_url)
    assert value(edge, 'ovs_edge_volume_owner', vpool='default', volume='v1',
                 router='r2') == 1
    assert value(edge, 'ovs_edge_volume_epoch', vpool='default', volume='v1') == 2
    assert value(edge, 'ovs_edge_volume_last_pause_seconds', vpool='default', volume='v1') > 0
    # qemu-io flushes before it exits: nothing is kept for replay.
    assert value(edge, 'ovs_edge_volume_journal_entries', vpool='default', volume='v1') == 0
    assert value(edge, 'ovs_edge_volume_journal_bytes', vpool='default', volume='v1') == 0

    r1 = scrape(vpool.router('r1')['api'] + '/metrics', vpool.token)
    assert value(r1, 'ovs_router_io_bytes_total', op='write') >= MiB
    assert value(r1, 'ovs_router_zookeeper_connected') == 1
    assert value(r1, 'ovs_router_ownership_changes_total', kind='released') == 1
    assert value(r1, 'ovs_router_backend_errors_total', op='flush') == 0

    exported = {name for page in [edge, r1] + [
        scrape(vpool.router(r)['api'] + '/metrics', vpool.token) for r in ('r2', 'r3')]
        for name, _ in page}
    assert dashboard_metrics() - exported == set()
