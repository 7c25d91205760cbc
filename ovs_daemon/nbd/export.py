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

"""What an NBD server serves: the Export interface and an in-memory export.

The server checks every request against `size` and `read_only` before it
calls the export, so an implementation only ever sees in-range requests and
never a write on a read-only export. An export signals a failure to the
client by raising errors.RequestError(errno); any other exception becomes
EIO. The resolver given to the server may hand out a new Export object each
time or share one: close() is called once for every object it returned, when
the server is done with it (the session ended, or NBD_OPT_INFO was answered).
"""

import abc

from ovs_daemon.nbd import errors
from ovs_daemon.nbd import protocol


class Export(abc.ABC):
    """A block device served over NBD."""

    name = ""
    read_only = False
    # With multi-conn, a FLUSH on one connection must cover writes completed
    # on every connection to the same export; exports that keep a per-session
    # cache must set this to False.
    can_multi_conn = True
    description = None
    # False: a write is durable when acknowledged, so the export does not
    # offer FLUSH (NBD_FLAG_SEND_FLUSH), as the NBD protocol says of a
    # server without a write cache.
    write_cache = True
    # True: the session passes requests on as they arrive, without waiting
    # for earlier writes; the export keeps their order itself (it must issue
    # them in call order, before its first await).
    orders_requests = False

    @property
    @abc.abstractmethod
    def size(self):
        """Current size in bytes; may grow while sessions are open."""

    @abc.abstractmethod
    async def read(self, offset, length):
        """Return `length` bytes (a bytes-like object) at `offset`."""

    @abc.abstractmethod
    async def write(self, offset, data, fua):
        """Store `data` (a bytes-like object); durable on return if fua."""

    @abc.abstractmethod
    async def flush(self):
        """Make every write completed before this call durable."""

    @abc.abstractmethod
    async def trim(self, offset, length, fua):
        """Discard a range; later reads of it may return anything."""

    @abc.abstractmethod
    async def write_zeroes(self, offset, length, fua, may_trim):
        """Zero a range; `may_trim` allows leaving a hole that reads as zeroes."""

    def serve_now(self, command, flags, offset, length, payload, reply):
        """Fast path, optional: serve a READ or WRITE without a coroutine.

        Called, in the session's order, in place of :meth:`read` or
        :meth:`write` when nothing the request must wait for is pending.
        Return False to have it served by those methods instead; otherwise
        call ``reply(error, data)`` exactly once, now or later, with
        ``error`` None or the exception the request failed with (as the
        methods would raise it) and ``data`` a READ's bytes.
        """
        return False

    async def open(self):
        """A session chose this object to serve (NBD_OPT_GO or
        NBD_OPT_EXPORT_NAME, not NBD_OPT_INFO): called before the session
        reads its first request."""

    async def close(self):
        """The server is done with this object (see the module docstring)."""


class MemoryExport(Export):
    """An export backed by a bytearray: for tests and demos, not durable."""

    def __init__(self, name, size, read_only=False, description=None):
        self.name = name
        self.read_only = read_only
        self.description = description
        self._data = bytearray(size)

    @property
    def size(self):
        return len(self._data)

    def extend(self, new_size):
        if new_size < self.size:
            raise errors.RequestError(protocol.EINVAL, "cannot shrink")
        self._data.extend(bytes(new_size - self.size))

    async def read(self, offset, length):
        return self._data[offset:offset + length]

    async def write(self, offset, data, fua):
        self._data[offset:offset + len(data)] = data

    async def flush(self):
        pass  # memory is as durable as this export gets

    async def trim(self, offset, length, fua):
        self._zero(offset, length)

    async def write_zeroes(self, offset, length, fua, may_trim):
        self._zero(offset, length)

    def _zero(self, offset, length):
        self._data[offset:offset + length] = bytes(length)
