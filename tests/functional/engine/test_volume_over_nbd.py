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

"""Engine volumes served over NBD to real clients, across a kill -9."""

import os
import subprocess

import pytest

from tests.functional.clients import qemu_io
from tests.functional.nbd import server_process

MiB = 1 << 20

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path):
    server = server_process.ServerProcess(
        tmp_path, 'tests.functional.nbd.volume_server',
        ['--backend', str(tmp_path / 'backend'),
         '--volume', 'vol1:%d' % (64 * MiB)])
    try:
        yield server
    finally:
        server.stop()


def test_flushed_writes_survive_kill_9_and_restart(server):
    out = qemu_io(server.unix_uri('vol1'), 'write -P 0x5a 12345 3M', 'flush')
    assert 'wrote' in out
    server.kill()
    server.start()
    out = qemu_io(server.unix_uri('vol1'), 'read -P 0x5a 12345 3M',
                  'read -P 0 0 12345')
    assert 'Pattern verification failed' not in out
    out = qemu_io(server.unix_uri('vol1'), 'read -P 0x5b 12345 4k',
                  expect_ok=False)
    assert 'Pattern verification failed' in out


def test_qemu_img_convert_into_a_volume_and_compare(server, tmp_path):
    image = tmp_path / 'image.raw'
    with open(image, 'wb') as f:
        for i in range(16):
            f.write(os.urandom(MiB) if i % 3 else bytes(MiB))
    subprocess.run(['qemu-img', 'convert', '-n', '-f', 'raw', '-O', 'raw',
                    str(image), server.unix_uri('vol1')], check=True, timeout=120)
    server.kill()
    server.start()
    compare = subprocess.run(['qemu-img', 'compare', '-f', 'raw', '-F', 'raw',
                              str(image), server.unix_uri('vol1')],
                             capture_output=True, text=True, timeout=120)
    assert compare.returncode == 0, compare.stdout + compare.stderr


def test_fio_random_writes_verify(server):
    result = subprocess.run(
        ['fio', '--name=verify', '--ioengine=nbd', '--uri=' +
         server.unix_uri('vol1'), '--rw=randwrite', '--bs=4k', '--size=16M',
         '--iodepth=16', '--verify=crc32c', '--verify_fatal=1',
         '--do_verify=1', '--verify_state_save=0'],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'verify' in result.stdout
