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

"""The NBD wire protocol: constants and struct layouts, kept in one place.

Reference: NetworkBlockDevice/nbd doc/proto.md. We speak the fixed newstyle
handshake and simple replies only (no structured replies; TLS through
NBD_OPT_STARTTLS), which is
what qemu, libnbd, fio and the kernel client all fall back to.
All integers are big-endian.
"""

import errno
import struct

# Handshake magics.
NBDMAGIC = 0x4E42444D41474943  # "NBDMAGIC"
IHAVEOPT = 0x49484156454F5054  # "IHAVEOPT"
OPTION_REPLY_MAGIC = 0x0003E889045565A9

# Transmission magics.
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698

# Handshake flags (server, 16 bits) and client flags (32 bits).
FLAG_FIXED_NEWSTYLE = 1 << 0
FLAG_NO_ZEROES = 1 << 1
FLAG_C_FIXED_NEWSTYLE = FLAG_FIXED_NEWSTYLE
FLAG_C_NO_ZEROES = FLAG_NO_ZEROES
SERVER_HANDSHAKE_FLAGS = FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES

# Options.
OPT_EXPORT_NAME = 1
OPT_ABORT = 2
OPT_LIST = 3
OPT_STARTTLS = 5
OPT_INFO = 6
OPT_GO = 7
OPT_STRUCTURED_REPLY = 8

# Option reply types; errors have bit 31 set.
REP_ACK = 1
REP_SERVER = 2
REP_INFO = 3
REP_FLAG_ERROR = 1 << 31
REP_ERR_UNSUP = REP_FLAG_ERROR | 1
REP_ERR_POLICY = REP_FLAG_ERROR | 2
REP_ERR_INVALID = REP_FLAG_ERROR | 3
REP_ERR_PLATFORM = REP_FLAG_ERROR | 4
REP_ERR_TLS_REQD = REP_FLAG_ERROR | 5
REP_ERR_UNKNOWN = REP_FLAG_ERROR | 6
REP_ERR_SHUTDOWN = REP_FLAG_ERROR | 7
REP_ERR_BLOCK_SIZE_REQD = REP_FLAG_ERROR | 8
REP_ERR_TOO_BIG = REP_FLAG_ERROR | 9

# Info types carried in NBD_REP_INFO.
INFO_EXPORT = 0
INFO_NAME = 1
INFO_DESCRIPTION = 2
INFO_BLOCK_SIZE = 3

# Transmission flags (16 bits).
FLAG_HAS_FLAGS = 1 << 0
FLAG_READ_ONLY = 1 << 1
FLAG_SEND_FLUSH = 1 << 2
FLAG_SEND_FUA = 1 << 3
FLAG_ROTATIONAL = 1 << 4
FLAG_SEND_TRIM = 1 << 5
FLAG_SEND_WRITE_ZEROES = 1 << 6
FLAG_SEND_DF = 1 << 7
FLAG_CAN_MULTI_CONN = 1 << 8

# Commands.
CMD_READ = 0
CMD_WRITE = 1
CMD_DISC = 2
CMD_FLUSH = 3
CMD_TRIM = 4
CMD_CACHE = 5
CMD_WRITE_ZEROES = 6
CMD_BLOCK_STATUS = 7

# Command flags.
CMD_FLAG_FUA = 1 << 0
CMD_FLAG_NO_HOLE = 1 << 1

# Error values on the wire: the spec fixes them to the Linux numbers.
EPERM = errno.EPERM
EIO = errno.EIO
ENOMEM = errno.ENOMEM
EINVAL = errno.EINVAL
ENOSPC = errno.ENOSPC
EOVERFLOW = errno.EOVERFLOW
ENOTSUP = errno.ENOTSUP
ESHUTDOWN = errno.ESHUTDOWN
WIRE_ERRNOS = frozenset((EPERM, EIO, ENOMEM, EINVAL, ENOSPC, EOVERFLOW,
                         ENOTSUP, ESHUTDOWN))

