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

"""Split brain: the owner is cut off from the other routers and from
ZooKeeper but still reachable by one stale client. Another router steals
the volume; the old owner's next flush is fenced by the backend and it
halts; nothing it acknowledged after the claim is ever visible."""

import pytest

from tests.functional.clients import qemu_io

pytestmark = pytest.mark.slow
MiB = 1 << 20


@pytest.fixture
def network(make_network):
    return make_network('ovsrt', '10.213.202.0/24')


def in_host(host, uri, *commands, expect_ok=True):
    """qemu-io run inside a simulated host."""
    args = ['qemu-io', '-f', 'raw']
    for command in commands:
        args += ['-c', command]
    result = host.exec(args + [uri], timeout=60, check=False)
    assert (result.returncode == 0) == expect_ok, result.stdout + result.stderr
    return result.stdout + result.stderr


def volume_written_on_r1(network, make_vpool, router_options):
    """Routers r1 r2 r3 and a client on hosts of their own, a session
    timeout of 20 s, and volume v1 served by r1 with 1 MiB of 0x11 flushed;
    returns (hosts, client, vpool, api of r2)."""
    hosts = {name: network.add_host(name) for name in ('r1', 'r2', 'r3')}
    client = network.add_host('client')
    vpool = make_vpool(routers=3, hosts=hosts, zookeeper_host=network.address,
                       options={'router': router_options,
                                'zookeeper': {'session_timeout': 20}})
    api = vpool.client('r2')
    api.create_volume('v1', 16 * MiB, router='r1')
    in_host(client, vpool.nbd_uri('r1', 'v1'), 'write -P 0x11 0 1M', 'flush')
    return hosts, client, vpool, api


def test_stolen_owner_is_fenced_at_its_next_flush(network, make_vpool):
    # A long session timeout: the old owner must not notice its ZooKeeper
    # partition before the stale client writes.
    hosts, client, vpool, api = volume_written_on_r1(network, make_vpool,
                                                     {'peer_timeout': 0.5})
    old_owner = vpool.nbd_uri('r1', 'v1')

    r1 = hosts['r1']
    r1.block(hosts['r2'])
    r1.block(hosts['r3'])
    r1.block_address(network.address)
    location = api.acquire('v1', mode='failover')
    assert (location['owner'], location['epoch']) == ('r2', 2)
    assert api.volume('v1')['transfer']['kind'] == 'steal'

    out = in_host(client, old_owner, 'write -P 0xee 0 64k', 'flush', expect_ok=False)
    assert 'flush failed' in out or 'Cannot send after transport endpoint shutdown' in out

    new_owner = vpool.nbd_uri('r2', 'v1')
    assert 'verification failed' not in qemu_io(new_owner, 'read -P 0x11 0 1M')
    r1.unblock_address(network.address)
    r1.unblock(hosts['r2'])
    r1.unblock(hosts['r3'])
    vpool.wait_until(lambda: 'v1' in vpool.client('r1').health()['halted'])
    assert 'fenced' in vpool.client('r1').health()['halted']['v1']
    assert 'ovs_router_volume_halts_total{cause="fenced"} 1.0' in vpool.client('r1').metrics()
    assert 'verification failed' not in qemu_io(new_owner, 'read -P 0x11 0 1M')


def test_an_owner_cut_from_zookeeper_alone_is_stolen_from_while_its_session_lives(
        network, make_vpool):
    """The owner still answers its peers but, suspended, cannot release the
    record: it refuses the handover and a failover acquire steals at once,
    instead of waiting for the owner's session to expire (the acquire's
    wait for the handover's answer would end there: handover_timeout is
    longer here)."""
    hosts, _, vpool, api = volume_written_on_r1(network, make_vpool,
                                                {'handover_timeout': 60})
    r1 = hosts['r1']
    r1.block_address(network.address)
    try:
        vpool.wait_until(lambda: 'ZooKeeper session suspended' in vpool.log_text('r1'),
                         timeout=60, what='r1 suspended')
        location = api.acquire('v1', mode='failover')
        assert (location['owner'], location['epoch']) == ('r2', 2)
        assert api.volume('v1')['transfer']['kind'] == 'steal'
        # Stolen while ZooKeeper still counts the owner alive.
        assert 'r1' in [router['id'] for router in api.routers()]
    finally:
        r1.unblock_address(network.address)
    assert 'verification failed' not in qemu_io(vpool.nbd_uri('r2', 'v1'), 'read -P 0x11 0 1M')
    vpool.wait_until(lambda: 'v1' in vpool.client('r1').health()['halted'], what='r1 halted v1')
