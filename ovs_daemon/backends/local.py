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

"""The ``local`` backend: namespaces as directories on one host's file system.

Several router processes may share one root. Each namespace directory holds:

* ``.key``: the current owner key, replaced by ``rename``;
* ``.lock``: taken with ``flock`` by claims only, so that of two claims one
  reads the key after the other replaced it;
* ``log/<slot>``: committed log slots, created with ``link`` so a slot is
  written at most once;
* every other object under its own name, '/' parts as directories.

Fencing is at the commit point, as on ``s3`` (see ``base``): a write checks
the key, then acts, and takes no lock. A writer stopped between the two
(SIGSTOP, a hung process) holds nothing a claim waits for; when it runs
again its put may land (an object named after its epoch, which nothing
committed refers to), but its commit does not: the claim took the slot
after the last one, so the stale writer's ``link`` finds its slot taken,
and a commit that got in before the claim is read again against the key and
reported ``Fenced``. A writer that took its lock inside each write, as this
backend once did, froze every claim of the namespace for as long as it was
stopped there. A router stopped in the middle of a claim still holds up the
other claims of that namespace until it runs again or dies; a claim holds
the lock for a rename, a link and two directory fsyncs.

Nothing partial is ever visible: data is written to a temporary file under
``.tmp``, then renamed (or linked) into place. A put is durable when it
returns: the file and its directory are fsynced. A put with
``durable=False`` (a volume's containers) is not synced on its own: its
writeback starts at once, and the next ``append_log`` of the namespace
fsyncs every such file and directory before it writes the slot, so no
record ever names an object a crash could lose, and the containers of one
flush reach the disk together instead of one fsync after another.
"""

import collections
import contextlib
import ctypes
import fcntl
import functools
import os
import shutil
import threading
import time
import uuid

from oslo_log import log as logging

from ovs_daemon.backends import base
from ovs_daemon.backends import page_cache

LOG = logging.getLogger(__name__)

_LOG_DIR = 'log'
_SLOT_FORMAT = '%016d'
_CLAIM_RECORD = b'C'
_COMMIT_RECORD = b'R'
_STALE_TEMP_SECONDS = 600
# Slots a claim tries after the last one it saw: writers committing
# meanwhile can take only a few.
_MAX_CLAIM_SLOTS = 64
# Ranged reads (a volume reading blocks out of its containers) keep their
# file open: containers are written once and never change, and opening a
# file per 4 KiB read costs more than the read. Put, delete, claim and
# namespace changes made through this object close the files concerned.
_OPEN_FILES = 256
_SYNC_FILE_RANGE_WAIT_BEFORE = 1
_SYNC_FILE_RANGE_WRITE = 2
_SYNC_FILE_RANGE_WAIT_AFTER = 4
# A durable object larger than this (a volume's checkpoint) is written out
# piece by piece: see _write_back.
_WRITE_BACK_BYTES = 4 << 20
_sync_file_range = getattr(ctypes.CDLL(None, use_errno=True), 'sync_file_range', None)
if _sync_file_range is not None:
    _sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]


def _start_writeback(fd):
    """Ask the kernel to start writing ``fd``'s dirty pages back without
    waiting for it, so that the fsync before the next commit finds most of
    them on disk already (a hint: where the call is missing, the fsync does
    it all)."""
    if _sync_file_range is not None:
        _sync_file_range(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)


def _write_back(fd, offset, length):
    """Write ``length`` bytes of ``fd`` at ``offset`` to the disk and wait.
    On ext4 (data=ordered) any fsync commits the journal and waits for the
    data of every file with blocks allocated in it: without this, a FLUSH's
    fsync beside the fsync of a large object waits for all of it, with it
    for the piece being written (a hint: where the call is missing, the
    fsync does it all)."""
    if _sync_file_range is not None:
        _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WAIT_BEFORE
                         | _SYNC_FILE_RANGE_WRITE | _SYNC_FILE_RANGE_WAIT_AFTER)


