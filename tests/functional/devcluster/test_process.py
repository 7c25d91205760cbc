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

import json
import os
import subprocess
import sys

import pytest

from ovs_daemon.devcluster import process

pytestmark = pytest.mark.slow

SLEEPER = [sys.executable, '-c', 'import time; time.sleep(600)']


def _start_sleeper(workdir, stop_afterwards):
    return stop_afterwards(process.Process.start('sleeper', SLEEPER, str(workdir)))


def test_sigkill_is_detected_and_stop_reaps(tmp_path, stop_afterwards):
    sleeper = _start_sleeper(tmp_path, stop_afterwards)
    assert sleeper.is_alive()

    sleeper.kill()
    sleeper.wait_until(lambda: not sleeper.is_alive(), timeout=5, what='dead')
    sleeper.stop()

    assert not os.path.exists('/proc/%d' % sleeper.pid)


def test_exit_before_ready_quotes_the_log(tmp_path, stop_afterwards):
    failing = stop_afterwards(process.Process.start(
        'failing', ['sh', '-c', 'echo cannot bind >&2; exit 3'], str(tmp_path)))

    with pytest.raises(process.ProcessExitedError) as raised:
        failing.wait_for_port('127.0.0.1', 1, timeout=10)

    assert 'status 3' in str(raised.value)
    assert 'cannot bind' in str(raised.value)


def test_wait_times_out_while_process_runs(tmp_path, stop_afterwards):
    sleeper = _start_sleeper(tmp_path, stop_afterwards)

    with pytest.raises(process.ProcessTimeoutError):
        sleeper.wait_for_path(str(tmp_path / 'never'), timeout=0.3)


def test_pidfile_stops_process_from_another_interpreter(tmp_path, stop_afterwards):
    sleeper = _start_sleeper(tmp_path, stop_afterwards)
    pidfile = str(tmp_path / 'pids.json')
    process.record_in_pidfile(pidfile, sleeper)

    # As `ovs-devcluster down` does: a separate process that never started it.
    down = subprocess.run(
        [sys.executable, '-c',
         'import sys; from ovs_daemon.devcluster import process; '
         'print(process.stop_recorded(sys.argv[1]))', pidfile],
        capture_output=True, text=True, timeout=60, check=True)

    assert down.stdout.strip() == "['sleeper']"
    assert not sleeper.is_alive()
    assert not os.path.exists(pidfile)


def test_attach_refuses_a_recycled_pid(tmp_path, stop_afterwards):
    sleeper = _start_sleeper(tmp_path, stop_afterwards)
    # The same PID with another start time is what a reused PID looks like.
    record = dict(sleeper.to_record(), start_time=sleeper.start_time - 1)
    pidfile = str(tmp_path / 'pids.json')
    with open(pidfile, 'w') as f:
        f.write('{"processes": [%s]}' % json.dumps(record))

    with pytest.raises(process.StalePidError):
        process.Process.attach(record)
    assert process.stop_recorded(pidfile) == []
    assert sleeper.is_alive()


def test_attach_refuses_an_exited_process(tmp_path, stop_afterwards):
    sleeper = _start_sleeper(tmp_path, stop_afterwards)
    record = sleeper.to_record()
    sleeper.stop()

    with pytest.raises(process.StalePidError):
        process.Process.attach(record)
