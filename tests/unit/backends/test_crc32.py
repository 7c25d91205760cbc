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

"""The CRC-32 of joined data from its pieces' CRCs is zlib's CRC-32 of it."""

import os
import zlib

import pytest

from ovs_daemon.backends import crc32


@pytest.mark.parametrize('second_length', [0, 1, 511, 4096, 65536, 70001])
def test_combined_crcs_are_the_crc_of_the_joined_data(second_length):
    first, second = os.urandom(777), os.urandom(second_length)
    assert crc32.combine(zlib.crc32(first), zlib.crc32(second), second_length) == \
        zlib.crc32(first + second)


@pytest.mark.parametrize('length', [0, 4096, 64 * 1024, 8 << 20, (8 << 20) - 4096])
def test_the_crc_of_the_whole_from_its_pieces(length):
    data = os.urandom(length)
    crcs = crc32.of_pieces(data, 64 * 1024)
    assert len(crcs) == -(-length // (64 * 1024))
    assert crcs == [zlib.crc32(data[at:at + 64 * 1024]) for at in range(0, length, 64 * 1024)]
    assert crc32.of_whole(crcs, 64 * 1024, length) == zlib.crc32(data)
