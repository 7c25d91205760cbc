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

"""The vPool's registry in ZooKeeper: live routers and volume records.

Layout under ``/ovs/<vpool>``::

    routers/<router_id>   EPHEMERAL  {id, site, nbd, api, started}
    volumes/<name>        PERSISTENT {name, size, owner, epoch, state, parent,
                                      attachments, multiattach, created}

Rules this module keeps (docs/design.md, "ZooKeeper contract"):

* A volume record changes only by compare-and-set: every write carries the
  znode version it was computed from, so of two writers that read the same
  version exactly one succeeds. The loser sees :class:`Conflict`.
* ``epoch`` is the fencing token (the backend :class:`OwnerKey` epoch). It
  only ever grows; every write is checked for that, and a record is never
  deleted and re-created to reset it.
* A router's ephemeral node is evidence of liveness, not ownership: ownership
  is the ``owner``/``epoch`` pair of the volume record, made effective by a
  ``claim`` in the backend. kazoo's ``Lock`` is not used.
* Decisions are made by conditional writes, not by reads: a read (``volume``,
  ``routers``) may be stale and only tells what to try.
* ``multiattach`` (the volume runs write-through, see docs/edge.md,
  "Multiattach") changes only while the volume has no attachment: an edge
  keeps acknowledged writes for replay only under an attachment token, so
  no edge can replay a write acknowledged under the other mode.

Connection problems surface as :class:`RegistryUnavailable`. After one, the
outcome of a write is unknown: re-read the record before deciding anything.
"""

import copy
import json
import random
import threading
import time

from kazoo import exceptions as kz_exc
from kazoo.protocol import states as kz_states
from oslo_log import log as logging

from ovs_daemon.backends import base as backends

LOG = logging.getLogger(__name__)

ROOT = '/ovs'
STATE_AVAILABLE = 'available'
STATE_DELETING = 'deleting'
STATES = (STATE_AVAILABLE, STATE_DELETING)
# How a volume came to its owner (the record's ``transfer.kind``).
TRANSFER_CREATE = 'create'
TRANSFER_HANDOVER = 'handover'
TRANSFER_STEAL = 'steal'
TRANSFER_RESTART = 'restart'
TRANSFER_DELETE = 'delete'
TRANSFER_KINDS = (TRANSFER_CREATE, TRANSFER_HANDOVER, TRANSFER_STEAL, TRANSFER_RESTART,
                  TRANSFER_DELETE)
# How many times update_volume re-reads and retries after losing a CAS race
# to a change that its mutation does not conflict with.
DEFAULT_CAS_RETRIES = 16


class RegistryError(Exception):
    """The registry could not do what was asked."""


class RegistryUnavailable(RegistryError):
    """ZooKeeper could not be reached; a write's outcome is unknown."""


class VolumeRecordNotFound(RegistryError, KeyError):
    """No record for that volume."""

    def __str__(self):
        return str(self.args[0]) if self.args else 'volume record not found'


class VolumeRecordExists(RegistryError):
    """A record for that volume already exists."""


class RouterNotFound(RegistryError, KeyError):
    """No live router with that id."""

    def __str__(self):
        return str(self.args[0]) if self.args else 'router not found'


class RouterIdInUse(RegistryError):
    """Another ZooKeeper session holds the ephemeral node of this router id.

    Either a second process runs with the same id, or this router restarted
    before its previous session expired: retry after the session timeout.
    """


class Conflict(RegistryError):
    """A compare-and-set lost: the record is not what the caller expected.

    Someone else changed it (for ownership: someone else took the volume).
    Never retry blindly: re-read and decide again.
    """


class AttachedConflict(Conflict):
    """The multiattach mode of an attached volume cannot change."""


class NotOwner(Conflict):
    """The caller is not (or no longer) the owner at the epoch it named."""


def _encode(obj):
    return json.dumps(obj, sort_keys=True, separators=(',', ':')).encode()


