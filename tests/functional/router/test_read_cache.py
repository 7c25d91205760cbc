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

"""A router on s3 serves repeated reads from its read cache, counts them in
its metrics, and finds the cache warm after a SIGKILL and a restart."""

import pytest

from ovs_daemon.devcluster import metrics_page
from tests.functional.clients import qemu_io
from tests.functional.router.test_admin import admin

pytestmark = pytest.mark.slow


def cache_counter(vpool, name):
    return metrics_page.value(metrics_page.samples(vpool.client('r1').metrics()),
                              'ovs_router_read_cache_%s' % name)


def test_reads_hit_the_cache_and_it_is_warm_after_a_restart(make_vpool):
    vpool = make_vpool(routers=1, s3={})
    admin(vpool, 'create', 'v1', '16M')
    uri = vpool.nbd_uri('r1', 'v1')
    qemu_io(uri, 'write -P 7 0 4M', 'flush')
    assert 'verification failed' not in qemu_io(uri, 'read -P 7 0 4M')
    fetched = cache_counter(vpool, 'fetched_bytes_total')
    assert fetched >= 4 << 20
    assert 'verification failed' not in qemu_io(uri, 'read -P 7 0 4M')
    assert cache_counter(vpool, 'fetched_bytes_total') == fetched
    assert cache_counter(vpool, 'hits_total') >= 64

    vpool.kill_router('r1')
    vpool.start_router('r1')
    admin(vpool, 'acquire', 'v1')
    assert 'verification failed' not in qemu_io(uri, 'read -P 7 0 4M')
    assert cache_counter(vpool, 'fetched_bytes_total') == 0
    assert cache_counter(vpool, 'hits_total') >= 64
