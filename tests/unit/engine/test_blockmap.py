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

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from ovs_daemon.engine import blockmap
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


@settings(max_examples=300, deadline=None)
@given(operations)
def test_map_equals_a_dictionary_and_survives_serialization(ops):
    bmap, model = blockmap.BlockMap(), {}
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
