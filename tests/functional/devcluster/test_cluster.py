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

"""Cluster: ZooKeeper and real ovs-router processes under one work directory."""

import json
import os
import signal
import stat
import subprocess

import pytest
import requests

from ovs_daemon.cmd import devcluster
from ovs_daemon.devcluster import cluster as cluster_mod
from ovs_daemon.devcluster import process as process_mod
from ovs_daemon.devcluster import sockets
from tests.functional.devcluster import helpers

pytestmark = pytest.mark.slow


@pytest.fixture
def workdir(tmp_path):
    return str(tmp_path / 'vpool')


@pytest.fixture
def make_cluster(workdir):
    """make_cluster() is a Cluster in ``workdir``; every one made is stopped
    by PID at the end, the newest first, even if the test fails."""
    clusters = []
    yield lambda: clusters.append(cluster_mod.Cluster(workdir)) or clusters[-1]
    for cluster in reversed(clusters):
        cluster.down()


def described(workdir):
    with open(os.path.join(workdir, 'cluster.json')) as f:
        return json.load(f)


def api_get(cluster_json, router, path):
    with open(cluster_json['token_file']) as f:
        headers = {'Authorization': 'Bearer %s' % f.read().strip()}
    return requests.get(router['api'] + path, headers=headers, timeout=10)


def pids(cluster_json):
    return ([r['pid'] for r in cluster_json['routers']]
            + [cluster_json['zookeeper_process']['pid']])


def test_up_describes_routers_that_serve_their_site(make_cluster, workdir):
    make_cluster().up(routers=3, sites=['a', 'a', 'b'], vpool='pool1',
                      options={'router': {'peer_timeout': 0.5}})
    cluster_json = described(workdir)
    assert cluster_json['vpool'] == 'pool1'
    assert stat.S_IMODE(os.stat(cluster_json['token_file']).st_mode) == 0o600
    assert os.path.isdir(cluster_json['backend'])
    for router, site in zip(cluster_json['routers'], 'aab'):
        health = api_get(cluster_json, router, '/v1/health')
        assert health.status_code == 200, health.text
        assert (health.json()['router'], health.json()['site']) == (router['id'], site)
        assert health.json()['zookeeper'] == 'connected'
        with open(router['config']) as f:
            assert 'peer_timeout = 0.5' in f.read()
    cluster_mod.Cluster.wait_until(
        lambda: {r['id']: r['site'] for r in
                 api_get(cluster_json, cluster_json['routers'][0], '/v1/routers')
                 .json()['routers']} == {'r1': 'a', 'r2': 'a', 'r3': 'b'},
        timeout=10, what='every router registered')
    assert requests.get(cluster_json['routers'][0]['api'] + '/v1/health',
                        timeout=10).status_code == 401


def test_kill_router_then_start_router_brings_it_back(make_cluster, workdir):
    cluster = make_cluster().up(routers=2)
    killed = cluster.router('r1')['pid']
    cluster.kill_router('r1')
    assert not helpers.alive(killed)
    assert cluster.status() == {'zookeeper': True, 'router-r1': False, 'router-r2': True}
    with pytest.raises(requests.ConnectionError):
        api_get(described(workdir), cluster.router('r1'), '/v1/health')

    cluster.start_router('r1')
    router = described(workdir)['routers'][0]
    assert router['pid'] != killed and helpers.alive(router['pid'])
    assert api_get(described(workdir), router, '/v1/health').json()['router'] == 'r1'
    with pytest.raises(cluster_mod.ClusterError, match='still running'):
        cluster.start_router('r1')


def test_wait_for_registration_waits_until_every_router_is_registered(make_cluster):
    cluster = make_cluster().up(routers=2)
    cluster.wait_for_registration()
    cluster.stop_router('r2')
    with pytest.raises(TimeoutError, match='routers r1, r2 registered'):
        cluster.wait_for_registration(timeout=1.0)

    cluster.start_router('r2')
    cluster.wait_for_registration()
    assert {r['id'] for r in cluster.client().routers()} == {'r1', 'r2'}


