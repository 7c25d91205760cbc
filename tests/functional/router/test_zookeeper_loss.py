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

"""A router and its ZooKeeper session: a suspended session holds IO, a lost
one halts the volumes; a 3-node ensemble survives the loss of its leader."""

import asyncio
import contextlib
import os
import signal
import socket
import threading
import time

import pytest

from ovs_daemon.devcluster import zookeeper
from ovs_daemon.nbd import client as client_mod
from ovs_daemon.nbd import errors as nbd_errors
from tests.functional.clients import qemu_io

pytestmark = pytest.mark.slow
MiB = 1 << 20


def connect(vpool, router_id, volume, token=None):
    """A session of ``volume`` with an operator's credential, or with the
    attachment ``token`` as an edge's."""
    host, port = vpool.router(router_id)['nbd'].rsplit(':', 1)
    export = vpool.session_export(volume) if token is None else '%s/%s' % (volume, token)
    return client_mod.NBDClient.connect_tcp(host, int(port), export, timeout=10)


async def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, 'timed out waiting for %s' % predicate
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def zookeeper_stopped(vpool, api):
    """ZooKeeper stopped (SIGSTOP) until the router reports its session
    suspended, and for the block; continued (SIGCONT) after it, even on
    failure."""
    os.kill(vpool.zookeeper_pid, signal.SIGSTOP)
    try:
        await wait_for(lambda: api.health()['zookeeper'] == 'suspended')
        yield
    finally:
        os.kill(vpool.zookeeper_pid, signal.SIGCONT)


async def write_held(nbd, offset, data, seconds):
    """A write sent while the session is suspended: not acknowledged after
    ``seconds``. Returns its future."""
    held = asyncio.ensure_future(nbd.write(offset, data))
    await asyncio.sleep(seconds)
    assert not held.done(), 'a write was acknowledged while suspended'
    return held


def test_owner_holds_io_while_suspended_and_halts_when_the_session_is_gone(vpool):
    api = vpool.client('r1')
    api.create_volume('v1', 16 * MiB, router='r1')

    async def scenario():
        nbd = await connect(vpool, 'r1', 'v1')
        await nbd.write(0, b'\x5a' * 65536)
        await nbd.flush()
        async with zookeeper_stopped(vpool, api):
            held = await write_held(nbd, 65536, b'\xee' * 4096, 1.0)
            with pytest.raises((nbd_errors.RemoteIOError, nbd_errors.ConnectionLost)):
                await asyncio.wait_for(held, 30)
            assert 'v1' in api.health()['halted']
        await nbd.close()

    asyncio.run(scenario())
    # A new session: the router takes its volume back with a new epoch.
    vpool.wait_until(lambda: 'v1' in api.health()['served'], timeout=60)
    record = api.volume('v1')
    assert (record['owner'], record['epoch'], record['transfer']['kind']) == ('r1', 2, 'restart')
    out = qemu_io(vpool.nbd_uri('r1', 'v1'), 'read -P 0x5a 0 64k',
                  'read -P 0 64k 4k')
    assert 'verification failed' not in out


def test_a_new_session_of_an_attachment_ends_its_earlier_one(vpool):
    """An edge that gave up on a session held by a suspended owner (or cut
    off without the router hearing of it) comes back with the same
    attachment token: the earlier session ends, with whatever it held,
    before the new one's first request is read, so nothing it held can
    land after the new session's writes. Another attachment's stays."""
    api = vpool.client('r1')
    api.create_volume('v1', 16 * MiB, router='r1')
    token = api.create_attachment('v1', 'host-a')['token']
    other = api.create_attachment('v1', 'host-b')['token']

    async def scenario():
        earlier = await connect(vpool, 'r1', 'v1', token)
        elsewhere = await connect(vpool, 'r1', 'v1', other)
        await earlier.write(0, b'\x11' * 4096)
        async with zookeeper_stopped(vpool, api):
            held = await write_held(earlier, 0, b'\x22' * 4096, 0.5)
            # Greeted only once the session is back, as an edge is.
            later = asyncio.ensure_future(connect(vpool, 'r1', 'v1', token))
            await asyncio.sleep(0.5)
            assert not later.done()
        later = await later
        # Ended by the new session's open, which may come a moment after its
        # handshake's last reply reached this client.
        await asyncio.wait_for(earlier.wait_closed(), 10)
        with pytest.raises(nbd_errors.ConnectionLost):
            await earlier.read(0, 4096)
        # The held write landed before the new session began, or never.
        landed = bytes(await later.read(0, 4096))
        await asyncio.wait([held], timeout=10)
        assert landed in (b'\x11' * 4096, b'\x22' * 4096)
        if _succeeded(held):
            assert landed == b'\x22' * 4096
        await later.write(0, b'\x33' * 4096)
        await later.flush()
        assert bytes(await elsewhere.read(0, 4096)) == b'\x33' * 4096
        for nbd in (later, elsewhere):
            await nbd.close()

    asyncio.run(scenario())
    assert api.volume('v1')['epoch'] == 1


