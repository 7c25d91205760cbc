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

"""A local vPool for development, tests, benchmarks and the demo.

ZooKeeper, N storage routers sharing one ``local`` backend directory, and
edges, all real processes started in the background under one work
directory; ``cluster.json`` there says what runs where, so another process
(``ovs-devcluster down``) can stop everything by PID. Routers and edges
may be placed in simulated hosts (network namespaces, see netns.py) for
partition tests; ZooKeeper then listens on the bridge's address, which
every host reaches.
"""

import json
import os
import secrets
import shutil
import sys
import tempfile
import time

from oslo_log import log as logging

from ovs_daemon.api import client as api_client
from ovs_daemon.devcluster import process as process_mod
from ovs_daemon.devcluster import sockets
from ovs_daemon.devcluster import zookeeper

LOG = logging.getLogger(__name__)
STATE_FILE = 'cluster.json'
BIN_DIR = os.path.dirname(os.path.abspath(sys.executable))
# Short enough that a dead router's volumes can be stolen quickly in tests,
# long enough for a loaded 2-core machine.
SESSION_TIMEOUT = 4.0


class ClusterError(Exception):
    """The cluster could not be started, found or stopped."""


class NoClusterError(ClusterError):
    """The work directory describes no cluster."""


def _conf_text(options):
    lines = []
    for group in sorted(options, key=lambda g: (g != 'DEFAULT', g)):
        lines.append('[%s]' % group)
        for key, value in sorted(options[group].items()):
            lines.append('%s = %s' % (key, value))
        lines.append('')
    return '\n'.join(lines)


def _merge(base, extra):
    merged = {group: dict(values) for group, values in base.items()}
    for group, values in (extra or {}).items():
        merged.setdefault(group, {}).update(values)
    return merged


