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

"""The client fails every request in flight when the server dies."""

import asyncio
import signal

import pytest

from ovs_daemon.nbd import client as client_mod
from ovs_daemon.nbd import errors

pytestmark = pytest.mark.slow


async def connect(server, transport):
    if transport == "tcp":
        return await client_mod.NBDClient.connect_tcp(
            "127.0.0.1", server.port, "vol1", timeout=10)
    return await client_mod.NBDClient.connect_unix(server.socket, "vol1",
                                                   timeout=10)


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_killed_server_fails_all_requests_with_connection_lost(nbd_process,
                                                               transport):
    async def scenario():
        nbd = await connect(nbd_process, transport)
        await nbd.write(0, b"acknowledged")
        # Stopped, the server cannot answer: the requests stay in flight.
        nbd_process.proc.send_signal(signal.SIGSTOP)
        requests = [asyncio.ensure_future(nbd.read(i * 4096, 4096))
                    for i in range(16)]
        requests.append(asyncio.ensure_future(nbd.write(0, b"x" * 4096)))
        requests.append(asyncio.ensure_future(nbd.flush()))
        await asyncio.sleep(0.05)
        assert nbd.in_flight == 18
        nbd_process.kill()
        results = await asyncio.wait_for(
            asyncio.gather(*requests, return_exceptions=True), 10)
        assert all(isinstance(r, errors.ConnectionLost) for r in results)
        assert nbd.closed and nbd.in_flight == 0
        with pytest.raises(errors.ConnectionLost):
            await nbd.read(0, 1)
    asyncio.run(scenario())
