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

"""Server and client talking to each other in one event loop."""

import asyncio
import contextlib
import os
import random
import stat
import struct

import pytest

from ovs_daemon.devcluster import process as process_mod
from ovs_daemon.nbd import client as client_mod
from ovs_daemon.nbd import errors
from ovs_daemon.nbd import export as export_mod
from ovs_daemon.nbd import protocol
from ovs_daemon.nbd import server as server_mod
from ovs_daemon.nbd import session as session_mod
from tests import awaiting

MiB = 1024 * 1024


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


class Resolver:
    def __init__(self, *exports, listable=True):
        self.exports = {e.name: e for e in exports}
        self.resolved = []
        if listable:
            self.list_exports = lambda: sorted(self.exports)

    async def __call__(self, name):
        self.resolved.append(name)
        if name not in self.exports:
            raise errors.ExportRefused(
                "volume %s is owned by router r2 at 127.0.0.1:10810" % name,
                protocol.REP_ERR_UNKNOWN)
        return self.exports[name]


@contextlib.asynccontextmanager
async def serving(*exports, listable=True):
    server = server_mod.NBDServer(Resolver(*exports, listable=listable))
    await server.start_tcp("127.0.0.1", 0)
    try:
        yield server
    finally:
        await server.stop()


async def connect(server, name="vol1"):
    return await client_mod.NBDClient.connect_tcp(
        "127.0.0.1", server.bound_port, name, timeout=5)


class RecordingExport(export_mod.MemoryExport):
    """Records the order in which the server calls the export, and can
    make writes slow so later requests arrive while they are running."""

    def __init__(self, name, size, write_delay=0.0):
        super().__init__(name, size)
        self.calls = []
        self.closed = 0
        self.write_delay = write_delay

    async def write(self, offset, data, fua):
        self.calls.append(("write-start", offset))
        if self.write_delay:
            await asyncio.sleep(random.random() * self.write_delay)
        await super().write(offset, data, fua)
        self.calls.append(("write-end", offset))

    async def flush(self):
        self.calls.append(("flush", None))

    async def close(self):
        self.closed += 1


def test_write_then_read_returns_the_data():
    async def scenario():
        async with serving(export_mod.MemoryExport("vol1", 8 * MiB)) as srv:
            nbd = await connect(srv)
            assert nbd.size == 8 * MiB
            assert nbd.block_sizes == (1, 4096, 32 * MiB)
            data = os.urandom(MiB + 7)
            await nbd.write(4095, data)
            assert await nbd.read(4095, len(data)) == data
            assert await nbd.read(0, 4095) == bytes(4095)
            await nbd.close()
    run(scenario())


def test_transmission_flags_advertise_what_the_server_does():
    async def scenario():
        async with serving(export_mod.MemoryExport("vol1", MiB)) as srv:
            nbd = await connect(srv)
            for flag in (protocol.FLAG_HAS_FLAGS, protocol.FLAG_SEND_FLUSH,
                         protocol.FLAG_SEND_FUA, protocol.FLAG_SEND_TRIM,
                         protocol.FLAG_SEND_WRITE_ZEROES,
                         protocol.FLAG_CAN_MULTI_CONN):
                assert nbd.transmission_flags & flag
            assert not nbd.read_only
            await nbd.close()
    run(scenario())


def test_many_pipelined_requests_all_complete_correctly():
    async def scenario():
        async with serving(export_mod.MemoryExport("vol1", 4 * MiB)) as srv:
            nbd = await connect(srv)
            blocks = {i: os.urandom(4096) for i in range(1024)}
            await asyncio.gather(*(nbd.write(i * 4096, b, fua=i % 2 == 0)
                                   for i, b in blocks.items()))
            order = list(blocks)
            random.shuffle(order)
            got = await asyncio.gather(*(nbd.read(i * 4096, 4096)
                                         for i in order))
            assert [bytes(g) for g in got] == [blocks[i] for i in order]
            await nbd.close()
    run(scenario())


