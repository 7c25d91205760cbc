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

"""The .pth hook registers the ovs_edge volume type in nova-compute and
cinder's volume services, after their own imports, and nowhere else.

Each case runs a script named like the service in a fresh interpreter that
processes the hook's .pth file with site.addsitedir, as site does at start.
"""

import json
import os
import subprocess
import sys

import pytest

from ovs_cinder import autoregister

PROBE = '''
import json, site, sys
site.addsitedir(sys.argv[1])
before = sorted(m for m in ('nova', 'os_brick', 'ovs_cinder.brick.connector',
                            'ovs_cinder.nova.volume') if m in sys.modules)
from os_brick import initiator
from os_brick.initiator import connector
result = {'before': before,
          'connector': connector.get_connector_mapping().get('OVS_EDGE'),
          'listed': 'ovs_cinder.brick.connector.OVSEdgeConnector' in connector.unix_connector_list,
          'protocol': getattr(initiator, 'OVS_EDGE', None)}
if len(sys.argv) > 2:
    from nova.virt.libvirt import driver
    result['nova'] = driver.VOLUME_DRIVERS.get('ovs_edge')
print(json.dumps(result))
'''


@pytest.fixture
def site_dir(tmp_path):
    site = tmp_path / 'site-packages'
    site.mkdir()
    assert autoregister.main(['enable', '--site-dir', str(site)]) == 0
    return site


def run_as(program, tmp_path, site_dir, *args):
    script = tmp_path / 'bin' / program
    script.parent.mkdir(exist_ok=True)
    script.write_text(PROBE)
    out = subprocess.run([sys.executable, str(script), str(site_dir), *args],
                         check=True, capture_output=True, text=True, timeout=300).stdout
    return json.loads(out.splitlines()[-1])


def test_enable_writes_a_pth_file_that_sorts_after_editable_installs(site_dir):
    path = site_dir / autoregister.PTH_NAME
    assert path.read_text() == autoregister.PTH_LINE
    assert sorted(['__editable__.ovs_edge-0.0.0.pth', 'easy-install.pth',
                   autoregister.PTH_NAME])[-1] == autoregister.PTH_NAME
    assert autoregister.main(['disable', '--site-dir', str(site_dir)]) == 0
    assert not path.exists()
    assert autoregister.main(['disable', '--site-dir', str(site_dir)]) == 0


@pytest.mark.parametrize('program', ['cinder-volume', 'cinder-backup'])
def test_cinder_services_get_the_connector_after_importing_os_brick(program, tmp_path,
                                                                    site_dir):
    result = run_as(program, tmp_path, site_dir)
    assert result == {'before': [], 'protocol': 'OVS_EDGE', 'listed': True,
                      'connector': 'ovs_cinder.brick.connector.OVSEdgeConnector'}


def test_nova_compute_gets_the_volume_driver_and_the_connector(tmp_path, site_dir):
    result = run_as('nova-compute', tmp_path, site_dir, 'nova')
    assert result['before'] == []
    assert result['connector'] == 'ovs_cinder.brick.connector.OVSEdgeConnector'
    assert result['nova'] == 'ovs_cinder.nova.volume.LibvirtOVSEdgeVolumeDriver'


def test_other_programs_are_left_alone(tmp_path, site_dir):
    result = run_as('cinder-api', tmp_path, site_dir)
    assert result == {'before': [], 'protocol': None, 'listed': False, 'connector': None}


def test_without_the_project_the_pth_line_is_silent(tmp_path):
    # An uninstalled project leaves a harmless line behind, not a traceback
    # at every start of Python.
    site = tmp_path / 'site-packages'
    site.mkdir()
    (site / autoregister.PTH_NAME).write_text(autoregister.PTH_LINE)
    empty = tmp_path / 'empty'
    empty.mkdir()
    result = subprocess.run(
        [sys.executable, '-S', '-c',
         'import sys; sys.path[:] = [p for p in sys.path if "site-packages" not in p '
         'and p != ""]; import site; site.addsitedir(sys.argv[1]); print("ok")', str(site)],
        cwd=empty, capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PYTHONPATH=''))
    assert result.stdout.strip() == 'ok'
    assert result.stderr == ''
