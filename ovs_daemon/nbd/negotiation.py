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

"""Server side of the fixed newstyle handshake (option haggling).

Works on any connection offering `await read_exactly(n)`, `send(...)` and
`await start_tls(context, server_side)`. Returns the export chosen with
NBD_OPT_GO or NBD_OPT_EXPORT_NAME, or None when the client aborts. A
malformed handshake raises ProtocolError and the caller drops the
connection.

TLS (proto.md, "TLS support"): without a TLSPolicy the server is in NOTLS
mode (NBD_OPT_STARTTLS gets NBD_REP_ERR_POLICY); with one it acknowledges
NBD_OPT_STARTTLS and upgrades the connection; with ``required`` it is in
FORCEDTLS mode: before TLS every option but STARTTLS and ABORT gets
NBD_REP_ERR_TLS_REQD, and NBD_OPT_EXPORT_NAME, which cannot be refused,
ends the session.
"""

import dataclasses
import inspect

from ovs_daemon.nbd import admission as admission_mod
from ovs_daemon.nbd import errors
from ovs_daemon.nbd import protocol

_KNOWN_CLIENT_FLAGS = protocol.FLAG_C_FIXED_NEWSTYLE | protocol.FLAG_C_NO_ZEROES


@dataclasses.dataclass(frozen=True)
class TLSPolicy:
    context: object
    required: bool = False


@dataclasses.dataclass
class Negotiated:
    export: object
    transmission_flags: int


def transmission_flags(export):
    flags = protocol.FLAG_HAS_FLAGS
    if export.write_cache:
        flags |= protocol.FLAG_SEND_FLUSH
    if export.can_multi_conn:
        flags |= protocol.FLAG_CAN_MULTI_CONN
    if export.read_only:
        return flags | protocol.FLAG_READ_ONLY
    return flags | (protocol.FLAG_SEND_FUA | protocol.FLAG_SEND_TRIM
                    | protocol.FLAG_SEND_WRITE_ZEROES)


async def negotiate(conn, resolver, admission=None, tls=None):
    conn.send(protocol.encode_greeting())
    (client_flags,) = protocol.CLIENT_FLAGS.unpack(
        await conn.read_exactly(protocol.CLIENT_FLAGS.size))
    if client_flags & ~_KNOWN_CLIENT_FLAGS:
        raise errors.ProtocolError("unknown client flags 0x%x" % client_flags)
    fixed = bool(client_flags & protocol.FLAG_C_FIXED_NEWSTYLE)
    no_zeroes = bool(client_flags & protocol.FLAG_C_NO_ZEROES)
    admission = admission or admission_mod.Admission()
    secured = False
    for _ in range(admission_mod.MAX_OPTIONS):
        option, data = await _read_option(conn)
        tls_missing = tls is not None and tls.required and not secured
        if option == protocol.OPT_EXPORT_NAME:
            if tls_missing:
                raise errors.ProtocolError(
                    "NBD_OPT_EXPORT_NAME before TLS, which this server requires")
            return await _export_name(conn, resolver, data, no_zeroes)
        if not fixed:
            raise errors.ProtocolError(
                "option %d from a client without fixed newstyle" % option)
        if option == protocol.OPT_ABORT:
            _reply(conn, option, protocol.REP_ACK)
            return None
        if option == protocol.OPT_STARTTLS:
            secured = await _start_tls(conn, tls, secured, data)
        elif tls_missing:
            admission.refuse("tls_required", "NBD client refused option %d before TLS",
                             option)
            _reply(conn, option, protocol.REP_ERR_TLS_REQD,
                   "TLS is required: send NBD_OPT_STARTTLS first")
        elif option == protocol.OPT_LIST:
            await _list(conn, resolver, data)
        elif option in (protocol.OPT_GO, protocol.OPT_INFO):
            chosen = await _info(conn, resolver, option, data, admission)
            if chosen is not None:
                if option == protocol.OPT_GO:
                    return chosen
                await chosen.export.close()
        else:
            _reply(conn, option, protocol.REP_ERR_UNSUP,
                   "option %d is not supported" % option)
    raise errors.ProtocolError("more than %d options without choosing an export"
                               % admission_mod.MAX_OPTIONS)


