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

"""When the fault campaign starts its killed routers again: after the
fault, in the calm before the next one, not within the pause measured."""

import random

from bench import nemesis


class ProcessLog:
    """Stands for the cluster: records which routers were killed and
    started, in order."""

    def __init__(self):
        self.events = []

    def client(self, timeout):
        return None

    def kill_router(self, router):
        self.events.append(('kill', router))

    def start_router(self, router):
        self.events.append(('start', router))


def test_a_killed_owner_starts_again_only_before_the_next_fault():
    processes = ProcessLog()
    campaign = nemesis.Campaign(processes, random.Random(1), False, say=print)
    campaign.owner = lambda: 'r1'
    campaign.wait_for_new_owner = lambda old: 'r2'

    campaign.kill_owner()
    assert processes.events == [('kill', 'r1')]

    campaign.start_killed()
    assert processes.events == [('kill', 'r1'), ('start', 'r1')]
    campaign.start_killed()
    assert processes.events == [('kill', 'r1'), ('start', 'r1')]
