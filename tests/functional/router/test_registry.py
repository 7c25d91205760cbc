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

"""The vPool registry against a real ZooKeeper server."""

import queue
import threading
import time
import uuid

from kazoo import client as kazoo_client
import pytest

from ovs_daemon.devcluster import cluster as cluster_mod
from ovs_daemon.devcluster import zookeeper
from ovs_daemon.router import registry as registry_mod

pytestmark = pytest.mark.slow

SESSION_TIMEOUT = 4.0
wait_until = cluster_mod.Cluster.wait_until


@pytest.fixture(scope='module')
def zk_server(tmp_path_factory):
    server = zookeeper.ZooKeeperServer(str(tmp_path_factory.mktemp('zookeeper')))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def connect(zk_server, kazoo_clients):
    """Start a new KazooClient (its own session); all are closed at the end."""
    return lambda: kazoo_clients(zk_server.hosts, SESSION_TIMEOUT)


@pytest.fixture
def vpool():
    return 'vp-%s' % uuid.uuid4().hex[:10]


@pytest.fixture
def make_registry(connect, vpool):
    """A Registry of the test's vPool, on a new session each call."""
    def make():
        reg = registry_mod.Registry(connect(), vpool)
        reg.ensure_paths()
        return reg
    return make


@pytest.fixture
def reg(make_registry):
    return make_registry()


def router_info(router_id, site='site-a'):
    return {'id': router_id, 'site': site, 'nbd': '127.0.0.1:10809',
            'api': 'http://127.0.0.1:8080'}


def test_create_and_read(reg):
    created = reg.create_volume('vol1', 1 << 40, 'r1')
    record, version = reg.volume('vol1')
    assert record == created
    assert record['name'] == 'vol1'
    assert record['size'] == 1 << 40
    assert record['owner'] == 'r1'
    assert record['epoch'] == 1
    assert record['state'] == 'available'
    assert record['parent'] is None
    assert record['attachments'] == {}
    assert version == 0

    clone = reg.create_volume('vol2', 1 << 40, 'r1',
                              parent={'volume': 'vol1', 'snapshot': 'snap1'})
    assert reg.volume('vol2')[0]['parent'] == {'volume': 'vol1', 'snapshot': 'snap1'}
    assert reg.volumes() == {'vol1': created, 'vol2': clone}
    assert reg.client.exists('/ovs/%s/volumes/vol1' % reg.vpool) is not None


def test_missing_volume_and_bad_input(reg):
    with pytest.raises(registry_mod.VolumeRecordNotFound):
        reg.volume('nope')
    with pytest.raises(registry_mod.VolumeRecordNotFound):
        reg.take_ownership('nope', 'r1', None, 1)
    with pytest.raises(registry_mod.RegistryError):
        reg.create_volume('../escape', 1, 'r1')
    with pytest.raises(registry_mod.RegistryError):
        reg.create_volume('vol', 0, 'r1')
    with pytest.raises(registry_mod.RegistryError):
        reg.create_volume('vol', 1, 'r1', parent={'volume': 'x'})
    assert reg.volumes() == {}


def test_create_twice_raises_exists_and_keeps_the_first(reg):
    reg.create_volume('vol', 10, 'r1')
    reg.take_ownership('vol', 'r2', 'r1', 1)
    with pytest.raises(registry_mod.VolumeRecordExists):
        reg.create_volume('vol', 20, 'r3')
    record, _ = reg.volume('vol')
    assert (record['size'], record['owner'], record['epoch']) == (10, 'r2', 2)