def _succeeded(future):
    return future.done() and not future.cancelled() and future.exception() is None


@pytest.fixture
def ensemble(tmp_path):
    zk = zookeeper.ZooKeeperEnsemble(str(tmp_path / 'ensemble'), size=3)
    zk.start()
    try:
        yield zk
    finally:
        zk.stop()


def test_routers_keep_serving_when_the_zookeeper_leader_dies(ensemble, make_vpool):
    vpool = make_vpool(routers=2, zookeeper_hosts=ensemble.hosts)
    api = vpool.client()
    api.create_volume('v1', 16 * MiB, router='r1')

    async def scenario():
        nbd = await connect(vpool, 'r1', 'v1')
        written = 0
        ensemble.kill_member(ensemble.leader())
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            block = written % 4096
            await nbd.write(block * 4096, bytes([written % 251]) * 4096)
            await nbd.flush()
            written += 1
        await nbd.close()
        return written

    written = asyncio.run(scenario())
    assert written > 0
    ensemble.wait_for_quorum()
    assert api.health()['halted'] == {}
    api.create_volume('v2', 16 * MiB, router='r2')
    assert vpool.client('r2').health()['served'] == ['v2']
    last = written - 1
    out = qemu_io(vpool.nbd_uri('r1', 'v1'),
                  'read -P %d %d 4k' % (last % 251, (last % 4096) * 4096))
    assert 'verification failed' not in out


@pytest.fixture
def zookeeper_door(tmp_path):
    """A standalone ZooKeeper behind a door (:class:`Door`)."""
    server = zookeeper.ZooKeeperServer(str(tmp_path / 'zookeeper'))
    server.start()
    door = Door(server.host, server.port)
    try:
        yield door
    finally:
        door.close()
        server.stop()


def pipe(source, sink):
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    for sock in (source, sink):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class Door:
    """A TCP forwarder to ZooKeeper. Shut, it cuts the connections it
    carries and drops every new one, counting them; silent, it cuts those
    it carries and keeps every new one open unanswered, counting them, as a
    ZooKeeper server starting up does; open, it forwards them."""

    def __init__(self, host, port):
        self.target = (host, port)
        self.listener = socket.create_server((host, 0))
        self.hosts = '%s:%d' % self.listener.getsockname()[:2]
        self.dropped = 0
        self.unanswered = []
        self._shut = False
        self._silent = False
        self._carried = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                if self._shut:
                    client.close()
                    self.dropped += 1
                    continue
                if self._silent:
                    self.unanswered.append(client)
                    continue
                server = socket.create_connection(self.target)
                self._carried += [client, server]
            threading.Thread(target=pipe, args=(client, server), daemon=True).start()
            threading.Thread(target=pipe, args=(server, client), daemon=True).start()

    def shut(self):
        with self._lock:
            self._shut = True
            carried, self._carried = self._carried, []
        for sock in carried:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def silence(self):
        self.shut()
        with self._lock:
            self._shut, self._silent = False, True

    def open(self):
        with self._lock:
            self._shut = self._silent = False
        self._close_unanswered()

    def _close_unanswered(self):
        with self._lock:
            unanswered, self.unanswered = self.unanswered, []
        for sock in unanswered:
            sock.close()

    def wait_for_drops(self, wanted, timeout):
        """Wait until ``wanted`` connections were dropped or ``timeout``
        seconds passed; returns how many were."""
        deadline = time.monotonic() + timeout
        while self.dropped < wanted and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.dropped

    def close(self):
        self.shut()
        self._close_unanswered()
        self.listener.close()


