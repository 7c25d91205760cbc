"""The map from a volume's logical blocks to where their data lives.

A location is one 64-bit integer: the container number in the high bits and
the block's index inside that container in the low 24 bits. Two values below
any location are special: UNMAPPED (never written here; a clone reads on in
its parent) and ZERO (reads as zeroes, also in a clone).

The map is paged: 1024 entries (4 MiB of volume) per page, a page allocated
on the first write into it. So memory grows with the data written, not with
the volume size, at 8 bytes per block where writes are dense. A page that is
all UNMAPPED is dropped and one that is all ZERO is shared, so trimming a
whole disk costs a dictionary entry per 4 MiB, not per block.
"""

import array
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
_FULL, _ZEROES = 0, 1


def location(container, index):
    return (container << INDEX_BITS) | index


def container_of(loc):
    return loc >> INDEX_BITS


def index_of(loc):
    return loc & (MAX_CONTAINER_BLOCKS - 1)


def is_location(value):
    return value > ZERO


class BlockMap:

    def __init__(self):
        self._pages = {}

    def __len__(self):
        return len(self._pages)

    def get(self, block):
        page = self._pages.get(block >> PAGE_SHIFT)
        return UNMAPPED if page is None else page[block & _PAGE_MASK]

    def _writable_page(self, page_no):
        page = self._pages.get(page_no)
        if page is None:
            page = array.array('Q', bytes(8 * PAGE_ENTRIES))
            self._pages[page_no] = page
        elif page is _ZERO_PAGE:
            page = array.array('Q', _ZERO_PAGE)
            self._pages[page_no] = page
        return page

    def set(self, block, value):
        self._writable_page(block >> PAGE_SHIFT)[block & _PAGE_MASK] = value

    def set_run(self, block, count, first_location):
        """Map ``count`` blocks from ``block`` to consecutive locations."""
        while count:
            page_no, start = block >> PAGE_SHIFT, block & _PAGE_MASK
            n = min(count, PAGE_ENTRIES - start)
            page = self._writable_page(page_no)
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
            else:
                page = self._writable_page(page_no)
                page[start:start + n] = array.array('Q', [value]) * n
            block, count = block + n, count - n

    def _replace_page(self, page_no, value):
        if value == UNMAPPED:
            self._pages.pop(page_no, None)
        else:
            self._pages[page_no] = _ZERO_PAGE

    def truncate(self, blocks):
        """Forget every block at or above ``blocks`` (used by revert)."""
        for page_no in [p for p in self._pages if p << PAGE_SHIFT >= blocks]:
            del self._pages[page_no]
        tail = blocks & _PAGE_MASK
        if tail and blocks >> PAGE_SHIFT in self._pages:
            self.fill(blocks, PAGE_ENTRIES - tail, UNMAPPED)

    def containers(self):
        """The set of container numbers this map refers to."""
        found = set()
        for page in self._pages.values():
            if page is not _ZERO_PAGE:
                found.update(v >> INDEX_BITS for v in set(page) if v > ZERO)
        return found

    def locations_in(self, wanted):
        """Yield ``(block, location)`` for blocks stored in containers of
        the set ``wanted``."""
        for page_no, page in self._pages.items():
            if page is _ZERO_PAGE:
                continue
            base = page_no << PAGE_SHIFT
            for i, v in enumerate(page):
                if v > ZERO and v >> INDEX_BITS in wanted:
                    yield base + i, v

    def memory_bytes(self):
        """Bytes held by page arrays (the map's dominant cost)."""
        return sum(8 * PAGE_ENTRIES for p in self._pages.values()
                   if p is not _ZERO_PAGE)

    def copy(self):
        other = BlockMap()
        other._pages = {n: p if p is _ZERO_PAGE else array.array('Q', p)
                        for n, p in self._pages.items()}
        return other

    def serialize(self):
        parts = [_HEADER.pack(_MAGIC, 1, len(self._pages))]
        for page_no in sorted(self._pages):
            page = self._pages[page_no]
            if page is _ZERO_PAGE:
                parts.append(_PAGE_HEADER.pack(page_no, _ZEROES))
            else:
                parts.append(_PAGE_HEADER.pack(page_no, _FULL))
                parts.append(page.tobytes())
        return b''.join(parts)

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
            else:
                page = array.array('Q')
                page.frombytes(raw[pos:pos + 8 * PAGE_ENTRIES])
                pos += 8 * PAGE_ENTRIES
                blockmap._pages[page_no] = page
        return blockmap