class _Unsynced:
    """The files and directories of ``durable=False`` puts not fsynced yet,
    per namespace directory. Syncs of one namespace run one at a time, so
    a commit never passes a sync another thread has taken the files of but
    not finished. A path whose fsync failed is never trusted again (after
    a failed fsync the kernel may have dropped its dirty pages and a second
    fsync succeeds): every later sync of the namespace fails until that
    path is written anew, deleted, or the namespace claimed again."""

    def __init__(self):
        self._lock = threading.Lock()
        self._paths = collections.defaultdict(set)
        self._failed = collections.defaultdict(set)
        self._syncing = collections.defaultdict(threading.Lock)

    def add(self, ns_dir, paths):
        with self._lock:
            self._paths[ns_dir].update(paths)
            self._failed[ns_dir].difference_update(paths)

    def discard(self, ns_dir, path):
        with self._lock:
            self._paths[ns_dir].discard(path)
            self._failed[ns_dir].discard(path)

    def forget(self, ns_dir):
        with self._lock:
            self._paths.pop(ns_dir, None)
            self._failed.pop(ns_dir, None)

    def sync(self, ns_dir):
        """fsync every path added for ``ns_dir``: files first, then the
        directories that name them."""
        with self._syncing[ns_dir]:
            with self._lock:
                if self._failed[ns_dir]:
                    raise base.BackendError(
                        'an earlier fsync of %s failed: its data may be lost'
                        % ', '.join(sorted(self._failed[ns_dir])))
                paths = self._paths.pop(ns_dir, set())
            for path in sorted(paths, key=os.path.isdir):
                try:
                    _fsync_path(path)
                except FileNotFoundError:
                    continue  # deleted since: nothing left to make durable
                except OSError as exc:
                    with self._lock:
                        self._paths[ns_dir].update(paths)
                        self._failed[ns_dir].add(path)
                    raise base.BackendError('fsync of %s failed: %s' % (path, exc)) from exc


