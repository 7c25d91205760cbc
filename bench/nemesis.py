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

"""Benchmark: a seeded, randomized fault campaign against a local vPool.

    .venv/bin/python -m bench.nemesis --seed N --duration S [--multiattach]

Real processes on simulated hosts (network namespaces; run as root, under
the slow-test lock): ZooKeeper, routers r1 r2 (site a) and r3 (site b), an
edge on host hva (and one on hvb with --multiattach, both attached to the
one volume). A verifying client per edge (bench/verifying_client.py) keeps
several writes, reads and FLUSHes in flight over two NBD connections, each
write's payload naming its block, writer and version. Meanwhile faults
drawn from the seed strike one after another, each after a calm spell:

  kill -9 of the owner (restarted after), planned migrate, acquire by
  another router, silent partitions edge/owner, owner/ZooKeeper and
  owner/everyone, SIGSTOP of the owner, kill -9 of ZooKeeper (restarted),
  kill of the new owner during the replay, migrate then kill the target,
  the owner hung by SIGSTOP with a FLUSH in flight, the owner cut from
  ZooKeeper and the other routers, ZooKeeper and the owner killed together,
  and `ovs-admin attach` run again on the attached volume.

A killed router is started again before the next calm spell, after IO
came back (outside the pause measured).

At the end every block is read back through each edge, and again after a
kill -9 of the final owner. Every read is checked against what was
acknowledged (bench/io_history.py). Prints each fault with the longest IO
pause around it (the longest gap between two IO completions of a client),
a summary per fault class, the verdicts and, last, PASS or FAIL (exit
status 1); writes it all to results/nemesis-<mode>-seed<N>.md. Pause
targets (docs/design.md) are shown, not enforced: PASS means no
lost or stale data, no IO error and IO always came back.
"""

import argparse
import collections
import glob
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from bench import io_history
from bench import results
from bench import verifying_client
from ovs_daemon.api import edge_client
from ovs_daemon.api import errors as api_errors
from ovs_daemon.devcluster import cluster as cluster_mod

MiB = 1 << 20
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOLUME = 'nemesis'
VOLUME_SIZE = 64 * MiB
ROUTERS = ('r1', 'r2', 'r3')
# The cluster's name of its ZooKeeper server, and of the root namespace it
# runs in (partitions).
ZOOKEEPER = cluster_mod.ROOT_HOST
SITES = ('a', 'a', 'b')
# IO must come back within this after a fault is undone, or the run fails.
RESUME_LIMIT = 90.0
# Completions per client after the undo that count as "IO is back".
RESUMED_AFTER = 20
CALM = (0.5, 2.0)

# Pause targets of docs/design.md (shown in the table, not enforced).
KILL, PARTITION, HANDOVER, OTHER = 0.25, 1.5, 0.1, 2.5
TARGETS = {
    'kill -9 owner': KILL,
    'migrate': HANDOVER,
    'acquire': HANDOVER,
    'partition edge/owner': PARTITION,
    'partition owner/zookeeper': OTHER,
    'partition owner/everyone': PARTITION,
    'sigstop owner': OTHER,
    'kill -9 zookeeper': None,
    'kill new owner in replay': OTHER,
    'migrate, kill target': OTHER,
    'hung owner, flush in flight': OTHER,
    'owner cut from zk+routers': OTHER,
    'kill zookeeper+owner': None,
    'attach again': HANDOVER,
}


class CampaignError(Exception):
    """The campaign could not go on (IO did not come back, a client died)."""


# ``lifted``: when a partition was healed, a stopped router continued or
# ZooKeeper served again (None for faults that are not undone, like a kill).
Fault = collections.namedtuple('Fault', 'number name detail start ended lifted settled')


