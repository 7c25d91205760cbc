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

from ovs_daemon.devcluster import cluster as cluster_mod
from tests.functional.clients import run as run_client
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


def described(workdir):
    with open(os.path.join(workdir, 'cluster.json')) as f:
        return json.load(f)


def status_lines(workdir):
    """``{name: (pid, state)}`` as `ovs-devcluster status` prints them."""
    lines = devcluster('status', '--workdir', workdir).splitlines()
    return {name: (int(pid), state) for name, pid, state in
            (line.split(None, 2) for line in lines if not line.startswith('partitioned'))}


def test_kill_stop_start_restart_one_process_by_name(tmp_path):
    workdir = str(tmp_path / 'vpool')
    try:
        devcluster('up', '--routers', '2', '--workdir', workdir)
        before = described(workdir)
        old_pid = before['routers'][0]['pid']

        devcluster('kill', 'r1', '--workdir', workdir)
        assert not helpers.alive(old_pid)
        assert status_lines(workdir)['router-r1'] == (old_pid, 'not running')
        assert 'started r1' in devcluster('start', 'r1', '--workdir', workdir)
        new_pid = described(workdir)['routers'][0]['pid']
        assert new_pid != old_pid and helpers.alive(new_pid)
        assert status_lines(workdir)['router-r1'] == (new_pid, 'running')
        assert 'still running' in devcluster('start', 'router-r1', '--workdir', workdir,
                                             expect=1)

        edge_pid = before['edge']['pid']
        devcluster('restart', 'edge', '--workdir', workdir)
        after = described(workdir)
        assert not helpers.alive(edge_pid) and helpers.alive(after['edge']['pid'])
        assert os.path.exists(after['edge']['control'])

        zookeeper_pid = before['zookeeper_process']['pid']
        devcluster('stop', 'zookeeper', '--workdir', workdir)
        assert status_lines(workdir)['zookeeper'] == (zookeeper_pid, 'not running')
        devcluster('start', 'zookeeper', '--workdir', workdir)
        assert status_lines(workdir)['zookeeper'][1] == 'running'
        assert 'no process r9' in devcluster('stop', 'r9', '--workdir', workdir, expect=1)
        pids = [pid for pid, _ in status_lines(workdir).values()]
    finally:
        out = devcluster('down', '--workdir', workdir)
    assert 'stopped router-r1' in out and 'stopped edge-edge' in out
    assert [pid for pid in pids if helpers.alive(pid)] == []


def test_restart_members_of_a_zookeeper_ensemble(tmp_path):
    workdir = str(tmp_path / 'vpool')
    try:
        devcluster('up', '--routers', '1', '--zookeepers', '3', '--no-edge',
                   '--workdir', workdir)
        cluster = described(workdir)
        assert len(cluster['zookeeper'].split(',')) == 3
        old = status_lines(workdir)
        for member in ('zookeeper-1', 'zookeeper-2', 'zookeeper-3'):
            assert 'restarted %s' % member in devcluster('restart', member,
                                                         '--workdir', workdir)
        new = status_lines(workdir)
        assert all(new[m][1] == 'running' and new[m][0] != old[m][0]
                   for m in ('zookeeper-1', 'zookeeper-2', 'zookeeper-3'))
        with open(cluster['token_file']) as f:
            headers = {'Authorization': 'Bearer %s' % f.read().strip()}
        health = requests.get(cluster['routers'][0]['api'] + '/v1/health', headers=headers,
                              timeout=10).json()
        assert health['zookeeper'] == 'connected'
        pids = [pid for pid, _ in new.values()]
    finally:
        devcluster('down', '--workdir', workdir)
    assert [pid for pid in pids if helpers.alive(pid)] == []


def reach(host, address, port):
    """'OK' if an HTTP server at address:port answers from ``host``."""
    verdict = helpers.probe(host, address, int(port), send='GET / HTTP/1.0\r\n\r\n')
    return verdict.split()[0]


