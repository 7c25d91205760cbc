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

"""Background processes that can be stopped again, even from another process.

``ovs-devcluster up`` starts processes and ``down`` runs later in a different
interpreter, so each process is recorded in a JSON pid file together with its
start time from /proc/PID/stat: after our process exits, the kernel may hand
its PID to an unrelated process, and only the start time tells them apart.
"""

import collections
import json
import os
import signal
import subprocess
import time

from oslo_log import log as logging

from ovs_daemon.devcluster import sockets

LOG = logging.getLogger(__name__)

POLL_INTERVAL = 0.05
LOG_TAIL_LINES = 20
SIGKILL_TIMEOUT = 10.0

_Stat = collections.namedtuple('_Stat', 'state start_time')


class ProcessError(Exception):
    """A managed process did not behave as expected."""


class ProcessExitedError(ProcessError):
    """The process exited before it became ready."""


class ProcessTimeoutError(ProcessError, TimeoutError):
    """The process is running but did not become ready in time."""


class StalePidError(ProcessError):
    """A recorded PID no longer belongs to the process that was recorded."""


def _read_stat(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            stat = f.read()
    except FileNotFoundError:
        return None
    # The command name (field 2) may contain spaces and parentheses, so the
    # remaining fields are counted from its closing parenthesis.
    fields = stat[stat.rindex(')') + 2:].split()
    return _Stat(state=fields[0], start_time=int(fields[19]))


def read_start_time(pid):
    """Start time of ``pid`` in clock ticks after boot, or None if no such PID."""
    stat = _read_stat(pid)
    return stat.start_time if stat else None


def rss_bytes(pid='self'):
    """The resident memory of process ``pid`` (by default this one), in
    bytes; ProcessError for a process that has none (a zombie)."""
    with open('/proc/%s/status' % pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
    raise ProcessError('process %s has no resident memory' % pid)


def _is_dead_state(state):
    # A zombie has exited; it only waits for its parent to collect the status.
    return state in ('Z', 'X')


class Process:
    """One background process, running in its own session and process group.

    Build one with :meth:`start` or :meth:`attach`, not directly.
    """

    def __init__(self, name, pid, start_time, log_path, argv, netns=None,
                 popen=None, owns_group=False):
        self.name = name
        self.pid = pid
        self.start_time = start_time
        self.log_path = log_path
        self.argv = list(argv)
        self.netns = netns
        self._popen = popen
        # Signalling the group also reaches children the command spawned;
        # only done when the PID is known to lead its own group.
        self._owns_group = owns_group
        self._exit_status = None

    def __repr__(self):
        return '<Process %s pid=%d>' % (self.name, self.pid)

    @classmethod
    def start(cls, name, argv, workdir, env=None, netns=None):
        """Start ``argv`` in the background, logging to ``workdir/NAME.log``.

        ``env`` adds variables to the current environment.  With ``netns`` the
        command runs inside that network namespace.
        """
        os.makedirs(workdir, exist_ok=True)
        log_path = os.path.join(workdir, '%s.log' % name)
        command = list(argv)
        if netns is not None:
            # `ip netns exec` execs the command after entering the namespace,
            # so the PID Popen reports is the command's own PID.
            command = ['ip', 'netns', 'exec', netns] + command
        full_env = dict(os.environ, **(env or {}))
        # Appending keeps the output of earlier runs (restarted members).
        with open(log_path, 'ab') as log:
            popen = subprocess.Popen(
                command, cwd=workdir, env=full_env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        # Our unreaped child keeps its /proc entry even if it already exited.
        process = cls(name, popen.pid, read_start_time(popen.pid), log_path,
                      argv, netns=netns, popen=popen, owns_group=True)
        LOG.info('Started %s (pid %d%s): %s', name, popen.pid,
                 ', netns %s' % netns if netns else '', ' '.join(argv))
        return process

    @classmethod
    def attach(cls, record):
        """Return the live process described by a pid-file ``record``.

        Raises StalePidError if it exited or its PID now names another process.
        """
        pid = record['pid']
        stat = _read_stat(pid)
        if stat is None or _is_dead_state(stat.state):
            raise StalePidError('%s (pid %d) is no longer running' % (record['name'], pid))
        if stat.start_time != record['start_time']:
            raise StalePidError(
                'pid %d no longer belongs to %s: it started at tick %d, the '
                'recorded process at tick %d' % (pid, record['name'],
                                                 stat.start_time, record['start_time']))
        return cls(record['name'], pid, record['start_time'], record['log_path'],
                   record['argv'], netns=record.get('netns'),
                   owns_group=os.getpgid(pid) == pid)

    def to_record(self):
        """What :meth:`attach` needs to find this process again, JSON-ready."""
        return {'name': self.name, 'pid': self.pid, 'start_time': self.start_time,
                'log_path': self.log_path, 'argv': self.argv, 'netns': self.netns}

    def is_alive(self):
        if self._popen is not None:
            return self._child_is_running()
        stat = _read_stat(self.pid)
        return (stat is not None and stat.start_time == self.start_time
                and not _is_dead_state(stat.state))

    def _child_is_running(self):
        if self._popen.returncode is not None:
            return False
        # WNOWAIT leaves the zombie in place: while it exists its PID (and so
        # its process group id) cannot be reused, which keeps signalling the
        # group safe until stop() reaps it.
        info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if info is None:
            return True
        if info.si_code == os.CLD_EXITED:
            self._exit_status = 'status %d' % info.si_status
        else:
            self._exit_status = 'signal %d' % info.si_status
        return False

    def log_tail(self, lines=LOG_TAIL_LINES):
        try:
            with open(self.log_path, 'rb') as f:
                text = f.read().decode('utf-8', 'replace')
        except FileNotFoundError:
            return ''
        return '\n'.join(text.splitlines()[-lines:])

    def _describe_failure(self, problem):
        return '%s (pid %d) %s; last lines of %s:\n%s' % (
            self.name, self.pid, problem, self.log_path, self.log_tail())

    def raise_if_exited(self, what='ready'):
        """Raise ProcessExitedError, quoting the log, if the process is gone."""
        if not self.is_alive():
            raise ProcessExitedError(self._describe_failure(
                'exited (%s) before becoming %s' % (self._exit_status or 'status unknown', what)))

    def wait_until(self, predicate, timeout=30.0, what='ready'):
        """Poll ``predicate()`` until true; fail early if the process exits."""
        deadline = time.monotonic() + timeout
        while not predicate():
            self.raise_if_exited(what)
            if time.monotonic() >= deadline:
                raise ProcessTimeoutError(self._describe_failure(
                    'did not become %s within %.1fs' % (what, timeout)))
            time.sleep(POLL_INTERVAL)

    def wait_for_port(self, host, port, timeout=30.0):
        """Wait until ``host:port`` accepts TCP connections, seen from the process's netns."""
        self.wait_until(lambda: sockets.can_connect(host, port, 0.5, self.netns),
                        timeout, 'reachable on %s:%d' % (host, port))

    def wait_for_path(self, path, timeout=30.0):
        self.wait_until(lambda: os.path.exists(path), timeout, 'ready (%s exists)' % path)

    def _signal(self, sig):
        try:
            if self._owns_group:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self, sig=signal.SIGKILL):
        """Send ``sig`` to the process and its group; SIGKILL simulates a crash."""
        if self.is_alive():
            LOG.info('Sending signal %d to %s (pid %d)', sig, self.name, self.pid)
            self._signal(sig)

    def _wait_for_exit(self, timeout):
        deadline = time.monotonic() + timeout
        while self.is_alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_INTERVAL)
        return True

    def stop(self, timeout=10.0):
        """SIGTERM, SIGKILL if still running after ``timeout``, then reap."""
        if self.is_alive():
            LOG.info('Stopping %s (pid %d)', self.name, self.pid)
            self._signal(signal.SIGTERM)
            if not self._wait_for_exit(timeout):
                LOG.warning('%s (pid %d) still running %.1fs after SIGTERM, killing it',
                            self.name, self.pid, timeout)
                self._signal(signal.SIGKILL)
                if not self._wait_for_exit(SIGKILL_TIMEOUT):
                    raise ProcessError(self._describe_failure('survived SIGKILL'))
        self._reap()

    def _reap(self):
        # Only our own child can be reaped; a process found through a pid file
        # is collected by its parent, or by init once `up` has exited.
        if self._popen is None or self._popen.returncode is not None:
            return
        # Children the command left behind in its group die with it.
        self._signal(signal.SIGKILL)
        self._popen.wait()


def read_pidfile(path):
    """Records written by :func:`record_in_pidfile`, oldest first."""
    try:
        with open(path) as f:
            return json.load(f)['processes']
    except FileNotFoundError:
        return []


def record_in_pidfile(path, process):
    """Add ``process`` to the pid file at ``path``.

    Called after every start, so a crash half-way through `up` still leaves
    every started process findable.  The file is replaced atomically so a
    reader never sees half of it.
    """
    records = read_pidfile(path) + [process.to_record()]
    tmp_path = path + '.tmp'
    with open(tmp_path, 'w') as f:
        json.dump({'processes': records}, f, indent=2)
    os.replace(tmp_path, path)


def stop_recorded(path, timeout=10.0):
    """Stop every process recorded in ``path``, newest first, then remove it.

    Returns the names of the processes that were still running.
    """
    stopped = []
    # Later processes may depend on earlier ones (routers on ZooKeeper).
    for record in reversed(read_pidfile(path)):
        try:
            process = Process.attach(record)
        except StalePidError as exc:
            LOG.info('Not stopping: %s', exc)
            continue
        process.stop(timeout)
        stopped.append(process.name)
    if os.path.exists(path):
        os.unlink(path)
    return stopped