class Campaign:

    def __init__(self, cluster, rng, multiattach, say):
        self.cluster = cluster
        self.rng = rng
        self.edges = ['hva', 'hvb'] if multiattach else ['hva']
        self.say = say
        self.api = cluster.client(timeout=20.0)
        self.history = io_history.History()
        self.clients = {}
        self.sockets = {}
        self.faults = []
        self.blocks = 256 if multiattach else 512
        self._lifted = None
        self._killed = []

    # -- set-up ---------------------------------------------------------------------

    def _create_volume(self):
        """Create the volume on r1, as Cinder's driver creates a volume of a
        multiattach type, once r1 is registered."""
        self.cluster.wait_for_registration()
        return self.api.create_volume(VOLUME, VOLUME_SIZE, router='r1',
                                      multiattach=len(self.edges) > 1)

    def attach(self, seed):
        self._create_volume()
        for number, edge in enumerate(self.edges, 1):
            token = self.api.create_attachment(VOLUME, edge)['token']
            answer = edge_client.EdgeControlClient(self.cluster.edge(edge)['control']).attach(
                VOLUME, self.cluster.state['vpool'], token)
            self.sockets[edge] = answer['socket']
            self.clients[edge] = verifying_client.VerifyingClient(
                number, answer['socket'], VOLUME, self.history, self.blocks,
                seed=seed * 100 + number)
        for client in self.clients.values():
            client.start()

    # -- the run --------------------------------------------------------------------

    def run(self, duration, max_faults, names):
        """Faults drawn from ``names`` until ``duration`` or ``max_faults``."""
        self.wait_for_io('the start')
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline and len(self.faults) < max_faults:
            self.start_killed()
            time.sleep(self.rng.uniform(*CALM))
            self.strike(self.rng.choice(names))

    def strike(self, name):
        self._lifted = None
        now = self.history.now
        start = ended = now()
        detail = '(did not finish)'
        try:
            detail = FAULTS[name](self)
            ended = now()
            settled = self.wait_for_io(name)
        except BaseException as exc:
            self.faults.append(Fault(len(self.faults) + 1, name, '%s; %s' % (detail, exc),
                                     start, ended, self._lifted, now()))
            raise
        fault = Fault(len(self.faults) + 1, name, detail, start, ended, self._lifted, settled)
        self.faults.append(fault)
        self.say('  %3d  %6.1f s  %-28s %s' % (fault.number, start, name, detail))

    def wait_for_io(self, after):
        """Wait until every client completed some IO from now on; returns
        the history's time then."""
        targets = {edge: client.completed + RESUMED_AFTER
                   for edge, client in self.clients.items()}
        deadline = time.monotonic() + RESUME_LIMIT
        while any(client.completed < targets[edge] for edge, client in self.clients.items()):
            for edge, client in self.clients.items():
                if not client.alive:
                    raise CampaignError('the client on %s died: %s' % (edge, client.crash))
            if time.monotonic() > deadline:
                raise CampaignError('IO did not come back within %.0f s after %s'
                                    % (RESUME_LIMIT, after))
            time.sleep(0.02)
        return self.history.now()

    # -- the end ----------------------------------------------------------------------

    def finish(self):
        """Stop the clients, read everything back, kill -9 the final owner,
        read everything back again; returns the final owner."""
        self.start_killed()
        for client in self.clients.values():
            client.stop()
        self.read_back()
        owner = self.owner()
        self.say('read back; killing the final owner %s and reading back again' % owner)
        self.cluster.kill_router(owner)
        self.read_back()
        self.cluster.start_router(owner)
        return owner

    def abandon(self):
        """Stop the clients after a failure, not waiting long for hung IO."""
        for client in self.clients.values():
            try:
                client.stop(timeout=10)
            except verifying_client.ClientError as exc:
                self.say('%s' % exc)

    def read_back(self):
        for number, edge in enumerate(self.edges, 1):
            verifying_client.read_back(self.sockets[edge], VOLUME, self.history, number,
                                       self.blocks)

    # -- helpers of the faults --------------------------------------------------------

    def owner(self, timeout=60.0):
        """The volume's owner as the registry says (retried while ZooKeeper
        or a router is away)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                owner = self.api.locate(VOLUME)['owner']
                if owner:
                    return owner
            except api_errors.ApiError as exc:
                if time.monotonic() > deadline:
                    raise CampaignError('cannot locate %s: %s' % (VOLUME, exc)) from None
            if time.monotonic() > deadline:
                raise CampaignError('%s has no owner for %.0f s' % (VOLUME, timeout))
            time.sleep(0.05)

    def other_router(self, *besides):
        return self.rng.choice([r for r in ROUTERS if r not in besides])

    def hold(self, low, high):
        seconds = self.rng.uniform(low, high)
        time.sleep(seconds)
        return seconds

    def lifted(self):
        self._lifted = self.history.now()

    def restart(self, *routers):
        """Start killed routers again, in the calm before the next fault,
        not within the pause measured: here a router's start (Python
        importing on the cores every process shares) stalls the others' IO,
        which a router starting on a host of its own does not."""
        self._killed.extend(routers)

    def start_killed(self):
        while self._killed:
            self.cluster.start_router(self._killed.pop(0))

    def wait_for_new_owner(self, old, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                owner = self.api.locate(VOLUME)['owner']
            except api_errors.ApiError:
                owner = None
            if owner and owner != old:
                return owner
            time.sleep(0.01)
        return None

    # -- the faults -----------------------------------------------------------------

    def kill_owner(self):
        owner = self.owner()
        self.cluster.kill_router(owner)
        self.wait_for_new_owner(owner)
        self.restart(owner)
        return 'killed %s, restarted it' % owner

    def migrate(self):
        owner = self.owner()
        target = self.other_router(owner)
        return '%s -> %s: %s' % (owner, target, _outcome(self.api.migrate, VOLUME, target))

    def acquire(self):
        owner = self.owner()
        target = self.other_router(owner)
        acquire = self.cluster.client(target, timeout=20.0).acquire
        return '%s -> %s: %s' % (owner, target, _outcome(acquire, VOLUME))

    def partitioned(self, pairs, low, high):
        """Cut each (host, other host or None for everyone) pair for a
        while, then heal; returns the seconds held."""
        try:
            for first, second in pairs:
                self.cluster.partition(first, second)
            return self.hold(low, high)
        finally:
            self.cluster.heal()
            self.lifted()

    def stopped(self, router, low, high, meanwhile=lambda: None):
        """SIGSTOP ``router``, call ``meanwhile``, wait a while, SIGCONT;
        returns the seconds held."""
        self.cluster.kill(router, signal.SIGSTOP)
        try:
            meanwhile()
            return self.hold(low, high)
        finally:
            self.cluster.kill(router, signal.SIGCONT)
            self.lifted()

    def zookeeper_down(self, low, high):
        """Start the killed ZooKeeper again after a while; returns the seconds."""
        try:
            return self.hold(low, high)
        finally:
            self.cluster.start(ZOOKEEPER)
            self.lifted()

    def partition_edge_owner(self):
        owner = self.owner()
        edge = self.rng.choice(self.edges)
        held = self.partitioned([(edge, owner)], 2.0, 5.0)
        return '%s/%s for %.1f s' % (edge, owner, held)

    def partition_owner_zookeeper(self):
        owner = self.owner()
        held = self.partitioned([(owner, ZOOKEEPER)], 1.0, 8.0)
        return '%s/zookeeper for %.1f s' % (owner, held)

    def partition_owner_everyone(self):
        owner = self.owner()
        held = self.partitioned([(owner, None)], 2.0, 8.0)
        return '%s isolated for %.1f s' % (owner, held)

    def sigstop_owner(self):
        owner = self.owner()
        held = self.stopped(owner, 1.0, 6.0)
        return '%s stopped for %.1f s' % (owner, held)

    def kill_zookeeper(self):
        self.cluster.kill(ZOOKEEPER)
        held = self.zookeeper_down(1.0, 5.0)
        return 'down for %.1f s' % held

    def kill_new_owner_in_replay(self):
        owner = self.owner()
        self.cluster.kill_router(owner)
        new = self.wait_for_new_owner(owner)
        if new is not None:
            self.cluster.kill_router(new)
            self.wait_for_new_owner(new)
        self.restart(*[r for r in (owner, new) if r])
        return 'killed %s, then the new owner %s' % (owner, new)

    def migrate_then_kill_target(self):
        owner = self.owner()
        target = self.other_router(owner)
        outcome = _outcome(self.api.migrate, VOLUME, target)
        self.cluster.kill_router(target)
        self.wait_for_new_owner(target)
        self.restart(target)
        return '%s -> %s (%s), killed %s' % (owner, target, outcome, target)

    def hung_owner_with_flush(self):
        owner = self.owner()

        flushing = [client for client in self.clients.values() if client.flushes]

        def send_flushes():
            for client in flushing:
                client.send_flush()
        held = self.stopped(owner, 8.0, 12.0, send_flushes)
        return '%s stopped for %.1f s, %s' % (
            owner, held, 'FLUSH sent' if flushing else 'no FLUSH (the export offers none)')

    def owner_cut_from_zookeeper_and_routers(self):
        owner = self.owner()
        pairs = [(owner, ZOOKEEPER)] + [(owner, r) for r in ROUTERS if r != owner]
        held = self.partitioned(pairs, 6.0, 10.0)
        return '%s cut for %.1f s' % (owner, held)

    def kill_zookeeper_and_owner(self):
        owner = self.owner()
        self.cluster.kill(ZOOKEEPER)
        self.cluster.kill_router(owner)
        held = self.zookeeper_down(1.0, 4.0)
        self.restart(owner)
        return 'both down %.1f s (%s)' % (held, owner)

    def attach_again(self):
        edge = self.rng.choice(self.edges)
        owner = self.owner()
        result = subprocess.run(
            [os.path.join(os.path.dirname(sys.executable), 'ovs-admin'),
             '--cluster', self.cluster.workdir, 'attach', VOLUME,
             '--edge-socket', self.cluster.edge(edge)['control']],
            capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            return 'on %s: failed: %s' % (edge, result.stderr.strip()[-200:])
        return 'on %s (owner %s, then %s)' % (edge, owner, self.owner())


FAULTS = {
    'kill -9 owner': Campaign.kill_owner,
    'migrate': Campaign.migrate,
    'acquire': Campaign.acquire,
    'partition edge/owner': Campaign.partition_edge_owner,
    'partition owner/zookeeper': Campaign.partition_owner_zookeeper,
    'partition owner/everyone': Campaign.partition_owner_everyone,
    'sigstop owner': Campaign.sigstop_owner,
    'kill -9 zookeeper': Campaign.kill_zookeeper,
    'kill new owner in replay': Campaign.kill_new_owner_in_replay,
    'migrate, kill target': Campaign.migrate_then_kill_target,
    'hung owner, flush in flight': Campaign.hung_owner_with_flush,
    'owner cut from zk+routers': Campaign.owner_cut_from_zookeeper_and_routers,
    'kill zookeeper+owner': Campaign.kill_zookeeper_and_owner,
    'attach again': Campaign.attach_again,
}


def _outcome(call, *args):
    try:
        call(*args)
    except api_errors.ApiError as exc:
        return 'refused (%s)' % exc
    return 'done'


# -- measuring -------------------------------------------------------------------------


def longest_gap(times, start, end):
    """Longest gap between consecutive ``times`` that overlaps [start, end]."""
    longest = 0.0
    for before, after in zip(times, times[1:]):
        if after >= start and before <= end:
            longest = max(longest, after - before)
    return longest


def pauses(history, faults, clients):
    """For each fault: the longest pause of any client, and how long after
    the fault was lifted every client had IO complete again (None if it is
    not lifted), in seconds."""
    timelines = [io_history.completions(history, client) for client in clients]
    measured = []
    for fault in faults:
        pause = max(longest_gap(times, fault.start, fault.settled) for times in timelines)
        back = None
        if fault.lifted is not None:
            back = max(next((t for t in times if t > fault.lifted), fault.settled)
                       - fault.lifted for times in timelines)
        measured.append((pause, back))
    return measured


# -- the report ------------------------------------------------------------------------


def report(campaign, seed, duration, mode, violations, error, final_owner):
    history = campaign.history
    measured = pauses(history, campaign.faults, range(1, len(campaign.edges) + 1))
    lines = ['Fault campaign, seed %d, %s, %.0f s (`python -m bench.nemesis --seed %d '
             '--duration %.0f%s`)' % (seed, mode, duration, seed, duration,
                                      ' --multiattach' if mode == 'multiattach' else ''),
             '', '| # | at | fault | what happened | longest IO pause | IO back after lift |',
             '|---|---|---|---|---|---|']
    for fault, (pause, back) in zip(campaign.faults, measured):
        lines.append('| %d | %.1f s | %s | %s | %.3f s | %s |' % (
            fault.number, fault.start, fault.name, fault.detail,
            pause, '-' if back is None else '%.3f s' % back))
    lines += ['', '| fault class | count | longest pause | median pause | longest IO back '
              'after lift | target |', '|---|---|---|---|---|---|']
    by_class = collections.defaultdict(list)
    for fault, figures in zip(campaign.faults, measured):
        by_class[fault.name].append(figures)
    for name in sorted(by_class):
        values = [pause for pause, _ in by_class[name]]
        backs = [back for _, back in by_class[name] if back is not None]
        target = TARGETS[name]
        lines.append('| %s | %d | %.3f s | %.3f s | %s | %s |' % (
            name, len(values), max(values), statistics.median(values),
            '%.3f s' % max(backs) if backs else '-',
            'pause < %.2f s' % target if target else 'IO back < 1 s after ZooKeeper serves'))
    live_reads = [r for r in history.reads if not r.final and r.ended != float('inf')]
    final_reads = [r for r in history.reads if r.final and r.ended != float('inf')]
    acked = sum(1 for w in history.writes.values() if w.ok)
    lines += ['', 'operations: %d writes acknowledged, %d reads checked during the faults, '
              '%d blocks read back (before and after a kill -9 of the final owner %s), '
              '%d FLUSHes' % (acked, len(live_reads), len(final_reads), final_owner or '-',
                              len(history.flushes)),
              'IO errors: %d' % len(history.failures)]
    for client, what, when, why in history.failures[:10]:
        lines.append('  client %d, %s at %.1f s: %s' % (client, what, when, why))
    kinds = collections.Counter(violation.kind for violation in violations)
    lines.append('violations: %d%s' % (len(violations), ''.join(
        ', %s: %d' % item for item in sorted(kinds.items()))))
    for violation in violations[:SHOWN_VIOLATIONS]:
        lines.append('  %s, block %d, after fault %s: %s; %r' % (
            violation.kind, violation.block, _fault_before(campaign.faults, violation.read.sent),
            violation.detail, violation.read))
    if error:
        lines.append('campaign stopped: %s' % error)
    passed = (not violations and not history.failures and not error and live_reads
              and final_reads and campaign.faults)
    lines.append('PASS' if passed else 'FAIL')
    return '\n'.join(lines), passed


SHOWN_VIOLATIONS = 20
SHOWN_LOG_LINES = 300


def _log_excerpt(workdir):
    """The ERROR lines of every router's and edge's log, and the edges'
    WARNING lines (their failovers), oldest first."""
    lines = []
    for path in sorted(glob.glob(os.path.join(workdir, 'vpool', '*', '*', '*.log'))):
        name = os.path.basename(os.path.dirname(path))
        warnings = '/edges/' in path
        with open(path, errors='replace') as log:
            for line in log:
                if ' ERROR ' in line or (warnings and ' WARNING ' in line):
                    lines.append('  %s: %s' % (name, line.rstrip()))
    lines.sort(key=lambda line: line.split(': ', 1)[1][:23])
    if len(lines) > SHOWN_LOG_LINES:
        lines = lines[:SHOWN_LOG_LINES] + ['  ... %d more' % (len(lines) - SHOWN_LOG_LINES)]
    return '\n'.join(lines) or '  (none)'


def _fault_before(faults, when):
    last = None
    for fault in faults:
        if fault.start <= when:
            last = fault
    return '#%d (%s)' % (last.number, last.name) if last else '- (none yet)'


# -- running ---------------------------------------------------------------------------


def _say(message):
    print(message, flush=True)


def run_campaign(seed, duration, multiattach=False, max_faults=1000, exclude=(), only=(),
                 results_path=None, prefix='ovsnm', subnet='10.213.215.0/24', keep=False,
                 say=_say):
    """Run one campaign with the faults of ``only`` (default: all) but
    those of ``exclude``; returns (report text, passed, campaign)."""
    unknown = (set(exclude) | set(only)) - set(FAULTS)
    if unknown:
        raise ValueError('no such fault: %s (faults: %s)' % (', '.join(sorted(unknown)),
                                                           ', '.join(sorted(FAULTS))))
    names = sorted(set(only or FAULTS) - set(exclude))
    if not names:
        raise ValueError('no fault left to draw')
    mode = 'multiattach' if multiattach else 'single-attach'
    rng = random.Random(seed)
    workdir = tempfile.mkdtemp(prefix='nemesis-')
    cluster = cluster_mod.Cluster(os.path.join(workdir, 'vpool'))
    campaign = None
    error = final_owner = None
    try:
        say('starting ZooKeeper, routers %s and edges on simulated hosts ...' % ', '.join(ROUTERS))
        cluster.up(routers=len(ROUTERS), sites=list(SITES), netns=(prefix, subnet),
                   options={'router': {'peer_timeout': 0.5}})
        campaign = Campaign(cluster, rng, multiattach, say)
        for edge in campaign.edges:
            cluster.add_edge(edge, site='a')
        campaign.attach(seed)
        say('seed %d, %s, %.0f s of faults:' % (seed, mode, duration))
        try:
            campaign.run(duration, max_faults, names)
            final_owner = campaign.finish()
        except Exception as exc:   # reported with the history gathered so far
            error = '%s: %s' % (type(exc).__name__, exc)
            say('campaign stopped: %s' % error)
            campaign.abandon()
    finally:
        cluster.down()
        excerpt = _log_excerpt(workdir)
        if keep:
            say('the logs of every process are kept in %s' % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    violations = io_history.check(campaign.history)
    text, passed = report(campaign, seed, duration, mode, violations, error, final_owner)
    if not passed:
        # A failed run's logs are gone with its work directory (CI keeps
        # only the report): what the daemons said is kept here.
        text += '\n\nthe daemons\' errors, and the edges\' warnings:\n' + excerpt
    results.publish(text, results_path or os.path.join(
        REPO, 'results', 'nemesis-%s-seed%d.md' % (mode, seed)))
    return text, passed, campaign


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--duration', type=float, default=120.0,
                        help='seconds of faults (the end and the read-back come after)')
    parser.add_argument('--max-faults', type=int, default=1000)
    parser.add_argument('--multiattach', action='store_true',
                        help='two edges on two hosts write one multiattach volume')
    parser.add_argument('--exclude', action='append', default=[], choices=sorted(FAULTS),
                        metavar='FAULT', help='leave this fault out (repeatable): %s'
                        % '; '.join(sorted(FAULTS)))
    parser.add_argument('--only', action='append', default=[], choices=sorted(FAULTS),
                        metavar='FAULT', help='draw only this fault (repeatable)')
    parser.add_argument('--results', help='results file (default results/nemesis-*.md)')
    parser.add_argument('--keep', action='store_true',
                        help='keep the work directory with every process\'s log')
    parser.add_argument('--netns-prefix', default='ovsnm',
                        help='prefix of the simulated hosts\' names; campaigns running '
                             'side by side need their own, and their own --subnet')
    parser.add_argument('--subnet', default='10.213.215.0/24',
                        help='the simulated hosts\' subnet')
    args = parser.parse_args()
    _, passed, _ = run_campaign(args.seed, args.duration, args.multiattach, args.max_faults,
                                args.exclude, args.only, args.results,
                                prefix=args.netns_prefix, subnet=args.subnet, keep=args.keep)
    sys.exit(0 if passed else 1)


if __name__ == '__main__':
    main()
