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

"""Evicting files from the page cache, for the tests of reads that take
only what the page cache holds."""

import ctypes
import mmap
import os
import pathlib
import time

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]


def cached_pages(path):
    """How many pages of the file at ``path`` the page cache holds (mincore)."""
    size = os.path.getsize(path)
    if not size:
        return 0
    pages = -(-size // mmap.PAGESIZE)
    vector = ctypes.create_string_buffer(pages)
    with open(path, 'rb') as f:
        # A private mapping: writable for ctypes, never written.
        mapped = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY)
    try:
        start = ctypes.c_char.from_buffer(mapped)
        result = _libc.mincore(ctypes.addressof(start), size, vector)
        del start
    finally:
        mapped.close()
    if result != 0:
        raise OSError(ctypes.get_errno(), 'mincore of %s failed' % path)
    return sum(byte & 1 for byte in vector.raw)


def evict(directory):
    """Drop every file under ``directory`` from the page cache, synced
    first (a dirty page is not dropped), and check that it is gone."""
    files = [path for path in pathlib.Path(directory).rglob('*') if path.is_file()]
    for attempt in range(50):
        for path in files:
            fd = os.open(path, os.O_RDONLY)
            try:
                if not attempt:
                    os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
        if not any(map(cached_pages, files)):
            return
        time.sleep(0.1)
    raise AssertionError('the page cache keeps files of %s' % directory)