# Block size constraints we advertise; MAX_PAYLOAD bounds what one request
# may move, so a peer can never make us allocate more than this at once.
MIN_BLOCK_SIZE = 1
PREFERRED_BLOCK_SIZE = 4096
MAX_PAYLOAD = 32 * 1024 * 1024

MAX_NAME_LENGTH = 4096
# Option payloads are names plus a few info requests; anything larger is
# either hostile or a desynchronised stream.
MAX_OPTION_LENGTH = MAX_NAME_LENGTH + 4 + 2 + 2 * 64

# Only the old NBD_OPT_EXPORT_NAME reply pads with zeroes.
EXPORT_NAME_PADDING = b"\0" * 124

# Struct layouts.
SERVER_GREETING = struct.Struct(">QQH")      # NBDMAGIC, IHAVEOPT, flags
CLIENT_FLAGS = struct.Struct(">I")
OPTION_HEADER = struct.Struct(">QII")        # IHAVEOPT, option, length
OPTION_REPLY_HEADER = struct.Struct(">QIII")  # magic, option, type, length
EXPORT_NAME_REPLY = struct.Struct(">QH")     # size, transmission flags
INFO_EXPORT_BODY = struct.Struct(">HQH")     # INFO_EXPORT, size, flags
INFO_BLOCK_SIZE_BODY = struct.Struct(">HIII")  # INFO_BLOCK_SIZE, min, pref, max
REQUEST = struct.Struct(">IHHQQI")           # magic, flags, type, handle, offset, length
SIMPLE_REPLY = struct.Struct(">IIQ")         # magic, error, handle

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


def encode_greeting(flags=SERVER_HANDSHAKE_FLAGS):
    return SERVER_GREETING.pack(NBDMAGIC, IHAVEOPT, flags)


def decode_greeting(data):
    """Return the server's handshake flags; ValueError if not newstyle NBD."""
    magic, opt_magic, flags = SERVER_GREETING.unpack(data)
    if magic != NBDMAGIC or opt_magic != IHAVEOPT:
        raise ValueError("not an NBD newstyle server greeting")
    return flags


def encode_option(option, data=b""):
    return OPTION_HEADER.pack(IHAVEOPT, option, len(data)) + data


def decode_option_header(data):
    """Return (option, length); ValueError on a bad magic."""
    magic, option, length = OPTION_HEADER.unpack(data)
    if magic != IHAVEOPT:
        raise ValueError("bad option magic 0x%x" % magic)
    return option, length


def encode_option_reply(option, reply_type, data=b""):
    return OPTION_REPLY_HEADER.pack(
        OPTION_REPLY_MAGIC, option, reply_type, len(data)) + data


def decode_option_reply_header(data):
    """Return (option, reply_type, length); ValueError on a bad magic."""
    magic, option, reply_type, length = OPTION_REPLY_HEADER.unpack(data)
    if magic != OPTION_REPLY_MAGIC:
        raise ValueError("bad option reply magic 0x%x" % magic)
    return option, reply_type, length


def is_error_reply(reply_type):
    return bool(reply_type & REP_FLAG_ERROR)


def encode_go_request(name, info_requests=()):
    """Body of NBD_OPT_GO / NBD_OPT_INFO."""
    raw = name.encode("utf-8")
    return (_U32.pack(len(raw)) + raw + _U16.pack(len(info_requests))
            + b"".join(_U16.pack(i) for i in info_requests))


def decode_go_request(data):
    """Return (name, info_requests); ValueError if malformed."""
    if len(data) < 6:
        raise ValueError("GO/INFO payload too short")
    (name_len,) = _U32.unpack_from(data, 0)
    if name_len > len(data) - 6:
        raise ValueError("export name length exceeds the option payload")
    name = bytes(data[4:4 + name_len]).decode("utf-8")
    (count,) = _U16.unpack_from(data, 4 + name_len)
    rest = data[6 + name_len:]
    if len(rest) != 2 * count:
        raise ValueError("info request count does not match the payload")
    return name, [_U16.unpack_from(rest, 2 * i)[0] for i in range(count)]


