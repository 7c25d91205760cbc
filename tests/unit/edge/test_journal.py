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

"""The edge's journal keeps every write since the last completed flush, in
order, and forgets exactly what a flush covered."""

import asyncio

from ovs_cinder.edge import journal as journal_mod
from ovs_daemon.nbd import protocol


def test_a_flush_forgets_only_the_writes_sent_before_it():
    journal = journal_mod.WriteJournal(limit_bytes=1 << 20)
    journal.append(protocol.CMD_WRITE, 0, 4, 0, b'aaaa')
    journal.append(protocol.CMD_TRIM, 8192, 4096, 0, None)
    covered = journal.next_seq
    journal.append(protocol.CMD_WRITE, 0, 4, 0, b'bbbb')
    journal.forget_before(covered)
    assert [(e.command, e.payload) for e in journal.entries()] == [
        (protocol.CMD_WRITE, b'bbbb')]
    assert journal.bytes == journal_mod.ENTRY_BYTES + 4


def test_replay_order_is_submission_order():
    journal = journal_mod.WriteJournal(limit_bytes=1 << 20)
    for i in range(100):
        journal.append(protocol.CMD_WRITE, (i % 7) * 4096, 1, 0, bytes([i]))
    assert [e.payload for e in journal.entries()] == [bytes([i]) for i in range(100)]
    assert [e.seq for e in journal.entries()] == sorted(e.seq for e in journal.entries())


def test_full_when_the_kept_payload_reaches_the_limit():
    journal = journal_mod.WriteJournal(limit_bytes=8192)
    journal.append(protocol.CMD_WRITE, 0, 4096, 0, bytes(4096))
    assert not journal.full
    journal.append(protocol.CMD_WRITE, 4096, 4096, 0, bytes(4096))
    assert journal.full
    journal.forget_before(journal.next_seq)
    assert not journal.full and len(journal) == 0 and journal.bytes == 0


def test_trims_and_zeroes_fill_the_journal_too():
    # A flood of TRIMs, with no payload, must make the edge flush as writes do.
    journal = journal_mod.WriteJournal(limit_bytes=64 << 10)
    trims = 0
    while not journal.full:
        journal.append(protocol.CMD_TRIM if trims % 2 else protocol.CMD_WRITE_ZEROES,
                       trims * 8192, 4096, 0, None)
        trims += 1
        assert trims <= 1000, 'a thousand TRIMs and the journal is still not full'
    journal.forget_before(journal.next_seq)
    assert journal.bytes == 0


def test_a_write_failed_back_to_the_guest_is_not_replayed():
    journal = journal_mod.WriteJournal(limit_bytes=1 << 20)
    kept = journal.append(protocol.CMD_WRITE, 0, 4, 0, b'keep')
    failed = journal.append(protocol.CMD_WRITE, 0, 4, 0, b'fail')
    journal.discard(failed)
    journal.discard(failed)
    assert journal.entries() == [kept]
    assert journal.bytes == journal_mod.ENTRY_BYTES + 4


def test_a_flush_covers_only_writes_whose_latest_send_succeeded():
    async def scenario():
        loop = asyncio.get_running_loop()
        journal = journal_mod.WriteJournal(limit_bytes=1 << 20)
        first = journal.append(protocol.CMD_WRITE, 0, 4, 0, b'aaaa')
        second = journal.append(protocol.CMD_WRITE, 8, 4, 0, b'bbbb')
        covered = journal.next_seq
        first.future, second.future = loop.create_future(), loop.create_future()
        first.future.set_result(None)
        assert journal.unapplied_before(covered) is second      # no reply yet
        second.future.set_exception(OSError('replay failed'))
        assert journal.unapplied_before(covered) is second
        second.future = loop.create_future()
        second.future.set_result(None)                          # sent again, applied
        assert journal.unapplied_before(covered) is None
    asyncio.run(scenario())
