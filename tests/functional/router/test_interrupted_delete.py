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

"""Deletes and creates that a router's death interrupted: any router
finishes the delete, and a parent kept for its clones goes with its last
clone."""

import contextlib
import os
import subprocess
import threading
import time

import pytest

from ovs_daemon.api import errors as api_errors
from ovs_daemon.backends import base as backends
from ovs_daemon.backends import local
from ovs_daemon.router import registry as registry_mod
from tests.functional.clients import qemu_io

pytestmark = pytest.mark.slow
MiB = 1 << 20


@contextlib.contextmanager
def namespace_refusing_writes(vpool, name):
    """Make the local backend's namespace ``name`` refuse every write
    until the block ends: each write starts with a file in its ``.tmp``,
    which an immutable directory refuses even to root."""
    tmp = os.path.join(vpool.state['backend'], name, '.tmp')
    subprocess.run(['chattr', '+i', tmp], check=True)
    try:
        yield
    finally:
        subprocess.run(['chattr', '-i', tmp], check=True)


def namespaces(vpool):
    return local.LocalBackend(vpool.state['backend']).list_namespaces()


def kill_and_wait_gone(vpool, router_id):
    """kill -9, then wait until ZooKeeper expired the router's session."""
    vpool.kill_router(router_id)
    others = vpool.client([r for r in vpool.router_ids() if r != router_id][0])
    vpool.wait_until(lambda: router_id not in [r['id'] for r in others.routers()],
                     what='the session of %s to expire' % router_id)


def delete_in_background(vpool, router_id, name):
    def delete():
        with contextlib.suppress(api_errors.ApiError):
            vpool.client(router_id).delete_volume(name)
    thread = threading.Thread(target=delete, daemon=True)
    thread.start()
    return thread


def test_a_delete_whose_router_died_is_finished_by_another_router(vpool):
    api = vpool.client('r3')
    api.create_volume('v1', 16 * MiB, router='r1')
    qemu_io(vpool.nbd_uri('r1', 'v1'), 'write -P 0x5a 0 1M', 'flush')
    api.create_snapshot('v1', 's1')
    api.create_volume('c1', 16 * MiB, router='r2', source={'volume': 'v1', 'snapshot': 's1'})

    # r1 marks v1 deleting, halts it, and then its first backend write of
    # the delete fails (v1 is kept for its clone): killed then, with
    # nothing of the delete in the backend.
    with namespace_refusing_writes(vpool, 'v1'):
        deleting = delete_in_background(vpool, 'r1', 'v1')
        vpool.wait_until(lambda: api.volume('v1')['state'] == 'deleting'
                         and 'v1' not in vpool.client('r1').health()['served'])
        time.sleep(0.5)
        kill_and_wait_gone(vpool, 'r1')
    deleting.join(30)

    api.delete_volume('v1')
    with pytest.raises(api_errors.NotFound):
        api.volume('v1')
    assert 'v1' in namespaces(vpool)  # kept: c1 reads through it
    out = qemu_io(vpool.nbd_uri('r2', 'c1'), 'read -P 0x5a 0 1M')
    assert 'verification failed' not in out

    api.delete_volume('c1')
    assert api.volumes() == []
    assert namespaces(vpool) == []


def test_a_create_that_died_before_its_metadata_can_be_deleted(vpool, kazoo_clients):
    # What a router killed in the middle of a create leaves: the record
    # naming it, a claimed namespace, no metadata.
    registry = registry_mod.Registry(kazoo_clients(vpool.state['zookeeper']),
                                     vpool.state['vpool'])
    registry.create_volume('v1', 16 * MiB, 'r1')
    backend = local.LocalBackend(vpool.state['backend'])
    backend.create_namespace('v1')
    backend.claim('v1', backends.OwnerKey.generate(1))
    vpool.kill_router('r1')
    vpool.start_router('r1')  # cannot take v1 back: it has no metadata
    api = vpool.client('r2')
    assert api.stats()['provisioned_bytes'] == 16 * MiB

    api.delete_volume('v1')

    with pytest.raises(api_errors.NotFound):
        api.volume('v1')
    assert namespaces(vpool) == []
    assert api.stats()['provisioned_bytes'] == 0


def test_the_collector_removes_a_parent_whose_last_clone_went_half_way(
        make_vpool, kazoo_clients):
    vpool = make_vpool(routers=2, options={'router': {'collect_interval': 1.0}})
    api = vpool.client('r2')
    api.create_volume('v1', 16 * MiB, router='r1')
    api.create_snapshot('v1', 's1')
    api.create_volume('c1', 16 * MiB, router='r1', source={'volume': 'v1', 'snapshot': 's1'})
    api.delete_volume('v1')
    assert sorted(namespaces(vpool)) == ['c1', 'v1']
    # The delete of c1 died after removing c1's namespace, before v1's and
    # before the record.
    registry = registry_mod.Registry(kazoo_clients(vpool.state['zookeeper']),
                                     vpool.state['vpool'])
    registry.mark_deleting('c1')
    kill_and_wait_gone(vpool, 'r1')
    local.LocalBackend(vpool.state['backend']).delete_namespace('c1')

    vpool.wait_until(lambda: namespaces(vpool) == [], timeout=15,
                     what='the collector to remove v1')
    api.delete_volume('c1')
    assert api.volumes() == []