def encode_info_export(size, transmission_flags):
    return INFO_EXPORT_BODY.pack(INFO_EXPORT, size, transmission_flags)


def encode_info_block_size(minimum=MIN_BLOCK_SIZE,
                           preferred=PREFERRED_BLOCK_SIZE,
                           maximum=MAX_PAYLOAD):
    return INFO_BLOCK_SIZE_BODY.pack(INFO_BLOCK_SIZE, minimum, preferred,
                                     maximum)


def encode_info_text(info_type, text):
    """NBD_INFO_NAME or NBD_INFO_DESCRIPTION."""
    return _U16.pack(info_type) + text.encode("utf-8")


def decode_info(data):
    """Decode an NBD_REP_INFO body into (info_type, value).

    value is (size, flags) for INFO_EXPORT, (min, preferred, max) for
    INFO_BLOCK_SIZE, a str for NAME/DESCRIPTION and the raw bytes otherwise.
    """
    if len(data) < 2:
        raise ValueError("NBD_REP_INFO payload too short")
    (info_type,) = _U16.unpack_from(data, 0)
    if info_type == INFO_EXPORT:
        if len(data) != INFO_EXPORT_BODY.size:
            raise ValueError("bad NBD_INFO_EXPORT length %d" % len(data))
        _, size, flags = INFO_EXPORT_BODY.unpack(data)
        return info_type, (size, flags)
    if info_type == INFO_BLOCK_SIZE:
        if len(data) != INFO_BLOCK_SIZE_BODY.size:
            raise ValueError("bad NBD_INFO_BLOCK_SIZE length %d" % len(data))
        return info_type, INFO_BLOCK_SIZE_BODY.unpack(data)[1:]
    if info_type in (INFO_NAME, INFO_DESCRIPTION):
        return info_type, bytes(data[2:]).decode("utf-8", "replace")
    return info_type, bytes(data[2:])


def encode_server_entry(name):
    """Body of one NBD_REP_SERVER reply to NBD_OPT_LIST."""
    raw = name.encode("utf-8")
    return _U32.pack(len(raw)) + raw


def decode_server_entry(data):
    if len(data) < 4:
        raise ValueError("NBD_REP_SERVER payload too short")
    (name_len,) = _U32.unpack_from(data, 0)
    if name_len > len(data) - 4:
        raise ValueError("NBD_REP_SERVER name length exceeds the payload")
    return bytes(data[4:4 + name_len]).decode("utf-8")


def encode_export_name_reply(size, transmission_flags, no_zeroes):
    reply = EXPORT_NAME_REPLY.pack(size, transmission_flags)
    return reply if no_zeroes else reply + EXPORT_NAME_PADDING


def encode_request(command, handle, offset=0, length=0, flags=0):
    return REQUEST.pack(REQUEST_MAGIC, flags, command, handle, offset, length)


def decode_request(data, pos=0):
    """Return (magic, flags, command, handle, offset, length).

    The magic is returned rather than checked so the caller decides how
    to treat a desynchronised peer.
    """
    return REQUEST.unpack_from(data, pos)


def encode_simple_reply(handle, error=0):
    return SIMPLE_REPLY.pack(SIMPLE_REPLY_MAGIC, error, handle)


def decode_simple_reply(data, pos=0):
    """Return (magic, error, handle)."""
    return SIMPLE_REPLY.unpack_from(data, pos)


def loggable_name(name):
    """An export name as logs may show it.

    A client may append a credential to the export name after a "/" (the
    edge sends "<volume>/<attachment token>"); it never reaches a log.
    """
    head, sep, _ = name.partition("/")
    return head + (sep and "/<redacted>")
