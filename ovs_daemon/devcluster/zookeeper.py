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

"""ZooKeeper from Debian's ``zookeeper`` package: standalone or a small ensemble.

Tuned for tests: a 500 ms tick and a 1 s minimum session timeout, so sessions
of a couple of seconds (and their expiry) are possible.
"""

import os
import signal
import time

from oslo_log import log as logging

from ovs_daemon.devcluster import process as process_mod
from ovs_daemon.devcluster import sockets

LOG = logging.getLogger(__name__)

JAVA = 'java'
# zookeeper.jar's manifest Class-Path already names its dependencies in
# /usr/share/java (jute, netty, jackson, metrics, ...).  Only a logging backend
# is added: without one slf4j silently drops every line, including the reason
# a server refused to start.
CLASSPATH = (
    '/usr/share/java/zookeeper.jar',
    '/usr/share/java/zookeeper-jute.jar',
    '/usr/share/java/slf4j-simple.jar',
)
# A small heap, the serial collector and the C1 compiler alone start the JVM
# faster and keep several servers within a 2-core test machine.
JVM_OPTIONS = (
    '-Xmx256m',
    '-XX:+UseSerialGC',
    '-XX:TieredStopAtLevel=1',
    '-Djava.net.preferIPv4Stack=true',
    '-Dorg.slf4j.simpleLogger.showDateTime=true',
)
STANDALONE_MAIN = 'org.apache.zookeeper.server.ZooKeeperServerMain'
QUORUM_MAIN = 'org.apache.zookeeper.server.quorum.QuorumPeerMain'

TICK_MS = 500
MIN_SESSION_TIMEOUT_MS = 1000
MAX_SESSION_TIMEOUT_MS = 60000
# A freshly picked free port can be taken by someone else before the JVM binds it.
START_ATTEMPTS = 3


def four_letter_word(host, port, word, timeout=2.0, netns=None):
    """Send a four-letter command (ruok, srvr, ...) and return the answer."""
    return sockets.request(host, port, word.encode('ascii'), timeout, netns).decode()


class ZooKeeperServer:
    """A standalone ZooKeeper server; ``port=0`` picks a free port."""

    main_class = STANDALONE_MAIN

    def __init__(self, workdir, host='127.0.0.1', port=0, netns=None, tick_ms=TICK_MS,
                 name='zookeeper'):
        self.workdir = workdir
        self.host = host
        self.port = port
        self.netns = netns
        self.tick_ms = tick_ms
        self.name = name
        self._pick_port = port == 0
        self.process = None

    @property
    def hosts(self):
        """Connection string for kazoo."""
        return '%s:%d' % (self.host, self.port)

    @property
    def data_dir(self):
        return os.path.join(self.workdir, 'data')

    @property
    def config_path(self):
        return os.path.join(self.workdir, 'zoo.cfg')

    def _settings(self):
        return {
            'tickTime': self.tick_ms,
            'dataDir': self.data_dir,
            'clientPort': self.port,
            'clientPortAddress': self.host,
            'admin.enableServer': 'false',
            '4lw.commands.whitelist': '*',
            'minSessionTimeout': MIN_SESSION_TIMEOUT_MS,
            'maxSessionTimeout': MAX_SESSION_TIMEOUT_MS,
        }

    def _write_config(self):
        os.makedirs(self.data_dir, exist_ok=True)
        with open(self.config_path, 'w') as f:
            for key, value in self._settings().items():
                f.write('%s=%s\n' % (key, value))

    def _command(self):
        return [JAVA, *JVM_OPTIONS, '-cp', ':'.join(CLASSPATH), self.main_class,
                self.config_path]

    def launch(self):
        """Start the JVM without waiting for it to serve."""
        self._write_config()
        self.process = process_mod.Process.start(self.name, self._command(), self.workdir,
                                                 netns=self.netns)

    def start(self, timeout=30.0):
        """Start and wait until the server serves clients; returns self."""
        for attempt in range(1, START_ATTEMPTS + 1):
            if self._pick_port:
                self.port = sockets.free_port(self.host, self.netns)
            began = time.monotonic()
            self.launch()
            try:
                self.process.wait_until(self.is_serving, timeout,
                                        'serving clients on %s' % self.hosts)
            except Exception as exc:
                self.process.stop()
                if not (isinstance(exc, process_mod.ProcessExitedError)
                        and self._pick_port and attempt < START_ATTEMPTS):
                    raise
                LOG.warning('%s exited during start, retrying with another port: %s',
                            self.name, exc)
                continue
            LOG.info('%s serving on %s after %.2fs', self.name, self.hosts,
                     time.monotonic() - began)
            return self

    def four_letter_word(self, word):
        return four_letter_word(self.host, self.port, word, netns=self.netns)

    def mode(self):
        """'standalone', 'leader' or 'follower'; None if not serving."""
        try:
            answer = self.four_letter_word('srvr')
        except OSError:
            return None
        for line in answer.splitlines():
            if line.startswith('Mode: '):
                return line[len('Mode: '):].strip()
        # A quorum member without a quorum answers "not currently serving".
        return None

    def is_serving(self):
        return self.mode() is not None

    def is_alive(self):
        return self.process is not None and self.process.is_alive()

    def kill(self, sig=signal.SIGKILL):
        self.process.kill(sig)

    def stop(self, timeout=10.0):
        if self.process is not None:
            self.process.stop(timeout)

    def __enter__(self):
        if self.process is None:
            self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()