def test_up_netns_puts_each_router_and_the_edge_on_a_host_and_partitions_them(tmp_path):
    if os.geteuid() != 0:
        pytest.skip('network namespaces need root')
    workdir = str(tmp_path / 'vpool')
    try:
        devcluster('up', '--routers', '2', '--netns', '--netns-prefix', 'ovsdt',
                   '--subnet', '10.213.217.0/24', '--workdir', workdir)
        cluster = cluster_mod.Cluster.load(workdir)
        hosts = cluster.network.hosts
        assert sorted(hosts) == ['edge', 'r1', 'r2']
        assert [r['netns'] for r in cluster.state['routers']] == ['ovsdt-r1', 'ovsdt-r2']
        r2_address, r2_port = cluster.router('r2')['api'][len('http://'):].split(':')
        assert r2_address == hosts['r2'].address
        assert reach(hosts['r1'], r2_address, r2_port) == 'OK'

        devcluster('partition', 'r1', 'r2', '--workdir', workdir)
        assert 'partitioned: r1 | r2' in devcluster('status', '--workdir', workdir)
        assert reach(hosts['r1'], r2_address, r2_port) == 'TimeoutError'
        assert reach(hosts['edge'], r2_address, r2_port) == 'OK'
        devcluster('partition', 'edge', '--workdir', workdir)
        assert reach(hosts['edge'], r2_address, r2_port) == 'TimeoutError'

        assert 'healed 2' in devcluster('heal', '--workdir', workdir)
        assert reach(hosts['r1'], r2_address, r2_port) == 'OK'
        assert reach(hosts['edge'], r2_address, r2_port) == 'OK'
    finally:
        devcluster('down', '--workdir', workdir)
    namespaces = subprocess.run(['ip', 'netns', 'list'], capture_output=True, text=True)
    assert 'ovsdt-' not in namespaces.stdout


def test_up_backend_s3_runs_the_vpool_on_motos_server(tmp_path):
    workdir = str(tmp_path / 'vpool')
    try:
        devcluster('up', '--routers', '2', '--backend', 's3', '--no-edge',
                   '--workdir', workdir)
        cluster = cluster_mod.Cluster.load(workdir)
        assert 's3' in cluster.status() and cluster.status()['s3']
        with open(cluster.router('r1')['config']) as f:
            assert 'backend = s3' in f.read()
        cluster.client().create_volume('v1', 4 << 20, router='r1')
        nbd = cluster.nbd_uri('r1', 'v1')
        subprocess.run(['qemu-io', '-f', 'raw', '-c', 'write -P 0x5a 0 64k', '-c', 'flush',
                        nbd], check=True, capture_output=True, timeout=60)
        settings = cluster.state['backend_options']
        keys = cluster_mod._s3_client(settings).list_objects_v2(
            Bucket=settings['s3_bucket'])['KeyCount']
        assert keys > 0

        devcluster('kill', 'r1', '--workdir', workdir)
        cluster.client('r2').acquire('v1', 'failover')
        read = subprocess.run(
            ['qemu-io', '-f', 'raw', '-c', 'read -P 0x5a 0 64k',
             cluster.nbd_uri('r2', 'v1')],
            capture_output=True, text=True, timeout=60)
        assert read.returncode == 0 and 'Pattern verification failed' not in read.stdout
        s3_pid = cluster.state['s3_process']['pid']
    finally:
        out = devcluster('down', '--workdir', workdir)
    assert 'stopped s3' in out and not helpers.alive(s3_pid)


def test_up_with_tls_turns_tls_on_for_every_hop(tmp_path):
    """`up --tls`: routers serve HTTPS and require NBD TLS, the edge and
    ovs-admin verify them with the cluster's CA, and the URIs ovs-admin
    gives tools are libnbd's nbds:// with the client certificates."""
    workdir = str(tmp_path / 'vpool')
    admin = [sys.executable, '-m', 'ovs_daemon.cmd.admin', '--cluster', workdir, '--json']
    try:
        out = devcluster('up', '--tls', '--routers', '2', '--workdir', workdir)
        cluster = described(workdir)
        assert 'TLS: CA %s' % cluster['tls']['ca_file'] in out
        assert all(r['api'].startswith('https://') for r in cluster['routers'])
        subprocess.run(admin + ['create', 'v1', '64M'], check=True, timeout=60,
                       capture_output=True)
        attached = json.loads(subprocess.run(admin + ['attach', 'v1'], check=True, timeout=60,
                                             capture_output=True, text=True).stdout)
        # Through the edge, whose hop to the router is NBD over TLS.
        run_client('qemu-io', '-f', 'raw', '-c', 'write -P 0x21 0 1M', '-c', 'flush',
                   attached['uri'])
        credential = json.loads(subprocess.run(admin + ['credential', 'v1'], check=True,
                                               timeout=60, capture_output=True,
                                               text=True).stdout)
        assert credential['uri'].startswith('nbds://')
        assert 'export-size: 67108864' in run_client('nbdinfo', credential['uri'])
        run_client('nbdinfo', credential['uri'].replace('nbds://', 'nbd://').partition('?')[0],
                   expect_ok=False)
    finally:
        devcluster('down', '--workdir', workdir)
