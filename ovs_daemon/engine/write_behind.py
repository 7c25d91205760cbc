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

"""A volume's sealed containers, put into the backend as soon as they are
sealed, by a thread of its own, so that a commit waits only for those not
written yet.

A put made here is like one made by the commit itself (``durable=False``,
under the volume's key, named after its epoch): nothing refers to the
object until a commit names it, and the commit that does (``append_log``)
makes it durable first. Puts run one at a time, in the order the
containers were sealed; the thread exists while there is work and ends
when the queue is empty, so an idle volume costs none. What the queue
holds is bounded by what the volume holds unflushed (the router flushes a
volume past its limit), since a container stays in memory until a commit
names it.

An error of a put is kept for the commit that needs the container: that
commit fails with it (a :class:`~ovs_daemon.backends.base.Fenced` halts
the volume there), and the next one puts the container again itself.
"""

import collections
import threading

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

_PENDING = object()
_WRITTEN = object()


class WriteBehind:
    """``put(number, data)`` puts container ``number`` into the backend."""

    def __init__(self, put, name):
        self._put = put
        self._name = name
        self._changed = threading.Condition()
        self._queue = collections.deque()
        self._outcomes = {}     # number -> _PENDING, _WRITTEN or the error
        self._running = False

    def submit(self, number, data):
        """Put sealed container ``number`` (``data`` no longer changes)."""
        with self._changed:
            self._outcomes[number] = _PENDING
            self._queue.append((number, data))
            if self._running:
                return
            self._running = True
        threading.Thread(target=self._work, name='write-behind-%s' % self._name,
                         daemon=True).start()

    def _work(self):
        while True:
            with self._changed:
                if not self._queue:
                    self._running = False
                    return
                number, data = self._queue.popleft()
            try:
                self._put(number, data)
                outcome = _WRITTEN
            except Exception as exc:
                LOG.warning('%s: put of sealed container %d failed, the commit '
                            'that names it fails: %s', self._name, number, exc)
                outcome = exc
            with self._changed:
                if number in self._outcomes:
                    self._outcomes[number] = outcome
                self._changed.notify_all()

    def written(self, number):
        """Wait for the put of container ``number``: True once it is in
        the backend, False if it was never submitted (or its failure was
        reported already: the caller puts it itself); raises the error the
        put failed with, once."""
        with self._changed:
            while self._outcomes.get(number) is _PENDING:
                self._changed.wait()
            outcome = self._outcomes.pop(number, None)
        if outcome is None:
            return False
        if outcome is _WRITTEN:
            return True
        raise outcome

    def drop(self, numbers):
        """Forget containers no commit will name (a revert discarded them,
        the volume halted): their queued puts are not made."""
        with self._changed:
            for number in numbers:
                self._outcomes.pop(number, None)
            self._queue = collections.deque(
                (number, data) for number, data in self._queue if number in self._outcomes)
            self._changed.notify_all()
