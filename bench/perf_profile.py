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

"""Where running processes spend their CPU, sampled by Linux's ``perf``.

Python's own profilers see Python functions only and slow them down; perf
samples every thread of a running process from outside, at a cost too small
to change what it measures, and names the library and the C function each
sample was in: the interpreter's (libpython), a compiled module's, libc's or
the kernel's.
"""

import contextlib
import signal
import subprocess

FREQUENCY = 999


class ProfileError(Exception):
    """perf could not record or report."""


@contextlib.contextmanager
def recording(pids, path):
    """Samples ``pids`` into the perf data file ``path`` while the block
    runs."""
    perf = subprocess.Popen(
        ['perf', 'record', '-q', '-F', str(FREQUENCY), '-o', path,
         '-p', ','.join(map(str, pids))],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        yield
    finally:
        perf.send_signal(signal.SIGINT)
        try:
            _, stderr = perf.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            perf.kill()
            perf.wait()
            raise ProfileError('perf record did not stop')
    if perf.returncode not in (0, -signal.SIGINT):
        raise ProfileError('perf record failed (%d): %s' % (perf.returncode, stderr.strip()))


def top(path, sort, limit=8):
    """The ``limit`` largest entries of a recording, by own time, as
    ``[(percent, name)]``; ``sort`` is perf's key, e.g. ``'dso'`` (the
    library) or ``'dso,sym'`` (library and function)."""
    result = subprocess.run(
        ['perf', 'report', '-q', '--stdio', '--no-children', '-i', path, '--sort', sort],
        capture_output=True, text=True)
    if result.returncode != 0:
        raise ProfileError('perf report failed (%d): %s'
                           % (result.returncode, result.stderr.strip()))
    entries = []
    for line in result.stdout.splitlines():
        share, _, name = line.strip().partition('%')
        if name:
            entries.append((float(share), ' '.join(name.split())))
    return entries[:limit]