def _decode(raw, path):
    try:
        obj = json.loads(raw.decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise RegistryError('malformed record at %s: %s' % (path, exc)) from exc
    if not isinstance(obj, dict):
        raise RegistryError('malformed record at %s: not an object' % path)
    return obj


def _check_name(kind, name):
    try:
        return backends.check_name(kind, name)
    except backends.InvalidName as exc:
        raise RegistryError(str(exc)) from exc


def _check_epoch(epoch):
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
        raise RegistryError('epoch must be a positive integer, got %r' % (epoch,))
    return epoch


def _check_size(size):
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise RegistryError('size must be a positive integer, got %r' % (size,))
    return size


def _check_parent(parent):
    if parent is None:
        return None
    if (not isinstance(parent, dict) or set(parent) != {'volume', 'snapshot'}
            or not isinstance(parent['snapshot'], str) or not parent['snapshot']):
        raise RegistryError('parent must be {"volume": ..., "snapshot": ...} or None, got %r'
                            % (parent,))
    _check_name('volume', parent['volume'])
    return {'volume': parent['volume'], 'snapshot': parent['snapshot']}


def check_transition(old, new):
    """Refuse a volume record change that breaks the registry's invariants.

    The epoch never decreases; the owner changes to another router only with
    a higher epoch (a release sets it to None at the same epoch); the name
    never changes.
    """
    if not isinstance(new, dict):
        raise RegistryError('a volume record must be a dict, got %r' % (type(new),))
    if new.get('name') != old['name']:
        raise RegistryError('a volume record cannot be renamed (%r -> %r)'
                            % (old['name'], new.get('name')))
    _check_epoch(new.get('epoch'))
    if new['epoch'] < old['epoch']:
        raise RegistryError('epoch of %s would go down from %d to %d'
                            % (old['name'], old['epoch'], new['epoch']))
    owner = new.get('owner')
    if owner is not None:
        _check_name('router', owner)
    if owner != old['owner'] and owner is not None and new['epoch'] <= old['epoch']:
        raise RegistryError('owner of %s changes to %s without a higher epoch'
                            % (old['name'], owner))
    if new.get('state') not in STATES:
        raise RegistryError('state must be one of %s, got %r' % (STATES, new.get('state')))
    _check_size(new.get('size'))
    _check_parent(new.get('parent'))
    attachments = new.get('attachments')
    if not isinstance(attachments, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in attachments.items()):
        raise RegistryError('attachments must map host names to token strings')
    if not isinstance(new.get('multiattach', False), bool):
        raise RegistryError('multiattach must be true or false')
    if is_multiattach(new) != is_multiattach(old) and old['attachments']:
        raise AttachedConflict(
            'volume %s is attached to %s %s multiattach: detach it everywhere before '
            'changing its multiattach mode'
            % (old['name'], ', '.join(sorted(old['attachments'])),
               'with' if is_multiattach(old) else 'without'))


def is_multiattach(record):
    """Whether the volume runs write-through for several writers (records
    written before the field existed are not)."""
    return bool(record.get('multiattach', False))


class VolumeWatch:
    """Handle of :meth:`Registry.watch_volume`; ``cancel()`` stops the calls."""

    def __init__(self, name):
        self.name = name
        self.cancelled = False

    def cancel(self):
        # kazoo drops a DataWatch when its function returns False: at the next
        # event, so one more event may arrive and is ignored.
        self.cancelled = True


class Registry:
    """The registry of one vPool in ZooKeeper, over a started KazooClient."""

    def __init__(self, client, vpool, cas_retries=DEFAULT_CAS_RETRIES):
        self.client = client
        self.vpool = _check_name('vpool', vpool)
        self.cas_retries = cas_retries
        self.base = '%s/%s' % (ROOT, vpool)
        self.routers_path = self.base + '/routers'
        self.volumes_path = self.base + '/volumes'
        self.drained_path = self.base + '/drained'
        self._router_info = None
        self._listener = None
        self._reregister_lock = threading.Lock()

    # -- paths and plumbing -------------------------------------------------

    def router_path(self, router_id):
        return '%s/%s' % (self.routers_path, _check_name('router', router_id))

    def volume_path(self, name):
        return '%s/%s' % (self.volumes_path, _check_name('volume', name))

    def ensure_paths(self):
        """Create the vPool's persistent parent nodes. Idempotent."""
        with _unavailable_as_error():
            self.client.ensure_path(self.routers_path)
            self.client.ensure_path(self.volumes_path)

    # -- routers ------------------------------------------------------------

    def register_router(self, info):
        """Publish this router's ephemeral node; returns the stored info.

        ``info`` needs ``id``, ``nbd`` ("host:port") and ``api``
        ("http://host:port"); ``site`` defaults to None and ``started`` to now.
        The info is remembered for :meth:`reregister_router`. Idempotent within
        a session. Raises :class:`RouterIdInUse` if another session holds the
        node.
        """
        info = dict(info)
        for field in ('id', 'nbd', 'api'):
            if not isinstance(info.get(field), str) or not info[field]:
                raise RegistryError('router info needs a non-empty string %r' % field)
        _check_name('router', info['id'])
        info.setdefault('site', None)
        info.setdefault('started', time.time())
        self._router_info = info
        self._publish_router(info)
        return dict(info)

    def reregister_router(self):
        """Re-create this router's ephemeral node after a session loss.

        The service calls it when kazoo is CONNECTED again after LOST (or
        lets :meth:`install_session_listener` do it). Returns False if no
        router was registered through this Registry.
        """
        if self._router_info is None:
            return False
        with self._reregister_lock:
            self._publish_router(self._router_info)
        return True

    def install_session_listener(self):
        """Re-register the router by itself whenever the session comes back.

        The listener only spawns work on kazoo's handler: it never blocks the
        connection thread. Failures are logged; the next reconnect retries.
        """
        if self._listener is not None:
            return

        def listener(state):
            if state == kz_states.KazooState.CONNECTED and self._router_info is not None:
                self.client.handler.spawn(self._reregister_quietly)

        self._listener = listener
        self.client.add_listener(listener)

    def remove_session_listener(self):
        if self._listener is not None:
            self.client.remove_listener(self._listener)
            self._listener = None

    def _reregister_quietly(self):
        try:
            self.reregister_router()
        except RouterIdInUse as exc:
            # The old session's node lingers until the server expires it.
            LOG.warning('Router %s not re-registered yet: %s', self._router_info['id'], exc)
            self.client.handler.spawn(self._reregister_later)
        except Exception:
            LOG.exception('Could not re-register router %s', self._router_info['id'])

    def _reregister_later(self):
        time.sleep(1.0)
        if self.client.connected:
            self._reregister_quietly()

    def _publish_router(self, info):
        path = self.router_path(info['id'])
        data = _encode(info)
        with _unavailable_as_error():
            self.client.ensure_path(self.routers_path)
            try:
                self.client.create(path, data, ephemeral=True)
                LOG.info('Registered router %s in vPool %s', info['id'], self.vpool)
                return
            except kz_exc.NodeExistsError:
                pass
            try:
                _, stat = self.client.get(path)
            except kz_exc.NoNodeError:
                # The old node just expired: try once more.
                self.client.create(path, data, ephemeral=True)
                return
            if stat.ephemeralOwner != self.client.client_id[0]:
                raise RouterIdInUse('router %s is registered by another ZooKeeper session '
                                    '(0x%x)' % (info['id'], stat.ephemeralOwner))
            try:
                self.client.set(path, data, version=stat.version)
            except kz_exc.BadVersionError:
                # Only our session can hold this node; another thread of ours
                # wrote it meanwhile, with the same info.
                pass

    def routers(self, site=None):
        """Live routers: ``{id: info}``, those of ``site`` only if given.

        A read: a router listed here may already be gone.
        """
        return {router_id: info for router_id, info in self._read_children(
                    self.routers_path).items()
                if site is None or info.get('site') == site}

    def router(self, router_id):
        """One live router's info; :class:`RouterNotFound` if it has no node."""
        path = self.router_path(router_id)
        with _unavailable_as_error():
            try:
                raw, _ = self.client.get(path)
            except kz_exc.NoNodeError:
                raise RouterNotFound('router %s is not registered' % router_id) from None
        return _decode(raw, path)

    def is_router_alive(self, router_id):
        """Whether the router has an ephemeral node: evidence, not proof."""
        with _unavailable_as_error():
            return self.client.exists(self.router_path(router_id)) is not None

    def set_drained(self, router_id, drained):
        """Mark a router drained (placement and acquires pass it over) or
        not. Persistent: a drained router stays drained across restarts."""
        path = '%s/%s' % (self.drained_path, _check_name('router', router_id))
        with _unavailable_as_error():
            if drained:
                self.client.ensure_path(path)
                return
            try:
                self.client.delete(path)
            except kz_exc.NoNodeError:
                pass

    def drained_routers(self):
        """Ids of the routers marked drained."""
        with _unavailable_as_error():
            try:
                return set(self.client.get_children(self.drained_path))
            except kz_exc.NoNodeError:
                return set()

    def least_loaded_router(self, site=None):
        """The id of the live router (of ``site`` if given) owning the fewest
        volumes, ties broken by id; None if there is none. Drained routers
        are passed over while any other is live.

        Used to place new volumes. Volumes owned by routers that are gone do
        not count for anyone.
        """
        live = self.routers(site=site)
        drained = self.drained_routers()
        live = {router_id: info for router_id, info in live.items()
                if router_id not in drained} or live
        if not live:
            return None
        load = dict.fromkeys(live, 0)
        for record in self.volumes().values():
            if record.get('owner') in load:
                load[record['owner']] += 1
        return min(load, key=lambda router_id: (load[router_id], router_id))

    # -- volume records -----------------------------------------------------

    def create_volume(self, name, size, owner, parent=None, multiattach=False):
        """Create the record of a new volume at epoch 1; returns it.

        ``owner`` is the router that creates the volume in the backend (it
        claims with an OwnerKey of epoch 1), or None. Raises
        :class:`VolumeRecordExists` if a record of that name exists.
        """
        path = self.volume_path(name)
        if owner is not None:
            _check_name('router', owner)
        record = {
            'name': name,
            'size': _check_size(size),
            'owner': owner,
            'epoch': 1,
            'state': STATE_AVAILABLE,
            'parent': _check_parent(parent),
            'attachments': {},
            'multiattach': bool(multiattach),
            'created': time.time(),
            'transfer': {'kind': TRANSFER_CREATE, 'from': None, 'at': time.time()},
        }
        with _unavailable_as_error():
            self.client.ensure_path(self.volumes_path)
            try:
                self.client.create(path, _encode(record))
            except kz_exc.NodeExistsError:
                raise VolumeRecordExists('volume %s already exists' % name) from None
        return record

    def volume(self, name, sync=False):
        """``(record, version)``; the version is what CAS writes check.

        With ``sync`` the read sees every write ZooKeeper completed before
        it (from any session): a confirmation, not a guess.
        """
        path = self.volume_path(name)
        with _unavailable_as_error():
            try:
                if sync:
                    self.client.sync(path)
                raw, stat = self.client.get(path)
            except kz_exc.NoNodeError:
                raise VolumeRecordNotFound('volume %s does not exist' % name) from None
        return _decode(raw, path), stat.version

    def volume_records(self, names, sync=False):
        """``{name: (record, version)}`` of the named volumes, their reads
        sent together (one round trip for them all); None for a volume
        without a record, a :class:`RegistryError` for a malformed one.
        With ``sync`` the reads see every write ZooKeeper completed before
        the call (one sync serves them all: it brings this session's
        server up to date)."""
        result = {}
        with _unavailable_as_error():
            if sync:
                self.client.sync(self.volumes_path)
            pending = [(name, self.volume_path(name)) for name in names]
            pending = [(name, path, self.client.get_async(path)) for name, path in pending]
            for name, path, reply in pending:
                try:
                    raw, stat = reply.get()
                except kz_exc.NoNodeError:
                    result[name] = None
                    continue
                try:
                    result[name] = (_decode(raw, path), stat.version)
                except RegistryError as exc:
                    result[name] = exc
        return result

    def volumes(self):
        """Every volume record: ``{name: record}`` (a read, maybe stale)."""
        return self._read_children(self.volumes_path)

    def _read_children(self, parent):
        """``{child: decoded record}`` of every child of ``parent``. The
        reads are sent together and answered in one stream (ZooKeeper
        answers a session's requests in order): one round trip for them
        all, not one each, however many records there are."""
        result = {}
        with _unavailable_as_error():
            try:
                children = self.client.get_children(parent)
            except kz_exc.NoNodeError:
                return result
            pending = [(child, self.client.get_async('%s/%s' % (parent, child)))
                       for child in children]
            for child, reply in pending:
                try:
                    raw, _ = reply.get()
                except kz_exc.NoNodeError:
                    continue  # gone between listing and reading
                result[child] = _decode(raw, '%s/%s' % (parent, child))
        return result

    def volumes_owned_by(self, router_id):
        """Names of the volumes whose record names ``router_id`` as owner."""
        return sorted(name for name, record in self.volumes().items()
                      if record.get('owner') == router_id)

    def delete_volume_record(self, name, version):
        """Delete the record, only if still at ``version`` and marked deleting.

        Only once the backend namespace is gone: the record is what keeps the
        epoch growing. Raises :class:`Conflict` if the record changed since
        ``version`` was read, :class:`RegistryError` if it is not marked
        ``deleting`` (see :meth:`mark_deleting`).
        """
        path = self.volume_path(name)
        record, current = self.volume(name)
        if current != version:
            raise Conflict('volume %s changed (version %d, expected %d)'
                           % (name, current, version))
        if record['state'] != STATE_DELETING:
            raise RegistryError('volume %s is not marked deleting' % name)
        with _unavailable_as_error():
            try:
                self.client.delete(path, version=version)
            except kz_exc.BadVersionError:
                raise Conflict('volume %s changed before its deletion' % name) from None
            except kz_exc.NoNodeError:
                raise VolumeRecordNotFound('volume %s does not exist' % name) from None

    def update_volume(self, name, mutate_fn, retries=None):
        """Read, apply ``mutate_fn``, write back by CAS; returns the new record.

        ``mutate_fn(record) -> record`` gets a private copy and must be pure:
        it runs again on a fresh read each time the CAS loses to another
        writer (at most ``retries`` times, then :class:`Conflict`). It raises
        :class:`Conflict` (or :class:`NotOwner`) to refuse the change; that
        propagates at once. A result equal to the record writes nothing.
        The change must keep the invariants of :func:`check_transition`.
        """
        path = self.volume_path(name)
        retries = self.cas_retries if retries is None else retries
        for attempt in range(retries + 1):
            record, version = self.volume(name)
            new = mutate_fn(copy.deepcopy(record))
            check_transition(record, new)
            if new == record:
                return record
            with _unavailable_as_error():
                try:
                    self.client.set(path, _encode(new), version=version)
                    return new
                except kz_exc.BadVersionError:
                    LOG.debug('CAS on volume %s lost at version %d (attempt %d)',
                              name, version, attempt + 1)
                except kz_exc.NoNodeError:
                    raise VolumeRecordNotFound('volume %s does not exist' % name) from None
            time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        raise Conflict('volume %s: compare-and-set lost %d times' % (name, retries + 1))

    def take_ownership(self, name, router_id, expected_owner, expected_epoch,
                       kind=TRANSFER_STEAL, previous=None):
        """Make ``router_id`` the owner at ``expected_epoch + 1``; returns the record.

        The CAS at the heart of steal and handover: it succeeds only if the
        record still shows ``expected_owner`` at ``expected_epoch`` (checked
        against the version read, so a concurrent taker makes this one fail).
        Raises :class:`Conflict` otherwise: someone else took the volume; do
        not retry with the new values without deciding again. ``kind`` (one
        of :data:`TRANSFER_KINDS`) is recorded in the record's ``transfer``
        with the previous owner (``previous``, by default ``expected_owner``),
        for operators and tests to tell a handover from a steal.

        On success the caller MUST then ``claim`` the namespace in the backend
        with ``OwnerKey.generate(record['epoch'])`` before serving the volume,
        and halt it if the claim or any later write raises ``Fenced``. Until
        the claim completes the previous owner may still write.
        """
        _check_name('router', router_id)
        _check_epoch(expected_epoch)
        if kind not in TRANSFER_KINDS:
            raise RegistryError('transfer kind must be one of %s, got %r'
                                % (TRANSFER_KINDS, kind))
        taken_at = time.time()

        def take(record):
            if record['owner'] != expected_owner or record['epoch'] != expected_epoch:
                raise Conflict('volume %s is owned by %s at epoch %d, not %s at epoch %d'
                               % (name, record['owner'], record['epoch'],
                                  expected_owner, expected_epoch))
            record['owner'] = router_id
            record['epoch'] = expected_epoch + 1
            record['transfer'] = {'kind': kind, 'from': previous or expected_owner,
                                  'at': taken_at}
            return record

        return self.update_volume(name, take)

    def release_ownership(self, name, router_id, epoch):
        """Hand the volume over: owner becomes None, the epoch stays.

        Only if ``router_id`` still owns it at ``epoch``, else
        :class:`NotOwner`. The caller has stopped IO and flushed first.
        Releasing again (an unknown outcome retried) is harmless.
        """
        _check_name('router', router_id)
        _check_epoch(epoch)

        def release(record):
            if record['owner'] is None and record['epoch'] == epoch:
                return record  # already released by us: nobody took it since
            if record['owner'] != router_id or record['epoch'] != epoch:
                raise NotOwner('volume %s is owned by %s at epoch %d, not %s at epoch %d'
                               % (name, record['owner'], record['epoch'], router_id, epoch))
            record['owner'] = None
            return record

        return self.update_volume(name, release)

    def mark_deleting(self, name):
        """Set the state to ``deleting`` (first step of a delete)."""
        def mark(record):
            record['state'] = STATE_DELETING
            return record
        return self.update_volume(name, mark)

    def set_size(self, name, size, allow_shrink=False):
        """Record a new size: extend only, unless ``allow_shrink`` (a revert
        to a smaller snapshot)."""
        _check_size(size)

        def resize(record):
            if size < record['size'] and not allow_shrink:
                raise Conflict('volume %s cannot shrink from %d to %d'
                               % (name, record['size'], size))
            record['size'] = size
            return record
        return self.update_volume(name, resize)

    # -- attachments --------------------------------------------------------

    def set_attachment(self, name, host, token, multiattach=None):
        """Record ``token`` as the attachment token of ``host``, unless the
        host has one already: instances of one host share its token, so
        attaching a second one must not cut the first one's sessions.
        Returns the record; its ``attachments[host]`` is the host's token.

        ``multiattach`` (if not None) sets the volume's mode in the same
        write; it may differ from the recorded one only while the volume has
        no attachment (else :class:`AttachedConflict`).
        """
        if not isinstance(host, str) or not host:
            raise RegistryError('attachment host must be a non-empty string')
        if not isinstance(token, str) or not token:
            raise RegistryError('attachment token must be a non-empty string')

        def attach(record):
            if multiattach is not None:
                record['multiattach'] = multiattach
            record['attachments'].setdefault(host, token)
            return record
        return self.update_volume(name, attach)

    def remove_attachment(self, name, host):
        """Forget ``host``'s attachment. Idempotent."""
        def detach(record):
            record['attachments'].pop(host, None)
            return record
        return self.update_volume(name, detach)

    def clear_attachments(self, name):
        def clear(record):
            record['attachments'] = {}
            return record
        return self.update_volume(name, clear)

    # -- watches ------------------------------------------------------------

    def watch_volume(self, name, callback):
        """Call ``callback(record, version)`` now and at every change of the
        record; ``callback(None, None)`` when it does not exist or is deleted.

        The callback runs on kazoo's event thread: it must not block (no
        ZooKeeper calls that wait, no IO, no flush); hand work to another
        thread. The router uses it to halt a volume as soon as the record
        shows another owner or a higher epoch than its own: a change seen
        here is final (epochs only grow), whereas the absence of a change
        proves nothing. kazoo re-arms the watch after a reconnect. Returns a
        :class:`VolumeWatch` whose ``cancel()`` stops the calls.
        """
        path = self.volume_path(name)
        handle = VolumeWatch(name)

        def on_change(data, stat, event=None):
            if handle.cancelled:
                return False
            record = version = None
            if data is not None and stat is not None:
                try:
                    record = _decode(data, path)
                except RegistryError:
                    LOG.exception('Ignoring a malformed record of volume %s', name)
                    return None
                version = stat.version
            try:
                callback(record, version)
            except Exception:
                LOG.exception('Volume watch callback of %s failed', name)
            return None

        with _unavailable_as_error():
            self.client.DataWatch(path, on_change)
        return handle


class _unavailable_as_error:
    """Turn kazoo's connection errors into :class:`RegistryUnavailable`."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            return False
        if issubclass(exc_type, (kz_exc.ConnectionLoss, kz_exc.SessionExpiredError,
                                 kz_exc.OperationTimeoutError)):
            raise RegistryUnavailable('ZooKeeper unavailable: %s' % (exc,)) from exc
        if issubclass(exc_type, kz_exc.KazooException) and not issubclass(
                exc_type, (kz_exc.NoNodeError, kz_exc.NodeExistsError,
                           kz_exc.BadVersionError)):
            raise RegistryError('ZooKeeper error: %r' % (exc,)) from exc
        return False
