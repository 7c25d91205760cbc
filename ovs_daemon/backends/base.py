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

"""The backend contract: namespaces of immutable objects, fenced by an owner key.

A volume lives in one namespace. Its owner holds an :class:`OwnerKey`; every
mutating call carries the caller's key and the backend refuses it with
:class:`Fenced` unless that key is the namespace's current one. ``claim``
rotates the key, and only ever to a higher epoch, so of two writers racing to
claim the same epoch exactly one wins.

Two kinds of object exist, because an object store such as S3 cannot make a
write to one object conditional on another object:

* data objects (``put``): written once under a name unique to the writer's
  epoch. A backend may accept them from a stale writer, but nothing refers to
  them, so they are invisible and the collector removes them.
* log slots (``append_log``): the commit point. Slot ``n`` is written at most
  once; a claim takes the slot after the last one, so a stale writer's next
  commit finds its slot taken and gets :class:`Fenced`. Whatever state a
  reader rebuilds comes only from committed slots.
"""

import abc
import dataclasses
import re
import secrets

from ovs_daemon.backends import crc32


class BackendError(Exception):
    """The backend could not do what was asked (I/O error, unreachable...)."""


class InvalidName(BackendError, ValueError):
    """A namespace, object name or key is not acceptable."""


class NotFound(BackendError, KeyError):
    """The object or namespace does not exist."""

    def __str__(self):
        return str(self.args[0]) if self.args else 'not found'


class Fenced(BackendError):
    """The caller's key is no longer the namespace's current key.

    Never retry a fenced write: another writer owns the namespace now.
    """


_NAME = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.:+=-]{0,199}$')
_KEY_TOKEN = re.compile(r'^[A-Za-z0-9_-]{8,128}$')


def check_name(kind, name):
    """Refuse names that could escape a namespace or confuse a store."""
    if not isinstance(name, str) or not _NAME.match(name) or '..' in name:
        raise InvalidName('invalid %s name %r: use 1-200 characters of '
                          'A-Z a-z 0-9 _ . : + = -, not starting with a dot, '
                          'no "/" and no ".."' % (kind, name))
    return name


def check_object_name(name):
    """Object names may have '/'-separated parts, each a valid name."""
    if not isinstance(name, str) or not name:
        raise InvalidName('invalid object name %r' % (name,))
    for part in name.split('/'):
        check_name('object', part)
    return name


@dataclasses.dataclass(frozen=True, order=True)
class OwnerKey:
    """Who may write a namespace: the ownership epoch and a secret token.

    The epoch is the fencing token from ZooKeeper; it only ever grows. The
    token tells apart two claims of the same epoch and is unguessable, so a
    writer cannot forge another's key.
    """

    epoch: int
    token: str

    def __post_init__(self):
        if not isinstance(self.epoch, int) or self.epoch < 1:
            raise InvalidName('key epoch must be a positive integer, got %r'
                              % (self.epoch,))
        if not isinstance(self.token, str) or not _KEY_TOKEN.match(self.token):
            raise InvalidName('key token must be 8-128 URL-safe characters')

    @classmethod
    def generate(cls, epoch):
        return cls(epoch, secrets.token_urlsafe(18))

    def encode(self):
        return ('%d:%s' % (self.epoch, self.token)).encode()

    @classmethod
    def decode(cls, raw):
        epoch, token = raw.decode().split(':', 1)
        return cls(int(epoch), token)

    def __repr__(self):
        # The token is a credential: keep it out of logs and tracebacks.
        return 'OwnerKey(epoch=%d)' % self.epoch


class Backend(abc.ABC):
    """A store of namespaces. Implementations must be safe to share between
    processes: every check-and-write is atomic."""

    @abc.abstractmethod
    def create_namespace(self, namespace):
        """Create an empty namespace with no owner. Idempotent."""

    @abc.abstractmethod
    def namespace_exists(self, namespace):
        """True if the namespace exists."""

    @abc.abstractmethod
    def list_namespaces(self):
        """Names of all namespaces."""

    @abc.abstractmethod
    def delete_namespace(self, namespace):
        """Remove a namespace and everything in it. Idempotent."""

    @abc.abstractmethod
    def current_epoch(self, namespace):
        """The epoch of the current owner key, 0 when never claimed."""

    @abc.abstractmethod
    def claim(self, namespace, new_key):
        """Make ``new_key`` the owner key.

        Raises Fenced unless ``new_key.epoch`` is higher than the current
        epoch. Also takes the next log slot with a claim record, so a writer
        with an older key can commit nothing more. Returns that slot.
        """

    @abc.abstractmethod
    def put(self, namespace, name, data, key, durable=True):
        """Write immutable object ``name``. Raises Fenced for a stale key.

        Durable when it returns, unless ``durable`` is False: then it may
        stay volatile until the next ``append_log`` of the namespace, which
        makes every object put before it durable before it commits. For
        objects only a later commit refers to (a volume's containers)."""

    @abc.abstractmethod
    def get(self, namespace, name, offset=0, length=None):
        """Read an object, or ``length`` bytes of it from ``offset``."""

    def get_with_crc32s(self, namespace, name, offset, length, piece):
        """``length`` bytes of an object from ``offset``, and the CRC-32
        of each ``piece`` bytes of them (see crc32.of_pieces)."""
        data = self.get(namespace, name, offset, length)
        return data, crc32.of_pieces(data, piece)

    def get_at_once(self, namespace, name, offset, length):
        """``length`` bytes of an object at ``offset`` if the backend has
        them at hand (a local file's pages in the page cache), else None:
        never waits for a device or the network, so an event loop may call
        it. This default has nothing at hand."""
        return None

    @abc.abstractmethod
    def list(self, namespace, prefix=''):
        """Sorted names of the objects whose name starts with ``prefix``."""

    @abc.abstractmethod
    def delete(self, namespace, name, key):
        """Delete an object. Raises Fenced for a stale key. Idempotent."""

    @abc.abstractmethod
    def append_log(self, namespace, slot, data, key):
        """Commit ``data`` into log slot ``slot``, once every object put
        into the namespace before it is durable.

        Raises Fenced when ``key`` is stale or the slot is already taken
        (by a claim or another writer): in both cases someone else owns the
        namespace now.
        """

    @abc.abstractmethod
    def read_log(self, namespace, after=0):
        """Yield ``(slot, record)`` for every committed slot above ``after``
        in order; a claim's record is ``None``."""

    @abc.abstractmethod
    def trim_log(self, namespace, upto, key):
        """Delete log slots up to and including ``upto`` (after a
        checkpoint). The highest slot is always kept, so slot numbers are
        never reused. Raises Fenced for a stale key."""

    @abc.abstractmethod
    def usage(self):
        """``{'capacity_bytes', 'free_bytes', 'used_bytes'}`` of the store;
        capacity and free are None where the store has no fixed limit."""
