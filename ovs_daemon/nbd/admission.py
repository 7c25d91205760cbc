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

"""Bounds on clients that have not finished the handshake.

A connection costs little until its session chooses an export; a client
that never gets there must not be able to hold much either. Handshakes are
capped per peer address and in all (a connection past a cap is closed at
once); refusals and dropped handshakes are counted by reason and logged at
most ``burst`` times per ``interval``, with a count of those not logged, so
a flood of bad clients cannot fill the disk with log lines.
"""

import collections
import time

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

MAX_HANDSHAKES = 256
MAX_HANDSHAKES_PER_PEER = 32
# Options a client may send before choosing an export (an honest one needs
# a handful: STRUCTURED_REPLY, INFO, GO, maybe LIST).
MAX_OPTIONS = 32


class Admission:

    def __init__(self, max_handshakes=MAX_HANDSHAKES,
                 max_per_peer=MAX_HANDSHAKES_PER_PEER, log_interval=10.0, log_burst=5,
                 clock=time.monotonic):
        self.max_handshakes = max_handshakes
        self.max_per_peer = max_per_peer
        self.refusals = collections.Counter()
        self._handshakes = collections.Counter()
        self._interval = log_interval
        self._burst = log_burst
        self._clock = clock
        self._window = None
        self._logged = 0
        self._unlogged = 0

    @property
    def handshakes(self):
        return sum(self._handshakes.values())

    def admit(self, peer):
        """Whether a new connection from ``peer`` may start its handshake;
        if so, :meth:`done` must follow."""
        if self.handshakes >= self.max_handshakes:
            self.refuse('too_many_handshakes', 'NBD client %s refused: %d handshakes '
                        'under way', peer, self.max_handshakes)
            return False
        if self._handshakes[peer] >= self.max_per_peer:
            self.refuse('too_many_from_peer', 'NBD client %s refused: %d handshakes '
                        'under way from that address', peer, self.max_per_peer)
            return False
        self._handshakes[peer] += 1
        return True

    def done(self, peer):
        self._handshakes[peer] -= 1
        if self._handshakes[peer] <= 0:
            del self._handshakes[peer]

    def refuse(self, reason, message, *args):
        """Count a refused or dropped client and log it, rate-limited."""
        self.refusals[reason] += 1
        now = self._clock()
        if self._window is None or now - self._window >= self._interval:
            if self._unlogged:
                LOG.warning('%d more NBD clients refused or dropped in the last %.0f s '
                            '(not logged one by one)', self._unlogged, self._interval)
            self._window, self._logged, self._unlogged = now, 0, 0
        if self._logged < self._burst:
            self._logged += 1
            LOG.warning(message, *args)
        else:
            self._unlogged += 1
