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

"""The edge's watchdog: one task checks every attached volume at each
tick, however many there are."""

import asyncio

from ovs_cinder.edge import watchdog


class Volume:

    def __init__(self, name, fails=False):
        self.name = name
        self.fails = fails
        self.checks = []

    def check_upstream(self, now):
        self.checks.append(now)
        if self.fails:
            raise RuntimeError('broken')


async def until(predicate, timeout=10):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, 'never happened'
        await asyncio.sleep(0.005)


def test_one_task_checks_every_volume_at_each_tick():
    async def scenario():
        tasks = len(asyncio.all_tasks())
        dog = watchdog.shared(0.01)
        assert watchdog.shared(0.01) is dog
        volumes = [Volume('v%d' % i, fails=i == 3) for i in range(1000)]
        for volume in volumes:
            dog.watch(volume)
        assert len(asyncio.all_tasks()) == tasks + 1
        await until(lambda: all(len(v.checks) >= 3 for v in volumes))
        # One tick checks all at one instant; a volume failing its check
        # does not keep the others from theirs.
        assert len({v.checks[0] for v in volumes}) == 1

        dog.unwatch(volumes[0])
        seen = len(volumes[0].checks)
        await until(lambda: len(volumes[1].checks) >= seen + 3)
        assert len(volumes[0].checks) == seen
        for volume in volumes:
            dog.unwatch(volume)
        await until(lambda: len(asyncio.all_tasks()) == tasks)

        dog.watch(volumes[0])    # a later attach starts it again
        await until(lambda: len(volumes[0].checks) > seen)
        dog.unwatch(volumes[0])
    asyncio.run(asyncio.wait_for(scenario(), 30))
