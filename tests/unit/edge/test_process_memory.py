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

"""The edge keeps the memory of payloads a FLUSH freed for the next ones,
instead of handing it back to the kernel and faulting it in again, and
leaves its start-up objects out of garbage collections."""

import gc
import subprocess
import sys

from ovs_cinder.edge import process_memory

# In a process of its own: the settings are the C library's, for the
# whole process. Prints the page faults of the journalling after the first.
JOURNAL_THEN_FLUSH = '''
import resource, sys
from ovs_cinder.edge import journal, process_memory
from ovs_daemon.nbd import protocol
assert process_memory.retain_freed_payloads(int(sys.argv[1]))

def journal_then_flush(wal):
    for n in range(32):
        wal.append(protocol.CMD_WRITE, n << 20, 1 << 20, 0, bytearray(1 << 20))
    wal.forget_before(wal.next_seq)

wal = journal.WriteJournal(32 << 20)
journal_then_flush(wal)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    journal_then_flush(wal)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
'''


def page_faults_journalling(replay_buffer_mib):
    out = subprocess.run([sys.executable, '-c', JOURNAL_THEN_FLUSH, str(replay_buffer_mib)],
                         check=True, capture_output=True, text=True).stdout
    return int(out)


def test_payloads_freed_by_a_flush_are_reused_without_faulting_pages_in():
    # 5 rounds of 32 MiB of payloads: 40,960 pages of 4 KiB each if the
    # memory went back to the kernel at each FLUSH.
    assert page_faults_journalling(32) < 1000


def test_start_up_objects_are_left_out_of_collections():
    try:
        process_memory.freeze_start_up_objects()
        # The modules and objects pytest made are all frozen: a full
        # collection walks next to nothing.
        assert gc.get_freeze_count() > 10000
        assert len(gc.get_objects(2)) < 100
    finally:
        gc.unfreeze()