def test_overlapping_writes_in_flight_are_applied_in_arrival_order():
    export = RecordingExport("vol1", MiB, write_delay=0.002)

    async def scenario():
        async with serving(export) as srv:
            nbd = await connect(srv)
            writes = [nbd.write(0, bytes([i]) * 512) for i in range(1, 51)]
            # The read is sent after all writes: it must see the last one.
            reads = nbd.read(0, 512)
            results = await asyncio.gather(*writes, reads)
            assert results[-1] == bytes([50]) * 512
            await nbd.close()
    run(scenario())
    starts_and_ends = [c[0] for c in export.calls]
    assert starts_and_ends == ["write-start", "write-end"] * 50


def test_flush_runs_after_every_earlier_write_completed():
    export = RecordingExport("vol1", MiB, write_delay=0.005)

    async def scenario():
        async with serving(export) as srv:
            nbd = await connect(srv)
            await asyncio.gather(*(nbd.write(i * 512, b"x" * 512)
                                   for i in range(20)), nbd.flush())
            await nbd.close()
    run(scenario())
    assert export.calls[-1] == ("flush", None)
    assert len(export.calls) == 41


def test_out_of_range_requests_get_einval_and_change_nothing():
    export = export_mod.MemoryExport("vol1", MiB)

    async def scenario():
        async with serving(export) as srv:
            nbd = await connect(srv)
            await nbd.write(MiB - 4096, b"k" * 4096)
            attempts = [
                nbd.write(MiB - 4095, b"z" * 4096),
                nbd.write(2**63, b"z"),
                nbd.read(MiB, 1),
                nbd.trim(MiB - 4096, 4097),
                nbd.write_zeroes(0, MiB + 1),
            ]
            for attempt in attempts:
                with pytest.raises(errors.RemoteIOError) as info:
                    await attempt
                assert info.value.errno == protocol.EINVAL
            # The connection is still usable and the data is unchanged.
            assert await nbd.read(MiB - 4096, 4096) == b"k" * 4096
            await nbd.close()
    run(scenario())


def test_trim_and_write_zeroes_zero_the_range():
    async def scenario():
        async with serving(export_mod.MemoryExport("vol1", 64 * MiB)) as srv:
            nbd = await connect(srv)
            await nbd.write(0, b"\xff" * (3 * 4096))
            await nbd.trim(0, 4096)
            await nbd.write_zeroes(8192, 4096, no_hole=True)
            assert await nbd.read(0, 3 * 4096) == (
                bytes(4096) + b"\xff" * 4096 + bytes(4096))
            # No payload, so no 32 MiB limit: qemu zeroes in large steps.
            await nbd.write_zeroes(0, 64 * MiB, fua=True)
            await nbd.flush()
            await nbd.close()
    run(scenario())


def test_read_only_export_refuses_writes_with_eperm():
    export = export_mod.MemoryExport("vol1", MiB, read_only=True)

    async def scenario():
        async with serving(export) as srv:
            nbd = await connect(srv)
            assert nbd.read_only
            for attempt in (nbd.write(0, b"x"), nbd.trim(0, 1),
                            nbd.write_zeroes(0, 1)):
                with pytest.raises(errors.RemoteIOError) as info:
                    await attempt
                assert info.value.errno == protocol.EPERM
            assert await nbd.read(0, 1) == b"\0"
            await nbd.close()
    run(scenario())


class FailingExport(export_mod.MemoryExport):
    async def write(self, offset, data, fua):
        raise errors.RequestError(protocol.ENOSPC)

    async def read(self, offset, length):
        raise RuntimeError("disk on fire")


def test_export_errors_reach_the_client_as_errnos():
    async def scenario():
        async with serving(FailingExport("vol1", MiB)) as srv:
            nbd = await connect(srv)
            with pytest.raises(errors.RemoteIOError) as info:
                await nbd.write(0, b"x")
            assert info.value.errno == protocol.ENOSPC
            with pytest.raises(errors.RemoteIOError) as info:
                await nbd.read(0, 1)
            assert info.value.errno == protocol.EIO
            await nbd.flush()
            await nbd.close()
    run(scenario())


