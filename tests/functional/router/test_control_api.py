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

"""The control API of live routers: authentication, errors that change
nothing, and the volume life cycle through any router."""

import pytest
import requests

from ovs_daemon.api import errors as api_errors
from tests.functional.clients import qemu_io

pytestmark = pytest.mark.slow
MiB = 1 << 20


def raw_call(vpool, method, path, token=None, **kwargs):
    api = vpool.router('r1')['api']
    headers = {'Content-Type': 'application/json'}
    if token:
        headers['Authorization'] = 'Bearer %s' % token
    return requests.request(method, api + path, headers=headers, timeout=10, **kwargs)


def test_every_call_needs_the_token(vpool):
    for method, path in (('GET', '/v1/health'), ('GET', '/metrics'),
                         ('GET', '/v1/volumes'), ('POST', '/v1/volumes')):
        for token in (None, 'wrong-token'):
            answer = raw_call(vpool, method, path, token=token, json={'name': 'x', 'size': 4096})
            assert answer.status_code == 401
            assert answer.json()['error']['type'] == 'Unauthorized'
    assert raw_call(vpool, 'GET', '/v1/volumes', token=vpool.token).json() == {'volumes': []}


def test_health_counts_the_served_volumes_and_lists_them_unless_asked_for_the_count(vpool):
    """Peers ask for the count before every handover and at every
    placement: the names of every volume served each time would not do."""
    api = vpool.client('r1')
    for name in ('v1', 'v2'):
        api.create_volume(name, 16 * MiB, router='r1')
    health = api.health()
    assert (health['served'], health['served_count']) == (['v1', 'v2'], 2)
    counted = raw_call(vpool, 'GET', '/v1/health?served=count', token=vpool.token).json()
    assert counted['served_count'] == 2 and 'served' not in counted
    assert counted['zookeeper'] == 'connected'


@pytest.mark.parametrize('body, status', [
    (b'{not json', 400),
    (b'[1, 2]', 400),
    (b'{"name": "v/1", "size": 4096}', 400),
    (b'{"name": "v1", "size": 1000}', 400),
    (b'{"name": "v1", "size": "big"}', 400),
    (b'{"name": "v1"}', 400),
    (b'{"name": "v1", "size": 4096, "router": "nope"}', 404),
    (b'{"name": "v1", "source": {"volume": "missing", "snapshot": "s"}}', 404),
])
def test_bad_create_requests_get_json_errors_and_create_nothing(vpool, body, status):
    answer = raw_call(vpool, 'POST', '/v1/volumes', token=vpool.token, data=body)
    assert answer.status_code == status, answer.text
    assert answer.json()['error']['code'] == status
    assert answer.json()['error']['message']
    assert vpool.client().volumes() == []


def test_conflicts_and_missing_things(vpool):
    api = vpool.client()
    api.create_volume('v1', 16 * MiB)
    with pytest.raises(api_errors.Conflict):
        api.create_volume('v1', 16 * MiB)
    with pytest.raises(api_errors.Conflict):
        api.extend_volume('v1', 8 * MiB)
    with pytest.raises(api_errors.NotFound):
        api.volume('nope')
    with pytest.raises(api_errors.NotFound):
        api.revert('v1', 'no-such-snapshot')
    with pytest.raises(api_errors.NotFound):
        api.delete_volume('nope')
    assert api.volume('v1')['size'] == 16 * MiB


def test_volume_life_cycle_snapshot_clone_revert_delete(vpool):
    api = vpool.client()
    record = api.create_volume('v1', 16 * MiB, router='r1')
    uri = vpool.nbd_uri('r1', 'v1')
    qemu_io(uri, 'write -P 0x11 0 1M', 'flush')
    api.create_snapshot('v1', 's1')
    qemu_io(uri, 'write -P 0x22 0 1M', 'flush')

    clone = api.create_volume('c1', 32 * MiB, router='r2',
                              source={'volume': 'v1', 'snapshot': 's1'})
    assert clone['parent'] == {'volume': 'v1', 'snapshot': 's1'}
    clone_uri = vpool.nbd_uri('r2', 'c1')
    assert 'verification failed' not in qemu_io(clone_uri, 'read -P 0x11 0 1M',
                                                'read -P 0 16M 1M')
    copy = api.create_volume('c2', None, source={'volume': 'v1'})
    assert copy['size'] == record['size']

    api.revert('v1', 's1')
    assert 'verification failed' not in qemu_io(uri, 'read -P 0x11 0 1M')
    api.delete_snapshot('v1', 's1')
    assert [s['name'] for s in api.snapshots('v1')] == ['clone-c2']

    stats = api.stats()
    assert stats['volumes'] == 3
    assert stats['provisioned_bytes'] == 16 * MiB + 32 * MiB + 16 * MiB
    assert stats['used_bytes'] > 1 * MiB

    for name in ('c1', 'c2', 'v1'):
        api.delete_volume(name)
    assert api.volumes() == []


def test_attachment_tokens_are_issued_once_and_revoked(vpool):
    api = vpool.client()
    api.create_volume('v1', 16 * MiB)
    first = api.create_attachment('v1', 'host-a')
    api.create_attachment('v1', 'host-b')
    assert len(first['token']) >= 24
    assert api.volume('v1')['attachments'] == ['host-a', 'host-b']
    assert first['token'] not in str(api.volumes())
    api.delete_attachment('v1', 'host-a')
    api.delete_attachment('v1', 'host-a')
    assert api.volume('v1')['attachments'] == ['host-b']
    api.delete_attachments('v1')
    assert api.volume('v1')['attachments'] == []


def test_metrics_count_io_and_ownership_changes(vpool):
    api = vpool.client()
    api.create_volume('v1', 16 * MiB, router='r1')
    qemu_io(vpool.nbd_uri('r1', 'v1'), 'write -P 1 0 64k', 'flush')
    api.migrate('v1', 'r2')
    r1 = vpool.client('r1').metrics()
    r2 = vpool.client('r2').metrics()
    assert 'ovs_router_io_requests_total{op="write"}' in r1
    assert 'ovs_router_ownership_changes_total{kind="released"} 1.0' in r1
    assert 'ovs_router_ownership_changes_total{kind="handover"} 1.0' in r2
