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

"""Revoking an attachment while its requests wait: a request held by an
owner whose ZooKeeper session is suspended must not land once the
session's token was revoked meanwhile."""

import time

import pytest

from ovs_daemon.devcluster import cluster as cluster_mod
from tests.functional.clients import qemu_io
from tests.functional.clients import tcp_uri

pytestmark = pytest.mark.slow
MiB = 1 << 20


@pytest.fixture
def network(make_network):
    return make_network('ovsrv', '10.213.212.0/24')


@pytest.fixture
def vpool(tmp_path, network):
    hosts = {name: network.add_host(name) for name in ('r1', 'r2', 'hva')}
    cluster = cluster_mod.Cluster(tmp_path / 'vpool')
    try:
        # A long session: the owner stays suspended (not expired) for seconds.
        cluster.up(routers=2, hosts={'r1': hosts['r1'], 'r2': hosts['r2']},
                   zookeeper_host=network.address,
                   options={'zookeeper': {'session_timeout': 12.0}})
        cluster.hosts = hosts
        yield cluster
    finally:
        cluster.down()


def test_a_request_held_by_a_suspended_owner_is_refused_once_its_token_is_revoked(
        vpool, network):
    r1, hva = vpool.hosts['r1'], vpool.hosts['hva']
    api = vpool.client('r2')
    api.create_volume('v1', 16 * MiB, router='r1')
    token_a = api.create_attachment('v1', 'host-a')['token']
    token_b = api.create_attachment('v1', 'host-b')['token']
    nbd = vpool.router('r1')['nbd']
    qemu_io(tcp_uri(nbd, 'v1/%s' % token_b), 'write -P 0x11 0 4k', 'flush')

    r1.block_address(network.address)           # the owner is cut from ZooKeeper
    vpool.wait_until(lambda: 'ZooKeeper session suspended' in vpool.log_text('r1'),
                     what='r1 suspended')
    held = hva.start('held-writer', ['qemu-io', '-f', 'raw', '-c', 'write -P 0x66 0 4k',
                                     tcp_uri(nbd, 'v1/%s' % token_a)], str(vpool.workdir))
    try:
        time.sleep(1.0)                          # the write waits at the paused gate
        api.delete_attachment('v1', 'host-a')    # host A is evacuated meanwhile
        r1.unblock_address(network.address)
        vpool.wait_until(lambda: vpool.client('r1').health()['zookeeper'] == 'connected',
                         timeout=30, what='r1 back in ZooKeeper')
        vpool.wait_until(lambda: not held.is_alive(), timeout=30, what='the held writer')
    finally:
        held.kill()

    out = qemu_io(tcp_uri(nbd, 'v1/%s' % token_b), 'read -P 0x11 0 4k')
    assert 'verification failed' not in out
    record = api.volume('v1')
    assert (record['owner'], record['epoch']) == ('r1', 1)   # the same owner throughout


def test_a_session_whose_attachment_the_owner_has_not_seen_yet_is_admitted(vpool, network):
    """The owner's cache of the attachments lags (a watch event it has not
    received): it asks ZooKeeper before it refuses a token for good."""
    r1, hva = vpool.hosts['r1'], vpool.hosts['hva']
    api = vpool.client('r2')
    api.create_volume('v1', 16 * MiB, router='r1')
    nbd = vpool.router('r1')['nbd']

    r1.block_address(network.address)      # nothing from ZooKeeper reaches the owner
    token = api.create_attachment('v1', 'host-a')['token']    # written through r2
    attach = hva.start('attach', ['qemu-io', '-f', 'raw', '-c', 'write -P 0x5a 0 4k',
                                  tcp_uri(nbd, 'v1/%s' % token)], str(vpool.workdir))
    try:
        time.sleep(0.5)                    # the owner's watch event is still in flight
        r1.unblock_address(network.address)
        vpool.wait_until(lambda: not attach.is_alive(), timeout=30, what='the attach')
    finally:
        attach.kill()

    assert 'wrote 4096/4096 bytes' in attach.log_tail(), attach.log_tail()
    assert 'verification failed' not in qemu_io(tcp_uri(nbd, 'v1/%s' % token),
                                                'read -P 0x5a 0 4k')
    assert api.volume('v1')['epoch'] == 1  # the owner never changed
