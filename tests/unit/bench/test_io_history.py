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

"""The fault campaign's check of reads against acknowledged writes, fed
histories by hand: it must catch a stale read, a lost write and a corrupt
block, and accept what a correct block device may return."""

from bench import io_history


def write(history, block, writer, version, sent, ended, ok=True):
    entry = history.write_sent(block, writer, version, sent)
    history.write_ended(entry, ended, ok)
    return entry


def read(history, block, sent, ended, value, final=False, reader=1):
    entry = history.read_sent(block, reader, sent, final)
    data = io_history.payload(block, *value) if value else io_history.ZEROES
    history.read_ended(entry, ended, data)
    return entry


def kinds(history):
    return [(v.kind, v.block) for v in io_history.check(history)]


def test_a_read_of_the_last_acknowledged_write_or_one_in_flight_is_fine():
    history = io_history.History()
    read(history, 7, 0.0, 0.1, None)                 # nothing written yet: zeros
    write(history, 7, 1, 1, 1.0, 2.0)
    write(history, 7, 1, 2, 3.0, 5.0)                # in flight from 3 to 5
    read(history, 7, 2.5, 2.6, (1, 1))
    read(history, 7, 3.5, 3.6, (1, 1))               # v2 in flight: v1 still allowed
    read(history, 7, 3.7, 3.8, (1, 2))               # ... and so is v2
    read(history, 7, 6.0, 6.1, (1, 2), final=True)

    assert kinds(history) == []


def test_a_stale_read_is_caught():
    history = io_history.History()
    write(history, 3, 1, 1, 1.0, 2.0)
    write(history, 3, 1, 2, 3.0, 4.0)
    read(history, 3, 4.5, 4.6, (1, 1))               # v2 was acknowledged at 4.0

    violations = io_history.check(history)

    assert [(v.kind, v.block) for v in violations] == [(io_history.STALE_READ, 3)]
    assert 'v2' in violations[0].detail


def test_a_read_older_than_one_another_read_already_saw_is_stale():
    # Two hosts: w2 v1 was still in flight, but a read returned it, so a
    # later read may not go back to w1's write it followed.
    history = io_history.History()
    write(history, 5, 1, 1, 1.0, 2.0)
    write(history, 5, 2, 1, 3.0, 9.0)
    read(history, 5, 4.0, 4.1, (2, 1), reader=2)
    read(history, 5, 5.0, 5.1, (1, 1), reader=1)

    assert kinds(history) == [(io_history.STALE_READ, 5)]


def test_a_lost_write_is_caught_at_the_read_back():
    history = io_history.History()
    write(history, 0, 1, 1, 1.0, 2.0)
    write(history, 1, 1, 2, 1.0, 2.0)
    write(history, 1, 1, 3, 3.0, 4.0)
    read(history, 0, 10.0, 10.1, None, final=True)   # block 0's write is gone
    read(history, 1, 10.0, 10.1, (1, 2), final=True)  # block 1 rolled back to v2

    assert kinds(history) == [(io_history.LOST_WRITE, 0), (io_history.LOST_WRITE, 1)]


def test_a_failed_write_may_show_but_never_over_a_later_acknowledged_one():
    history = io_history.History()
    write(history, 2, 1, 1, 1.0, 2.0, ok=False)
    read(history, 2, 2.5, 2.6, (1, 1))               # it may have taken effect
    write(history, 2, 1, 2, 3.0, 4.0)
    read(history, 2, 5.0, 5.1, (1, 1), final=True)   # but not after v2

    assert kinds(history) == [(io_history.LOST_WRITE, 2)]


def test_torn_misplaced_unknown_and_future_blocks_are_caught():
    history = io_history.History()
    write(history, 4, 1, 1, 1.0, 2.0)
    torn = bytearray(io_history.payload(4, 1, 1))
    torn[-1] ^= 0xff
    entry = history.read_sent(4, 1, 3.0)
    history.read_ended(entry, 3.1, torn)
    entry = history.read_sent(4, 1, 3.0)
    history.read_ended(entry, 3.1, io_history.payload(9, 1, 1))
    read(history, 4, 3.0, 3.1, (1, 77))              # never written
    write(history, 4, 1, 2, 5.0, 6.0)
    read(history, 4, 3.0, 3.1, (1, 2))               # sent only at 5.0

    assert sorted(v.kind for v in io_history.check(history)) == sorted([
        io_history.CORRUPT, io_history.CORRUPT, io_history.UNKNOWN,
        io_history.FROM_THE_FUTURE])


def test_completions_are_the_end_times_of_one_clients_requests():
    history = io_history.History()
    write(history, 0, 1, 1, 1.0, 2.0)
    write(history, 0, 2, 1, 1.0, 3.0)
    read(history, 0, 4.0, 4.5, (2, 1), reader=1)
    read(history, 0, 6.0, 6.5, (2, 1), reader=1, final=True)
    history.flushed(1, 5.0, 5.5)

    assert io_history.completions(history, 1) == [2.0, 4.5, 5.5]
    assert io_history.completions(history) == [2.0, 3.0, 4.5, 5.5]
