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

"""What server processes used while a benchmark ran: CPU time and the bytes
they sent to the disk, from Linux's /proc accounting of every thread of each
process.

A benchmark that compares servers by throughput alone cannot tell a server
held back by its CPU from one waiting on the disk; these two counts can:
CPU seconds per second of the run (1.0 is one core busy) and bytes written
per byte the client wrote (what the server's layout costs the disk).
"""

import contextlib
import os
import time

_TICKS_PER_SECOND = os.sysconf('SC_CLK_TCK')


def cpu_seconds(pid):
    """User and system CPU time of every thread of ``pid`` so far."""
    with open('/proc/%d/stat' % pid) as f:
        stat = f.read()
    # The command name, in parentheses, may hold spaces: count fields from
    # after its closing parenthesis (utime and stime are fields 14 and 15).
    fields = stat[stat.rindex(')') + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND


def bytes_to_storage(pid):
    """Bytes ``pid`` has caused to be written to the storage layer so far
    (counted when it dirties a page, so a page rewritten before writeback
    counts once)."""
    with open('/proc/%d/io' % pid) as f:
        for line in f:
            name, _, value = line.partition(':')
            if name == 'write_bytes':
                return int(value)
    raise RuntimeError('no write_bytes in /proc/%d/io' % pid)


class Use:
    """What some processes used over a stretch of time."""

    def __init__(self):
        self.wall_s = self.cpu_s = 0.0
        self.written_bytes = 0

    @property
    def cores(self):
        """CPU seconds per second: 1.0 is one core busy."""
        return self.cpu_s / self.wall_s if self.wall_s else 0.0

    @property
    def written_per_second(self):
        return self.written_bytes / self.wall_s if self.wall_s else 0.0


def _sample(pids):
    return (time.monotonic(), sum(map(cpu_seconds, pids)),
            sum(map(bytes_to_storage, pids)))


@contextlib.contextmanager
def measured(pids):
    """Yields a :class:`Use` that, once the block ends, holds what ``pids``
    used together during it."""
    use = Use()
    wall, cpu, written = _sample(pids)
    yield use
    end_wall, end_cpu, end_written = _sample(pids)
    use.wall_s = end_wall - wall
    use.cpu_s = end_cpu - cpu
    use.written_bytes = end_written - written
