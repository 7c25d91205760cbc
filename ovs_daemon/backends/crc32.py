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

"""zlib's CRC-32 of pieces of data, and of their concatenation from the
pieces' CRCs (zlib's ``crc32_combine``, which Python's zlib lacks).

A GET's data is checked against the checksum the store sent for it, and
the read cache keeps a CRC of each chunk of it: computed once a piece, the
pieces' CRCs give the whole one, so each byte is summed once, not twice.
"""

import functools
import zlib


def of_pieces(data, piece):
    """The CRC-32 of each ``piece`` bytes of ``data`` (the last maybe
    shorter)."""
    view = memoryview(data)
    return [zlib.crc32(view[at:at + piece]) for at in range(0, len(view), piece)]


def combine(first, second, second_length):
    """The CRC-32 of ``a + b`` from ``first`` (of ``a``), ``second`` (of
    ``b``) and ``len(b)``."""
    t0, t1, t2, t3 = _shift_tables(second_length)
    return t0[first & 0xff] ^ t1[(first >> 8) & 0xff] ^ t2[(first >> 16) & 0xff] \
        ^ t3[first >> 24] ^ second


def of_whole(crcs, piece, length):
    """The CRC-32 of ``length`` bytes from :func:`of_pieces` of them."""
    whole = zlib.crc32(b'')
    for at, crc in zip(range(0, length, piece), crcs):
        whole = combine(whole, crc, min(piece, length - at))
    return whole


@functools.lru_cache(maxsize=64)
def _shift_tables(length):
    """What appending ``length`` zero bytes does to a CRC-32, a linear map
    over GF(2): as four tables, one per byte of the CRC."""
    zeros = bytes(length)
    constant = zlib.crc32(zeros)
    bits = [zlib.crc32(zeros, 1 << bit) ^ constant for bit in range(32)]
    tables = []
    for byte in range(4):
        table = [0] * 256
        for value in range(1, 256):
            low = value & -value
            table[value] = table[value ^ low] ^ bits[8 * byte + low.bit_length() - 1]
        tables.append(tuple(table))
    return tuple(tables)
