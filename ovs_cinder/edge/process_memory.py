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

"""How the edge process manages its memory, set once at start.

Payloads: every guest write's payload is a buffer of its own, kept in the
journal until a FLUSH covers it, then freed, tens of MiB at a time. With
glibc's defaults the heap's top is handed back to the kernel once more
than a few MiB of it are free (and buffers past the mmap threshold are
mapped and unmapped one by one), so the next writes fault every page in
again and the kernel zeroes each one: a third of the edge's CPU time
under 1 MiB writes (docs/performance.md). The edge keeps what it freed,
up to two journals' worth, for the next payloads.

Garbage collector: what start-up made (modules, configuration, the
loop) lives as long as the process; ``gc.freeze`` takes it out of the
collector's full passes, which otherwise walk it every few thousand
requests (about 20 ms each, all other IO waiting).
"""

import ctypes
import ctypes.util
import gc

from oslo_log import log as logging

from ovs_daemon.nbd import protocol

LOG = logging.getLogger(__name__)

# mallopt(3) parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# mallopt takes an int.
MAX_RETAINED = 1 << 30


def retain_freed_payloads(replay_buffer_mib):
    """Keep freed heap for two journals of ``replay_buffer_mib`` (FLUSHes
    of two volumes freeing theirs at once; at most MAX_RETAINED), and
    allocate payloads up to NBD's largest from the heap rather than one
    mapping each. True if the C library took both settings (glibc); False
    leaves its defaults."""
    retain_bytes = min(MAX_RETAINED, 2 * replay_buffer_mib << 20)
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library('c')).mallopt
    except (OSError, AttributeError, TypeError):
        LOG.info('No mallopt in this C library: payload memory is returned as it is freed')
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(M_MMAP_THRESHOLD, protocol.MAX_PAYLOAD)
                and mallopt(M_TRIM_THRESHOLD, retain_bytes))


def freeze_start_up_objects():
    """Leave everything allocated so far out of later collections."""
    gc.collect()
    gc.freeze()
