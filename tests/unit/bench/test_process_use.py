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

"""What a server process used, as bench.datapath reads it from /proc: real
child processes doing a known amount of work."""

import contextlib
import subprocess
import sys

from bench import process_use

MiB = 1 << 20


@contextlib.contextmanager
def child_doing(work):
    """A Python child that does ``work`` (Python source) when told to, on
    its standard input, and then waits to be told to exit."""
    child = subprocess.Popen(
        [sys.executable, '-c', 'import os, sys\nsys.stdin.readline()\n%s\n'
         'print("done", flush=True)\nsys.stdin.readline()' % work],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        yield child
    finally:
        child.kill()
        child.wait()


def run(child):
    child.stdin.write('go\n')
    child.stdin.flush()
    assert child.stdout.readline() == 'done\n'


def test_the_cpu_a_process_spends_is_counted():
    with child_doing('sum(range(30_000_000))') as busy:
        with process_use.measured([busy.pid]) as use:
            run(busy)

    assert use.cpu_s > 0.1
    assert use.cores > 0


def test_the_bytes_a_process_writes_to_a_file_are_counted(tmp_path):
    write = ('with open(%r, "wb") as f:\n'
             '    f.write(bytes(%d))\n'
             '    os.fsync(f.fileno())' % (str(tmp_path / 'data'), 4 * MiB))
    with child_doing(write) as writer, child_doing('pass') as idle:
        with process_use.measured([writer.pid]) as writing, \
                process_use.measured([idle.pid]) as idling:
            run(writer)
            run(idle)

    assert writing.written_bytes >= 4 * MiB
    assert idling.written_bytes == 0


def test_several_processes_are_counted_together(tmp_path):
    write = ('with open(os.path.join(%r, str(os.getpid())), "wb") as f:\n'
             '    f.write(bytes(%d))\n'
             '    os.fsync(f.fileno())' % (str(tmp_path), MiB))
    with child_doing(write) as first, child_doing(write) as second:
        with process_use.measured([first.pid, second.pid]) as use:
            run(first)
            run(second)

    assert use.written_bytes >= 2 * MiB
