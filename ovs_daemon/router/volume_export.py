"""A volume of the engine served over NBD.

Reads and writes touch only memory (and the page cache of the local
backend), so they run on the event loop; flush uploads and commits, so it
runs in a worker thread and the loop keeps serving. When a volume has
gathered too much unflushed data, the write that passes the limit flushes,
bounding what a router holds in memory for a client that never flushes.

A halted volume (fenced, handed over, deleted) answers ESHUTDOWN: the edge
takes that, like a dropped connection, as the sign to ask another router.
"""

import asyncio

from oslo_log import log as logging

from ovs_daemon.backends import base as backends
from ovs_daemon.engine import errors as engine_errors
from ovs_daemon.nbd import errors as nbd_errors
from ovs_daemon.nbd import export
from ovs_daemon.nbd import protocol

LOG = logging.getLogger(__name__)

_ERRNO_OF = (
    (engine_errors.Halted, protocol.ESHUTDOWN),
    (backends.Fenced, protocol.ESHUTDOWN),
    (engine_errors.OutOfRange, protocol.EINVAL),
    (engine_errors.InvalidRequest, protocol.EINVAL),
)


def _request_error(exc):
    for kind, errno_value in _ERRNO_OF:
        if isinstance(exc, kind):
            return nbd_errors.RequestError(errno_value, str(exc))
    LOG.error('IO error: %s', exc)
    return nbd_errors.RequestError(protocol.EIO, str(exc))


class VolumeExport(export.Export):

    def __init__(self, volume, executor=None, max_unflushed_bytes=64 << 20):
        self.volume = volume
        self.name = volume.namespace
        self._executor = executor
        self._max_unflushed = max_unflushed_bytes

    @property
    def size(self):
        return self.volume.size

    async def _in_thread(self, fn, *args):
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except Exception as exc:
            raise _request_error(exc) from exc

    def _inline(self, fn, *args):
        try:
            return fn(*args)
        except Exception as exc:
            raise _request_error(exc) from exc

    async def read(self, offset, length):
        return self._inline(self.volume.read, offset, length)

    async def write(self, offset, data, fua):
        self._inline(self.volume.write, offset, data)
        await self._settle(fua)

    async def flush(self):
        await self._in_thread(self.volume.flush)

    async def trim(self, offset, length, fua):
        self._inline(self.volume.trim, offset, length)
        await self._settle(fua)

    async def write_zeroes(self, offset, length, fua, may_trim):
        self._inline(self.volume.write_zeroes, offset, length)
        await self._settle(fua)

    async def _settle(self, fua):
        if fua or self.volume.unflushed_bytes > self._max_unflushed:
            await self.flush()