KNOCKS = 12


def test_a_router_keeps_knocking_through_a_long_zookeeper_outage(zookeeper_door, make_vpool):
    # A session timeout longer than the outage: the router only suspends.
    vpool = make_vpool(routers=1, zookeeper_hosts=zookeeper_door.hosts,
                       options={'zookeeper': {'session_timeout': 40.0}})
    api = vpool.client('r1')
    api.create_volume('v1', 16 * MiB, router='r1')

    async def scenario():
        nbd = await connect(vpool, 'r1', 'v1')
        await nbd.write(0, b'\x11' * 4096)
        await nbd.flush()
        zookeeper_door.shut()
        # A write the router takes before it notices the cut is rightly
        # acknowledged; the one it must hold comes after it knows.
        await wait_for(lambda: api.health()['zookeeper'] == 'suspended')
        held = asyncio.ensure_future(nbd.write(4096, b'\x22' * 4096))
        # Counted in attempts, not seconds: a back-off doubling without a
        # cap makes its 12th attempt minutes after the first, a capped one
        # seconds; the wait ends well inside the session timeout, so the
        # session is only suspended.
        attempts = await asyncio.get_running_loop().run_in_executor(
            None, zookeeper_door.wait_for_drops, KNOCKS, 25.0)
        assert attempts >= KNOCKS, attempts
        assert not held.done(), 'a write was acknowledged without ZooKeeper'
        zookeeper_door.open()
        await asyncio.wait_for(held, 30)
        await nbd.close()

    asyncio.run(scenario())
    record = api.volume('v1')
    assert (record['owner'], record['epoch']) == ('r1', 1)
    out = qemu_io(vpool.nbd_uri('r1', 'v1'), 'read -P 0x11 0 4k',
                  'read -P 0x22 4k 4k')
    assert 'verification failed' not in out


def test_a_router_does_not_wait_a_session_timeout_on_an_unanswered_handshake(
        zookeeper_door, make_vpool):
    # kazoo would wait the session timeout (40 s) for the answer to each.
    vpool = make_vpool(routers=1, zookeeper_hosts=zookeeper_door.hosts,
                       options={'zookeeper': {'session_timeout': 40.0}})
    api = vpool.client('r1')
    api.create_volume('v1', 16 * MiB, router='r1')

    zookeeper_door.silence()
    try:
        vpool.wait_until(lambda: api.health()['zookeeper'] == 'suspended', what='suspended')
        deadline = time.monotonic() + 15
        while len(zookeeper_door.unanswered) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        # The router gave up on each unanswered handshake and tried again.
        assert len(zookeeper_door.unanswered) >= 4, zookeeper_door.unanswered
    finally:
        zookeeper_door.open()
    vpool.wait_until(lambda: api.health()['zookeeper'] == 'connected', what='connected')
    out = qemu_io(vpool.nbd_uri('r1', 'v1'), 'write -P 0x33 0 4k', 'read -P 0x33 0 4k')
    assert 'verification failed' not in out
    assert (api.volume('v1')['owner'], api.volume('v1')['epoch']) == ('r1', 1)


def test_a_record_unreadable_after_a_suspension_halts_its_volume_not_the_router(
        vpool, kazoo_clients):
    api = vpool.client('r1')
    api.create_volume('v1', 16 * MiB, router='r1')
    api.create_volume('v2', 16 * MiB, router='r1')
    zk = kazoo_clients(vpool.state['zookeeper'])
    zk.set('/ovs/%s/volumes/v2' % vpool.state['vpool'], b'not a record')

    async def scenario():
        nbd = await connect(vpool, 'r1', 'v1')
        async with zookeeper_stopped(vpool, api):
            held = await write_held(nbd, 0, b'\x5a' * 4096, 0.5)
        # Within the session timeout: the session is the same one.
        await asyncio.wait_for(held, 10)
        await nbd.flush()
        await nbd.close()

    asyncio.run(scenario())
    health = api.health()
    assert health['served'] == ['v1']
    assert 'cannot be read' in health['halted']['v2']
    out = qemu_io(vpool.nbd_uri('r1', 'v1'), 'read -P 0x5a 0 4k')
    assert 'verification failed' not in out