def test_down_from_another_process_after_a_kill_9_stops_the_rest(make_cluster, workdir,
                                                                 capsys):
    make_cluster().up(routers=3)
    cluster_json = described(workdir)
    killed = cluster_json['routers'][1]['pid']
    os.kill(killed, signal.SIGKILL)
    # A process takes a moment to die of SIGKILL on a busy machine.
    cluster_mod.Cluster.wait_until(lambda: not helpers.alive(killed), timeout=10,
                                   what='r2 gone')

    assert devcluster.main(['status', '--workdir', workdir]) == 0
    status = {name: (int(pid), state) for name, pid, state in
              (line.split(None, 2) for line in capsys.readouterr().out.splitlines())}
    assert status == {'zookeeper': (cluster_json['zookeeper_process']['pid'], 'running'),
                      'router-r1': (cluster_json['routers'][0]['pid'], 'running'),
                      'router-r2': (cluster_json['routers'][1]['pid'], 'not running'),
                      'router-r3': (cluster_json['routers'][2]['pid'], 'running')}
    # What `ovs-devcluster down` does in its own interpreter.
    stopped = cluster_mod.Cluster.load(workdir).down()

    assert sorted(stopped) == ['router-r1', 'router-r3', 'zookeeper']
    assert [pid for pid in pids(cluster_json) if helpers.alive(pid)] == []
    assert not os.path.exists(os.path.join(workdir, 'cluster.json'))
    assert devcluster.main(['down', '--workdir', workdir]) == 0
    assert 'nothing to stop' in capsys.readouterr().out


def test_down_leaves_alone_processes_that_took_recorded_pids(workdir):
    bystander = subprocess.Popen(['sleep', '60'])
    try:
        record = {'pid': bystander.pid, 'start_time': process_mod.read_start_time(bystander.pid),
                  'log_path': os.devnull, 'argv': ['ovs-router']}
        os.makedirs(workdir)
        with open(os.path.join(workdir, 'cluster.json'), 'w') as f:
            # The same PID, but recorded when another process had it.
            json.dump({'routers': [{'id': 'r1', 'process': dict(
                record, name='router-r1', start_time=record['start_time'] - 1)}],
                'zookeeper_process': dict(record, name='zookeeper',
                                          start_time=record['start_time'] + 1)}, f)
        stale = cluster_mod.Cluster.load(workdir)

        assert stale.status() == {'zookeeper': False, 'router-r1': False}
        assert stale.down() == []
        assert bystander.poll() is None
        assert not os.path.exists(os.path.join(workdir, 'cluster.json'))
    finally:
        bystander.kill()
        bystander.wait()


def test_up_refuses_a_running_cluster_and_replaces_a_stopped_one(make_cluster, workdir):
    first = make_cluster().up(routers=1)
    first.client().create_volume('v1', 1 << 20)
    with pytest.raises(cluster_mod.ClusterError, match='already holds a cluster'):
        make_cluster().up(routers=1)
    assert helpers.alive(first.router('r1')['pid'])

    # As after a reboot: nothing runs, cluster.json stays behind.
    first.kill_router('r1')
    os.kill(first.zookeeper_pid, signal.SIGKILL)
    # A JVM takes a moment to die of SIGKILL.
    cluster_mod.Cluster.wait_until(lambda: not helpers.alive(first.zookeeper_pid),
                                   timeout=10, what='ZooKeeper gone')
    second = make_cluster().up(routers=1)

    assert described(workdir)['routers'][0]['pid'] == second.router('r1')['pid']
    assert [v['name'] for v in second.client().volumes()] == ['v1']


def test_a_router_that_cannot_start_fails_up_with_its_log(make_cluster, workdir):
    cluster = make_cluster()
    nobody = '127.0.0.1:%d' % sockets.free_port()
    with pytest.raises(cluster_mod.ClusterError) as failure:
        cluster.up(routers=1, zookeeper_hosts=nobody,
                   options={'zookeeper': {'connect_timeout': 1.0}})

    assert 'router r1 did not start' in str(failure.value)
    assert 'cannot reach ZooKeeper at %s' % nobody in str(failure.value)
    assert not helpers.alive(cluster.state['routers'][0]['pid'])
    assert not os.path.exists(os.path.join(workdir, 'cluster.json'))


@pytest.mark.parametrize('argv, message', [
    (['status'], 'no cluster in'),
    (['up', '--routers', '2', '--sites', 'a'], '1 sites given for 2 routers'),
    (['up', '--routers', '0'], 'at least one router'),
])
def test_cli_refuses_with_a_message_and_no_traceback(workdir, capsys, argv, message):
    assert devcluster.main(argv + ['--workdir', workdir]) == 1
    err = capsys.readouterr().err
    assert err.startswith('ovs-devcluster: error: ') and message in err
    assert 'Traceback' not in err
