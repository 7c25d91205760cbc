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

"""The sample configs in etc/ are what oslo-config-generator makes of the
option definitions today (regenerate with `tox -e genconfig`), on any machine:
a default computed from the machine (its host name) shows as a placeholder."""

import glob
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GENERATOR_CONFIGS = sorted(glob.glob(os.path.join(REPO, 'etc', '*-config-generator.conf')))

# oslo-config-generator in a process whose host name is not this machine's,
# so a default taken from the machine would show in its output.
GENERATOR_ELSEWHERE = """
import socket
import sys

from oslo_config import generator

other = 'not-' + socket.gethostname()
socket.gethostname = lambda: other
socket.getfqdn = lambda name='': other
sys.exit(generator.main())
"""


def output_file(generator_config):
    with open(generator_config) as f:
        for line in f:
            key, _, value = line.partition('=')
            if key.strip() == 'output_file':
                return os.path.join(REPO, value.strip())
    raise AssertionError('%s names no output_file' % generator_config)


@pytest.mark.parametrize('generator_config', GENERATOR_CONFIGS, ids=os.path.basename)
def test_sample_config_is_up_to_date(generator_config, tmp_path):
    fresh = tmp_path / 'sample.conf'
    subprocess.run([sys.executable, '-c', GENERATOR_ELSEWHERE, '--config-file',
                    generator_config, '--output-file', str(fresh)], check=True, cwd=REPO)
    with open(output_file(generator_config)) as f:
        committed = f.read()
    assert fresh.read_text() == committed, (
        '%s is stale: run tox -e genconfig' % output_file(generator_config))


def test_every_sample_is_generated():
    # The router's, the edge's, the Cinder driver's and the connector's (in
    # nova.conf and cinder.conf): a sample without a generator config would
    # never be checked.
    samples = {os.path.basename(p) for p in glob.glob(os.path.join(REPO, 'etc', '*.sample'))}
    generated = {os.path.basename(output_file(c)) for c in GENERATOR_CONFIGS}
    assert samples == generated == {'ovs-router.conf.sample', 'ovs-edge.conf.sample',
                                     'cinder-ovs.conf.sample', 'nova-ovs.conf.sample'}
