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

"""What a volume keeps in its namespace, and how each object is encoded.

Objects of a volume's namespace:

``meta``
    written once at creation: the size it was created with and the parent
    snapshot of a clone.
``data/<container>-<epoch>``
    a container: blocks of 4 KiB, written once, by the owner of ``epoch``.
``snapshot/<name>/<epoch>-<random>`` (``snap/<name>`` in older volumes)
    a snapshot: its block map, size and the containers it refers to. The
    object's name is unique to the snapshot and recorded with it (in the
    log record, and in a clone's ``meta``): a snapshot deleted and made
    again under its name never overwrites the object a clone reads.
``checkpoint/<slot>``
    the whole volume state as of log slot ``slot``.
log slots
    one record per commit (flush): the containers it adds and the map
    operations in the order they happened.
"""

import functools
import io
import secrets

import msgpack

from ovs_daemon.engine import blockmap

META = 'meta'
DELETED_MARK = 'deleted'
CHECKPOINT_PREFIX = 'checkpoint/'
SNAPSHOT_PREFIX = 'snap/'  # snap/<name>: the map objects of older volumes
SNAPSHOT_OBJECT_PREFIX = 'snapshot/'
SNAPSHOT_PREFIXES = (SNAPSHOT_PREFIX, SNAPSHOT_OBJECT_PREFIX)
CONTAINER_PREFIX = 'data/'

# Log record operations: (code, *arguments).
OP_WRITE = 0        # block, count, first location
OP_FILL = 1         # block, count, UNMAPPED or ZERO
OP_RESIZE = 2       # new size in bytes
OP_SNAPSHOT = 3     # name, creation time, size, map object (older: none)
OP_DELETE_SNAPSHOT = 4  # name
OP_REVERT = 5       # snapshot name
OP_MOVE = 6         # block, count, old first location, new first location:
#                     the blocks that still map to the old locations (the
#                     compactor copied them) map to the new ones.


@functools.lru_cache(maxsize=4096)
def container_name(container, epoch):
    # Cached: every read of a container's blocks names it.
    return '%s%012d-%d' % (CONTAINER_PREFIX, container, epoch)


def parse_container_name(name):
    container, epoch = name[len(CONTAINER_PREFIX):].split('-')
    return int(container), int(epoch)


def new_snapshot_object(name, epoch):
    """A name no other snapshot's map object ever had: a snapshot made
    again under the same name, or by a stale owner, gets another one."""
    return '%s%s/%d-%s' % (SNAPSHOT_OBJECT_PREFIX, name, epoch, secrets.token_hex(8))


def snapshot_object(name, info=None):
    """The map object of snapshot ``name``: the one its ``info`` (the
    snapshot's committed record, or a clone's parent) names, or
    ``snap/<name>`` for one made before objects were named per snapshot."""
    return (info or {}).get('object') or SNAPSHOT_PREFIX + name


def checkpoint_name(slot):
    return '%s%016d' % (CHECKPOINT_PREFIX, slot)


def checkpoint_slot(name):
    return int(name[len(CHECKPOINT_PREFIX):])


def snapshot_of(op):
    """``(name, committed record)`` of an OP_SNAPSHOT operation."""
    info = {'created': op[2], 'size': op[3]}
    if len(op) > 4:
        info['object'] = op[4]
    return op[1], info


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def unpack(raw):
    return msgpack.unpackb(raw, raw=False, strict_map_key=False)


def encode_commit(containers, ops):
    """``containers``: {number: [epoch, blocks]} added by this commit."""
    return pack({'c': containers, 'o': ops})


def decode_commit(raw):
    record = unpack(raw)
    return record['c'], record['o']


def encode_map_state(size, bmap, containers, **extra):
    """The state, then the block map after it (``map_follows``), serialized
    straight into the object's buffer: packing a map of tens of MiB inside
    the msgpack object would copy it in one step that holds the GIL."""
    state = {'size': size, 'map_follows': True, 'containers': containers}
    state.update(extra)
    return bmap.serialize_into(bytearray(pack(state)))


def decode_map_state(raw, with_map=True):
    """The state; without ``with_map``, all of it but the map."""
    reader = msgpack.Unpacker(io.BytesIO(raw), raw=False, strict_map_key=False,
                              max_buffer_size=len(raw))
    state = reader.unpack()
    if state.pop('map_follows', False):
        raw_map = memoryview(raw)[reader.tell():]
    else:
        raw_map = state.pop('map')
    if with_map:
        state['map'] = blockmap.BlockMap.deserialize(raw_map)
    return state
