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

"""Reading a file only as far as the page cache holds it.

``preadv2`` with ``RWF_NOWAIT`` (Linux 4.14 and later) copies what the page
cache holds and fails with EAGAIN rather than wait for the device: a read
that costs microseconds, which the router's event loop may make itself,
where a read that waits for the disk goes to a worker thread.
"""

import errno
import os

_NOWAIT = getattr(os, 'RWF_NOWAIT', None)
# EAGAIN: not all in the page cache; EOPNOTSUPP: a file system (or kernel)
# without non-blocking buffered reads.
_WOULD_WAIT = (errno.EAGAIN, errno.EOPNOTSUPP)


def read_if_cached(fd, length, offset):
    """``length`` bytes of ``fd`` at ``offset`` if the page cache holds all
    of them, else None (nothing waited for)."""
    if _NOWAIT is None:
        return None
    buf = bytearray(length)
    try:
        got = os.preadv(fd, [buf], offset, _NOWAIT)
    except OSError as exc:
        if exc.errno in _WOULD_WAIT:
            return None
        raise
    # A short read: part of the range is not cached, or the file ends
    # there; the caller reads it the waiting way and sees which.
    return buf if got == length else None
