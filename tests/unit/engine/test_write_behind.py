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

"""A sealed container goes to the backend before the flush that commits
it, and nothing of that changes what a flush, a fenced owner or a crash
leaves behind."""

import os
import signal
import subprocess
import sys

import pytest

from ovs_daemon.backends import base
from ovs_daemon.backends import local
from ovs_daemon.devcluster import cluster as cluster_mod
from ovs_daemon.engine import records
from ovs_daemon.engine import store as store_mod
from ovs_daemon.engine import volume as volume_mod
from tests.unit.engine import stores
from tests.unit.faulty_backend import FaultyBackend

BLOCK = volume_mod.BLOCK_SIZE
CONTAINER = 16 * BLOCK
TUNING = volume_mod.Tuning(container_bytes=CONTAINER)


@pytest.fixture
def store(request, tmp_path):
    return stores.on_backend(request, tmp_path, TUNING)


ON_EACH_BACKEND = stores.ON_EACH_BACKEND


def key(epoch):
    return base.OwnerKey.generate(epoch)


def containers_in(backend, namespace):
    return backend.list(namespace, records.CONTAINER_PREFIX)


def fill(n):
    return bytes([n % 251 + 1]) * CONTAINER


@ON_EACH_BACKEND
def test_a_sealed_container_is_in_the_backend_before_the_flush(store):
    vol = store.create('v', 8 * CONTAINER, key(1))
    vol.write(0, fill(1))
    vol.write(CONTAINER, b'x' * BLOCK)      # seals the first container

    cluster_mod.Cluster.wait_until(lambda: containers_in(store.backend, 'v'), 10,
                                   'the sealed container written')
    [name] = containers_in(store.backend, 'v')
    assert store.backend.get('v', name) == fill(1)

    vol.flush()
    assert containers_in(store.backend, 'v')[0] == name   # not written again
    assert store.open('v', key(2)).read(0, CONTAINER + BLOCK) == fill(1) + b'x' * BLOCK


@ON_EACH_BACKEND
def test_a_fenced_owners_containers_written_behind_never_become_visible(store):
    stale = store.create('v', 8 * CONTAINER, key(1))
    stale.write(0, fill(1))
    stale.write(CONTAINER, fill(2))
    cluster_mod.Cluster.wait_until(lambda: containers_in(store.backend, 'v'), 10,
                                   'a sealed container written')

    owner = store.open('v', key(2))
    stale.write(2 * CONTAINER, fill(3))     # sealed, written behind under the old key
    with pytest.raises(base.Fenced):
        stale.flush()

    assert stale.halted
    assert owner.read(0, 3 * CONTAINER) == bytes(3 * CONTAINER)
    store.collect(owner)
    assert containers_in(store.backend, 'v') == []


def test_a_failed_put_behind_fails_the_next_flush_and_loses_nothing(tmp_path):
    backend = FaultyBackend(tmp_path / 'backend')
    store = store_mod.VolumeStore(backend, TUNING)
    vol = store.create('v', 8 * CONTAINER, key(1))
    backend.failures_left = 1
    vol.write(0, fill(1))
    vol.write(CONTAINER, fill(2))           # seals the first: its put fails
    cluster_mod.Cluster.wait_until(lambda: backend.failures_left == 0, 10,
                                   'the put behind attempted')

    with pytest.raises(base.BackendError):
        vol.flush()
    assert vol.read(0, 2 * CONTAINER) == fill(1) + fill(2)

    vol.flush()                             # puts it again itself
    assert store.open('v', key(2)).read(0, 2 * CONTAINER) == fill(1) + fill(2)


# Writes a committed container, then writes on without a flush until it
# is killed.
_WRITER = """
import sys
import time
from ovs_daemon.backends import base, local
from ovs_daemon.engine import volume
backend = local.LocalBackend(sys.argv[1])
tuning = volume.Tuning(container_bytes=%d)
vol = volume.Volume.create(backend, 'v', 1 << 30, base.OwnerKey.generate(1), tuning=tuning)
vol.write(0, b'A' * %d)
vol.flush()
offset = %d
while True:
    vol.write(offset, b'B' * %d)
    offset = offset %% (1 << 29) + %d
    time.sleep(0.001)
""" % ((CONTAINER,) * 5)


def test_an_owner_killed_while_containers_are_written_behind_leaves_its_last_flush(tmp_path):
    root = tmp_path / 'backend'
    writer = subprocess.Popen([sys.executable, '-c', _WRITER, str(root)])
    backend = local.LocalBackend(root)
    try:
        cluster_mod.Cluster.wait_until(lambda: backend.namespace_exists('v')
                                       and len(containers_in(backend, 'v')) >= 3, 10,
                                       'containers written behind')
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()

    store = store_mod.VolumeStore(backend, TUNING)
    owner = store.open('v', key(2))
    assert owner.read(0, 3 * CONTAINER) == b'A' * CONTAINER + bytes(2 * CONTAINER)
    store.collect(owner)
    [kept] = containers_in(backend, 'v')
    assert backend.get('v', kept) == b'A' * CONTAINER
