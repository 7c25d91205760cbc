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

import struct

from hypothesis import given
from hypothesis import strategies as st
import pytest

from ovs_daemon.nbd import errors
from ovs_daemon.nbd import protocol

u16 = st.integers(0, 2**16 - 1)
u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
names = st.text(max_size=100)


def test_magics_spell_what_the_spec_says():
    assert struct.pack(">Q", protocol.NBDMAGIC) == b"NBDMAGIC"
    assert struct.pack(">Q", protocol.IHAVEOPT) == b"IHAVEOPT"


def test_greeting_is_18_bytes_and_offers_fixed_newstyle_and_no_zeroes():
    greeting = protocol.encode_greeting()
    assert len(greeting) == 18
    assert greeting[:16] == b"NBDMAGICIHAVEOPT"
    assert protocol.decode_greeting(greeting) == 3


def test_greeting_with_wrong_magic_is_rejected():
    with pytest.raises(ValueError):
        protocol.decode_greeting(b"NBDMAGIC" + b"\0" * 10)


@given(command=u16, handle=u64, offset=u64, length=u32, flags=u16)
def test_request_round_trip(command, handle, offset, length, flags):
    raw = protocol.encode_request(command, handle, offset, length, flags)
    assert len(raw) == 28
    assert protocol.decode_request(raw) == (
        protocol.REQUEST_MAGIC, flags, command, handle, offset, length)


def test_request_layout_matches_the_spec():
    raw = protocol.encode_request(protocol.CMD_WRITE, 0x0102030405060708,
                                  4096, 512, protocol.CMD_FLAG_FUA)
    assert raw.hex() == ("25609513" "0001" "0001" "0102030405060708"
                         "0000000000001000" "00000200")


@given(handle=u64, error=u32)
def test_simple_reply_round_trip(handle, error):
    raw = protocol.encode_simple_reply(handle, error)
    assert raw[:4] == bytes.fromhex("67446698")
    assert protocol.decode_simple_reply(raw) == (
        protocol.SIMPLE_REPLY_MAGIC, error, handle)


@given(option=u32, data=st.binary(max_size=64))
def test_option_round_trip(option, data):
    raw = protocol.encode_option(option, data)
    assert protocol.decode_option_header(raw[:16]) == (option, len(data))
    assert raw[16:] == data


def test_option_header_with_bad_magic_is_rejected():
    with pytest.raises(ValueError):
        protocol.decode_option_header(b"X" * 16)


@given(option=u32, reply_type=u32, data=st.binary(max_size=64))
def test_option_reply_round_trip(option, reply_type, data):
    raw = protocol.encode_option_reply(option, reply_type, data)
    assert protocol.decode_option_reply_header(raw[:20]) == (
        option, reply_type, len(data))
    assert raw[20:] == data


def test_error_reply_types_have_bit_31():
    assert protocol.REP_ERR_UNSUP == 0x80000001
    assert protocol.REP_ERR_POLICY == 0x80000002
    assert protocol.is_error_reply(protocol.REP_ERR_UNKNOWN)
    assert not protocol.is_error_reply(protocol.REP_INFO)


@given(name=names, infos=st.lists(u16, max_size=5))
def test_go_request_round_trip(name, infos):
    raw = protocol.encode_go_request(name, infos)
    assert protocol.decode_go_request(raw) == (name, infos)


@pytest.mark.parametrize("raw", [
    b"",
    b"\0\0\0\x09abc\0\0",             # name longer than the payload
    b"\0\0\0\x01a\0\x02\0\x01",       # two info requests announced, one sent
    b"\0\0\0\x01\xff\0\0",            # name is not UTF-8
])
def test_malformed_go_requests_are_rejected(raw):
    with pytest.raises(ValueError):
        protocol.decode_go_request(raw)


@given(size=u64, flags=u16)
def test_info_export_round_trip(size, flags):
    raw = protocol.encode_info_export(size, flags)
    assert len(raw) == 12
    assert protocol.decode_info(raw) == (protocol.INFO_EXPORT, (size, flags))


def test_info_block_size_defaults():
    raw = protocol.encode_info_block_size()
    assert protocol.decode_info(raw) == (
        protocol.INFO_BLOCK_SIZE, (1, 4096, 32 * 1024 * 1024))


@given(text=names)
def test_info_name_round_trip(text):
    raw = protocol.encode_info_text(protocol.INFO_NAME, text)
    assert protocol.decode_info(raw) == (protocol.INFO_NAME, text)


def test_truncated_info_is_rejected():
    with pytest.raises(ValueError):
        protocol.decode_info(protocol.encode_info_export(1, 1)[:-1])


@given(name=names)
def test_server_entry_round_trip(name):
    assert protocol.decode_server_entry(
        protocol.encode_server_entry(name)) == name


def test_export_name_reply_pads_unless_no_zeroes():
    assert len(protocol.encode_export_name_reply(1, 1, no_zeroes=False)) == 134
    assert len(protocol.encode_export_name_reply(1, 1, no_zeroes=True)) == 10


def test_request_error_accepts_only_wire_errnos():
    assert errors.RequestError(protocol.ENOSPC).errno == 28
    with pytest.raises(ValueError):
        errors.RequestError(2)  # ENOENT has no NBD meaning


def test_export_refused_keeps_message_and_reply_type():
    exc = errors.ExportRefused("volume vol1 is owned by router r2",
                               protocol.REP_ERR_POLICY)
    assert str(exc) == "volume vol1 is owned by router r2"
    assert exc.reply_type == protocol.REP_ERR_POLICY
