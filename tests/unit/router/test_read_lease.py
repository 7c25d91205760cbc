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

"""Read leases of write-through volumes: a read is answered only under a
lease, a volume taken by a steal serves nothing while it is held (real
engine on a local backend)."""

import asyncio

import pytest

from ovs_daemon.backends import base
from ovs_daemon.backends import local
from ovs_daemon.engine import volume as volume_mod
from ovs_daemon.router import gate as gate_mod
from ovs_daemon.router import read_lease
from ovs_daemon.router import volume_export

MiB = 1 << 20


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def volume(tmp_path):
    return volume_mod.Volume.create(local.LocalBackend(tmp_path / 'store'), 'v1', 16 * MiB,
                                    base.OwnerKey.generate(1))


def test_a_lease_lasts_its_duration_from_the_send_of_the_read_that_renewed_it():
    clock = Clock()
    lease = read_lease.ReadLease(1.0, clock=clock)
    assert not lease.valid
    lease.renew(clock.now - 0.4)          # the read left 0.4 s ago
    assert lease.valid
    clock.now += 0.59
    assert lease.valid
    clock.now += 0.02
    assert not lease.valid
    lease.renew(clock.now - 5)            # an older answer never shortens it
    assert not lease.valid


def test_a_taker_waits_longer_than_any_earlier_lease():
    assert read_lease.taker_wait(1.0) > 1.0


def test_a_write_through_read_waits_for_the_lease_and_sees_the_data(volume):
    clock = Clock()
    lease = read_lease.ReadLease(1.0, clock=clock)

    async def scenario():
        export = volume_export.VolumeExport(volume, write_through=True, read_lease=lease)
        lease.renew(clock.now)
        await export.write(0, b'\x11' * 4096, fua=False)
        clock.now += 2                     # not renewed: the lease ran out
        read = asyncio.ensure_future(export.read(0, 4096))
        await asyncio.sleep(0.2)
        waited = not read.done()
        lease.renew(clock.now)
        return waited, await asyncio.wait_for(read, 5)

    waited, data = asyncio.run(scenario())
    assert waited
    assert bytes(data) == b'\x11' * 4096


def test_a_read_without_a_lease_fails_once_the_volume_halts(volume):
    clock = Clock()
    lease = read_lease.ReadLease(0.2, clock=clock)

    async def scenario():
        gate = gate_mod.IOGate()
        export = volume_export.VolumeExport(volume, gate=gate, write_through=True,
                                            read_lease=lease)
        read = asyncio.ensure_future(export.read(0, 4096))
        await asyncio.sleep(0.1)
        gate.close('ZooKeeper session lost')
        with pytest.raises(Exception) as failed:
            await asyncio.wait_for(read, 5)
        return failed.value

    assert 'ZooKeeper session lost' in str(asyncio.run(scenario()))


def test_a_held_export_serves_nothing_until_the_hold_is_over(volume):
    async def scenario():
        export = volume_export.VolumeExport(volume)
        export.hold(0.3)
        write = asyncio.ensure_future(export.write(0, b'\x22' * 4096, fua=False))
        await asyncio.sleep(0.1)
        held = not write.done()
        await asyncio.wait_for(write, 5)
        return held, bytes(await export.read(0, 4096))

    held, data = asyncio.run(scenario())
    assert held
    assert data == b'\x22' * 4096