class Cluster:

    def __init__(self, workdir):
        self.workdir = os.path.abspath(workdir)
        self.state_path = os.path.join(self.workdir, STATE_FILE)
        self.state = None
        self._processes = {}

    # -- state --------------------------------------------------------------------

    @classmethod
    def load(cls, workdir):
        """The cluster described by ``workdir/cluster.json``."""
        cluster = cls(workdir)
        try:
            with open(cluster.state_path) as f:
                cluster.state = json.load(f)
        except FileNotFoundError:
            raise NoClusterError('no cluster in %s (%s is missing)'
                                 % (workdir, STATE_FILE)) from None
        except ValueError as exc:
            raise ClusterError('%s is not a cluster description: %s'
                               % (cluster.state_path, exc)) from None
        return cluster

    def _save(self):
        tmp = self.state_path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(self.state, f, indent=2, sort_keys=True)
        os.replace(tmp, self.state_path)

    @property
    def token_file(self):
        return self.state['token_file']

    @property
    def token(self):
        with open(self.token_file) as f:
            return f.read().strip()

    @property
    def zookeeper_pid(self):
        return self.state['zookeeper_process']['pid']

    def router(self, router_id):
        for router in self.state['routers']:
            if router['id'] == router_id:
                return router
        raise ClusterError('no router %s in this cluster' % router_id)

    def router_ids(self):
        return [router['id'] for router in self.state['routers']]

    def edge(self, name):
        for edge in self.state['edges']:
            if edge['name'] == name:
                return edge
        raise ClusterError('no edge %s in this cluster' % name)

    def client(self, router_id=None, timeout=60.0):
        """A control API client of one router, or of all of them."""
        routers = [self.router(router_id)] if router_id else self.state['routers']
        return api_client.ControlClient([r['api'] for r in routers], self.token,
                                        timeout=timeout, connect_timeout=1.0)

    def connection_routers(self):
        """The routers as connection properties list them for an edge."""
        return [{k: r[k] for k in ('id', 'site', 'api', 'nbd')} for r in self.state['routers']]

    @staticmethod
    def wait_until(predicate, timeout=30.0, what=None):
        deadline = time.monotonic() + timeout
        while True:
            try:
                if predicate():
                    return
            except api_client.ApiError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError('timed out after %.0f s waiting for %s'
                                   % (timeout, what or predicate))
            time.sleep(0.05)

    # -- up -----------------------------------------------------------------------

    def up(self, routers=3, sites=None, vpool='default', zookeeper_hosts=None,
           zookeeper_host=None, hosts=None, options=None, progress=None):
        """Start ZooKeeper (unless ``zookeeper_hosts`` names one) and
        ``routers`` routers r1..rN; returns self.

        ``sites`` lists each router's site; ``hosts`` maps router ids to
        netns Hosts to run them in; ZooKeeper then listens on their
        network's bridge address unless ``zookeeper_host`` says otherwise.
        ``options`` adds config options (``{group: {option: value}}``) to
        every router. On failure everything started is stopped again.
        """
        say = progress or (lambda message: None)
        sites = list(sites or ['default'] * routers)
        if routers < 1:
            raise ClusterError('a cluster needs at least one router, not %d' % routers)
        if len(sites) != routers:
            raise ClusterError('%d sites given for %d routers' % (len(sites), routers))
        if not all(sites):
            raise ClusterError('empty site name in %s' % ','.join(sites))
        self._replace_stopped_cluster(say)
        zookeeper_host = zookeeper_host or _bridge_address(hosts)
        os.makedirs(self.workdir, exist_ok=True)
        self.state = {'instance': secrets.token_hex(8), 'vpool': vpool,
                      'workdir': self.workdir, 'routers': [], 'edges': [],
                      'backend': os.path.join(self.workdir, 'backend'),
                      'token_file': self._write_token(), 'zookeeper_process': None,
                      'router_options': options or {}}
        self._save()
        try:
            if zookeeper_hosts is None:
                say('starting ZooKeeper ...')
                server = zookeeper.ZooKeeperServer(os.path.join(self.workdir, 'zookeeper'),
                                                   host=zookeeper_host).start()
                zookeeper_hosts = server.hosts
                self.state['zookeeper_process'] = server.process.to_record()
                say('ZooKeeper serving on %s' % zookeeper_hosts)
            self.state['zookeeper'] = zookeeper_hosts
            self._save()
            for index, site in enumerate(sites, 1):
                router_id = 'r%d' % index
                host = (hosts or {}).get(router_id)
                self._add_router(router_id, site, host)
                say('starting router %s (site %s) ...' % (router_id, site))
            for router in self.state['routers']:
                self._wait_for_router(router)
                say('router %s serving NBD on %s, API on %s'
                    % (router['id'], router['nbd'], router['api']))
        except BaseException:
            self.down()
            raise
        return self

    def _replace_stopped_cluster(self, say):
        """Refuse to start over a running cluster; forget one that is gone
        entirely (e.g. after a reboot), keeping its volumes' data."""
        try:
            previous = Cluster.load(self.workdir)
        except NoClusterError:
            return
        running = sorted(name for name, alive in previous.status().items() if alive)
        if running:
            raise ClusterError('%s already holds a cluster, still running %s: run '
                               '`ovs-devcluster down --workdir %s` first'
                               % (self.workdir, ', '.join(running), self.workdir))
        say('replacing the stopped cluster described in %s' % self.state_path)
        previous.down()

    def _write_token(self):
        path = os.path.join(self.workdir, 'token')
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'w') as f:
            f.write(secrets.token_urlsafe(32) + '\n')
        return path

    def _add_router(self, router_id, site, host):
        address = host.address if host else '127.0.0.1'
        netns = host.name if host else None
        nbd_port, api_port = sockets.free_ports(2, address, netns)
        directory = os.path.join(self.workdir, 'routers', router_id)
        os.makedirs(directory, exist_ok=True)
        options = _merge({
            'DEFAULT': {'log_file': os.path.join(directory, 'router.log')},
            'router': {'id': router_id, 'site': site, 'vpool': self.state['vpool'],
                       'nbd_host': address, 'nbd_port': nbd_port, 'api_host': address,
                       'api_port': api_port, 'token_file': self.token_file},
            'zookeeper': {'hosts': self.state['zookeeper'],
                          'session_timeout': SESSION_TIMEOUT},
            'backend': {'backend': 'local', 'local_path': self.state['backend']},
        }, self.state['router_options'])
        config = os.path.join(directory, 'ovs-router.conf')
        with open(config, 'w') as f:
            f.write(_conf_text(options))
        router = {'id': router_id, 'site': site, 'nbd': '%s:%d' % (address, nbd_port),
                  'api': 'http://%s:%d' % (address, api_port), 'config': config,
                  'log': options['DEFAULT']['log_file'], 'netns': netns, 'dir': directory}
        self.state['routers'].append(router)
        self._start_router(router)

    def _start_router(self, router):
        process = process_mod.Process.start(
            'router-%s' % router['id'],
            [os.path.join(BIN_DIR, 'ovs-router'), '--config-file', router['config']],
            router['dir'], netns=router['netns'])
        router['pid'] = process.pid
        router['process'] = process.to_record()
        self._processes[process.name] = process
        self._save()

    def _wait_for_router(self, router, timeout=60.0):
        process = self._process(router['process'])
        health = self.client(router['id'], timeout=2.0).health

        def serving():
            try:
                return health()['router'] == router['id']
            except api_client.ApiError:
                return False
        try:
            process.wait_until(serving, timeout, 'serving its control API')
        except process_mod.ProcessError as exc:
            raise ClusterError('router %s did not start: %s\n%s' % (
                router['id'], exc, _tail(router['log']))) from exc

    def _process(self, record):
        process = self._processes.get(record['name'])
        if process is None:
            process = self._processes[record['name']] = process_mod.Process.attach(record)
        return process

    def _attached(self, record):
        """The running process of ``record``, or None if it is gone (its PID
        may even name an unrelated process by now)."""
        try:
            process = self._process(record)
        except process_mod.StalePidError as exc:
            LOG.info('%s', exc)
            return None
        except ProcessLookupError:
            # It exited between the checks of attach().
            return None
        return process if process.is_alive() else None

    # -- routers ------------------------------------------------------------------

    def kill_router(self, router_id):
        """SIGKILL: a crash. Nothing happens to a router that is not running."""
        self._kill(self.router(router_id)['process'])

    def stop_router(self, router_id):
        """SIGTERM, as an operator stops it; SIGKILL if it lingers."""
        self._stop(self.router(router_id)['process'])

    def _refuse_if_running(self, record):
        # A second instance would fail to bind while the record forgets the
        # first one, which then outlives down().
        if self._attached(record) is not None:
            raise ClusterError('%s is still running (pid %d)' % (record['name'], record['pid']))

    def _kill(self, record):
        process = self._attached(record)
        if process is not None:
            process.kill()
        self._forget(record['name'])

    def _stop(self, record):
        process = self._attached(record)
        if process is not None:
            process.stop()
        self._forget(record['name'])

    def start_router(self, router_id):
        """Start a stopped or killed router again, with the same config."""
        router = self.router(router_id)
        self._refuse_if_running(router['process'])
        self._start_router(router)
        self._wait_for_router(router)

    def _forget(self, key):
        process = self._processes.pop(key, None)
        if process is not None:
            # Reaps our own child, so its PID cannot be taken over while the
            # record still names it.
            process.stop()

    # -- edges ----------------------------------------------------------------------

    def add_edge(self, name='edge', site='default', host=None, options=None):
        """Start an edge; returns its entry (``control``: its control socket).

        Its volume sockets go in a short directory under /tmp: a unix socket
        path has at most 107 bytes, which a deep work directory exceeds.
        """
        directory = os.path.join(self.workdir, 'edges', name)
        os.makedirs(directory, exist_ok=True)
        sockets_dir = tempfile.mkdtemp(prefix='ovs-edge-')
        self.state.setdefault('scratch', []).append(sockets_dir)
        settings = _merge({
            'DEFAULT': {'log_file': os.path.join(directory, 'edge.log')},
            'edge': {'host': name, 'site': site, 'token_file': self.token_file,
                     'control_socket': os.path.join(directory, 'control.sock'),
                     'socket_dir': sockets_dir},
        }, options)
        config = os.path.join(directory, 'ovs-edge.conf')
        with open(config, 'w') as f:
            f.write(_conf_text(settings))
        edge = {'name': name, 'site': site, 'config': config, 'dir': directory,
                'control': settings['edge']['control_socket'],
                'log': settings['DEFAULT']['log_file'], 'netns': host.name if host else None}
        self.state['edges'].append(edge)
        self._start_edge(edge)
        return edge

    def _start_edge(self, edge):
        if os.path.exists(edge['control']):
            os.unlink(edge['control'])
        process = process_mod.Process.start(
            'edge-%s' % edge['name'],
            [os.path.join(BIN_DIR, 'ovs-edge'), '--config-file', edge['config']],
            edge['dir'], netns=edge['netns'])
        edge['pid'] = process.pid
        edge['process'] = process.to_record()
        self._processes[process.name] = process
        self.state['edge'] = {'control': self.state['edges'][0]['control'],
                              'pid': self.state['edges'][0]['pid']}
        self._save()
        try:
            process.wait_for_path(edge['control'], timeout=30)
        except process_mod.ProcessError as exc:
            raise ClusterError('edge %s did not start: %s\n%s' % (
                edge['name'], exc, _tail(edge['log']))) from exc

    def kill_edge(self, name):
        self._kill(self.edge(name)['process'])

    def start_edge(self, name):
        edge = self.edge(name)
        self._refuse_if_running(edge['process'])
        self._start_edge(edge)

    # -- down -----------------------------------------------------------------------

    def down(self):
        """Stop every process of the cluster by PID (edges, routers, then
        ZooKeeper); returns the names of those that were still running.

        Safe to call twice and after crashes: a recorded PID that is gone or
        now names another process is left alone. cluster.json is removed
        once nothing of the cluster runs any more.
        """
        if self.state is None:
            return []
        stopped, survivors = [], []
        for record in self._records(stopping_order=True):
            process = self._attached(record)
            try:
                if process is not None:
                    process.stop()
                    stopped.append(record['name'])
                self._forget(record['name'])
            except process_mod.ProcessError as exc:
                LOG.error('Cannot stop %s: %s', record['name'], exc)
                survivors.append('%s (pid %d)' % (record['name'], record['pid']))
        if survivors:
            raise ClusterError('still running after SIGKILL: %s; %s is kept'
                               % (', '.join(survivors), self.state_path))
        for scratch in self.state.get('scratch', []):
            shutil.rmtree(scratch, ignore_errors=True)
        self._remove_state()
        return stopped

    def _remove_state(self):
        try:
            current = Cluster.load(self.workdir).state
        except NoClusterError:
            return
        # A later `up` in this directory may have described its own cluster there.
        if current.get('instance') == self.state.get('instance'):
            os.unlink(self.state_path)

    def status(self):
        """``{process name: alive}`` for everything the cluster started."""
        return {record['name']: self._attached(record) is not None
                for record in self._records()}

    def _records(self, stopping_order=False):
        """Process records of ZooKeeper, the routers and the edges, in the
        order they start or (``stopping_order``) the reverse."""
        records = [self.state.get('zookeeper_process')]
        records += [r.get('process') for r in self.state.get('routers', [])]
        records += [e.get('process') for e in self.state.get('edges', [])]
        records = [record for record in records if record]
        return records[::-1] if stopping_order else records


def _bridge_address(hosts):
    """Where simulated ``hosts`` reach the test machine: their network's
    bridge; the loopback address without hosts."""
    for host in (hosts or {}).values():
        return host.network.address
    return '127.0.0.1'


def _tail(path, lines=20):
    try:
        with open(path, errors='replace') as f:
            return ''.join(f.readlines()[-lines:])
    except OSError:
        return '(no log at %s)' % path
