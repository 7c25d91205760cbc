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

"""Malformed NBD traffic against a live server never changes data or stops it.

Every generated request is invalid in a way that must not reach the export
(bad magic, unknown command or flag, out-of-range offset, oversize length),
optionally cut short; afterwards a well-behaved client must read exactly
the data written before.
"""

import asyncio
import os
import socket
import struct
import time

from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st
import pytest

from ovs_daemon.nbd import client as client_mod
from ovs_daemon.nbd import protocol

SIZE = 1024 * 1024
u16 = st.integers(0, 2**16 - 1)
u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
SERVED_COMMANDS = (protocol.CMD_READ, protocol.CMD_WRITE, protocol.CMD_DISC,
                   protocol.CMD_FLUSH, protocol.CMD_TRIM,
                   protocol.CMD_WRITE_ZEROES)
DATA_COMMANDS = (protocol.CMD_READ, protocol.CMD_WRITE, protocol.CMD_TRIM,
                 protocol.CMD_WRITE_ZEROES)


def request(command, offset, length, flags=0, payload=b""):
    return protocol.encode_request(command, 1, offset, length,
                                   flags) + payload


@st.composite
def bad_magic(draw):
    raw = bytearray(draw(st.binary(min_size=28, max_size=28)))
    if raw[:4] == struct.pack(">I", protocol.REQUEST_MAGIC):
        raw[0] ^= 0xFF
    return bytes(raw)


@st.composite
def unknown_command(draw):
    command = draw(u16.filter(lambda c: c not in SERVED_COMMANDS))
    return request(command, draw(u64), draw(st.integers(0, 4096)),
                   draw(u16))


@st.composite
def out_of_range(draw):
    command = draw(st.sampled_from(DATA_COMMANDS))
    length = draw(st.integers(1, 65536))
    offset = draw(st.integers(SIZE - length + 1, 2**64 - 1))
    payload = (draw(st.binary(min_size=length, max_size=length))
               if command == protocol.CMD_WRITE else b"")
    return request(command, offset, length, payload=payload)


@st.composite
def unknown_flags_write(draw):
    flags = draw(u16.filter(lambda f: f & ~protocol.CMD_FLAG_FUA))
    length = draw(st.integers(1, 4096))
    offset = draw(st.integers(0, SIZE - length))
    return request(protocol.CMD_WRITE, offset, length, flags,
                   b"\xee" * length)


@st.composite
def huge_length(draw):
    command = draw(st.sampled_from((protocol.CMD_READ, protocol.CMD_WRITE)))
    return request(command, draw(st.integers(0, SIZE)),
                   draw(st.integers(protocol.MAX_PAYLOAD + 1, 2**32 - 1)))


def valid_read():
    return st.just(request(protocol.CMD_READ, 0, 512))


bad_requests = st.lists(st.one_of(bad_magic(), unknown_command(),
                                  out_of_range(), unknown_flags_write(),
                                  huge_length(), valid_read()),
                        min_size=1, max_size=8)


@st.composite
def bad_option(draw):
    magic = draw(st.sampled_from([protocol.IHAVEOPT, 0, draw(u64)]))
    option = draw(st.sampled_from([protocol.OPT_GO, protocol.OPT_INFO,
                                   protocol.OPT_LIST, draw(u32)]))
    data = draw(st.binary(max_size=64))
    length = draw(st.sampled_from([len(data), draw(u32)]))
    return struct.pack(">QII", magic, option, length) + data


handshakes = st.tuples(
    st.sampled_from([3, 1, 0, 2, 0xFFFFFFFF]),
    st.lists(bad_option(), max_size=4),
).map(lambda t: struct.pack(">I", t[0]) + b"".join(t[1]))


def go_handshake(name="vol1"):
    return (struct.pack(">I", 3) + protocol.encode_option(
        protocol.OPT_GO, protocol.encode_go_request(name)))


def send_and_drain(port, data):
    """Send, half-close, and read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(65536):
                pass
        except (ConnectionResetError, BrokenPipeError):
            pass  # the server is allowed to drop us


def read_all(port, name="vol1"):
    async def read():
        nbd = await client_mod.NBDClient.connect_tcp("127.0.0.1", port,
                                                     name, timeout=10)
        data = await nbd.read(0, SIZE)
        await nbd.close()
        return bytes(data)
    return asyncio.run(read())


def write_all(port, data, name="vol1"):
    async def write():
        nbd = await client_mod.NBDClient.connect_tcp("127.0.0.1", port,
                                                     name, timeout=10)
        await nbd.write(0, data)
        await nbd.flush()
        await nbd.close()
    asyncio.run(write())


def wait_for_no_sessions(server):
    deadline = time.monotonic() + 10
    while server.session_count() and time.monotonic() < deadline:
        time.sleep(0.01)
    return server.session_count()


@pytest.fixture
def served(threaded_server):
    """The live server and the data its export must keep holding."""
    reference = os.urandom(SIZE)
    write_all(threaded_server.port, reference)
    return threaded_server, reference


fuzz_settings = settings(max_examples=150, deadline=None,
                         suppress_health_check=[
                             HealthCheck.function_scoped_fixture])


@fuzz_settings
@given(requests=bad_requests, cut=st.one_of(st.none(), st.integers(0, 200)))
def test_malformed_requests_change_nothing(served, requests, cut):
    server, reference = served
    stream = go_handshake() + b"".join(requests)
    if cut is not None:
        stream = stream[:len(stream) - cut]
    send_and_drain(server.port, stream)
    assert read_all(server.port) == reference
    assert wait_for_no_sessions(server) == 0


@fuzz_settings
@given(handshake=handshakes, cut=st.one_of(st.none(), st.integers(0, 50)))
def test_malformed_handshakes_leave_the_server_serving(served, handshake,
                                                       cut):
    server, reference = served
    if cut is not None:
        handshake = handshake[:len(handshake) - cut]
    send_and_drain(server.port, handshake)
    assert read_all(server.port) == reference
    assert wait_for_no_sessions(server) == 0