async def _read_option(conn):
    header = await conn.read_exactly(protocol.OPTION_HEADER.size)
    try:
        option, length = protocol.decode_option_header(header)
    except ValueError as exc:
        raise errors.ProtocolError(str(exc)) from None
    if length > protocol.MAX_OPTION_LENGTH:
        # Skipping it would mean trusting a length we already doubt.
        raise errors.ProtocolError(
            "option %d carries %d bytes, more than any valid option"
            % (option, length))
    return option, await conn.read_exactly(length)


async def _start_tls(conn, tls, secured, data):
    """Answer NBD_OPT_STARTTLS; returns whether the connection is secured."""
    option = protocol.OPT_STARTTLS
    if tls is None:
        _reply(conn, option, protocol.REP_ERR_POLICY, "this server does not offer TLS")
    elif secured:
        _reply(conn, option, protocol.REP_ERR_INVALID, "TLS is already started")
    elif data:
        _reply(conn, option, protocol.REP_ERR_INVALID, "NBD_OPT_STARTTLS takes no data")
    else:
        _reply(conn, option, protocol.REP_ACK)
        await conn.start_tls(tls.context, server_side=True)
        return True
    return secured


def _reply(conn, option, reply_type, payload=b""):
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    conn.send(protocol.encode_option_reply(option, reply_type, payload))


async def _export_name(conn, resolver, data, no_zeroes):
    name = _decode_name(data)
    try:
        export = await resolver(name)
    except errors.ExportRefused as exc:
        # This option has no error reply: the spec says to drop the session.
        raise errors.ProtocolError(
            "export %r refused: %s" % (protocol.loggable_name(name),
                                       exc.message)) from None
    flags = transmission_flags(export)
    conn.send(protocol.encode_export_name_reply(export.size, flags, no_zeroes))
    return Negotiated(export, flags)


def _decode_name(data):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.ProtocolError("export name is not UTF-8") from None


async def _list(conn, resolver, data):
    if data:
        _reply(conn, protocol.OPT_LIST, protocol.REP_ERR_INVALID,
               "NBD_OPT_LIST takes no data")
        return
    list_exports = getattr(resolver, "list_exports", None)
    if list_exports is None:
        _reply(conn, protocol.OPT_LIST, protocol.REP_ERR_POLICY,
               "listing exports is not allowed")
        return
    names = list_exports()
    if inspect.isawaitable(names):
        names = await names
    for name in names:
        _reply(conn, protocol.OPT_LIST, protocol.REP_SERVER,
               protocol.encode_server_entry(name))
    _reply(conn, protocol.OPT_LIST, protocol.REP_ACK)


async def _info(conn, resolver, option, data, admission):
    """Answer NBD_OPT_INFO/GO; return Negotiated, or None if refused."""
    try:
        name, requests = protocol.decode_go_request(data)
    except ValueError as exc:
        _reply(conn, option, protocol.REP_ERR_INVALID, str(exc))
        return None
    try:
        export = await resolver(name)
    except errors.ExportRefused as exc:
        admission.refuse("export_refused", "Refused export %r: %s",
                         protocol.loggable_name(name), exc.message)
        _reply(conn, option, exc.reply_type, exc.message)
        return None
    flags = transmission_flags(export)
    _reply(conn, option, protocol.REP_INFO,
           protocol.encode_info_export(export.size, flags))
    # Sent unrequested too: the spec allows it and it tells clients our
    # 32 MiB request limit.
    _reply(conn, option, protocol.REP_INFO, protocol.encode_info_block_size())
    if protocol.INFO_NAME in requests:
        _reply(conn, option, protocol.REP_INFO,
               protocol.encode_info_text(protocol.INFO_NAME, export.name))
    if protocol.INFO_DESCRIPTION in requests and export.description:
        _reply(conn, option, protocol.REP_INFO,
               protocol.encode_info_text(protocol.INFO_DESCRIPTION,
                                         export.description))
    _reply(conn, option, protocol.REP_ACK)
    return Negotiated(export, flags)