class _QuorumMember(ZooKeeperServer):
    main_class = QUORUM_MAIN

    def __init__(self, workdir, myid, host, client_port, peers, tick_ms):
        super().__init__(workdir, host=host, port=client_port, tick_ms=tick_ms,
                         name='zookeeper-%d' % myid)
        self.myid = myid
        self.peers = peers

    def _settings(self):
        settings = super()._settings()
        settings.update({'initLimit': 10, 'syncLimit': 5})
        for myid, (host, quorum_port, election_port) in self.peers.items():
            settings['server.%d' % myid] = '%s:%d:%d' % (host, quorum_port, election_port)
        return settings

    def _write_config(self):
        super()._write_config()
        with open(os.path.join(self.data_dir, 'myid'), 'w') as f:
            f.write('%d\n' % self.myid)


class ZooKeeperEnsemble:
    """A ZooKeeper quorum of ``size`` servers on one address.

    Members are addressed by index 0..size-1 (their myid is index + 1).
    """

    def __init__(self, workdir, size=3, host='127.0.0.1', tick_ms=TICK_MS):
        self.workdir = workdir
        self.size = size
        self.host = host
        self.tick_ms = tick_ms
        self.members = []
        # Members the caller expects to run: any other may be down on purpose.
        self._running = set()

    @property
    def hosts(self):
        """Connection string for kazoo listing every member."""
        return ','.join(member.hosts for member in self.members)

    @property
    def processes(self):
        return [member.process for member in self.members if member.process is not None]

    def _build_members(self):
        ports = sockets.free_ports(3 * self.size, self.host)
        peers = {i + 1: (self.host, ports[3 * i + 1], ports[3 * i + 2])
                 for i in range(self.size)}
        self.members = [
            _QuorumMember(os.path.join(self.workdir, 'member-%d' % (i + 1)), i + 1,
                          self.host, ports[3 * i], peers, self.tick_ms)
            for i in range(self.size)]

    def start(self, timeout=60.0):
        """Start every member and wait for a leader; returns self."""
        for attempt in range(1, START_ATTEMPTS + 1):
            self._build_members()
            began = time.monotonic()
            for index, member in enumerate(self.members):
                member.launch()
                self._running.add(index)
            try:
                self.wait_for_quorum(timeout)
            except Exception as exc:
                self.stop()
                if not (isinstance(exc, process_mod.ProcessExitedError)
                        and attempt < START_ATTEMPTS):
                    raise
                LOG.warning('A ZooKeeper member exited during start, retrying with other '
                            'ports: %s', exc)
                continue
            LOG.info('ZooKeeper ensemble %s elected member %d after %.2fs',
                     self.hosts, self.leader(), time.monotonic() - began)
            return self

    def leader(self):
        """Index of the running member that says it leads, or None."""
        for index in sorted(self._running):
            if self.members[index].mode() == 'leader':
                return index
        return None

    def wait_for_quorum(self, timeout=60.0):
        """Wait until every running member serves under one leader; return its index."""
        deadline = time.monotonic() + timeout
        while True:
            modes = {}
            for index in sorted(self._running):
                member = self.members[index]
                member.process.raise_if_exited('part of the quorum')
                modes[index] = member.mode()
            leaders = [index for index, mode in modes.items() if mode == 'leader']
            if len(leaders) == 1 and all(modes.values()):
                return leaders[0]
            if time.monotonic() >= deadline:
                raise process_mod.ProcessTimeoutError(
                    'ZooKeeper ensemble %s has no quorum after %.1fs: modes %s'
                    % (self.hosts, timeout, modes))
            time.sleep(process_mod.POLL_INTERVAL)

    def stop_member(self, index, timeout=10.0):
        self._running.discard(index)
        self.members[index].stop(timeout)

    def kill_member(self, index, sig=signal.SIGKILL):
        """Crash a member; it stays down until start_member()."""
        self._running.discard(index)
        self.members[index].kill(sig)

    def start_member(self, index, timeout=60.0):
        """Restart a member on its old ports and data.

        Waits for it to rejoin when a majority is running; before that no
        member can serve, so only its JVM start is awaited.
        """
        member = self.members[index]
        member.stop()  # reaps the crashed process, if it was killed
        member.launch()
        self._running.add(index)
        member.process.wait_for_port(member.host, member.port, timeout)
        if len(self._running) > self.size // 2:
            self.wait_for_quorum(timeout)

    def stop(self, timeout=10.0):
        for member in self.members:
            member.stop(timeout)
        self._running.clear()

    def __enter__(self):
        if not self._running:
            self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()
