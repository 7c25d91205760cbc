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

import tracemalloc

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from ovs_daemon.engine import blockmap
from ovs_daemon.engine import records
from ovs_daemon.engine.blockmap import UNMAPPED
from ovs_daemon.engine.blockmap import ZERO

SPAN = 4 * blockmap.PAGE_ENTRIES

operations = st.lists(st.one_of(
    st.tuples(st.just('run'), st.integers(0, SPAN - 1),
              st.integers(1, 1500), st.integers(2, 1 << 40)),
    st.tuples(st.just('fill'), st.integers(0, SPAN - 1),
              st.integers(1, 2500), st.sampled_from([UNMAPPED, ZERO])),
    st.tuples(st.just('set'), st.integers(0, SPAN - 1),
              st.integers(2, 1 << 40)),
), max_size=60)


def apply(bmap, model, ops):
    for op in ops:
        if op[0] == 'run':
            _, block, count, first = op
            bmap.set_run(block, count, first)
            model.update({block + i: first + i for i in range(count)})
        elif op[0] == 'fill':
            _, block, count, value = op
            bmap.fill(block, count, value)
            model.update({block + i: value for i in range(count)})
        else:
            _, block, value = op
            bmap.set(block, value)
            model[block] = value


@settings(max_examples=300, deadline=None)
@given(operations)
def test_map_equals_a_dictionary_and_survives_serialization(ops):
    bmap, model = blockmap.BlockMap(), {}
    apply(bmap, model, ops)
    restored = blockmap.BlockMap.deserialize(bmap.serialize())
    for copy in (bmap, bmap.copy(), restored):
        for block in range(SPAN + 2600):
            assert copy.get(block) == model.get(block, UNMAPPED), block
    assert bmap.containers() == {v >> blockmap.INDEX_BITS
                                 for v in model.values() if v > ZERO}


def test_an_entry_never_costs_more_than_16_bytes():
    for stride in (1, 2, 3, 7, 64, 1000):
        bmap = blockmap.BlockMap()
        written = range(0, 64 * blockmap.PAGE_ENTRIES, stride)
        for block in written:
            bmap.set(block, blockmap.location(1, block))
        assert bmap.memory_bytes() / len(written) <= 16, stride


@settings(max_examples=200, deadline=None)
@given(operations, operations, operations)
def test_a_copy_and_its_original_change_independently(before, original_ops, copy_ops):
    bmap, model = blockmap.BlockMap(), {}
    apply(bmap, model, before)
    copy, copy_model = bmap.copy(), dict(model)
    apply(bmap, model, original_ops)
    apply(copy, copy_model, copy_ops)
    for block in range(SPAN + 2600):
        assert bmap.get(block) == model.get(block, UNMAPPED), block
        assert copy.get(block) == copy_model.get(block, UNMAPPED), block


def test_a_copy_costs_no_copy_of_the_pages():
    # 64 MiB of volume written: 16 dense pages of 8 KiB.
    bmap = blockmap.BlockMap()
    bmap.set_run(0, 16 * blockmap.PAGE_ENTRIES, blockmap.location(1, 0))
    tracemalloc.start()
    try:
        copy = bmap.copy()
        after_copy = tracemalloc.get_traced_memory()[0]
        bmap.set(5, blockmap.location(2, 0))      # copies that one page
        after_write = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after_copy < bmap.memory_bytes() / 16
    assert after_write - after_copy < 2 * 8 * blockmap.PAGE_ENTRIES
    assert copy.get(5) == blockmap.location(1, 5)


def test_a_state_with_the_map_inside_or_after_it_decodes_the_same():
    bmap = blockmap.BlockMap()
    bmap.set_run(10, 3000, blockmap.location(4, 0))
    bmap.fill(5000, 2048, ZERO)
    inside = records.pack({'size': 1 << 30, 'map': bmap.serialize(), 'containers': {4: [1, 3000]}})
    after = records.encode_map_state(1 << 30, bmap, {4: [1, 3000]})
    for raw in (inside, bytes(after)):
        state = records.decode_map_state(raw)
        assert (state['size'], state['containers']) == (1 << 30, {4: [1, 3000]})
        assert state['map'].serialize() == bmap.serialize()
        assert records.decode_map_state(raw, with_map=False) == {
            'size': 1 << 30, 'containers': {4: [1, 3000]}}


def consecutive_block_by_block(model, block, loc, limit):
    count = 0
    while count < limit and model.get(block + count, UNMAPPED) == loc + count:
        count += 1
    return count


@settings(max_examples=300, deadline=None)
@given(operations, st.integers(0, SPAN - 1), st.integers(0, 2 * SPAN))
def test_a_run_of_consecutive_locations_is_found_as_block_by_block(ops, block, limit):
    """A read plans a run of data with ``consecutive``, a page at a time;
    it must find exactly the run a walk block by block finds, in dense and
    sparse pages, across pages, stopping at a hole or a jump."""
    bmap, model = blockmap.BlockMap(), {}
    apply(bmap, model, ops)
    found = max(bmap.get(block), 2)     # a location, never UNMAPPED or ZERO
    for loc in (found, found + 7, 2):
        assert bmap.consecutive(block, loc, limit) == \
            consecutive_block_by_block(model, block, loc, limit)