def test_extended_export_serves_the_new_range():
    export = export_mod.MemoryExport("vol1", MiB)

    async def scenario():
        async with serving(export) as srv:
            nbd = await connect(srv)
            export.extend(2 * MiB)
            await nbd.write(MiB, b"new")
            assert await nbd.read(MiB, 3) == b"new"
            await nbd.close()
    run(scenario())


def test_refused_export_raises_with_the_servers_message():
    async def scenario():
        async with serving(export_mod.MemoryExport("vol1", MiB)) as srv:
            with pytest.raises(errors.ExportRefused) as info:
                await connect(srv, "vol9")
            assert info.value.message == (
                "volume vol9 is owned by router r2 at 127.0.0.1:10810")
            assert info.value.reply_type == protocol.REP_ERR_UNKNOWN
    run(scenario())


def test_client_oversized_request_is_refused_locally():
    async def scenario():
        async with serving(export_mod.MemoryExport("vol1", 64 * MiB)) as srv:
            nbd = await connect(srv)
            with pytest.raises(ValueError):
                await nbd.read(0, 32 * MiB + 1)
            assert len(await nbd.read(0, 32 * MiB)) == 32 * MiB
            await nbd.close()
    run(scenario())


def test_disconnect_export_fails_requests_in_flight_with_connection_lost():
    export = RecordingExport("vol1", MiB, write_delay=0.05)
    other = export_mod.MemoryExport("vol2", MiB)

    async def scenario():
        async with serving(export, other) as srv:
            nbd = await connect(srv)
            bystander = await connect(srv, "vol2")
            writes = [asyncio.ensure_future(nbd.write(i * 512, b"w" * 512))
                      for i in range(20)]
            await asyncio.sleep(0.01)
            assert await srv.disconnect_export("vol1") == 1
            calls_at_disconnect = len(export.calls)
            results = await asyncio.gather(*writes, return_exceptions=True)
            assert any(isinstance(r, errors.ConnectionLost) for r in results)
            assert all(r is None or isinstance(r, errors.ConnectionLost)
                       for r in results)
            with pytest.raises(errors.ConnectionLost):
                await nbd.read(0, 1)
            assert nbd.closed
            # Nothing reached the export after disconnect_export returned.
            await asyncio.sleep(0.1)
            assert len(export.calls) == calls_at_disconnect
            assert export.calls[-1][0] == "write-end"
            assert export.closed == 1
            assert [s.export_name for s in srv.sessions()] == ["vol2"]
            await bystander.write(0, b"still served")
            assert await bystander.read(0, 12) == b"still served"
            await bystander.close()
    run(scenario())


def test_server_stop_fails_client_requests_promptly():
    export = RecordingExport("vol1", MiB, write_delay=0.05)

    async def scenario():
        srv = server_mod.NBDServer(Resolver(export))
        await srv.start_tcp("127.0.0.1", 0)
        nbd = await connect(srv)
        pending = asyncio.ensure_future(nbd.write(0, b"x"))
        await asyncio.sleep(0)
        await srv.stop()
        with pytest.raises(errors.ConnectionLost):
            await pending
        await nbd.wait_closed()
        assert srv.sessions() == []
    run(scenario())


def test_session_end_closes_the_export_once():
    export = RecordingExport("vol1", MiB)

    async def scenario():
        async with serving(export) as srv:
            for _ in range(3):
                nbd = await connect(srv)
                await nbd.write(0, b"a")
                await nbd.close()
            await awaiting.until(lambda: export.closed == 3)
            assert srv.sessions() == []
    run(scenario())


def test_unix_socket_is_private_and_serves(tmp_path):
    path = str(tmp_path / "nbd.sock")

    async def scenario():
        srv = server_mod.NBDServer(Resolver(
            export_mod.MemoryExport("vol1", MiB)))
        await srv.start_unix(path)
        await srv.start_tcp("127.0.0.1", 0)
        try:
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
            assert ("unix", path) in srv.addresses
            nbd = await client_mod.NBDClient.connect_unix(path, "vol1")
            await nbd.write(0, b"via unix")
            tcp = await connect(srv)
            assert await tcp.read(0, 8) == b"via unix"
            await nbd.close()
            await tcp.close()
        finally:
            await srv.stop()
        assert not os.path.exists(path)
    run(scenario())


