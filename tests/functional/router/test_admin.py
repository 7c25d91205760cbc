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

"""ovs-admin against a live vPool, as an operator runs it."""

import json
import os
import re
import subprocess
import sys

import pytest

from tests.functional.clients import qemu_io

pytestmark = pytest.mark.slow
ADMIN = os.path.join(os.path.dirname(sys.executable), 'ovs-admin')


def admin(vpool, *args, expect=0):
    result = subprocess.run([ADMIN, '--cluster', vpool.state_path, *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == expect, result.stdout + result.stderr
    assert 'Traceback' not in result.stderr
    return result.stdout + result.stderr


def test_status_shows_routers_volumes_owners_and_an_unreachable_router(vpool):
    admin(vpool, 'create', 'v1', '1G', '--router', 'r1')
    admin(vpool, 'create', 'v2', '64M', '--router', 'r3')
    admin(vpool, 'snapshot', 'v1', 's1')
    admin(vpool, 'clone', 'v1@s1', 'c1', '--size', '2G')
    admin(vpool, 'migrate', 'v1', 'r2')
    vpool.kill_router('r3')
    out = admin(vpool, 'status')
    routers = out.split('Volumes')[0]
    assert [line for line in routers.splitlines() if line.startswith('r3')][0].split()[4] == \
        'unreachable'
    volumes = {line.split()[0]: line.split() for line in out.split('Volumes')[1].splitlines()[2:]
               if line.strip() and not line.startswith('vPool')}
    assert volumes['v1'][:5] == ['v1', '1.0', 'GiB', 'r2', '2']
    assert volumes['v2'][3:5] == ['r3', '(unreachable)']
    assert volumes['c1'][-1] == 'v1@s1'
    record = json.loads(admin(vpool, '--json', 'show', 'v1'))
    assert record['transfer']['kind'] == 'handover'


def test_errors_are_one_line_and_exit_1(vpool):
    admin(vpool, 'create', 'v1', '1G')
    assert 'already exists' in admin(vpool, 'create', 'v1', '1G', expect=1)
    assert 'does not exist' in admin(vpool, 'delete', 'nope', expect=1)
    assert 'bad size' in admin(vpool, 'extend', 'v1', 'big', expect=1)


def test_attach_prints_a_uri_real_clients_use_and_detach_revokes(vpool, tmp_path):
    vpool.add_edge('hv1', site='a')
    admin(vpool, 'create', 'v1', '64M')
    uri = admin(vpool, 'attach', 'v1').strip()
    assert uri.startswith('nbd+unix:///v1?socket=')
    assert 'verification failed' not in qemu_io(uri, 'write -P 5 0 1M', 'read -P 5 0 1M')
    assert json.loads(admin(vpool, '--json', 'show', 'v1'))['attachments'] == ['hv1']
    assert admin(vpool, 'detach', 'v1').strip() == 'detached v1'
    assert json.loads(admin(vpool, '--json', 'show', 'v1'))['attachments'] == []
    assert 'not attached here' in admin(vpool, 'detach', 'v1')


def test_status_json_prints_routers_volumes_and_totals_as_json(vpool):
    admin(vpool, 'create', 'v1', '1G', '--router', 'r1')
    admin(vpool, 'create', 'v2', '64M', '--router', 'r3')
    vpool.kill_router('r3')
    status = json.loads(admin(vpool, '--json', 'status'))
    routers = {r['id']: r for r in status['routers']}
    assert routers['r1']['state'] == 'up' and routers['r1']['zookeeper'] == 'connected'
    assert routers['r1']['serves'] == 1
    assert routers['r3']['state'] == 'unreachable'
    volumes = {v['name']: v for v in status['volumes']}
    assert (volumes['v1']['owner'], volumes['v1']['owner_state']) == ('r1', 'up')
    assert (volumes['v2']['owner'], volumes['v2']['owner_state']) == ('r3', 'unreachable')
    assert status['vpool']['volumes'] == 2


def test_attachment_create_gives_the_export_name_a_real_client_presents(vpool):
    admin(vpool, 'create', 'v1', '64M', '--router', 'r2')
    attachment = json.loads(admin(vpool, '--json', 'attachment-create', 'v1', 'tool-host'))
    assert attachment['export'] == 'v1/%s' % attachment['token']
    assert attachment['uri'] == 'nbd://%s/%s' % (vpool.router('r2')['nbd'],
                                                 attachment['export'])
    assert 'verification failed' not in qemu_io(attachment['uri'], 'write -P 7 0 64k',
                                                'read -P 7 0 64k')
    bare = qemu_io('nbd://%s/v1' % vpool.router('r2')['nbd'], 'read 0 4k', expect_ok=False)
    assert 'attachment token' in bare
    assert json.loads(admin(vpool, '--json', 'show', 'v1'))['attachments'] == ['tool-host']

    admin(vpool, 'attachment-delete', 'v1', 'tool-host')
    revoked = qemu_io(attachment['uri'], 'read 0 4k', expect_ok=False)
    assert 'not current' in revoked or 'Requested export not available' in revoked


def test_a_migrate_whose_target_died_fails_with_one_line_and_the_volume_state(vpool):
    admin(vpool, 'create', 'v1', '64M', '--router', 'r1')
    # Killed, but still registered until its ZooKeeper session expires.
    vpool.kill_router('r3')
    out = admin(vpool, 'migrate', 'v1', 'r3', expect=1)
    assert len(out.strip().splitlines()) == 1, out
    assert out.startswith('ovs-admin: error: migrate of v1 to r3 failed: target router r3 '
                          'did not answer')
    assert re.search(r'v1 is served by r1, epoch \d+$', out.strip()), out


def test_drain_moves_everything_off_a_running_router_and_undrain_lets_placement_back(vpool):
    admin(vpool, 'create', 'v1', '64M', '--router', 'r1')
    admin(vpool, 'create', 'v2', '64M', '--router', 'r1')
    out = admin(vpool, 'drain', 'r1')
    assert out.splitlines()[0] == 'router r1 drained: 2 volume(s) moved, 0 left'
    assert vpool.client('r1').health()['served'] == []
    for name in ('v1', 'v2'):
        record = json.loads(admin(vpool, '--json', 'show', name))
        assert (record['owner'], record['transfer']['kind']) == ('r2', 'handover')
    # r1 owns the fewest volumes, but it is drained: placement passes it over,
    # and it takes no volume from others.
    assert json.loads(admin(vpool, '--json', 'create', 'v3', '64M'))['owner'] == 'r3'
    refused = admin(vpool, 'migrate', 'v3', 'r1', expect=1)
    assert 'router r1 is drained' in refused and len(refused.strip().splitlines()) == 1
    routers = {r['id']: r for r in json.loads(admin(vpool, '--json', 'status'))['routers']}
    assert (routers['r1']['drained'], routers['r2']['drained']) == (True, False)

    assert admin(vpool, 'undrain', 'r1').strip() == 'router r1 takes volumes again'
    assert json.loads(admin(vpool, '--json', 'create', 'v4', '64M'))['owner'] == 'r1'
