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

"""ovs-devcluster up / status / down, as a developer runs them."""

import json
import os
import subprocess
import sys

import pytest
import requests

from tests.functional.devcluster import helpers

pytestmark = pytest.mark.slow
DEVCLUSTER = os.path.join(os.path.dirname(sys.executable), 'ovs-devcluster')


def devcluster(*args, expect=0):
    result = subprocess.run([DEVCLUSTER, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == expect, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_up_writes_cluster_json_and_down_stops_every_process(tmp_path):
    workdir = str(tmp_path / 'vpool')
    try:
        out = devcluster('up', '--routers', '3', '--sites', 'a,a,b', '--workdir', workdir)
        assert 'cluster.json' in out
        with open(os.path.join(workdir, 'cluster.json')) as f:
            cluster = json.load(f)
        with open(cluster['token_file']) as f:
            token = f.read().strip()
        headers = {'Authorization': 'Bearer %s' % token}
        sites = {}
        for router in cluster['routers']:
            health = requests.get(router['api'] + '/v1/health', headers=headers, timeout=10)
            sites[health.json()['router']] = health.json()['site']
        assert sites == {'r1': 'a', 'r2': 'a', 'r3': 'b'}
        assert os.path.exists(cluster['edge']['control'])
        assert 'already holds a cluster' in devcluster('up', '--workdir', workdir, expect=1)
        pids = [r['pid'] for r in cluster['routers']] + [cluster['edge']['pid'],
                                                         cluster['zookeeper_process']['pid']]
        os.kill(cluster['routers'][1]['pid'], 9)
    finally:
        out = devcluster('down', '--workdir', workdir)
    assert 'stopped zookeeper' in out and 'stopped router-r1' in out
    assert [pid for pid in pids if helpers.alive(pid)] == []
    assert 'nothing to stop' in devcluster('down', '--workdir', workdir)