def _fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBackend(base.Backend):

    def __init__(self, root):
        self.root = os.path.abspath(root)
        os.makedirs(self.root, exist_ok=True)
        self._open_files = collections.OrderedDict()
        self._open_files_lock = threading.Lock()
        self._read_path = functools.lru_cache(maxsize=4 * _OPEN_FILES)(
            self._checked_read_path)
        self._unsynced = _Unsynced()

    def __repr__(self):
        return 'LocalBackend(%r)' % self.root

    # Paths

    def _ns_dir(self, namespace):
        return os.path.join(self.root, base.check_name('namespace', namespace))

    def _existing_ns_dir(self, namespace):
        path = self._ns_dir(namespace)
        if not os.path.isdir(path):
            raise base.NotFound('namespace %s does not exist' % namespace)
        return path

    @staticmethod
    def _object_path(ns_dir, name):
        base.check_object_name(name)
        if name.split('/', 1)[0] == _LOG_DIR:
            raise base.InvalidName('object names under %r are reserved for '
                                   'the log' % _LOG_DIR)
        return os.path.join(ns_dir, name)

    def _checked_read_path(self, namespace, name):
        """The path of an object a ranged read reads (``_read_path``
        remembers them: the read path asks for the same containers all the
        time, and checking a name costs more than reading 4 KiB)."""
        return self._object_path(self._ns_dir(namespace), name)

    def _slot_path(self, ns_dir, slot):
        if not isinstance(slot, int) or slot < 1:
            raise base.InvalidName('log slot must be a positive integer, got '
                                   '%r' % (slot,))
        return os.path.join(ns_dir, _LOG_DIR, _SLOT_FORMAT % slot)

    # Atomic file operations

    @contextlib.contextmanager
    def _locked(self, ns_dir):
        fd = os.open(os.path.join(ns_dir, '.lock'), os.O_RDWR | os.O_CREAT,
                     0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write_temp(self, ns_dir, data, durable=True):
        path = os.path.join(ns_dir, '.tmp', uuid.uuid4().hex)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            written = 0
            while view:
                count = os.write(fd, view[:_WRITE_BACK_BYTES])
                if durable and len(data) > _WRITE_BACK_BYTES:
                    _write_back(fd, written, count)
                view, written = view[count:], written + count
            if durable:
                os.fsync(fd)
            else:
                _start_writeback(fd)
        except BaseException:
            os.close(fd)
            os.unlink(path)
            raise
        os.close(fd)
        return path

    @staticmethod
    def _remove_stale_temp_files(ns_dir):
        # A writer killed mid-write leaves its temporary file behind; one
        # older than any write could take is garbage.
        tmp_dir = os.path.join(ns_dir, '.tmp')
        horizon = time.time() - _STALE_TEMP_SECONDS
        for name in os.listdir(tmp_dir):
            path = os.path.join(tmp_dir, name)
            with contextlib.suppress(OSError):
                if os.stat(path).st_mtime < horizon:
                    os.unlink(path)

    @staticmethod
    def _fsync_dir(path):
        _fsync_path(path)

    @staticmethod
    def _make_parents(ns_dir, path):
        """Create the directories of object ``path``; returns the
        directories whose entries changed: its own, and the parent of
        every directory made."""
        changed = [os.path.dirname(path)]
        directory = changed[0]
        missing = []
        while directory != ns_dir and not os.path.isdir(directory):
            missing.append(directory)
            directory = os.path.dirname(directory)
        os.makedirs(changed[0], exist_ok=True)
        return changed + [os.path.dirname(d) for d in missing]

    def _read_key(self, ns_dir):
        try:
            with open(os.path.join(ns_dir, '.key'), 'rb') as f:
                return base.OwnerKey.decode(f.read())
        except FileNotFoundError:
            return None

    def _check_key(self, ns_dir, namespace, key):
        if not isinstance(key, base.OwnerKey):
            raise base.InvalidName('a write needs an OwnerKey, got %r'
                                   % (key,))
        current = self._read_key(ns_dir)
        if current != key:
            raise base.Fenced('namespace %s: key of epoch %d is not current '
                              '(current epoch %s)'
                              % (namespace, key.epoch,
                                 current.epoch if current else 'none'))

    def _last_slot(self, ns_dir):
        slots = os.listdir(os.path.join(ns_dir, _LOG_DIR))
        return max((int(s) for s in slots), default=0)

    # Namespaces

    def create_namespace(self, namespace):
        path = self._ns_dir(namespace)
        self._forget_open(path, namespace=True)
        for sub in ('.tmp', _LOG_DIR):
            os.makedirs(os.path.join(path, sub), exist_ok=True)
        self._fsync_dir(self.root)

    def namespace_exists(self, namespace):
        return os.path.isdir(self._ns_dir(namespace))

    def list_namespaces(self):
        return sorted(n for n in os.listdir(self.root)
                      if not n.startswith('.'))

    def usage(self):
        fs = os.statvfs(self.root)
        used = 0
        for directory, _, files in os.walk(self.root):
            for name in files:
                try:
                    used += os.lstat(os.path.join(directory, name)).st_size
                except FileNotFoundError:
                    pass  # removed by a concurrent delete
        return {'capacity_bytes': fs.f_blocks * fs.f_frsize,
                'free_bytes': fs.f_bavail * fs.f_frsize,
                'used_bytes': used}

    def delete_namespace(self, namespace):
        path = self._ns_dir(namespace)
        self._forget_open(path, namespace=True)
        self._unsynced.forget(path)
        trash = os.path.join(self.root, '.trash-' + uuid.uuid4().hex)
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            return
        shutil.rmtree(trash, ignore_errors=True)

    # Ownership

    def current_epoch(self, namespace):
        key = self._read_key(self._existing_ns_dir(namespace))
        return key.epoch if key else 0

    def claim(self, namespace, new_key):
        if not isinstance(new_key, base.OwnerKey):
            raise base.InvalidName('claim needs an OwnerKey, got %r'
                                   % (new_key,))
        # Another process may have deleted and re-created the namespace
        # since this one last read it: cached files could be of the old one.
        self._forget_open(self._ns_dir(namespace), namespace=True)
        ns_dir = self._existing_ns_dir(namespace)
        # What this process put unsynced is of an older key: no record of
        # the new owner names it.
        self._unsynced.forget(ns_dir)
        self._remove_stale_temp_files(ns_dir)
        key_tmp = self._write_temp(ns_dir, new_key.encode())
        claim_tmp = self._write_temp(ns_dir, _CLAIM_RECORD)
        try:
            with self._locked(ns_dir):
                current = self._read_key(ns_dir)
                if current is not None and new_key.epoch <= current.epoch:
                    raise base.Fenced(
                        'namespace %s: claim of epoch %d refused, epoch %d '
                        'is current' % (namespace, new_key.epoch,
                                        current.epoch))
                os.rename(key_tmp, os.path.join(ns_dir, '.key'))
                self._fsync_dir(ns_dir)
                slot = self._take_claim_slot(ns_dir, namespace, claim_tmp)
        finally:
            for leftover in (key_tmp, claim_tmp):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover)
        LOG.info('namespace %s claimed with epoch %d at log slot %d',
                 namespace, new_key.epoch, slot)
        return slot

    def _take_claim_slot(self, ns_dir, namespace, claim_tmp):
        """Link the claim record into the first free slot after the last
        one: a writer with the old key may commit into the next slot
        meanwhile (its commit then comes before the claim)."""
        slot = self._last_slot(ns_dir) + 1
        for _ in range(_MAX_CLAIM_SLOTS):
            try:
                os.link(claim_tmp, self._slot_path(ns_dir, slot))
            except FileExistsError:
                slot += 1
                continue
            self._fsync_dir(os.path.join(ns_dir, _LOG_DIR))
            return slot
        raise base.BackendError('namespace %s: %d log slots taken while '
                                'claiming' % (namespace, _MAX_CLAIM_SLOTS))

    # Objects

    def put(self, namespace, name, data, key, durable=True):
        ns_dir = self._existing_ns_dir(namespace)
        path = self._object_path(ns_dir, name)
        self._forget_open(path)
        tmp = self._write_temp(ns_dir, data, durable)
        try:
            self._check_key(ns_dir, namespace, key)
            changed = self._make_parents(ns_dir, path)
            os.rename(tmp, path)
            if durable:
                self._unsynced.discard(ns_dir, path)
                for directory in changed:
                    self._fsync_dir(directory)
            else:
                self._unsynced.add(ns_dir, [path] + changed)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def get(self, namespace, name, offset=0, length=None):
        if length is None:
            data = self._read_whole(namespace, name,
                                    self._object_path(self._ns_dir(namespace), name))
        else:
            fd = self._ranged_fd(namespace, name, self._read_path(namespace, name))
            data = os.pread(fd, length, offset)
        if length is not None and len(data) != length:
            raise base.BackendError('%s/%s: short read of %d bytes at %d'
                                    % (namespace, name, length, offset))
        return data

    def get_at_once(self, namespace, name, offset, length):
        """From the page cache, through a file a ranged read opened before
        (opening one may wait for the disk). The read is made holding the
        open files' lock, so no other thread closes the file under it and
        hands its number to another."""
        path = self._read_path(namespace, name)
        with self._open_files_lock:
            fd = self._open_files.get(path)
            if fd is None:
                return None
            self._open_files.move_to_end(path)
            return page_cache.read_if_cached(fd, length, offset)

    def _open_for_read(self, namespace, name, path):
        try:
            return os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            self._existing_ns_dir(namespace)
            raise base.NotFound('%s/%s does not exist' % (namespace, name))

    def _read_whole(self, namespace, name, path):
        fd = self._open_for_read(namespace, name, path)
        try:
            return os.pread(fd, os.fstat(fd).st_size, 0)
        finally:
            os.close(fd)

    def _ranged_fd(self, namespace, name, path):
        with self._open_files_lock:
            fd = self._open_files.get(path)
            if fd is not None:
                self._open_files.move_to_end(path)
                return fd
        fd = self._open_for_read(namespace, name, path)
        with self._open_files_lock:
            if path in self._open_files:
                os.close(fd)
                return self._open_files[path]
            self._open_files[path] = fd
            while len(self._open_files) > _OPEN_FILES:
                os.close(self._open_files.popitem(last=False)[1])
        return fd

    def _forget_open(self, path, namespace=False):
        """Close the cached file of an object being replaced or removed, or
        with ``namespace`` every cached file under the directory ``path``."""
        with self._open_files_lock:
            if namespace:
                doomed = [p for p in self._open_files if p.startswith(path + os.sep)]
            else:
                doomed = [path] if path in self._open_files else []
            for victim in doomed:
                os.close(self._open_files.pop(victim))

    def list(self, namespace, prefix=''):
        ns_dir = self._existing_ns_dir(namespace)
        names = []
        for dirpath, dirnames, filenames in os.walk(ns_dir):
            rel = os.path.relpath(dirpath, ns_dir)
            if rel == '.':
                dirnames[:] = [d for d in dirnames
                               if not d.startswith('.') and d != _LOG_DIR]
                rel = ''
            else:
                rel += '/'
            names.extend(rel + f for f in filenames if not f.startswith('.'))
        return sorted(n for n in names if n.startswith(prefix))

    def delete(self, namespace, name, key):
        ns_dir = self._existing_ns_dir(namespace)
        path = self._object_path(ns_dir, name)
        self._forget_open(path)
        self._check_key(ns_dir, namespace, key)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self._unsynced.discard(ns_dir, path)

    # The log

    def append_log(self, namespace, slot, data, key):
        ns_dir = self._existing_ns_dir(namespace)
        target = self._slot_path(ns_dir, slot)
        tmp = self._write_temp(ns_dir, _COMMIT_RECORD + bytes(data))
        try:
            # Before the slot: the record may name any of them.
            self._unsynced.sync(ns_dir)
            self._check_key(ns_dir, namespace, key)
            try:
                os.link(tmp, target)
            except FileExistsError:
                raise base.Fenced('namespace %s: log slot %d is taken'
                                  % (namespace, slot))
            self._fsync_dir(os.path.dirname(target))
        finally:
            os.unlink(tmp)
        try:
            self._check_key(ns_dir, namespace, key)
        except base.Fenced as exc:
            # A claim came between the check and the link: the new owner
            # may have read the log before this slot (or trimmed it).
            raise base.Fenced('namespace %s: claimed by another writer while '
                              'slot %d was committed; the new owner may not '
                              'have it (%s)' % (namespace, slot, exc)) from exc

    def read_log(self, namespace, after=0):
        ns_dir = self._existing_ns_dir(namespace)
        log_dir = os.path.join(ns_dir, _LOG_DIR)
        for slot in sorted(int(s) for s in os.listdir(log_dir)):
            if slot <= after:
                continue
            try:
                with open(self._slot_path(ns_dir, slot), 'rb') as f:
                    raw = f.read()
            except FileNotFoundError:
                continue  # trimmed by the owner while we were reading
            if raw[:1] == _CLAIM_RECORD:
                yield slot, None
            elif raw[:1] == _COMMIT_RECORD:
                yield slot, raw[1:]
            else:
                raise base.BackendError('%s: log slot %d is corrupt'
                                        % (namespace, slot))

    def trim_log(self, namespace, upto, key):
        ns_dir = self._existing_ns_dir(namespace)
        self._check_key(ns_dir, namespace, key)
        last = self._last_slot(ns_dir)
        for name in os.listdir(os.path.join(ns_dir, _LOG_DIR)):
            slot = int(name)
            if slot <= upto and slot != last:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(ns_dir, _LOG_DIR, name))

