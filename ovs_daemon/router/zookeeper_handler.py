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

"""kazoo's threading handler with a shorter first wait for the answer to
a session handshake.

kazoo waits ``session_timeout`` / (number of ZooKeeper hosts) for that
answer. A ZooKeeper server that is starting takes connections before it
serves and leaves their handshake unanswered, neither answering nor
closing them: a router whose reconnect attempt came then stayed without a
session that long after ZooKeeper served again, holding its IO.

The handshake is the wait kazoo makes on its socket alone (its connection
loop waits on the socket and its wake-up pipe together; reads within one
answer, which a serving ZooKeeper sends at once, are the others). Such a
wait is cut short at ``first_wait`` and the attempt fails, to be tried
again after kazoo's back-off; each wait that finds nothing doubles the
next one, up to kazoo's own, so an overloaded server that answers slowly
is still waited for; one that finds data starts over at ``first_wait``.
"""

from kazoo.handlers import threading as kazoo_threading

# A serving ZooKeeper answers a handshake in milliseconds.
FIRST_WAIT = 0.5


class HandshakeHandler(kazoo_threading.SequentialThreadingHandler):

    def __init__(self, first_wait=FIRST_WAIT):
        super().__init__()
        self.first_wait = first_wait
        self._wait = first_wait

    def select(self, rlist, wlist, xlist, timeout=None):
        alone = len(rlist) + len(wlist) == 1
        if not alone or (timeout is not None and timeout <= self._wait):
            return super().select(rlist, wlist, xlist, timeout)
        ready = super().select(rlist, wlist, xlist, self._wait)
        if ready[0] or ready[1]:
            self._wait = self.first_wait
        else:
            self._wait = self._wait * 2 if timeout is None else min(self._wait * 2, timeout)
        return ready
