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

"""The map from a volume's logical blocks to where their data lives.

A location is one 64-bit integer: the container number in the high bits and
the block's index inside that container in the low 24 bits. Two values below
any location are special: UNMAPPED (never written here; a clone reads on in
its parent) and ZERO (reads as zeroes, also in a clone).

The map is paged: 1024 entries (4 MiB of volume) per page, a page allocated
on the first write into it, so memory grows with the data written, not with
the volume size. A page holding few entries is sparse (sorted offsets and
values, 10 bytes an entry) and turns dense (an array of 1024 values) once it
is half full, so an entry never costs more than 16 bytes. A page that is all
UNMAPPED is dropped and one that is all ZERO is shared, so trimming a whole
disk costs a dictionary entry per 4 MiB, not per block.
"""

import array
import bisect
import struct

UNMAPPED = 0
ZERO = 1
INDEX_BITS = 24
MAX_CONTAINER_BLOCKS = 1 << INDEX_BITS
PAGE_SHIFT = 10
PAGE_ENTRIES = 1 << PAGE_SHIFT
_PAGE_MASK = PAGE_ENTRIES - 1
_ZERO_PAGE = array.array('Q', [ZERO]) * PAGE_ENTRIES
_HEADER = struct.Struct('<4sII')
_PAGE_HEADER = struct.Struct('<QB')
_MAGIC = b'OVSM'
_FULL, _ZEROES, _SPARSE = 0, 1, 2
_SPARSE_LIMIT = PAGE_ENTRIES // 2


class _SparsePage:
    """The entries of a page that are not UNMAPPED, sorted by offset."""

    __slots__ = ('offsets', 'values')

    def __init__(self):
        self.offsets = array.array('H')
        self.values = array.array('Q')

    def __len__(self):
        return len(self.offsets)

    def __getitem__(self, i):
        pos = bisect.bisect_left(self.offsets, i)
        if pos < len(self.offsets) and self.offsets[pos] == i:
            return self.values[pos]
        return UNMAPPED

    def __setitem__(self, i, value):
        pos = bisect.bisect_left(self.offsets, i)
        present = pos < len(self.offsets) and self.offsets[pos] == i
        if value == UNMAPPED:
            if present:
                del self.offsets[pos]
                del self.values[pos]
        elif present:
            self.values[pos] = value
        else:
            self.offsets.insert(pos, i)
            self.values.insert(pos, value)

    def set_run(self, start, count, first_location):
        """Map ``count`` offsets from ``start`` to consecutive locations,
        in one slice of each array."""
        low = bisect.bisect_left(self.offsets, start)
        high = bisect.bisect_left(self.offsets, start + count, low)
        self.offsets[low:high] = array.array('H', range(start, start + count))
        self.values[low:high] = array.array('Q', range(first_location,
                                                       first_location + count))

    def items(self):
        return zip(self.offsets, self.values)

    def dense(self):
        page = array.array('Q', bytes(8 * PAGE_ENTRIES))
        for i, value in self.items():
            page[i] = value
        return page


def _prefix_run(page, start, n, loc):
    """How many of the ``n`` entries of ``page`` from ``start`` on hold
    ``loc``, ``loc + 1``, ... in turn."""
    if isinstance(page, _SparsePage):
        run = 0
        while run < n and page[start + run] == loc + run:
            run += 1
        return run
    if page[start:start + n] == array.array('Q', range(loc, loc + n)):
        return n
    # The longest prefix that matches, by halving (one comparison of
    # arrays per step, not one per entry).
    low, high = 0, n - 1
    while low < high:
        middle = (low + high + 1) // 2
        if page[start:start + middle] == array.array('Q', range(loc, loc + middle)):
            low = middle
        else:
            high = middle - 1
    return low


def location(container, index):
    return (container << INDEX_BITS) | index


def container_of(loc):
    return loc >> INDEX_BITS


def index_of(loc):
    return loc & (MAX_CONTAINER_BLOCKS - 1)


def is_location(value):
    return value > ZERO


