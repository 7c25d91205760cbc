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

"""Which volumes this router serves, and how a volume changes owner.

The state machine of one volume, seen from one router::

                 create / acquire (take: ZK CAS, then backend claim, then open)
    not served ----------------------------------------------------------> serving
        ^                                                                    |
        |  halt: a backend write is Fenced, the ZK record shows another      |
        |  owner or epoch, the ZK session is lost, handover, delete          |
        +--------------------------------------------------------------------+

Taking a volume is always the same three steps, whatever the reason
(docs/design.md, "Taking a volume"): a compare-and-set of the ZooKeeper
record to ``owner = me, epoch + 1``; ``claim`` of the backend namespace
with a new key of that epoch, which fences every older key; opening the
volume from the backend. The reason is recorded as ``transfer.kind``:

* ``create``: a new volume, epoch 1;
* ``handover``: the previous owner flushed, halted and released the record
  (owner null) when asked to;
* ``steal``: the previous owner is dead (no ZooKeeper session, or its
  session expired while it was asked for a handover) or did not answer a
  health check within ``peer_timeout`` while a failover acquire was asked
  for;
* ``restart``: the record names this router but this process does not serve
  the volume (a restart, or a ZooKeeper session that was lost).

A halted copy is never written again: it is dropped and the volume can come
back only through a new take, with a higher epoch.

While the ZooKeeper session is suspended the router's IO gate is paused:
no request of any volume runs or is acknowledged. When the session comes
back the records of the served volumes are read again first (a volume
whose record cannot be read within the session timeout halts); when it is
lost, or stays suspended longer than the session timeout (by then the
server has expired it and others may take the volumes), every volume halts.

The owner of a multiattach volume serves reads only under a read lease it
renews by reading the volume's record, and a router that steals such a
volume serves it only once every earlier owner's lease has run out
(read_lease.py, docs/design.md "Read leases").

Everything here runs on the event loop; ZooKeeper and backend calls go to
worker threads. Operations on one volume are serialised by a per-volume
lock.
"""

import asyncio
import collections
import concurrent.futures
import functools

from kazoo.protocol import states as kz_states
from oslo_log import log as logging

from ovs_daemon.api import errors
from ovs_daemon.backends import base as backends
from ovs_daemon.engine import errors as engine_errors
from ovs_daemon.nbd import errors as nbd_errors
from ovs_daemon.nbd import protocol
from ovs_daemon.router import gate as gate_mod
from ovs_daemon.router import read_lease as read_lease_mod
from ovs_daemon.router import registry as registry_mod
from ovs_daemon.router import volume_export

LOG = logging.getLogger(__name__)

MODE_NORMAL = 'normal'
MODE_FAILOVER = 'failover'
MODES = (MODE_NORMAL, MODE_FAILOVER)
# An acquire decides again after each lost race; other routers racing for
# the same volume can make it lose only a few times.
MAX_DECISIONS = 8
# How often an acquire waiting for a handover checks that the owner still
# has a ZooKeeper session.
OWNER_SESSION_POLL = 0.2
# How many volumes a router takes back at once after a restart or a new
# ZooKeeper session (each take holds a worker thread while it reads the
# volume from the backend).
ADOPT_CONCURRENCY = 4
# How soon a router whose ZooKeeper session came back reads again a volume
# record ZooKeeper could not serve.
RESUME_RETRY_SECONDS = 0.2
# Takes after which an earlier owner may still hold a read lease: a stolen
# owner may not know yet, and a restarted router may have left a process
# behind that does not either.
_TAKES_AFTER_A_LEASE = (registry_mod.TRANSFER_STEAL, registry_mod.TRANSFER_RESTART)


class HandedOver(Exception):
    """The owner released the volume: decide again, now it has no owner."""

    def __init__(self, owner):
        super().__init__(owner)
        self.owner = owner


