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

"""perf's profile of a running process, as bench.datapath --profile takes
it: a real busy Python child, sampled by a real perf."""

import subprocess
import sys
import time

import pytest

from bench import perf_profile


@pytest.fixture
def busy_python():
    child = subprocess.Popen([sys.executable, '-c', 'while True: sum(range(1000))'])
    try:
        yield child
    finally:
        child.kill()
        child.wait()


def test_a_busy_interpreter_is_seen_in_the_interpreter(busy_python, tmp_path):
    recording = str(tmp_path / 'busy.perf')

    with perf_profile.recording([busy_python.pid], recording):
        time.sleep(1)

    libraries = perf_profile.top(recording, 'dso')
    assert libraries and all(0 < share <= 100 for share, _ in libraries)
    # libpython3.x.so where the interpreter is linked to it, the python3.x
    # executable itself where it is built static (Debian's).
    assert 'python' in libraries[0][1]
    functions = perf_profile.top(recording, 'dso,sym', limit=3)
    assert len(functions) == 3
    assert [share for share, _ in functions] == sorted(
        (share for share, _ in functions), reverse=True)


def test_a_recording_of_no_process_fails_with_what_perf_said(tmp_path):
    gone = subprocess.Popen([sys.executable, '-c', 'pass'])
    gone.wait()

    with pytest.raises(perf_profile.ProfileError, match='perf record failed'):
        with perf_profile.recording([gone.pid], str(tmp_path / 'gone.perf')):
            time.sleep(0.5)


def test_a_missing_recording_fails_with_what_perf_said(tmp_path):
    with pytest.raises(perf_profile.ProfileError, match='perf report failed'):
        perf_profile.top(str(tmp_path / 'absent.perf'), 'dso')
