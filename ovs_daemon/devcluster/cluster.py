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

ZooKeeper (one server or an ensemble), N storage routers sharing one
backend (a ``local`` directory, or an S3 store: moto's server started here
or one given), and edges, all real processes started in the background
under one work directory; ``cluster.json`` there says what runs where, so
another process (``ovs-devcluster down``, ``kill``, ``start``, ...) can
stop, kill and start them by PID and name. Routers and edges may be placed
in simulated hosts (network namespaces, see netns.py) for partition tests;
ZooKeeper (and the S3 server) then listen on the bridge's address, which
every host reaches.
"""

import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time

import boto3
import botocore.config
from oslo_log import log as logging

from ovs_daemon import tls as tls_mod
from ovs_daemon.api import client as api_client
from ovs_daemon.api import errors as api_errors
from ovs_daemon.devcluster import certificates
from ovs_daemon.devcluster import netns as netns_mod
from ovs_daemon.devcluster import process as process_mod
from ovs_daemon.devcluster import sockets
from ovs_daemon.devcluster import zookeeper

LOG = logging.getLogger(__name__)
STATE_FILE = 'cluster.json'
BIN_DIR = os.path.dirname(os.path.abspath(sys.executable))
# Short enough that a dead router's volumes can be stolen quickly in tests,
# long enough for a loaded 2-core machine.
SESSION_TIMEOUT = 4.0
# moto's server accepts any credentials; these are the ones its docs use.
MOTO_CREDENTIALS = ('testing', 'testing')
MOTO_REGION = 'us-east-1'
# What ``partition`` calls the root namespace: ZooKeeper, the S3 server and
# the operator's shell all answer from the bridge's address.
ROOT_HOST = 'zookeeper'


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
        self._network = None

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
        """The admin credential."""
        with open(self.token_file) as f:
            return f.read().strip()

    @property
    def edge_token_file(self):
        return self.state['edge_token_file']

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

    @property
    def tls(self):
        """The clients' TLS files of a cluster started with ``tls``
        (``ca_file``, ``cert_file``, ``key_file`` and ``dir``, a directory
        qemu's tls-creds-x509 and libnbd's tls-certificates read), or None."""
        return self.state.get('tls')

    def client_tls(self):
        """The ClientTLS of tools and tests (the CA, a client certificate)."""
        if not self.tls:
            return tls_mod.ClientTLS()
        return tls_mod.ClientTLS(self.tls['ca_file'], self.tls['cert_file'],
                                 self.tls['key_file'])

    def client(self, router_id=None, timeout=60.0):
        """A control API client of one router, or of all of them."""
        routers = [self.router(router_id)] if router_id else self.state['routers']
        return api_client.ControlClient([r['api'] for r in routers], self.token,
                                        timeout=timeout, connect_timeout=1.0,
                                        tls=self.client_tls())

    def session_export(self, volume, ttl=3600):
        """``<volume>/<credential>``: the export name of an operator's NBD
        session, with a short-lived credential from the control API."""
        return '%s/%s' % (volume, self.client().create_credential(volume, ttl)['token'])

    def nbd_uri(self, router_id, volume, ttl=3600):
        """An NBD URI of ``volume`` on a router, with a credential; on a
        cluster with TLS libnbd's ``nbds://`` with the clients' certificates."""
        address = self.router(router_id)['nbd']
        export = self.session_export(volume, ttl)
        if self.tls:
            return 'nbds://%s/%s?tls-certificates=%s' % (address, export, self.tls['dir'])
        return 'nbd://%s/%s' % (address, export)

    def router_endpoints(self):
        """The routers' control API URLs, as an edge's configuration lists them."""
        return ','.join(r['api'] for r in self.state['routers'])

    @staticmethod
    def wait_until(predicate, timeout=30.0, what=None):
        deadline = time.monotonic() + timeout
        while True:
            try:
                if predicate():
                    return
            except api_errors.ApiError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError('timed out after %.0f s waiting for %s'
                                   % (timeout, what or predicate))
            time.sleep(0.05)

    def wait_for_registration(self, timeout=60.0):
        """Wait until every router is registered, as the control API lists
        them. On a loaded machine a router's first ZooKeeper session may
        expire at once, and a router whose session expired during a fault
        registers anew: until then a volume cannot be placed on it."""
        routers = set(self.router_ids())
        api = self.client(timeout=5.0)
        self.wait_until(
            lambda: routers <= {r['id'] for r in api.routers()}, timeout=timeout,
            what='routers %s registered' % ', '.join(sorted(routers)))

    # -- up -----------------------------------------------------------------------

    def up(self, routers=3, sites=None, vpool='default', zookeeper_hosts=None,
           zookeeper_host=None, hosts=None, options=None, progress=None,
           zookeepers=1, netns=None, s3=None, tls=False):
        """Start ZooKeeper (unless ``zookeeper_hosts`` names one) and
        ``routers`` routers r1..rN; returns self.

        ``sites`` lists each router's site; ``hosts`` maps router ids to
        netns Hosts to run them in; ZooKeeper then listens on their
        network's bridge address unless ``zookeeper_host`` says otherwise.
        ``netns`` (``(prefix, subnet)``) builds a network of the cluster's
        own instead, one host per router (and per edge added later), torn
        down by down(). ``zookeepers`` > 1 starts an ensemble of that many.
        ``s3`` puts the backend on S3: ``{'endpoint': URL, 'bucket': NAME,
        'prefix': ..., 'region': ...}``, or ``{}`` to start moto's server.
        ``options`` adds config options (``{group: {option: value}}``) to
        every router. ``tls`` makes a CA (under ``tls/``) and a certificate
        for every router and edge: the control API is served over HTTPS
        and NBD sessions must start TLS. On failure everything started is
        stopped again.
        """
        say = progress or (lambda message: None)
        sites = list(sites or ['default'] * routers)
        if routers < 1:
            raise ClusterError('a cluster needs at least one router, not %d' % routers)
        if len(sites) != routers:
            raise ClusterError('%d sites given for %d routers' % (len(sites), routers))
        if not all(sites):
            raise ClusterError('empty site name in %s' % ','.join(sites))
        if zookeepers < 1 or zookeepers % 2 == 0:
            raise ClusterError('ZooKeeper needs an odd number of servers, not %d' % zookeepers)
        self._replace_stopped_cluster(say)
        os.makedirs(self.workdir, exist_ok=True)
        self.state = {'instance': secrets.token_hex(8), 'vpool': vpool,
                      'workdir': self.workdir, 'routers': [], 'edges': [],
                      'backend': os.path.join(self.workdir, 'backend'),
                      'token_file': self._write_token('token'),
                      'edge_token_file': self._write_token('edge-token'),
                      'zookeeper_process': None,
                      'zookeeper_members': [], 'router_options': options or {},
                      'network': None, 'partitions': []}
        if tls:
            self.state['tls'] = self._make_ca()
        self._save()
        try:
            if netns is not None:
                hosts = self._build_network(netns, ['r%d' % i for i in range(1, routers + 1)])
                say('simulated hosts on bridge %s: %s' % (
                    self.network.bridge, ', '.join('%s %s' % (h.name, h.address)
                                                   for h in hosts.values())))
            zookeeper_host = zookeeper_host or _bridge_address(hosts)
            if zookeeper_hosts is None:
                say('starting ZooKeeper ...')
                zookeeper_hosts = self._start_zookeeper(zookeeper_host, zookeepers)
                say('ZooKeeper serving on %s' % zookeeper_hosts)
            self.state['zookeeper'] = zookeeper_hosts
            if s3 is not None:
                self._use_s3(s3, zookeeper_host, say)
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

    def _start_zookeeper(self, host, size):
        """Start a server (or an ensemble of ``size``); returns its hosts string."""
        directory = os.path.join(self.workdir, 'zookeeper')
        if size == 1:
            server = zookeeper.ZooKeeperServer(directory, host=host).start()
            self.state['zookeeper_process'] = server.process.to_record()
            return server.hosts
        ensemble = zookeeper.ZooKeeperEnsemble(directory, size=size, host=host).start()
        self.state['zookeeper_members'] = [p.to_record() for p in ensemble.processes]
        return ensemble.hosts

    def _use_s3(self, s3, address, say):
        """Point the routers' backend at S3, starting moto's server unless
        an endpoint is given."""
        settings = {'backend': 's3', 's3_bucket': s3.get('bucket') or 'ovs-devcluster',
                    's3_prefix': s3.get('prefix') or ''}
        if s3.get('region'):
            settings['s3_region'] = s3['region']
        if s3.get('endpoint'):
            settings['s3_endpoint_url'] = s3['endpoint']
        else:
            say('starting moto\'s S3 server ...')
            settings['s3_endpoint_url'] = self._start_moto(address)
            settings['s3_access_key'], settings['s3_secret_key'] = MOTO_CREDENTIALS
            settings['s3_region'] = MOTO_REGION
            _s3_client(settings).create_bucket(Bucket=settings['s3_bucket'])
            say('moto\'s S3 server serving on %s' % settings['s3_endpoint_url'])
        self.state['backend'] = '%s/%s/%s' % (settings['s3_endpoint_url'] or 's3:/',
                                             settings['s3_bucket'], settings['s3_prefix'])
        self.state['backend_options'] = settings

    def _start_moto(self, address):
        port = sockets.free_port(address)
        process = process_mod.Process.start(
            's3', [sys.executable, '-m', 'ovs_daemon.devcluster.s3_server',
                   '--host', address, '--port', str(port)],
            os.path.join(self.workdir, 's3'))
        self._processes[process.name] = process
        self.state['s3_process'] = process.to_record()
        self._save()
        try:
            process.wait_for_port(address, port)
        except process_mod.ProcessError as exc:
            raise ClusterError('moto\'s S3 server did not start (is moto installed? '
                               'pip install "moto[server]"): %s' % exc) from exc
        return 'http://%s:%d' % (address, port)

    def _build_network(self, netns, names):
        prefix, subnet = netns
        try:
            self.network = netns_mod.Network(prefix, subnet)
        except (RuntimeError, ValueError) as exc:
            raise ClusterError('cannot build the simulated hosts\' network (root, '
                               'iproute2 and nftables are needed): %s' % exc) from exc
        self.state['network'] = self.network.describe()
        self._save()
        return {name: self._add_host(name) for name in names}

    def _add_host(self, name):
        host = self.network.add_host(name)
        self.state['network'] = self.network.describe()
        self._save()
        return host

    @property
    def network(self):
        """The cluster's own simulated hosts' network, or None."""
        if self._network is None and self.state and self.state.get('network'):
            self._network = netns_mod.Network.attach(self.state['network'])
        return self._network

    @network.setter
    def network(self, network):
        self._network = network

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

    def _make_ca(self):
        directory = os.path.join(self.workdir, 'tls')
        ca = certificates.CertificateAuthority(directory).create()
        client = ca.client_directory(os.path.join(directory, 'client'))
        return {'ca_file': ca.cert_file, 'dir': client,
                'cert_file': os.path.join(client, 'client-cert.pem'),
                'key_file': os.path.join(client, 'client-key.pem')}

    def _ssl_options(self, name, address, directory):
        """The ``[ssl]`` group of a router's or edge's configuration: a
        certificate of its own for ``address``, and the cluster's CA."""
        if not self.tls:
            return {}
        ca = certificates.CertificateAuthority(os.path.dirname(self.tls['ca_file']))
        issued = ca.issue(name, [address, 'localhost'], directory)
        return {'cert_file': issued.cert_file, 'key_file': issued.key_file,
                'ca_file': self.tls['ca_file']}

    def _write_token(self, name):
        path = os.path.join(self.workdir, name)
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
                       'api_port': api_port, 'token_file': self.token_file,
                       'edge_token_file': self.edge_token_file},
            'zookeeper': {'hosts': self.state['zookeeper'],
                          'session_timeout': SESSION_TIMEOUT},
            'backend': self.state.get('backend_options') or {
                'backend': 'local', 'local_path': self.state['backend']},
            # On an object store each router keeps a read cache of its own.
            'engine': {'read_cache_path': os.path.join(directory, 'read-cache'),
                       'read_cache_mib': 256} if self.state.get('backend_options') else {},
            'ssl': dict(self._ssl_options(router_id, address, directory),
                        **({'nbd_require_tls': True} if self.tls else {})),
        }, self.state['router_options'])
        config = os.path.join(directory, 'ovs-router.conf')
        with open(config, 'w') as f:
            f.write(_conf_text(options))
        router = {'id': router_id, 'site': site, 'nbd': '%s:%d' % (address, nbd_port),
                  'api': '%s://%s:%d' % ('https' if self.tls else 'http', address, api_port),
                  'config': config,
                  'log': options['DEFAULT']['log_file'], 'netns': netns, 'dir': directory}
        self.state['routers'].append(router)
        self._start_router(router)

    def _start_router(self, router):
        self._start_service(router, 'router-%s' % router['id'], 'ovs-router')
        self._save()

    def _start_service(self, record, name, program):
        """Start ``program`` with ``record``'s config, in its directory and
        network namespace; returns its Process, recorded in ``record``."""
        process = process_mod.Process.start(
            name, [os.path.join(BIN_DIR, program), '--config-file', record['config']],
            record['dir'], netns=record['netns'])
        record['pid'] = process.pid
        record['process'] = process.to_record()
        self._processes[process.name] = process
        return process

    def _wait_for_router(self, router, timeout=60.0):
        process = self._process(router['process'])
        health = self.client(router['id'], timeout=2.0).health

        def serving():
            try:
                return health()['router'] == router['id']
            except api_errors.ApiError:
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

    def pause_router(self, router_id):
        """SIGSTOP: a hung router. The kernel still accepts TCP connections
        for it, so only an answer tells it from a live one."""
        self._signal_router(router_id, signal.SIGSTOP)

    def resume_router(self, router_id):
        """SIGCONT after :meth:`pause_router`."""
        self._signal_router(router_id, signal.SIGCONT)

    def _signal_router(self, router_id, sig):
        process = self._attached(self.router(router_id)['process'])
        if process is None:
            raise ClusterError('router %s is not running' % router_id)
        process.kill(sig)

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
        if host is None and self.network is not None:
            host = self._add_host(name)
        directory = os.path.join(self.workdir, 'edges', name)
        os.makedirs(directory, exist_ok=True)
        sockets_dir = tempfile.mkdtemp(prefix='ovs-edge-')
        self.state.setdefault('scratch', []).append(sockets_dir)
        address = host.address if host else '127.0.0.1'
        metrics_port = sockets.free_port(address, host.name if host else None)
        settings = _merge({
            'DEFAULT': {'log_file': os.path.join(directory, 'edge.log')},
            'edge': {'host': name, 'site': site, 'token_file': self.edge_token_file,
                     'router_endpoints': self.router_endpoints(),
                     'control_socket': os.path.join(directory, 'control.sock'),
                     'socket_dir': sockets_dir, 'state_dir': directory,
                     'metrics_host': address,
                     'metrics_port': metrics_port},
            'ssl': self._ssl_options('edge-%s' % name, address, directory),
        }, options)
        config = os.path.join(directory, 'ovs-edge.conf')
        with open(config, 'w') as f:
            f.write(_conf_text(settings))
        edge = {'name': name, 'site': site, 'config': config, 'dir': directory,
                'control': settings['edge']['control_socket'],
                'metrics': 'http://%s:%s/metrics' % (settings['edge']['metrics_host'],
                                                     settings['edge']['metrics_port']),
                'log': settings['DEFAULT']['log_file'], 'netns': host.name if host else None}
        self.state['edges'].append(edge)
        self._start_edge(edge)
        return edge

    def _start_edge(self, edge):
        if os.path.exists(edge['control']):
            os.unlink(edge['control'])
        process = self._start_service(edge, 'edge-%s' % edge['name'], 'ovs-edge')
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

    def stop_edge(self, name):
        self._stop(self.edge(name)['process'])

    def start_edge(self, name):
        edge = self.edge(name)
        self._refuse_if_running(edge['process'])
        self._start_edge(edge)

    # -- ZooKeeper --------------------------------------------------------------------

    def _zookeeper_records(self):
        standalone = self.state.get('zookeeper_process')
        return [standalone] if standalone else list(self.state.get('zookeeper_members', []))

    def _zookeeper_index(self, name):
        for index, record in enumerate(self._zookeeper_records()):
            if record['name'] == name:
                return index
        raise ClusterError('no ZooKeeper server %s in this cluster' % name)

    def _set_zookeeper_record(self, index, record):
        if self.state.get('zookeeper_process'):
            self.state['zookeeper_process'] = record
        else:
            self.state['zookeeper_members'][index] = record
        self._save()

    def start_zookeeper(self, name):
        """Start a stopped or killed ZooKeeper server (or ensemble member)
        again, on its old ports and data."""
        index = self._zookeeper_index(name)
        record = self._zookeeper_records()[index]
        self._refuse_if_running(record)
        process = process_mod.Process.start(record['name'], record['argv'],
                                            os.path.dirname(record['log_path']),
                                            netns=record.get('netns'))
        self._processes[process.name] = process
        self._set_zookeeper_record(index, process.to_record())
        host, _, port = self.state['zookeeper'].split(',')[index].rpartition(':')
        process.wait_for_port(host, int(port), timeout=60)
        running = sum(self._attached(r) is not None for r in self._zookeeper_records())
        # Without a majority running no member serves: its JVM start is all
        # there is to wait for.
        if running > len(self._zookeeper_records()) // 2:
            process.wait_until(
                lambda: 'Mode: ' in _four_letter_word(host, int(port), 'srvr'), 60,
                'serving clients on %s:%s' % (host, port))

    # -- any process by name ------------------------------------------------------------

    def process_names(self):
        """Every process of the cluster as ``kill``, ``start`` and ``status``
        name it: ZooKeeper's, routers' (router-r1) and edges' (edge-NAME)."""
        return [record['name'] for record in self._records()]

    def _resolve(self, name):
        """(kind, key) of the process called ``name``: a process name as
        ``status`` shows it, or just a router id or an edge name."""
        for router in self.state['routers']:
            if name in (router['id'], 'router-%s' % router['id']):
                return 'router', router['id']
        for edge in self.state['edges']:
            if name in (edge['name'], 'edge-%s' % edge['name']):
                return 'edge', edge['name']
        for record in self._zookeeper_records():
            if name == record['name']:
                return 'zookeeper', name
        raise ClusterError('no process %s in this cluster; it runs %s'
                           % (name, ', '.join(self.process_names())))

    def _record(self, kind, key):
        if kind == 'router':
            return self.router(key)['process']
        if kind == 'edge':
            return self.edge(key)['process']
        return self._zookeeper_records()[self._zookeeper_index(key)]

    def log_text(self, name):
        """What router or edge ``name`` (named as for :meth:`kill`) has
        logged so far."""
        kind, key = self._resolve(name)
        if kind == 'zookeeper':
            raise ClusterError('%s logs in its own directory, not in a log file of '
                               'the cluster' % name)
        with open((self.router if kind == 'router' else self.edge)(key)['log']) as f:
            return f.read()

    def kill(self, name, sig=signal.SIGKILL):
        """Send ``sig`` (a crash by default) to one process, by name."""
        record = self._record(*self._resolve(name))
        process = self._attached(record)
        if process is None:
            raise ClusterError('%s is not running' % record['name'])
        process.kill(sig)
        if sig == signal.SIGKILL:
            self._forget(record['name'])

    def stop(self, name):
        """Stop one process as an operator does: SIGTERM (SIGKILL if it lingers)."""
        record = self._record(*self._resolve(name))
        if self._attached(record) is None:
            raise ClusterError('%s is not running' % record['name'])
        self._stop(record)

    def start(self, name):
        """Start one stopped or killed process again; returns its new PID."""
        kind, key = self._resolve(name)
        {'router': self.start_router, 'edge': self.start_edge,
         'zookeeper': self.start_zookeeper}[kind](key)
        return self._record(kind, key)['pid']

    def restart(self, name):
        """Stop (if running) and start one process; returns its new PID."""
        record = self._record(*self._resolve(name))
        if self._attached(record) is not None:
            self._stop(record)
        return self.start(name)

    def pids(self):
        """``{process name: recorded pid}``."""
        return {record['name']: record['pid'] for record in self._records()}

    # -- partitions ---------------------------------------------------------------------

    def _host(self, name):
        if self.network is None:
            raise ClusterError('this cluster runs on no simulated hosts: start it with '
                               '`up --netns` to make partitions')
        for router in self.state['routers']:
            if name in (router['id'], 'router-%s' % router['id']):
                name = router['id']
        for edge in self.state['edges']:
            if name == 'edge-%s' % edge['name']:
                name = edge['name']
        if name == ROOT_HOST or name in self.network.hosts:
            return name
        raise ClusterError('no simulated host %s: there are %s' % (
            name, ', '.join(sorted(self.network.hosts) + [ROOT_HOST])))

    def partition(self, first, second=None):
        """Silently drop traffic between two hosts, or (``second`` None)
        between ``first`` and everyone. ``zookeeper`` stands for the root
        namespace: ZooKeeper, the S3 server and the operator's shell."""
        first = self._host(first)
        second = self._host(second) if second is not None else None
        if first == second:
            raise ClusterError('cannot partition %s from itself' % first)
        if [first, second] in self.state['partitions']:
            raise ClusterError('%s is already partitioned' % ' from '.join(
                [first] + ([second] if second else [])))
        if second is None and first == ROOT_HOST:
            raise ClusterError('name a simulated host to isolate, not %s' % ROOT_HOST)
        self._apply_partition(first, second, cut=True)
        self.state['partitions'].append([first, second])
        self._save()

    def heal(self):
        """Undo every partition; returns them, as ``[first, second]`` pairs."""
        healed = self.state.get('partitions', [])
        for first, second in healed:
            self._apply_partition(first, second, cut=False)
        self.state['partitions'] = []
        self._save()
        return healed

    def _apply_partition(self, first, second, cut):
        hosts = self.network.hosts
        if second is None:
            host = hosts[first]
            host.isolate() if cut else host.heal()
        elif ROOT_HOST in (first, second):
            host = hosts[second if first == ROOT_HOST else first]
            address = self.network.address
            host.block_address(address) if cut else host.unblock_address(address)
        elif cut:
            hosts[first].block(hosts[second])
        else:
            hosts[first].unblock(hosts[second])

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
        if self.state.get('network'):
            netns_mod.cleanup_stale(self.state['network']['prefix'])
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
        records = self._zookeeper_records() + [self.state.get('s3_process')]
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


def _s3_client(settings):
    return boto3.client(
        's3', endpoint_url=settings['s3_endpoint_url'], region_name=settings['s3_region'],
        aws_access_key_id=settings['s3_access_key'],
        aws_secret_access_key=settings['s3_secret_key'],
        config=botocore.config.Config(s3={'addressing_style': 'path'}))


def _four_letter_word(host, port, word):
    try:
        return zookeeper.four_letter_word(host, port, word)
    except OSError:
        return ''


def _tail(path, lines=20):
    try:
        with open(path, errors='replace') as f:
            return ''.join(f.readlines()[-lines:])
    except OSError:
        return '(no log at %s)' % path