class ServedVolume:
    """A volume this router owns at ``epoch`` and serves.

    ``attachment_tokens`` and ``multiattach`` follow the volume's record as
    this router last saw it (at ``version``: a watch event or a read older
    than that is ignored).
    """

    def __init__(self, name, volume, epoch, gate, record, lease, version=-1):
        self.name = name
        self.volume = volume
        self.epoch = epoch
        self.gate = gate
        self.attachment_tokens = set(record['attachments'].values())
        self.multiattach = registry_mod.is_multiattach(record)
        self.version = version
        self.lease = lease
        self.export = None
        self.watch = None

    def admits(self, token):
        """Whether ``token`` is a current attachment token of the volume."""
        return token in self.attachment_tokens


class Ownership:

    def __init__(self, router_id, registry, store, peers, nbd_server, metrics,
                 executor, max_unflushed_bytes, handover_timeout, session_timeout,
                 read_lease=1.0):
        self.router_id = router_id
        self.registry = registry
        self.store = store
        self.peers = peers
        self.nbd_server = nbd_server
        self.metrics = metrics
        self.executor = executor
        # Where-is lookups for NBD clients asking for a volume not served
        # here come from clients not yet admitted: they get threads of
        # their own, so a flood of them never delays a flush or a commit.
        self._lookups = concurrent.futures.ThreadPoolExecutor(
            2, thread_name_prefix='router-lookup')
        self.max_unflushed_bytes = max_unflushed_bytes
        self.handover_timeout = handover_timeout
        self.session_timeout = session_timeout
        self.read_lease = read_lease
        # Lease renewals wait for ZooKeeper, for a whole session timeout
        # when it is away: not in the threads of IO.
        self._lease_reads = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix='router-lease')
        self.router_gate = gate_mod.IOGate()
        self.session_state = kz_states.KazooState.CONNECTED
        self._served = {}
        self._halted = {}
        self._locks = collections.defaultdict(asyncio.Lock)
        self._tasks = set()
        self._presumed_lost = None
        self._loop = None
        # A draining router takes no volume from others (drain.py).
        self.draining = False

    # -- plumbing -----------------------------------------------------------

    def start(self):
        """Listen to the ZooKeeper session; call on the event loop."""
        self._loop = asyncio.get_running_loop()
        self.registry.client.add_listener(self._on_session_state)
        self._spawn(self._renew_read_leases())

    async def blocking(self, fn, *args):
        """Run a ZooKeeper or backend call in a worker thread."""
        return await self._loop.run_in_executor(self.executor, functools.partial(fn, *args))

    def _spawn(self, coroutine):
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def served(self, name):
        """The :class:`ServedVolume`, or None if this router does not serve it."""
        return self._served.get(name)

    def served_names(self):
        return sorted(self._served)

    def served_count(self):
        return len(self._served)

    def halted(self):
        """``{name: reason}`` of the volumes halted here and not taken since."""
        return dict(self._halted)

    # -- the data plane's view ---------------------------------------------

    async def resolve_export(self, name, token):
        """The export of a session of volume ``name`` presenting attachment
        ``token``, or, with None, of an operator whose credential the caller
        checked. Refusals name the owner."""
        if token is not None and not token:
            raise nbd_errors.ExportRefused(
                'volume %s: a session needs a credential (<volume>/<attachment token or '
                'credential from POST /v1/volumes/%s/credentials>)' % (name, name),
                protocol.REP_ERR_POLICY)
        served = self._served.get(name)
        if served is None:
            raise nbd_errors.ExportRefused(await self._where_is(name))
        if token is None:
            return served.export
        if not served.admits(token) and not await self._confirmed_admits(served, token):
            raise nbd_errors.ExportRefused(
                'volume %s: the credential is not current' % name, protocol.REP_ERR_POLICY)
        return volume_export.AttachedExport(served.export, token,
                                            functools.partial(served.admits, token),
                                            self._end_earlier_sessions)

    async def _end_earlier_sessions(self, export):
        """An edge keeps one session per volume: a new session with the same
        attachment token replaces the earlier ones, which may still be open
        here (the edge gave up on them; a cut connection never told this
        router) with requests held (by a paused gate). They end, and their
        requests that reached the volume finish, before the new session
        reads its first request: no request of theirs lands after one of
        the new session, whose edge sends again all it had in flight."""
        await self.nbd_server.disconnect_sessions(
            lambda other: other is not export and other.name == export.name
            and getattr(other, 'token', None) == export.token)

    async def _lookup(self, fn, *args):
        return await self._loop.run_in_executor(self._lookups, functools.partial(fn, *args))

    async def _confirmed_admits(self, served, token):
        """Ask ZooKeeper (a sync read) before refusing a token the watch has
        not shown yet: a refusal ends the attachment for good, a watch may
        lag just after the attachment was made. Raises a refusal that is not
        final when ZooKeeper cannot tell now."""
        try:
            record, version = await self._lookup(self.registry.volume, served.name, True)
        except registry_mod.RegistryError as exc:
            raise nbd_errors.ExportRefused('volume %s: the attachment cannot be checked now: %s'
                                           % (served.name, exc)) from exc
        if self._record_mismatch(served.epoch, record) is None:
            self._record_seen(served.name, served.epoch, record, version)
        return served.admits(token)

    async def _where_is(self, name):
        try:
            record, _ = await self._lookup(self.registry.volume, name)
        except registry_mod.VolumeRecordNotFound:
            return 'volume %s does not exist' % name
        except registry_mod.RegistryError as exc:
            return 'volume %s is not served here and its owner is unknown: %s' % (name, exc)
        owner = record['owner']
        if owner is None:
            return 'volume %s has no owner: acquire it through any router' % name
        if owner == self.router_id:
            reason = self._halted.get(name, 'not open')
            return 'volume %s is not served by its owner %s (%s): acquire it' % (
                name, owner, reason)
        try:
            info = await self._lookup(self.registry.router, owner)
            return 'volume %s is owned by %s (%s)' % (name, owner, info['nbd'])
        except registry_mod.RegistryError:
            return 'volume %s is owned by %s, which is not registered' % (name, owner)

    # -- taking volumes ----------------------------------------------------

    async def create(self, name, size, parent=None, multiattach=False):
        """Create a volume (a clone of ``parent`` ``{"volume", "snapshot"}``)
        owned by this router at epoch 1, and serve it."""
        async with self._locks[name]:
            created_at = read_lease_mod.lease_clock()
            record = await self.blocking(self.registry.create_volume, name, size,
                                         self.router_id, parent, multiattach)
            key = backends.OwnerKey.generate(record['epoch'])
            try:
                if parent:
                    volume = await self.blocking(self.store.clone, name, parent['volume'],
                                                 parent['snapshot'], key, size)
                else:
                    volume = await self.blocking(self.store.create, name, size, key)
            except engine_errors.VolumeExists:
                # Not ours: a namespace kept for its clones, or left over.
                await self._forget_record(name)
                raise
            except Exception:
                await self._undo_create(name)
                raise
            await self._serve(name, volume, record, created_at)
            self.metrics.ownership_changes(registry_mod.TRANSFER_CREATE).inc()
            LOG.info('Created volume %s (%d bytes%s)', name, size,
                     ', clone of %(volume)s@%(snapshot)s' % parent if parent else '')
            return record

    async def _undo_create(self, name):
        """Remove what a failed create left (a namespace without metadata,
        or with it); on failure the record stays for a delete to finish."""
        try:
            record = await self.blocking(self.registry.mark_deleting, name)
            await self._delete_unopened(name, record)
            await self._forget_record(name)
        except Exception as exc:
            LOG.error('Could not undo the failed create of volume %s (delete it to finish): '
                      '%s', name, exc)

    async def acquire(self, name, mode=MODE_NORMAL, attachment=None):
        """Make this router the owner and server of ``name``; returns the record.

        See docs/control-api.md, "Acquire, handover, steal". An edge passes
        its ``attachment`` token: a revoked one may not move the volume.
        """
        if mode not in MODES:
            raise errors.BadRequest('mode must be one of %s, got %r' % (MODES, mode))
        async with self._locks[name]:
            handed_over_by = None
            for _ in range(MAX_DECISIONS):
                record, _ = await self.blocking(self.registry.volume, name)
                if record['state'] != registry_mod.STATE_AVAILABLE:
                    raise errors.Conflict('volume %s is being deleted' % name)
                if attachment is not None and attachment not in record['attachments'].values():
                    # Confirmed by a sync read: a refusal ends the attachment.
                    record, _ = await self.blocking(self.registry.volume, name, True)
                    if attachment not in record['attachments'].values():
                        raise errors.Forbidden('the attachment token of volume %s is not '
                                               'current' % name)
                if self.draining and record['owner'] != self.router_id:
                    raise errors.Unavailable('router %s is drained: it takes no volume'
                                             % self.router_id)
                try:
                    return await self._decide(name, record, mode, handed_over_by)
                except HandedOver as exc:
                    handed_over_by = exc.owner
                except registry_mod.Conflict as exc:
                    LOG.info('Acquire of %s lost a race (%s); deciding again', name, exc)
            raise errors.Unavailable('ownership of volume %s kept changing; retry' % name)

    async def _decide(self, name, record, mode, handed_over_by):
        owner, epoch = record['owner'], record['epoch']
        served = self._served.get(name)
        if owner == self.router_id and served is not None and served.epoch == epoch:
            return record
        if owner is None:
            return await self._take(name, None, epoch, registry_mod.TRANSFER_HANDOVER,
                                    previous=handed_over_by)
        if owner == self.router_id:
            return await self._take(name, owner, epoch, registry_mod.TRANSFER_RESTART)
        try:
            info = await self.blocking(self.registry.router, owner)
        except registry_mod.RouterNotFound:
            LOG.warning('Owner %s of volume %s has no ZooKeeper session: stealing',
                        owner, name)
            return await self._take(name, owner, epoch, registry_mod.TRANSFER_STEAL)
        try:
            await self._ask_handover(owner, info['api'], name, epoch)
        except (errors.PeerUnreachable, errors.PeerError) as exc:
            if isinstance(exc, errors.PeerError) and exc.status == 409:
                raise registry_mod.Conflict(str(exc)) from exc
            if mode != MODE_FAILOVER:
                raise errors.Unavailable('owner %s of volume %s cannot hand it over: %s'
                                         % (owner, name, exc)) from exc
            LOG.warning('Owner %s of volume %s cannot hand it over (%s): stealing',
                        owner, name, exc)
            return await self._take(name, owner, epoch, registry_mod.TRANSFER_STEAL)
        raise HandedOver(owner)

    async def _ask_handover(self, owner, api, name, epoch):
        """Ask ``owner`` to flush and release ``name``. An owner that does
        not answer a health check within ``peer_timeout`` is unreachable (a
        hung process still has its TCP connections accepted by the kernel),
        and so is one whose ZooKeeper session expires while it flushes:
        the wait for its answer ends there, not at ``handover_timeout``."""
        await self.peers.check_alive(api)
        handover = asyncio.ensure_future(
            self.peers.request_handover(api, name, epoch, self.handover_timeout))
        try:
            while True:
                done, _ = await asyncio.wait({handover}, timeout=OWNER_SESSION_POLL)
                if done:
                    return handover.result()
                if not await self.blocking(self.registry.is_router_alive, owner):
                    raise errors.PeerUnreachable(
                        'owner %s lost its ZooKeeper session while asked for a handover'
                        % owner)
        finally:
            handover.cancel()

    async def _take(self, name, expected_owner, epoch, kind, previous=None):
        taken_at = read_lease_mod.lease_clock()
        record = await self.blocking(self.registry.take_ownership, name, self.router_id,
                                     expected_owner, epoch, kind, previous)
        old = self._served.get(name)
        if old is not None:
            self.halt(name, old.epoch, 'superseded by epoch %d' % record['epoch'], 'superseded')
        key = backends.OwnerKey.generate(record['epoch'])
        try:
            volume = await self.blocking(self.store.open, name, key)
        except backends.Fenced as exc:
            raise errors.Conflict('volume %s was claimed in the backend beyond epoch %d: %s'
                                  % (name, record['epoch'], exc)) from exc
        hold = 0
        if kind in _TAKES_AFTER_A_LEASE and registry_mod.is_multiattach(record):
            hold = read_lease_mod.taker_wait(self.read_lease)
        await self._serve(name, volume, record, taken_at, hold)
        self.metrics.ownership_changes(kind).inc()
        LOG.warning('Took volume %s at epoch %d (%s from %s)', name, record['epoch'], kind,
                    record['transfer']['from'])
        return record

    async def _serve(self, name, volume, record, taken_at, hold=0):
        """Serve ``volume``, taken by a ZooKeeper write sent at ``taken_at``
        (the first read lease), after ``hold`` seconds."""
        epoch = record['epoch']
        lease = read_lease_mod.ReadLease(self.read_lease)
        lease.renew(taken_at)
        served = ServedVolume(name, volume, epoch, gate_mod.IOGate(parent=self.router_gate),
                              record, lease)
        served.export = volume_export.VolumeExport(
            volume, self.executor, self.max_unflushed_bytes, served.gate,
            on_halt=functools.partial(self._on_export_halt, name, epoch),
            observe=self.metrics.observe_io, write_through=served.multiattach,
            read_lease=served.lease)
        if hold:
            served.export.hold(hold)
        self._served[name] = served
        self._halted.pop(name, None)
        self.metrics.served.set(len(self._served))
        served.watch = await self.blocking(
            self.registry.watch_volume, name, functools.partial(self._on_record, name, epoch))

    async def adopt_owned_volumes(self):
        """Take back the volumes the registry says this router owns (after a
        restart or a new ZooKeeper session)."""
        try:
            names = await self.blocking(self.registry.volumes_owned_by, self.router_id)
        except registry_mod.RegistryError as exc:
            LOG.error('Cannot list the volumes of router %s: %s', self.router_id, exc)
            return
        # Several at a time: one volume whose backend hangs must not keep
        # the others unserved, and a router owning many volumes starts in
        # a fraction of the time one after the other would take.
        slots = asyncio.Semaphore(ADOPT_CONCURRENCY)

        async def take_back(name):
            async with slots:
                if name in self._served:
                    return
                try:
                    await self._take_back(name)
                except Exception as exc:
                    LOG.error('Could not take back volume %s: %s', name, exc)

        await asyncio.gather(*(take_back(name) for name in names))

    async def _take_back(self, name):
        """Take ``name`` back at a new epoch if its record still names this
        router. Another router may have taken it since the registry was
        listed (an edge failed over while this one waited for a slot): an
        acquire would ask that router to hand it back, moving the volume
        twice for nothing."""
        async with self._locks[name]:
            record, _ = await self.blocking(self.registry.volume, name)
            owner, epoch = record['owner'], record['epoch']
            if owner != self.router_id or record['state'] != registry_mod.STATE_AVAILABLE:
                LOG.info('Not taking back volume %s: its record shows owner %s at epoch %d '
                         '(%s)', name, owner, epoch, record['state'])
                return
            served = self._served.get(name)
            if served is not None and served.epoch == epoch:
                return
            try:
                await self._take(name, owner, epoch, registry_mod.TRANSFER_RESTART)
            except registry_mod.Conflict as exc:
                LOG.info('Not taking back volume %s: its record changed (%s)', name, exc)

    # -- giving volumes up -------------------------------------------------

    async def handover(self, name, to, epoch):
        """Stop IO on ``name``, flush, halt and release it for router ``to``.

        Without a ZooKeeper session this router cannot release the record:
        it refuses at once (a failover acquire then steals, which the claim
        makes safe) rather than halt the volume and wait for a session that
        may come back only to expire."""
        async with self._locks[name]:
            self._check_can_release(name)
            served = self._served.get(name)
            if served is None or served.epoch != epoch:
                return await self._release_unserved(name, epoch)
            served.gate.pause()
            try:
                await self.blocking(served.volume.flush)
                self._check_can_release(name)
            except Exception as exc:
                served.gate.resume()
                if isinstance(exc, (backends.Fenced, engine_errors.Halted)):
                    self.halt(name, epoch, 'fenced during handover: %s' % exc, 'fenced')
                    raise errors.Conflict('volume %s was fenced: %s' % (name, exc)) from exc
                raise
            self.halt(name, epoch, 'handed over to %s' % to, 'handed_over', keep=False)
            await served.export.until_served()
            await self.blocking(self.registry.release_ownership, name, self.router_id, epoch)
            self.metrics.ownership_changes('released').inc()
            LOG.warning('Handed volume %s over to %s at epoch %d', name, to, epoch)
            return {'volume': name, 'epoch': epoch}

    def _check_can_release(self, name):
        self.require_session('hand volume %s over' % name)

    def require_session(self, doing):
        """Refuse at once what needs ZooKeeper while this router's session
        is not connected: kazoo would hold the reads until a session is
        back, and a caller told 503 asks another router meanwhile."""
        if self.session_state != kz_states.KazooState.CONNECTED:
            raise errors.NoZooKeeperSession(
                'router %s cannot %s: its ZooKeeper session is %s'
                % (self.router_id, doing, self.session_state.lower()))

    async def _release_unserved(self, name, epoch):
        record, _ = await self.blocking(self.registry.volume, name)
        if record['epoch'] == epoch and record['owner'] in (None, self.router_id):
            # Not open in this process (or already released): nothing is
            # buffered here, so releasing loses nothing. An earlier process
            # may have stolen it moments ago: its taker would not wait.
            if registry_mod.is_multiattach(record):
                await asyncio.sleep(read_lease_mod.taker_wait(self.read_lease))
            await self.blocking(self.registry.release_ownership, name, self.router_id, epoch)
            return {'volume': name, 'epoch': epoch}
        raise errors.Conflict('volume %s is owned by %s at epoch %d, not by %s at epoch %d'
                              % (name, record['owner'], record['epoch'], self.router_id, epoch))

    async def delete(self, name):
        """Delete a volume this router serves, or one no live router serves.

        Resumable: the record is marked ``deleting`` first (acquires are
        refused from then on) and forgotten last, so a delete that failed,
        or whose router died, anywhere between is finished by the next
        delete through any router. A volume not served here is taken for
        the delete (epoch + 1, then a claim in the backend, which fences
        its earlier owners) without being opened: it may have no metadata
        (a create that died) or be half deleted already.
        """
        async with self._locks[name]:
            record = await self.blocking(self.registry.mark_deleting, name)
            served = self._served.get(name)
            if served is not None and record['owner'] == self.router_id \
                    and served.epoch == record['epoch']:
                self.halt(name, served.epoch, 'deleted', 'deleted', keep=False)
                await self.blocking(self.store.delete, name, served.volume)
            else:
                await self._delete_unopened(name, record)
            await self._forget_record(name)
            LOG.info('Deleted volume %s', name)

    async def _delete_unopened(self, name, record):
        record = await self.blocking(self.registry.take_ownership, name, self.router_id,
                                     record['owner'], record['epoch'],
                                     registry_mod.TRANSFER_DELETE)
        old = self._served.get(name)
        if old is not None:
            self.halt(name, old.epoch, 'deleted at epoch %d' % record['epoch'], 'deleted',
                      keep=False)
        key = backends.OwnerKey.generate(record['epoch'])
        await self.blocking(self.store.delete_unopened, name, key, record['parent'])

    async def _forget_record(self, name):
        try:
            await self.blocking(self.registry.mark_deleting, name)
            _, version = await self.blocking(self.registry.volume, name)
            await self.blocking(self.registry.delete_volume_record, name, version)
        except registry_mod.VolumeRecordNotFound:
            pass

    def halt(self, name, epoch, reason, cause, keep=True):
        """Stop serving ``name`` for good if it is served at ``epoch``.

        ``keep`` records it as halted (shown by health and status); a
        handover or a delete is not a failure and is not kept.
        """
        served = self._served.get(name)
        if served is None or served.epoch != epoch:
            return
        del self._served[name]
        served.volume.halt(reason)
        served.gate.close(reason)
        if served.watch is not None:
            served.watch.cancel()
        if keep:
            self._halted[name] = reason
        self.metrics.halts(cause).inc()
        self.metrics.served.set(len(self._served))
        self._spawn(self.nbd_server.disconnect_export(name))

    def halt_all(self, reason, cause):
        for name, served in list(self._served.items()):
            self.halt(name, served.epoch, reason, cause)

    def _on_export_halt(self, name, epoch, reason):
        self.halt(name, epoch, reason, 'fenced')

    def _record_mismatch(self, epoch, record):
        """Why ``record`` says this router no longer owns the volume at
        ``epoch``, or None if it still does."""
        if record is None:
            return 'its ZooKeeper record was deleted'
        if record['owner'] != self.router_id or record['epoch'] != epoch:
            return 'its ZooKeeper record shows owner %s at epoch %d' % (
                record['owner'], record['epoch'])
        return None

    def _on_record(self, name, epoch, record, version):
        """kazoo's watch thread: never block here."""
        reason = self._record_mismatch(epoch, record)
        if reason:
            self._loop.call_soon_threadsafe(self.halt, name, epoch, reason, 'record_changed')
        else:
            self._loop.call_soon_threadsafe(self._record_seen, name, epoch, record, version)

    def _record_seen(self, name, epoch, record, version):
        """Follow the attachments and the multiattach mode of a served
        volume's record, unless this router has seen a newer one."""
        served = self._served.get(name)
        if served is None or served.epoch != epoch or version <= served.version:
            return
        served.version = version
        tokens = set(record['attachments'].values())
        multiattach = registry_mod.is_multiattach(record)
        if multiattach != served.multiattach:
            # Only possible while the volume has no attachment (the registry
            # refuses it otherwise): the sessions left negotiated the other
            # mode, so they go.
            served.multiattach = served.export.write_through = multiattach
            served.attachment_tokens = tokens
            LOG.warning('Volume %s now runs %s', name,
                        'write-through (multiattach)' if multiattach else 'write-back')
            self._spawn(self.nbd_server.disconnect_export(name))
            return
        if served.attachment_tokens == tokens:
            return
        served.attachment_tokens = tokens
        self._spawn(self.nbd_server.disconnect_sessions(
            lambda export: export.name == name and getattr(export, 'token', None)
            and export.token not in tokens))

    # -- read leases ------------------------------------------------------

    async def _renew_read_leases(self):
        """Renew the read lease of every multiattach volume served here, a
        few times per lease: one read of their records, sent at a time
        measured before it leaves."""
        while True:
            await asyncio.sleep(self.read_lease / read_lease_mod.RENEWALS_PER_LEASE)
            served = {name: s for name, s in self._served.items() if s.multiattach}
            if not served:
                continue
            sent = read_lease_mod.lease_clock()
            try:
                records = await self._loop.run_in_executor(
                    self._lease_reads, self.registry.volume_records, sorted(served))
            except registry_mod.RegistryError as exc:
                LOG.debug('Read leases not renewed: %s', exc)
                continue
            for name, found in records.items():
                if isinstance(found, tuple) and \
                        self._record_mismatch(served[name].epoch, found[0]) is None:
                    served[name].lease.renew(sent)

    # -- the ZooKeeper session ----------------------------------------------

    def _on_session_state(self, state):
        """kazoo's connection thread: never block here."""
        self._loop.call_soon_threadsafe(self._session_changed, state)

    def _session_changed(self, state):
        previous, self.session_state = self.session_state, state
        self.metrics.zookeeper_connected.set(state == kz_states.KazooState.CONNECTED)
        if state == kz_states.KazooState.SUSPENDED:
            LOG.warning('ZooKeeper session suspended: holding IO of %d volume(s)',
                        len(self._served))
            self.router_gate.pause()
            self._presumed_lost = self._loop.call_later(
                self.session_timeout, self._session_presumed_lost)
            return
        self._cancel_presumed_lost()
        if state == kz_states.KazooState.LOST:
            self.halt_all('ZooKeeper session lost', 'session_lost')
            self.router_gate.resume()
        elif previous == kz_states.KazooState.SUSPENDED:
            self._spawn(self._resume_after_suspension())
        elif previous == kz_states.KazooState.LOST:
            LOG.info('New ZooKeeper session: taking back this router\'s volumes')
            self._spawn(self.adopt_owned_volumes())

    def _cancel_presumed_lost(self):
        if self._presumed_lost is not None:
            self._presumed_lost.cancel()
            self._presumed_lost = None

    def _session_presumed_lost(self):
        self._presumed_lost = None
        if self.session_state == kz_states.KazooState.SUSPENDED:
            self.halt_all('ZooKeeper session suspended for more than %.1f s'
                          % self.session_timeout, 'session_lost')
            self.router_gate.resume()

    async def _resume_after_suspension(self):
        """Same session again: check nobody took a volume meanwhile and
        follow the attachments revoked meanwhile (the requests held check
        their session's token as they go on), then let IO through. A record
        ZooKeeper cannot serve now is read again until it can, for
        ``session_timeout`` at most; a volume whose record stays unreadable,
        or is malformed, halts, so that the others' IO does not wait for
        it."""
        deadline = self._loop.time() + self.session_timeout
        unchecked = {name: served.epoch for name, served in self._served.items()}
        while unchecked:
            if self.session_state != kz_states.KazooState.CONNECTED:
                return  # suspended or lost again: that change decides
            # Every record in one round trip: IO of all volumes waits for it.
            try:
                found = await self.blocking(self.registry.volume_records, list(unchecked), True)
            except registry_mod.RegistryUnavailable as exc:
                if self._loop.time() < deadline:
                    LOG.warning('Cannot check %d volume(s) after suspension yet: %s',
                                len(unchecked), exc)
                    await asyncio.sleep(RESUME_RETRY_SECONDS)
                    continue
                found = dict.fromkeys(unchecked, registry_mod.RegistryUnavailable(
                    'its record could not be read for %.1f s after the ZooKeeper session '
                    'came back: %s' % (self.session_timeout, exc)))
            except registry_mod.RegistryError as exc:
                found = dict.fromkeys(unchecked, exc)
            for name, epoch in unchecked.items():
                reason = self._check_after_suspension(name, epoch, found[name])
                if reason:
                    self.halt(name, epoch, reason, 'record_changed')
            unchecked = {}
        if self.session_state == kz_states.KazooState.CONNECTED:
            LOG.info('ZooKeeper session back: releasing IO')
            self.router_gate.resume()
            # Volumes halted because the suspension lasted too long are
            # still ours in the registry unless someone took them meanwhile.
            await self.adopt_owned_volumes()

    def _check_after_suspension(self, name, epoch, found):
        """Why the volume must halt, or '' if it is still ours at
        ``epoch``; ``found`` is what :meth:`Registry.volume_records` read."""
        if isinstance(found, registry_mod.RegistryUnavailable):
            return str(found)
        if isinstance(found, registry_mod.RegistryError):
            return 'its record cannot be read: %s' % found
        record, version = found or (None, None)
        reason = self._record_mismatch(epoch, record)
        if not reason:
            self._record_seen(name, epoch, record, version)
        return reason or ''

    async def stop(self):
        """Flush and close every volume (a clean shutdown keeps ownership:
        the restarted router takes its volumes back)."""
        for name, served in list(self._served.items()):
            served.gate.pause()
            try:
                await self.blocking(served.volume.flush)
            except Exception as exc:
                LOG.error('Could not flush volume %s at shutdown: %s', name, exc)
            self.halt(name, served.epoch, 'router stopped', 'stopped', keep=False)
        for task in list(self._tasks):
            task.cancel()
        self._lookups.shutdown(wait=False)
        self._lease_reads.shutdown(wait=False)