def test_start_unix_refuses_a_socket_another_server_listens_on(tmp_path):
    path = str(tmp_path / "nbd.sock")

    async def scenario():
        first = server_mod.NBDServer(Resolver())
        await first.start_unix(path)
        try:
            with pytest.raises(OSError):
                await server_mod.NBDServer(Resolver()).start_unix(path)
        finally:
            await first.stop()
    run(scenario())


# -- raw handshake checks -------------------------------------------------

class RawPeer:
    """Speaks NBD bytes by hand, for what NBDClient never sends."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, server, client_flags=3):
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.bound_port)
        peer = cls(reader, writer)
        assert protocol.decode_greeting(await reader.readexactly(18)) == 3
        writer.write(struct.pack(">I", client_flags))
        return peer

    def option(self, option, data=b""):
        self.writer.write(protocol.encode_option(option, data))

    async def reply(self):
        header = await self.reader.readexactly(20)
        option, reply_type, length = protocol.decode_option_reply_header(
            header)
        return option, reply_type, await self.reader.readexactly(length)

    async def closed_by_server(self):
        return await self.reader.read() == b""


def test_list_names_the_exports():
    async def scenario():
        async with serving(export_mod.MemoryExport("a", 1),
                           export_mod.MemoryExport("b", 1)) as srv:
            peer = await RawPeer.open(srv)
            peer.option(protocol.OPT_LIST)
            names = []
            while True:
                _, reply_type, data = await peer.reply()
                if reply_type == protocol.REP_ACK:
                    break
                assert reply_type == protocol.REP_SERVER
                names.append(protocol.decode_server_entry(data))
            assert names == ["a", "b"]
            peer.option(protocol.OPT_ABORT)
            assert (await peer.reply())[1] == protocol.REP_ACK
            assert await peer.closed_by_server()
    run(scenario())


def test_list_without_list_exports_is_refused_by_policy():
    async def scenario():
        async with serving(export_mod.MemoryExport("a", 1),
                           listable=False) as srv:
            peer = await RawPeer.open(srv)
            peer.option(protocol.OPT_LIST)
            assert (await peer.reply())[1] == protocol.REP_ERR_POLICY
    run(scenario())


def test_unknown_options_get_unsup_and_negotiation_continues():
    async def scenario():
        async with serving(export_mod.MemoryExport("vol1", 4096)) as srv:
            peer = await RawPeer.open(srv)
            for option in (protocol.OPT_STRUCTURED_REPLY, 999):
                peer.option(option)
                assert (await peer.reply())[:2] == (
                    option, protocol.REP_ERR_UNSUP)
            # Without a certificate the server does not offer TLS (NOTLS).
            peer.option(protocol.OPT_STARTTLS)
            assert (await peer.reply())[:2] == (
                protocol.OPT_STARTTLS, protocol.REP_ERR_POLICY)
            peer.option(protocol.OPT_INFO, protocol.encode_go_request(
                "vol1", [protocol.INFO_NAME]))
            infos = {}
            while True:
                option, reply_type, data = await peer.reply()
                assert option == protocol.OPT_INFO
                if reply_type == protocol.REP_ACK:
                    break
                info_type, value = protocol.decode_info(data)
                infos[info_type] = value
            assert infos[protocol.INFO_EXPORT][0] == 4096
            assert infos[protocol.INFO_NAME] == "vol1"
            assert infos[protocol.INFO_BLOCK_SIZE] == (1, 4096, 32 * MiB)
            # INFO does not end negotiation: a malformed GO is answered.
            peer.option(protocol.OPT_GO, b"\0\0\0\x05ab")
            assert (await peer.reply())[1] == protocol.REP_ERR_INVALID
    run(scenario())


def test_old_style_export_name_enters_transmission():
    export = export_mod.MemoryExport("vol1", 4096)

    async def scenario():
        async with serving(export) as srv:
            peer = await RawPeer.open(srv, client_flags=1)
            peer.option(protocol.OPT_EXPORT_NAME, b"vol1")
            reply = await peer.reader.readexactly(10 + 124)
            assert protocol.EXPORT_NAME_REPLY.unpack(reply[:10])[0] == 4096
            peer.writer.write(protocol.encode_request(
                protocol.CMD_WRITE, 7, 0, 2) + b"hi")
            assert protocol.decode_simple_reply(
                await peer.reader.readexactly(16)) == (
                    protocol.SIMPLE_REPLY_MAGIC, 0, 7)
            peer.writer.write(protocol.encode_request(protocol.CMD_DISC, 8))
            assert await peer.closed_by_server()
    run(scenario())
    assert export._data[:2] == b"hi"


def test_export_name_reply_omits_zeroes_when_client_asks():
    async def scenario():
        async with serving(export_mod.MemoryExport("vol1", 4096)) as srv:
            peer = await RawPeer.open(srv, client_flags=3)
            peer.option(protocol.OPT_EXPORT_NAME, b"vol1")
            assert protocol.EXPORT_NAME_REPLY.unpack(
                await peer.reader.readexactly(10)) == (
                    4096, negotiation_flags())
            peer.writer.write(protocol.encode_request(protocol.CMD_FLUSH, 9))
            # The next bytes are the reply, not 124 zeroes.
            assert protocol.decode_simple_reply(
                await peer.reader.readexactly(16)) == (
                    protocol.SIMPLE_REPLY_MAGIC, 0, 9)
    run(scenario())


def negotiation_flags():
    return (protocol.FLAG_HAS_FLAGS | protocol.FLAG_SEND_FLUSH
            | protocol.FLAG_SEND_FUA | protocol.FLAG_SEND_TRIM
            | protocol.FLAG_SEND_WRITE_ZEROES | protocol.FLAG_CAN_MULTI_CONN)


def test_stalled_handshake_is_dropped(monkeypatch):
    monkeypatch.setattr(session_mod, "HANDSHAKE_TIMEOUT", 0.1)

    async def scenario():
        async with serving(export_mod.MemoryExport("vol1", 4096)) as srv:
            peer = await RawPeer.open(srv)
            assert await peer.closed_by_server()
            await awaiting.until(lambda: srv.sessions() == [])
    run(scenario())


def test_refused_export_name_drops_the_connection():
    async def scenario():
        async with serving(export_mod.MemoryExport("vol1", 4096)) as srv:
            peer = await RawPeer.open(srv)
            peer.option(protocol.OPT_EXPORT_NAME, b"nope")
            assert await peer.closed_by_server()
    run(scenario())


def test_unknown_client_flags_drop_the_connection(caplog):
    async def scenario():
        async with serving(export_mod.MemoryExport("vol1", 4096)) as srv:
            peer = await RawPeer.open(srv, client_flags=0x80)
            assert await peer.closed_by_server()
    run(scenario())
    # Bad input is the peer's fault: a warning, not an error with traceback.
    assert [r.levelname for r in caplog.records
            if "unknown client flags" in r.getMessage()] == ["WARNING"]


def test_unknown_command_and_flags_get_einval_in_transmission():
    async def scenario():
        async with serving(export_mod.MemoryExport("vol1", 4096)) as srv:
            peer = await RawPeer.open(srv)
            peer.option(protocol.OPT_GO, protocol.encode_go_request("vol1"))
            while (await peer.reply())[1] != protocol.REP_ACK:
                pass
            peer.writer.write(protocol.encode_request(42, 1))
            peer.writer.write(protocol.encode_request(
                protocol.CMD_READ, 2, 0, 1, flags=0x40))
            # A rejected WRITE's payload is consumed, not parsed as a request.
            peer.writer.write(protocol.encode_request(
                protocol.CMD_WRITE, 3, 4000, 200)
                + protocol.encode_request(protocol.CMD_DISC, 0) + b"x" * 172)
            peer.writer.write(protocol.encode_request(
                protocol.CMD_READ, 4, 0, 4))
            replies = {}
            for _ in range(4):
                _, error, handle = protocol.decode_simple_reply(
                    await peer.reader.readexactly(16))
                replies[handle] = error
                if handle == 4 and not error:
                    assert await peer.reader.readexactly(4) == bytes(4)
            assert replies == {1: protocol.EINVAL, 2: protocol.EINVAL,
                               3: protocol.EINVAL, 4: 0}
    run(scenario())


def test_resolver_crash_drops_only_that_client():
    class CrashingResolver(Resolver):
        async def __call__(self, name):
            if name == "boom":
                raise RuntimeError("resolver bug")
            return await super().__call__(name)

    async def scenario():
        server = server_mod.NBDServer(CrashingResolver(
            export_mod.MemoryExport("vol1", 4096)))
        await server.start_tcp("127.0.0.1", 0)
        try:
            with pytest.raises(errors.ConnectionLost):
                await connect(server, "boom")
            nbd = await connect(server)
            assert await nbd.read(0, 4) == bytes(4)
            await nbd.close()
        finally:
            await server.stop()
    run(scenario())


class SlowResolver(Resolver):
    """Answers once ``release`` is set: a handshake that takes a while."""

    def __init__(self, *exports):
        super().__init__(*exports)
        self.release = asyncio.Event()

    async def __call__(self, name):
        await self.release.wait()
        return await super().__call__(name)


def test_writes_sent_before_the_handshake_ends_are_served_after_it():
    """libnbd sends its first requests as soon as it has our GO reply; with
    1 MiB writes they arrive in megabytes before framing has started."""
    resolver = SlowResolver(export_mod.MemoryExport("vol1", 8 << 20))

    async def scenario():
        server = server_mod.NBDServer(resolver)
        await server.start_tcp("127.0.0.1", 0)
        try:
            peer = await RawPeer.open(server)
            peer.option(protocol.OPT_GO, protocol.encode_go_request("vol1"))
            for n in range(4):
                peer.writer.write(protocol.encode_request(
                    protocol.CMD_WRITE, n, offset=n << 20, length=1 << 20))
                peer.writer.write(bytes([n + 1]) * (1 << 20))
            await asyncio.sleep(0.2)
            resolver.release.set()
            while (await peer.reply())[1] != protocol.REP_ACK:
                pass
            handles = []
            for _ in range(4):
                magic, error, handle = protocol.decode_simple_reply(
                    await peer.reader.readexactly(16))
                assert (magic, error) == (protocol.SIMPLE_REPLY_MAGIC, 0)
                handles.append(handle)
            assert sorted(handles) == [0, 1, 2, 3]
            peer.writer.close()
            nbd = await connect(server)
            assert await nbd.read(3 << 20, 4) == bytes([4]) * 4
            await nbd.close()
        finally:
            resolver.release.set()
            await server.stop()
    run(scenario())


def test_a_flood_during_the_handshake_is_dropped_once_parsed(caplog):
    resolver = SlowResolver(export_mod.MemoryExport("vol1", 4096))

    async def scenario():
        server = server_mod.NBDServer(resolver)
        await server.start_tcp("127.0.0.1", 0)
        try:
            peer = await RawPeer.open(server)
            # While the resolver is busy, the client sends far more than
            # any handshake needs: held unread, then refused as garbage.
            peer.option(protocol.OPT_GO, protocol.encode_go_request("vol1"))
            peer.writer.write(b"\0" * 512 * 1024)
            await asyncio.sleep(0.2)
            resolver.release.set()
            with contextlib.suppress(ConnectionResetError):
                while await peer.reader.read(65536):   # until the server closes
                    pass
            nbd = await connect(server)
            await nbd.close()
        finally:
            resolver.release.set()
            await server.stop()
    run(scenario())
    assert any("Bad request magic" in r.getMessage() for r in caplog.records)
    # Dropped on purpose, not by asyncio tripping over a full buffer.
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_idle_sessions_hold_little_memory_and_a_busy_one_still_streams():
    """An edge holds a session per attached volume, a router one per
    volume attached to it: a thousand idle ones must not cost a receive
    buffer of a busy connection (256 KiB) each. Both ends of 300 sessions
    live in this process here."""
    sessions = 300

    async def scenario():
        async with serving(export_mod.MemoryExport("vol1", 64 * MiB)) as srv:
            first = await connect(srv)
            await first.read(0, 4096)
            before = process_mod.rss_bytes()
            idle = [await connect(srv) for _ in range(sessions)]
            for nbd in idle:
                await nbd.read(0, 4096)
            grown = process_mod.rss_bytes() - before
            assert grown < sessions * 64 * 1024, \
                "%d KiB per idle session" % (grown // sessions // 1024)

            data = os.urandom(16 * MiB)
            await asyncio.gather(*(first.write(offset, data[offset:offset + MiB])
                                   for offset in range(0, len(data), MiB)))
            got = await asyncio.gather(*(first.read(offset, 4096)
                                         for offset in range(0, len(data), 4096)))
            assert b"".join(got) == data
            for nbd in idle + [first]:
                await nbd.close()
    asyncio.run(asyncio.wait_for(scenario(), 120))


class ReadsAtOnceExport(RecordingExport):
    """Serves READs by the fast path (Export.serve_now), writes slowly."""

    def __init__(self, name, size, write_delay=0.0):
        super().__init__(name, size, write_delay)
        self.served_now = 0

    def serve_now(self, command, flags, offset, length, payload, reply):
        if command != protocol.CMD_READ:
            return False
        self.served_now += 1
        reply(None, self._data[offset:offset + length])
        return True


def test_a_read_served_at_once_still_waits_for_the_writes_sent_before_it():
    export = ReadsAtOnceExport("vol1", MiB, write_delay=0.002)

    async def scenario():
        async with serving(export) as srv:
            nbd = await connect(srv)
            before = await nbd.read(0, 512)
            writes = [nbd.write(0, bytes([i]) * 512) for i in range(1, 21)]
            results = await asyncio.gather(*writes, nbd.read(0, 512))
            await nbd.close()
            return before, results[-1]
    before, after = run(scenario())
    assert before == bytes(512)
    assert after == bytes([20]) * 512
    # The first read went the fast way; the one behind writes in flight did not.
    assert export.served_now == 1


class FailingAtOnceExport(export_mod.MemoryExport):
    def serve_now(self, command, flags, offset, length, payload, reply):
        if command == protocol.CMD_READ:
            reply(errors.RequestError(protocol.ENOSPC, "no room"), None)
            return True
        if command == protocol.CMD_WRITE:
            raise RuntimeError("the export broke")
        return False


def test_errors_of_the_fast_path_reach_the_client_and_the_session_goes_on():
    async def scenario():
        async with serving(FailingAtOnceExport("vol1", MiB)) as srv:
            nbd = await connect(srv)
            with pytest.raises(errors.RemoteIOError) as read_error:
                await nbd.read(0, 512)
            with pytest.raises(errors.RemoteIOError) as write_error:
                await nbd.write(0, b"x" * 512)
            await nbd.flush()
            await nbd.close()
            return read_error.value.errno, write_error.value.errno
    assert run(scenario()) == (protocol.ENOSPC, protocol.EIO)


def test_a_submit_callback_sees_the_reply_and_the_loss_of_the_connection():
    async def scenario():
        async with serving(export_mod.MemoryExport("vol1", MiB)) as srv:
            nbd = await connect(srv)
            seen = []
            future = nbd.submit(protocol.CMD_READ, 0, 512, callback=seen.append)
            assert await future == bytes(512)
            assert seen == [future]
            nbd.abort()
            await nbd.wait_closed()
            lost = nbd.submit(protocol.CMD_READ, 0, 512, callback=seen.append)
            assert seen[-1] is lost
            with pytest.raises(errors.ConnectionLost):
                await lost
    run(scenario())
