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

"""A local backend whose uploads (``put``) a test can hold back or fail,
whose uploads of checkpoints alone it can hold back, and whose ranged
reads (the read path's, not whole objects) it can hold back; while it
holds reads, none is at hand (``get_at_once``), as none would be in the
page cache of such a disk."""

import threading

from ovs_daemon.backends import base
from ovs_daemon.backends import local
from ovs_daemon.engine import records


def wait_while_held(may_go, waiting, seconds):
    """Unless ``may_go`` is set, say so on ``waiting`` and wait for it
    (at most ``seconds``)."""
    if not may_go.is_set():
        waiting.set()
        may_go.wait(seconds)


class FaultyBackend(local.LocalBackend):

    def __init__(self, path):
        super().__init__(path)
        self.uploads_may_go = threading.Event()
        self.uploads_may_go.set()
        self.upload_waiting = threading.Event()
        self.checkpoints_may_go = threading.Event()
        self.checkpoints_may_go.set()
        self.checkpoint_waiting = threading.Event()
        self.checkpoint_failures_left = 0
        self.failures_left = 0
        # The commit that many commits from now fails once (None: none does).
        self.commits_before_failure = None
        self.ranged_reads_may_go = threading.Event()
        self.ranged_reads_may_go.set()
        self.ranged_read_waiting = threading.Event()

    def put(self, namespace, name, data, key, durable=True):
        if name.startswith(records.CHECKPOINT_PREFIX):
            wait_while_held(self.checkpoints_may_go, self.checkpoint_waiting, 60)
            if self.checkpoint_failures_left:
                self.checkpoint_failures_left -= 1
                raise base.BackendError('injected: checkpoint upload failed')
        wait_while_held(self.uploads_may_go, self.upload_waiting, 30)
        if self.failures_left:
            self.failures_left -= 1
            raise base.BackendError('injected: disk full')
        super().put(namespace, name, data, key, durable)

    def get(self, namespace, name, offset=0, length=None):
        if length is not None:
            wait_while_held(self.ranged_reads_may_go, self.ranged_read_waiting, 30)
        return super().get(namespace, name, offset, length)

    def get_at_once(self, namespace, name, offset, length):
        # A disk slowed down or held back has none of its reads at hand.
        if not self.ranged_reads_may_go.is_set():
            return None
        return super().get_at_once(namespace, name, offset, length)

    def append_log(self, namespace, slot, data, key):
        if self.commits_before_failure is not None:
            self.commits_before_failure -= 1
            if self.commits_before_failure < 0:
                self.commits_before_failure = None
                raise base.BackendError('injected: commit failed')
        super().append_log(namespace, slot, data, key)
