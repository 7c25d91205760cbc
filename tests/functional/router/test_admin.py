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
