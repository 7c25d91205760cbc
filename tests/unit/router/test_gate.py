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

"""IO gates: requests pass an open gate, wait at a paused one (also when
only the router's gate is paused) and fail once the gate is closed."""

import asyncio

import pytest

from ovs_daemon.engine import errors
from ovs_daemon.router import gate as gate_mod


def run(coroutine):
    return asyncio.run(coroutine)


async def settle():
    for _ in range(5):
        await asyncio.sleep(0)


def test_open_gate_lets_requests_through():
    async def scenario():
        gate = gate_mod.IOGate()
        await asyncio.wait_for(gate.wait(), 1)
        return gate.is_open
    assert run(scenario())


def test_paused_router_gate_holds_volume_requests_until_resumed():
    async def scenario():
        router = gate_mod.IOGate()
        volume = gate_mod.IOGate(parent=router)
        router.pause()
        waiter = asyncio.ensure_future(volume.wait())
        await settle()
        held = not waiter.done() and not volume.is_open
        router.resume()
        await asyncio.wait_for(waiter, 1)
        return held
    assert run(scenario())


def test_closing_a_paused_gate_fails_the_waiting_requests():
    async def scenario():
        volume = gate_mod.IOGate()
        volume.pause()
        waiter = asyncio.ensure_future(volume.wait())
        await settle()
        volume.close('fenced')
        with pytest.raises(errors.Halted, match='fenced'):
            await asyncio.wait_for(waiter, 1)
        with pytest.raises(errors.Halted):
            await volume.wait()
        volume.resume()
        return volume.is_open
    assert run(scenario()) is False


def test_a_closed_volume_gate_stays_closed_when_the_router_resumes():
    async def scenario():
        router = gate_mod.IOGate()
        volume = gate_mod.IOGate(parent=router)
        router.pause()
        waiter = asyncio.ensure_future(volume.wait())
        await settle()
        volume.close('session lost')
        router.resume()
        with pytest.raises(errors.Halted, match='session lost'):
            await asyncio.wait_for(waiter, 1)
    run(scenario())
