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

"""A router refusing a call of the fault campaign (ZooKeeper away, an
owner changing) is part of the faults: the campaign records it and goes
on, it does not stop."""

import random

from bench import nemesis
from ovs_daemon.api import errors as api_errors


class Routers:
    """Stands for the routers' control API: ``locate`` refuses ``refusals``
    times, then names ``owner``."""

    def __init__(self, refusals, owner='r2'):
        self.refusals = refusals
        self.owner = owner

    def locate(self, volume):
        if self.refusals:
            self.refusals -= 1
            raise api_errors.Unavailable('router r1 cannot locate volume %s: its ZooKeeper '
                                         'session is suspended' % volume)
        return {'owner': self.owner}

    def acquire(self, volume, mode):
        raise api_errors.Conflict('volume %s is being deleted' % volume)


class Cluster:
    def __init__(self, routers):
        self.routers = routers

    def client(self, timeout):
        return self.routers


def campaign(routers):
    return nemesis.Campaign(Cluster(routers), random.Random(1), False, say=print)


def test_a_refused_call_is_an_outcome():
    routers = Routers(refusals=0)
    assert nemesis._outcome(routers.acquire, 'nemesis', 'normal') == (
        'refused (volume nemesis is being deleted)')


def test_the_owner_is_asked_again_while_routers_refuse():
    assert campaign(Routers(refusals=3)).owner() == 'r2'


def test_a_new_owner_is_waited_for_while_routers_refuse():
    assert campaign(Routers(refusals=3, owner='r3')).wait_for_new_owner('r2') == 'r3'
