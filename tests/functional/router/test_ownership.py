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

"""Ownership moves between live router processes: planned migrate, kill -9
and failover, restart, and what the old owner answers afterwards."""

import os

import pytest

from ovs_daemon.api import errors as api_errors
from ovs_daemon.router import ownership
from tests.functional.clients import qemu_io

pytestmark = pytest.mark.slow
MiB = 1 << 20


def test_planned_migrate_keeps_the_data_and_the_old_owner_refuses(vpool):
    api = vpool.client()
    record = api.create_volume('v1', 64 * MiB, router='r1')
    assert (record['owner'], record['epoch']) == ('r1', 1)
    qemu_io(vpool.nbd_uri('r1', 'v1'), 'write -P 0xa5 4096 3M', 'flush')

    location = api.migrate('v1', 'r2')

    assert (location['owner'], location['epoch']) == ('r2', 2)
    assert api.volume('v1')['transfer']['kind'] == 'handover'
    assert api.volume('v1')['transfer']['from'] == 'r1'
    out = qemu_io(vpool.nbd_uri('r2', 'v1'), 'read -P 0xa5 4096 3M', 'read -P 0 0 4096')
    assert 'verification failed' not in out
    refused = qemu_io(vpool.nbd_uri('r1', 'v1'), 'read 0 4k', expect_ok=False)
    assert 'server reported: volume v1 is owned by r2' in refused


def test_kill_9_of_the_owner_then_failover_acquire_steals_with_epoch_plus_one(vpool):
    api = vpool.client()
    api.create_volume('v1', 64 * MiB, router='r1')
    qemu_io(vpool.nbd_uri('r1', 'v1'), 'write -P 0x3c 0 8M', 'flush')

    vpool.kill_router('r1')
    location = vpool.client('r2').acquire('v1', mode='failover')

    assert (location['owner'], location['epoch']) == ('r2', 2)
    assert api.volume('v1')['transfer'] == {
        'kind': 'steal', 'from': 'r1', 'at': api.volume('v1')['transfer']['at']}
    out = qemu_io(vpool.nbd_uri('r2', 'v1'), 'read -P 0x3c 0 8M')
    assert 'verification failed' not in out


def test_normal_acquire_does_not_steal_from_an_unreachable_owner(vpool):
    api = vpool.client()
    api.create_volume('v1', 16 * MiB, router='r1')
    vpool.kill_router('r1')
    with pytest.raises(api_errors.Unavailable, match='cannot hand it over'):
        vpool.client('r2').acquire('v1', mode='normal')
    assert api.volume('v1')['owner'] == 'r1'
    assert api.volume('v1')['epoch'] == 1


def test_a_restarted_router_takes_its_volumes_back(vpool):
    api = vpool.client()
    api.create_volume('v1', 16 * MiB, router='r1')
    qemu_io(vpool.nbd_uri('r1', 'v1'), 'write -P 0x77 0 1M', 'flush')
    vpool.kill_router('r1')
    vpool.start_router('r1')
    vpool.wait_until(lambda: 'v1' in vpool.client('r1').health()['served'])
    record = api.volume('v1')
    assert (record['owner'], record['epoch'], record['transfer']['kind']) == (
        'r1', 2, 'restart')
    assert 'verification failed' not in qemu_io(vpool.nbd_uri('r1', 'v1'), 'read -P 0x77 0 1M')


