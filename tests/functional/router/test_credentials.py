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

"""Credentials by role on live routers: what the edge credential may call,
a rotation without a restart, and an NBD session for everybody only with a
credential (an attachment token, or an operator's short-lived one)."""

import os

import pytest
import requests

from tests.functional.clients import qemu_io
from tests.functional.clients import tcp_uri

pytestmark = pytest.mark.slow
MiB = 1 << 20


def call(vpool, method, path, token_file, router='r1', **kwargs):
    with open(token_file) as f:
        token = f.readline().strip()
    return requests.request(method, vpool.router(router)['api'] + path, timeout=30,
                            headers={'Authorization': 'Bearer %s' % token}, **kwargs)


ADMIN_ONLY = [
    ('GET', '/v1/health', None),
    ('GET', '/metrics', None),
    ('GET', '/v1/stats', None),
    ('GET', '/v1/volumes', None),
    ('POST', '/v1/volumes', {'name': 'made-by-an-edge', 'size': 4096}),
    ('GET', '/v1/volumes/v1', None),
    ('DELETE', '/v1/volumes/v1', None),
    ('POST', '/v1/volumes/v1/extend', {'size': 128 * MiB}),
    ('GET', '/v1/volumes/v1/snapshots', None),
    ('POST', '/v1/volumes/v1/snapshots', {'name': 's1'}),
    ('POST', '/v1/volumes/v1/revert', {'snapshot': 's1'}),
    ('POST', '/v1/volumes/v1/migrate', {'router': 'r2'}),
    ('POST', '/v1/volumes/v1/handover', {'to': 'r2', 'epoch': 1}),
    ('POST', '/v1/volumes/v1/credentials', {}),
    ('POST', '/v1/volumes/v1/attachments', {'host': 'evil'}),
    ('DELETE', '/v1/volumes/v1/attachments/hv1', None),
    ('DELETE', '/v1/volumes/v1/attachments', None),
    ('POST', '/v1/volumes/v1/acquire', {'mode': 'normal'}),
    ('POST', '/v1/volumes/v1/acquire', {'mode': 'failover'}),
]


def test_the_edge_credential_locates_and_fails_over_and_nothing_else(vpool):
    """A compromised hypervisor holds the edge credential: it can neither
    create, delete, snapshot nor move a volume, nor get a credential to read
    one, nor revoke or forge attachments."""
    api = vpool.client()
    api.create_volume('v1', 64 * MiB, router='r1')
    token = api.create_attachment('v1', 'hv1')['token']
    edge = vpool.edge_token_file

    for method, path, body in ADMIN_ONLY:
        answer = call(vpool, method, path, edge, json=body)
        assert answer.status_code == 403, (method, path, answer.text)
        assert answer.json()['error']['type'] == 'Forbidden'
    record = api.volume('v1')
    assert (record['owner'], record['epoch'], record['attachments']) == ('r1', 1, ['hv1'])
    assert [v['name'] for v in api.volumes()] == ['v1']
    assert api.snapshots('v1') == []

    assert call(vpool, 'GET', '/v1/routers', edge).status_code == 200
    assert call(vpool, 'GET', '/v1/volumes/v1/locate', edge).json()['owner'] == 'r1'
    revoked = call(vpool, 'POST', '/v1/volumes/v1/acquire', edge, router='r2',
                   json={'mode': 'failover', 'attachment': 'not-current'})
    assert revoked.status_code == 403
    assert api.locate('v1')['owner'] == 'r1'
    moved = call(vpool, 'POST', '/v1/volumes/v1/acquire', edge, router='r2',
                 json={'mode': 'failover', 'attachment': token})
    assert moved.status_code == 200 and moved.json()['owner'] == 'r2'


def test_a_rotation_keeps_two_tokens_valid_and_needs_no_restart(vpool, tmp_path):
    old = vpool.token
    new_file = tmp_path / 'new-token'
    new_file.write_text('rotated-admin-token\n')
    os.chmod(new_file, 0o600)
    pids = [vpool.router(r)['pid'] for r in vpool.router_ids()]

    def accepted(token_file):
        return call(vpool, 'GET', '/v1/volumes', str(token_file)).status_code == 200

    with open(vpool.token_file, 'w') as f:
        f.write('rotated-admin-token\n%s\n' % old)
    vpool.wait_until(lambda: accepted(new_file), timeout=10, what='the new token')
    assert accepted(vpool.token_file)          # the old one (second line) too

    with open(vpool.token_file, 'w') as f:
        f.write('rotated-admin-token\n')
    old_file = tmp_path / 'old-token'
    old_file.write_text(old + '\n')
    vpool.wait_until(lambda: not accepted(old_file), timeout=10, what='the old token refused')
    assert accepted(new_file)
    # Routers forward and hand over with the new one too.
    assert call(vpool, 'POST', '/v1/volumes', str(new_file), router='r1',
                json={'name': 'v2', 'size': 4096, 'router': 'r3'}).status_code == 201
    assert [vpool.router(r)['pid'] for r in vpool.router_ids()] == pids


def test_every_nbd_session_presents_a_credential(vpool):
    """Also while the volume has no attachment: a session without any
    credential can no longer slip in before the first attachment and
    outlive it."""
    api = vpool.client()
    api.create_volume('v1', 16 * MiB, router='r1')
    address = vpool.router('r1')['nbd']

    bare = qemu_io(tcp_uri(address, 'v1'), 'read 0 4k', expect_ok=False)
    assert 'needs a credential' in bare
    forged = qemu_io(tcp_uri(address, 'v1/tool.9999999999.00'), 'read 0 4k', expect_ok=False)
    assert 'not current' in forged
    other = api.create_credential('v1')['token']
    api.create_volume('v2', 16 * MiB, router='r1')
    assert 'not current' in qemu_io(tcp_uri(address, 'v2/%s' % other), 'read 0 4k',
                                    expect_ok=False)

    operator = tcp_uri(address, 'v1/%s' % api.create_credential('v1', ttl=60)['token'])
    assert 'verification failed' not in qemu_io(operator, 'write -P 7 0 64k', 'flush',
                                                'read -P 7 0 64k')
    guest = tcp_uri(address, 'v1/%s' % api.create_attachment('v1', 'hv1')['token'])
    assert 'verification failed' not in qemu_io(guest, 'read -P 7 0 64k')
