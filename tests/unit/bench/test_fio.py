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

"""fio's nbd engine as the benchmarks run it, against a real nbdkit."""

import pytest

from bench import fio
from ovs_daemon.devcluster import sockets

pytestmark = pytest.mark.slow
MiB = 1 << 20


def test_a_job_reports_what_it_wrote(tmp_path):
    port = sockets.free_port()
    with fio.nbdkit_memory(port, 16) as nbdkit:
        fio.wait_for_port(port, nbdkit)
        job = fio.run_job('nbd://127.0.0.1:%d/' % port, 16, ['--rw=write', '--bs=1M'],
                          str(tmp_path))

    assert job['write']['io_bytes'] == 16 * MiB
    assert fio.mib_s(job) > 0


def test_a_failed_job_raises_with_what_fio_said(tmp_path):
    nobody = 'nbd://127.0.0.1:%d/' % sockets.free_port()

    with pytest.raises(RuntimeError, match='fio failed .* on %s' % nobody):
        fio.run_job(nobody, 16, ['--rw=read', '--bs=1M'], str(tmp_path))