def give_key(fifo, key_bytes):
    """The hung read gets its key and goes on; with no reader (yet), the
    FIFO becomes the key file again."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        os.unlink(fifo)
        with open(fifo, 'wb') as f:
            f.write(key_bytes)
        return
    os.set_blocking(fd, True)
    os.write(fd, key_bytes)
    os.close(fd)


def test_a_restarted_router_takes_back_its_volumes_past_one_whose_backend_hangs(vpool):
    """A router taking its volumes back after a restart does not serve them
    one after the other: a volume whose backend read hangs (its owner key
    here is a FIFO nobody writes yet) keeps only itself unserved."""
    api = vpool.client()
    names = ['a-hangs'] + ['v%d' % i for i in range(6)]
    for name in names:
        api.create_volume(name, 16 * MiB, router='r1')
    qemu_io(vpool.nbd_uri('r1', 'a-hangs'), 'write -P 0x42 0 1M', 'flush')
    vpool.kill_router('r1')
    key = os.path.join(vpool.state['backend'], 'a-hangs', '.key')
    with open(key, 'rb') as f:
        key_bytes = f.read()
    os.unlink(key)
    os.mkfifo(key)
    try:
        vpool.start_router('r1')
        vpool.wait_until(lambda: set(names[1:]) <= set(vpool.client('r1').health()['served']),
                         timeout=60, what='the other volumes served again')
        assert 'a-hangs' not in vpool.client('r1').health()['served']
    finally:
        give_key(key, key_bytes)
    vpool.wait_until(lambda: 'a-hangs' in vpool.client('r1').health()['served'], timeout=30)
    assert 'verification failed' not in qemu_io(vpool.nbd_uri('r1', 'a-hangs'),
                                                'read -P 0x42 0 1M')


def test_a_restarted_router_leaves_a_volume_taken_while_it_waited_its_turn(vpool):
    """A restarted router takes its volumes back a few at a time. One that
    another router took meanwhile (as an edge failing over has it done)
    stays there: asking for it back would move it twice for nothing."""
    api = vpool.client()
    hung = ['a-hangs-%d' % i for i in range(ownership.ADOPT_CONCURRENCY)]
    for name in hung + ['v-moved']:
        api.create_volume(name, 16 * MiB, router='r1')
    vpool.kill_router('r1')
    keys = {}
    for name in hung:
        key = os.path.join(vpool.state['backend'], name, '.key')
        with open(key, 'rb') as f:
            keys[key] = f.read()
        os.unlink(key)
        os.mkfifo(key)
    try:
        vpool.start_router('r1')
        # Every slot holds a volume whose backend hangs: r1 listed v-moved
        # as its own and waits for a slot to take it back.
        vpool.wait_until(lambda: all(api.volume(name)['epoch'] == 2 for name in hung),
                         what='r1 taking back the volumes whose backend hangs')
        vpool.client('r2').acquire('v-moved', mode='failover')
    finally:
        for key, key_bytes in keys.items():
            give_key(key, key_bytes)
    vpool.wait_until(lambda: set(hung) <= set(vpool.client('r1').health()['served']),
                     timeout=30, what='the other volumes served again')
    vpool.wait_until(lambda: any(decision in vpool.log_text('r1').rsplit('serving NBD on', 1)[1]
                                 for decision in ('Not taking back volume v-moved',
                                                  'Took volume v-moved')),
                     what='r1 deciding on v-moved')
    record = api.volume('v-moved')
    assert (record['owner'], record['epoch']) == ('r2', 2)


def test_a_new_volume_goes_to_the_router_serving_fewest_but_never_to_a_hung_one(vpool):
    """Placement asks each router what it serves (not every volume record
    for each create); r3 serves the fewest but is hung, with its ZooKeeper
    session still alive: the volume goes elsewhere and the create does not
    wait for r3."""
    api = vpool.client('r1')
    api.create_volume('a', 16 * MiB, router='r1')
    api.create_volume('b', 16 * MiB, router='r2')
    api.create_volume('c', 16 * MiB, router='r2')
    assert api.create_volume('d', 16 * MiB)['owner'] == 'r3'
    api.migrate('d', 'r1')
    vpool.pause_router('r3')
    try:
        record = api.create_volume('e', 16 * MiB)
    finally:
        vpool.resume_router('r3')
    assert record['owner'] in ('r1', 'r2')
    assert 'e' in vpool.client(record['owner']).health()['served']


def test_any_router_answers_by_forwarding_to_the_owner(vpool):
    api_r3 = vpool.client('r3')
    api_r3.create_volume('v1', 16 * MiB, router='r1')
    api_r3.create_snapshot('v1', 's1')
    assert [s['name'] for s in vpool.client('r2').snapshots('v1')] == ['s1']
    api_r3.extend_volume('v1', 32 * MiB)
    assert vpool.client('r1').volume_stats('v1')['size'] == 32 * MiB
    assert vpool.client('r1').health()['served'] == ['v1']
    assert vpool.client('r3').health()['served'] == []


def test_failover_acquire_steals_at_once_from_a_hung_owner(make_vpool):
    # A handover_timeout far longer than the client waits: the acquire
    # must not wait for the hung owner's handover answer at all.
    vpool = make_vpool(routers=2, options={'router': {'handover_timeout': 60.0}})
    api = vpool.client()
    api.create_volume('v1', 16 * MiB, router='r1')
    qemu_io(vpool.nbd_uri('r1', 'v1'), 'write -P 0x6b 0 1M', 'flush')

    vpool.pause_router('r1')
    try:
        location = vpool.client('r2', timeout=8.0).acquire('v1', mode='failover')
    finally:
        vpool.resume_router('r1')

    assert (location['owner'], location['epoch']) == ('r2', 2)
    assert api.volume('v1')['transfer']['kind'] == 'steal'
    out = qemu_io(vpool.nbd_uri('r2', 'v1'), 'read -P 0x6b 0 1M')
    assert 'verification failed' not in out
    # Woken up, the old owner sees the record change and halts its copy.
    vpool.wait_until(lambda: 'v1' in vpool.client('r1').health()['halted'], timeout=30)