def test_racing_take_ownership_has_exactly_one_winner(reg, make_registry):
    contenders = [make_registry() for _ in range(6)]
    reg.create_volume('vol', 10, 'r-old')
    owner, epoch = 'r-old', 1
    for _round in range(5):
        barrier = threading.Barrier(len(contenders))
        results = [None] * len(contenders)

        def race(index, owner=owner, epoch=epoch, barrier=barrier, results=results):
            barrier.wait()
            try:
                results[index] = contenders[index].take_ownership(
                    'vol', 'r%d' % index, owner, epoch)
            except registry_mod.Conflict as exc:
                results[index] = exc

        threads = [threading.Thread(target=race, args=(i,)) for i in range(len(contenders))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        winners = [r for r in results if isinstance(r, dict)]
        losers = [r for r in results if isinstance(r, registry_mod.Conflict)]
        assert len(winners) == 1, results
        assert len(losers) == len(contenders) - 1, results
        record, _ = reg.volume('vol')
        assert record['epoch'] == epoch + 1
        assert record['owner'] == winners[0]['owner']
        assert winners[0]['epoch'] == epoch + 1
        owner, epoch = record['owner'], record['epoch']
    assert epoch == 6


def test_release_then_take(reg):
    reg.create_volume('vol', 10, 'r1')
    released = reg.release_ownership('vol', 'r1', 1)
    assert (released['owner'], released['epoch']) == (None, 1)
    # Releasing again (a retried unknown outcome) changes nothing.
    assert reg.release_ownership('vol', 'r1', 1) == released
    with pytest.raises(registry_mod.Conflict):
        reg.take_ownership('vol', 'r2', 'r1', 1)  # r1 no longer owns it
    taken = reg.take_ownership('vol', 'r2', None, 1)
    assert (taken['owner'], taken['epoch']) == ('r2', 2)
    assert reg.volume('vol')[0] == taken
    with pytest.raises(registry_mod.NotOwner):
        reg.release_ownership('vol', 'r1', 1)
    with pytest.raises(registry_mod.NotOwner):
        reg.release_ownership('vol', 'r2', 1)  # right router, old epoch
    assert reg.volume('vol')[0] == taken


def test_stale_router_cannot_take_back_with_an_old_epoch(reg, make_registry):
    stale = make_registry()
    reg.create_volume('vol', 10, 'r1')
    # r2 steals from r1 at epoch 1.
    reg.take_ownership('vol', 'r2', 'r1', 1)
    before, version = reg.volume('vol')
    # r1 (split brain) still believes it owns the volume at epoch 1.
    with pytest.raises(registry_mod.Conflict):
        stale.take_ownership('vol', 'r1', 'r1', 1)
    with pytest.raises(registry_mod.Conflict):
        stale.take_ownership('vol', 'r3', 'r1', 1)
    with pytest.raises(registry_mod.NotOwner):
        stale.release_ownership('vol', 'r1', 1)
    assert reg.volume('vol') == (before, version)
    assert (before['owner'], before['epoch']) == ('r2', 2)


def test_update_volume_refuses_lowering_the_epoch_or_stealing_without_bump(reg):
    reg.create_volume('vol', 10, 'r1')
    reg.take_ownership('vol', 'r2', 'r1', 1)

    def lower(record):
        record['epoch'] = 1
        return record

    def hijack(record):
        record['owner'] = 'r3'
        return record

    with pytest.raises(registry_mod.RegistryError):
        reg.update_volume('vol', lower)
    with pytest.raises(registry_mod.RegistryError):
        reg.update_volume('vol', hijack)

    def refuse(record):
        raise registry_mod.Conflict('no')

    with pytest.raises(registry_mod.Conflict):
        reg.update_volume('vol', refuse)
    record, _ = reg.volume('vol')
    assert (record['owner'], record['epoch']) == ('r2', 2)


def test_concurrent_attachment_updates_are_all_kept(reg, make_registry):
    reg.create_volume('vol', 10, 'r1')
    writers = [make_registry() for _ in range(4)]
    barrier = threading.Barrier(len(writers))
    errors = []

    def attach(index):
        barrier.wait()
        try:
            for n in range(5):
                writers[index].set_attachment('vol', 'host-%d-%d' % (index, n), 'tok%d' % n)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=attach, args=(i,)) for i in range(len(writers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    attachments = reg.volume('vol')[0]['attachments']
    assert len(attachments) == 20
    assert attachments['host-3-4'] == 'tok4'

    reg.remove_attachment('vol', 'host-0-0')
    reg.remove_attachment('vol', 'host-0-0')  # idempotent
    assert 'host-0-0' not in reg.volume('vol')[0]['attachments']
    assert len(reg.volume('vol')[0]['attachments']) == 19
    reg.clear_attachments('vol')
    assert reg.volume('vol')[0]['attachments'] == {}
    assert reg.volume('vol')[0]['epoch'] == 1


def test_the_multiattach_mode_changes_only_while_the_volume_has_no_attachment(reg):
    reg.create_volume('vol', 10, 'r1')
    reg.set_attachment('vol', 'hv-a', 'tok-a')
    with pytest.raises(registry_mod.AttachedConflict, match='hv-a without multiattach'):
        reg.set_attachment('vol', 'hv-b', 'tok-b', multiattach=True)
    reg.remove_attachment('vol', 'hv-a')
    reg.set_attachment('vol', 'hv-b', 'tok-b', multiattach=True)
    with pytest.raises(registry_mod.AttachedConflict, match='hv-b with multiattach'):
        reg.set_attachment('vol', 'hv-c', 'tok-c', multiattach=False)
    # Any change of the record keeps the rule, not only an attach.
    with pytest.raises(registry_mod.AttachedConflict):
        reg.update_volume('vol', lambda record: dict(record, multiattach=False))
    record, _ = reg.volume('vol')
    assert (record['multiattach'], record['attachments']) == (True, {'hv-b': 'tok-b'})


def test_watch_fires_with_the_new_owner(reg, make_registry):
    other = make_registry()
    reg.create_volume('vol', 10, 'r1')
    seen = queue.Queue()
    handle = reg.watch_volume('vol', lambda record, version: seen.put(record))
    first = seen.get(timeout=10)
    assert (first['owner'], first['epoch']) == ('r1', 1)

    other.take_ownership('vol', 'r2', 'r1', 1)
    changed = seen.get(timeout=10)
    assert (changed['owner'], changed['epoch']) == ('r2', 2)

    other.mark_deleting('vol')
    assert seen.get(timeout=10)['state'] == 'deleting'
    record, version = other.volume('vol')
    other.delete_volume_record('vol', version)
    assert seen.get(timeout=10) is None

    handle.cancel()
    other.create_volume('vol', 10, 'r3')
    other.take_ownership('vol', 'r4', 'r3', 1)
    time.sleep(0.5)
    # At most the one event that lets kazoo drop the watch, and it is ignored.
    assert seen.empty()


def test_delete_volume_record_is_conditional(reg):
    reg.create_volume('vol', 10, 'r1')
    _, version = reg.volume('vol')
    with pytest.raises(registry_mod.RegistryError):
        reg.delete_volume_record('vol', version)  # not marked deleting
    reg.mark_deleting('vol')
    with pytest.raises(registry_mod.Conflict):
        reg.delete_volume_record('vol', version)  # stale version
    _, version = reg.volume('vol')
    reg.delete_volume_record('vol', version)
    with pytest.raises(registry_mod.VolumeRecordNotFound):
        reg.volume('vol')


def test_router_node_disappears_when_its_session_closes(reg, make_registry):
    other = make_registry()
    stored = other.register_router(router_info('r-other'))
    reg.register_router(router_info('r-me'))
    assert stored['started'] > 0
    routers = reg.routers()
    assert set(routers) == {'r-me', 'r-other'}
    assert routers['r-other']['nbd'] == '127.0.0.1:10809'
    assert reg.router('r-other') == stored
    assert reg.is_router_alive('r-other')
    # Idempotent within the session.
    other.register_router(router_info('r-other'))
    # Another session cannot take the same id.
    with pytest.raises(registry_mod.RouterIdInUse):
        reg.register_router(router_info('r-other'))

    other.client.stop()
    other.client.close()
    wait_until(lambda: 'r-other' not in reg.routers(), what='r-other to vanish')
    assert set(reg.routers()) == {'r-me'}
    with pytest.raises(registry_mod.RouterNotFound):
        reg.router('r-other')
    assert not reg.is_router_alive('r-other')


def test_router_reregisters_after_its_session_expires(reg, zk_server):
    reg.register_router(router_info('r-me'))
    reg.install_session_listener()
    old_session = reg.client.client_id
    # Expire the session from the server's side: a second client attaches to
    # it with the same id and password, then closes it.
    thief = kazoo_client.KazooClient(hosts=zk_server.hosts, timeout=SESSION_TIMEOUT,
                                     client_id=old_session)
    thief.start(timeout=15)
    thief.stop()
    thief.close()

    def reregistered():
        if reg.client.client_id is None or reg.client.client_id[0] == old_session[0]:
            return False
        stat = reg.client.exists(reg.router_path('r-me'))
        return stat is not None and stat.ephemeralOwner == reg.client.client_id[0]

    wait_until(reregistered, timeout=20, what='r-me registered by the new session')
    assert set(reg.routers()) == {'r-me'}


def test_least_loaded_router(reg, make_registry):
    assert reg.least_loaded_router() is None
    reg.register_router(router_info('r1', 'site-a'))
    r2 = make_registry()
    r2.register_router(router_info('r2', 'site-a'))
    r3 = make_registry()
    r3.register_router(router_info('r3', 'site-b'))
    gone = make_registry()
    gone.register_router(router_info('r0', 'site-a'))

    for name, owner in [('a', 'r1'), ('b', 'r1'), ('c', 'r2'), ('d', 'r3'), ('e', 'r3'),
                        ('f', 'r3'), ('g', None)]:
        reg.create_volume(name, 10, owner)
    # r0 owns nothing and would win, until its session ends.
    assert reg.least_loaded_router() == 'r0'
    gone.client.stop()
    gone.client.close()
    wait_until(lambda: 'r0' not in reg.routers(), what='r0 to vanish')

    assert reg.least_loaded_router() == 'r2'
    assert reg.least_loaded_router(site='site-a') == 'r2'
    assert reg.least_loaded_router(site='site-b') == 'r3'
    assert reg.least_loaded_router(site='site-c') is None
    # Load moves: r2 takes two of r1's volumes, so r1 becomes the lightest.
    reg.take_ownership('a', 'r2', 'r1', 1)
    reg.take_ownership('b', 'r2', 'r1', 1)
    assert reg.least_loaded_router() == 'r1'
    assert reg.least_loaded_router(site='site-a') == 'r1'
    assert reg.volumes_owned_by('r2') == ['a', 'b', 'c']


def test_walking_every_record_sends_the_reads_together(reg, make_registry):
    """A router walks every record (placement, taking its volumes back at
    start): one request and wait per record would make that a round trip
    each, 1,000 of them for 1,000 volumes. The walk sends its reads
    together and waits once; a record deleted meanwhile is left out."""
    reg.register_router(router_info('r1'))
    make_registry().register_router(router_info('r2', 'site-b'))
    created = {name: reg.create_volume(name, 10, 'r1' if i % 3 else 'r2')
               for i, name in enumerate('v%03d' % i for i in range(60))}
    waits = []
    real_get = reg.client.get

    def one_at_a_time(*args, **kwargs):
        waits.append(args[0])
        return real_get(*args, **kwargs)

    reg.client.get = one_at_a_time
    assert reg.volumes() == created
    assert reg.volumes_owned_by('r2') == sorted(n for i, n in enumerate(created) if not i % 3)
    assert set(reg.routers()) == {'r1', 'r2'}
    assert reg.least_loaded_router() == 'r2'
    assert waits == []

    reg.client.get = real_get
    reg.mark_deleting('v000')
    reg.delete_volume_record('v000', reg.volume('v000')[1])
    assert 'v000' not in reg.volumes() and len(reg.volumes()) == 59


def test_a_router_checks_all_its_records_in_one_round_trip(reg):
    """After its ZooKeeper session was suspended a router holds the IO of
    every volume until it has read their records again (synced): a sync
    and a read per volume, one after the other, would hold it a round trip
    per volume more."""
    names = ['v%03d' % i for i in range(50)]
    created = {name: reg.create_volume(name, 10, 'r1') for name in names}
    reg.take_ownership('v007', 'r2', 'r1', 1)
    reg.client.set(reg.volume_path('v009'), b'not a record')
    calls = []
    real_get, real_sync = reg.client.get, reg.client.sync
    reg.client.get = lambda *args, **kwargs: calls.append('get') or real_get(*args, **kwargs)
    reg.client.sync = lambda *args, **kwargs: calls.append('sync') or real_sync(*args, **kwargs)

    found = reg.volume_records(names + ['gone'], sync=True)

    assert calls == ['sync']
    assert found['gone'] is None
    assert isinstance(found['v009'], registry_mod.RegistryError)
    assert found['v007'][0]['owner'] == 'r2' and found['v007'][1] == 1
    assert {name: found[name] for name in names if name not in ('v007', 'v009')} == {
        name: (created[name], 0) for name in names if name not in ('v007', 'v009')}


def test_epoch_never_decreases_across_a_sequence(reg, make_registry):
    other = make_registry()
    reg.create_volume('vol', 10, 'r1')
    epochs = []
    watched = queue.Queue()
    reg.watch_volume('vol', lambda record, version: watched.put(record and record['epoch']))

    def note():
        epochs.append(reg.volume('vol')[0]['epoch'])

    def attempt(fn, *args):
        try:
            fn(*args)
        except registry_mod.Conflict:
            pass
        note()

    note()
    attempt(reg.take_ownership, 'vol', 'r2', 'r1', 1)        # steal: 2
    attempt(other.take_ownership, 'vol', 'r1', 'r1', 1)      # stale: refused
    attempt(reg.set_attachment, 'vol', 'host1', 'tok')
    attempt(reg.release_ownership, 'vol', 'r2', 2)           # handover: stays 2
    attempt(other.take_ownership, 'vol', 'r3', None, 2)      # 3
    attempt(reg.release_ownership, 'vol', 'r2', 2)           # not owner: refused
    attempt(reg.take_ownership, 'vol', 'r3', 'r3', 3)        # re-acquire own: 4
    attempt(reg.set_size, 'vol', 20)
    attempt(reg.set_size, 'vol', 5)                          # shrink: refused
    attempt(reg.take_ownership, 'vol', 'r1', 'r3', 2)        # stale epoch: refused
    attempt(reg.remove_attachment, 'vol', 'host1')

    assert epochs == sorted(epochs)
    assert epochs[0] == 1 and epochs[-1] == 4
    assert epochs == [1, 2, 2, 2, 2, 3, 3, 4, 4, 4, 4, 4]
    record = reg.volume('vol')[0]
    assert (record['owner'], record['size'], record['attachments']) == ('r3', 20, {})
    # What the watch saw only grew too (changes may coalesce).
    wait_until(lambda: watched.qsize() and list(watched.queue)[-1] == 4, what='watch at epoch 4')
    seen = list(watched.queue)
    assert seen == sorted(seen)