class BlockMap:
    """Pages are shared copy-on-write between a map and its copies: a copy
    costs a dictionary copy, not a copy of the pages, and a page is copied
    only when it is first changed after a copy (``_owned`` holds the pages
    this map may change in place)."""

    def __init__(self):
        self._pages = {}
        self._owned = set()

    def __len__(self):
        return len(self._pages)

    def get(self, block):
        page = self._pages.get(block >> PAGE_SHIFT)
        return UNMAPPED if page is None else page[block & _PAGE_MASK]

    def consecutive(self, block, loc, limit):
        """How many blocks from ``block`` on, at most ``limit``, map to
        ``loc``, ``loc + 1``, ... in turn: a run of data a read fetches
        in one piece, found a page at a time rather than a block at a
        time."""
        count = 0
        while count < limit:
            page = self._pages.get(block >> PAGE_SHIFT)
            if page is None:
                break
            start = block & _PAGE_MASK
            n = min(limit - count, PAGE_ENTRIES - start)
            run = _prefix_run(page, start, n, loc)
            count, block, loc = count + run, block + run, loc + run
            if run < n:
                break
        return count

    def _writable_page(self, page_no, adding):
        """The page to change ``adding`` entries of, made dense when that
        would fill it past half."""
        page = self._pages.get(page_no)
        owned = page_no in self._owned
        if page is None:
            page = _SparsePage() if adding <= _SPARSE_LIMIT else \
                array.array('Q', bytes(8 * PAGE_ENTRIES))
        elif page is _ZERO_PAGE:
            page = array.array('Q', _ZERO_PAGE)
        elif isinstance(page, _SparsePage):
            if len(page) + adding <= _SPARSE_LIMIT:
                if owned:
                    return page
                page = self._copy_page(page)
            else:
                page = page.dense()
        elif owned:
            return page
        else:
            page = self._copy_page(page)
        self._pages[page_no] = page
        self._owned.add(page_no)
        return page

    def set(self, block, value):
        page = self._writable_page(block >> PAGE_SHIFT, 1)
        page[block & _PAGE_MASK] = value

    def set_run(self, block, count, first_location):
        """Map ``count`` blocks from ``block`` to consecutive locations."""
        while count:
            page_no, start = block >> PAGE_SHIFT, block & _PAGE_MASK
            n = min(count, PAGE_ENTRIES - start)
            page = self._writable_page(page_no, n)
            if isinstance(page, _SparsePage):
                page.set_run(start, n, first_location)
            else:
                page[start:start + n] = array.array(
                    'Q', range(first_location, first_location + n))
            block, count, first_location = (block + n, count - n,
                                            first_location + n)

    def fill(self, block, count, value):
        """Set ``count`` blocks from ``block`` to UNMAPPED or ZERO."""
        while count:
            page_no, start = block >> PAGE_SHIFT, block & _PAGE_MASK
            n = min(count, PAGE_ENTRIES - start)
            if n == PAGE_ENTRIES:
                self._replace_page(page_no, value)
            elif value == UNMAPPED and page_no not in self._pages:
                pass
            else:
                page = self._writable_page(page_no,
                                           0 if value == UNMAPPED else n)
                if isinstance(page, _SparsePage):
                    for i in range(start, start + n):
                        page[i] = value
                else:
                    page[start:start + n] = array.array('Q', [value]) * n
            block, count = block + n, count - n

    def _replace_page(self, page_no, value):
        self._owned.discard(page_no)
        if value == UNMAPPED:
            self._pages.pop(page_no, None)
        else:
            self._pages[page_no] = _ZERO_PAGE

    def containers(self):
        """The set of container numbers this map refers to."""
        found = set()
        for page in self._pages.values():
            if page is _ZERO_PAGE:
                continue
            values = page.values if isinstance(page, _SparsePage) else page
            found.update(v >> INDEX_BITS for v in set(values) if v > ZERO)
        return found

    def mapped_blocks(self):
        """How many blocks map to a location (hold data of this volume)."""
        total = 0
        for page in self._pages.values():
            if page is _ZERO_PAGE:
                continue
            values = page.values if isinstance(page, _SparsePage) else page
            total += len(values) - values.count(UNMAPPED) - values.count(ZERO)
        return total

    def locations(self):
        """``(block, location)`` of every block that maps to a location."""
        for page_no, page in self._pages.items():
            if page is _ZERO_PAGE:
                continue
            base = page_no << PAGE_SHIFT
            entries = page.items() if isinstance(page, _SparsePage) \
                else enumerate(page)
            for i, value in entries:
                if value > ZERO:
                    yield base + i, value

    def memory_bytes(self):
        """Bytes held by the pages' arrays (the map's dominant cost)."""
        total = 0
        for page in self._pages.values():
            if isinstance(page, _SparsePage):
                total += page.offsets.buffer_info()[1] * 2 + \
                    page.values.buffer_info()[1] * 8
            elif page is not _ZERO_PAGE:
                total += 8 * PAGE_ENTRIES
        return total

    def copy(self):
        """A copy sharing every page: both maps copy a page before they
        first change it."""
        other = BlockMap()
        other._pages = dict(self._pages)
        self._owned = set()
        return other

    @staticmethod
    def _copy_page(page):
        if page is _ZERO_PAGE:
            return page
        if isinstance(page, _SparsePage):
            copy = _SparsePage()
            copy.offsets = array.array('H', page.offsets)
            copy.values = array.array('Q', page.values)
            return copy
        return array.array('Q', page)

    def serialize(self):
        return bytes(self.serialize_into(bytearray()))

    def serialize_into(self, buffer):
        """Append the map to ``buffer`` (a bytearray) and return it. Page
        by page: no single step copies the whole map, so a thread
        encoding a large map holds the GIL only briefly at a time."""
        buffer += _HEADER.pack(_MAGIC, 1, len(self._pages))
        for page_no in sorted(self._pages):
            page = self._pages[page_no]
            if page is _ZERO_PAGE:
                buffer += _PAGE_HEADER.pack(page_no, _ZEROES)
            elif isinstance(page, _SparsePage):
                buffer += _PAGE_HEADER.pack(page_no, _SPARSE)
                buffer += struct.pack('<H', len(page))
                buffer += page.offsets
                buffer += page.values
            else:
                buffer += _PAGE_HEADER.pack(page_no, _FULL)
                buffer += page
        return buffer

    @classmethod
    def deserialize(cls, raw):
        magic, version, count = _HEADER.unpack_from(raw)
        if magic != _MAGIC or version != 1:
            raise ValueError('not a block map (magic %r, version %r)'
                             % (magic, version))
        blockmap, pos = cls(), _HEADER.size
        for _ in range(count):
            page_no, kind = _PAGE_HEADER.unpack_from(raw, pos)
            pos += _PAGE_HEADER.size
            if kind == _ZEROES:
                blockmap._pages[page_no] = _ZERO_PAGE
            elif kind == _SPARSE:
                (n,) = struct.unpack_from('<H', raw, pos)
                pos += 2
                page = _SparsePage()
                page.offsets.frombytes(raw[pos:pos + 2 * n])
                pos += 2 * n
                page.values.frombytes(raw[pos:pos + 8 * n])
                pos += 8 * n
                blockmap._pages[page_no] = page
            else:
                page = array.array('Q')
                page.frombytes(raw[pos:pos + 8 * PAGE_ENTRIES])
                pos += 8 * PAGE_ENTRIES
                blockmap._pages[page_no] = page
        blockmap._owned = set(blockmap._pages)
        return blockmap
