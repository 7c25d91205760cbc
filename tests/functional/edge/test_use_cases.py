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

"""The failures of docs/design.md with real processes: ZooKeeper, three
routers (r1, r2 in site a, r3 in site b) and an edge per hypervisor, each
in its own network namespace, and a verifying guest writing and reading
4 KiB blocks through the edge. Each checks the invariants of docs/design.md:
I1 no acknowledged write lost, I2 no stale read, I3 one writer, I4 no IO
error while a live router can take over."""

import logging
import time

import pytest

from ovs_daemon.api import edge_client
from ovs_daemon.devcluster import guest as guest_mod
from tests.functional.clients import qemu_io

pytestmark = pytest.mark.slow
LOG = logging.getLogger(__name__)
MiB = 1 << 20


def run_guest_across(guest, event, writes_after=2000):
    """Let the guest write, cause ``event``, let it write more, stop it."""
    guest.start()
    guest.wait_for_writes(1500)
    event()
    guest.wait_for_writes(guest.writes + writes_after, timeout=120)
    guest.stop()
    LOG.warning('guest across the failure: %s', guest.summary())
    return guest


def assert_nothing_lost(guest, connect=None):
    assert guest.errors == []                       # I4
    assert guest.stale_reads == []                  # I2
    checked, wrong = guest.verify(connect)
    assert checked > 0 and wrong == []              # I1


def test_1_hypervisor_fails_and_the_volume_restarts_elsewhere(vpool, hypervisors):
    api = vpool.client()
    api.create_volume('v1', 64 * MiB, router='r1')
    hva, hvb = hypervisors['hva'], hypervisors['hvb']
    guest = hva.guest('v1', hva.attach('v1'))
    guest.start()
    guest.wait_for_writes(3000)
    vpool.kill_edge('hva')
    guest.stop()
    before = api.volume('v1')

    socket_b = hvb.attach('v1')

    checked, wrong = guest.verify(guest_mod.unix_connector(socket_b, 'v1'), durable_only=True)
    assert checked > 0 and wrong == []
    after = api.volume('v1')
    assert (after['owner'], after['epoch']) == (before['owner'], before['epoch']) == ('r1', 1)


def test_2_owner_router_killed_under_io(vpool, hypervisors):
    vpool.client().create_volume('v1', 64 * MiB, router='r1')
    hva = hypervisors['hva']
    socket_path = hva.attach('v1')

    guest = run_guest_across(hva.guest('v1', socket_path), lambda: vpool.kill_router('r1'))

    assert_nothing_lost(guest)
    record = vpool.client('r2').volume('v1')
    assert (record['epoch'], record['transfer']['kind']) == (2, 'steal')
    LOG.warning('IO pause, owner killed: %.3f s', guest.longest_gap)


def test_3_edge_cut_off_from_the_owner_gets_a_handover(vpool, hypervisors, hosts):
    vpool.client().create_volume('v1', 64 * MiB, router='r1')
    hva = hypervisors['hva']
    socket_path = hva.attach('v1')

    guest = run_guest_across(hva.guest('v1', socket_path),
                             lambda: hosts['hva'].block(hosts['r1']))

    assert_nothing_lost(guest)
    record = vpool.client().volume('v1')
    assert record['owner'] == 'r2'
    assert record['transfer'] == dict(record['transfer'], kind='handover', **{'from': 'r1'})
    assert vpool.client('r1').health()['halted'] == {}
    LOG.warning('IO pause, silent partition edge to owner: %.3f s', guest.longest_gap)


def test_4_owner_cut_off_from_everyone_is_stolen_from_and_fenced(vpool, hypervisors, hosts):
    vpool.client().create_volume('v1', 64 * MiB, router='r1')
    hva = hypervisors['hva']
    socket_path = hva.attach('v1')

    def cut_off_r1():
        for other in ('hva', 'r2', 'r3'):
            hosts['r1'].block(hosts[other])
    guest = run_guest_across(hva.guest('v1', socket_path), cut_off_r1)

    assert_nothing_lost(guest)
    record = vpool.client('r2').volume('v1')
    assert (record['owner'], record['epoch'], record['transfer']['kind']) == ('r2', 2, 'steal')
    halted = vpool.client('r1').health()['halted']           # I3
    assert 'v1' in halted, halted


def test_5_failover_prefers_a_router_of_the_edge_site(vpool, hypervisors):
    vpool.client().create_volume('v1', 64 * MiB, router='r1')
    hva = hypervisors['hva']
    # The edge's configuration lists r3 (site b) first: it must still pick r2.
    socket_path = hva.attach('v1')

    guest = run_guest_across(hva.guest('v1', socket_path), lambda: vpool.kill_router('r1'))

    assert_nothing_lost(guest)
    assert vpool.client('r2').volume('v1')['owner'] == 'r2'


def test_6_a_revoked_attachment_can_neither_read_nor_write(vpool, hypervisors):
    api = vpool.client()
    api.create_volume('v1', 64 * MiB, router='r1')
    hva = hypervisors['hva']
    socket_path = hva.attach('v1')
    guest = hva.guest('v1', socket_path, flush_every=16)
    guest.start()
    guest.wait_for_writes(500)

    api.delete_attachment('v1', 'hva')

    vpool.wait_until(lambda: len(guest.errors) > 10, timeout=30, what='IO errors')
    guest.stop()
    assert [v['state'] for v in hva.edge.list()] == ['revoked']
    for command in ('read 0 4k', 'write -P 7 0 4k'):
        out = qemu_io('nbd+unix:///v1?socket=%s' % socket_path, command, expect_ok=False)
        assert 'Input/output error' in out
    record = api.volume('v1')
    assert (record['owner'], record['epoch']) == ('r1', 1)   # it did not move the volume
    assert hva.edge.detach('v1', 'default') == dict(ok=True, attached=True)
    with pytest.raises(edge_client.EdgeRequestError, match='Refused'):
        hva.edge.attach('v1', 'default', 'not-a-current-token')


def test_7_a_planned_migrate_is_followed_as_a_redirect(vpool, hypervisors):
    api = vpool.client()
    api.create_volume('v1', 64 * MiB, router='r1')
    hva = hypervisors['hva']
    socket_path = hva.attach('v1')

    guest = run_guest_across(hva.guest('v1', socket_path), lambda: api.migrate('v1', 'r3'))

    assert_nothing_lost(guest)
    record = api.volume('v1')
    assert (record['owner'], record['epoch'], record['transfer']['kind']) == (
        'r3', 2, 'handover')   # the edge did not take it to its own site
    assert [(v['router'], v['epoch']) for v in hva.edge.list()] == [('r3', 2)]


def test_8_with_no_router_left_io_fails_with_eio_after_the_failover_timeout(lone_router):
    cluster, uri = lone_router
    cluster.kill_router('r1')
    started = time.monotonic()
    out = qemu_io(uri, 'write -P 4 0 4k', expect_ok=False)
    waited = time.monotonic() - started
    assert 'Input/output error' in out
    assert waited >= 2.0   # IO waited for a router before failing
    cluster.start_router('r1')
    # A router is back: the next IO goes through again, nothing was lost.
    assert 'verification failed' not in qemu_io(uri, 'read -P 3 0 64k')
